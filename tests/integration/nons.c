/* nons: run a command where new namespaces are refused, the way a sandbox's seccomp profile refuses
 * them (docker's default profile, systemd's RestrictNamespaces=).
 *
 *   nons COMMAND [ARG...]
 *   nons --allow COMMAND [ARG...]
 *
 * It sets no_new_privs, installs a seccomp filter written by hand (no libseccomp) and executes
 * COMMAND: unshare(2) with any CLONE_NEW* flag and clone(2) with any in its flags (the first
 * argument) fail with EPERM; clone3(2) fails with ENOSYS, since its flags are in memory where a
 * filter cannot read them, so that glibc falls back to clone(2). Everything else is allowed. With
 * --allow the filter allows everything: a process in the same state (no_new_privs, one filter,
 * seccomp mode 2) whose namespaces are not refused. Built
 * by the tests (t_doctor.sh, t_proot.sh) with `cc -O2 -o nons nons.c`. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NONS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NONS_ARCH AUDIT_ARCH_AARCH64
#else
#error "nons: add this architecture's AUDIT_ARCH_* value"
#endif

#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* CLONE_NEWTIME shares its bit with clone(2)'s exit signal: it is a namespace flag for unshare only. */
#define NEW_NS_CLONE (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)
#define NEW_NS_UNSHARE (NEW_NS_CLONE | CLONE_NEWTIME)

/* The low 32 bits of the first argument (all the CLONE_* flags live there). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG0_LOW offsetof (struct seccomp_data, args[0])
#else
#define ARG0_LOW (offsetof (struct seccomp_data, args[0]) + 4)
#endif

/* A jump's offsets count from the next instruction; the comments give each one's index. */
static struct sock_filter filter[] = {
  /* 0 */ BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch)),
  /* 1 */ BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, NONS_ARCH, 1, 0),
  /* 2 */ BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS), /* another ABI (i386): nothing */
  /* 3 */ BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
  /* 4 */ BPF_JUMP (BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 10, 0), /* x32 numbers → 15 */
  /* 5 */ BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 9, 0),  /* → 15 */
  /* 6 */ BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 2, 0), /* → 9 */
  /* 7 */ BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 3, 0),   /* → 11 */
  /* 8 */ BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  /* 9 */ BPF_STMT (BPF_LD | BPF_W | BPF_ABS, ARG0_LOW),
  /* 10 */ BPF_JUMP (BPF_JMP | BPF_JSET | BPF_K, NEW_NS_UNSHARE, 3, 2), /* → 14 / 13 */
  /* 11 */ BPF_STMT (BPF_LD | BPF_W | BPF_ABS, ARG0_LOW),
  /* 12 */ BPF_JUMP (BPF_JMP | BPF_JSET | BPF_K, NEW_NS_CLONE, 1, 0), /* → 14 / 13 */
  /* 13 */ BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  /* 14 */ BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
  /* 15 */ BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
};

static struct sock_filter allow_all[] = {
  BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

int
main (int argc, char **argv)
{
  struct sock_fprog prog = { .len = sizeof filter / sizeof filter[0], .filter = filter };
  if (argc > 1 && strcmp (argv[1], "--allow") == 0)
    {
      prog = (struct sock_fprog){ .len = 1, .filter = allow_all };
      argv++;
      argc--;
    }
  if (argc < 2)
    {
      fprintf (stderr, "usage: nons [--allow] COMMAND [ARG...]\n");
      return 2;
    }
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    {
      fprintf (stderr, "nons: prctl(PR_SET_NO_NEW_PRIVS): %s\n", strerror (errno));
      return 125;
    }
  if (prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
    {
      fprintf (stderr, "nons: install the seccomp filter: %s\n", strerror (errno));
      return 125;
    }
  execvp (argv[1], argv + 1);
  fprintf (stderr, "nons: %s: %s\n", argv[1], strerror (errno));
  return errno == ENOENT ? 127 : 126;
}
