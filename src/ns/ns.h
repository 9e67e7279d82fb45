/* The namespace backend: runs a plan with clone(2) namespaces, mount ops and pivot_root. */
#ifndef CELLA_NS_H
#define CELLA_NS_H

#include "../plan/plan.h"

/* Run the plan in the foreground; returns the exit status to give the caller (the workload's,
 * 125/126/127, or 128+N for a signal), or a negative value with *err set when nothing ran. */
int ns_run (struct plan *p, cella_error_t *err);

/* Why the backend cannot run here (NULL when it can); used by doctor and auto choice. */
bool ns_available (char **why);

#endif
