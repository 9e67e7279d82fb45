/* --init: a tiny PID 1 that forwards signals to the workload and reaps every zombie. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

int
ns_init_run (pid_t workload)
{
  sigset_t all;
  sigfillset (&all);
  for (;;)
    {
      siginfo_t si;
      int sig = sigwaitinfo (&all, &si);
      if (sig < 0)
        continue;
      if (sig != SIGCHLD)
        {
          /* to the workload's process group when it has one, so shells pass it on */
          if (kill (-workload, sig) < 0)
            kill (workload, sig);
          continue;
        }
      for (;;)
        {
          int status;
          pid_t r = waitpid (-1, &status, WNOHANG);
          if (r <= 0)
            break;
          if (r == workload)
            return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
        }
    }
}
