/* Unit tests for container logs: the writer's records and rotation, the reader's joins, tail,
 * filters and follow mode, and the --since/--until time parser. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/logfile.h"
#include "tap.h"
#include "errcheck.h"

#define NS 1000000000LL
#define T_2026_11_23 1795392000LL /* 2026-11-23T00:00:00Z */

static char *
make_tmpdir (void)
{
  char *dir = xstrdup ("/tmp/cella-log-XXXXXX");
  if (mkdtemp (dir) == NULL)
    abort ();
  return dir;
}

static void
remove_tmpdir (char *dir)
{
  cleanup_free char *cmd = xasprintf ("rm -rf '%s'", dir);
  if (system (cmd) != 0)
    abort ();
  free (dir);
}

static char *
slurp (const char *path)
{
  char *s = NULL;
  cella_error_t err = NULL;
  if (read_file (path, &s, NULL, &err) < 0)
    {
      cella_error_free (&err);
      return xstrdup ("");
    }
  return s;
}

static void
put_file (const char *path, const char *text)
{
  cella_error_t err = NULL;
  if (write_file_atomic (path, text, strlen (text), 0640, &err) < 0)
    abort ();
}

/* Run log_read into two files; *out and *errout get what was printed to each. */
static int
read_log (const char *dir, const char *path, const struct log_read_opts *o, char **out, char **errout)
{
  cleanup_free char *op = xasprintf ("%s/out", dir), *ep = xasprintf ("%s/err", dir);
  cleanup_close int ofd = open (op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cleanup_close int efd = open (ep, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cella_error_t err = NULL;
  int r = log_read (path, o, ofd, efd, &err);
  if (r < 0)
    printf ("#   log_read: %s\n", err->msg);
  cella_error_free (&err);
  *out = slurp (op);
  if (errout)
    *errout = slurp (ep);
  unlink (op), unlink (ep);
  return r;
}

/* The file with each record's timestamp cut off, checking its form on the way. */
static char *
strip_times (const char *text, bool *ts_ok)
{
  char *r = xzalloc (strlen (text) + 1), *o = r;
  *ts_ok = true;
  for (const char *p = text; *p;)
    {
      const char *nl = strchr (p, '\n');
      size_t n = nl ? (size_t) (nl - p + 1) : strlen (p);
      *ts_ok &= n > 31 && p[4] == '-' && p[10] == 'T' && p[19] == '.' && p[29] == 'Z' && p[30] == ' ';
      if (n > 31)
        memcpy (o, p + 31, n - 31), o += n - 31;
      p += n;
    }
  return r;
}

static void
test_records (void)
{
  char *dir = make_tmpdir ();
  cleanup_free char *path = xasprintf ("%s/ctr.log", dir), *raw = NULL, *body = NULL, *out = NULL, *eout = NULL;
  cella_error_t err = NULL;
  struct log_writer *w = log_writer_open (path, 0, &err);
  struct stat st;
  bool ts_ok;
  mode_t mask = umask (0);
  umask (mask);

  CHECK (w != NULL, "open a new log");
  if (w == NULL)
    return;
  CHECK (stat (path, &st) == 0 && (st.st_mode & 0777) == (0640 & ~mask), "log file mode is 0640");
  log_writer_write (w, LOG_STDOUT, "hello\nwor", 9);
  log_writer_write (w, LOG_STDERR, "oops\n", 5);
  log_writer_write (w, LOG_STDOUT, "ld\n", 3);
  log_writer_write (w, LOG_STDOUT, "part", 4);
  log_writer_flush (w);
  log_writer_write (w, LOG_STDOUT, "ial\n\n", 5);
  CHECK (log_writer_write (w, 3, "x\n", 2) < 0 && errno == EINVAL, "an unknown stream is refused");
  log_writer_close (w);
  log_writer_close (NULL);

  raw = slurp (path);
  body = strip_times (raw, &ts_ok);
  CHECK (ts_ok, "every record starts with a 2026-11-23T10:00:00.123456789Z-style time");
  CHECK_STR (body, "stdout F hello\nstderr F oops\nstdout F world\nstdout P part\nstdout F ial\nstdout F \n",
             "F records for lines, a P record for a flushed partial line");
  CHECK (read_log (dir, path, NULL, &out, &eout) == 0, "read it back");
  CHECK_STR (out, "hello\nworld\npartial\n\n", "stdout lines, P joined to its F");
  CHECK_STR (eout, "oops\n", "stderr lines go to err_fd");

  CHECK (log_writer_open ("/nonexistent-dir/x.log", 0, &err) == NULL && err_has (&err, "`/nonexistent-dir/x.log`"),
         "open in a missing directory fails, naming the path");
  remove_tmpdir (dir);
}

static void
test_long_line (void)
{
  char *dir = make_tmpdir ();
  cleanup_free char *path = xasprintf ("%s/ctr.log", dir), *line = xmalloc (40002), *raw = NULL, *out = NULL;
  cella_error_t err = NULL;
  struct log_writer *w = log_writer_open (path, 0, &err);
  size_t tags = 0, longest = 0;
  char tag[4] = "";

  memset (line, 'x', 40000);
  line[40000] = '\n', line[40001] = '\0';
  /* in two pieces, so the writer must keep the first across calls */
  log_writer_write (w, LOG_STDOUT, line, 10000);
  log_writer_write (w, LOG_STDOUT, line + 10000, 30001);
  log_writer_close (w);
  raw = slurp (path);
  for (char *p = raw; *p; p = strchr (p, '\n') + 1)
    {
      size_t n = strchr (p, '\n') - p;
      longest = n > longest ? n : longest;
      if (tags < 3)
        tag[tags] = p[38];
      tags++;
    }
  CHECK (tags == 3 && strcmp (tag, "PPF") == 0, "a 40000-byte line is written as P, P, F records (got %zu: %s)", tags,
         tag);
  CHECK (longest <= 16384 + 40, "no record holds more than 16 KiB of text");
  CHECK (read_log (dir, path, NULL, &out, NULL) == 0 && strcmp (out, line) == 0, "log_read joins them into the line");
  remove_tmpdir (dir);
}

static void
test_timestamps (void)
{
  char *dir = make_tmpdir ();
  cleanup_free char *path = xasprintf ("%s/ctr.log", dir), *out = NULL, *eout = NULL;
  struct log_read_opts o = { .tail = -1, .timestamps = true };
  char buf[40];

  log_format_time (1700000000123456789LL, buf, sizeof buf);
  CHECK_STR (buf, "2023-11-14T22:13:20.123456789Z", "log_format_time: 9 fraction digits, UTC");
  log_format_time (0, buf, sizeof buf);
  CHECK_STR (buf, "1970-01-01T00:00:00.000000000Z", "log_format_time of the epoch");
  put_file (path, "2026-11-23T10:00:00.000000001Z stdout F a\n"
                  "2026-11-23T10:00:01Z stdout P b\n"
                  "2026-11-23T10:00:02Z stderr F e\n"
                  "2026-11-23T10:00:03Z stdout F c\n");
  CHECK (read_log (dir, path, &o, &out, &eout) == 0, "read with timestamps");
  CHECK_STR (out, "2026-11-23T10:00:00.000000001Z a\n2026-11-23T10:00:01Z bc\n",
             "each line is prefixed once with its first record's time");
  CHECK_STR (eout, "2026-11-23T10:00:02Z e\n", "stderr lines get their time too");
  remove_tmpdir (dir);
}

static void
test_since_until (void)
{
  char *dir = make_tmpdir ();
  cleanup_free char *path = xasprintf ("%s/ctr.log", dir);
  long long t10 = T_2026_11_23 * NS + 10 * 3600 * NS;
  struct log_read_opts o = { .tail = -1 };
  char *out = NULL;

  put_file (path, "2026-11-23T10:00:00Z stdout F one\n"
                  "2026-11-23T10:00:59Z stdout P straddles \n"
                  "2026-11-23T10:01:01Z stdout F since\n"
                  "2026-11-23T11:01:00+01:00 stdout F two\n"
                  "2026-11-23T10:02:00Z stdout F three\n");
  o.since_ns = t10 + 60 * NS;
  CHECK (read_log (dir, path, &o, &out, NULL) == 0, "read with since");
  CHECK_STR (out, "two\nthree\n", "since: records at or after the time (a line counts by its start)");
  free (out);
  o.since_ns = 0, o.until_ns = t10 + 120 * NS;
  read_log (dir, path, &o, &out, NULL);
  CHECK_STR (out, "one\nstraddles since\ntwo\n", "until: records before the time");
  free (out);
  o.since_ns = t10 + 1, o.until_ns = t10 + 120 * NS;
  read_log (dir, path, &o, &out, NULL);
  CHECK_STR (out, "straddles since\ntwo\n", "since and until together");
  free (out);
  o.tail = 1;
  read_log (dir, path, &o, &out, NULL);
  CHECK_STR (out, "two\n", "tail counts only the lines that pass since/until");
  free (out);
  remove_tmpdir (dir);
}

static void
test_tail (void)
{
  char *dir = make_tmpdir ();
  cleanup_free char *path = xasprintf ("%s/ctr.log", dir), *old = xasprintf ("%s.1", path);
  struct log_read_opts o = { .tail = 4 };
  char *out = NULL, *eout = NULL;

  put_file (old, "2026-11-23T10:00:00Z stdout F 1\n"
                 "2026-11-23T10:00:01Z stdout F 2\n"
                 "2026-11-23T10:00:02Z stdout P 3a\n");
  put_file (path, "2026-11-23T10:00:03Z stderr F e4\n"
                  "2026-11-23T10:00:04Z stdout F 3b\n"
                  "not a record\n"
                  "2026-11-23T10:00:05Z stdout F 6\n");
  CHECK (read_log (dir, path, &o, &out, &eout) == 0, "tail 4 across PATH.1 and PATH");
  CHECK_STR (out, "3a3b\nnot a record\n6\n", "tail 4: the last four lines of both files, P joined across the files");
  CHECK_STR (eout, "e4\n", "... the stderr line among them on err_fd");
  free (out), free (eout);
  o.tail = 3;
  read_log (dir, path, &o, &out, &eout);
  CHECK_STR (out, "not a record\n6\n", "tail 3: lines are ordered by where they start (3a3b began before e4)");
  CHECK_STR (eout, "e4\n", "tail 3 keeps the stderr line");
  free (out), free (eout);
  o.tail = 2;
  read_log (dir, path, &o, &out, &eout);
  CHECK_STR (out, "not a record\n6\n", "tail 2");
  CHECK_STR (eout, "", "tail 2 has no stderr line");
  free (out), free (eout);
  o.tail = 100;
  read_log (dir, path, &o, &out, NULL);
  CHECK_STR (out, "1\n2\n3a3b\nnot a record\n6\n", "tail larger than the log prints all of it, old file first");
  free (out);
  o.tail = 0;
  read_log (dir, path, &o, &out, &eout);
  CHECK (out[0] == '\0' && eout[0] == '\0', "tail 0 prints nothing");
  free (out), free (eout);
  remove_tmpdir (dir);
}

static int
count_entries (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir (d)) != NULL)
    n += e->d_name[0] != '.';
  if (d)
    closedir (d);
  return n;
}

static void
write_lines (struct log_writer *w, int from, int to)
{
  for (int i = from; i < to; i++)
    {
      char buf[16];
      int n = snprintf (buf, sizeof buf, "line-%02d\n", i);
      log_writer_write (w, LOG_STDOUT, buf, n);
    }
}

static void
test_rotation (void)
{
  char *dir = make_tmpdir ();
  cleanup_free char *path = xasprintf ("%s/ctr.log", dir), *old = xasprintf ("%s.1", path);
  cleanup_free char *cur = NULL, *prev = NULL, *out = NULL;
  cella_error_t err = NULL;
  /* each record is 48 bytes: four fit in 200 */
  struct log_writer *w = log_writer_open (path, 200, &err);
  struct stat st;

  write_lines (w, 0, 10);
  log_writer_close (w);
  prev = slurp (old), cur = slurp (path);
  CHECK (strstr (prev, "line-04") && strstr (prev, "line-07") && !strstr (prev, "line-03") && !strstr (prev, "line-08"),
         "PATH.1 holds the previous file (lines 4-7)");
  CHECK (strstr (cur, "line-08") && strstr (cur, "line-09") && !strstr (cur, "line-07"), "PATH restarted (lines 8-9)");
  CHECK (count_entries (dir) == 2, "only one old file is kept");
  CHECK (stat (path, &st) == 0 && st.st_size == 96, "PATH is 96 bytes");
  /* a reopened writer counts what the file already holds */
  w = log_writer_open (path, 200, &err);
  write_lines (w, 10, 13);
  log_writer_close (w);
  free (prev), free (cur);
  prev = slurp (old), cur = slurp (path);
  CHECK (strstr (prev, "line-08") && strstr (prev, "line-11") && strstr (cur, "line-12") && !strstr (cur, "line-11"),
         "a reopened writer rotates at max_size counting the existing size");
  CHECK (read_log (dir, path, NULL, &out, NULL) == 0, "read a rotated log");
  CHECK_STR (out, "line-08\nline-09\nline-10\nline-11\nline-12\n", "reading gives PATH.1 then PATH");
  remove_tmpdir (dir);
}

static void
test_parse_time (void)
{
  static const struct {
    const char *s;
    long long ns;
  } good[] = {
    { "2026-11-23T10:00:00Z", (T_2026_11_23 + 36000) * NS },
    { "2026-11-23t10:00:00z", (T_2026_11_23 + 36000) * NS },
    { "2026-11-23T10:00:00.5Z", (T_2026_11_23 + 36000) * NS + 500000000 },
    { "2026-11-23T10:00:00.1234567891Z", (T_2026_11_23 + 36000) * NS + 123456789 },
    { "2026-11-23T11:30:00+01:30", (T_2026_11_23 + 36000) * NS },
    { "2026-11-23T08:00:00.000000007-02:00", (T_2026_11_23 + 36000) * NS + 7 },
    { "2026-11-23", T_2026_11_23 * NS },
    { "2024-02-29", 1709164800LL * NS },
    { "1700000000", 1700000000LL * NS },
    { "1700000000.5", 1700000000LL * NS + 500000000 },
    { "0.000000001", 1 },
  };
  static const struct {
    const char *s;
    long long ago;
  } durations[] = {
    { "10m", 600 * NS },    { "1h30m", 5400 * NS }, { "45s", 45 * NS },
    { "500ms", NS / 2 },    { "1.5h", 5400 * NS },  { "2us", 2000 },
    { "3\xc2\xb5s", 3000 }, { "7ns", 7 },           { "1h2m3s4ms5us6ns", 3723 * NS + 4005006 },
  };
  static const char *const bad[] = {
    "",
    "yesterday",
    "2026-13-01",
    "2026-02-30",
    "2026-11-23T25:00:00Z",
    "2026-11-23T10:00:00",
    "2026-11-23T10:00:00+1:00",
    "10x",
    "1h30",
    "1.2.3",
    "-5m",
    "2026-11-23T10:00Z",
    "1e9",
    "99999999999999999999h",
  };
  long long now = 1800000000LL * NS, ns;
  cella_error_t err = NULL;

  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    {
      ns = -1;
      CHECK (log_parse_time (good[i].s, now, &ns, &err) == 0 && ns == good[i].ns, "parse time `%s` (got %lld)",
             good[i].s, ns);
      cella_error_free (&err);
    }
  for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++)
    {
      ns = -1;
      CHECK (log_parse_time (durations[i].s, now, &ns, &err) == 0 && ns == now - durations[i].ago,
             "duration `%s` is that long before now", durations[i].s);
      cella_error_free (&err);
    }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      cleanup_free char *want = xasprintf ("time `%s`", bad[i]);
      CHECK (log_parse_time (bad[i], now, &ns, &err) < 0 && err_has (&err, want), "bad time `%s` is refused, naming it",
             bad[i]);
    }
}

static void
test_missing (void)
{
  char *dir = make_tmpdir ();
  cleanup_free char *path = xasprintf ("%s/none.log", dir);
  struct log_read_opts o = { .tail = 5, .timestamps = true };
  char *out = NULL, *eout = NULL;
  CHECK (read_log (dir, path, &o, &out, &eout) == 0 && out[0] == '\0' && eout[0] == '\0', "a missing log is empty");
  free (out), free (eout);
  remove_tmpdir (dir);
}

struct follow_state {
  pid_t child;
  int calls;
  long long deadline;
  bool timed_out;
};

static long long
mono_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Follow while the writer child runs: once it has exited, one last drain and stop. */
static bool
child_running (void *ud)
{
  struct follow_state *s = ud;
  s->calls++;
  if (mono_ms () > s->deadline)
    {
      s->timed_out = true;
      kill (s->child, SIGKILL);
    }
  return waitpid (s->child, NULL, WNOHANG) == 0;
}

/* Another process appends: 12 lines, 30 ms apart, rotating once half way. */
static void __attribute__ ((noreturn)) append_child (const char *path, bool wait_first)
{
  cella_error_t err = NULL;
  struct log_writer *w;
  if (wait_first)
    usleep (200000);
  w = log_writer_open (path, 300, &err);
  if (w == NULL)
    _exit (1);
  for (int i = 0; i < 12; i++)
    {
      usleep (30000);
      write_lines (w, i, i + 1);
    }
  log_writer_write (w, LOG_STDERR, "bye", 3);
  log_writer_close (w);
  _exit (0);
}

static void
run_follow (const char *dir, const char *path, long long tail, const char *want, const char *what)
{
  struct follow_state s = { .deadline = mono_ms () + 20000 };
  struct log_read_opts o = { .tail = tail, .follow = true, .keep_following = child_running, .ud = &s };
  char *out = NULL, *eout = NULL;
  fflush (stdout);
  s.child = fork ();
  if (s.child < 0)
    abort ();
  if (s.child == 0)
    append_child (path, true);
  CHECK (read_log (dir, path, &o, &out, &eout) == 0 && !s.timed_out, "%s: follow returns when told to stop", what);
  CHECK_STR (out, want, what);
  CHECK_STR (eout, "bye", "the partial stderr line flushed at close is printed, no newline added");
  CHECK (s.calls > 2, "keep_following was asked repeatedly (%d times)", s.calls);
  free (out), free (eout);
}

static void
test_follow (void)
{
  char *dir = make_tmpdir ();
  cleanup_free char *path = xasprintf ("%s/ctr.log", dir), *old = xasprintf ("%s.1", path);
  const char *lines = "line-00\nline-01\nline-02\nline-03\nline-04\nline-05\n"
                      "line-06\nline-07\nline-08\nline-09\nline-10\nline-11\n";
  cleanup_free char *want = xasprintf ("before-2\n%s", lines);
  struct stat st;

  put_file (path, "2026-11-23T10:00:00Z stdout F before-1\n2026-11-23T10:00:01Z stdout F before-2\n");
  run_follow (dir, path, 1, want, "tail 1 then follow: lines another process appends, across its rotation");
  CHECK (stat (old, &st) == 0, "the writer did rotate while followed");
  unlink (path), unlink (old);
  run_follow (dir, path, -1, lines, "follow a log that does not exist yet");
  remove_tmpdir (dir);
}

int
main (void)
{
  test_records ();
  test_long_line ();
  test_timestamps ();
  test_since_until ();
  test_tail ();
  test_rotation ();
  test_parse_time ();
  test_missing ();
  test_follow ();
  return tap_done ();
}
