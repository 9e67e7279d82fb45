/* probe: try syscalls that docker's default seccomp profile blocks, harmlessly, and print one
 * line per syscall: "NAME ok" or "NAME ERRNO-NAME". Built static by the tests (t_process.sh) and
 * bind-mounted into the container: busybox has no keyctl. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *
errname (int e)
{
  switch (e)
    {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    case ENOKEY: return "ENOKEY";
    case EFAULT: return "EFAULT";
    case ENOMEM: return "ENOMEM";
    case EDQUOT: return "EDQUOT";
    case EUSERS: return "EUSERS";
    case ENOSPC: return "ENOSPC";
    default: return strerror (e);
    }
}

static void
report (const char *name, long r)
{
  printf ("%s %s\n", name, r < 0 ? errname (errno) : "ok");
}

int
main (void)
{
  setvbuf (stdout, NULL, _IONBF, 0);
  report ("keyctl", syscall (SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1));
  report ("add_key", syscall (SYS_add_key, "user", "cella-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
  /* An unknown command: EINVAL when the call reaches the kernel, EPERM when a filter stops it. */
  report ("bpf", syscall (SYS_bpf, 9999, NULL, 0));
  /* In a child, so that this process stays as it was. */
  pid_t pid = fork ();
  if (pid == 0)
    _exit (unshare (CLONE_NEWUSER) < 0 ? errno : 0);
  int st = 0;
  waitpid (pid, &st, 0);
  errno = WIFEXITED (st) ? WEXITSTATUS (st) : EFAULT;
  report ("unshare_user", errno ? -1 : 0);
  return 0;
}
