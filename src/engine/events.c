/* The event log: writers append one JSON line per event; `cella events` replays and follows it
 * (events.h; docs/engine.md "Events"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "events.h"
#include "health.h"
#include "../util/paths.h"

#define ATTR_MAX 256 /* a longer attribute value is cut: a line stays under PIPE_BUF */

char *
events_log_path (void)
{
  return xasprintf ("%s/events.log", paths_data_root ());
}

char *
events_log_old_path (void)
{
  return xasprintf ("%s/events.log.1", paths_data_root ());
}

static int
open_log (const char *path)
{
  return open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

/* Past the cap: the writer that takes the lock first moves the log aside; the others see a new
 * inode at the path and write there. */
static int
rotate_if_full (const char *path, int fd, size_t add)
{
  struct stat a, b;
  if (fstat (fd, &a) < 0 || a.st_size + (off_t) add <= EVENTS_LOG_MAX)
    return fd;
  if (flock (fd, LOCK_EX) == 0 && stat (path, &b) == 0 && b.st_ino == a.st_ino && b.st_dev == a.st_dev)
    {
      cleanup_free char *old = events_log_old_path ();
      if (rename (path, old) < 0)
        return fd; /* keep writing to the full one */
    }
  close (fd);
  return open_log (path);
}

void
event_emit (const char *type, const char *action, const char *id, const char *name, const char *const *attrs)
{
  json_t *ev, *at = json_object ();
  long long ns = now_ns ();
  cleanup_free char *path = events_log_path ();
  char *text;
  size_t len;
  int fd;
  if (name)
    json_object_set_new (at, "name", json_stringn (name, strnlen (name, ATTR_MAX)));
  for (size_t i = 0; attrs && attrs[i]; i += 2)
    if (attrs[i + 1])
      json_object_set_new (at, attrs[i], json_stringn (attrs[i + 1], strnlen (attrs[i + 1], ATTR_MAX)));
  ev = json_pack ("{s:s, s:s, s:{s:s, s:o}, s:s, s:I, s:I}", "Type", type, "Action", action, "Actor", "ID",
                  id ? id : "", "Attributes", at, "scope", "local", "time", (json_int_t) (ns / 1000000000LL),
                  "timeNano", (json_int_t) ns);
  if (ev == NULL)
    return;
  if (strcmp (type, "container") == 0)
    {
      /* docker's older fields, which some scripts still read */
      json_object_set_new (ev, "status", json_string (action));
      json_object_set_new (ev, "id", json_string (id ? id : ""));
      if (json_object_get (at, "image"))
        json_object_set (ev, "from", json_object_get (at, "image"));
    }
  text = json_dumps (ev, JSON_COMPACT);
  json_decref (ev);
  if (text == NULL)
    return;
  len = strlen (text);
  if (len + 1 < PIPE_BUF)
    {
      text[len++] = '\n'; /* json_dumps leaves room: its terminating NUL becomes the newline */
      fd = open_log (path);
      if (fd >= 0)
        {
          fd = rotate_if_full (path, fd, len);
          if (fd >= 0)
            {
              if (write (fd, text, len) < 0)
                { /* an event is never worth failing the operation that made it */
                }
              close (fd);
            }
        }
    }
  free (text);
}

void
event_ctr (const char *action, const struct ctr_state *st)
{
  char code[16];
  char what[64];
  const char *attrs[] = { "image", st->image, NULL, NULL, NULL };
  if (strcmp (action, "die") == 0)
    {
      if (st->oom_killed)
        event_emit ("container", "oom", st->id, st->name, attrs);
      snprintf (code, sizeof code, "%d", st->exit_code);
      attrs[2] = "exitCode";
      attrs[3] = code;
    }
  else if (strcmp (action, "health_status") == 0)
    {
      snprintf (what, sizeof what, "health_status: %s", ctr_health_name (st->health));
      action = what;
    }
  event_emit ("container", action, st->id, st->name, attrs);
}

/* ---- reading ------------------------------------------------------------------------------------ */

struct reader {
  long long since, until;
  bool (*keep) (json_t *ev, void *ud);
  void (*print) (json_t *ev, void *ud);
  void *ud;
  bool done; /* an event past --until was seen */
  char *buf;
  size_t len, cap;
};

static void
handle_line (struct reader *r, const char *line, size_t n)
{
  json_t *ev = json_loadb (line, n, 0, NULL);
  json_int_t t;
  if (ev == NULL)
    return; /* a torn line (a crash mid-write): skipped */
  t = json_integer_value (json_object_get (ev, "timeNano"));
  if (r->until && t > r->until)
    r->done = true;
  else if (t >= r->since && (r->keep == NULL || r->keep (ev, r->ud)))
    r->print (ev, r->ud);
  json_decref (ev);
}

/* Read what fd has now and hand each whole line on; a trailing partial line waits in r->buf. */
static void
drain (struct reader *r, int fd)
{
  char chunk[65536];
  ssize_t n;
  while ((n = read (fd, chunk, sizeof chunk)) > 0)
    {
      size_t start = 0;
      if (r->len + (size_t) n > r->cap)
        {
          r->cap = (r->len + (size_t) n) * 2;
          r->buf = xrealloc (r->buf, r->cap);
        }
      memcpy (r->buf + r->len, chunk, (size_t) n);
      r->len += (size_t) n;
      for (size_t i = 0; i < r->len; i++)
        if (r->buf[i] == '\n')
          {
            handle_line (r, r->buf + start, i - start);
            start = i + 1;
          }
      memmove (r->buf, r->buf + start, r->len - start);
      r->len -= start;
    }
}

static bool
log_is (int fd, const char *path)
{
  struct stat a, b;
  return fd >= 0 && fstat (fd, &a) == 0 && stat (path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

int
events_read (long long since_ns, long long until_ns, bool follow, bool (*keep) (json_t *ev, void *ud),
             void (*print) (json_t *ev, void *ud), void *ud, cella_error_t *err)
{
  struct reader r = { .since = since_ns, .until = until_ns, .keep = keep, .print = print, .ud = ud };
  cleanup_free char *path = events_log_path (), *old = events_log_old_path ();
  int fd = -1, ino = -1, ret = 0;
  if (follow)
    {
      /* watch first, so that nothing written between the replay and the watch is missed */
      ino = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
      if (ino < 0 || inotify_add_watch (ino, paths_data_root (), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0)
        {
          ret = cella_error (err, errno, "events: watch `%s`", paths_data_root ());
          goto out;
        }
    }
  if (since_ns > 0)
    {
      int ofd = open (old, O_RDONLY | O_CLOEXEC);
      if (ofd >= 0)
        {
          drain (&r, ofd);
          r.len = 0;
          close (ofd);
        }
      fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd >= 0)
        drain (&r, fd);
    }
  else if (follow)
    {
      fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd >= 0)
        lseek (fd, 0, SEEK_END); /* only what comes from now on */
    }
  while (follow && !r.done)
    {
      struct pollfd pf = { .fd = ino, .events = POLLIN };
      int timeout = 1000;
      char evbuf[4096];
      if (until_ns)
        {
          long long left = (until_ns - now_ns ()) / 1000000LL;
          if (left < 0)
            break;
          if (left < timeout)
            timeout = (int) left + 1;
        }
      if (poll (&pf, 1, timeout) < 0 && errno != EINTR)
        {
          ret = cella_error (err, errno, "events: poll");
          break;
        }
      while (read (ino, evbuf, sizeof evbuf) > 0)
        ;
      if (fd >= 0)
        drain (&r, fd);
      if (!log_is (fd, path))
        {
          /* rotated (or made for the first time): the old file's rest was read above */
          int nfd = open (path, O_RDONLY | O_CLOEXEC);
          if (nfd >= 0)
            {
              if (fd >= 0)
                close (fd);
              fd = nfd;
              r.len = 0;
              drain (&r, fd);
            }
        }
    }
out:
  if (fd >= 0)
    close (fd);
  if (ino >= 0)
    close (ino);
  free (r.buf);
  return ret;
}
