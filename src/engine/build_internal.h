/* cella build's parts (build.c runs the steps, build_copy.c does COPY and ADD). */
#ifndef CELLA_ENGINE_BUILD_INTERNAL_H
#define CELLA_ENGINE_BUILD_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/util.h"

struct df_ignore;

/* A 128-bit hash of cache-key material (two FNV-1a variants: not cryptographic, a cache key). */
struct bhash {
  uint64_t a, b;
};
void bh_init (struct bhash *h);
void bh_update (struct bhash *h, const void *buf, size_t len);
void bh_str (struct bhash *h, const char *s);
void bh_hex (const struct bhash *h, char out[33]);

/* openat2 of rel under rootfd: RESOLVE_BENEATH (a context: a symlink out of it fails with EXDEV),
 * or RESOLVE_IN_ROOT (a stage's or an image's root). */
int bc_open (int rootfd, const char *rel, int flags, bool in_root);
/* The sources one COPY word names (globs expanded), relative to rootfd, appended to *out. */
int bc_sources (int rootfd, const char *word, bool in_root, const struct df_ignore *ig, const char *where, char ***out,
                cella_error_t *err);
/* Hash a source (content, modes, link texts; a directory's tree minus what ig excludes). */
int bc_hash_source (int rootfd, const char *rel, const struct df_ignore *ig, struct bhash *h);

struct copy_job {
  const char *where;    /* "Containerfile:12: COPY a b" for errors */
  const char *src_root; /* the context, or a flattened stage/image root */
  bool is_context;      /* sources resolve beneath src_root; owners default to 0:0 */
  char **sources;       /* relative to src_root */
  const struct df_ignore *ignore;
  const char *dest;   /* absolute in the container, cleaned */
  bool dest_dir;      /* sources go under dest */
  bool add;           /* ADD: a local archive is unpacked */
  const char *upper;  /* the step's upper dir */
  char **layers;      /* the image so far: layer dirs above bottom, top-most first (or NULL) */
  const char *bottom; /* its bottom layer, or NULL for an empty root */
  bool chown_set, chmod_set;
  uid_t uid;
  gid_t gid;
  mode_t mode;
  const char *heredoc_data, *heredoc_name; /* COPY <<EOF: the file's text and name */
};
int bc_copy_run (void *ud, cella_error_t *err);

/* --backend vm: the RUN step's layer in dir/upper from the guest's root stream in
 * dir/export.raw and the stage's layers (top-most first, the bottom last; NULL: an empty root),
 * in the mapped user namespace (build_vm.c). */
int build_vm_layer (const char *dir, char *const *layers, cella_error_t *err);

#endif
