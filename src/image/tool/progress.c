/* Pull progress on stderr (progress.h). */
#define _GNU_SOURCE
#include "image/tool/progress.h"

#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define REDRAW_MS 100
#define BAR 30
#define SHORT_ID 12

struct item {
  char *name;
  int64_t total, done;
  bool started, finished;
};

struct progress {
  pthread_mutex_t lock;
  size_t n;
  struct item *items;
  bool tty;
  FILE *out;
  int64_t last_draw;
  size_t lines; /* lines the last redraw printed, to move back over */
};

static int64_t
mono_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
progress_format_size (int64_t bytes, char *buf, size_t len)
{
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double v = bytes < 0 ? 0 : (double) bytes;
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof units / sizeof units[0])
    v /= 1024, u++;
  if (u == 0)
    snprintf (buf, len, "%lldB", (long long) (bytes < 0 ? 0 : bytes));
  else
    snprintf (buf, len, "%.1f%s", v, units[u]);
}

static char *
short_name (const char *name)
{
  if (has_prefix (name, "sha256:"))
    return xasprintf ("%.*s", SHORT_ID, name + 7);
  return xstrdup (name);
}

struct progress *
progress_new (size_t n_items, const char *const names[], const int64_t totals[], bool tty)
{
  struct progress *p = xzalloc (sizeof *p);
  pthread_mutex_init (&p->lock, NULL);
  p->n = n_items;
  p->items = xzalloc ((n_items ? n_items : 1) * sizeof *p->items);
  for (size_t i = 0; i < n_items; i++)
    {
      p->items[i].name = short_name (names && names[i] ? names[i] : "blob");
      p->items[i].total = totals ? totals[i] : -1;
    }
  p->tty = tty;
  p->out = stderr;
  return p;
}

void
progress_set_output (struct progress *p, FILE *f)
{
  p->out = f;
}

static void
bar (char *buf, size_t len, int64_t done, int64_t total)
{
  size_t fill = total > 0 ? (size_t) ((double) (done < total ? done : total) * BAR / (double) total) : 0;
  char b[BAR + 1];
  for (size_t k = 0; k < BAR; k++)
    b[k] = k < fill ? '=' : k == fill ? '>' : ' ';
  if (fill >= BAR)
    b[BAR - 1] = '=';
  b[BAR] = '\0';
  snprintf (buf, len, "[%s]", b);
}

static void
item_line (const struct item *it, char *buf, size_t len)
{
  char d[32], t[32], b[BAR + 4];
  progress_format_size (it->done, d, sizeof d);
  progress_format_size (it->total, t, sizeof t);
  if (it->finished)
    snprintf (buf, len, "Copying blob %s  done  %s", it->name, it->total >= 0 ? t : d);
  else if (!it->started)
    snprintf (buf, len, "Copying blob %s  waiting", it->name);
  else if (it->total < 0)
    snprintf (buf, len, "Copying blob %s  %s", it->name, d);
  else
    {
      bar (b, sizeof b, it->done, it->total);
      snprintf (buf, len, "Copying blob %s  %s %s / %s", it->name, b, d, t);
    }
}

static void
total_line (const struct progress *p, char *buf, size_t len)
{
  int64_t done = 0, total = 0;
  size_t finished = 0;
  bool known = true;
  char d[32], t[32], b[BAR + 4];
  for (size_t i = 0; i < p->n; i++)
    {
      done += p->items[i].done;
      total += p->items[i].total;
      known &= p->items[i].total >= 0;
      finished += p->items[i].finished;
    }
  progress_format_size (done, d, sizeof d);
  progress_format_size (total, t, sizeof t);
  if (known)
    {
      bar (b, sizeof b, done, total);
      snprintf (buf, len, "Total              %s %s / %s  (%zu/%zu blobs)", b, d, t, finished, p->n);
    }
  else
    snprintf (buf, len, "Total  %s  (%zu/%zu blobs)", d, finished, p->n);
}

static void
term_size (FILE *f, size_t *cols, size_t *rows)
{
  struct winsize ws;
  *cols = 80, *rows = 24;
  if (ioctl (fileno (f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
    *cols = ws.ws_col, *rows = ws.ws_row;
}

/* The lines we redraw: every blob when they fit on the screen, else the unfinished ones first
 * (in the same number of lines each time, so that moving the cursor back stays right). */
static void
redraw (struct progress *p)
{
  size_t cols, rows, shown, k = 0;
  char line[512];
  term_size (p->out, &cols, &rows);
  shown = p->n + 2 <= rows ? p->n : rows > 3 ? rows - 3 : 1;
  if (cols > sizeof line)
    cols = sizeof line;
  if (p->lines)
    fprintf (p->out, "\033[%zuA", p->lines);
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < p->n && k < shown; i++)
      if ((p->n <= shown && pass == 0) || (p->n > shown && (pass == 0) == !p->items[i].finished))
        {
          item_line (&p->items[i], line, cols);
          fprintf (p->out, "\r\033[2K%s\n", line);
          k++;
        }
  total_line (p, line, cols);
  fprintf (p->out, "\r\033[2K%s\n", line);
  p->lines = k + 1;
  fflush (p->out);
  p->last_draw = mono_ms ();
}

static void
maybe_redraw (struct progress *p, bool force)
{
  if (force || p->lines == 0 || mono_ms () - p->last_draw >= REDRAW_MS)
    redraw (p);
}

static void
plain_start (struct progress *p, struct item *it)
{
  char t[32];
  if (it->started)
    return;
  it->started = true;
  if (p->tty)
    return;
  if (it->total >= 0)
    {
      progress_format_size (it->total, t, sizeof t);
      /* "25.0 MiB": the unit apart, as the line is read by people in a log */
      for (char *u = t; *u; u++)
        if (*u >= 'A' && *u <= 'Z')
          {
            memmove (u + 1, u, strlen (u) + 1);
            *u = ' ';
            break;
          }
      fprintf (p->out, "Copying blob %s (%s)\n", it->name, t);
    }
  else
    fprintf (p->out, "Copying blob %s\n", it->name);
  fflush (p->out);
}

void
progress_update (struct progress *p, size_t i, int64_t done)
{
  if (p == NULL || i >= p->n)
    return;
  pthread_mutex_lock (&p->lock);
  plain_start (p, &p->items[i]);
  p->items[i].done = done;
  if (p->tty)
    maybe_redraw (p, false);
  pthread_mutex_unlock (&p->lock);
}

void
progress_done (struct progress *p, size_t i)
{
  struct item *it;
  if (p == NULL || i >= p->n)
    return;
  pthread_mutex_lock (&p->lock);
  it = &p->items[i];
  plain_start (p, it);
  if (!it->finished)
    {
      it->finished = true;
      if (it->total >= 0)
        it->done = it->total;
      if (p->tty)
        maybe_redraw (p, false);
      else
        {
          fprintf (p->out, "Copying blob %s done\n", it->name);
          fflush (p->out);
        }
    }
  pthread_mutex_unlock (&p->lock);
}

void
progress_blob_cb (size_t index, int64_t done, int64_t total, void *ud)
{
  struct progress *p = ud;
  if (p == NULL || index >= p->n)
    return;
  pthread_mutex_lock (&p->lock);
  if (p->items[index].total < 0 && total >= 0)
    p->items[index].total = total;
  pthread_mutex_unlock (&p->lock);
  progress_update (p, index, done);
  if (total >= 0 && done == total)
    progress_done (p, index);
}

void
progress_finish (struct progress *p)
{
  if (p == NULL)
    return;
  pthread_mutex_lock (&p->lock);
  if (p->tty && p->n > 0)
    maybe_redraw (p, true);
  pthread_mutex_unlock (&p->lock);
  pthread_mutex_destroy (&p->lock);
  for (size_t i = 0; i < p->n; i++)
    free (p->items[i].name);
  free (p->items);
  free (p);
}
