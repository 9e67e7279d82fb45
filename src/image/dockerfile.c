/* The Containerfile (Dockerfile) parser: text to stages and instructions (dockerfile.h). It follows
 * what docker's parser does with the same text (parser directives only at the very top, comment
 * lines dropped inside a continuation, a `[` that is not a JSON array of strings read as shell
 * form, flags taken from the front of the arguments), and leaves variables alone: which ARG and ENV
 * values apply is known only while the build runs (dockerfile_expand.c). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/dockerfile.h"
#include "image/dockerfile_buf.h"

static const char *const kind_names[] = {
  [DF_FROM] = "FROM",
  [DF_RUN] = "RUN",
  [DF_CMD] = "CMD",
  [DF_LABEL] = "LABEL",
  [DF_MAINTAINER] = "MAINTAINER",
  [DF_EXPOSE] = "EXPOSE",
  [DF_ENV] = "ENV",
  [DF_ADD] = "ADD",
  [DF_COPY] = "COPY",
  [DF_ENTRYPOINT] = "ENTRYPOINT",
  [DF_VOLUME] = "VOLUME",
  [DF_USER] = "USER",
  [DF_WORKDIR] = "WORKDIR",
  [DF_ARG] = "ARG",
  [DF_ONBUILD] = "ONBUILD",
  [DF_STOPSIGNAL] = "STOPSIGNAL",
  [DF_HEALTHCHECK] = "HEALTHCHECK",
  [DF_SHELL] = "SHELL",
};
#define N_KINDS (sizeof kind_names / sizeof kind_names[0])

const char *
df_kind_name (enum df_kind k)
{
  return (size_t) k < N_KINDS ? kind_names[k] : "?";
}

/* The flags each instruction takes (docker's BFlags): a string flag needs a value, a bool flag
 * may have one (true/false), a list flag may repeat. */
enum flag_type { FLAG_STR, FLAG_BOOL, FLAG_LIST };
struct flag_def {
  enum df_kind kind;
  const char *name;
  enum flag_type type;
};
static const struct flag_def flag_defs[] = {
  { DF_FROM, "platform", FLAG_STR },
  { DF_RUN, "mount", FLAG_LIST },
  { DF_RUN, "network", FLAG_STR },
  { DF_RUN, "security", FLAG_STR },
  { DF_COPY, "from", FLAG_STR },
  { DF_COPY, "chown", FLAG_STR },
  { DF_COPY, "chmod", FLAG_STR },
  { DF_COPY, "link", FLAG_BOOL },
  { DF_COPY, "parents", FLAG_BOOL },
  { DF_COPY, "exclude", FLAG_LIST },
  { DF_ADD, "chown", FLAG_STR },
  { DF_ADD, "chmod", FLAG_STR },
  { DF_ADD, "link", FLAG_BOOL },
  { DF_ADD, "checksum", FLAG_STR },
  { DF_ADD, "keep-git-dir", FLAG_BOOL },
  { DF_ADD, "exclude", FLAG_LIST },
  { DF_HEALTHCHECK, "interval", FLAG_STR },
  { DF_HEALTHCHECK, "timeout", FLAG_STR },
  { DF_HEALTHCHECK, "start-period", FLAG_STR },
  { DF_HEALTHCHECK, "start-interval", FLAG_STR },
  { DF_HEALTHCHECK, "retries", FLAG_STR },
};

struct line {
  const char *s;
  size_t n; /* without the \n or \r\n */
};

struct parser {
  const char *file;
  char escape;
  struct line *lines;
  size_t n_lines, next; /* next: the index of the next line to read */
  cella_error_t *err;
};

static int __attribute__ ((format (printf, 3, 4))) perr (struct parser *p, int line, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;
  int r;
  va_start (ap, fmt);
  r = vasprintf (&msg, fmt, ap);
  va_end (ap);
  if (r < 0)
    abort ();
  if (line > 0)
    r = cella_error (p->err, 0, "%s:%d: %s", p->file, line, msg);
  else
    r = cella_error (p->err, 0, "%s: %s", p->file, msg);
  free (msg);
  return r;
}

static bool
is_blank (char c)
{
  return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
}

static const char *
skip_blanks (const char *s, const char *end)
{
  while (s < end && is_blank (*s))
    s++;
  return s;
}

static void
trim_right (struct df_buf *b)
{
  while (b->n > 0 && is_blank (b->p[b->n - 1]))
    b->p[--b->n] = '\0';
}

static bool
is_comment (const struct line *l)
{
  const char *s = skip_blanks (l->s, l->s + l->n);
  return s < l->s + l->n && *s == '#';
}

static bool
is_empty (const struct line *l)
{
  return skip_blanks (l->s, l->s + l->n) == l->s + l->n;
}

/* Remove a trailing escape char (and the blanks after it) from l; true when there was one. */
static bool
cut_continuation (struct parser *p, struct line *l)
{
  size_t n = l->n;
  while (n > 0 && (l->s[n - 1] == ' ' || l->s[n - 1] == '\t'))
    n--;
  /* `\\` at the end is an escaped escape char, not a continuation (docker's regex) */
  if (n == 0 || l->s[n - 1] != p->escape || (n >= 2 && l->s[n - 2] == p->escape))
    return false;
  l->n = n - 1;
  return true;
}

static void
split_lines (struct parser *p, const char *text, size_t len)
{
  size_t cap = 16;
  const char *s = text, *end = text + len;
  if (len >= 3 && memcmp (text, "\xef\xbb\xbf", 3) == 0)
    s += 3;
  p->lines = xmalloc (cap * sizeof *p->lines);
  while (s < end)
    {
      const char *nl = memchr (s, '\n', end - s);
      const char *e = nl ? nl : end;
      if (p->n_lines == cap)
        p->lines = xrealloc (p->lines, (cap *= 2) * sizeof *p->lines);
      p->lines[p->n_lines].s = s;
      p->lines[p->n_lines].n = (e > s && e[-1] == '\r') ? (size_t) (e - s - 1) : (size_t) (e - s);
      p->n_lines++;
      s = nl ? nl + 1 : end;
    }
}

/* `# name=value` at the top: true when the line is one (and it was taken), false when the
 * directives are over (this line and all after are ordinary). */
static int
parse_directive (struct parser *p, const struct line *l, struct dockerfile *df, unsigned *seen, bool *done)
{
  const char *s = skip_blanks (l->s, l->s + l->n), *end = l->s + l->n, *name, *value;
  size_t name_n;
  *done = true;
  if (s == end || *s != '#')
    return 0;
  s = skip_blanks (s + 1, end);
  name = s;
  if (s == end || !isalpha ((unsigned char) *s))
    return 0;
  while (s < end && isalnum ((unsigned char) *s))
    s++;
  name_n = s - name;
  s = skip_blanks (s, end);
  if (s == end || *s != '=')
    return 0;
  s = skip_blanks (s + 1, end);
  while (end > s && is_blank (end[-1]))
    end--;
  if (s == end)
    return 0;
  value = s;
  int line = (int) (l - p->lines) + 1;
  static const char *const known[] = { "escape", "syntax", "check" };
  size_t k = 0;
  while (k < 3 && !(strlen (known[k]) == name_n && strncasecmp (name, known[k], name_n) == 0))
    k++;
  if (k == 3)
    return 0; /* an unknown directive is a comment, and ends the directives */
  if (*seen & (1u << k))
    return perr (p, line, "only one %s parser directive can be used", known[k]);
  *seen |= 1u << k;
  if (k == 0)
    {
      if (end - value != 1 || (*value != '\\' && *value != '`'))
        return perr (p, line, "invalid escape token '%.*s' does not match ` or \\", (int) (end - value), value);
      p->escape = df->escape = *value;
    }
  else if (k == 1)
    df->syntax = strndup (value, end - value);
  *done = false;
  return 0;
}

/* Split at unquoted blanks, keeping quotes and escapes in the words (docker's parseWords). */
static char **
split_words (const char *s, char esc)
{
  struct df_vec w = { 0 };
  struct df_buf b = { 0 };
  bool in_word = false, blank_ok = false;
  char quote = 0;
  for (; *s; s++)
    {
      char c = *s;
      if (quote)
        {
          if (c == quote)
            quote = 0;
          else if (c == esc && quote != '\'' && s[1])
            df_buf_addc (&b, *s++);
          df_buf_addc (&b, *s);
          continue;
        }
      if (is_blank (c))
        {
          if (in_word && (blank_ok || b.n > 0))
            df_vec_take (&w, df_buf_steal (&b));
          in_word = blank_ok = false;
          continue;
        }
      in_word = true;
      if (c == '\'' || c == '"')
        {
          quote = c;
          blank_ok = true;
        }
      else if (c == esc)
        {
          if (s[1] == '\0')
            break;
          df_buf_addc (&b, *s++);
        }
      df_buf_addc (&b, *s);
    }
  if (in_word && (blank_ok || b.n > 0))
    df_vec_take (&w, df_buf_steal (&b));
  free (b.p);
  return df_vec_steal (&w);
}

/* ENV, LABEL and ARG args are pairs whose value may be NULL (`ARG NAME`): walk them by key. */
static void
pairs_free (char **v)
{
  for (size_t i = 0; v && v[i]; i += 2)
    {
      free (v[i]);
      free (v[i + 1]);
    }
  free (v);
}

static void
flags_free (struct df_flag *f, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (f[i].name);
      free (f[i].value);
    }
  free (f);
}

static void
instr_clear (struct df_instr *in)
{
  if (in == NULL)
    return;
  free (in->text);
  flags_free (in->flags, in->n_flags);
  if (in->kind == DF_ARG || in->kind == DF_ENV || in->kind == DF_LABEL)
    pairs_free (in->args);
  else
    strv_free (in->args);
  for (size_t i = 0; i < in->n_heredocs; i++)
    {
      free (in->heredocs[i].name);
      free (in->heredocs[i].body);
    }
  free (in->heredocs);
  if (in->onbuild)
    {
      instr_clear (in->onbuild);
      free (in->onbuild);
    }
  memset (in, 0, sizeof *in);
}

/* The next flag word at *s: docker's extractBuilderFlags removes its quotes and escape chars. */
static char *
flag_word (struct parser *p, const char **s)
{
  struct df_buf b = { 0 };
  char quote = 0;
  const char *c = *s;
  for (; *c && (quote || !is_blank (*c)); c++)
    {
      if (quote ? *c == quote : (*c == '"' || *c == '\''))
        {
          quote = quote ? 0 : *c;
          continue;
        }
      if (*c == p->escape)
        {
          if (c[1] == '\0')
            break;
          c++;
        }
      df_buf_addc (&b, *c);
    }
  *s = skip_blanks (c, c + strlen (c));
  return df_buf_steal (&b);
}

/* The leading `--name[=value]` words of *rest, checked against what the instruction takes. */
static int
parse_flags (struct parser *p, struct df_instr *in, const char **rest)
{
  const char *s = *rest;
  while (s[0] == '-' && s[1] == '-')
    {
      cleanup_free char *word = flag_word (p, &s);
      if (strcmp (word, "--") == 0) /* `--` ends the flags */
        break;
      char *eq = strchr (word, '=');
      cleanup_free char *name = strndup (word + 2, (eq ? (size_t) (eq - word) : strlen (word)) - 2);
      const char *kw = df_kind_name (in->kind);
      const struct flag_def *def = NULL;
      for (size_t i = 0; i < sizeof flag_defs / sizeof flag_defs[0]; i++)
        if (flag_defs[i].kind == in->kind && strcmp (flag_defs[i].name, name) == 0)
          def = &flag_defs[i];
      if (def == NULL)
        return perr (p, in->line, "%s: unknown flag --%s", kw, name);
      if (def->type == FLAG_STR && eq == NULL)
        return perr (p, in->line, "%s: missing a value on flag --%s", kw, name);
      if (def->type == FLAG_BOOL && eq && strcasecmp (eq + 1, "true") != 0 && strcasecmp (eq + 1, "false") != 0)
        return perr (p, in->line, "%s: expecting a boolean value for flag --%s, not: %s", kw, name, eq + 1);
      if (def->type != FLAG_LIST)
        for (size_t i = 0; i < in->n_flags; i++)
          if (strcmp (in->flags[i].name, name) == 0)
            return perr (p, in->line, "%s: duplicate flag --%s", kw, name);
      in->flags = xrealloc (in->flags, (in->n_flags + 1) * sizeof *in->flags);
      in->flags[in->n_flags].name = steal_pointer (&name);
      in->flags[in->n_flags].value = eq ? xstrdup (eq + 1) : NULL;
      in->n_flags++;
    }
  *rest = s;
  return 0;
}

/* A JSON array of strings, or NULL (then the text is shell form, as docker reads it). */
static char **
parse_json_array (const char *s)
{
  json_error_t jerr;
  json_t *a, *v;
  size_t i;
  struct df_vec w = { 0 };
  if (*s != '[')
    return NULL;
  a = json_loads (s, 0, &jerr);
  if (a == NULL)
    return NULL;
  if (!json_is_array (a))
    {
      json_decref (a);
      return NULL;
    }
  json_array_foreach (a, i, v)
    {
      if (!json_is_string (v))
        {
          json_decref (a);
          strv_free (w.v);
          return NULL;
        }
      df_vec_take (&w, xstrdup (json_string_value (v)));
    }
  json_decref (a);
  return df_vec_steal (&w);
}

/* ENV and LABEL: `K=V K2=V2`, or the legacy `K the rest of the line`. */
static int
parse_name_values (struct parser *p, struct df_instr *in, const char *rest)
{
  cleanup_strv char **words = split_words (rest, p->escape);
  struct df_vec w = { 0 };
  if (words[0] && strchr (words[0], '=') == NULL)
    {
      const char *e = rest;
      while (*e && !is_blank (*e))
        e++;
      const char *v = skip_blanks (e, e + strlen (e));
      if (*v == '\0')
        return perr (p, in->line, "%s: %s must have two arguments", df_kind_name (in->kind), in->text);
      df_vec_take (&w, strndup (rest, e - rest));
      df_vec_take (&w, xstrdup (v));
      in->args = df_vec_steal (&w);
      return 0;
    }
  for (size_t i = 0; words[i]; i++)
    {
      char *eq = strchr (words[i], '=');
      if (eq == words[i])
        {
          pairs_free (w.v);
          return perr (p, in->line, "%s: names can not be blank: \"%s\"", df_kind_name (in->kind), words[i]);
        }
      if (eq == NULL)
        {
          pairs_free (w.v);
          return perr (p, in->line, "%s: can't find = in \"%s\": must be of the form name=value",
                       df_kind_name (in->kind), words[i]);
        }
      df_vec_take (&w, strndup (words[i], eq - words[i]));
      df_vec_take (&w, xstrdup (eq + 1));
    }
  in->args = df_vec_steal (&w);
  return 0;
}

static int
parse_arg (struct parser *p, struct df_instr *in, const char *rest)
{
  cleanup_strv char **words = split_words (rest, p->escape);
  struct df_vec w = { 0 };
  for (size_t i = 0; words[i]; i++)
    {
      char *eq = strchr (words[i], '=');
      if (eq == words[i])
        {
          pairs_free (w.v);
          return perr (p, in->line, "ARG: no name in \"%s\"", words[i]);
        }
      df_vec_take (&w, eq ? strndup (words[i], eq - words[i]) : xstrdup (words[i]));
      df_vec_take (&w, eq ? xstrdup (eq + 1) : NULL);
    }
  in->args = df_vec_steal (&w);
  return 0;
}

static int
parse_healthcheck (struct parser *p, struct df_instr *in, const char *rest)
{
  const char *e = rest;
  struct df_vec w = { 0 };
  while (*e && !is_blank (*e))
    e++;
  const char *cmd = skip_blanks (e, e + strlen (e));
  if ((size_t) (e - rest) == 4 && strncasecmp (rest, "NONE", 4) == 0)
    {
      if (*cmd)
        return perr (p, in->line, "HEALTHCHECK NONE takes no arguments");
      df_vec_take (&w, xstrdup ("NONE"));
      in->args = df_vec_steal (&w);
      return 0;
    }
  if (!((size_t) (e - rest) == 3 && strncasecmp (rest, "CMD", 3) == 0))
    return perr (p, in->line, "HEALTHCHECK: unknown type \"%.*s\" (try CMD or NONE)", (int) (e - rest), rest);
  if (*cmd == '\0')
    return perr (p, in->line, "HEALTHCHECK CMD requires a command");
  char **json = parse_json_array (cmd);
  df_vec_take (&w, xstrdup ("CMD"));
  if (json)
    {
      in->json = true;
      for (size_t i = 0; json[i]; i++)
        df_vec_take (&w, json[i]);
      free (json);
    }
  else
    df_vec_take (&w, xstrdup (cmd));
  in->args = df_vec_steal (&w);
  return 0;
}

static bool
valid_stage_name (const char *s)
{
  if (!(*s >= 'a' && *s <= 'z'))
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
      return false;
  return true;
}

static int
parse_from (struct parser *p, struct df_instr *in, const char *rest)
{
  in->args = split_words (rest, p->escape);
  size_t n = strv_len (in->args);
  if (n == 0 || n == 2 || n > 3 || (n == 3 && strcasecmp (in->args[1], "AS") != 0))
    return perr (p, in->line, "FROM requires either one or three arguments (FROM IMAGE [AS NAME]): %s", in->text);
  if (n == 3)
    {
      for (char *c = in->args[2]; *c; c++)
        *c = (char) tolower ((unsigned char) *c);
      if (!valid_stage_name (in->args[2]))
        return perr (p, in->line,
                     "FROM: invalid name for build stage: \"%s\", name can't start with a number or contain symbols",
                     in->args[2]);
    }
  return 0;
}

/* The heredocs a RUN/COPY/ADD line opens (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`), in order. */
static void
find_heredocs (const char *rest, struct df_instr *in)
{
  cleanup_strv char **words = split_words (rest, '\\');
  for (size_t i = 0; words[i]; i++)
    {
      const char *w = words[i];
      while (*w >= '0' && *w <= '9')
        w++;
      if (strncmp (w, "<<", 2) != 0)
        continue;
      w += 2;
      bool strip = *w == '-';
      if (strip)
        w++;
      if (*w == '\0' || strchr (w, '<'))
        continue;
      struct df_buf name = { 0 };
      bool quoted = false;
      char quote = 0;
      for (const char *c = w; *c; c++)
        {
          if (quote ? *c == quote : (*c == '"' || *c == '\''))
            {
              quote = quote ? 0 : *c;
              quoted = true;
              continue;
            }
          if (*c == '\\' && c[1] && quote != '\'')
            {
              quoted = true;
              c++;
            }
          df_buf_addc (&name, *c);
        }
      if (name.n == 0)
        {
          free (name.p);
          continue;
        }
      in->heredocs = xrealloc (in->heredocs, (in->n_heredocs + 1) * sizeof *in->heredocs);
      in->heredocs[in->n_heredocs++] = (struct df_heredoc){
        .name = df_buf_steal (&name),
        .body = NULL,
        .expand = !quoted,
        .strip_tabs = strip,
      };
    }
}

/* The bodies of the heredocs, from the lines after the instruction. */
static int
read_heredocs (struct parser *p, struct df_instr *in)
{
  for (size_t h = 0; h < in->n_heredocs; h++)
    {
      struct df_heredoc *hd = &in->heredocs[h];
      struct df_buf body = { 0 };
      size_t name_n = strlen (hd->name);
      bool done = false;
      while (p->next < p->n_lines && !done)
        {
          const struct line *l = &p->lines[p->next++];
          const char *s = l->s;
          size_t n = l->n;
          if (hd->strip_tabs)
            while (n > 0 && *s == '\t')
              s++, n--;
          if (n == name_n && memcmp (s, hd->name, n) == 0)
            done = true;
          else
            {
              df_buf_add (&body, s, n);
              df_buf_addc (&body, '\n');
            }
        }
      hd->body = df_buf_steal (&body);
      if (!done)
        return perr (p, in->line, "%s: unterminated heredoc <<%s", df_kind_name (in->kind), hd->name);
    }
  return 0;
}

static int parse_instr (struct parser *p, const char *text, int line, bool nested, struct df_instr *in);

static int
parse_args (struct parser *p, struct df_instr *in, const char *rest)
{
  const char *kw = df_kind_name (in->kind);
  if (*rest == '\0' && in->kind != DF_ARG)
    return perr (p, in->line, "%s requires at least one argument", kw);
  switch (in->kind)
    {
    case DF_RUN:
    case DF_CMD:
    case DF_ENTRYPOINT:
    case DF_SHELL:
      in->args = parse_json_array (rest);
      in->json = in->args != NULL;
      if (in->kind == DF_SHELL && !in->json)
        return perr (p, in->line, "SHELL requires the arguments to be in JSON form: %s", in->text);
      if (in->kind == DF_SHELL && in->args[0] == NULL)
        return perr (p, in->line, "SHELL requires at least one argument");
      if (!in->json)
        {
          struct df_vec w = { 0 };
          df_vec_take (&w, xstrdup (rest));
          in->args = df_vec_steal (&w);
        }
      return 0;
    case DF_COPY:
    case DF_ADD:
    case DF_VOLUME:
      in->args = parse_json_array (rest);
      in->json = in->args != NULL;
      if (!in->json)
        in->args = split_words (rest, p->escape);
      if (in->kind != DF_VOLUME && strv_len (in->args) < 2)
        return perr (p, in->line, "%s requires at least two arguments, but only one was provided: %s", kw, in->text);
      if (in->kind == DF_VOLUME && in->args[0] == NULL)
        return perr (p, in->line, "VOLUME requires at least one argument");
      return 0;
    case DF_ENV:
    case DF_LABEL:
      return parse_name_values (p, in, rest);
    case DF_ARG:
      if (*rest == '\0')
        return perr (p, in->line, "ARG requires at least one argument");
      return parse_arg (p, in, rest);
    case DF_HEALTHCHECK:
      return parse_healthcheck (p, in, rest);
    case DF_FROM:
      return parse_from (p, in, rest);
    case DF_ONBUILD:
      in->onbuild = xzalloc (sizeof *in->onbuild);
      in->args = strv_new (0);
      return parse_instr (p, rest, in->line, true, in->onbuild);
    case DF_USER:
    case DF_WORKDIR:
    case DF_STOPSIGNAL:
    case DF_MAINTAINER:
      {
        /* docker takes the whole rest as the one argument (`WORKDIR /my dir`) */
        struct df_vec w = { 0 };
        df_vec_take (&w, xstrdup (rest));
        in->args = df_vec_steal (&w);
        return 0;
      }
    case DF_EXPOSE:
    default:
      in->args = split_words (rest, p->escape);
      if (in->args[0] == NULL)
        return perr (p, in->line, "%s requires at least one argument", kw);
      return 0;
    }
}

static int
parse_instr (struct parser *p, const char *text, int line, bool nested, struct df_instr *in)
{
  const char *s = skip_blanks (text, text + strlen (text)), *kw = s, *rest;
  size_t kw_n;
  int kind = -1;
  in->line = line;
  in->text = xstrdup (s);
  while (*s && !is_blank (*s))
    s++;
  kw_n = s - kw;
  rest = skip_blanks (s, s + strlen (s));
  for (size_t k = 0; k < N_KINDS; k++)
    if (strlen (kind_names[k]) == kw_n && strncasecmp (kind_names[k], kw, kw_n) == 0)
      kind = (int) k;
  if (kind < 0)
    return perr (p, line, "unknown instruction: %.*s", (int) kw_n, kw);
  in->kind = (enum df_kind) kind;
  if (nested && (in->kind == DF_ONBUILD || in->kind == DF_FROM || in->kind == DF_MAINTAINER))
    return perr (p, line, "ONBUILD %s isn't allowed as an ONBUILD trigger", df_kind_name (in->kind));
  if (parse_flags (p, in, &rest) < 0)
    return -1;
  if (parse_args (p, in, rest) < 0)
    return -1;
  if (!in->json && (in->kind == DF_RUN || in->kind == DF_COPY || in->kind == DF_ADD) && strstr (rest, "<<"))
    {
      find_heredocs (rest, in);
      if (read_heredocs (p, in) < 0)
        return -1;
    }
  return 0;
}

/* The next instruction's text (continuations joined, comment and empty lines inside it dropped)
 * and its first line; false at the end of the file. */
static bool
next_logical_line (struct parser *p, struct df_buf *b, int *first_line)
{
  while (p->next < p->n_lines)
    {
      struct line l = p->lines[p->next++];
      if (is_comment (&l) || is_empty (&l))
        continue;
      *first_line = (int) p->next;
      b->n = 0;
      const char *s = skip_blanks (l.s, l.s + l.n);
      l.n -= s - l.s;
      l.s = s;
      bool cont = cut_continuation (p, &l);
      df_buf_add (b, l.s, l.n);
      while (cont && p->next < p->n_lines)
        {
          l = p->lines[p->next++];
          if (is_comment (&l) || is_empty (&l))
            continue;
          cont = cut_continuation (p, &l);
          df_buf_add (b, l.s, l.n);
        }
      trim_right (b);
      if (b->n > 0)
        return true;
    }
  return false;
}

static void
stage_add (struct dockerfile *df, struct df_instr *in, size_t *cap)
{
  struct df_stage *st = &df->stages[df->n_stages - 1];
  if (st->n_instrs == *cap)
    st->instrs = xrealloc (st->instrs, (*cap = *cap ? *cap * 2 : 8) * sizeof *st->instrs);
  st->instrs[st->n_instrs++] = *in;
  memset (in, 0, sizeof *in);
}

static int
add_instr (struct parser *p, struct dockerfile *df, struct df_instr *in, size_t *cap)
{
  if (in->kind == DF_FROM)
    {
      const char *name = strv_len (in->args) == 3 ? in->args[2] : NULL;
      for (size_t i = 0; name && i < df->n_stages; i++)
        if (df->stages[i].name && strcmp (df->stages[i].name, name) == 0)
          return perr (p, in->line, "FROM: duplicate stage name \"%s\"", name);
      df->stages = xrealloc (df->stages, (df->n_stages + 1) * sizeof *df->stages);
      struct df_stage *st = &df->stages[df->n_stages++];
      memset (st, 0, sizeof *st);
      *cap = 0;
      st->index = (int) df->n_stages - 1;
      st->name = name ? xstrdup (name) : NULL;
      st->base = xstrdup (in->args[0]);
      for (size_t i = 0; i < in->n_flags; i++)
        if (strcmp (in->flags[i].name, "platform") == 0)
          st->platform = xstrdup (in->flags[i].value);
      stage_add (df, in, cap);
      return 0;
    }
  if (df->n_stages == 0)
    {
      if (in->kind != DF_ARG)
        return perr (p, in->line,
                     "%s: no build stage yet: the first instruction must be FROM (only ARG may come before it)",
                     df_kind_name (in->kind));
      df->meta_args = xrealloc (df->meta_args, (df->n_meta_args + 1) * sizeof *df->meta_args);
      df->meta_args[df->n_meta_args++] = *in;
      memset (in, 0, sizeof *in);
      return 0;
    }
  stage_add (df, in, cap);
  return 0;
}

static int
parse_all (struct parser *p, struct dockerfile *df)
{
  struct df_buf b = { 0 };
  bool done = false;
  unsigned seen = 0;
  size_t cap = 0;
  int line, r = 0;
  while (!done && p->next < p->n_lines)
    {
      if (parse_directive (p, &p->lines[p->next], df, &seen, &done) < 0)
        return -1;
      if (!done)
        p->next++;
    }
  while (r == 0 && next_logical_line (p, &b, &line))
    {
      struct df_instr in = { 0 };
      r = parse_instr (p, b.p, line, false, &in);
      if (r == 0)
        r = add_instr (p, df, &in, &cap);
      instr_clear (&in);
    }
  free (b.p);
  if (r < 0)
    return r;
  if (df->n_stages == 0 && df->n_meta_args == 0)
    return perr (p, 0, "no instructions");
  if (df->n_stages == 0)
    return perr (p, 0, "no FROM instruction");
  for (size_t i = 0; i < df->n_stages; i++)
    df->stages[i].from = &df->stages[i].instrs[0];
  return 0;
}

int
df_parse (const char *text, size_t len, const char *filename, struct dockerfile *out, cella_error_t *err)
{
  struct parser p = { .file = filename ? filename : "Containerfile", .escape = '\\', .err = err };
  memset (out, 0, sizeof *out);
  out->escape = '\\';
  split_lines (&p, text, len);
  int r = 0;
  /* the words are C strings: a NUL would cut them short without a word */
  for (size_t i = 0; i < p.n_lines && r == 0; i++)
    if (memchr (p.lines[i].s, '\0', p.lines[i].n))
      r = perr (&p, (int) i + 1, "a NUL byte in the file");
  if (r == 0)
    r = parse_all (&p, out);
  free (p.lines);
  if (r < 0)
    dockerfile_free (out);
  return r;
}

void
dockerfile_free (struct dockerfile *df)
{
  if (df == NULL)
    return;
  free (df->syntax);
  for (size_t i = 0; i < df->n_meta_args; i++)
    instr_clear (&df->meta_args[i]);
  free (df->meta_args);
  for (size_t i = 0; i < df->n_stages; i++)
    {
      struct df_stage *st = &df->stages[i];
      for (size_t j = 0; j < st->n_instrs; j++)
        instr_clear (&st->instrs[j]);
      free (st->instrs);
      free (st->name);
      free (st->base);
      free (st->platform);
    }
  free (df->stages);
  memset (df, 0, sizeof *df);
  df->escape = '\\';
}

const struct df_stage *
df_stage_find (const struct dockerfile *df, const char *name_or_index)
{
  if (name_or_index == NULL || *name_or_index == '\0')
    return NULL;
  for (size_t i = 0; i < df->n_stages; i++)
    if (df->stages[i].name && strcasecmp (df->stages[i].name, name_or_index) == 0)
      return &df->stages[i];
  char *end;
  errno = 0;
  unsigned long n = strtoul (name_or_index, &end, 10);
  if (*end || errno || !isdigit ((unsigned char) *name_or_index) || n >= df->n_stages)
    return NULL;
  return &df->stages[n];
}
