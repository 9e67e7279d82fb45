/* The kernel's Landlock interface, as far as cella uses it (scopes, ABI 6, Linux 6.12), and the
 * two questions a host is asked about it: which ABI, and whether scopes can be made. Used
 * directly: Debian 12's headers predate the `scoped` field, and a ruleset of scopes alone needs
 * no library. src/ns/landlock.c puts a container's processes in a domain. */
#ifndef CELLA_HOST_LANDLOCK_H
#define CELLA_HOST_LANDLOCK_H

#include <stdint.h>

/* struct landlock_ruleset_attr as of ABI 6 (include/uapi/linux/landlock.h) */
struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

/* The first Landlock ABI version with scopes. */
#define LANDLOCK_ABI_SCOPES 6

/* The running kernel's Landlock ABI version (> 0), or -errno: -ENOSYS (not built in),
 * -EOPNOTSUPP (built in, not enabled: not in the lsm= list). One syscall, cached. */
int landlock_abi (void);

/* A ruleset with both scopes made and closed (nothing is restricted): 0, or -errno. For doctor. */
int landlock_try_scopes (void);

#endif
