/* Image reference parsing ([REGISTRY/]REPO[:TAG][@DIGEST]) and the default registry. */
#define _GNU_SOURCE
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ref.h"

char *
image_setting (const char *key)
{
  const char *xdg = getenv ("XDG_CONFIG_HOME"), *home = getenv ("HOME");
  cleanup_free char *path = NULL;
  json_t *root, *v;
  char *r = NULL;
  if (geteuid () == 0)
    path = xstrdup ("/etc/cella/config.json");
  else if (xdg && *xdg)
    path = xasprintf ("%s/cella/config.json", xdg);
  else if (home && *home)
    path = xasprintf ("%s/.config/cella/config.json", home);
  else
    return NULL;
  root = json_load_file (path, 0, NULL);
  if (root == NULL)
    return NULL;
  v = json_object_get (root, key);
  if (json_is_string (v) && json_string_length (v) > 0)
    r = xstrdup (json_string_value (v));
  else if (json_is_integer (v))
    r = xasprintf ("%lld", (long long) json_integer_value (v));
  json_decref (root);
  return r;
}

const char *
image_default_registry (void)
{
  static char *cached;
  const char *e;
  if (cached)
    return cached;
  e = getenv ("CELLA_DEFAULT_REGISTRY");
  if (e && *e)
    cached = xstrdup (e);
  else if ((cached = image_setting ("default_registry")) == NULL)
    cached = xstrdup ("docker.io");
  return cached;
}

static bool
is_alnum_lower (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component of a repository: lowercase letters and digits, joined by '.', '_', '__' or
 * runs of '-'. */
static bool
repo_component_ok (const char *s, size_t n)
{
  if (n == 0 || !is_alnum_lower (s[0]) || !is_alnum_lower (s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_alnum_lower (s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
      return false;
  return true;
}

static bool
tag_ok (const char *t)
{
  size_t n = strlen (t);
  if (n == 0 || n > 128 || !(isalnum ((unsigned char) t[0]) || t[0] == '_'))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum ((unsigned char) t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
      return false;
  return true;
}

static bool
digest_ok (const char *d)
{
  if (!has_prefix (d, "sha256:") || strlen (d) != 71)
    return false;
  for (const char *p = d + 7; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

static bool
registry_ok (const char *r)
{
  if (*r == '\0')
    return false;
  for (const char *p = r; *p; p++)
    if (!isalnum ((unsigned char) *p) && !strchr (".-:[]", *p))
      return false;
  return true;
}

void
image_ref_clear (struct image_ref *r)
{
  free (r->registry);
  free (r->repo);
  free (r->tag);
  free (r->digest);
  memset (r, 0, sizeof *r);
}

int
image_ref_parse (const char *s, struct image_ref *out, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (s);
  char *at, *slash, *colon, *name = copy, *p;
  struct image_ref r = { 0 };

  if (*s == '\0')
    return cella_error (err, 0, "empty image reference");
  /* the longest full form: a name of 255, ":" a tag of 128, "@" a digest of 71 */
  if (strlen (s) > 255 + 1 + 128 + 1 + 71)
    return cella_error (err, 0, "image reference `%.40s…`: too long", s);
  if ((at = strchr (copy, '@')) != NULL)
    {
      *at = '\0';
      if (!digest_ok (at + 1))
        return cella_error (err, 0,
                            "image reference `%s`: `%s` is not a digest (expected sha256: and 64 lowercase hex digits)",
                            s, at + 1);
      r.digest = xstrdup (at + 1);
    }
  slash = strchr (name, '/');
  if (slash
      && (memchr (name, '.', slash - name) || memchr (name, ':', slash - name)
          || (slash - name == 9 && strncmp (name, "localhost", 9) == 0)))
    {
      *slash = '\0';
      if (!registry_ok (name))
        {
          image_ref_clear (&r);
          return cella_error (err, 0, "image reference `%s`: `%s` is not a registry host[:port]", s, name);
        }
      r.registry = xstrdup (name);
      name = slash + 1;
    }
  else
    r.registry = xstrdup (image_default_registry ());
  if (strcmp (r.registry, "index.docker.io") == 0 || strcmp (r.registry, "registry-1.docker.io") == 0)
    {
      free (r.registry);
      r.registry = xstrdup ("docker.io");
    }
  colon = strrchr (name, ':');
  if (colon && strchr (colon, '/') == NULL)
    {
      *colon = '\0';
      if (!tag_ok (colon + 1))
        {
          image_ref_clear (&r);
          return cella_error (err, 0,
                              "image reference `%s`: `%s` is not a valid tag (letters, digits, _ . -; at most 128)", s,
                              colon + 1);
        }
      r.tag = xstrdup (colon + 1);
    }
  else if (r.digest == NULL)
    r.tag = xstrdup ("latest");
  for (p = name;;)
    {
      char *e = strchr (p, '/');
      size_t n = e ? (size_t) (e - p) : strlen (p);
      if (!repo_component_ok (p, n))
        {
          image_ref_clear (&r);
          return cella_error (
              err, 0,
              "image reference `%s`: `%s` is not a valid repository name (lowercase letters, digits and "
              "separators . _ -, components split by /)",
              s, name);
        }
      if (e == NULL)
        break;
      p = e + 1;
    }
  if (strcmp (r.registry, "docker.io") == 0 && strchr (name, '/') == NULL)
    r.repo = xasprintf ("library/%s", name);
  else
    r.repo = xstrdup (name);
  /* as docker's: the name an image is stored under (registry/repo) must read back */
  if (strlen (r.registry) + 1 + strlen (r.repo) > 255)
    {
      image_ref_clear (&r);
      return cella_error (err, 0, "image reference `%.40s…`: the name with its registry is longer than 255 characters",
                          s);
    }
  *out = r;
  return 0;
}

char *
image_ref_string (const struct image_ref *r)
{
  if (r->tag && r->digest)
    return xasprintf ("%s/%s:%s@%s", r->registry, r->repo, r->tag, r->digest);
  if (r->digest)
    return xasprintf ("%s/%s@%s", r->registry, r->repo, r->digest);
  return xasprintf ("%s/%s:%s", r->registry, r->repo, r->tag);
}

char *
image_ref_name (const struct image_ref *r)
{
  if (r->tag)
    return xasprintf ("%s/%s:%s", r->registry, r->repo, r->tag);
  return xasprintf ("%s/%s@%s", r->registry, r->repo, r->digest);
}

char *
image_ref_repo (const struct image_ref *r)
{
  return xasprintf ("%s/%s", r->registry, r->repo);
}

char *
image_name_repo (const char *name)
{
  const char *at = strchr (name, '@'), *slash, *colon;
  size_t n = at ? (size_t) (at - name) : strlen (name);
  slash = memrchr (name, '/', n);
  colon = memrchr (name, ':', n);
  if (colon && (slash == NULL || colon > slash))
    n = (size_t) (colon - name);
  return strndup (name, n);
}

char *
image_name_short (const char *full)
{
  if (has_prefix (full, "docker.io/library/"))
    return xstrdup (full + 18);
  if (has_prefix (full, "docker.io/"))
    return xstrdup (full + 10);
  return xstrdup (full);
}
