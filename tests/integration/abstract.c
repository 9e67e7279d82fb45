/* abstract: both sides of the Landlock scoping tests (t_landlock.sh). Built static by the tests
 * and bind-mounted into the container: busybox's nc and socat-like applets cannot name abstract
 * unix sockets.
 *
 *   abstract abi
 *       the kernel's Landlock ABI version ("abi 6"), or "abi none ERRNO" when Landlock is
 *       missing or disabled: the tests' own probe, never cella's.
 *   abstract listen NAME SECONDS
 *       bind a stream socket at "@NAME" and a datagram socket at "@NAME.dgram", print
 *       "ready", then one line per accepted connection ("conn") or datagram ("got PAYLOAD")
 *       until SECONDS pass.
 *   abstract connect NAME
 *       connect a stream socket to "@NAME" and send a datagram to "@NAME.dgram"; one line each:
 *       "stream ok" / "stream ERRNO-NAME", "dgram ok" / "dgram ERRNO-NAME".
 *   abstract nolandlock COMMAND [ARG...]
 *       run COMMAND where the Landlock calls fail with ENOSYS, as on a kernel built without
 *       Landlock: no_new_privs and a seccomp filter written by hand (as nons.c's), then exec.
 * Exit status 0 when the probe ran (whatever it observed), 2 for a usage error, 1 otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

static const char *
errname (int e)
{
  switch (e)
    {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOENT: return "ENOENT";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return strerror (e);
    }
}

/* "@name" (the leading NUL of an abstract address); its length for bind/connect */
static socklen_t
abstract_addr (struct sockaddr_un *sa, const char *name, const char *suffix)
{
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  snprintf (sa->sun_path + 1, sizeof sa->sun_path - 1, "%s%s", name, suffix);
  return (socklen_t) (offsetof (struct sockaddr_un, sun_path) + 1 + strlen (sa->sun_path + 1));
}

static long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int
listen_mode (const char *name, int seconds)
{
  struct sockaddr_un sa;
  long end = now_ms () + seconds * 1000L;
  int st = socket (AF_UNIX, SOCK_STREAM, 0), dg = socket (AF_UNIX, SOCK_DGRAM, 0);
  if (st < 0 || dg < 0 || bind (st, (struct sockaddr *) &sa, abstract_addr (&sa, name, "")) < 0 || listen (st, 16) < 0
      || bind (dg, (struct sockaddr *) &sa, abstract_addr (&sa, name, ".dgram")) < 0)
    {
      fprintf (stderr, "abstract: bind @%s: %s\n", name, strerror (errno));
      return 1;
    }
  printf ("ready\n");
  fflush (stdout);
  for (long left; (left = end - now_ms ()) > 0;)
    {
      struct pollfd p[2] = { { .fd = st, .events = POLLIN }, { .fd = dg, .events = POLLIN } };
      char buf[128];
      ssize_t n;
      if (poll (p, 2, (int) left) <= 0)
        continue;
      if (p[0].revents & POLLIN)
        {
          int c = accept (st, NULL, NULL);
          if (c >= 0)
            {
              printf ("conn\n");
              close (c);
            }
        }
      if ((p[1].revents & POLLIN) && (n = recv (dg, buf, sizeof buf - 1, 0)) >= 0)
        {
          buf[n] = '\0';
          printf ("got %s\n", buf);
        }
      fflush (stdout);
    }
  return 0;
}

static int
connect_mode (const char *name)
{
  struct sockaddr_un sa;
  int st = socket (AF_UNIX, SOCK_STREAM, 0), dg = socket (AF_UNIX, SOCK_DGRAM, 0);
  socklen_t len;
  if (st < 0 || dg < 0)
    {
      perror ("abstract: socket");
      return 1;
    }
  len = abstract_addr (&sa, name, "");
  if (connect (st, (struct sockaddr *) &sa, len) < 0)
    printf ("stream %s\n", errname (errno));
  else
    printf ("stream ok\n");
  len = abstract_addr (&sa, name, ".dgram");
  if (sendto (dg, "abstract-attack", 15, 0, (struct sockaddr *) &sa, len) < 0)
    printf ("dgram %s\n", errname (errno));
  else
    printf ("dgram ok\n");
  return 0;
}

#if defined(__x86_64__)
#define ABSTRACT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ABSTRACT_ARCH AUDIT_ARCH_AARCH64
#else
#error "abstract: add this architecture's AUDIT_ARCH_* value"
#endif

static int
nolandlock (char **argv)
{
  /* a jump's offsets count from the next instruction */
  static struct sock_filter filter[] = {
    /* 0 */ BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch)),
    /* 1 */ BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, ABSTRACT_ARCH, 0, 5), /* another ABI → 7 */
    /* 2 */ BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
    /* 3 */ BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_landlock_create_ruleset, 2, 0), /* → 6 */
    /* 4 */ BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_landlock_restrict_self, 1, 0),  /* → 6 */
    /* 5 */ BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    /* 6 */ BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    /* 7 */ BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = sizeof filter / sizeof filter[0], .filter = filter };
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
    {
      fprintf (stderr, "abstract: install the seccomp filter: %s\n", strerror (errno));
      return 125;
    }
  execvp (argv[0], argv);
  fprintf (stderr, "abstract: %s: %s\n", argv[0], strerror (errno));
  return 127;
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IONBF, 0);
  if (argc == 2 && strcmp (argv[1], "abi") == 0)
    {
      long v = syscall (SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
      if (v < 0)
        printf ("abi none %s\n", errname (errno));
      else
        printf ("abi %ld\n", v);
      return 0;
    }
  if (argc == 4 && strcmp (argv[1], "listen") == 0)
    return listen_mode (argv[2], atoi (argv[3]));
  if (argc == 3 && strcmp (argv[1], "connect") == 0)
    return connect_mode (argv[2]);
  if (argc >= 3 && strcmp (argv[1], "nolandlock") == 0)
    return nolandlock (argv + 2);
  fprintf (stderr, "usage: abstract abi | listen NAME SECONDS | connect NAME | nolandlock COMMAND [ARG...]\n");
  return 2;
}
