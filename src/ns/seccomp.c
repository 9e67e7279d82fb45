#define _GNU_SOURCE
#include "seccomp.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CAP(c) (UINT64_C (1) << CAP_##c)

enum match {
  MATCH_ANY,        /* every call */
  MATCH_CLONE_FLAG, /* clone(2) with the flag in `value` set */
};

struct rule {
  const char *name;
  uint64_t allowed_by; /* the call is let through when the container holds one of these */
  int errno_;          /* what the blocked call fails with */
  enum match match;
  uint64_t value;
};

/* What docker's default profile (moby profiles/seccomp/default.json, 25.0) does not allow, per
 * the capabilities that let it through.  Docker's profile is an allowlist; ours is the same
 * policy written as a denylist, so syscalls newer than the table are allowed. */
static const struct rule rules[] = {
  /* never: keyrings are not namespaced, the rest changes or exposes the whole host */
  { "add_key", 0, EPERM, MATCH_ANY, 0 },
  { "keyctl", 0, EPERM, MATCH_ANY, 0 },
  { "request_key", 0, EPERM, MATCH_ANY, 0 },
  { "kexec_file_load", 0, EPERM, MATCH_ANY, 0 },
  { "kexec_load", 0, EPERM, MATCH_ANY, 0 },
  { "pivot_root", 0, EPERM, MATCH_ANY, 0 },
  { "swapon", 0, EPERM, MATCH_ANY, 0 },
  { "swapoff", 0, EPERM, MATCH_ANY, 0 },
  { "userfaultfd", 0, EPERM, MATCH_ANY, 0 },
  { "move_pages", 0, EPERM, MATCH_ANY, 0 },
  { "migrate_pages", 0, EPERM, MATCH_ANY, 0 },
  { "nfsservctl", 0, EPERM, MATCH_ANY, 0 },
  { "create_module", 0, EPERM, MATCH_ANY, 0 },
  { "get_kernel_syms", 0, EPERM, MATCH_ANY, 0 },
  { "query_module", 0, EPERM, MATCH_ANY, 0 },
  { "uselib", 0, EPERM, MATCH_ANY, 0 },
  { "ustat", 0, EPERM, MATCH_ANY, 0 },
  { "sysfs", 0, EPERM, MATCH_ANY, 0 },
  { "_sysctl", 0, EPERM, MATCH_ANY, 0 },
  { "vm86", 0, EPERM, MATCH_ANY, 0 },
  { "vm86old", 0, EPERM, MATCH_ANY, 0 },
  /* io_uring runs syscalls the filter never sees (moby#46762) */
  { "io_uring_setup", 0, EPERM, MATCH_ANY, 0 },
  { "io_uring_enter", 0, EPERM, MATCH_ANY, 0 },
  { "io_uring_register", 0, EPERM, MATCH_ANY, 0 },

  { "mount", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "umount", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "umount2", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "fsopen", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "fsconfig", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "fsmount", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "fspick", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "open_tree", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "move_mount", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "mount_setattr", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "quotactl", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "quotactl_fd", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "setns", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "unshare", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "sethostname", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "setdomainname", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "fanotify_init", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  { "lookup_dcookie", CAP (SYS_ADMIN), EPERM, MATCH_ANY, 0 },
  /* One rule per namespace flag, blocked when (flags & flag) != 0.  No CLONE_NEWTIME: clone()
   * cannot create a time namespace (0x80 is part of its exit-signal byte), only unshare and
   * clone3 can, and those are blocked as a whole. */
  { "clone", CAP (SYS_ADMIN), EPERM, MATCH_CLONE_FLAG, CLONE_NEWNS },
  { "clone", CAP (SYS_ADMIN), EPERM, MATCH_CLONE_FLAG, CLONE_NEWUTS },
  { "clone", CAP (SYS_ADMIN), EPERM, MATCH_CLONE_FLAG, CLONE_NEWIPC },
  { "clone", CAP (SYS_ADMIN), EPERM, MATCH_CLONE_FLAG, CLONE_NEWUSER },
  { "clone", CAP (SYS_ADMIN), EPERM, MATCH_CLONE_FLAG, CLONE_NEWPID },
  { "clone", CAP (SYS_ADMIN), EPERM, MATCH_CLONE_FLAG, CLONE_NEWNET },
  { "clone", CAP (SYS_ADMIN), EPERM, MATCH_CLONE_FLAG, CLONE_NEWCGROUP },
  /* The filter cannot read clone3's flags (they sit in memory); ENOSYS makes libc fall back
   * to clone, whose flags it can. */
  { "clone3", CAP (SYS_ADMIN), ENOSYS, MATCH_ANY, 0 },
  { "bpf", CAP (SYS_ADMIN) | CAP (BPF), EPERM, MATCH_ANY, 0 },
  { "perf_event_open", CAP (SYS_ADMIN) | CAP (PERFMON), EPERM, MATCH_ANY, 0 },
  { "syslog", CAP (SYS_ADMIN) | CAP (SYSLOG), EPERM, MATCH_ANY, 0 },

  /* The kernel fixed seccomp bypass through ptrace in 4.8; since then docker allows ptrace
   * and process_vm_* without CAP_SYS_PTRACE (kernel checks still apply). */
  { "kcmp", CAP (SYS_PTRACE), EPERM, MATCH_ANY, 0 },
  { "pidfd_getfd", CAP (SYS_PTRACE), EPERM, MATCH_ANY, 0 },
  { "process_madvise", CAP (SYS_PTRACE), EPERM, MATCH_ANY, 0 },

  { "init_module", CAP (SYS_MODULE), EPERM, MATCH_ANY, 0 },
  { "finit_module", CAP (SYS_MODULE), EPERM, MATCH_ANY, 0 },
  { "delete_module", CAP (SYS_MODULE), EPERM, MATCH_ANY, 0 },
  { "reboot", CAP (SYS_BOOT), EPERM, MATCH_ANY, 0 },
  { "settimeofday", CAP (SYS_TIME), EPERM, MATCH_ANY, 0 },
  { "stime", CAP (SYS_TIME), EPERM, MATCH_ANY, 0 },
  { "clock_settime", CAP (SYS_TIME), EPERM, MATCH_ANY, 0 },
  { "clock_settime64", CAP (SYS_TIME), EPERM, MATCH_ANY, 0 },
  { "acct", CAP (SYS_PACCT), EPERM, MATCH_ANY, 0 },
  { "mbind", CAP (SYS_NICE), EPERM, MATCH_ANY, 0 },
  { "get_mempolicy", CAP (SYS_NICE), EPERM, MATCH_ANY, 0 },
  { "set_mempolicy", CAP (SYS_NICE), EPERM, MATCH_ANY, 0 },
  { "set_mempolicy_home_node", CAP (SYS_NICE), EPERM, MATCH_ANY, 0 },
  { "iopl", CAP (SYS_RAWIO), EPERM, MATCH_ANY, 0 },
  { "ioperm", CAP (SYS_RAWIO), EPERM, MATCH_ANY, 0 },
  { "vhangup", CAP (SYS_TTY_CONFIG), EPERM, MATCH_ANY, 0 },
  { "chroot", CAP (SYS_CHROOT), EPERM, MATCH_ANY, 0 },
  /* "Shocker": open any inode of the host filesystem by handle */
  { "open_by_handle_at", CAP (DAC_READ_SEARCH), EPERM, MATCH_ANY, 0 },
};

/* The ABIs a process of the native one can also call the kernel through. */
static const struct {
  uint32_t native;
  uint32_t compat[2];
} compat_arches[] = {
  { SCMP_ARCH_X86_64, { SCMP_ARCH_X86, SCMP_ARCH_X32 } },
  { SCMP_ARCH_AARCH64, { SCMP_ARCH_ARM, 0 } },
  { SCMP_ARCH_S390X, { SCMP_ARCH_S390, 0 } },
};

static void
cleanup_seccompp (scmp_filter_ctx *ctx)
{
  if (*ctx)
    seccomp_release (*ctx);
}
#define cleanup_seccomp __attribute__ ((cleanup (cleanup_seccompp)))

static int
add_arches (scmp_filter_ctx ctx, cella_error_t *err)
{
  uint32_t native = seccomp_arch_native ();

  for (size_t i = 0; i < sizeof compat_arches / sizeof compat_arches[0]; i++)
    {
      if (compat_arches[i].native != native)
        continue;
      for (size_t j = 0; j < 2 && compat_arches[i].compat[j]; j++)
        {
          int rc = seccomp_arch_add (ctx, compat_arches[i].compat[j]);
          if (rc < 0 && rc != -EEXIST)
            return cella_error (err, -rc, "seccomp: add a compat architecture");
        }
    }
  return 0;
}

/* s390 passes clone's stack first and its flags second. */
static unsigned
clone_flags_arg (void)
{
  uint32_t native = seccomp_arch_native ();
  return native == SCMP_ARCH_S390X || native == SCMP_ARCH_S390 ? 1 : 0;
}

static int
add_rule (scmp_filter_ctx ctx, const struct rule *r, cella_error_t *err)
{
  int nr = seccomp_syscall_resolve_name (r->name);
  uint32_t action = SCMP_ACT_ERRNO ((uint32_t) r->errno_);
  int rc;

  /* A name this libseccomp does not know would leave the call open: refused (the build runs
   * seccomp_check_names first, so such a table never makes a binary).  Names it knows but the
   * arch lacks (vm86 on x86_64) resolve to pseudo numbers that never match natively. */
  if (nr == __NR_SCMP_ERROR)
    return cella_error (err, ENOSYS, "seccomp: libseccomp %u.%u.%u does not know the syscall `%s`",
                        seccomp_version ()->major, seccomp_version ()->minor, seccomp_version ()->micro, r->name);
  switch (r->match)
    {
    case MATCH_CLONE_FLAG:
      rc = seccomp_rule_add (ctx, action, nr, 1, SCMP_CMP (clone_flags_arg (), SCMP_CMP_MASKED_EQ, r->value, r->value));
      break;
    case MATCH_ANY:
    default:
      rc = seccomp_rule_add (ctx, action, nr, 0);
      break;
    }
  if (rc < 0)
    return cella_error (err, -rc, "seccomp: add the rule for `%s`", r->name);
  return 0;
}

int
seccomp_check_names (cella_error_t *err)
{
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (seccomp_syscall_resolve_name (rules[i].name) == __NR_SCMP_ERROR)
      return cella_error (
          err, ENOSYS, "seccomp: libseccomp %u.%u.%u does not know the syscall `%s` of the default filter's table",
          seccomp_version ()->major, seccomp_version ()->minor, seccomp_version ()->micro, rules[i].name);
  return 0;
}

/* The filter for `caps`, not loaded. */
static int
seccomp_build (uint64_t caps, scmp_filter_ctx *out, cella_error_t *err)
{
  cleanup_seccomp scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  int rc;

  if (ctx == NULL)
    return cella_error (err, ENOMEM, "seccomp: create the filter");
  /* The caller decides about no_new_privs; with SYSRAWRC a failed load says why (EACCES:
   * neither no_new_privs nor CAP_SYS_ADMIN) instead of ECANCELED. */
  rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
  /* A binary tree of syscall numbers instead of a list: the kernel runs the filter once per
   * syscall number when it is attached (its action cache), and the tree halves that cost. */
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (rc < 0)
    return cella_error (err, -rc, "seccomp: set the filter attributes");
  if (add_arches (ctx, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    {
      if (rules[i].allowed_by & caps)
        continue;
      if (add_rule (ctx, &rules[i], err) < 0)
        return -1;
    }
  *out = ctx;
  ctx = NULL;
  return 0;
}

int
seccomp_export_default (uint64_t caps, int fd, cella_error_t *err)
{
  cleanup_seccomp scmp_filter_ctx ctx = NULL;
  int rc;
  if (seccomp_build (caps, &ctx, err) < 0)
    return -1;
  rc = seccomp_export_bpf (ctx, fd);
  if (rc < 0)
    return cella_error (err, -rc, "seccomp: export the filter");
  return 0;
}

/* Compiling the filter with libseccomp costs more than the rest of a container start, so the
 * build compiles the default one ahead of time (tools/gen-seccomp.c → build/gen/seccomp_prebuilt.c,
 * linked into the cella binary only) and it is loaded as is when the capabilities match. */
extern const struct sock_filter seccomp_prebuilt_prog[] __attribute__ ((weak));
extern const unsigned short seccomp_prebuilt_len __attribute__ ((weak));
extern const uint64_t seccomp_prebuilt_caps __attribute__ ((weak));

bool
seccomp_have_prebuilt (uint64_t caps)
{
  return &seccomp_prebuilt_len != NULL && &seccomp_prebuilt_caps != NULL && seccomp_prebuilt_caps == caps;
}

int
seccomp_load_default (uint64_t caps, cella_error_t *err)
{
  cleanup_seccomp scmp_filter_ctx ctx = NULL;
  int rc;

  if (seccomp_have_prebuilt (caps))
    {
      struct sock_fprog prog = { .len = seccomp_prebuilt_len, .filter = (struct sock_filter *) seccomp_prebuilt_prog };
      if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        return cella_error (err, errno, "seccomp: load the filter");
      return 0;
    }
  if (seccomp_build (caps, &ctx, err) < 0)
    return -1;
  rc = seccomp_load (ctx);
  if (rc < 0)
    return cella_error (err, -rc, "seccomp: load the filter");
  return 0;
}
