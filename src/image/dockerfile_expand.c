/* Variable expansion of Containerfile words, as the Dockerfile reference describes it (and as
 * docker's shell lexer does it): $VAR and ${VAR} with the -, +, ? modifiers (with or without the
 * colon), single quotes literal, double quotes expanding, the escape char taking the next char
 * literally, quotes removed. In the word-splitting form, an unquoted expansion is split at blanks
 * as a shell would (EXPOSE $PORTS). */
#define _GNU_SOURCE
#include <ctype.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "image/dockerfile.h"
#include "image/dockerfile_buf.h"

struct lexer {
  const char *s;
  size_t pos, len;
  char esc;
  df_lookup_fn lookup;
  void *ud;
  cella_error_t *err;
  int depth;
};

/* Where the lexed text goes: one buffer, or (split) words broken at unquoted blanks. */
struct sink {
  struct df_buf cur;
  bool split, in_word;
  bool raw; /* keep the escape chars (a pattern's text) */
  struct df_vec words;
};

static void
sink_char (struct sink *k, char c)
{
  df_buf_addc (&k->cur, c);
  k->in_word = true;
}

/* Docker's lexer never gives an empty word: `''` alone is nothing. */
static void
sink_break (struct sink *k)
{
  if (k->in_word && k->cur.n > 0)
    df_vec_take (&k->words, df_buf_steal (&k->cur));
  k->in_word = false;
}

static bool
is_blank (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* An expansion's value: split at blanks when unquoted in the word-splitting form. */
static void
sink_value (struct sink *k, const char *v, bool quoted)
{
  for (; *v; v++)
    {
      if (k->split && !quoted && is_blank (*v))
        sink_break (k);
      else
        sink_char (k, *v);
    }
}

static int lex (struct lexer *l, char stop, struct sink *k);

static bool
is_name_char (char c)
{
  return isalnum ((unsigned char) c) || c == '_';
}

/* After `${NAME` and its modifier: the text up to stop, itself lexed (raw: the escape chars are
 * kept, for the pattern of # % /, which fnmatch reads). */
static int
brace_word (struct lexer *l, char stop, bool raw, char **out)
{
  struct sink k = { .raw = raw };
  if (lex (l, stop, &k) < 0)
    {
      free (k.cur.p);
      return -1;
    }
  *out = df_buf_steal (&k.cur);
  return 0;
}

/* The name after `$` or `${`: a run of digits, one special parameter char, or letters, digits and
 * underscores; "" when none. */
static char *
read_name (struct lexer *l)
{
  const char *s = l->s;
  size_t start = l->pos;
  if (l->pos < l->len && isdigit ((unsigned char) s[l->pos]))
    while (l->pos < l->len && isdigit ((unsigned char) s[l->pos]))
      l->pos++;
  else if (l->pos < l->len && strchr ("@*#?-$!", s[l->pos]))
    l->pos++;
  else
    while (l->pos < l->len && is_name_char (s[l->pos]))
      l->pos++;
  return strndup (s + start, l->pos - start);
}

/* ${V#pat} ${V##pat} (prefix) and ${V%pat} ${V%%pat} (suffix): the shortest, or with the
 * doubled char the longest, match of the shell pattern removed. */
static char *
trim_match (const char *value, const char *pat, bool suffix, bool longest)
{
  size_t n = strlen (value);
  cleanup_free char *tmp = xstrdup (value);
  for (size_t k = 0; k <= n; k++)
    {
      size_t i = longest ? n - k : k; /* the length of the part removed */
      bool m;
      if (suffix)
        m = fnmatch (pat, value + n - i, 0) == 0;
      else
        {
          char c = tmp[i];
          tmp[i] = '\0';
          m = fnmatch (pat, tmp, 0) == 0;
          tmp[i] = c;
        }
      if (m)
        return suffix ? strndup (value, n - i) : xstrdup (value + i);
    }
  return xstrdup (value);
}

/* ${V/pat/repl} and ${V//pat/repl}: the leftmost longest match (every one) replaced. */
static char *
replace_match (const char *value, const char *pat, const char *repl, bool all)
{
  size_t n = strlen (value), i = 0;
  cleanup_free char *tmp = xstrdup (value);
  struct df_buf out = { 0 };
  bool done = false;
  while (i <= n)
    {
      size_t j = n + 1;
      if (!done)
        for (size_t e = n + 1; e-- > i;)
          {
            char c = tmp[e];
            tmp[e] = '\0';
            bool m = fnmatch (pat, tmp + i, 0) == 0;
            tmp[e] = c;
            if (m)
              {
                j = e;
                break;
              }
          }
      if (j <= n)
        {
          df_buf_add (&out, repl, strlen (repl));
          done = !all;
          if (j > i)
            {
              i = j;
              continue;
            }
        }
      if (i < n)
        df_buf_addc (&out, value[i]);
      i++;
    }
  return df_buf_steal (&out);
}

static int
brace_modifier (struct lexer *l, const char *name, char c, bool colon, char **out)
{
  const char *s = l->s;
  cleanup_free char *word = NULL, *repl = NULL;
  const char *v = l->lookup (name, l->ud);
  if (c == '/')
    {
      bool all = l->pos < l->len && s[l->pos] == '/';
      if (all)
        l->pos++;
      if (brace_word (l, '/', true, &word) < 0 || brace_word (l, '}', true, &repl) < 0)
        return -1;
      *out = *word ? replace_match (v ? v : "", word, repl, all) : xstrdup (v ? v : "");
      return 0;
    }
  bool raw = c == '#' || c == '%';
  if (brace_word (l, '}', raw, &word) < 0)
    return -1;
  /* with the colon, an empty value counts as unset */
  bool set = v != NULL && (!colon || *v != '\0');
  switch (c)
    {
    case '-':
      *out = xstrdup (set ? v : word);
      return 0;
    case '+':
      *out = xstrdup (set ? word : "");
      return 0;
    case '#':
    case '%':
      {
        bool longest = word[0] == c;
        *out = trim_match (v ? v : "", word + longest, c == '%', longest);
        return 0;
      }
    case '?':
    default:
      if (!set)
        return cella_error (l->err, 0, "%s: %s", name,
                            *word ? word : (v ? "is not allowed to be empty" : "is not allowed to be unset"));
      *out = xstrdup (v);
      return 0;
    }
}

/* At a '$': its value into *out (a literal "$" when no name follows). */
static int
dollar (struct lexer *l, char **out)
{
  const char *s = l->s;
  l->pos++;
  if (l->pos >= l->len || s[l->pos] != '{')
    {
      cleanup_free char *name = read_name (l);
      const char *v = *name ? l->lookup (name, l->ud) : "$";
      *out = xstrdup (v ? v : "");
      return 0;
    }
  l->pos++;
  if (l->pos >= l->len)
    return cella_error (l->err, 0, "missing '}' in \"%.*s\"", (int) l->len, s);
  if (strchr ("{}:", s[l->pos]))
    return cella_error (l->err, 0, "bad substitution in \"%.*s\"", (int) l->len, s);
  cleanup_free char *name = read_name (l);
  if (l->pos >= l->len)
    return cella_error (l->err, 0, "missing '}' in \"%.*s\"", (int) l->len, s);
  char c = s[l->pos++];
  if (c == '}')
    {
      const char *v = l->lookup (name, l->ud);
      *out = xstrdup (v ? v : "");
      return 0;
    }
  bool colon = c == ':';
  if (colon)
    {
      if (l->pos >= l->len)
        return cella_error (l->err, 0, "missing '}' in \"%.*s\"", (int) l->len, s);
      c = s[l->pos++];
    }
  if (!strchr (colon ? "-+?" : "-+?#%/", c) || c == '\0')
    return cella_error (l->err, 0, "unsupported modifier (%s%c) in substitution \"%.*s\"", colon ? ":" : "", c,
                        (int) l->len, s);
  return brace_modifier (l, name, c, colon, out);
}

static int
double_quoted (struct lexer *l, struct sink *k)
{
  const char *s = l->s;
  l->pos++; /* the opening quote */
  k->in_word = true;
  while (l->pos < l->len)
    {
      char c = s[l->pos];
      if (c == '"')
        {
          l->pos++;
          return 0;
        }
      if (c == '$')
        {
          cleanup_free char *v = NULL;
          if (dollar (l, &v) < 0)
            return -1;
          sink_value (k, v, true);
          continue;
        }
      if (c == l->esc && l->pos + 1 < l->len
          && (s[l->pos + 1] == '"' || s[l->pos + 1] == '$' || s[l->pos + 1] == l->esc))
        l->pos++;
      sink_char (k, s[l->pos++]);
    }
  return cella_error (l->err, 0, "unexpected end of statement while looking for matching double-quote in \"%.*s\"",
                      (int) l->len, s);
}

/* Lex until stop (when not 0) or the end: the escape char, quotes and $ expansions. */
static int
lex (struct lexer *l, char stop, struct sink *k)
{
  const char *s = l->s;
  if (++l->depth > 64)
    return cella_error (l->err, 0, "substitutions nested too deep in \"%.*s\"", (int) l->len, s);
  while (l->pos < l->len)
    {
      char c = s[l->pos];
      if (stop && c == stop)
        {
          l->pos++;
          l->depth--;
          return 0;
        }
      if (c == l->esc)
        {
          l->pos++;
          if (k->raw)
            sink_char (k, c);
          if (l->pos < l->len)
            sink_char (k, s[l->pos++]);
        }
      else if (c == '\'')
        {
          const char *q = memchr (s + l->pos + 1, '\'', l->len - l->pos - 1);
          if (q == NULL)
            return cella_error (l->err, 0,
                                "unexpected end of statement while looking for matching single-quote in \"%.*s\"",
                                (int) l->len, s);
          k->in_word = true;
          for (size_t i = l->pos + 1; s + i < q; i++)
            sink_char (k, s[i]);
          l->pos = q - s + 1;
        }
      else if (c == '"')
        {
          if (double_quoted (l, k) < 0)
            return -1;
        }
      else if (c == '$')
        {
          cleanup_free char *v = NULL;
          if (dollar (l, &v) < 0)
            return -1;
          sink_value (k, v, false);
        }
      else if (k->split && is_blank (c))
        {
          sink_break (k);
          l->pos++;
        }
      else
        {
          sink_char (k, c);
          l->pos++;
        }
    }
  if (stop)
    return cella_error (l->err, 0, "missing '%c' in \"%.*s\"", stop, (int) l->len, s);
  l->depth--;
  return 0;
}

static const char *
no_lookup (const char *name, void *ud)
{
  (void) name;
  (void) ud;
  return NULL;
}

static void
sink_clear (struct sink *k)
{
  free (k->cur.p);
  strv_free (k->words.v);
}

int
df_expand (const char *word, char escape, df_lookup_fn lookup, void *ud, char **out, cella_error_t *err)
{
  struct lexer l
      = { .s = word, .len = strlen (word), .esc = escape, .lookup = lookup ? lookup : no_lookup, .ud = ud, .err = err };
  struct sink k = { 0 };
  if (lex (&l, 0, &k) < 0)
    {
      sink_clear (&k);
      return -1;
    }
  *out = df_buf_steal (&k.cur);
  return 0;
}

int
df_expand_words (const char *text, char escape, df_lookup_fn lookup, void *ud, char ***out, cella_error_t *err)
{
  struct lexer l
      = { .s = text, .len = strlen (text), .esc = escape, .lookup = lookup ? lookup : no_lookup, .ud = ud, .err = err };
  struct sink k = { .split = true };
  if (lex (&l, 0, &k) < 0)
    {
      sink_clear (&k);
      return -1;
    }
  sink_break (&k);
  free (k.cur.p);
  *out = df_vec_steal (&k.words);
  return 0;
}
