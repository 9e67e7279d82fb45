/* Linux capabilities: docker's names and default set, and dropping them in the container child.
 * A capability set is a uint64_t with bit n = capability number n (capabilities(7)). */
#ifndef CELLA_UTIL_CAPS_H
#define CELLA_UTIL_CAPS_H

#include <stdbool.h>
#include <stdint.h>

#include "capnames.h"
#include "util.h"

/* The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap, read once;
 * CAP_LAST_CAP from the headers when that cannot be read). */
int caps_last_cap (void);

/* Every capability from 0 to caps_last_cap (): what --privileged and --cap-add ALL mean. */
uint64_t caps_all (void);

/* Apply one --cap-add (add) or --cap-drop (!add) value to *set.  The name is case-insensitive,
 * with or without "CAP_"; "ALL" adds every capability or drops them all.  Docker gives adds
 * precedence over drops except "--cap-add ALL", so a caller applies drops first, then adds. */
int caps_modify (uint64_t *set, const char *name, bool add, cella_error_t *err);

/* "CAP_CHOWN,CAP_KILL" in capability-number order; "" for an empty set.  Caller frees. */
char *caps_to_string (uint64_t set);

/* The last privilege step in the container child, after the caller has switched uid/gid with
 * PR_SET_KEEPCAPS set (so the permitted set still holds everything):
 *   1. raise effective to permitted, for the CAP_SETPCAP that step 2 needs;
 *   2. drop from the bounding set every capability not in `set`;
 *   3. clear the ambient set;
 *   4. effective = permitted = `set` for root (empty for a non-root user, as docker does),
 *      inheritable = empty;
 *   5. clear PR_SET_KEEPCAPS.
 * Capabilities the process does not hold at all (a runtime above us dropped them) are left
 * out rather than failing, so "--cap-add ALL" means "all we have". */
int caps_apply (uint64_t set, bool root_user, cella_error_t *err);

/* Loading a seccomp filter needs no_new_privs or CAP_SYS_ADMIN in effective.  Without
 * no_new_privs the child runs, in this order:
 *   caps_apply_keep_admin (set, root_user)   -- as caps_apply, but CAP_SYS_ADMIN stays in
 *                                               effective+permitted (never in bounding unless
 *                                               in set: bounding only limits what execve grants)
 *   seccomp_load_default (set)               -- the filter allows capset(2)
 *   caps_drop_admin_if_absent (root_user ? set : 0)
 *   execve
 * caps_drop_admin_if_absent removes CAP_SYS_ADMIN from effective+permitted unless `set` has it;
 * pass 0 for a non-root user so it ends with nothing, as with caps_apply. */
int caps_apply_keep_admin (uint64_t set, bool root_user, cella_error_t *err);
int caps_drop_admin_if_absent (uint64_t set, cella_error_t *err);

/* This process's permitted set: what it can grant a container without a user namespace of its
 * own (0 when it cannot be read). */
uint64_t caps_held (void);

/* OCI's five sets, after the user switch with PR_SET_KEEPCAPS (as caps_apply): the bounding set
 * dropped to `bounding`, then effective/permitted/inheritable set, then each ambient capability
 * raised (it must be permitted and inheritable). keep_admin: CAP_SYS_ADMIN stays in effective
 * and permitted for a seccomp load without no_new_privs (then caps_drop_admin_if_absent). */
int caps_apply_sets (uint64_t bounding, uint64_t effective, uint64_t permitted, uint64_t inheritable, uint64_t ambient,
                     bool keep_admin, cella_error_t *err);

#endif
