/* Content digests as the OCI specs write them: "sha256:" + 64 lowercase hex digits. */
#ifndef CELLA_IMAGE_DIGEST_H
#define CELLA_IMAGE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define DIGEST_BUF 72 /* "sha256:" + 64 hex + NUL, rounded up */

struct sha256; /* opaque */

/* Aborts on OOM like xmalloc; OpenSSL failing to set up sha256 aborts too. */
struct sha256 *sha256_new (void);
void sha256_update (struct sha256 *h, const void *buf, size_t len);
/* Writes "sha256:<64 lowercase hex>" and frees h. */
void sha256_final (struct sha256 *h, char out[72]);
/* Frees h without finishing; NULL is fine. */
void sha256_free (struct sha256 *h);
/* Hash from the current offset to EOF; *size (may be NULL) gets the byte count. */
int sha256_fd (int fd, char out[72], uint64_t *size, cella_error_t *err);
/* "sha256:" + exactly 64 lowercase hex digits, nothing else. */
bool digest_valid (const char *d);

#endif
