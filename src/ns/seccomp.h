/* The default seccomp filter: docker's default profile turned around, allow by default and
 * EPERM for what docker blocks, relaxed per capability the container keeps. */
#ifndef CELLA_SECCOMP_H
#define CELLA_SECCOMP_H

#include <stdbool.h>
#include <stdint.h>

#include "../util/util.h"

/* Build and load the filter into the calling thread.  `caps` is the container's capability set
 * (bit n = capability n): a blocked group is allowed when the container holds a capability that
 * docker lets it through with (CAP_SYS_ADMIN: mount, unshare, setns, clone with namespace flags;
 * CAP_SYS_PTRACE: ptrace; ...).  clone3 fails with ENOSYS so that libc falls back to clone,
 * whose flags the filter can see.  The filter covers the native ABI and the compat ABIs of the
 * same machine (x86 and x32 on x86_64), so a 32-bit syscall cannot go around it.
 *
 * The filter does not set no_new_privs: loading needs either no_new_privs already set by the
 * caller or CAP_SYS_ADMIN in the effective set (see caps_apply_keep_admin in util/caps.h). */
int seccomp_load_default (uint64_t caps, cella_error_t *err);
/* Write the filter for `caps` as raw BPF (struct sock_filter array) to fd. */
int seccomp_export_default (uint64_t caps, int fd, cella_error_t *err);
/* Every syscall name of the default filter's table resolves with the libseccomp linked in; else
 * an error naming the first that does not (tools/gen-seccomp.c fails the build on it). */
int seccomp_check_names (cella_error_t *err);
/* Whether a build-time compiled filter for exactly `caps` is linked in. */
bool seccomp_have_prebuilt (uint64_t caps);

/* An OCI profile (src/ns/seccomp_profile.c); needs no_new_privs or CAP_SYS_ADMIN as above.
 * With SCMP_ACT_NOTIFY rules, *notify_fd is the filter's listener (else -1). */
struct plan_seccomp;
int seccomp_load_profile (const struct plan_seccomp *prof, int *notify_fd, cella_error_t *err);

#endif
