/* sha256 over OpenSSL's EVP interface (digest.h). */
#define _GNU_SOURCE
#include "image/tool/digest.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

struct sha256 {
  EVP_MD_CTX *ctx;
};

struct sha256 *
sha256_new (void)
{
  struct sha256 *h = xzalloc (sizeof *h);
  h->ctx = EVP_MD_CTX_new ();
  if (h->ctx == NULL || EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL) != 1)
    abort ();
  return h;
}

void
sha256_update (struct sha256 *h, const void *buf, size_t len)
{
  if (len > 0 && EVP_DigestUpdate (h->ctx, buf, len) != 1)
    abort ();
}

void
sha256_final (struct sha256 *h, char out[72])
{
  static const char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  char *p = out;
  if (EVP_DigestFinal_ex (h->ctx, md, &n) != 1 || n != 32)
    abort ();
  p = stpcpy (p, "sha256:");
  for (unsigned int i = 0; i < n; i++)
    {
      *p++ = hex[md[i] >> 4];
      *p++ = hex[md[i] & 0xf];
    }
  *p = '\0';
  sha256_free (h);
}

void
sha256_free (struct sha256 *h)
{
  if (h == NULL)
    return;
  EVP_MD_CTX_free (h->ctx);
  free (h);
}

int
sha256_fd (int fd, char out[72], uint64_t *size, cella_error_t *err)
{
  struct sha256 *h = sha256_new ();
  uint64_t total = 0;
  cleanup_free char *buf = xmalloc (65536);
  for (;;)
    {
      ssize_t r = read (fd, buf, 65536);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          int e = errno;
          sha256_free (h);
          return cella_error (err, e, "read to compute sha256");
        }
      if (r == 0)
        break;
      sha256_update (h, buf, r);
      total += r;
    }
  sha256_final (h, out);
  if (size)
    *size = total;
  return 0;
}

bool
digest_valid (const char *d)
{
  if (d == NULL || strncmp (d, "sha256:", 7) != 0)
    return false;
  d += 7;
  for (int i = 0; i < 64; i++)
    if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
      return false;
  return d[64] == '\0';
}
