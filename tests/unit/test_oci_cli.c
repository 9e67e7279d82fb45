/* Unit tests for the OCI command line's pure parts: when an invocation is an OCI one
 * (oci_cli_wanted), container ids, and the state record's round trip and status. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/cli.h"
#include "oci/state.h"
#include "tap.h"

static bool
wanted (const char *a0, ...)
{
  char *argv[16];
  int argc = 0;
  va_list ap;
  argv[argc++] = (char *) a0;
  va_start (ap, a0);
  for (char *s; (s = va_arg (ap, char *)) && argc < 15;)
    argv[argc++] = s;
  va_end (ap);
  argv[argc] = NULL;
  return oci_cli_wanted (argc, argv);
}

static void
test_detection (void)
{
  /* what podman 4.3 + conmon pass (no global option) */
  CHECK (wanted ("cella", "create", "--bundle", "/b", "--pid-file", "/p", "abc", NULL), "create --bundle");
  CHECK (wanted ("cella", "create", "-b", "/b", "abc", NULL), "create -b");
  /* runtime-tools' validation programs put --pid-file first */
  CHECK (wanted ("cella", "create", "--pid-file", "/p", "--bundle", "/b", "abc", NULL), "create --pid-file F --bundle");
  CHECK (wanted ("cella", "create", "--pid-file=/p", "-b", "/b", "abc", NULL), "create --pid-file=F -b");
  CHECK (wanted ("cella", "create", "--console-socket", "/s", "--bundle", "/b", "abc", NULL),
         "create --console-socket S --bundle");
  CHECK (wanted ("cella", "run", "--bundle=/b", "abc", NULL), "run --bundle=");
  CHECK (wanted ("cella", "delete", "--force", "abc", NULL), "delete");
  CHECK (wanted ("cella", "exec", "--pid-file", "/p", "--process", "/f", "--detach", "abc", NULL), "exec --process");
  CHECK (wanted ("cella", "state", "x", NULL) && wanted ("cella", "list", NULL) && wanted ("cella", "features", NULL)
             && wanted ("cella", "spec", NULL),
         "OCI-only commands");
  /* pause, events, update are the engine's too: the OCI runtime's with its own options (or an
   * operand naming an OCI container, which no container here is) */
  CHECK (!wanted ("cella", "pause", "x", NULL) && !wanted ("cella", "events", "x", NULL)
             && !wanted ("cella", "update", "--memory", "1g", "x", NULL),
         "pause, events, update of an engine container");
  CHECK (wanted ("cella", "update", "--resources", "/r.json", "x", NULL)
             && wanted ("cella", "events", "--stats", "x", NULL)
             && wanted ("cella", "--root", "/r", "pause", "x", NULL),
         "pause, events, update with the OCI runtime's options");
  /* a global option first; a runc-like name */
  CHECK (wanted ("cella", "--root", "/r", "start", "x", NULL), "--root first");
  CHECK (wanted ("cella", "--log-format=json", "kill", "x", NULL), "--log-format= first");
  CHECK (wanted ("cella", "--systemd-cgroup", "ps", "x", NULL), "--systemd-cgroup first");
  CHECK (wanted ("/usr/bin/runc", "start", "x", NULL), "named runc");
  CHECK (wanted ("/usr/local/bin/cella-runc", "run", "x", NULL), "named cella-runc");
  CHECK (wanted ("cella", "kill", "--all", "x", "KILL", NULL), "kill --all");
  /* the engine's own */
  CHECK (!wanted ("cella", "run", "busybox", "echo", "hi", NULL), "engine run");
  CHECK (!wanted ("cella", "run", "-d", "--name", "web", "busybox", NULL), "engine run -d");
  CHECK (!wanted ("cella", "create", "--name", "job", "busybox", NULL), "engine create");
  CHECK (!wanted ("cella", "exec", "-it", "web", "sh", NULL), "engine exec");
  CHECK (!wanted ("cella", "exec", "-d", "web", "sh", NULL) && !wanted ("cella", "exec", "--detach", "web", "sh", NULL),
         "engine exec -d");
  CHECK (!wanted ("cella", "ps", "-a", NULL), "engine ps");
  CHECK (!wanted ("cella", "kill", "-s", "TERM", "web", NULL), "engine kill");
  CHECK (!wanted ("cella", "--help", NULL) && !wanted ("cella", "--version", NULL) && !wanted ("cella", NULL),
         "--help, --version, nothing");
  CHECK (!wanted ("/usr/bin/cella", "start", "no-such-oci-container-xyz", NULL), "engine start");
  CHECK (!wanted ("cella", "start", "-a", "job", NULL), "engine start -a");
  CHECK (!wanted ("cella", "ps", "--format", "json", NULL), "engine ps --format");
}

static void
test_ids (void)
{
  char *dir = NULL;
  CHECK (oci_dir ("/r", "abc-1.2_x+y", &dir, NULL) == 0 && dir && strcmp (dir, "/r/abc-1.2_x+y") == 0, "valid id");
  free (dir);
  dir = NULL;
  CHECK (oci_dir ("/r", "../x", &dir, NULL) < 0 && dir == NULL, "../x refused");
  CHECK (oci_dir ("/r", "a/b", &dir, NULL) < 0, "a/b refused");
  CHECK (oci_dir ("/r", "..", &dir, NULL) < 0 && oci_dir ("/r", "", &dir, NULL) < 0, ".. and empty refused");
}

static void
test_state_roundtrip (void)
{
  char root[] = "/tmp/test-oci-cli.XXXXXX";
  struct oci_state st = { 0 }, back;
  cella_error_t err = NULL;
  char *dir = NULL, *fifo;
  if (mkdtemp (root) == NULL)
    {
      tap_skip ("mkdtemp failed", "state round trip");
      return;
    }
  CHECK (oci_dir_create (root, "c1", &dir, &err) == 0, "dir create");
  CHECK (oci_dir_create (root, "c1", &dir, &err) < 0 && err && strstr (err->msg, "already exists"), "duplicate");
  cella_error_free (&err);
  st.id = xstrdup ("c1");
  st.bundle = xstrdup ("/b");
  st.created = xstrdup ("2026-01-01T00:00:00Z");
  st.annotations = xstrdup ("{\"k\":\"v\"}");
  st.pid = getpid ();
  st.start_time = oci_proc_start_time (getpid (), NULL);
  CHECK (st.start_time > 0, "our own start time");
  CHECK (oci_state_write (root, &st, &err) == 0, "write");
  CHECK (oci_state_read (root, "c1", &back, &err) == 0, "read back");
  CHECK (back.pid == st.pid && back.start_time == st.start_time && strcmp (back.bundle, "/b") == 0,
         "fields round trip");
  CHECK_STR (oci_state_status (root, &back), "running", "alive, no fifo: running");
  fifo = xasprintf ("%s/exec.fifo", dir);
  mkfifo (fifo, 0600);
  CHECK_STR (oci_state_status (root, &back), "created", "fifo: created");
  unlink (fifo);
  back.start_time++;
  CHECK_STR (oci_state_status (root, &back), "stopped", "another start time: stopped (pid reused)");
  back.pid = 0;
  CHECK_STR (oci_state_status (root, &back), "creating", "no pid: creating");
  oci_state_clear (&back);
  CHECK (oci_state_read (root, "nope", &back, &err) < 0 && err && strstr (err->msg, "container `nope` does not exist"),
         "missing container message");
  cella_error_free (&err);
  oci_state_clear (&st);
  free (fifo);
  free (dir);
  oci_dir_remove (root, "c1", NULL);
  rmdir (root);
}

int
main (void)
{
  test_detection ();
  test_ids ();
  test_state_roundtrip ();
  return tap_done ();
}
