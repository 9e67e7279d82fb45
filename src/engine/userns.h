/* --userns for containers run by root: the mode, and the subordinate id ranges that
 * --userns=auto gives each container (one range per container, never shared, recorded under the
 * data root while the container exists). */
#ifndef CELLA_ENGINE_USERNS_H
#define CELLA_ENGINE_USERNS_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "../util/util.h"

enum userns_mode {
  USERNS_HOST,    /* no user namespace of its own as root (a rootless container always has one) */
  USERNS_AUTO,    /* a free range of `size` ids: root inside is the range's first id outside */
  USERNS_KEEP_ID, /* a user namespace of its own with the caller's ids unchanged (podman's meaning for root) */
};

struct userns_spec {
  enum userns_mode mode;
  uint32_t size; /* auto: ids in the range */
};

#define USERNS_DEFAULT_SIZE 65536u
/* Where ids come from: the lines of the user `containers` in /etc/subuid and /etc/subgid (as
 * podman), else this range of cella's own, if no line of the file overlaps it. */
#define USERNS_SUBID_USER "containers"
#define USERNS_OWN_START 2147483648u /* 2^31 */
#define USERNS_OWN_COUNT 1073741824u /* 2^30: 16384 containers of 65536 ids */

/* "", "host", "auto", "auto:size=N", "keep-id" (NULL: host). */
int userns_parse (const char *s, struct userns_spec *out, cella_error_t *err);

struct id_range {
  uint32_t start, count;
};

/* The pool of a subuid/subgid file's text: the `containers` lines, else cella's own range
 * unless a line overlaps it. The number of ranges (0: none; *why says why, malloc'd). */
size_t userns_pool (const char *subid_text, struct id_range **out, char **why);

/* First fit: the lowest start of `size` ids inside one range of the pool that overlaps no used
 * range. 0 and *start, or -1 when no range has room. */
int userns_pick (const struct id_range *pool, size_t npool, const struct id_range *used, size_t nused, uint32_t size,
                 uint32_t *start);

/* A range of `size` uids and one of gids for container `id` (64 hex), from /etc/subuid and
 * /etc/subgid, disjoint from every range recorded under the data root that is still in use (its
 * container exists, or the process that took it lives). With `record`, the range is written down
 * for `id` (under a lock, so that concurrent creates cannot take the same ids); without, it is
 * only computed (--dry-run). */
int userns_allocate (const char *id, uint32_t size, bool record, uint32_t *uid, uint32_t *gid, cella_error_t *err);

/* Give the range of container `id` back (rm, or the end of a foreground run). */
void userns_release (const char *id);

#endif
