/* A client for the OCI distribution API (v2) over libcurl: manifests, blobs, the login check,
 * and uploads (push).
 *
 * Authentication follows the registry: the first request goes out anonymous; a 401 names a
 * scheme in WWW-Authenticate. Basic → the credentials are sent on every later request. Bearer →
 * a token is fetched from the challenge's realm (scope repository:REPO:pull, or pull,push once
 * registry_set_push was called; with the basic credentials when there are some) and reused for the session; a 401 on a
 * later request fetches a fresh one once (tokens expire during long pulls). Credentials come from reg_opts, else
 * auth.json (auth.h) for the host, else none. */
#ifndef CELLA_IMAGE_REGISTRY_H
#define CELLA_IMAGE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct reg_opts {
  bool tls_verify;         /* default true; false = accept any cert */
  bool plain_http;         /* talk http:// (insecure registry); the caller sets it for localhost/127.0.0.1/::1
                              hosts automatically unless told otherwise (registry_host_is_local); with
                              tls_verify false, https is tried first, then http */
  int retries;             /* on 5xx, 429, connection reset/timeouts: default 4, back-off 200 ms doubling
                              (Retry-After honoured); 0 = no retry */
  const char *user, *pass; /* basic credentials (from login); NULL = look up auth.json for the host, else anonymous */
};
/* The defaults; a zeroed struct would mean tls_verify = false, so start from this one. */
#define REG_OPTS_INIT                                                                                                  \
  {                                                                                                                    \
    .tls_verify = true, .plain_http = false, .retries = 4, .user = NULL, .pass = NULL                                  \
  }

/* --tls-verify (NULL: not given; else true or false, *err otherwise) for a registry on `host`.
 * A local one (registry_host_is_local) is docker's insecure registry unless --tls-verify=true:
 * https without checking its certificate first, then plain http. */
int registry_opts_tls (const char *host, const char *tls_verify, struct reg_opts *ro, cella_error_t *err);

/* localhost, 127.0.0.1, ::1 with or without a port: registries one talks to over plain http. */
bool registry_host_is_local (const char *host);

struct registry;
/* host: "docker.io" (mapped to registry-1.docker.io), "quay.io", "127.0.0.1:5000"; repo: "library/busybox".
 * o NULL = REG_OPTS_INIT. Strings are copied. */
struct registry *registry_new (const char *host, const char *repo, const struct reg_opts *o);
void registry_free (struct registry *r);

/* Media types of the manifests we ask for. */
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* GET /v2/REPO/manifests/REF (tag or digest), accepting the four types above. Returns the body
 * (malloc'd, NUL-terminated, at most 4 MiB), its media type (Content-Type, or mediaType in the body
 * when the header is generic; malloc'd) and its digest (sha256 of the body; when REF is a digest it
 * must equal REF, else a "digest mismatch" error). Errors: "manifest unknown: REPO:REF not found on
 * HOST" (404), "unsupported manifest media type X", the auth and network errors below. */
int registry_get_manifest (struct registry *r, const char *ref, char **body, size_t *len, char **media_type,
                           char digest[72], cella_error_t *err);

struct blob_req {
  const char *digest; /* expected "sha256:..." */
  int64_t size;       /* expected size, -1 unknown */
  int fd;             /* written from offset 0 (truncated first); the caller owns it */
  /* results */
  int64_t done; /* bytes received and verified: == size only for a blob whose digest matched */
};
/* Throttled, ≥ 100 ms apart per blob, plus a final call with done == total; done goes back to 0
 * when a blob restarts after an error. total is -1 when unknown. */
typedef void (*reg_progress_fn) (size_t index, int64_t done, int64_t total, void *ud);

/* Download the blobs, up to `parallel` at once, following redirects to storage (the Authorization
 * header is not sent to another host), verifying the size and sha256 of every byte. A mismatch is
 * "HOST/REPO: blob sha256:…: digest mismatch (got sha256:…)" (or "…: size mismatch (…)"), a 404
 * "blob sha256:… not found in HOST/REPO"; on any error nothing is claimed: every fd is truncated
 * to 0 and every done is 0. A blob that fails on a transient error restarts from 0 after a back-off.
 * fd must be a regular file (written with pwrite). */
int registry_get_blobs (struct registry *r, struct blob_req *reqs, size_t n, int parallel, reg_progress_fn cb, void *ud,
                        cella_error_t *err);

/* GET /v2/ with the credentials: 0 when accepted; "… unauthorized: wrong user name or password"
 * when the registry (or its token server) refuses them. */
int registry_check_login (struct registry *r, cella_error_t *err);

/* ---- push ---- */

/* From now on tokens are asked for `repository:REPO:pull,push` (and `repository:FROM:pull` when
 * mount_from is given, for cross-repository mounts); a pull-only token held is dropped. */
void registry_set_push (struct registry *r, const char *mount_from);

/* Another client for the same registry and repository, with what r learnt (the scheme, the
 * credentials, the current Authorization): one per thread when blobs go up in parallel. */
struct registry *registry_dup (const struct registry *r);

/* HEAD /v2/REPO/blobs/DIGEST: 1 when the registry has it (*size its length, -1 unknown; size may
 * be NULL), 0 when not, < 0 on an error. */
int registry_blob_exists (struct registry *r, const char *digest, int64_t *size, cella_error_t *err);

/* POST /v2/REPO/blobs/uploads/?mount=DIGEST&from=FROM: 1 mounted; 0 not, with the upload the
 * registry started instead in *upload_url (malloc'd; hand it to registry_put_blob), < 0 on an error. */
int registry_blob_mount (struct registry *r, const char *digest, const char *from, char **upload_url,
                         cella_error_t *err);

struct blob_upload {
  const char *digest; /* "sha256:..." of the bytes */
  const void *mem;    /* the bytes, else read from fd at offsets 0..size */
  int fd;
  int64_t size;
  int64_t chunk; /* > 0: PATCH chunks of this many bytes, then PUT the rest; 0: one PUT */
};
/* Upload a blob: POST /v2/REPO/blobs/uploads/ (or continue `started`, which it takes and frees),
 * following each Location (absolute or relative), then PUT LOCATION?digest=. cb gets (index,
 * bytes sent, size) as it goes. A registry that refuses is "HOST/REPO: blob …: registry HOST
 * refused to …". */
int registry_put_blob (struct registry *r, const struct blob_upload *b, char *started, size_t index, reg_progress_fn cb,
                       void *ud, cella_error_t *err);

/* PUT /v2/REPO/manifests/REF with Content-Type media_type; digest out (sha256 of body; when the
 * registry answers Docker-Content-Digest it must be the same). REF may be a tag or that digest. */
int registry_put_manifest (struct registry *r, const char *ref, const char *body, size_t len, const char *media_type,
                           char digest[72], cella_error_t *err);

/* ---- internals, declared for the unit tests ---- */

/* An upload's Location made absolute: kept when it has a scheme, "scheme:" + it when it starts
 * with "//", "scheme://host" + it when it starts with "/", else relative to base_path's directory.
 * NULL for no Location. */
char *reg_location_url (const char *scheme, const char *host, const char *base_path, const char *location);
/* url with "param" added to its query ("?" or "&" as needed; a fragment is dropped). */
char *reg_url_add_query (const char *url, const char *param);

enum reg_auth_scheme {
  REG_AUTH_NONE,
  REG_AUTH_BASIC,
  REG_AUTH_BEARER,
};

struct reg_challenge {
  enum reg_auth_scheme scheme;
  char *realm, *service, *scope, *error; /* malloc'd or NULL */
};

/* Parse a WWW-Authenticate value (several challenges may be joined with commas: a Bearer one wins
 * over a Basic one; unknown schemes are skipped). 0 when a Basic or Bearer challenge was found. */
int reg_challenge_parse (const char *header, struct reg_challenge *c);
void reg_challenge_clear (struct reg_challenge *c);

/* What a manifest response is: its Content-Type (without parameters; generic ones like
 * application/json say nothing) checked against the body's mediaType or shape; one of the four
 * MT_* above in *out (malloc'd), else an error naming `what` (not JSON, an ambiguous document
 * with both `manifests` and `layers`, a mismatch, an unsupported type). */
int registry_manifest_media_type (const char *text, size_t len, const char *content_type, const char *what, char **out,
                                  cella_error_t *err);

#endif
