/* cella-image fetch --output FILE [--checksum sha256:HEX] URL: one file over http(s) for
 * `cella build`'s ADD URL (src/engine/build.c). libcurl, like the registry client: redirects
 * followed (at most 10), TLS verified, an HTTP status >= 400 is an error naming the URL. The
 * file's mtime is the Last-Modified header when the server sends one (docker does the same), and
 * its mode is 0600 (the build sets the mode in the image). --checksum is checked before the file is
 * kept: on any error FILE does not exist. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

/* a build context file is not a registry blob, but 4 GiB is the sanity bound all the same */
#define FETCH_MAX ((curl_off_t) 4 << 30)

struct fetch_opts {
  char *output, *checksum;
};

#define O(f) offsetof (struct fetch_opts, f)
/* Internal (cella build's ADD URL runs it): no help texts, so not a user's options to list. */
static const struct cli_option fetch_table[] = {
  { "output", 'o', OPT_STRING, O (output), "FILE", NULL },         /* where to write it (must not exist) */
  { "checksum", 0, OPT_STRING, O (checksum), "sha256:HEX", NULL }, /* the sha256 the content must have */
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

struct sink {
  int fd;
  EVP_MD_CTX *md;
  int werrno;
};

static size_t
sink_write (char *buf, size_t size, size_t n, void *ud)
{
  struct sink *s = ud;
  size_t len = size * n, off = 0;
  EVP_DigestUpdate (s->md, buf, len);
  while (off < len)
    {
      ssize_t w = write (s->fd, buf + off, len - off);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          s->werrno = errno;
          return 0;
        }
      off += (size_t) w;
    }
  return len;
}

static int
fetch_url (const char *url, int fd, char hex[65], long *filetime, cella_error_t *err)
{
  CURL *c = curl_easy_init ();
  struct sink s = { fd, EVP_MD_CTX_new (), 0 };
  char errbuf[CURL_ERROR_SIZE] = "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  long code = 0;
  CURLcode rc;
  int ret = -1;
  if (c == NULL || s.md == NULL || EVP_DigestInit_ex (s.md, EVP_sha256 (), NULL) != 1)
    {
      cella_error (err, 0, "%s: cannot start a download", url);
      goto out;
    }
  curl_easy_setopt (c, CURLOPT_URL, url);
  curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt (c, CURLOPT_FILETIME, 1L);
  curl_easy_setopt (c, CURLOPT_MAXFILESIZE_LARGE, FETCH_MAX);
  curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt (c, CURLOPT_USERAGENT, "cella-build");
  curl_easy_setopt (c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  rc = curl_easy_perform (c);
  curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK)
    {
      if (s.werrno)
        cella_error (err, s.werrno, "%s: writing the download", url);
      else
        cella_error (err, 0, "%s: %s", url, *errbuf ? errbuf : curl_easy_strerror (rc));
      goto out;
    }
  if (code >= 400)
    {
      cella_error (err, 0, "%s: the server answered HTTP %ld", url, code);
      goto out;
    }
  *filetime = -1;
  curl_easy_getinfo (c, CURLINFO_FILETIME, filetime);
  EVP_DigestFinal_ex (s.md, md, &mdlen);
  for (unsigned i = 0; i < mdlen && i < 32; i++)
    snprintf (hex + 2 * i, 3, "%02x", md[i]);
  ret = 0;
out:
  EVP_MD_CTX_free (s.md);
  if (c)
    curl_easy_cleanup (c);
  return ret;
}

int
cmd_fetch (int argc, char **argv)
{
  struct fetch_opts o = { 0 };
  cella_error_t err = NULL;
  int fd = -1, status,
      first
      = cli_parse_command (fetch_table, &o, argc, argv, "cella-image fetch --output FILE [--checksum sha256:HEX] URL",
                           "Download one file over http(s) (cella build's ADD URL).", 1, "a URL is required", &status);
  char hex[65] = "";
  long filetime = -1;
  bool created = false;
  if (first <= 0)
    goto done;
  status = 125;
  if (o.output == NULL)
    {
      cella_error (&err, 0, "fetch: --output FILE is required");
      goto fail;
    }
  if (o.checksum
      && (strncmp (o.checksum, "sha256:", 7) != 0 || strlen (o.checksum) != 71
          || strspn (o.checksum + 7, "0123456789abcdef") != 64))
    {
      cella_error (&err, 0, "--checksum `%s`: expected sha256: and 64 lower-case hex digits", o.checksum);
      goto fail;
    }
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    {
      cella_error (&err, 0, "libcurl did not initialise");
      goto fail;
    }
  fd = open (o.output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      cella_error (&err, errno, "create `%s`", o.output);
      goto fail;
    }
  created = true;
  if (fetch_url (argv[first], fd, hex, &filetime, &err) < 0)
    goto fail;
  if (o.checksum && strcmp (o.checksum + 7, hex) != 0)
    {
      cella_error (&err, 0, "%s: checksum mismatch: expected %s, got sha256:%s", argv[first], o.checksum, hex);
      goto fail;
    }
  if (filetime >= 0)
    {
      struct timespec ts[2] = { { filetime, 0 }, { filetime, 0 } };
      futimens (fd, ts);
    }
  if (fsync (fd) < 0 || close (fd) < 0)
    {
      fd = -1;
      cella_error (&err, errno, "write `%s`", o.output);
      goto fail;
    }
  fd = -1;
  status = 0;
  goto done;
fail:
  if (fd >= 0)
    close (fd);
  if (created)
    unlink (o.output);
  cella_error_print (&err);
  status = 125;
done:
  free (o.output);
  free (o.checksum);
  return status;
}
