/* cella-exec: the exec stub (src/util/execstub.h says what and why). Freestanding: no libc,
 * no relocation, no thread pointer (so no stack protector), raw system calls only; a container's
 * seccomp filter is already loaded when it runs, and it needs only fcntl, execve, write and
 * exit_group, which the default filter allows. */
#include <asm/unistd.h>
#include <linux/errno.h>
#include <linux/fcntl.h>

#include "util/execstub.h"
#include "util/rawsys.h"

#define sys3 raw_sys3
#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n\txor %ebp,%ebp\n\tmov %rsp,%rdi\n\tand $-16,%rsp\n\tcall stub_main\n\thlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n\tmov x0, sp\n\tbl stub_main\n\tbrk #0\n");
#else
#error "the exec stub knows the system calls of x86_64 and aarch64 only"
#endif

void stub_main (long *sp) __attribute__ ((noreturn, used));

__attribute__ ((noreturn)) static void
stub_exit (int status)
{
  for (;;)
    sys3 (__NR_exit_group, status, 0, 0);
}

static int
to_int (const char *s)
{
  int v = 0;
  if (*s == '\0')
    return -1;
  for (; *s; s++)
    {
      if (*s < '0' || *s > '9' || v > 100000)
        return -1;
      v = v * 10 + (*s - '0');
    }
  return v;
}

static int
has_slash (const char *s)
{
  for (; *s; s++)
    if (*s == '/')
      return 1;
  return 0;
}

/* execve of DIR/NAME (DIR the len bytes at dir, "." when empty); returns the error */
static long
exec_in (const char *dir, unsigned long len, const char *name, char **argv, char **envp)
{
  char full[8192];
  unsigned long n = 0;
  if (len == 0)
    full[n++] = '.';
  for (unsigned long i = 0; i < len && n < sizeof full - 1; i++)
    full[n++] = dir[i];
  if (n < sizeof full - 1)
    full[n++] = '/';
  for (; *name && n < sizeof full - 1; name++)
    full[n++] = *name;
  if (*name)
    return -ENAMETOOLONG;
  full[n] = '\0';
  return sys3 (__NR_execve, (long) full, (long) argv, (long) envp);
}

void
stub_main (long *sp)
{
  long argc = sp[0];
  char **argv = (char **) (sp + 1), **envp = argv + argc + 1;
  struct execstub_failure f = { .type = EXECSTUB_FAILED };
  char **wargv;
  long saved = -ENOENT;
  int fd;

  if (argc < 4 || (fd = to_int (argv[1])) < 0)
    {
      /* run some other way: by a `#!/proc/self/exe` program of the container's, say */
      static const char msg[] = "cella-exec: cella's exec stub, not a program to run\n";
      sys3 (__NR_write, 2, (long) msg, sizeof msg - 1);
      stub_exit (126);
    }
  wargv = argv + 3;
  if (sys3 (__NR_fcntl, fd, F_SETFD, FD_CLOEXEC) < 0)
    stub_exit (125); /* never run the workload with the host's socket open */
  if (has_slash (wargv[0]))
    saved = sys3 (__NR_execve, (long) wargv[0], (long) wargv, (long) envp);
  else
    for (const char *d = argv[2];; d++)
      {
        const char *e = d;
        long r;
        while (*e && *e != ':')
          e++;
        r = exec_in (d, (unsigned long) (e - d), wargv[0], wargv, envp);
        if (r != -ENOENT && r != -ENOTDIR)
          saved = r;
        if (*e == '\0')
          break;
        d = e;
      }
  f.errno_ = (int) -saved;
  f.status = f.errno_ == ENOENT || f.errno_ == ENOTDIR ? 127 : 126;
  sys3 (__NR_write, fd, (long) &f, sizeof f);
  stub_exit (f.status);
}
