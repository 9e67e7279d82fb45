/* OCI distribution v2 client (registry.h). Every request, one manifest or twenty blobs, is an
 * `xfer` run by one loop over a curl multi handle: that loop owns retries, back-off, the auth
 * challenge and the http fallback, so the three public calls only say what to fetch and what
 * a finished response means. */
#define _GNU_SOURCE
#include "image/tool/registry.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "image/tool/auth.h"
#include "image/tool/digest.h"

#ifndef CELLA_VERSION
#define CELLA_VERSION "0.1.0" /* keep in step with src/cli/main.c */
#endif

#define MANIFEST_MAX (4 * 1024 * 1024)
#define TOKEN_MAX (1024 * 1024)
#define ERRBODY_MAX (64 * 1024)
#define BACKOFF_MS 200
#define RETRY_AFTER_MAX_MS 60000
#define PROGRESS_MS 100

#define ACCEPT_MANIFESTS "Accept: " MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST

struct registry {
  char *host;     /* as the user wrote it: messages, auth.json */
  char *api_host; /* where requests go */
  char *repo;
  bool tls_verify;
  bool use_http;     /* plain http */
  bool scheme_known; /* false while https may still fall back to http */
  int retries;
  bool creds_loaded;
  char *user, *pass;
  char *authz;       /* "Authorization: ..." once a challenge was answered */
  unsigned auth_gen; /* bumped whenever authz changes */
  char *user_agent;
  bool push;          /* tokens ask for pull,push */
  char *mount_from;   /* and pull on this repository (cross-repository mounts), or NULL */
  CURLM *multi;       /* registry requests */
  CURLM *token_multi; /* token requests, run while `multi` waits */
};

/* ---------------------------------------------------------------- small helpers */

static int64_t
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
curl_init_once (void)
{
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    abort ();
}

bool
registry_host_is_local (const char *host)
{
  static const char *const names[] = { "localhost", "127.0.0.1", "[::1]", "::1" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    {
      size_t n = strlen (names[i]);
      if (strncasecmp (host, names[i], n) != 0)
        continue;
      /* "::1:5000" is not a host and a port: a bare IPv6 address takes no port */
      if (host[n] == '\0' || (host[n] == ':' && strcmp (names[i], "::1") != 0))
        return true;
    }
  return false;
}

int
registry_opts_tls (const char *host, const char *tls_verify, struct reg_opts *ro, cella_error_t *err)
{
  if (tls_verify && strcmp (tls_verify, "true") != 0 && strcmp (tls_verify, "false") != 0)
    return cella_error (err, 0, "--tls-verify `%s`: expected true or false", tls_verify);
  ro->tls_verify = tls_verify ? strcmp (tls_verify, "true") == 0 : !registry_host_is_local (host);
  ro->plain_http = false; /* without verification, https falls back to http by itself */
  return 0;
}

/* "HOST/REPO:TAG" or "HOST/REPO@DIGEST": what an error is about. */
static char *
ref_display (const struct registry *r, const char *ref)
{
  return xasprintf ("%s/%s%s%s", r->host, r->repo, has_prefix (ref, "sha256:") ? "@" : ":", ref);
}

/* The registry's {"errors":[{"code","message"}]} as "CODE: message", else the body's first line. */
static char *
error_body_text (const char *body, size_t len)
{
  json_t *j = body && len ? json_loadb (body, len, 0, NULL) : NULL;
  json_t *e = json_array_get (json_object_get (j, "errors"), 0);
  const char *code = json_string_value (json_object_get (e, "code"));
  const char *msg = json_string_value (json_object_get (e, "message"));
  char *s;
  if (code || msg)
    s = xasprintf ("%s%s%s", code ? code : "", code && msg ? ": " : "", msg ? msg : "");
  else
    {
      size_t n = 0;
      while (body && n < len && n < 200 && body[n] != '\n' && body[n] != '\r')
        n++;
      s = xasprintf ("%.*s", (int) n, body ? body : "");
    }
  json_decref (j);
  return s;
}

/* ---------------------------------------------------------------- WWW-Authenticate */

static bool
is_tchar (char c)
{
  return isalnum ((unsigned char) c) || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

static const char *
skip_ws (const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* A quoted-string (backslash escapes any char) or a token; *p is left after it. */
static char *
parse_value (const char **pp)
{
  const char *p = *pp;
  char *out = xmalloc (strlen (p) + 1), *o = out;
  if (*p == '"')
    {
      for (p++; *p && *p != '"'; p++)
        {
          if (*p == '\\' && p[1])
            p++;
          *o++ = *p;
        }
      if (*p == '"')
        p++;
    }
  else
    while (*p && *p != ',' && *p != ' ' && *p != '\t')
      *o++ = *p++;
  *o = '\0';
  *pp = p;
  return out;
}

struct chal_parse {
  struct reg_challenge cur, best;
};

/* Keep cur when it is better than what we have (Bearer > Basic > anything else). */
static void
chal_commit (struct chal_parse *s)
{
  if (s->cur.scheme > s->best.scheme)
    {
      reg_challenge_clear (&s->best);
      s->best = s->cur;
    }
  else
    reg_challenge_clear (&s->cur);
  memset (&s->cur, 0, sizeof s->cur);
}

static void
chal_param (struct reg_challenge *c, const char *name, size_t n, char *value)
{
  static const struct {
    const char *name;
    size_t off;
  } keys[] = {
    { "realm", offsetof (struct reg_challenge, realm) },
    { "service", offsetof (struct reg_challenge, service) },
    { "scope", offsetof (struct reg_challenge, scope) },
    { "error", offsetof (struct reg_challenge, error) },
  };
  for (size_t i = 0; c->scheme != REG_AUTH_NONE && i < sizeof keys / sizeof keys[0]; i++)
    if (strlen (keys[i].name) == n && strncasecmp (name, keys[i].name, n) == 0)
      {
        char **slot = (char **) ((char *) c + keys[i].off);
        free (*slot);
        *slot = value;
        return;
      }
  free (value);
}

int
reg_challenge_parse (const char *header, struct reg_challenge *c)
{
  struct chal_parse s = { { 0 }, { 0 } };
  const char *p = header ? header : "";
  bool in_challenge = false;
  for (;;)
    {
      const char *name;
      size_t n;
      while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
      if (*p == '\0')
        break;
      name = p;
      while (is_tchar (*p))
        p++;
      n = p - name;
      if (n == 0)
        {
          p++; /* not a token: skip the byte rather than loop on it */
          continue;
        }
      p = skip_ws (p);
      if (*p == '=' && in_challenge)
        {
          p = skip_ws (p + 1);
          chal_param (&s.cur, name, n, parse_value (&p));
          continue;
        }
      /* a new challenge: its scheme name */
      if (in_challenge)
        chal_commit (&s);
      in_challenge = true;
      s.cur.scheme = n == 5 && strncasecmp (name, "basic", 5) == 0    ? REG_AUTH_BASIC
                     : n == 6 && strncasecmp (name, "bearer", 6) == 0 ? REG_AUTH_BEARER
                                                                      : REG_AUTH_NONE;
      /* token68 credentials ("Negotiate abc==") belong to schemes we ignore */
      if (s.cur.scheme == REG_AUTH_NONE && *p != ',' && *p != '\0')
        {
          const char *q = p;
          while (is_tchar (*q) || *q == '/')
            q++;
          while (*q == '=')
            q++;
          q = skip_ws (q);
          if (*q == ',' || *q == '\0')
            p = q;
        }
    }
  if (in_challenge)
    chal_commit (&s);
  *c = s.best;
  return c->scheme == REG_AUTH_NONE ? -1 : 0;
}

void
reg_challenge_clear (struct reg_challenge *c)
{
  free (c->realm);
  free (c->service);
  free (c->scope);
  free (c->error);
  memset (c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- transfers */

struct xfer;
/* Called once the response is final (not retried): 0 or an error that stops every transfer. */
typedef int (*xfer_finish_fn) (struct registry *r, struct xfer *x, cella_error_t *err);

enum xfer_state {
  X_WAITING,
  X_RUNNING,
  X_DONE,
};

struct xfer {
  /* the request */
  const char *what;   /* "HOST/REPO:REF", for messages */
  const char *path;   /* under the registry ("/v2/..."): the URL is built per attempt */
  const char *url;    /* or an absolute URL (token realm) */
  const char *accept; /* a header line, or NULL */
  const char *basic;  /* an Authorization header line for a token request, or NULL */
  const char *digest; /* a blob's expected digest */
  const char *method; /* NULL: GET; "HEAD", "POST", "PUT", "PATCH" */
  const char *ctype;  /* a Content-Type header line for the request body, or NULL */
  const char *crange; /* a Content-Range header line, or NULL */
  bool upload;        /* send a body: up_len bytes of up_mem, else of up_fd from up_off */
  const char *up_mem;
  int up_fd;
  int64_t up_off, up_len, up_pos;
  int64_t cb_base, cb_total; /* an upload's progress: cb_base + bytes sent of cb_total */
  bool reg_auth;             /* a registry request: a 401 runs the auth flow */
  int fd;                    /* body to fd from offset 0, else to memory */
  int64_t expect_size;
  size_t max_mem;
  xfer_finish_fn finish;
  size_t index;
  reg_progress_fn cb;
  void *ud;
  /* state */
  enum xfer_state state;
  CURL *easy;
  struct curl_slist *hdrs;
  int attempt, auth_tries;
  unsigned auth_gen;
  bool used_https;
  int64_t start_at, last_cb;
  char errbuf[CURL_ERROR_SIZE];
  /* the response */
  CURLcode cres;
  long status, cur_status;
  bool overflow;
  int write_errno;
  char *body, *errbody;
  size_t body_len, errbody_len;
  int64_t got;
  struct sha256 *hash;
  char *content_type, *www_auth, *retry_after, *location, *dcd;
};

static void
xfer_reset_response (struct xfer *x)
{
  x->cres = CURLE_OK;
  x->status = x->cur_status = 0;
  x->overflow = false;
  x->write_errno = 0;
  free (x->body);
  free (x->errbody);
  x->body = x->errbody = NULL;
  x->body_len = x->errbody_len = 0;
  x->got = 0;
  sha256_free (x->hash);
  x->hash = sha256_new ();
  free (x->content_type);
  free (x->www_auth);
  free (x->retry_after);
  free (x->location);
  free (x->dcd);
  x->content_type = x->www_auth = x->retry_after = x->location = x->dcd = NULL;
  x->up_pos = 0;
  x->errbuf[0] = '\0';
}

static void
xfer_clear (CURLM *m, struct xfer *x)
{
  if (x->easy)
    {
      curl_multi_remove_handle (m, x->easy);
      curl_easy_cleanup (x->easy);
    }
  curl_slist_free_all (x->hdrs);
  free (x->body);
  free (x->errbody);
  sha256_free (x->hash);
  free (x->content_type);
  free (x->www_auth);
  free (x->retry_after);
  free (x->location);
  free (x->dcd);
  memset (x, 0, sizeof *x);
  x->fd = -1;
}

static void
buf_append (char **buf, size_t *len, const char *data, size_t n)
{
  *buf = xrealloc (*buf, *len + n + 1);
  memcpy (*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
}

/* "Name: value" → value (malloc'd, trimmed) when the header is `name`. */
static char *
header_value (const char *line, size_t n, const char *name)
{
  size_t nl = strlen (name);
  const char *v, *end = line + n;
  if (n <= nl || strncasecmp (line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  v = line + nl + 1;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  return xasprintf ("%.*s", (int) (end - v), v);
}

/* Headers of every response go by, redirects and 401s included: keep the current one's. */
static size_t
on_header (char *line, size_t size, size_t nmemb, void *ud)
{
  struct xfer *x = ud;
  size_t n = size * nmemb;
  char *v;
  if (n > 5 && strncmp (line, "HTTP/", 5) == 0)
    {
      const char *sp = memchr (line, ' ', n);
      x->cur_status = sp ? strtol (sp + 1, NULL, 10) : 0;
      free (x->content_type);
      free (x->www_auth);
      free (x->retry_after);
      free (x->location);
      free (x->dcd);
      x->content_type = x->www_auth = x->retry_after = x->location = x->dcd = NULL;
    }
  else if ((v = header_value (line, n, "location")))
    {
      free (x->location);
      x->location = v;
    }
  else if ((v = header_value (line, n, "docker-content-digest")))
    {
      free (x->dcd);
      x->dcd = v;
    }
  else if ((v = header_value (line, n, "content-type")))
    {
      free (x->content_type);
      x->content_type = v;
    }
  else if ((v = header_value (line, n, "www-authenticate")))
    {
      /* several challenges may come as several headers: one list, as RFC 7235 allows */
      char *joined = x->www_auth ? xasprintf ("%s, %s", x->www_auth, v) : NULL;
      free (x->www_auth);
      x->www_auth = joined ? joined : xstrdup (v);
      free (v);
    }
  else if ((v = header_value (line, n, "retry-after")))
    {
      free (x->retry_after);
      x->retry_after = v;
    }
  return n;
}

static void
xfer_progress (struct xfer *x, bool final)
{
  int64_t t;
  if (x->cb == NULL)
    return;
  t = now_ms ();
  if (!final && t - x->last_cb < PROGRESS_MS)
    return;
  x->last_cb = t;
  x->cb (x->index, x->got, x->expect_size, x->ud);
}

static size_t
on_body (char *data, size_t size, size_t nmemb, void *ud)
{
  struct xfer *x = ud;
  size_t n = size * nmemb;
  if (x->cur_status < 200 || x->cur_status > 299)
    {
      /* an error's text, for the message; a redirect's body is dropped */
      if (x->cur_status >= 400 && x->errbody_len < ERRBODY_MAX)
        buf_append (&x->errbody, &x->errbody_len, data, n < ERRBODY_MAX ? n : ERRBODY_MAX);
      return n;
    }
  if ((x->expect_size >= 0 && x->got + (int64_t) n > x->expect_size) || (x->fd < 0 && x->body_len + n > x->max_mem))
    {
      x->overflow = true;
      return 0; /* CURLE_WRITE_ERROR: stop reading */
    }
  if (x->fd >= 0)
    {
      for (size_t off = 0; off < n;)
        {
          ssize_t w = pwrite (x->fd, data + off, n - off, x->got + off);
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            {
              x->write_errno = errno;
              return 0;
            }
          off += w;
        }
    }
  else
    buf_append (&x->body, &x->body_len, data, n);
  sha256_update (x->hash, data, n);
  x->got += n;
  xfer_progress (x, false);
  return n;
}

/* An upload's body: from memory or from the file at up_off, progress as it goes. */
static size_t
on_read (char *buf, size_t size, size_t nmemb, void *ud)
{
  struct xfer *x = ud;
  size_t want = size * nmemb;
  int64_t left = x->up_len - x->up_pos;
  ssize_t n;
  if (left <= 0)
    return 0;
  if ((int64_t) want > left)
    want = (size_t) left;
  if (x->up_mem)
    {
      memcpy (buf, x->up_mem + x->up_pos, want);
      n = (ssize_t) want;
    }
  else
    {
      do
        n = pread (x->up_fd, buf, want, x->up_off + x->up_pos);
      while (n < 0 && errno == EINTR);
      if (n <= 0)
        {
          x->write_errno = n < 0 ? errno : EIO; /* a file that shrank under us */
          return CURL_READFUNC_ABORT;
        }
    }
  x->up_pos += n;
  if (x->cb)
    {
      int64_t t = now_ms ();
      if (t - x->last_cb >= PROGRESS_MS)
        {
          x->last_cb = t;
          x->cb (x->index, x->cb_base + x->up_pos, x->cb_total, x->ud);
        }
    }
  return (size_t) n;
}

static char *
xfer_url (struct registry *r, struct xfer *x)
{
  if (x->path == NULL)
    return xstrdup (x->url);
  return xasprintf ("%s://%s%s", r->use_http ? "http" : "https", r->api_host, x->path);
}

static void
easy_set_common (struct registry *r, CURL *e)
{
  curl_easy_setopt (e, CURLOPT_USERAGENT, r->user_agent);
  curl_easy_setopt (e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (e, CURLOPT_MAXREDIRS, 10L);
  /* Registries redirect blob GETs to storage (S3, a CDN) whose signed URL must not see our
   * Authorization header: curl (≥ 7.58, and ≥ 7.83 for a port or scheme change) only sends a
   * custom Authorization header to the host it was given for, as long as UNRESTRICTED_AUTH is off. */
  curl_easy_setopt (e, CURLOPT_UNRESTRICTED_AUTH, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt (e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt (e, CURLOPT_SSL_VERIFYPEER, r->tls_verify ? 1L : 0L);
  curl_easy_setopt (e, CURLOPT_SSL_VERIFYHOST, r->tls_verify ? 2L : 0L);
  curl_easy_setopt (e, CURLOPT_CONNECTTIMEOUT, 30L);
  /* a stalled transfer is a timeout, which is retried */
  curl_easy_setopt (e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (e, CURLOPT_LOW_SPEED_TIME, 60L);
}

static void
xfer_start (struct registry *r, CURLM *m, struct xfer *x)
{
  cleanup_free char *url = xfer_url (r, x);
  if (x->easy == NULL)
    x->easy = curl_easy_init ();
  if (x->easy == NULL)
    abort ();
  curl_easy_reset (x->easy);
  easy_set_common (r, x->easy);
  xfer_reset_response (x);
  if (x->fd >= 0 && ftruncate (x->fd, 0) < 0)
    {
      /* the write callback fails and the error says so */
    }
  curl_slist_free_all (x->hdrs);
  x->hdrs = NULL;
  if (x->accept)
    x->hdrs = curl_slist_append (x->hdrs, x->accept);
  if (x->ctype)
    x->hdrs = curl_slist_append (x->hdrs, x->ctype);
  if (x->crange)
    x->hdrs = curl_slist_append (x->hdrs, x->crange);
  if (x->method)
    x->hdrs = curl_slist_append (x->hdrs, "Expect:"); /* no 100-continue round trip before a body */
  if (x->reg_auth && r->authz)
    x->hdrs = curl_slist_append (x->hdrs, r->authz);
  else if (x->basic)
    x->hdrs = curl_slist_append (x->hdrs, x->basic);
  x->auth_gen = r->auth_gen;
  x->used_https = has_prefix (url, "https:");
  curl_easy_setopt (x->easy, CURLOPT_URL, url);
  curl_easy_setopt (x->easy, CURLOPT_HTTPHEADER, x->hdrs);
  curl_easy_setopt (x->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (x->easy, CURLOPT_HEADERDATA, x);
  curl_easy_setopt (x->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (x->easy, CURLOPT_WRITEDATA, x);
  curl_easy_setopt (x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt (x->easy, CURLOPT_PRIVATE, x);
  if (x->method && strcmp (x->method, "HEAD") == 0)
    curl_easy_setopt (x->easy, CURLOPT_NOBODY, 1L);
  else if (x->method && !x->upload)
    {
      /* POST or PUT without a body */
      curl_easy_setopt (x->easy, CURLOPT_POSTFIELDSIZE, 0L);
      curl_easy_setopt (x->easy, CURLOPT_POSTFIELDS, "");
      if (strcmp (x->method, "POST") != 0)
        curl_easy_setopt (x->easy, CURLOPT_CUSTOMREQUEST, x->method);
    }
  else if (x->method)
    {
      curl_easy_setopt (x->easy, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt (x->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t) x->up_len);
      curl_easy_setopt (x->easy, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt (x->easy, CURLOPT_READDATA, x);
      if (strcmp (x->method, "PUT") != 0)
        curl_easy_setopt (x->easy, CURLOPT_CUSTOMREQUEST, x->method);
    }
  if (curl_multi_add_handle (m, x->easy) != CURLM_OK)
    abort ();
  x->state = X_RUNNING;
}

/* Schedule x again: after a back-off (Retry-After when the server gave one), or at once. */
static void
xfer_again (struct xfer *x, bool backoff)
{
  int64_t delay = 0;
  if (backoff)
    {
      delay = (int64_t) BACKOFF_MS << (x->attempt < 16 ? x->attempt : 16);
      x->attempt++;
      if (x->retry_after)
        {
          long long secs = parse_uint (x->retry_after, 1000000);
          time_t when = secs < 0 ? curl_getdate (x->retry_after, NULL) : -1;
          if (secs < 0 && when > 0)
            secs = when > time (NULL) ? (long long) (when - time (NULL)) : 0;
          if (secs >= 0)
            delay = secs * 1000 < RETRY_AFTER_MAX_MS ? secs * 1000 : RETRY_AFTER_MAX_MS;
        }
    }
  x->start_at = now_ms () + delay;
  x->state = X_WAITING;
  if (x->cb && x->got > 0)
    {
      x->got = 0;
      xfer_progress (x, true);
    }
}

static bool
curl_transient (CURLcode c)
{
  switch (c)
    {
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
    }
}

static bool
curl_tls_error (CURLcode c)
{
  switch (c)
    {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return true;
    default:
      return false;
    }
}

static int
transport_error (struct registry *r, struct xfer *x, cella_error_t *err)
{
  const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror (x->cres);
  if (x->cres == CURLE_COULDNT_CONNECT || x->cres == CURLE_COULDNT_RESOLVE_HOST
      || x->cres == CURLE_COULDNT_RESOLVE_PROXY)
    return cella_error (err, 0, "%s: cannot reach %s: %s", x->what, r->host, why);
  if (curl_tls_error (x->cres))
    return cella_error (err, 0,
                        "%s: TLS error talking to %s: %s (for a registry with a self-signed certificate, use "
                        "--tls-verify=false)",
                        x->what, r->host, why);
  return cella_error (err, 0, "%s: %s: %s", x->what, r->host, why);
}

static int reg_authenticate (struct registry *r, struct xfer *x, cella_error_t *err);

/* A finished attempt: retry it, answer its auth challenge, or hand it to its finish hook. */
static int
xfer_completed (struct registry *r, struct xfer *x, cella_error_t *err)
{
  curl_easy_getinfo (x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->write_errno)
    return cella_error (err, x->write_errno, "%s: %s", x->what, x->upload ? "read" : "write");
  if (x->overflow)
    {
      if (x->fd >= 0)
        return cella_error (err, 0, "%s: size mismatch (expected %lld bytes, the registry sent more)", x->what,
                            (long long) x->expect_size);
      return cella_error (err, 0, "%s: response larger than %zu bytes", x->what, x->max_mem);
    }
  if (x->cres != CURLE_OK)
    {
      if (x->status == 0 && x->path && x->used_https && !r->tls_verify && (!r->scheme_known || r->use_http))
        {
          /* tls_verify off: the registry may speak plain http */
          r->use_http = r->scheme_known = true;
          xfer_again (x, false);
          return 0;
        }
      if (curl_transient (x->cres) && x->attempt < r->retries)
        {
          xfer_again (x, true);
          return 0;
        }
      return transport_error (r, x, err);
    }
  if (x->path)
    r->scheme_known = true;
  if (x->status == 401 && x->reg_auth)
    {
      if (x->auth_gen != r->auth_gen)
        {
          xfer_again (x, false); /* another request already answered the challenge */
          return 0;
        }
      if (reg_authenticate (r, x, err) < 0)
        return -1;
      x->auth_tries++;
      xfer_again (x, false);
      return 0;
    }
  if ((x->status >= 500 || x->status == 429) && x->attempt < r->retries)
    {
      xfer_again (x, true);
      return 0;
    }
  x->state = X_DONE;
  return x->finish ? x->finish (r, x, err) : 0;
}

static void
xfers_abort (CURLM *m, struct xfer *xs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (xs[i].state == X_RUNNING)
      {
        curl_multi_remove_handle (m, xs[i].easy);
        xs[i].state = X_DONE;
      }
}

/* Run the transfers, at most `parallel` at once, until all are done or one fails. */
static int
xfers_run (struct registry *r, CURLM *m, struct xfer *xs, size_t n, int parallel, cella_error_t *err)
{
  size_t left = n;
  if (parallel < 1)
    parallel = 1;
  for (size_t i = 0; i < n; i++)
    xs[i].state = X_WAITING, xs[i].start_at = 0;
  while (left > 0)
    {
      int64_t t = now_ms (), wait = 1000;
      int running = 0, still = 0, queued;
      CURLMsg *msg;
      for (size_t i = 0; i < n; i++)
        running += xs[i].state == X_RUNNING;
      for (size_t i = 0; i < n && running < parallel; i++)
        if (xs[i].state == X_WAITING && xs[i].start_at <= t)
          xfer_start (r, m, &xs[i]), running++;
      curl_multi_perform (m, &still);
      while ((msg = curl_multi_info_read (m, &queued)))
        {
          struct xfer *x = NULL;
          if (msg->msg != CURLMSG_DONE)
            continue;
          curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
          x->cres = msg->data.result;
          curl_multi_remove_handle (m, x->easy);
          if (xfer_completed (r, x, err) < 0)
            {
              xfers_abort (m, xs, n);
              return -1;
            }
          left -= x->state == X_DONE;
        }
      for (size_t i = 0; i < n; i++)
        if (xs[i].state == X_WAITING)
          wait = xs[i].start_at - t < wait ? xs[i].start_at - t : wait;
      if (left > 0 && wait > 0)
        curl_multi_poll (m, NULL, 0, (int) wait, NULL);
    }
  return 0;
}

/* ---------------------------------------------------------------- auth */

static void
load_creds (struct registry *r)
{
  cella_error_t e = NULL;
  if (r->creds_loaded)
    return;
  r->creds_loaded = true;
  if (r->user == NULL && auth_get (r->host, &r->user, &r->pass, &e) < 0)
    {
      /* an unreadable auth.json: go on anonymous; the 401 that follows names the fix */
      cella_error_free (&e);
    }
}

static char *
basic_header (const struct registry *r)
{
  cleanup_free char *up = xasprintf ("%s:%s", r->user, r->pass);
  cleanup_free char *b64 = base64_encode (up, strlen (up));
  return xasprintf ("Authorization: Basic %s", b64);
}

static void
set_authz (struct registry *r, char *header)
{
  free (r->authz);
  r->authz = header;
  r->auth_gen++;
}

static int
need_login (struct registry *r, struct xfer *x, cella_error_t *err)
{
  return cella_error (err, 0, "%s: registry %s requires a login: run `cella login %s`", x->what, r->host, r->host);
}

static int
wrong_login (struct registry *r, struct xfer *x, cella_error_t *err)
{
  (void) r;
  return cella_error (err, 0, "%s: unauthorized: wrong user name or password", x->what);
}

static char *
token_url (struct registry *r, const struct reg_challenge *c, bool with_scope)
{
  CURL *e = curl_easy_init ();
  char *service = c->service ? curl_easy_escape (e, c->service, 0) : NULL;
  cleanup_free char *scope_raw = xasprintf ("repository:%s:%s", r->repo, r->push ? "pull,push" : "pull");
  cleanup_free char *from_raw = r->mount_from ? xasprintf ("repository:%s:pull", r->mount_from) : NULL;
  char *scope = curl_easy_escape (e, scope_raw, 0);
  char *from = from_raw ? curl_easy_escape (e, from_raw, 0) : NULL;
  char *account = r->user ? curl_easy_escape (e, r->user, 0) : NULL;
  char *url = xasprintf ("%s%s%s%s%s%s%s%s%s%s", c->realm, strchr (c->realm, '?') ? "&" : "?",
                         service ? "service=" : "", service ? service : "", with_scope ? "&scope=" : "",
                         with_scope ? scope : "", with_scope && from ? "&scope=" : "", with_scope && from ? from : "",
                         account ? "&account=" : "", account ? account : "");
  curl_free (service);
  curl_free (scope);
  curl_free (from);
  curl_free (account);
  curl_easy_cleanup (e);
  return url;
}

static int
fetch_token (struct registry *r, struct xfer *rx, const struct reg_challenge *c, cella_error_t *err)
{
  cleanup_free char *url = NULL, *basic = NULL;
  struct xfer t;
  json_t *j;
  const char *tok;
  int ret;
  if (c->realm == NULL || !(has_prefix (c->realm, "https://") || has_prefix (c->realm, "http://")))
    return cella_error (err, 0, "%s: registry %s sent a Bearer challenge without a usable realm", rx->what, r->host);
  /* the login check asks for no scope: a token at all means the credentials are good */
  url = token_url (r, c, rx->path == NULL || strcmp (rx->path, "/v2/") != 0);
  basic = r->user ? basic_header (r) : NULL;
  memset (&t, 0, sizeof t);
  t.what = rx->what, t.url = url, t.basic = basic, t.fd = -1, t.expect_size = -1, t.max_mem = TOKEN_MAX;
  if (xfers_run (r, r->token_multi, &t, 1, 1, err) < 0)
    {
      xfer_clear (r->token_multi, &t);
      return cella_error_wrap (err, "token server");
    }
  if (t.status == 401 || t.status == 403)
    ret = r->user ? wrong_login (r, rx, err) : need_login (r, rx, err);
  else if (t.status != 200)
    {
      cleanup_free char *why = error_body_text (t.errbody, t.errbody_len);
      ret = cella_error (err, 0, "%s: token server %s answered %ld: %s", rx->what, c->realm, t.status, why);
    }
  else
    {
      j = json_loadb (t.body ? t.body : "", t.body_len, 0, NULL);
      tok = json_string_value (json_object_get (j, "token"));
      if (tok == NULL || *tok == '\0')
        tok = json_string_value (json_object_get (j, "access_token"));
      if (tok && *tok && strcspn (tok, "\r\n") == strlen (tok))
        {
          set_authz (r, xasprintf ("Authorization: Bearer %s", tok));
          ret = 0;
        }
      else
        ret = cella_error (err, 0, "%s: token server %s sent no token", rx->what, c->realm);
      json_decref (j);
    }
  xfer_clear (r->token_multi, &t);
  return ret;
}

/* x got a 401: answer its challenge, or say why we cannot. */
static int
reg_authenticate (struct registry *r, struct xfer *x, cella_error_t *err)
{
  struct reg_challenge c;
  int ret;
  load_creds (r);
  if (x->auth_tries > 0)
    {
      /* we answered a challenge and were refused again */
      bool basic = r->authz && has_prefix (r->authz, "Authorization: Basic");
      if (r->user == NULL)
        return cella_error (err, 0,
                            "%s: unauthorized: the repository does not exist or requires a login: run `cella login %s`",
                            x->what, r->host);
      if (basic || (x->path && strcmp (x->path, "/v2/") == 0))
        return wrong_login (r, x, err);
      return cella_error (err, 0, "%s: unauthorized: %s may not %s %s (or it does not exist)", x->what, r->user,
                          r->push ? "push to" : "pull", r->repo);
    }
  if (reg_challenge_parse (x->www_auth, &c) < 0)
    {
      reg_challenge_clear (&c);
      return cella_error (err, 0, "%s: registry %s answered 401 without a challenge we know (WWW-Authenticate: %s)",
                          x->what, r->host, x->www_auth ? x->www_auth : "none");
    }
  if (c.scheme == REG_AUTH_BASIC)
    {
      ret = r->user ? 0 : need_login (r, x, err);
      if (ret == 0)
        set_authz (r, basic_header (r));
    }
  else
    ret = fetch_token (r, x, &c, err);
  reg_challenge_clear (&c);
  return ret;
}

/* ---------------------------------------------------------------- registry */

struct registry *
registry_new (const char *host, const char *repo, const struct reg_opts *o)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  static const struct reg_opts defaults = REG_OPTS_INIT;
  struct registry *r = xzalloc (sizeof *r);
  pthread_once (&once, curl_init_once);
  if (o == NULL)
    o = &defaults;
  r->host = xstrdup (host);
  r->api_host = xstrdup (strcmp (host, "docker.io") == 0 ? "registry-1.docker.io" : host);
  r->repo = xstrdup (repo);
  r->tls_verify = o->tls_verify;
  r->use_http = o->plain_http;
  r->scheme_known = o->plain_http || o->tls_verify;
  r->retries = o->retries < 0 ? 0 : o->retries;
  if (o->user)
    {
      r->user = xstrdup (o->user);
      r->pass = xstrdup (o->pass ? o->pass : "");
      r->creds_loaded = true;
    }
  r->user_agent = xstrdup ("cella/" CELLA_VERSION);
  r->multi = curl_multi_init ();
  r->token_multi = curl_multi_init ();
  if (r->multi == NULL || r->token_multi == NULL)
    abort ();
  return r;
}

void
registry_free (struct registry *r)
{
  if (r == NULL)
    return;
  curl_multi_cleanup (r->multi);
  curl_multi_cleanup (r->token_multi);
  free (r->host);
  free (r->api_host);
  free (r->repo);
  free (r->mount_from);
  free (r->user);
  if (r->pass)
    explicit_bzero (r->pass, strlen (r->pass));
  free (r->pass);
  if (r->authz)
    explicit_bzero (r->authz, strlen (r->authz));
  free (r->authz);
  free (r->user_agent);
  free (r);
}

/* ---------------------------------------------------------------- manifests */

static bool
media_type_known (const char *mt)
{
  return strcmp (mt, MT_OCI_INDEX) == 0 || strcmp (mt, MT_OCI_MANIFEST) == 0 || strcmp (mt, MT_DOCKER_LIST) == 0
         || strcmp (mt, MT_DOCKER_MANIFEST) == 0;
}

/* The media type from Content-Type without parameters, lowercase; NULL when it says nothing. */
static char *
header_media_type (const char *ct)
{
  char *s;
  size_t n;
  if (ct == NULL)
    return NULL;
  n = strcspn (ct, "; \t");
  s = xasprintf ("%.*s", (int) n, ct);
  for (char *p = s; *p; p++)
    *p = tolower ((unsigned char) *p);
  if (*s == '\0' || strcmp (s, "application/json") == 0 || strcmp (s, "text/plain") == 0
      || strcmp (s, "application/octet-stream") == 0 || strcmp (s, "binary/octet-stream") == 0)
    {
      free (s);
      return NULL;
    }
  return s;
}

/* What the document says it is: mediaType, else its shape (OCI allows leaving mediaType out). */
static char *
body_media_type (json_t *j)
{
  const char *mt = json_string_value (json_object_get (j, "mediaType"));
  if (mt)
    return xstrdup (mt);
  if (json_integer_value (json_object_get (j, "schemaVersion")) == 1)
    return xstrdup ("application/vnd.docker.distribution.manifest.v1+json");
  if (json_object_get (j, "manifests"))
    return xstrdup (MT_OCI_INDEX);
  if (json_object_get (j, "layers") && json_object_get (j, "config"))
    return xstrdup (MT_OCI_MANIFEST);
  return NULL;
}

int
registry_manifest_media_type (const char *text, size_t len, const char *content_type, const char *what, char **out,
                              cella_error_t *err)
{
  json_t *j = json_loadb (text ? text : "", len, 0, NULL);
  cleanup_free char *hdr = header_media_type (content_type), *body = NULL;
  int ret = 0;
  if (!json_is_object (j))
    ret = cella_error (err, 0, "%s: the manifest is not a JSON object", what);
  else if (json_object_get (j, "manifests") && json_object_get (j, "layers"))
    /* CVE-2021-41190: a document that reads as both an index and a manifest is refused */
    ret = cella_error (err, 0, "%s: ambiguous manifest (both `manifests` and `layers`)", what);
  else
    {
      body = body_media_type (j);
      if (hdr && body && json_object_get (j, "mediaType") && strcmp (hdr, body) != 0)
        ret = cella_error (err, 0, "%s: the manifest's mediaType %s differs from its Content-Type %s", what, body, hdr);
      else if (hdr == NULL && body == NULL)
        ret = cella_error (err, 0, "%s: unsupported manifest media type (none given)", what);
      else if (!media_type_known (hdr ? hdr : body))
        ret = cella_error (err, 0, "%s: unsupported manifest media type %s", what, hdr ? hdr : body);
      else
        *out = xstrdup (hdr ? hdr : body);
    }
  json_decref (j);
  return ret;
}

int
registry_get_manifest (struct registry *r, const char *ref, char **body, size_t *len, char **media_type,
                       char digest[72], cella_error_t *err)
{
  cleanup_free char *what = ref_display (r, ref), *path = NULL;
  struct xfer x;
  int ret;
  bool by_digest = has_prefix (ref, "sha256:");
  *body = *media_type = NULL;
  if (by_digest ? !digest_valid (ref) : (*ref == '\0' || strpbrk (ref, "/?#@ ") != NULL))
    return cella_error (err, 0, "%s: invalid reference `%s`", what, ref);
  path = xasprintf ("/v2/%s/manifests/%s", r->repo, ref);
  memset (&x, 0, sizeof x);
  x.what = what, x.path = path, x.accept = ACCEPT_MANIFESTS, x.reg_auth = true, x.fd = -1, x.expect_size = -1;
  x.max_mem = MANIFEST_MAX;
  ret = xfers_run (r, r->multi, &x, 1, 1, err);
  if (ret < 0)
    {
      xfer_clear (r->multi, &x);
      return ret;
    }
  if (x.status == 404)
    ret = cella_error (err, 0, "manifest unknown: %s%s%s not found on %s", r->repo, by_digest ? "@" : ":", ref,
                       r->host);
  else if (x.status != 200)
    {
      cleanup_free char *why = error_body_text (x.errbody, x.errbody_len);
      ret = cella_error (err, 0, "%s: registry %s answered %ld: %s", what, r->host, x.status, why);
    }
  else
    {
      struct sha256 *h = x.hash;
      x.hash = NULL;
      sha256_final (h, digest);
      if (by_digest && strcmp (digest, ref) != 0)
        ret = cella_error (err, 0, "%s: digest mismatch (got %s)", what, digest);
      else if (registry_manifest_media_type (x.body, x.body_len, x.content_type, what, media_type, err) < 0)
        ret = -1;
      else
        {
          *body = steal_pointer (&x.body);
          if (*body == NULL)
            *body = xstrdup ("");
          if (len)
            *len = x.body_len;
        }
    }
  xfer_clear (r->multi, &x);
  return ret;
}

/* ---------------------------------------------------------------- blobs */

static int
blob_finish (struct registry *r, struct xfer *x, cella_error_t *err)
{
  char got[72];
  struct sha256 *h = x->hash;
  if (x->status == 404)
    return cella_error (err, 0, "blob %s not found in %s/%s", x->digest, r->host, r->repo);
  if (x->status != 200)
    {
      cleanup_free char *why = error_body_text (x->errbody, x->errbody_len);
      return cella_error (err, 0, "%s: registry %s answered %ld: %s", x->what, r->host, x->status, why);
    }
  if (x->expect_size >= 0 && x->got != x->expect_size)
    return cella_error (err, 0, "%s: size mismatch (expected %lld bytes, got %lld)", x->what,
                        (long long) x->expect_size, (long long) x->got);
  x->hash = NULL;
  sha256_final (h, got);
  if (strcmp (got, x->digest) != 0)
    return cella_error (err, 0, "%s: digest mismatch (got %s)", x->what, got);
  if (x->expect_size < 0)
    x->expect_size = x->got;
  xfer_progress (x, true);
  return 0;
}

int
registry_get_blobs (struct registry *r, struct blob_req *reqs, size_t n, int parallel, reg_progress_fn cb, void *ud,
                    cella_error_t *err)
{
  struct xfer *xs = xzalloc ((n ? n : 1) * sizeof *xs);
  char **paths = xzalloc ((n ? n : 1) * sizeof *paths), **whats = xzalloc ((n ? n : 1) * sizeof *whats);
  int ret = 0;
  for (size_t i = 0; i < n; i++)
    {
      reqs[i].done = 0;
      if (!digest_valid (reqs[i].digest))
        ret = cella_error (err, 0, "%s/%s: invalid blob digest `%s`", r->host, r->repo, reqs[i].digest);
      paths[i] = xasprintf ("/v2/%s/blobs/%s", r->repo, reqs[i].digest);
      whats[i] = xasprintf ("%s/%s: blob %s", r->host, r->repo, reqs[i].digest);
      xs[i] = (struct xfer){ .what = whats[i],
                             .path = paths[i],
                             .digest = reqs[i].digest,
                             .reg_auth = true,
                             .fd = reqs[i].fd,
                             .expect_size = reqs[i].size,
                             .finish = blob_finish,
                             .index = i,
                             .cb = cb,
                             .ud = ud };
    }
  if (ret == 0)
    ret = xfers_run (r, r->multi, xs, n, parallel, err);
  for (size_t i = 0; i < n; i++)
    {
      bool ok = ret == 0 && xs[i].state == X_DONE;
      reqs[i].done = ok ? xs[i].got : 0;
      if (!ok && reqs[i].fd >= 0 && ftruncate (reqs[i].fd, 0) < 0)
        {
          /* nothing more to do: done == 0 already says the blob is not there */
        }
      xfer_clear (r->multi, &xs[i]);
      free (paths[i]);
      free (whats[i]);
    }
  free (xs);
  free (paths);
  free (whats);
  return ret;
}

/* ---------------------------------------------------------------- login */

int
registry_check_login (struct registry *r, cella_error_t *err)
{
  cleanup_free char *what = xasprintf ("log in to %s", r->host);
  struct xfer x;
  int ret;
  memset (&x, 0, sizeof x);
  x.what = what, x.path = "/v2/", x.reg_auth = true, x.fd = -1, x.expect_size = -1, x.max_mem = TOKEN_MAX;
  ret = xfers_run (r, r->multi, &x, 1, 1, err);
  if (ret == 0 && x.status != 200)
    {
      cleanup_free char *why = error_body_text (x.errbody, x.errbody_len);
      ret = cella_error (err, 0, "%s: registry answered %ld: %s", what, x.status, why);
    }
  xfer_clear (r->multi, &x);
  return ret;
}

/* ---------------------------------------------------------------- push */

void
registry_set_push (struct registry *r, const char *mount_from)
{
  r->push = true;
  free (r->mount_from);
  r->mount_from = mount_from ? xstrdup (mount_from) : NULL;
  /* a token asked for pull only does not cover what comes next */
  if (r->authz && has_prefix (r->authz, "Authorization: Bearer"))
    {
      explicit_bzero (r->authz, strlen (r->authz));
      set_authz (r, NULL);
    }
}

char *
reg_location_url (const char *scheme, const char *host, const char *base_path, const char *location)
{
  const char *slash;
  if (location == NULL || *location == '\0')
    return NULL;
  if (has_prefix (location, "http://") || has_prefix (location, "https://"))
    return xstrdup (location);
  if (location[0] == '/' && location[1] == '/')
    return xasprintf ("%s:%s", scheme, location); /* scheme-relative */
  if (location[0] == '/')
    return xasprintf ("%s://%s%s", scheme, host, location);
  /* relative to the request's directory */
  slash = strrchr (base_path, '/');
  return xasprintf ("%s://%s%.*s/%s", scheme, host, slash ? (int) (slash - base_path) : 0, base_path, location);
}

char *
reg_url_add_query (const char *url, const char *param)
{
  const char *hash = strchr (url, '#');
  int n = hash ? (int) (hash - url) : (int) strlen (url);
  const char *q = memchr (url, '?', (size_t) n);
  const char *sep = q == NULL ? "?" : (q[1] == '\0' || url[n - 1] == '&' || url[n - 1] == '?') ? "" : "&";
  return xasprintf ("%.*s%s%s", n, url, sep, param);
}

/* An upload's next URL from the Location of the response x got (the registry must send one). */
static int
upload_next (struct registry *r, struct xfer *x, const char *base_path, char **url, cella_error_t *err)
{
  char *u = reg_location_url (r->use_http ? "http" : "https", r->api_host, base_path, x->location);
  if (u == NULL)
    return cella_error (err, 0, "%s: registry %s answered %ld without a Location for the upload", x->what, r->host,
                        x->status);
  free (*url);
  *url = u;
  return 0;
}

static int
push_status_error (struct registry *r, struct xfer *x, const char *doing, cella_error_t *err)
{
  cleanup_free char *why = error_body_text (x->errbody, x->errbody_len);
  if (x->status == 403 || x->status == 401)
    return cella_error (err, 0, "%s: registry %s refused to %s (%ld): %s", x->what, r->host, doing, x->status,
                        *why ? why : "denied");
  return cella_error (err, 0, "%s: registry %s answered %ld to %s: %s", x->what, r->host, x->status, doing, why);
}

static void
push_xfer (struct xfer *x, const char *what, const char *method)
{
  memset (x, 0, sizeof *x);
  x->what = what, x->method = method, x->reg_auth = true, x->fd = -1, x->expect_size = -1;
  x->max_mem = ERRBODY_MAX;
}

int
registry_blob_exists (struct registry *r, const char *digest, int64_t *size, cella_error_t *err)
{
  cleanup_free char *what = xasprintf ("%s/%s: blob %s", r->host, r->repo, digest), *path = NULL;
  struct xfer x;
  int ret;
  if (!digest_valid (digest))
    return cella_error (err, 0, "%s/%s: invalid blob digest `%s`", r->host, r->repo, digest);
  path = xasprintf ("/v2/%s/blobs/%s", r->repo, digest);
  push_xfer (&x, what, "HEAD");
  x.path = path;
  ret = xfers_run (r, r->multi, &x, 1, 1, err);
  if (ret == 0)
    {
      if (x.status == 200)
        {
          curl_off_t cl = -1;
          curl_easy_getinfo (x.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
          if (size)
            *size = cl;
          ret = 1;
        }
      else if (x.status != 404)
        ret = push_status_error (r, &x, "look up a blob", err);
    }
  xfer_clear (r->multi, &x);
  return ret;
}

int
registry_blob_mount (struct registry *r, const char *digest, const char *from, char **upload_url, cella_error_t *err)
{
  cleanup_free char *what = xasprintf ("%s/%s: blob %s", r->host, r->repo, digest), *path = NULL;
  CURL *e = curl_easy_init ();
  char *fe = curl_easy_escape (e, from, 0), *de = curl_easy_escape (e, digest, 0);
  struct xfer x;
  int ret;
  *upload_url = NULL;
  path = xasprintf ("/v2/%s/blobs/uploads/?mount=%s&from=%s", r->repo, de, fe);
  curl_free (fe);
  curl_free (de);
  curl_easy_cleanup (e);
  push_xfer (&x, what, "POST");
  x.path = path;
  ret = xfers_run (r, r->multi, &x, 1, 1, err);
  if (ret == 0)
    {
      if (x.status == 201)
        ret = 1;
      else if (x.status == 202)
        /* not mounted (the source lacks it, or no mounts here): an ordinary upload started */
        ret = upload_next (r, &x, path, upload_url, err);
      else
        ret = push_status_error (r, &x, "mount a blob", err);
    }
  xfer_clear (r->multi, &x);
  return ret;
}

/* Whether a failed upload step may succeed on a new upload: the connection broke, the registry
 * failed (5xx, 429: already retried as a request), or it lost the upload (404 on a PATCH or PUT). */
static bool
upload_step_transient (const struct xfer *x, bool after_start)
{
  if (x->status == 0)
    return x->cres != CURLE_OK && !curl_tls_error (x->cres) && x->cres != CURLE_COULDNT_RESOLVE_HOST;
  return x->status >= 500 || x->status == 429 || (after_start && x->status == 404);
}

/* One try at a blob: POST (unless started), PATCH chunks, PUT. *transient says whether a new try
 * may do better. */
static int
put_blob_once (struct registry *r, const struct blob_upload *b, char *started, const char *dq, size_t index,
               reg_progress_fn cb, void *ud, bool *transient, cella_error_t *err)
{
  cleanup_free char *what = xasprintf ("%s/%s: blob %s", r->host, r->repo, b->digest);
  cleanup_free char *start_path = xasprintf ("/v2/%s/blobs/uploads/", r->repo);
  cleanup_free char *url = started;
  struct xfer x;
  int64_t off = 0, chunk = b->chunk > 0 ? b->chunk : 0;
  int ret = 0;
  *transient = false;
  memset (&x, 0, sizeof x);
  x.fd = -1;
  if (url == NULL)
    {
      push_xfer (&x, what, "POST");
      x.path = start_path;
      ret = xfers_run (r, r->multi, &x, 1, 1, err);
      if (ret == 0 && x.status != 202)
        ret = push_status_error (r, &x, "start an upload", err);
      if (ret == 0)
        ret = upload_next (r, &x, start_path, &url, err);
      if (ret < 0)
        *transient = upload_step_transient (&x, false);
      xfer_clear (r->multi, &x);
    }
  /* chunks: PATCH with Content-Range, each answered with the next Location */
  while (ret == 0 && chunk > 0 && b->size - off > chunk)
    {
      cleanup_free char *range = xasprintf ("Content-Range: %lld-%lld", (long long) off, (long long) (off + chunk - 1));
      push_xfer (&x, what, "PATCH");
      x.url = url, x.ctype = "Content-Type: application/octet-stream", x.crange = range, x.upload = true;
      x.up_mem = b->mem ? (const char *) b->mem + off : NULL, x.up_fd = b->fd, x.up_off = off, x.up_len = chunk;
      x.cb = cb, x.ud = ud, x.index = index, x.cb_base = off, x.cb_total = b->size;
      ret = xfers_run (r, r->multi, &x, 1, 1, err);
      if (ret == 0 && x.status != 202 && x.status != 204)
        ret = push_status_error (r, &x, "take a chunk", err);
      if (ret == 0)
        ret = upload_next (r, &x, start_path, &url, err);
      if (ret < 0)
        *transient = upload_step_transient (&x, true);
      xfer_clear (r->multi, &x);
      off += chunk;
    }
  /* the rest (or all of it) with the closing PUT ?digest= */
  if (ret == 0)
    {
      cleanup_free char *put = reg_url_add_query (url, dq);
      push_xfer (&x, what, "PUT");
      x.url = put, x.ctype = "Content-Type: application/octet-stream", x.upload = true;
      x.up_mem = b->mem ? (const char *) b->mem + off : NULL, x.up_fd = b->fd, x.up_off = off, x.up_len = b->size - off;
      x.cb = cb, x.ud = ud, x.index = index, x.cb_base = off, x.cb_total = b->size;
      ret = xfers_run (r, r->multi, &x, 1, 1, err);
      if (ret == 0 && x.status != 201 && x.status != 204)
        ret = push_status_error (r, &x, "take the blob", err);
      if (ret < 0)
        *transient = upload_step_transient (&x, true);
      if (ret == 0 && x.dcd && strcmp (x.dcd, b->digest) != 0)
        ret = cella_error (err, 0, "%s: registry %s stored it as %s", what, r->host, x.dcd);
      xfer_clear (r->multi, &x);
    }
  return ret;
}

#define BLOB_RESTARTS 2

int
registry_put_blob (struct registry *r, const struct blob_upload *b, char *started, size_t index, reg_progress_fn cb,
                   void *ud, cella_error_t *err)
{
  cleanup_free char *dq = NULL;
  CURL *e;
  char *de;
  int ret;
  if (!digest_valid (b->digest))
    {
      free (started);
      return cella_error (err, 0, "%s/%s: invalid blob digest `%s`", r->host, r->repo, b->digest);
    }
  e = curl_easy_init ();
  de = curl_easy_escape (e, b->digest, 0);
  dq = xasprintf ("digest=%s", de);
  curl_free (de);
  curl_easy_cleanup (e);
  for (int attempt = 0;; attempt++)
    {
      bool transient;
      ret = put_blob_once (r, b, started, dq, index, cb, ud, &transient, err);
      started = NULL;
      if (ret == 0 || !transient || attempt >= BLOB_RESTARTS || attempt >= r->retries)
        break;
      /* the upload is lost: a new one from the first byte, after a back-off */
      cella_error_free (err);
      if (cb)
        cb (index, 0, b->size, ud);
      usleep ((useconds_t) (BACKOFF_MS << attempt) * 1000);
    }
  if (ret == 0 && cb)
    cb (index, b->size, b->size, ud);
  return ret;
}

int
registry_put_manifest (struct registry *r, const char *ref, const char *body, size_t len, const char *media_type,
                       char digest[72], cella_error_t *err)
{
  cleanup_free char *what = ref_display (r, ref), *path = NULL, *ctype = NULL;
  struct sha256 *h = sha256_new ();
  struct xfer x;
  int ret;
  sha256_update (h, body, len);
  sha256_final (h, digest);
  if (has_prefix (ref, "sha256:") ? strcmp (ref, digest) != 0 : (*ref == '\0' || strpbrk (ref, "/?#@ ") != NULL))
    return cella_error (err, 0, "%s: invalid reference `%s`", what, ref);
  path = xasprintf ("/v2/%s/manifests/%s", r->repo, ref);
  ctype = xasprintf ("Content-Type: %s", media_type);
  push_xfer (&x, what, "PUT");
  x.path = path, x.ctype = ctype, x.upload = true, x.up_mem = body, x.up_len = (int64_t) len;
  ret = xfers_run (r, r->multi, &x, 1, 1, err);
  if (ret == 0 && x.status != 201 && x.status != 200 && x.status != 204)
    ret = push_status_error (r, &x, "take the manifest", err);
  if (ret == 0 && x.dcd && strcmp (x.dcd, digest) != 0)
    ret = cella_error (err, 0, "%s: registry %s stored the manifest as %s, not %s", what, r->host, x.dcd, digest);
  xfer_clear (r->multi, &x);
  return ret;
}

struct registry *
registry_dup (const struct registry *r)
{
  struct reg_opts o = REG_OPTS_INIT;
  struct registry *d;
  o.tls_verify = r->tls_verify;
  o.plain_http = r->use_http && r->scheme_known;
  o.retries = r->retries;
  o.user = r->user;
  o.pass = r->pass;
  d = registry_new (r->host, r->repo, &o);
  d->use_http = r->use_http;
  d->scheme_known = r->scheme_known;
  d->creds_loaded = r->creds_loaded;
  d->push = r->push;
  d->mount_from = r->mount_from ? xstrdup (r->mount_from) : NULL;
  if (r->authz)
    set_authz (d, xstrdup (r->authz));
  return d;
}
