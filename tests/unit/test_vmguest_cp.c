/* Unit tests for the guest init's `cella top` and `cella cp` commands (guest/internal.c, built
 * here with src/vm/tar.c from libcella): docker's cp rules at the destination, the errors the
 * host shows, and the process table. Each command runs in a child, as in the guest (it _exits). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "../../guest/internal.c"

static char base[64];

static char *
at (const char *rel)
{
  static char buf[8][4096];
  static int i;
  i = (i + 1) % 8;
  snprintf (buf[i], sizeof buf[i], "%s/%s", base, rel);
  return buf[i];
}

static void
put_file (const char *rel, const char *text)
{
  int fd = open (at (rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write (fd, text, strlen (text)) != (ssize_t) strlen (text))
    abort ();
  close (fd);
}

static char *
slurp_fd (int fd)
{
  static char buf[65536];
  ssize_t n = pread (fd, buf, sizeof buf - 1, 0);
  buf[n < 0 ? 0 : n] = '\0';
  return buf;
}

static char *
slurp (const char *rel)
{
  int fd = open (at (rel), O_RDONLY);
  if (fd < 0)
    return NULL;
  char *s = slurp_fd (fd);
  close (fd);
  return s;
}

/* Run argv as init would in a session: stdin from `in` (-1: /dev/null), stdout and stderr
 * captured. The exit status. */
static int
run (char **argv, int in, int out, int errfd)
{
  fflush (stdout);
  pid_t pid = fork ();
  if (pid == 0)
    {
      if (in >= 0)
        {
          lseek (in, 0, SEEK_SET);
          dup2 (in, 0);
        }
      dup2 (out, 1);
      dup2 (errfd, 2);
      guest_internal (argv);
      _exit (99); /* not ours */
    }
  int status;
  waitpid (pid, &status, 0);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* The archive of host path dir/name (as the host side writes it). */
static int
archive (const char *dir, const char *name)
{
  int fd = memfd_create ("a", 0), d = open (at (dir), O_PATH | O_DIRECTORY);
  cella_error_t err = NULL;
  if (tar_write_tree (fd, d, name, name, true, true, false, &err) < 0)
    abort ();
  close (d);
  return fd;
}

static char errtext[4096];

/* __tar-in DST MODE with the archive in: its exit status; its stderr in errtext. */
static int
tar_in_cmd (const char *dst, const char *mode, int in)
{
  char *argv[] = { GUEST_INTERNAL, "__tar-in", (char *) dst, (char *) mode, NULL };
  int out = memfd_create ("o", 0), e = memfd_create ("e", 0);
  int rc = run (argv, in, out, e);
  snprintf (errtext, sizeof errtext, "%s", slurp_fd (e));
  close (out);
  close (e);
  return rc;
}

static void
test_rules (void)
{
  int rc;
  mkdir (at ("host"), 0755);
  mkdir (at ("host/tree"), 0755);
  put_file ("host/tree/f", "tree-file\n");
  put_file ("host/file", "one\n");
  mkdir (at ("vm"), 0755);
  mkdir (at ("vm/existing"), 0755);
  put_file ("vm/plain", "old\n");
  int tree = archive ("host", "tree"), file = archive ("host", "file");
  char dst[4200];

  snprintf (dst, sizeof dst, "%s", at ("vm/new"));
  rc = tar_in_cmd (dst, "whole", tree);
  CHECK (rc == 0 && slurp ("vm/new/f"), "a directory to a missing DST: DST is the copy (%s)", errtext);
  snprintf (dst, sizeof dst, "%s", at ("vm/existing"));
  rc = tar_in_cmd (dst, "whole", tree);
  CHECK (rc == 0 && slurp ("vm/existing/tree/f"), "a directory to an existing directory: DST/NAME (%s)", errtext);
  rc = tar_in_cmd (dst, "contents", tree);
  CHECK (rc == 0 && slurp ("vm/existing/f"), "DIR/. : its contents into DST (%s)", errtext);
  rc = tar_in_cmd (dst, "whole", file);
  CHECK (rc == 0 && slurp ("vm/existing/file"), "a file into an existing directory (%s)", errtext);
  snprintf (dst, sizeof dst, "%s", at ("vm/plain"));
  rc = tar_in_cmd (dst, "whole", file);
  CHECK (rc == 0 && strcmp (slurp ("vm/plain"), "one\n") == 0, "a file onto an existing file replaces it");
  rc = tar_in_cmd (dst, "whole", tree);
  CHECK (rc == 1 && strstr (errtext, "cannot copy a directory onto the file"),
         "a directory onto a file is refused (%s)", errtext);
  snprintf (dst, sizeof dst, "%s/", at ("vm/missing-dir"));
  rc = tar_in_cmd (dst, "whole", file);
  CHECK (rc == 1 && strstr (errtext, "no such directory") && strstr (errtext, "missing-dir/"),
         "a file to a missing DST/ is refused, naming it (%s)", errtext);
  snprintf (dst, sizeof dst, "%s", at ("vm/no/parent"));
  rc = tar_in_cmd (dst, "whole", file);
  CHECK (rc == 1 && strstr (errtext, "no/parent") && strstr (errtext, "No such file"),
         "a missing parent is refused, naming the destination (%s)", errtext);
  snprintf (dst, sizeof dst, "%s", at ("vm/plain"));
  rc = tar_in_cmd (dst, "contents", file);
  CHECK (rc == 1 && strstr (errtext, "not a directory"), "FILE/. is refused (%s)", errtext);
  close (tree);
  close (file);
}

static void
test_tar_out (void)
{
  char *argv[] = { GUEST_INTERNAL, "__tar-out", at ("vm"), "nothere", "0", NULL };
  int out = memfd_create ("o", 0), e = memfd_create ("e", 0);
  int rc = run (argv, -1, out, e);
  CHECK (rc == 1 && strstr (slurp_fd (e), "vm/nothere`: No such file or directory"),
         "__tar-out of a missing path names it (%s)", slurp_fd (e));
  char *argv2[] = { GUEST_INTERNAL, "__tar-out", at ("host"), "tree", "0", NULL };
  if (ftruncate (e, 0) < 0)
    abort ();
  rc = run (argv2, -1, out, e);
  CHECK (rc == 0 && *slurp_fd (e) == '\0', "__tar-out writes the tree");
  close (e);
  close (out);
}

static void
test_ps_and_others (void)
{
  fflush (stdout);
  pid_t kid = fork ();
  if (kid == 0)
    {
      execlp ("sleep", "sleep", "4242", (char *) NULL);
      _exit (127);
    }
  usleep (200000);
  char *argv[] = { GUEST_INTERNAL, "__ps", NULL };
  int out = memfd_create ("o", 0), e = memfd_create ("e", 0);
  int rc = run (argv, -1, out, e);
  char *table = slurp_fd (out), want[64];
  snprintf (want, sizeof want, "\n%-8d %-8u sleep 4242\n", (int) kid, (unsigned) getuid ());
  CHECK (rc == 0 && strncmp (table, "PID      UID      CMD\n", 22) == 0, "__ps: the header (rc %d: %.40s)", rc, table);
  CHECK (strstr (table, want) != NULL, "__ps: a process as `PID UID CMD`");
  CHECK (strstr (table, "__ps") == NULL, "__ps leaves itself out");
  kill (kid, SIGKILL);
  waitpid (kid, NULL, 0);
  char *plain[] = { "sh", "-c", "true", NULL }, *other[] = { GUEST_INTERNAL, "__nope", NULL };
  CHECK (run (plain, -1, out, e) == 99 && run (other, -1, out, e) == 99,
         "any other command is not init's (exec'd as usual)");
  close (out);
  close (e);
}

int
main (void)
{
  snprintf (base, sizeof base, "/tmp/test_vmguest_cp.XXXXXX");
  if (mkdtemp (base) == NULL)
    return 1;
  test_rules ();
  test_tar_out ();
  test_ps_and_others ();
  char cmd[128];
  snprintf (cmd, sizeof cmd, "rm -rf %s", base);
  if (system (cmd) != 0)
    return 1;
  return tap_done ();
}
