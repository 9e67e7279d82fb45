/* Registry credentials (auth.h). */
#define _GNU_SOURCE
#include "image/tool/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

/* ---------------------------------------------------------------- base64 */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
base64_encode (const void *buf, size_t len)
{
  const unsigned char *in = buf;
  char *out = xmalloc ((len + 2) / 3 * 4 + 1), *p = out;
  for (size_t i = 0; i < len; i += 3)
    {
      unsigned v = in[i] << 16 | (i + 1 < len ? in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
      *p++ = b64_chars[v >> 18 & 63];
      *p++ = b64_chars[v >> 12 & 63];
      *p++ = i + 1 < len ? b64_chars[v >> 6 & 63] : '=';
      *p++ = i + 2 < len ? b64_chars[v & 63] : '=';
    }
  *p = '\0';
  return out;
}

static int
b64_value (char c)
{
  const char *p = c ? strchr (b64_chars, c) : NULL;
  return p ? (int) (p - b64_chars) : -1;
}

/* Padding is optional (some tools drop it); anything else that is not base64 is an error. */
char *
base64_decode (const char *s, size_t *len)
{
  size_t n = strlen (s), o = 0;
  unsigned v = 0;
  int bits = 0;
  char *out;
  while (n > 0 && s[n - 1] == '=')
    n--;
  if (n % 4 == 1 || strlen (s) - n > 2)
    return NULL;
  out = xmalloc (n / 4 * 3 + 3);
  for (size_t i = 0; i < n; i++)
    {
      int d = b64_value (s[i]);
      if (d < 0)
        {
          free (out);
          return NULL;
        }
      v = (v << 6 | (unsigned) d) & 0xffffff;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          out[o++] = (char) (v >> bits & 0xff);
        }
    }
  out[o] = '\0';
  if (len)
    *len = o;
  return out;
}

/* ---------------------------------------------------------------- files */

static char *
home_dir (void)
{
  const char *h = getenv ("HOME");
  char *pw;
  if (h && *h)
    return xstrdup (h);
  pw = host_passwd_field (getuid (), 5);
  return pw ? pw : xstrdup ("/");
}

char *
auth_file_path (void)
{
  const char *f = getenv ("REGISTRY_AUTH_FILE"), *x = getenv ("XDG_CONFIG_HOME");
  cleanup_free char *home = NULL;
  if (f && *f)
    return xstrdup (f);
  if (x && *x)
    return xasprintf ("%s/cella/auth.json", x);
  home = home_dir ();
  return xasprintf ("%s/.config/cella/auth.json", home);
}

static char *
docker_config_path (void)
{
  const char *d = getenv ("DOCKER_CONFIG");
  cleanup_free char *home = NULL;
  if (d && *d)
    return xasprintf ("%s/config.json", d);
  home = home_dir ();
  return xasprintf ("%s/.docker/config.json", home);
}

/* The JSON in path; a missing file is an empty object. */
static int
load_json (const char *path, json_t **out, cella_error_t *err)
{
  json_error_t je;
  json_t *j;
  if (access (path, F_OK) < 0 && errno == ENOENT)
    {
      *out = json_object ();
      return 0;
    }
  j = json_load_file (path, 0, &je);
  if (j == NULL)
    return cella_error (err, 0, "credentials file `%s`: %s (line %d)", path, je.text, je.line);
  if (!json_is_object (j))
    {
      json_decref (j);
      return cella_error (err, 0, "credentials file `%s`: not a JSON object", path);
    }
  *out = j;
  return 0;
}

/* Replace path with text, mode 0600 whatever the umask or an earlier file said. */
static int
write_private (const char *path, const char *text, cella_error_t *err)
{
  cleanup_free char *tmp = xasprintf ("%s.XXXXXX", path);
  cleanup_close int fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "create a temporary file next to `%s`", path);
  if (fchmod (fd, 0600) < 0 || write_all (fd, text, strlen (text)) < 0 || fsync (fd) < 0 || rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return cella_error (err, e, "write credentials file `%s`", path);
    }
  fsync_parent (path);
  return 0;
}

static int
store_json (const char *path, json_t *j, cella_error_t *err)
{
  cleanup_free char *dir = xstrdup (path), *text = NULL;
  char *slash = strrchr (dir, '/');
  if (slash && slash != dir)
    {
      *slash = '\0';
      if (mkdir_p (dir, 0700, err) < 0)
        return cella_error_wrap (err, "credentials directory");
    }
  text = json_dumps (j, JSON_INDENT (2));
  if (text == NULL)
    abort ();
  text = xrealloc (text, strlen (text) + 2);
  strcat (text, "\n");
  return write_private (path, text, err);
}

/* ---------------------------------------------------------------- host keys */

/* docker writes Docker Hub as "https://index.docker.io/v1/"; all of these name it. */
static bool
is_docker_hub (const char *h, size_t n)
{
  static const char *const names[] = { "docker.io", "index.docker.io", "registry-1.docker.io" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen (names[i]) == n && strncmp (h, names[i], n) == 0)
      return true;
  return false;
}

/* A key of "auths" and a host name the same registry: "https://HOST/v1/" and "HOST" match. */
static bool
key_matches (const char *key, const char *host)
{
  size_t kn, hn = strlen (host);
  if (has_prefix (key, "https://"))
    key += 8;
  else if (has_prefix (key, "http://"))
    key += 7;
  kn = strcspn (key, "/");
  if (kn == hn && strncmp (key, host, hn) == 0)
    return true;
  return is_docker_hub (key, kn) && is_docker_hub (host, hn);
}

static json_t *
find_entry (json_t *root, const char *host)
{
  json_t *auths = json_object_get (root, "auths"), *e, *v;
  const char *key;
  if (!json_is_object (auths))
    return NULL;
  e = json_object_get (auths, host);
  if (json_is_object (e))
    return e;
  json_object_foreach (auths, key, v)
    if (json_is_object (v) && key_matches (key, host))
      return v;
  return NULL;
}

/* 0 with the entry's credentials, 1 when it holds none we can use. */
static int
entry_credentials (json_t *e, char **user, char **pass)
{
  const char *a = json_string_value (json_object_get (e, "auth"));
  const char *u = json_string_value (json_object_get (e, "username"));
  const char *p = json_string_value (json_object_get (e, "password"));
  if (a && *a)
    {
      cleanup_free char *dec = base64_decode (a, NULL);
      char *colon = dec ? strchr (dec, ':') : NULL;
      if (colon == NULL)
        return 1;
      *colon = '\0';
      *user = xstrdup (dec);
      *pass = xstrdup (colon + 1);
      return 0;
    }
  if (u && p)
    {
      *user = xstrdup (u);
      *pass = xstrdup (p);
      return 0;
    }
  return 1;
}

int
auth_get (const char *host, char **user, char **pass, cella_error_t *err)
{
  cleanup_free char *path = auth_file_path (), *dpath = docker_config_path ();
  json_t *j = NULL, *e;
  json_error_t je;
  int r;
  *user = *pass = NULL;
  if (load_json (path, &j, err) < 0)
    return -1;
  e = find_entry (j, host);
  r = e ? entry_credentials (e, user, pass) : 1;
  json_decref (j);
  if (r == 0)
    return 0;
  /* docker's file is somebody else's: a broken one is only a missing fallback */
  j = json_load_file (dpath, 0, &je);
  if (j == NULL)
    return 1;
  e = find_entry (j, host);
  r = e ? entry_credentials (e, user, pass) : 1;
  json_decref (j);
  return r;
}

int
auth_set (const char *host, const char *user, const char *pass, cella_error_t *err)
{
  cleanup_free char *path = auth_file_path (), *up = xasprintf ("%s:%s", user, pass), *b64 = NULL;
  json_t *j = NULL, *auths, *e;
  int r;
  if (strchr (user, ':'))
    return cella_error (err, 0, "user name `%s`: must not contain ':'", user);
  if (load_json (path, &j, err) < 0)
    return -1;
  auths = json_object_get (j, "auths");
  if (!json_is_object (auths))
    {
      auths = json_object ();
      json_object_set_new (j, "auths", auths);
    }
  e = json_object_get (auths, host);
  if (!json_is_object (e))
    {
      e = json_object ();
      json_object_set_new (auths, host, e);
    }
  b64 = base64_encode (up, strlen (up));
  json_object_set_new (e, "auth", json_string (b64));
  r = store_json (path, j, err);
  json_decref (j);
  return r;
}

int
auth_remove (const char *host, cella_error_t *err)
{
  cleanup_free char *path = auth_file_path ();
  json_t *j = NULL, *auths;
  int r;
  if (load_json (path, &j, err) < 0)
    return -1;
  auths = json_object_get (j, "auths");
  if (!json_is_object (auths) || json_object_get (auths, host) == NULL)
    {
      json_decref (j);
      return 1;
    }
  json_object_del (auths, host);
  r = store_json (path, j, err);
  json_decref (j);
  return r;
}
