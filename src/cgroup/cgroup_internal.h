/* Shared by cgroup.c and cgroup_ctl.c. */
#ifndef CELLA_CGROUP_INTERNAL_H
#define CELLA_CGROUP_INTERNAL_H

#include "cgroup.h"

/* Write value to dir/file; the error names both. */
int cg_write (const char *dir, const char *file, const char *value, cella_error_t *err);
/* dir/file's text (malloc'd), NULL when unreadable. */
char *cg_read (const char *dir, const char *file);
bool cg_has (const char *dir, const char *file);
/* Is word one of the space-separated words of list? */
bool cg_word (const char *list, const char *word);
/* Does r set a limit of the v2 controller ctl (then failing to enable it is an error)? */
bool cg_v2_needed (const struct plan_resources *r, const char *ctl);
const char *cg_v1_name (enum cgroup_v1 c);
/* Hybrid: does r need the cgroup2 tree too (hugepage limits and no v1 hugetlb hierarchy)? */
bool cg_unified_used (const struct cgroup_dirs *d, const struct plan_resources *r);

#endif
