/* Unit tests for src/util/util.c's helpers: remove_tree on trees deeper than the file
 * descriptors a process may hold, and on ones with symlinks out; write_file_atomic next to
 * symlinks planted at temp-file names an attacker could predict; state_dir_ensure on what
 * another user could have put in its place; signals_default; the string vector helpers; the helpers
 * other layers share (util/proc.h's /proc/PID/stat reader, util/json.h's typed reads,
 * signal_parse, ctr_name_valid). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "util/json.h"
#include "util/proc.h"
#include "util/util.h"

static char base[64];

static const char *__attribute__ ((format (printf, 1, 2))) P (const char *fmt, ...)
{
  static char ring[8][PATH_MAX];
  static unsigned i;
  char *b = ring[i++ % 8];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (b, PATH_MAX, fmt, ap);
  va_end (ap);
  return b;
}

static void
must (int r, const char *what)
{
  if (r < 0)
    {
      perror (what);
      exit (2);
    }
}

static void
put (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  must (fd, path);
  must (write_all (fd, text, strlen (text)), path);
  close (fd);
}

static char *
slurp (const char *path)
{
  char *text = NULL;
  if (read_file (path, &text, NULL, NULL) < 0)
    return NULL;
  return text;
}

/* DEPTH directories below base/NAME, each holding a file; made with *at() calls (no path of
 * that length could be given to mkdir). */
static void
make_deep (const char *name, int depth)
{
  int fd = open (base, O_PATH | O_DIRECTORY | O_CLOEXEC);
  must (fd, base);
  must (mkdirat (fd, name, 0755), name);
  for (int i = 0; i < depth; i++)
    {
      int next = openat (fd, i ? "d" : name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      must (next, "open a level");
      close (fd);
      fd = next;
      must (mkdirat (fd, "d", 0755), "mkdir a level");
      if (i % 1000 == 0)
        {
          int f = openat (fd, "f", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
          must (f, "a file in a level");
          close (f);
        }
    }
  close (fd);
}

static void
test_remove_deep (void)
{
  struct rlimit old, low;
  int r;
  make_deep ("deep", 20000);
  /* no descriptor per level: 64 are plenty for any depth */
  must (getrlimit (RLIMIT_NOFILE, &old), "getrlimit");
  low = old;
  low.rlim_cur = 64;
  must (setrlimit (RLIMIT_NOFILE, &low), "setrlimit");
  r = remove_tree (P ("%s/deep", base));
  must (setrlimit (RLIMIT_NOFILE, &old), "setrlimit");
  CHECK (r == 0, "remove_tree of a 20000-deep tree with 64 descriptors succeeds");
  CHECK (access (P ("%s/deep", base), F_OK) < 0 && errno == ENOENT, "the deep tree is gone");
}

static void
test_remove_wide_and_links (void)
{
  must (mkdir (P ("%s/w", base), 0755), "mkdir");
  must (mkdir (P ("%s/outside", base), 0755), "mkdir");
  put (P ("%s/outside/keep", base), "keep");
  for (int i = 0; i < 300; i++)
    {
      must (mkdir (P ("%s/w/d%d", base, i), 0755), "mkdir");
      put (P ("%s/w/d%d/f", base, i), "x");
      put (P ("%s/w/f%d", base, i), "x");
    }
  must (symlink (P ("%s/outside", base), P ("%s/w/d7/link", base)), "symlink");
  must (symlink ("../../outside/keep", P ("%s/w/d8/rel", base)), "symlink");
  /* a directory with no permissions (overlay's work/work) */
  must (mkdir (P ("%s/w/d9/closed", base), 0), "mkdir");
  CHECK (remove_tree (P ("%s/w", base)) == 0, "remove_tree of a wide tree with symlinks out");
  CHECK (access (P ("%s/w", base), F_OK) < 0, "the wide tree is gone");
  CHECK (access (P ("%s/outside/keep", base), F_OK) == 0, "what the symlinks point to is untouched");
  CHECK (remove_tree (P ("%s/nosuch", base)) == 0, "remove_tree of nothing succeeds");
  put (P ("%s/plain", base), "x");
  CHECK (remove_tree (P ("%s/plain", base)) == 0 && access (P ("%s/plain", base), F_OK) < 0,
         "remove_tree of a file removes it");
}

/* The old temp name was PATH.tmp.PID: a symlink planted there made the write land on its target. */
static void
test_atomic_write_planted_symlinks (void)
{
  const char *path = P ("%s/pidfile", base);
  char *text;
  DIR *d;
  struct dirent *e;
  int left = 0;
  put (P ("%s/victim", base), "precious");
  must (symlink (P ("%s/victim", base), P ("%s.tmp.%d", path, (int) getpid ())), "symlink");
  must (symlink (P ("%s/victim", base), P ("%s.tmp", path)), "symlink");
  CHECK (write_file_atomic (path, "1234", 4, 0644, NULL) == 0, "write_file_atomic next to planted symlinks");
  text = slurp (P ("%s/victim", base));
  CHECK_STR (text, "precious", "the symlinks' target is untouched");
  free (text);
  text = slurp (path);
  CHECK_STR (text, "1234", "the file has the new content");
  free (text);
  {
    struct stat st;
    CHECK (lstat (path, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 07777) == 0644,
           "the file is a regular file with the mode asked for");
  }
  /* only what we planted and the file are left: no temp file */
  d = opendir (base);
  while (d && (e = readdir (d)) != NULL)
    if (strncmp (e->d_name, "pidfile.tmp", 11) == 0)
      {
        struct stat st;
        if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK (st.st_mode))
          left++;
      }
  if (d)
    closedir (d);
  CHECK (left == 0, "no temp file is left behind");
}

static bool
error_names (int r, cella_error_t *err, const char *needle)
{
  bool ok = r < 0 && *err && strstr ((*err)->msg, needle);
  if (!ok)
    printf ("#   got: %d %s\n", r, *err ? (*err)->msg : "(no error)");
  cella_error_free (err);
  return ok;
}

static void
test_state_dir_ensure (void)
{
  cella_error_t err = NULL;
  struct stat st;
  const char *fresh = P ("%s/s/new/run", base), *open_dir = P ("%s/s/open", base);
  CHECK (state_dir_ensure (fresh, &err) == 0, "a missing state dir is made");
  CHECK (stat (fresh, &st) == 0 && S_ISDIR (st.st_mode) && (st.st_mode & 07777) == 0700, "with mode 0700");
  CHECK (state_dir_ensure (fresh, &err) == 0, "and accepted the next time");
  must (mkdir (open_dir, 0700), "mkdir");
  must (chmod (open_dir, 0777), "chmod");
  CHECK (error_names (state_dir_ensure (open_dir, &err), &err, "others may write"), "one others may write is refused");
  must (chmod (open_dir, 0775), "chmod");
  CHECK (error_names (state_dir_ensure (open_dir, &err), &err, open_dir), "one its group may write is refused");
  must (chmod (open_dir, 0755), "chmod");
  CHECK (state_dir_ensure (open_dir, &err) == 0 && stat (open_dir, &st) == 0 && (st.st_mode & 07777) == 0700,
         "one others may only read is made 0700");
  must (symlink (fresh, P ("%s/s/link", base)), "symlink");
  CHECK (error_names (state_dir_ensure (P ("%s/s/link", base), &err), &err, "symlink"), "a symlink is refused");
  put (P ("%s/s/file", base), "x");
  CHECK (error_names (state_dir_ensure (P ("%s/s/file", base), &err), &err, "not a directory"), "a file is refused");
  if (geteuid () == 0)
    {
      const char *theirs = P ("%s/s/theirs", base);
      must (mkdir (theirs, 0700), "mkdir");
      must (chown (theirs, 65534, 65534), "chown");
      CHECK (error_names (state_dir_ensure (theirs, &err), &err, "belongs to uid 65534"), "another user's is refused");
    }
  else
    tap_skip ("needs root to make a directory of another user's", "another user's is refused");
}

static void
on_signal (int sig)
{
  (void) sig;
}

static void
test_signals_default (void)
{
  pid_t pid = fork ();
  int status;
  must (pid, "fork");
  if (pid == 0)
    {
      struct sigaction ign = { .sa_handler = SIG_IGN }, cgt = { .sa_handler = on_signal }, got;
      struct {
        void (*handler) (int);
        unsigned long flags;
        void (*restorer) (void);
        uint64_t mask;
      } raw = { .handler = SIG_IGN }, rgot;
      sigset_t set, now;
      sigemptyset (&set);
      sigaddset (&set, SIGUSR1);
      sigaction (SIGPIPE, &ign, NULL);
      sigaction (SIGINT, &ign, NULL);
      sigaction (SIGUSR2, &cgt, NULL);
      sigaction (SIGRTMAX, &ign, NULL);
      syscall (SYS_rt_sigaction, 33, &raw, NULL, sizeof raw.mask); /* glibc's own, as GNU make ignores it */
      sigprocmask (SIG_BLOCK, &set, NULL);
      signals_default ();
      sigaction (SIGPIPE, NULL, &got);
      if (got.sa_handler != SIG_DFL)
        _exit (1);
      sigaction (SIGINT, NULL, &got);
      if (got.sa_handler != SIG_DFL)
        _exit (2);
      sigaction (SIGUSR2, NULL, &got);
      if (got.sa_handler != SIG_DFL)
        _exit (4);
      sigaction (SIGRTMAX, NULL, &got);
      if (got.sa_handler != SIG_DFL)
        _exit (5);
      if (syscall (SYS_rt_sigaction, 33, NULL, &rgot, sizeof rgot.mask) < 0 || rgot.handler != SIG_DFL)
        _exit (6);
      sigprocmask (SIG_SETMASK, NULL, &now);
      _exit (sigismember (&now, SIGUSR1) ? 3 : 0);
    }
  must (waitpid (pid, &status, 0), "waitpid");
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0,
         "signals_default: no SIG_IGN (1-64, glibc's 33 too), no handler, nothing blocked (child said %d)",
         WIFEXITED (status) ? WEXITSTATUS (status) : -1);

  CHECK (signals_not_default_in ("Name:\tx\nSigBlk:\t0000000000000001\nSigIgn:\t0000000000001002\n"
                                 "SigCgt:\t8000000000000000\nCapInh:\t0\n")
             == (0x1002ULL | 0x8000000000000000ULL),
         "signals_not_default_in: SigIgn | SigCgt");
  CHECK (signals_not_default_in ("Name:\tx\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n") == 0,
         "signals_not_default_in: all default");
  CHECK (signals_not_default_in ("Name:\tx\nSigIgn:\t0000000000001000\n") == ~0ULL,
         "signals_not_default_in: SigCgt missing: every signal");
  CHECK (signals_not_default_in ("SigIgn:\tzz\nSigCgt:\t0\n") == ~0ULL && signals_not_default_in (NULL) == ~0ULL,
         "signals_not_default_in: malformed: every signal");
  CHECK (signals_not_default_in ("XSigIgn:\t0\nXSigCgt:\t0\n") == ~0ULL,
         "signals_not_default_in: a field name only at the start of a line");
}

static void
test_strv_growth (void)
{
  char **v = NULL, **more = strv_new (3);
  more[0] = xstrdup ("b");
  more[1] = xstrdup ("c");
  more[2] = xstrdup ("d");
  CHECK (more[3] == NULL, "strv_new leaves the vector terminated");
  strv_push (&v, "a");
  strv_append_all (&v, more);
  strv_append_all (&v, NULL);
  CHECK (strv_len (v) == 4 && strcmp (v[0], "a") == 0 && strcmp (v[3], "d") == 0 && v[4] == NULL,
         "strv_append_all appends copies in order");
  CHECK (v[1] != more[0], "the strings are copied");
  strv_free (v);
  strv_free (more);
}

static void
test_proc_stat (void)
{
  struct proc_stat st;
  pid_t child;
  unsigned long long self = proc_start_time (getpid ());
  CHECK (proc_stat_read (getpid (), &st) == 0 && st.ppid == getppid () && st.start_time == self && self != 0,
         "proc_stat_read: this process's parent and start time");
  CHECK (proc_alive (getpid (), self) && !proc_alive (getpid (), self + 1), "proc_alive checks the start time");
  CHECK (proc_stat_read (0, &st) < 0 && proc_start_time (-1) == 0, "no pid, no stat");
  child = fork ();
  if (child == 0)
    _exit (0);
  /* a zombie until it is waited for: it has finished */
  for (int i = 0; i < 1000 && proc_stat_read (child, &st) == 0 && st.state != 'Z'; i++)
    usleep (1000);
  CHECK (proc_stat_read (child, &st) == 0 && st.state == 'Z' && proc_start_time (child) == 0,
         "a zombie has a stat but no start time");
  waitpid (child, NULL, 0);
  CHECK (proc_stat_read (child, &st) < 0 && proc_start_time (child) == 0, "a reaped process has none");
}

static void
test_json_reads (void)
{
  json_t *o
      = json_pack ("{s:s, s:I, s:[s, i, s], s:i}", "s", "text", "i", (json_int_t) 1LL << 40, "v", "a", 1, "b", "n", 7);
  char *s = json_member_str (o, "s"), *none = json_member_str (o, "n"), **v = json_strv_read (json_object_get (o, "v"));
  CHECK_STR (s, "text", "json_member_str");
  CHECK (none == NULL && json_member_str (NULL, "s") == NULL, "json_member_str: NULL for a number, a NULL object");
  CHECK (json_member_int (o, "i") == 1LL << 40 && json_member_int (o, "s") == 0, "json_member_int");
  CHECK (v && strv_len (v) == 2 && strcmp (v[0], "a") == 0 && strcmp (v[1], "b") == 0,
         "json_strv_read keeps the strings of an array");
  CHECK (json_strv_read (json_object_get (o, "s")) == NULL, "json_strv_read: NULL for a non-array");
  free (s);
  strv_free (v);
  json_decref (o);
}

static void
test_names_and_signals (void)
{
  CHECK (signal_parse ("TERM") == SIGTERM && signal_parse ("sigkill") == SIGKILL && signal_parse ("9") == SIGKILL
             && signal_parse ("NOPE") == -1,
         "signal_parse: names, any case, SIG prefix, numbers");
  CHECK (ctr_name_valid ("web_1.a-b") && !ctr_name_valid ("_x") && !ctr_name_valid ("") && !ctr_name_valid ("a/b"),
         "ctr_name_valid");
  CHECK (now_ns () > 1600000000LL * 1000000000LL, "now_ns is the wall clock");
}

int
main (void)
{
  snprintf (base, sizeof base, "/tmp/util-unit.XXXXXX");
  if (mkdtemp (base) == NULL)
    {
      perror ("mkdtemp");
      return 2;
    }
  test_remove_deep ();
  test_remove_wide_and_links ();
  test_atomic_write_planted_symlinks ();
  must (mkdir (P ("%s/s", base), 0700), "mkdir");
  test_state_dir_ensure ();
  test_signals_default ();
  test_strv_growth ();
  test_proc_stat ();
  test_json_reads ();
  test_names_and_signals ();
  remove_tree (base);
  return tap_done ();
}
