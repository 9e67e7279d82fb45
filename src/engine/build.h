/* cella build: a Containerfile (src/image/dockerfile.h reads it) run step by step into an image.
 * Each RUN runs as a container whose root is an overlay of the image so far with a fresh upper
 * dir; COPY and ADD write into such an upper dir directly; each upper dir becomes one layer through
 * the image tool (`cella-image commit --config`), which packs, hashes and stores it. Steps that
 * change only the config (ENV, LABEL, CMD, ...) add a history entry with empty_layer.
 *
 * The layer cache: $data/build-cache/<key>, one line (the store key of the image a step made),
 * where key hashes the parent's key chain, the instruction with its variables resolved and the
 * content of what COPY/ADD read. A rebuild whose steps all hit starts no container and packs
 * nothing. docs/images.md "Building images". */
#ifndef CELLA_ENGINE_BUILD_H
#define CELLA_ENGINE_BUILD_H

#include <stdbool.h>

#include "../util/util.h"

struct build_opts {
  const char *context;  /* the build context directory */
  const char *file;     /* -f: NULL: CONTEXT/Containerfile, else CONTEXT/Dockerfile */
  const char *target;   /* --target: a stage name or index; NULL: the last stage */
  char **tags;          /* -t NAME, NULL-terminated or NULL */
  char **build_args;    /* --build-arg K=V (K alone: the host's value) */
  char **labels;        /* --label K=V: added to the final image */
  const char *platform; /* --platform OS/ARCH[/VARIANT]: only the host's is accepted (NULL: the host's) */
  bool no_cache, quiet;
  bool pull;           /* --pull: pull every registry base again even when the store has it */
  const char *backend; /* --backend: what RUN steps run in, "ns" (NULL) or "vm" */
  /* runs `cella-image ARGV...`: its exit status, or -1 with *err when it did not run */
  int (*tool) (char *const *argv, cella_error_t *err);
};

/* Build; *id out: the new image's id (config digest, "sha256:…"). */
int build_image (const struct build_opts *o, char **id, cella_error_t *err);

#endif
