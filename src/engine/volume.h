/* Named volumes (docker's "local" driver): directories under the data root that outlive the
 * containers that mount them.
 *
 *   $data/volumes/<name>/volume.json  the record: labels, options, creation time, anonymous
 *                        _data/       what containers see (copied up from the image when new)
 *   $data/volumes/.lock               flock held while volumes are created, mounted or removed
 *
 * A volume is made aside (.tmp-<name>-<id>) and renamed into place, so a crash leaves either
 * nothing or the whole volume. Which volumes a container uses is in its state.json (container.h,
 * struct ctr_volume); `volume rm` reads those records and refuses while one names the volume. */
#ifndef CELLA_VOLUME_H
#define CELLA_VOLUME_H

#include <stdbool.h>
#include <stddef.h>

#include "container.h"
#include "../plan/build.h"
#include "../util/util.h"

struct volume {
  char *name;
  char *mountpoint; /* $data/volumes/<name>/_data */
  char *created;    /* RFC 3339, UTC */
  char **labels;    /* KEY=VALUE */
  char **options;   /* KEY=VALUE: type, device, o */
  bool anonymous;   /* made for one container (VOLUME, -v /path); removed by rm -v */
};

void volume_clear (struct volume *v);
void volume_list_free (struct volume *v, size_t n);

/* [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 255 characters. */
bool volume_name_valid (const char *name);

/* Serialise volume changes against each other and against containers taking volumes: the
 * returned fd holds the lock; close it. */
int volume_lock (cella_error_t *err);

/* name NULL: a random 64-hex name. labels, opts: KEY=VALUE (opts: type=tmpfs|bind|none,
 * device=PATH, o=OPTS). An existing name is an error unless exist_ok, then *v is the existing
 * volume. *created (may be NULL) says whether it was made now. */
int volume_create (const char *name, char *const *labels, char *const *opts, bool anonymous, bool exist_ok,
                   struct volume *v, bool *created, cella_error_t *err);
int volume_load (const char *name, struct volume *v, cella_error_t *err);
/* Every volume, sorted by name. */
int volume_list (struct volume **out, size_t *n, cella_error_t *err);
/* The names of the containers (running or not) whose record names the volume; NULL if none. */
char **volume_users (const char *name);
/* A run the engine does not keep has no record to name its volumes: it holds each one it mounts
 * (a shared flock on the volume's directory, the fd returned) while it runs, and volume_remove
 * refuses a held volume. -1 when it cannot be held (the run goes on without). */
int volume_hold (const char *name);
/* Refuses while a container uses it (the error names the container), unless force. */
int volume_remove (const char *name, bool force, cella_error_t *err);

/* After a container's record is gone (rm -v, --rm): its anonymous volumes that no other
 * container uses. Best effort. */
void volume_remove_anonymous (const struct ctr_volume *v, size_t n);

/* The volume's JSON for inspect and ls --format json (docker's keys). */
struct json_t *volume_json (const struct volume *v);

/* Resolve the volumes of a run: -v NAME:/path, -v /path, --mount type=volume,
 * --volumes-from CTR[:ro] and, when anon_image, the image's VOLUME paths no user mount covers.
 * Volumes that do not exist are created (anonymous ones with a random name); o->volumes and
 * o->mounts are rewritten to binds of their directories (tmpfs-typed volumes to --tmpfs), so the
 * plan builder sees host paths only. *used lists what the container mounts; the caller holds
 * volume_lock until the container's record names them. New volumes are listed in *made. */
int volume_resolve_run (struct run_options *o, char *const *volumes_from, bool anon_image, struct ctr_volume **used,
                        size_t *nused, char ***made, cella_error_t *err);

/* Copy what the image has at each new, empty volume's target into the volume (owners, modes,
 * symlinks, times), docker's copy-up, from the plan's root (p->rootfs and p->root_layers). With
 * --userns=auto the new volume's files get the host ids of the container's (its root owns _data). */
int volume_copy_up (const struct ctr_volume *used, size_t nused, char *const *made, const struct plan *p,
                    cella_error_t *err);

#endif
