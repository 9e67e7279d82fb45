/* The OCI runtime's record of its containers (src/oci/state.c): one directory per container
 * under the state root (--root), holding state.json, the plan it was created from (plan.json),
 * the exec fifo while it is created-but-not-started, and a lock. docs/oci.md. */
#ifndef CELLA_OCI_STATE_H
#define CELLA_OCI_STATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "../util/util.h"

struct oci_state {
  char *id;
  char *bundle;                  /* absolute */
  char *rootfs;                  /* absolute host path of the root */
  pid_t pid;                     /* the container's init; 0 while it is being created */
  unsigned long long start_time; /* field 22 of /proc/PID/stat: tells a reused pid apart */
  char *created;                 /* RFC 3339, UTC */
  char *annotations;             /* config.json's annotations as JSON text ("{}" when none) */
  bool paused;                   /* frozen by `pause` */
  uid_t owner;
  unsigned long long root_mount; /* no mount namespace: the root's bind in ours (ns_host_root_release) */
};

void oci_state_clear (struct oci_state *s);

/* The default state root: /run/cella-oci as root, $XDG_RUNTIME_DIR/cella-oci otherwise
 * (/tmp/cella-oci-UID when that is unset). Caller frees. */
char *oci_root_default (void);

/* ROOT/ID, after checking ID is a valid container id (letters, digits, _ + - .; not . or ..). */
int oci_dir (const char *root, const char *id, char **out, cella_error_t *err);

/* Make ROOT/ID (and ROOT): an error "container `ID` already exists" when it does. */
int oci_dir_create (const char *root, const char *id, char **out, cella_error_t *err);

/* Take the container's lock (flock on ROOT/ID/lock), blocking; returns the fd (close releases). */
int oci_lock (const char *dir, cella_error_t *err);

/* Read ROOT/ID/state.json: "container `ID` does not exist" when there is none. */
int oci_state_read (const char *root, const char *id, struct oci_state *s, cella_error_t *err);
/* The same from the file's text (`path` names it in messages): fills *s (cleared first; free
 * with oci_state_clear). fuzz/fuzz_state.c calls it. */
int oci_state_parse (const char *text, const char *id, const char *path, struct oci_state *s, cella_error_t *err);
/* Write it crash-safely (tmp + fsync + rename). */
int oci_state_write (const char *root, const struct oci_state *s, cella_error_t *err);

/* creating | created | running | paused | stopped, from the record and the live system: the pid
 * gone, a zombie, or reused (another start time) is stopped; the exec fifo present is created. */
const char *oci_state_status (const char *root, const struct oci_state *s);

/* The state as the OCI runtime spec gives it (plus runc's rootfs, created, owner), JSON text. */
char *oci_state_text (const char *root, const struct oci_state *s, int indent);

/* Field 22 of /proc/PID/stat (proc_stat_read, util/proc.h); 0 when the process is gone. zombie: set
 * when it is one. */
unsigned long long oci_proc_start_time (pid_t pid, bool *zombie);

/* Remove ROOT/ID entirely. */
int oci_dir_remove (const char *root, const char *id, cella_error_t *err);

#endif
