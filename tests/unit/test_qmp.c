/* Unit tests for the vm backend's QMP client (vm_qmp, src/vm/qemu.c) against a scripted server:
 * the greeting, qmp_capabilities, an event before the reply, an error reply, no greeting.
 * (A real QEMU speaks the same lines; `quit` through it is what ends a VM.) */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "vm/vm.h"

static char dir[64], sock[96], got[2][256];

/* Read one line from fd into buf (without the newline). */
static void
read_line (int fd, char *buf, size_t cap)
{
  size_t n = 0;
  while (n + 1 < cap && read (fd, buf + n, 1) == 1 && buf[n] != '\n')
    n++;
  buf[n] = '\0';
}

/* Serve one connection: send `greeting`, then for each request the canned reply lines. The
 * requests it read are written back to the parent through `pipefd`. */
static pid_t
serve (const char *greeting, const char *reply1, const char *reply2, int pipefd)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int l = socket (AF_UNIX, SOCK_STREAM, 0);
  pid_t pid;
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", sock);
  unlink (sock);
  if (l < 0 || bind (l, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (l, 1) < 0)
    {
      perror ("listen");
      exit (2);
    }
  pid = fork ();
  if (pid == 0)
    {
      char line[256];
      int c = accept (l, NULL, NULL);
      const char *replies[] = { reply1, reply2 };
      dprintf (c, "%s\n", greeting);
      for (int i = 0; i < 2 && replies[i]; i++)
        {
          read_line (c, line, sizeof line);
          dprintf (pipefd, "%s\n", line);
          dprintf (c, "%s\n", replies[i]);
        }
      sleep (1);
      _exit (0);
    }
  close (l);
  return pid;
}

static int
run (const char *greeting, const char *reply1, const char *reply2, const char *command, cella_error_t *err)
{
  int p[2], r;
  pid_t pid;
  FILE *f;
  if (pipe (p) < 0)
    exit (2);
  pid = serve (greeting, reply1, reply2, p[1]);
  close (p[1]);
  r = vm_qmp (sock, command, err);
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
  f = fdopen (p[0], "r");
  got[0][0] = got[1][0] = '\0';
  for (int i = 0; i < 2 && fgets (got[i], sizeof got[i], f); i++)
    got[i][strcspn (got[i], "\n")] = '\0';
  fclose (f);
  return r;
}

int
main (void)
{
  cella_error_t err = NULL;
  int r;
  static const char greet[] = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}";
  snprintf (dir, sizeof dir, "/tmp/qmp-unit.XXXXXX");
  if (mkdtemp (dir) == NULL)
    return 2;
  snprintf (sock, sizeof sock, "%s/qmp.sock", dir);

  /* the event's text holds "return": only the reply's member counts */
  r = run (greet, "{\"return\": {}}",
           "{\"timestamp\": {}, \"event\": \"SHUTDOWN\", \"data\": {\"reason\": \"return\"}}\n{\"return\": {}}", "quit",
           &err);
  CHECK (r == 0, "quit: capabilities first, an event before the reply skipped (%s)", err ? err->msg : "no error");
  CHECK_STR (got[0], "{\"execute\":\"qmp_capabilities\"}", "the first request");
  CHECK_STR (got[1], "{\"execute\":\"quit\"}", "the command, as JSON");
  cella_error_free (&err);

  r = run (greet, "{\"return\": {}}", "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}}", "nope", &err);
  CHECK (r < 0 && err && strstr (err->msg, "QMP nope: {\"error\"") != NULL,
         "an error reply is an error naming the command (%s)", err ? err->msg : "no error");
  cella_error_free (&err);

  r = run ("{\"hello\": 1}", NULL, NULL, "quit", &err);
  CHECK (r < 0 && err && strstr (err->msg, "no greeting") != NULL, "no QMP greeting (%s)", err ? err->msg : "no error");
  cella_error_free (&err);

  unlink (sock);
  rmdir (dir);
  return tap_done ();
}
