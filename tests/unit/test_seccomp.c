/* Unit tests for src/ns/seccomp.c, TAP output.
 *
 * Each probe runs a syscall in a fresh child, once without a filter and once under
 * seccomp_load_default, and reports its errno.  The syscalls are chosen so the kernel itself
 * answers with something other than EPERM (invalid flags, a bad fd, a missing path), so an
 * EPERM can only come from the filter and the result does not depend on being root. */
#define _GNU_SOURCE
#include "util/caps.h"
#include "ns/seccomp.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/kexec.h>
#include <linux/keyctl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

#define BIT(c) (UINT64_C (1) << (c))
#define LOAD_FAILED 255

/* A probe returns 0 when the call succeeded, else its errno. */
static int
result (long r)
{
  return r < 0 ? errno : 0;
}

static int
probe_keyctl (void)
{
  return result (syscall (SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}

static int
probe_getpid (void)
{
  return syscall (SYS_getpid) == getpid () ? 0 : EIO;
}

static int
probe_fork (void)
{
  int status;
  pid_t pid = fork ();
  if (pid < 0)
    return errno;
  if (pid == 0)
    _exit (0);
  return waitpid (pid, &status, 0) == pid && WIFEXITED (status) ? 0 : EIO;
}

/* 1 is CSIGNAL, never a valid unshare flag: EINVAL from the kernel. */
static int
probe_unshare_invalid (void)
{
  return result (unshare (1));
}

static int
probe_unshare_user (void)
{
  return result (unshare (CLONE_NEWUSER));
}

static int
probe_setns (void)
{
  return result (setns (-1, 0));
}

static int
probe_mount (void)
{
  return result (mount ("none", "/nonexistent/cella-test", "tmpfs", 0, NULL));
}

static int
probe_reboot (void)
{
  return result (syscall (SYS_reboot, 0, 0, 0, NULL)); /* bad magic: EINVAL */
}

/* clone3 with a NULL, too-small struct: EINVAL from the kernel. */
static int
probe_clone3 (void)
{
  return result (syscall (SYS_clone3, NULL, 0));
}

/* Each of the following gets an answer other than EPERM from the kernel itself (where the caller
 * may make the call at all: root of the machine for some), from bad flags, a bad fd or a NULL
 * pointer checked before anything happens. */

/* "Shocker": a NULL handle, EFAULT once CAP_DAC_READ_SEARCH is checked. */
static int
probe_open_by_handle_at (void)
{
  return result (syscall (SYS_open_by_handle_at, -1, NULL, 0));
}

static int
probe_fsopen (void)
{
  return result (syscall (SYS_fsopen, NULL, ~0U)); /* bad flags: EINVAL */
}

static int
probe_open_tree (void)
{
  return result (syscall (SYS_open_tree, -1, NULL, ~0U)); /* bad flags: EINVAL */
}

static int
probe_move_mount (void)
{
  return result (syscall (SYS_move_mount, -1, NULL, -1, NULL, ~0U)); /* bad flags: EINVAL */
}

static int
probe_io_uring_setup (void)
{
  return result (syscall (SYS_io_uring_setup, 1, NULL)); /* NULL params: EFAULT */
}

static int
probe_io_uring_enter (void)
{
  return result (syscall (SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0)); /* EBADF */
}

static int
probe_io_uring_register (void)
{
  return result (syscall (SYS_io_uring_register, -1, 0, NULL, 0)); /* EBADF */
}

/* UFFD_USER_MODE_ONLY passes the sysctl check; the unknown flag then gives EINVAL. */
static int
probe_userfaultfd (void)
{
  return result (syscall (SYS_userfaultfd, UFFD_USER_MODE_ONLY | 0x40000000));
}

static int
probe_perf_event_open (void)
{
  return result (syscall (SYS_perf_event_open, NULL, 0, -1, -1, ~0UL)); /* bad flags: EINVAL */
}

/* An undefined flag (not the arch byte): EINVAL once CAP_SYS_BOOT is checked; nothing is loaded
 * or unloaded. */
static int
probe_kexec_load (void)
{
  return result (syscall (SYS_kexec_load, 0, 0, NULL, 0x8000UL));
}

/* What docker's profile refuses without a capability the default set has: each a way out of the
 * container or into the host's kernel. */
static const struct {
  const char *name;
  int (*fn) (void);
} escapes[] = {
  { "open_by_handle_at", probe_open_by_handle_at },
  { "fsopen", probe_fsopen },
  { "open_tree", probe_open_tree },
  { "move_mount", probe_move_mount },
  { "io_uring_setup", probe_io_uring_setup },
  { "io_uring_enter", probe_io_uring_enter },
  { "io_uring_register", probe_io_uring_register },
  { "userfaultfd", probe_userfaultfd },
  { "perf_event_open", probe_perf_event_open },
  { "kexec_load", probe_kexec_load },
};

/* clone with a namespace flag and CLONE_SIGHAND without CLONE_VM: the kernel refuses the
 * combination (EINVAL) before it looks at namespaces, so nothing is ever created. */
static int
clone_flag (unsigned long flag)
{
  long r = syscall (SYS_clone, flag | CLONE_SIGHAND, NULL, NULL, NULL, NULL);
  if (r == 0)
    _exit (0);
  return result (r);
}

static const struct {
  const char *name;
  unsigned long flag;
} ns_flags[] = {
  { "CLONE_NEWNS", CLONE_NEWNS },         { "CLONE_NEWUTS", CLONE_NEWUTS }, { "CLONE_NEWIPC", CLONE_NEWIPC },
  { "CLONE_NEWUSER", CLONE_NEWUSER },     { "CLONE_NEWPID", CLONE_NEWPID }, { "CLONE_NEWNET", CLONE_NEWNET },
  { "CLONE_NEWCGROUP", CLONE_NEWCGROUP },
};

static size_t clone_index;

static int
probe_clone_ns (void)
{
  return clone_flag (ns_flags[clone_index].flag);
}

static int
probe_clone_plain (void)
{
  return clone_flag (0);
}

#ifdef __x86_64__
/* The 32-bit ABI through int $0x80, which the kernel enters with the i386 syscall table. */
static long
int80 (long nr, long a, long b, long c)
{
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

/* Without ia32 emulation int $0x80 faults: die of SIGSEGV (a sanitizer's handler would turn
 * that into an exit status) so the caller can tell. */
static int
probe_i386_getpid (void)
{
  signal (SIGSEGV, SIG_DFL);
  return int80 (20 /* i386 getpid */, 0, 0, 0) == getpid () ? 0 : EIO;
}

static int
probe_i386_keyctl (void)
{
  long r;
  signal (SIGSEGV, SIG_DFL);
  r = int80 (288 /* i386 keyctl */, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  return r < 0 ? (int) -r : 0;
}

/* The x32 ABI: x86_64 numbers with bit 30 set.  Kernels without CONFIG_X86_X32_ABI say ENOSYS. */
static int
probe_x32_keyctl (void)
{
  return result (syscall (0x40000000 | SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}
#endif

/* Run fn in a child, under the default filter for `caps` when caps is not NULL.  Returns the
 * probe's errno (0 = success), LOAD_FAILED, or -signal. */
static int
probe (const uint64_t *caps, int (*fn) (void))
{
  int status;
  pid_t pid;

  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    return LOAD_FAILED;
  if (pid == 0)
    {
      cella_error_t err = NULL;
      if (caps && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit (LOAD_FAILED);
      if (caps && seccomp_load_default (*caps, &err) < 0)
        {
          printf ("# %s: %s\n", err->msg, strerror (err->errno_));
          fflush (stdout);
          _exit (LOAD_FAILED);
        }
      _exit (fn ());
    }
  if (waitpid (pid, &status, 0) < 0)
    return LOAD_FAILED;
  if (WIFSIGNALED (status))
    return -WTERMSIG (status);
  return WEXITSTATUS (status);
}

static const char *
name (int r, char buf[32])
{
  if (r == 0)
    return "success";
  if (r == LOAD_FAILED)
    return "filter not loaded";
  if (r < 0)
    snprintf (buf, 32, "signal %s", sigabbrev_np (-r) ? sigabbrev_np (-r) : "?");
  else
    snprintf (buf, 32, "%s", strerrorname_np (r) ? strerrorname_np (r) : "?");
  return buf;
}

/* Under `caps` the filter turns the call into `want`; without a filter it gives something else. */
static void
expect_blocked (const char *what, int (*fn) (void), uint64_t caps, int want)
{
  char b1[32], b2[32], b3[32];
  int base = probe (NULL, fn);
  int got = probe (&caps, fn);

  if (base == want || base < 0)
    tap_skip ("the kernel already answers that", "%s: %s without a filter", what, name (base, b1));
  else
    tap_check (got == want, "%s: %s under the filter (got %s, %s without)", what, name (want, b3), name (got, b1),
               name (base, b2));
}

/* Under `caps` the filter does not touch the call: same result as without a filter. */
static void
expect_allowed (const char *what, int (*fn) (void), uint64_t caps)
{
  char b1[32], b2[32];
  int base = probe (NULL, fn);
  int got = probe (&caps, fn);
  tap_check (got == base && got != LOAD_FAILED, "%s: not filtered (got %s, %s without)", what, name (got, b1),
             name (base, b2));
}

static void
test_default_caps (void)
{
  uint64_t d = caps_default ();

  expect_allowed ("default: getpid", probe_getpid, d);
  expect_allowed ("default: fork", probe_fork, d);
  expect_allowed ("default: clone without namespace flags", probe_clone_plain, d);
  expect_blocked ("default: keyctl", probe_keyctl, d, EPERM);
  expect_blocked ("default: unshare (invalid flags)", probe_unshare_invalid, d, EPERM);
  expect_blocked ("default: unshare (CLONE_NEWUSER)", probe_unshare_user, d, EPERM);
  expect_blocked ("default: setns", probe_setns, d, EPERM);
  expect_blocked ("default: mount", probe_mount, d, EPERM);
  expect_blocked ("default: reboot", probe_reboot, d, EPERM);
  expect_blocked ("default: clone3", probe_clone3, d, ENOSYS);
  for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++)
    {
      char what[64];
      snprintf (what, sizeof what, "default: %s", escapes[i].name);
      expect_blocked (what, escapes[i].fn, d, EPERM);
    }
  for (clone_index = 0; clone_index < sizeof ns_flags / sizeof ns_flags[0]; clone_index++)
    {
      char what[64];
      snprintf (what, sizeof what, "default: clone (%s)", ns_flags[clone_index].name);
      expect_blocked (what, probe_clone_ns, d, EPERM);
    }
}

static void
test_sys_admin (void)
{
  uint64_t caps = caps_default () | BIT (CAP_SYS_ADMIN);

  expect_allowed ("SYS_ADMIN: unshare (invalid flags)", probe_unshare_invalid, caps);
  expect_allowed ("SYS_ADMIN: unshare (CLONE_NEWUSER)", probe_unshare_user, caps);
  expect_allowed ("SYS_ADMIN: setns", probe_setns, caps);
  expect_allowed ("SYS_ADMIN: mount", probe_mount, caps);
  expect_allowed ("SYS_ADMIN: clone3", probe_clone3, caps);
  clone_index = 3; /* CLONE_NEWUSER */
  expect_allowed ("SYS_ADMIN: clone (CLONE_NEWUSER)", probe_clone_ns, caps);
  expect_blocked ("SYS_ADMIN: keyctl", probe_keyctl, caps, EPERM);
  expect_blocked ("SYS_ADMIN: reboot", probe_reboot, caps, EPERM);
  expect_allowed ("SYS_BOOT: reboot", probe_reboot, caps_default () | BIT (CAP_SYS_BOOT));
  expect_allowed ("SYS_ADMIN: fsopen", probe_fsopen, caps);
  expect_allowed ("SYS_ADMIN: open_tree", probe_open_tree, caps);
  expect_allowed ("SYS_ADMIN: move_mount", probe_move_mount, caps);
  expect_allowed ("SYS_ADMIN: perf_event_open", probe_perf_event_open, caps);
  expect_blocked ("SYS_ADMIN: io_uring_setup", probe_io_uring_setup, caps, EPERM);
  expect_blocked ("SYS_ADMIN: userfaultfd", probe_userfaultfd, caps, EPERM);
  expect_blocked ("SYS_ADMIN: kexec_load", probe_kexec_load, caps, EPERM);
  expect_allowed ("DAC_READ_SEARCH: open_by_handle_at", probe_open_by_handle_at,
                  caps_default () | BIT (CAP_DAC_READ_SEARCH));
}

/* Every name of the table resolves: an unknown one would be a hole, not a rule. */
static void
test_names_resolve (void)
{
  cella_error_t err = NULL;
  int r = seccomp_check_names (&err);
  tap_check (r == 0, "every syscall of the default filter's table is known to libseccomp%s%s", err ? ": " : "",
             err ? err->msg : "");
  cella_error_free (&err);
}

static void
test_compat_abis (void)
{
#ifdef __x86_64__
  char b[32];
  int base = probe (NULL, probe_i386_getpid);

  if (base != 0)
    tap_skip ("no ia32 emulation", "i386 ABI: getpid (%s without a filter)", name (base, b));
  else
    {
      expect_allowed ("i386 ABI: getpid", probe_i386_getpid, caps_default ());
      expect_blocked ("i386 ABI: keyctl", probe_i386_keyctl, caps_default (), EPERM);
    }
  expect_blocked ("x32 ABI: keyctl", probe_x32_keyctl, caps_default (), EPERM);
#else
  tap_skip ("not x86_64", "compat ABIs");
#endif
}

/* The order the container child uses without no_new_privs (see caps.h). */
static int
sequence_without_nnp (void)
{
  cella_error_t err = NULL;
  uint64_t set = caps_default ();

  if (caps_apply_keep_admin (set, true, &err) < 0 || seccomp_load_default (set, &err) < 0
      || caps_drop_admin_if_absent (set, &err) < 0)
    {
      printf ("# %s: %s\n", err->msg, strerror (err->errno_));
      return 1;
    }
  if (prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0 || prctl (PR_CAPBSET_READ, CAP_SYS_ADMIN) != 0)
    return 2;
  if (probe_keyctl () != EPERM || probe_setns () != EPERM)
    return 3;
  return 0;
}

/* Without no_new_privs and without CAP_SYS_ADMIN the kernel refuses the filter: say so. */
static int
load_refused (void)
{
  cella_error_t err = NULL;
  int r;

  if (caps_apply (caps_default (), true, &err) < 0)
    return 1;
  r = seccomp_load_default (caps_default (), &err);
  if (r >= 0 || err == NULL)
    return 2;
  printf ("# %s: %s\n", err->msg, strerror (err->errno_));
  return strcmp (err->msg, "seccomp: load the filter") == 0 && err->errno_ == EACCES ? 0 : 3;
}

static void
test_without_nnp (void)
{
  uint64_t need = BIT (CAP_SYS_ADMIN) | BIT (CAP_SETPCAP);
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  int r;

  if (syscall (SYS_capget, &h, d) < 0 || (d[0].effective & need) != need)
    {
      tap_skip ("needs CAP_SYS_ADMIN and CAP_SETPCAP", "caps_apply_keep_admin, load, drop admin");
      tap_skip ("needs CAP_SYS_ADMIN and CAP_SETPCAP", "load without no_new_privs or SYS_ADMIN");
      return;
    }
  r = probe (NULL, sequence_without_nnp);
  tap_check (r == 0, "caps_apply_keep_admin, load without no_new_privs, drop admin (step %d)", r);
  r = probe (NULL, load_refused);
  tap_check (r == 0, "load without no_new_privs or SYS_ADMIN fails with EACCES (step %d)", r);
}

int
main (void)
{
  test_names_resolve ();
  test_default_caps ();
  test_sys_admin ();
  test_compat_abis ();
  test_without_nnp ();
  return tap_done ();
}
