/* timeit: run several commands interleaved, ROUNDS times each, and print one line per run:
 *   NAME NANOSECONDS STATUS CPU_NANOSECONDS
 * The clock (CLOCK_MONOTONIC) is read just before posix_spawn and just after wait4, so the
 * number covers exactly what a shell would wait for, without the shell's own fork/exec.
 * CPU_NANOSECONDS is user + system time of the command and the descendants it waited for
 * (wait4's rusage): less sensitive to other load on the machine than the wall time.
 *
 *   timeit ROUNDS -- NAME CMD [ARG...] -- NAME CMD [ARG...] ...
 *
 * The commands' stdin, stdout and stderr are /dev/null. Used by bench/start.sh; not installed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct cmd
{
  const char *name;
  char **argv;
};

static long long
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
parse (int argc, char **argv, struct cmd *cmds, int max)
{
  int n = 0;
  for (int i = 2; i < argc; i++)
    {
      if (strcmp (argv[i], "--") != 0)
        continue;
      argv[i] = NULL; /* terminates the previous command's argv */
      if (i + 2 >= argc || strcmp (argv[i + 1], "--") == 0 || strcmp (argv[i + 2], "--") == 0)
        continue;
      if (n == max)
        return -1;
      cmds[n].name = argv[i + 1];
      cmds[n].argv = &argv[i + 2];
      n++;
    }
  return n;
}

int
main (int argc, char **argv)
{
  struct cmd cmds[64];
  posix_spawn_file_actions_t fa;
  int rounds, n;

  if (argc < 4 || (rounds = atoi (argv[1])) <= 0)
    {
      fprintf (stderr, "usage: timeit ROUNDS -- NAME CMD [ARG...] [-- NAME CMD ...]\n");
      return 2;
    }
  n = parse (argc, argv, cmds, 64);
  if (n <= 0)
    {
      fprintf (stderr, "timeit: no commands\n");
      return 2;
    }
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);

  /* Each round starts one command later, so every command follows every other one equally
   * often: a heavy one (runc) leaves kernel work behind (namespace teardown in workers) that
   * would otherwise always land on the same neighbour. */
  for (int r = 0; r < rounds; r++)
    for (int k = 0; k < n; k++)
      {
        int c = (r + k) % n;
        pid_t pid;
        int status = 0, err;
        struct rusage ru;
        long long t0 = now_ns (), t1;

        err = posix_spawnp (&pid, cmds[c].argv[0], &fa, NULL, cmds[c].argv, environ);
        if (err != 0)
          {
            fprintf (stderr, "timeit: %s: %s\n", cmds[c].argv[0], strerror (err));
            return 1;
          }
        while (wait4 (pid, &status, 0, &ru) < 0)
          if (errno != EINTR)
            {
              perror ("timeit: wait4");
              return 1;
            }
        t1 = now_ns ();
        printf ("%s %lld %d %lld\n", cmds[c].name, t1 - t0,
                WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status),
                (long long) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
                    + (long long) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL);
      }
  return 0;
}
