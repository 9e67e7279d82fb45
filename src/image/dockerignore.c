/* .dockerignore / .containerignore (dockerfile.h): the patterns as docker reads them, and its
 * matching: `*` and `?` within one path component, `[...]` classes, `\` escaping the next char,
 * `**` for any number of components, a pattern matching a path or any of its parents, `!`
 * exceptions, the last matching pattern deciding. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "image/dockerfile.h"
#include "image/dockerfile_buf.h"

struct df_pattern {
  char *glob;
  bool except;
};

struct df_ignore {
  struct df_pattern *v;
  size_t n;
  bool any_except;
};

/* Go's path.Clean: one slash between components, no `.` components, `..` resolved where it can
 * be; "." for nothing. */
static char *
clean_path (const char *path)
{
  bool rooted = *path == '/';
  char *out = xmalloc (strlen (path) + 2);
  size_t w = 0, dotdot = 0; /* dotdot: how far back a `..` may remove */
  if (rooted)
    out[w++] = '/', dotdot = 1;
  for (const char *s = path; *s;)
    {
      size_t cn = strcspn (s, "/");
      if (cn == 0 || (cn == 1 && s[0] == '.'))
        ;
      else if (cn == 2 && s[0] == '.' && s[1] == '.')
        {
          if (w > dotdot)
            {
              w--;
              while (w > dotdot && out[w] != '/')
                w--;
            }
          else if (!rooted)
            {
              if (w > 0)
                out[w++] = '/';
              out[w++] = '.';
              out[w++] = '.';
              dotdot = w;
            }
        }
      else
        {
          if (w > (rooted ? 1u : 0u))
            out[w++] = '/';
          memcpy (out + w, s, cn);
          w += cn;
        }
      s += cn;
      if (*s == '/')
        s++;
    }
  if (w == 0)
    out[w++] = '.';
  out[w] = '\0';
  return out;
}

/* One UTF-8 character at *s: its code point, *s moved past it (a stray byte counts as one). */
static unsigned
next_char (const char **s)
{
  const unsigned char *p = (const unsigned char *) *s;
  unsigned c = p[0], v;
  int more = 0;
  if (c >= 0xf0 && c < 0xf8)
    more = 3, v = c & 0x07;
  else if (c >= 0xe0 && c < 0xf0)
    more = 2, v = c & 0x0f;
  else if (c >= 0xc0 && c < 0xe0)
    more = 1, v = c & 0x1f;
  else
    v = c;
  for (int i = 1; i <= more; i++)
    {
      if ((p[i] & 0xc0) != 0x80)
        {
          *s += 1;
          return c;
        }
      v = (v << 6) | (p[i] & 0x3f);
    }
  *s += more + 1;
  return v;
}

/* A class at *p (just after the '['): whether ch is in it; *p moved past the ']'. -1: no ']'. */
static int
match_class (const char **p, unsigned ch)
{
  const char *s = *p;
  bool neg = false, in = false, first = true;
  if (*s == '^')
    neg = true, s++;
  while (*s && (*s != ']' || first))
    {
      first = false;
      if (*s == '\\' && s[1])
        s++;
      unsigned lo = next_char (&s), hi = lo;
      if (*s == '-' && s[1] && s[1] != ']')
        {
          s++;
          if (*s == '\\' && s[1])
            s++;
          hi = next_char (&s);
        }
      if (lo <= ch && ch <= hi)
        in = true;
    }
  if (*s != ']')
    return -1;
  *p = s + 1;
  return in != neg;
}

struct glob_ctx {
  const char *p0, *s0;
  size_t s_len;
  bool partial;
  unsigned char *failed; /* (p offset, s offset) already known not to match: no exponential retry */
};

static bool glob_at (struct glob_ctx *g, const char *p, const char *s);

static bool
glob_memo (struct glob_ctx *g, const char *p, const char *s)
{
  size_t bit = (size_t) (p - g->p0) * (g->s_len + 1) + (size_t) (s - g->s0);
  if (g->failed[bit / 8] & (1u << (bit % 8)))
    return false;
  if (glob_at (g, p, s))
    return true;
  g->failed[bit / 8] |= (unsigned char) (1u << (bit % 8));
  return false;
}

static bool
glob_at (struct glob_ctx *g, const char *p, const char *s)
{
  bool partial = g->partial;
  for (;;)
    {
      if (*p == '\0')
        return *s == '\0';
      if (*s == '\0' && partial)
        return true;
      if (p[0] == '*' && p[1] == '*')
        {
          p += 2;
          if (*p == '/')
            p++;
          if (*p == '\0')
            return true;
          /* `**` is "nothing, or anything up to a slash" */
          if (glob_memo (g, p, s))
            return true;
          for (; *s; s++)
            if (*s == '/' && glob_memo (g, p, s + 1))
              return true;
          return false;
        }
      if (*p == '*')
        {
          p++;
          for (;; s++)
            {
              if (glob_memo (g, p, s))
                return true;
              if (*s == '\0' || *s == '/')
                return false;
            }
        }
      if (*s == '\0')
        return false;
      if (*p == '?')
        {
          if (*s == '/')
            return false;
          p++;
          next_char (&s);
          continue;
        }
      if (*p == '[')
        {
          p++;
          if (match_class (&p, next_char (&s)) != 1)
            return false;
          continue;
        }
      if (*p == '\\' && p[1])
        p++;
      if (*p != *s)
        return false;
      p++, s++;
    }
}

/* Whether s matches the glob p; with partial, also when s ends while p could still go on (the
 * pattern could match something under s). */
static bool
glob (const char *p, const char *s, bool partial)
{
  size_t p_len = strlen (p), s_len = strlen (s);
  struct glob_ctx g = { .p0 = p, .s0 = s, .s_len = s_len, .partial = partial };
  g.failed = xzalloc (((p_len + 1) * (s_len + 1) + 7) / 8);
  bool r = glob_at (&g, p, s);
  free (g.failed);
  return r;
}

static bool
valid_glob (const char *p)
{
  for (; *p; p++)
    {
      if (*p == '\\' && p[1])
        p++;
      else if (*p == '[')
        {
          p++;
          if (match_class (&p, 0) < 0)
            return false;
          p--;
        }
    }
  return true;
}

static void
add_pattern (struct df_ignore *ig, char *glob_, bool except)
{
  ig->v = xrealloc (ig->v, (ig->n + 1) * sizeof *ig->v);
  ig->v[ig->n++] = (struct df_pattern){ .glob = glob_, .except = except };
  ig->any_except |= except;
}

static bool
is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int
df_ignore_parse (const char *text, size_t len, struct df_ignore **out, cella_error_t *err)
{
  struct df_ignore *ig = xzalloc (sizeof *ig);
  const char *s = text, *end = text + len;
  int line = 0;
  if (len >= 3 && memcmp (text, "\xef\xbb\xbf", 3) == 0)
    s += 3;
  while (s < end)
    {
      const char *nl = memchr (s, '\n', end - s), *e = nl ? nl : end;
      const char *b = s;
      s = nl ? nl + 1 : end;
      line++;
      if (*b == '#') /* docker drops comments before trimming: ` #x` is a pattern */
        continue;
      while (b < e && is_space (*b))
        b++;
      while (e > b && is_space (e[-1]))
        e--;
      if (b == e)
        continue;
      bool except = *b == '!';
      if (except)
        {
          b++;
          while (b < e && is_space (*b))
            b++;
          if (b == e)
            {
              df_ignore_free (ig);
              return cella_error (err, 0, "line %d: illegal exclusion pattern: \"!\"", line);
            }
        }
      cleanup_free char *raw = strndup (b, e - b);
      char *pat = clean_path (raw);
      if (pat[0] == '/' && pat[1] != '\0')
        memmove (pat, pat + 1, strlen (pat));
      if (!valid_glob (pat))
        {
          df_ignore_free (ig);
          int r = cella_error (err, 0, "line %d: syntax error in pattern \"%s\"", line, pat);
          free (pat);
          return r;
        }
      add_pattern (ig, pat, except);
    }
  *out = ig;
  return 0;
}

/* The pattern matches path or one of its parents (docker's MatchesOrParentMatches). */
static bool
pattern_matches (const char *glob_, char *path)
{
  if (glob (glob_, path, false))
    return true;
  for (char *sl = strchr (path, '/'); sl; sl = strchr (sl + 1, '/'))
    {
      *sl = '\0';
      bool m = glob (glob_, path, false);
      *sl = '/';
      if (m)
        return true;
    }
  return false;
}

bool
df_ignore_match (const struct df_ignore *ig, const char *path)
{
  if (ig == NULL || ig->n == 0)
    return false;
  cleanup_free char *p = clean_path (path);
  char *rel = p;
  while (*rel == '/')
    rel++;
  if (*rel == '\0' || strcmp (rel, ".") == 0)
    return false;
  bool matched = false;
  for (size_t i = 0; i < ig->n; i++)
    {
      /* an exception matters only once something matched, a pattern only while nothing has */
      if (ig->v[i].except != matched)
        continue;
      if (pattern_matches (ig->v[i].glob, rel))
        matched = !ig->v[i].except;
    }
  return matched;
}

bool
df_ignore_may_except (const struct df_ignore *ig, const char *dir)
{
  if (ig == NULL || !ig->any_except)
    return false;
  cleanup_free char *p = clean_path (dir);
  char *rel = p;
  while (*rel == '/')
    rel++;
  if (*rel == '\0' || strcmp (rel, ".") == 0)
    return true;
  cleanup_free char *under = xasprintf ("%s/", rel);
  for (size_t i = 0; i < ig->n; i++)
    if (ig->v[i].except && glob (ig->v[i].glob, under, true))
      return true;
  return false;
}

void
df_ignore_free (struct df_ignore *ig)
{
  if (ig == NULL)
    return;
  for (size_t i = 0; i < ig->n; i++)
    free (ig->v[i].glob);
  free (ig->v);
  free (ig);
}
