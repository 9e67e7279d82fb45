/* Capabilities by docker's names (src/plan/capnames.c). A capability set is a uint64_t with bit n =
 * capability number n (capabilities(7)). */
#ifndef CELLA_PLAN_CAPNAMES_H
#define CELLA_PLAN_CAPNAMES_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* Docker's default set: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP
 * SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE. */
uint64_t caps_default (void);

/* The number of a docker-style name ("chown", "CAP_CHOWN", "Cap_Chown"), -1 if unknown. */
int caps_number (const char *name);

/* caps_modify (src/ns/caps.h) with the set "ALL" means given: every capability of the kernel the
 * plan is for (the host's, from its facts). */
int caps_modify_in (uint64_t *set, const char *name, bool add, uint64_t all, cella_error_t *err);

#endif
