#ifndef CELLA_SELFEXEC_H
#define CELLA_SELFEXEC_H
#include <stdbool.h>

/* Re-execute cella from a sealed, anonymous copy of its own binary, so that a container that
 * reaches /proc/self/exe of a cella process (the CVE-2019-5736 class) finds a memfd it cannot
 * write, never the binary on the host. Returns only when already running from such a copy, or
 * with -1 when the copy could not be made (errno set). */
int selfexec_sealed (char **argv);

/* The cheaper protection for a process whose containers' first process execs through the exec
 * stub (src/util/execstub.h) instead: no re-exec of this binary now; a sealed memfd of the stub is
 * made, for selfexec_stub_exec. Only for callers none of whose processes stays in a container's
 * PID namespace running this binary (docs/security.md, "The cella binary"). Returns 0 (the stub is
 * ready, or the binary is safe already and the stub not needed), or -1 when no memfd could be
 * made: the caller then re-executes with selfexec_sealed. */
int selfexec_defer_to_stub (void);
/* Whether execs in containers must go through the stub (selfexec_defer_to_stub made it). */
bool selfexec_stub_armed (void);
/* Exec the workload argv (env: its environment) through the stub: PROGRAM without a `/` is
 * looked for in path_list. syncfd, the container's sync socket, stays open across the stub's
 * exec and closes at the workload's; the stub reports a failed exec on it (struct
 * execstub_failure). Returns only when the stub itself could not be executed (errno set). */
void selfexec_stub_exec (int syncfd, const char *path_list, char *const *argv, char *const *env);
#endif
