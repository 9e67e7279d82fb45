/* Where cella keeps its state: the data root (images, containers) and the run root
 * (pid files, sockets, locks).  DESIGN.md "On disk" describes the layout below them. */
#ifndef CELLA_PATHS_H
#define CELLA_PATHS_H

#include "util/util.h"

/* /var/lib/cella for root, else $XDG_DATA_HOME/cella or $HOME/.local/share/cella.
 * $CELLA_ROOT overrides it (tests).  Computed once per process and cached; the
 * directory is not created. */
const char *paths_data_root (void);

/* /run/cella for root, else $XDG_RUNTIME_DIR/cella, else /tmp/cella-run-<uid>.
 * $CELLA_RUN_ROOT overrides it.  Cached like paths_data_root; not created. */
const char *paths_run_root (void);

/* Make both roots when missing and check them (state_dir_ensure): every command that keeps or
 * reads state calls this first, so that a root another user planted (/tmp/cella-run-UID without
 * XDG_RUNTIME_DIR) is refused before anything in it is read or written. */
int paths_check (cella_error_t *err);

/* A new random id: 64 lowercase hex digits (256 bits from getrandom(2)), malloc'd.
 * NULL with errno set if the kernel gives no randomness. */
char *paths_new_id (void);

#endif
