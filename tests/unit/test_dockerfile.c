/* Unit tests for the Containerfile parser (src/image/dockerfile.c), variable expansion
 * (dockerfile_expand.c) and the .dockerignore matcher (dockerignore.c): each instruction, the
 * escape directive, continuations with comments, heredocs, JSON and shell forms, flags, stages and
 * meta args, errors with their line numbers, the expansion modifiers, and ignore patterns. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "image/dockerfile.h"
#include "tap.h"
#include "errcheck.h"

/* A check whose result decides whether the ones after it can run. */
static bool
OK (bool cond, const char *what)
{
  tap_check (cond, "%s", what);
  return cond;
}

static bool
parse (const char *text, struct dockerfile *df)
{
  cella_error_t err = NULL;
  if (df_parse (text, strlen (text), "Containerfile", df, &err) < 0)
    {
      printf ("#   parse error: %s\n", err->msg);
      cella_error_free (&err);
      return false;
    }
  return true;
}

static bool
parse_fails (const char *text, const char *needle)
{
  struct dockerfile df;
  cella_error_t err = NULL;
  if (df_parse (text, strlen (text), "Containerfile", &df, &err) == 0)
    {
      printf ("#   parsed, but should have failed with: %s\n", needle);
      dockerfile_free (&df);
      return false;
    }
  return err_has (&err, needle) && df.n_stages == 0 && df.stages == NULL;
}

/* The instruction n of stage s. */
static const struct df_instr *
I (const struct dockerfile *df, size_t s, size_t n)
{
  if (s >= df->n_stages || n >= df->stages[s].n_instrs)
    {
      printf ("Bail out! no instruction %zu in stage %zu\n", n, s);
      exit (1);
    }
  return &df->stages[s].instrs[n];
}

/* The args joined with '|' (NULL values as "(null)"), to compare in one check. */
static char *
joined (char **v, bool pairs)
{
  char *s = xstrdup ("");
  for (size_t i = 0; v && v[i]; i++)
    {
      char *t = xasprintf ("%s%s%s", s, i ? "|" : "", v[i]);
      free (s);
      s = t;
      if (pairs)
        {
          t = xasprintf ("%s|%s", s, v[i + 1] ? v[i + 1] : "(null)");
          free (s);
          s = t;
          i++;
        }
    }
  return s;
}

#define CHECK_ARGS(in, want, what)                                                                                     \
  do                                                                                                                   \
    {                                                                                                                  \
      cleanup_free char *j_ = joined ((in)->args, false);                                                              \
      CHECK_STR (j_, want, what);                                                                                      \
    }                                                                                                                  \
  while (0)
#define CHECK_PAIRS(in, want, what)                                                                                    \
  do                                                                                                                   \
    {                                                                                                                  \
      cleanup_free char *j_ = joined ((in)->args, true);                                                               \
      CHECK_STR (j_, want, what);                                                                                      \
    }                                                                                                                  \
  while (0)

static void
test_every_instruction (void)
{
  struct dockerfile df;
  const char *text = "FROM alpine:3.19\n"
                     "RUN apk add --no-cache curl\n"
                     "CMD [\"sh\", \"-c\", \"echo hi\"]\n"
                     "LABEL a=b \"c d\"=\"e f\"\n"
                     "MAINTAINER Jane Doe <jane@example.com>\n"
                     "EXPOSE 80/tcp 443\n"
                     "ENV PATH=/x:$PATH B=2\n"
                     "ADD https://example.com/f /f\n"
                     "COPY a b /dst/\n"
                     "ENTRYPOINT /bin/sh -c 'x'\n"
                     "VOLUME [\"/data\", \"/logs\"]\n"
                     "USER 1000:1000\n"
                     "WORKDIR /my dir\n"
                     "ARG V=1 W\n"
                     "ONBUILD RUN echo later\n"
                     "STOPSIGNAL SIGTERM\n"
                     "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/\n"
                     "SHELL [\"/bin/bash\", \"-c\"]\n";
  if (!OK (parse (text, &df), "a file with every instruction parses"))
    return;
  CHECK (df.n_stages == 1 && df.stages[0].n_instrs == 18, "one stage of 18 instructions (%zu)",
         df.n_stages ? df.stages[0].n_instrs : 0);
  for (size_t i = 0; i < 18; i++)
    CHECK (I (&df, 0, i)->kind == (enum df_kind) i && I (&df, 0, i)->line == (int) i + 1,
           "%s is instruction %zu, line %zu", df_kind_name ((enum df_kind) i), i, i + 1);
  CHECK_STR (df.stages[0].base, "alpine:3.19", "FROM: the base");
  CHECK (df.stages[0].from == I (&df, 0, 0) && df.stages[0].name == NULL && df.stages[0].platform == NULL,
         "FROM: instrs[0], no name, no platform");
  CHECK_ARGS (I (&df, 0, 1), "apk add --no-cache curl", "RUN: shell form is one string (flags after the command kept)");
  CHECK (!I (&df, 0, 1)->json && I (&df, 0, 1)->n_flags == 0, "RUN: not json, no flags");
  CHECK_ARGS (I (&df, 0, 2), "sh|-c|echo hi", "CMD: exec form");
  CHECK (I (&df, 0, 2)->json, "CMD: json");
  CHECK_PAIRS (I (&df, 0, 3), "a|b|\"c d\"|\"e f\"", "LABEL: pairs, quotes kept");
  CHECK_ARGS (I (&df, 0, 4), "Jane Doe <jane@example.com>", "MAINTAINER: the rest of the line");
  CHECK_ARGS (I (&df, 0, 5), "80/tcp|443", "EXPOSE: words");
  CHECK_PAIRS (I (&df, 0, 6), "PATH|/x:$PATH|B|2", "ENV: pairs, unexpanded");
  CHECK_ARGS (I (&df, 0, 7), "https://example.com/f|/f", "ADD: words");
  CHECK_ARGS (I (&df, 0, 8), "a|b|/dst/", "COPY: words");
  CHECK_ARGS (I (&df, 0, 9), "/bin/sh -c 'x'", "ENTRYPOINT: shell form");
  CHECK_ARGS (I (&df, 0, 10), "/data|/logs", "VOLUME: json");
  CHECK (I (&df, 0, 10)->json, "VOLUME: json flag");
  CHECK_ARGS (I (&df, 0, 11), "1000:1000", "USER");
  CHECK_ARGS (I (&df, 0, 12), "/my dir", "WORKDIR: the rest of the line, as docker");
  CHECK_PAIRS (I (&df, 0, 13), "V|1|W|(null)", "ARG: V=1 and W without a default");
  const struct df_instr *ob = I (&df, 0, 14)->onbuild;
  CHECK (ob && ob->kind == DF_RUN && ob->line == 15, "ONBUILD: the inner RUN");
  if (ob)
    {
      CHECK_ARGS (ob, "echo later", "ONBUILD: the inner RUN's command");
      CHECK_STR (ob->text, "RUN echo later", "ONBUILD: the inner text");
    }
  CHECK_ARGS (I (&df, 0, 15), "SIGTERM", "STOPSIGNAL");
  const struct df_instr *hc = I (&df, 0, 16);
  CHECK_ARGS (hc, "CMD|curl -f http://localhost/", "HEALTHCHECK CMD shell form");
  CHECK (hc->n_flags == 2 && strcmp (hc->flags[0].name, "interval") == 0 && strcmp (hc->flags[0].value, "5s") == 0
             && strcmp (hc->flags[1].name, "retries") == 0 && strcmp (hc->flags[1].value, "3") == 0,
         "HEALTHCHECK: --interval=5s --retries=3");
  CHECK_ARGS (I (&df, 0, 17), "/bin/bash|-c", "SHELL: json");
  CHECK_STR (I (&df, 0, 16)->text, "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/",
             "text: as written");
  dockerfile_free (&df);
}

static void
test_forms (void)
{
  struct dockerfile df;
  const char *text = "from busybox\n"
                     "run [\"echo\", \"a\\\"b\", \"\\u00e9\"]\n"
                     "RUN [echo, a]\n"
                     "RUN [\"echo\", 1]\n"
                     "CMD [\"a\"] extra\n"
                     "ENTRYPOINT []\n"
                     "HEALTHCHECK CMD [\"/bin/check\", \"-q\"]\n"
                     "HEALTHCHECK none\n"
                     "COPY [\"a b\", \"/c d/\"]\n"
                     "ENV OLD legacy  value here\n"
                     "LABEL \"quoted key\"=v\n"
                     "ARG A=\"x y\" B='z'\n"
                     "COPY \"a b\" c\\ d /e\n";
  if (!OK (parse (text, &df), "lower-case keywords, JSON and shell forms parse"))
    return;
  CHECK (I (&df, 0, 1)->kind == DF_RUN && I (&df, 0, 1)->json, "run: lower case, json");
  CHECK_ARGS (I (&df, 0, 1), "echo|a\"b|\xc3\xa9", "json strings unescaped");
  CHECK (!I (&df, 0, 2)->json, "[echo, a] is not JSON: shell form");
  CHECK_ARGS (I (&df, 0, 2), "[echo, a]", "... kept as the command text");
  CHECK (!I (&df, 0, 3)->json, "an array with a number: shell form");
  CHECK (!I (&df, 0, 4)->json, "JSON followed by more text: shell form");
  CHECK (I (&df, 0, 5)->json && I (&df, 0, 5)->args && I (&df, 0, 5)->args[0] == NULL,
         "ENTRYPOINT []: empty exec form");
  CHECK (I (&df, 0, 6)->json, "HEALTHCHECK CMD [json]: json");
  CHECK_ARGS (I (&df, 0, 6), "CMD|/bin/check|-q", "HEALTHCHECK CMD json args");
  CHECK_ARGS (I (&df, 0, 7), "NONE", "HEALTHCHECK none");
  CHECK_ARGS (I (&df, 0, 8), "a b|/c d/", "COPY json form");
  CHECK_PAIRS (I (&df, 0, 9), "OLD|legacy  value here", "ENV legacy form: one pair, the rest of the line");
  CHECK_PAIRS (I (&df, 0, 10), "\"quoted key\"|v", "LABEL: a quoted key keeps its quotes");
  CHECK_PAIRS (I (&df, 0, 11), "A|\"x y\"|B|'z'", "ARG: quoted defaults kept");
  CHECK_ARGS (I (&df, 0, 12), "\"a b\"|c\\ d|/e", "COPY words split at unquoted blanks only");
  dockerfile_free (&df);
}

static void
test_continuations (void)
{
  struct dockerfile df;
  const char *text = "FROM alpine\n"
                     "\n"
                     "# a comment\n"
                     "RUN apk add \\\n"
                     "    # a comment inside\n"
                     "\n"
                     "    curl \\  \n"
                     "  git\n"
                     "   # indented comment\n"
                     "  USER nobody\n"
                     "RUN echo done \\\n";
  if (!OK (parse (text, &df), "continuations with comments and blank lines parse"))
    return;
  CHECK (df.stages[0].n_instrs == 4, "FROM, RUN, USER, RUN (%zu)", df.stages[0].n_instrs);
  CHECK_STR (I (&df, 0, 1)->text, "RUN apk add     curl   git", "continued lines joined, the comment dropped");
  CHECK (I (&df, 0, 1)->line == 4, "the RUN starts at line 4 (%d)", I (&df, 0, 1)->line);
  CHECK (I (&df, 0, 2)->kind == DF_USER && I (&df, 0, 2)->line == 10, "indented USER at line 10 (%d)",
         I (&df, 0, 2)->line);
  CHECK_ARGS (I (&df, 0, 3), "echo done", "a continuation at the end of the file");
  dockerfile_free (&df);

  text = "# syntax=docker/dockerfile:1\n"
         "#  ESCAPE = `\n"
         "\n"
         "FROM mcr.microsoft.com/windowsservercore\n"
         "RUN dir c:\\ `\n"
         "  && echo hi\n"
         "COPY a\\b `\n"
         " c:\\dst\\\n";
  if (!OK (parse (text, &df), "the backtick escape directive"))
    return;
  CHECK (df.escape == '`', "escape is `");
  CHECK_STR (df.syntax, "docker/dockerfile:1", "the syntax directive");
  CHECK_STR (I (&df, 0, 1)->args[0], "dir c:\\   && echo hi", "\\ at a line end is no continuation, ` is");
  CHECK_ARGS (I (&df, 0, 2), "a\\b|c:\\dst\\", "backslashes are plain chars");
  dockerfile_free (&df);

  text = "FROM a\n"
         "# escape=`\n"
         "RUN echo \\\n"
         " x\n";
  if (OK (parse (text, &df), "a directive after an instruction is a comment"))
    {
      CHECK (df.escape == '\\' && df.stages[0].n_instrs == 2, "escape stays \\");
      CHECK_STR (I (&df, 0, 1)->text, "RUN echo  x", "and \\ continues the line");
      dockerfile_free (&df);
    }
  text = "FROM a\nRUN echo \\\\\nUSER x\nONBUILD RUN <<EOF\nhi\nEOF\nCMD y\n";
  if (OK (parse (text, &df), "an escaped escape char at the end; ONBUILD with a heredoc"))
    {
      CHECK (df.stages[0].n_instrs == 5, "echo \\\\ at a line end does not continue (%zu)", df.stages[0].n_instrs);
      CHECK_ARGS (I (&df, 0, 1), "echo \\\\", "the two backslashes kept");
      const struct df_instr *ob = I (&df, 0, 3)->onbuild;
      CHECK (ob && ob->n_heredocs == 1 && strcmp (ob->heredocs[0].body, "hi\n") == 0, "ONBUILD RUN <<EOF: the body");
      CHECK (I (&df, 0, 4)->kind == DF_CMD && I (&df, 0, 4)->line == 7, "CMD after it at line 7");
      dockerfile_free (&df);
    }
  text = "# comment\n# escape=`\nFROM a\nRUN x \\\n";
  if (OK (parse (text, &df), "a directive after a comment is a comment"))
    {
      CHECK (df.escape == '\\', "escape stays \\");
      dockerfile_free (&df);
    }
  text = "# unknown=1\n# escape=`\nFROM a\n";
  if (OK (parse (text, &df), "an unknown directive ends the directives"))
    {
      CHECK (df.escape == '\\', "escape stays \\ after an unknown directive");
      dockerfile_free (&df);
    }
  text = "\xef\xbb\xbf# escape=`\r\nFROM a\r\nRUN echo `\r\n  b\r\n";
  if (OK (parse (text, &df), "a BOM and CRLF line ends"))
    {
      CHECK (df.escape == '`', "the directive after a BOM is read");
      CHECK_STR (I (&df, 0, 1)->text, "RUN echo   b", "CRLF continuation");
      dockerfile_free (&df);
    }
}

static void
test_heredocs (void)
{
  struct dockerfile df;
  const char *text = "FROM alpine\n"
                     "RUN <<EOF\n"
                     "echo $HOME\n"
                     "  # not a comment\n"
                     "EOF\n"
                     "RUN <<-'END' cat >/a && cat 3<<\"two\" >/b\n"
                     "\t\tfirst\n"
                     "\tEND\n"
                     "second\n"
                     "\tnot the end\n"
                     "two\n"
                     "COPY --chmod=755 <<one <<two /dst/\n"
                     "1\n"
                     "one\n"
                     "2\n"
                     "two\n"
                     "RUN echo a<<b << EOF\n"
                     "RUN [\"echo\", \"<<EOF\"]\n"
                     "USER x\n";
  if (!OK (parse (text, &df), "heredocs parse"))
    return;
  CHECK (df.stages[0].n_instrs == 7, "7 instructions (%zu)", df.stages[0].n_instrs);
  const struct df_instr *in = I (&df, 0, 1);
  CHECK (in->n_heredocs == 1 && in->heredocs[0].expand && !in->heredocs[0].strip_tabs, "RUN <<EOF: one, expanded");
  if (in->n_heredocs == 1)
    {
      CHECK_STR (in->heredocs[0].name, "EOF", "the name");
      CHECK_STR (in->heredocs[0].body, "echo $HOME\n  # not a comment\n", "the body, comment lines kept");
    }
  CHECK_ARGS (in, "<<EOF", "RUN's command is the line as written");
  in = I (&df, 0, 2);
  CHECK (in->n_heredocs == 2 && in->line == 6, "two heredocs on one line, line 6");
  if (in->n_heredocs == 2)
    {
      CHECK (!in->heredocs[0].expand && in->heredocs[0].strip_tabs, "<<-'END': quoted, tabs stripped");
      CHECK_STR (in->heredocs[0].name, "END", "quotes removed from the name");
      CHECK_STR (in->heredocs[0].body, "first\n", "leading tabs stripped; a tab-indented terminator ends it");
      CHECK (!in->heredocs[1].expand && !in->heredocs[1].strip_tabs, "3<<\"two\": quoted");
      CHECK_STR (in->heredocs[1].body, "second\n\tnot the end\n", "the second body");
    }
  in = I (&df, 0, 3);
  CHECK (in->kind == DF_COPY && in->n_heredocs == 2 && in->line == 12, "COPY <<one <<two");
  if (in->n_heredocs == 2)
    {
      CHECK_STR (in->heredocs[0].body, "1\n", "COPY: first body");
      CHECK_STR (in->heredocs[1].body, "2\n", "COPY: second body");
    }
  CHECK_ARGS (in, "<<one|<<two|/dst/", "COPY's words keep the heredoc markers");
  CHECK (in->n_flags == 1, "COPY --chmod kept");
  CHECK (I (&df, 0, 4)->n_heredocs == 0, "echo <<x (not at a word start) and `<< EOF` are no heredocs");
  CHECK (I (&df, 0, 5)->n_heredocs == 0 && I (&df, 0, 5)->json, "no heredocs in JSON form");
  CHECK (I (&df, 0, 6)->kind == DF_USER && I (&df, 0, 6)->line == 19,
         "the next instruction after the heredocs, line 19");
  dockerfile_free (&df);

  CHECK (parse_fails ("FROM a\nRUN <<EOF\necho\nEO\n", "Containerfile:2: RUN: unterminated heredoc <<EOF"),
         "an unterminated heredoc names its line");
  CHECK (parse_fails ("FROM a\nRUN <<A <<B\na\nA\nb\n", "unterminated heredoc <<B"), "the second one unterminated");
}

static void
test_flags (void)
{
  struct dockerfile df;
  const char *text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build-Env\n"
                     "RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/t --network=none go build\n"
                     "COPY --from=build-env --chown=1:1 --link --parents --exclude=*.md --exclude=x ./src /dst\n"
                     "ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://x/y /z\n"
                     "COPY -- --weird /dst\n"
                     "COPY --chown=\"a b\" x y\n";
  if (!OK (parse (text, &df), "flags parse"))
    return;
  CHECK_STR (df.stages[0].platform, "$BUILDPLATFORM", "FROM --platform, unexpanded");
  CHECK_STR (df.stages[0].name, "build-env", "the stage name lower-cased");
  CHECK_STR (df.stages[0].base, "golang:1.22", "the base");
  const struct df_instr *in = I (&df, 0, 1);
  CHECK (in->n_flags == 3 && strcmp (in->flags[1].value, "type=tmpfs,target=/t") == 0, "RUN: --mount twice, --network");
  CHECK_ARGS (in, "go build", "RUN: the command after the flags");
  in = I (&df, 0, 2);
  CHECK (in->n_flags == 6, "COPY: 6 flags (%zu)", in->n_flags);
  if (in->n_flags == 6)
    {
      CHECK (strcmp (in->flags[2].name, "link") == 0 && in->flags[2].value == NULL, "--link bare: value NULL");
      CHECK_STR (in->flags[4].value, "*.md", "--exclude value");
    }
  CHECK_ARGS (in, "./src|/dst", "COPY: the words after the flags");
  CHECK (I (&df, 0, 3)->n_flags == 3, "ADD: --checksum --keep-git-dir=true --link=false");
  CHECK_ARGS (I (&df, 0, 4), "--weird|/dst", "`--` ends the flags");
  CHECK_STR (I (&df, 0, 5)->flags[0].value, "a b", "a quoted flag value: quotes removed, the blank kept");
  dockerfile_free (&df);

  CHECK (parse_fails ("FROM a\nCOPY --mount=x a b\n", "Containerfile:2: COPY: unknown flag --mount"),
         "COPY refuses --mount");
  CHECK (parse_fails ("FROM a\nADD --from=b a b\n", "ADD: unknown flag --from"), "ADD refuses --from");
  CHECK (parse_fails ("FROM a\nCMD --x\n", "CMD: unknown flag --x"), "CMD takes no flags");
  CHECK (parse_fails ("FROM a\nWORKDIR --x=1 /a\n", "WORKDIR: unknown flag --x"), "WORKDIR takes no flags");
  CHECK (parse_fails ("FROM --nope=1 a\n", "Containerfile:1: FROM: unknown flag --nope"), "FROM only --platform");
  CHECK (parse_fails ("FROM a\nCOPY --from a b\n", "COPY: missing a value on flag --from"), "--from needs a value");
  CHECK (parse_fails ("FROM a\nCOPY --link=maybe a b\n", "expecting a boolean value for flag --link, not: maybe"),
         "--link=maybe");
  CHECK (parse_fails ("FROM a\nCOPY --from=a --from=b a b\n", "COPY: duplicate flag --from"), "--from twice");
  CHECK (parse_fails ("FROM a\nHEALTHCHECK --retries CMD x\n", "missing a value on flag --retries"),
         "HEALTHCHECK --retries needs a value");
  CHECK (parse_fails ("FROM a\nRUN --security=insecure --foo=1 x\n", "RUN: unknown flag --foo"), "RUN --foo");
}

static void
test_stages (void)
{
  struct dockerfile df;
  const char *text = "ARG BASE=alpine\n"
                     "ARG TAG\n"
                     "# comment\n"
                     "FROM $BASE:${TAG:-3} as builder\n"
                     "RUN make\n"
                     "FROM scratch\n"
                     "COPY --from=builder /out /\n"
                     "FROM builder AS Final.2\n"
                     "CMD x\n";
  if (!OK (parse (text, &df), "stages parse"))
    return;
  CHECK (df.n_meta_args == 2 && df.meta_args[0].kind == DF_ARG && df.meta_args[1].line == 2, "two meta args");
  CHECK_PAIRS (&df.meta_args[0], "BASE|alpine", "meta arg BASE=alpine");
  CHECK (df.n_stages == 3, "three stages");
  CHECK (df.stages[0].index == 0 && df.stages[1].index == 1 && df.stages[2].index == 2, "indices");
  CHECK_STR (df.stages[0].base, "$BASE:${TAG:-3}", "base unexpanded");
  CHECK_STR (df.stages[0].name, "builder", "`as` in lower case");
  CHECK (df.stages[1].name == NULL && df.stages[1].n_instrs == 2, "stage 1 unnamed, 2 instrs");
  CHECK_STR (df.stages[2].name, "final.2", "name with a dot, lower-cased");
  CHECK (df_stage_find (&df, "builder") == &df.stages[0], "find by name");
  CHECK (df_stage_find (&df, "BUILDER") == &df.stages[0], "find by name, any case");
  CHECK (df_stage_find (&df, "1") == &df.stages[1], "find by index");
  CHECK (df_stage_find (&df, "3") == NULL && df_stage_find (&df, "alpine") == NULL && df_stage_find (&df, "") == NULL
             && df_stage_find (&df, "-1") == NULL && df_stage_find (&df, "1x") == NULL,
         "no stage: out of range, an image, empty, negative, junk");
  for (size_t i = 0; i < df.n_stages; i++)
    CHECK (df.stages[i].from == &df.stages[i].instrs[0] && df.stages[i].from->kind == DF_FROM, "stage %zu: from", i);
  dockerfile_free (&df);
}

static void
test_errors (void)
{
  CHECK (parse_fails ("", "Containerfile: no instructions"), "an empty file");
  CHECK (parse_fails ("# only\n\n   \n# comments\n", "no instructions"), "comments only");
  CHECK (parse_fails ("ARG A\n", "no FROM instruction"), "ARG only");
  CHECK (parse_fails ("ARG A\n\nRUN x\nFROM a\n", "Containerfile:3: RUN: no build stage yet"),
         "an instruction before FROM");
  CHECK (parse_fails ("FROM a\n\nFOO bar\n", "Containerfile:3: unknown instruction: FOO"), "unknown instruction");
  CHECK (parse_fails ("FROM a\nRUN a \\\n b\n# c\nRUNN x\n", "Containerfile:5: unknown instruction: RUNN"),
         "the line number after a continuation");
  CHECK (parse_fails ("FROM a\nRUN\n", "Containerfile:2: RUN requires at least one argument"), "RUN with nothing");
  CHECK (parse_fails ("FROM a\nCOPY x\n", "COPY requires at least two arguments"), "COPY one word");
  CHECK (parse_fails ("FROM a\nADD [\"x\"]\n", "ADD requires at least two arguments"), "ADD json one word");
  CHECK (parse_fails ("FROM a b\n", "FROM requires either one or three arguments"), "FROM a b");
  CHECK (parse_fails ("FROM a to b\n", "FROM requires either one or three arguments"), "FROM a to b");
  CHECK (parse_fails ("FROM a AS 1st\n", "invalid name for build stage: \"1st\""),
         "a stage name starting with a digit");
  CHECK (parse_fails ("FROM a AS b$c\n", "invalid name for build stage"), "a stage name with a symbol");
  CHECK (parse_fails ("FROM a AS x\nFROM b AS X\n", "Containerfile:2: FROM: duplicate stage name \"x\""),
         "a duplicate stage name");
  CHECK (parse_fails ("FROM a\nSHELL /bin/sh -c\n", "SHELL requires the arguments to be in JSON form"),
         "SHELL shell form");
  CHECK (parse_fails ("FROM a\nENV ONLY\n", "ENV ONLY must have two arguments"), "ENV with a key only");
  CHECK (parse_fails ("FROM a\nENV A=1 B\n", "can't find = in \"B\""), "ENV pairs mixed with a bare word");
  CHECK (parse_fails ("FROM a\nLABEL =x\n", "LABEL: names can not be blank: \"=x\""), "LABEL with no key");
  CHECK (parse_fails ("FROM a\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments"), "HEALTHCHECK NONE x");
  CHECK (parse_fails ("FROM a\nHEALTHCHECK RUN x\n", "HEALTHCHECK: unknown type \"RUN\""), "HEALTHCHECK RUN");
  CHECK (parse_fails ("FROM a\nHEALTHCHECK CMD\n", "HEALTHCHECK CMD requires a command"), "HEALTHCHECK CMD alone");
  CHECK (parse_fails ("FROM a\nONBUILD FROM b\n", "FROM isn't allowed as an ONBUILD trigger"), "ONBUILD FROM");
  CHECK (parse_fails ("FROM a\nONBUILD ONBUILD RUN x\n", "ONBUILD isn't allowed"), "ONBUILD ONBUILD");
  CHECK (parse_fails ("FROM a\nONBUILD\n", "ONBUILD requires at least one argument"), "ONBUILD alone");
  CHECK (parse_fails ("FROM a\nONBUILD COPY --nope a b\n", "COPY: unknown flag --nope"), "ONBUILD's flags checked");
  CHECK (parse_fails ("# escape=x\nFROM a\n", "Containerfile:1: invalid escape token 'x'"), "a bad escape");
  CHECK (parse_fails ("# escape=`\n# escape=\\\nFROM a\n", "Containerfile:2: only one escape parser directive"),
         "two escape directives");
  CHECK (parse_fails ("# check=skip=all\n# CHECK=x\nFROM a\n", "Containerfile:2: only one check parser directive"),
         "two check directives");
  CHECK (parse_fails ("FROM a\nARG =x\n", "ARG: no name"), "ARG =x");

  CHECK (parse_fails ("FROM\n", "Containerfile:1: FROM requires at least one argument"), "FROM alone");
  CHECK (parse_fails ("FROM a\nEXPOSE \\\n\n", "EXPOSE requires at least one argument"), "EXPOSE with no word");

  struct dockerfile df;
  cella_error_t err = NULL;
  CHECK (df_parse ("FROM a\nRUN x\0y\n", 13, "f", &df, &err) < 0 && err_has (&err, "f:2: a NUL byte in the file"),
         "a NUL byte is refused with its line");
  CHECK (df_parse ("FROM a\nFOO\n", 11, "/ctx/Dockerfile", &df, &err) < 0
             && err_has (&err, "/ctx/Dockerfile:2: unknown"),
         "errors name the file given");
  CHECK (df_parse ("FROM a\nRUN x\n", 6, "f", &df, &err) == 0 && df.stages[0].n_instrs == 1,
         "only len bytes are read (text need not end with a NUL)");
  dockerfile_free (&df);
}

static const char *
env_lookup (const char *name, void *ud)
{
  (void) ud;
  static const char *const vars[][2] = {
    { "A", "alpha" }, { "EMPTY", "" }, { "SP", "x  y" }, { "B", "beta" }, { "P", "80 443" }, { "_u1", "u" },
  };
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (strcmp (vars[i][0], name) == 0)
      return vars[i][1];
  return NULL;
}

static void
expand_is (const char *word, char esc, const char *want)
{
  cella_error_t err = NULL;
  char *got = NULL;
  if (df_expand (word, esc, env_lookup, NULL, &got, &err) < 0)
    {
      tap_check (false, "expand %s: %s", word, err->msg);
      cella_error_free (&err);
      return;
    }
  cleanup_free char *what = xasprintf ("expand %s", word);
  CHECK_STR (got, want, what);
  free (got);
}

static void
expand_fails (const char *word, const char *needle)
{
  cella_error_t err = NULL;
  char *got = NULL;
  bool failed = df_expand (word, '\\', env_lookup, NULL, &got, &err) < 0;
  if (!failed)
    printf ("#   expanded to: %s\n", got);
  free (got);
  CHECK (failed && err_has (&err, needle), "expand %s fails with \"%s\"", word, needle);
}

static void
test_expand (void)
{
  expand_is ("$A", '\\', "alpha");
  expand_is ("${A}x", '\\', "alphax");
  expand_is ("$Ax", '\\', "");
  expand_is ("pre-$A-post", '\\', "pre-alpha-post");
  expand_is ("$_u1$A", '\\', "ualpha");
  expand_is ("$NOPE", '\\', "");
  expand_is ("${NOPE:-def}", '\\', "def");
  expand_is ("${EMPTY:-def}", '\\', "def");
  expand_is ("${EMPTY-def}", '\\', "");
  expand_is ("${NOPE-def}", '\\', "def");
  expand_is ("${A:-def}", '\\', "alpha");
  expand_is ("${A:+set}", '\\', "set");
  expand_is ("${EMPTY:+set}", '\\', "");
  expand_is ("${EMPTY+set}", '\\', "set");
  expand_is ("${NOPE+set}", '\\', "");
  expand_is ("${NOPE:-${B}}", '\\', "beta");
  expand_is ("${NOPE:-${NOPE2:-${A}}}", '\\', "alpha");
  expand_is ("${NOPE:-a b}", '\\', "a b");
  expand_is ("${NOPE:-'q}'}", '\\', "q}");
  expand_is ("${NOPE:-\\}}", '\\', "}");
  expand_is ("${A:?must be set}", '\\', "alpha");
  expand_is ("\\$A", '\\', "$A");
  expand_is ("'$A'", '\\', "$A");
  expand_is ("\"$A\"", '\\', "alpha");
  expand_is ("\"'$A'\"", '\\', "'alpha'");
  expand_is ("'\"$A\"'", '\\', "\"$A\"");
  expand_is ("\"a\\\"b\\$A\\x\"", '\\', "a\"b$A\\x");
  expand_is ("a\\ b", '\\', "a b");
  expand_is ("c:\\dir", '`', "c:\\dir");
  expand_is ("`$A", '`', "$A");
  expand_is ("$", '\\', "$");
  expand_is ("a$", '\\', "a$");
  expand_is ("$-x", '\\', "x");
  expand_is ("$%x", '\\', "$%x");
  expand_is ("$10x", '\\', "x");
  expand_is ("${A#al}", '\\', "pha");
  expand_is ("${A#*a}", '\\', "lpha");
  expand_is ("${A##*a}", '\\', "");
  expand_is ("${A%a}", '\\', "alph");
  expand_is ("${A%%l*}", '\\', "a");
  expand_is ("${A%l*}", '\\', "a");
  expand_is ("${A%\\*}", '\\', "alpha");
  expand_is ("${A/a/A}", '\\', "Alpha");
  expand_is ("${A//a/A}", '\\', "AlphA");
  expand_is ("${A//p?/P}", '\\', "alPa");
  expand_is ("${NOPE//a/b}", '\\', "");
  expand_is ("\"\"", '\\', "");
  expand_is ("$SP", '\\', "x  y");
  expand_is ("${A}${B}", '\\', "alphabeta");
  expand_fails ("${NOPE:?must be set}", "NOPE: must be set");
  expand_fails ("${EMPTY:?}", "EMPTY: is not allowed to be empty");
  expand_fails ("${NOPE?}", "NOPE: is not allowed to be unset");
  expand_fails ("${A", "missing '}'");
  expand_fails ("${A:-x", "missing '}'");
  expand_fails ("${}", "bad substitution");
  expand_fails ("${A:%x}", "unsupported modifier (:%)");
  expand_fails ("${A@}", "unsupported modifier (@)");
  expand_fails ("${:-x}", "bad substitution");
  expand_fails ("${A/x", "missing '/'");
  expand_fails ("'abc", "matching single-quote");
  expand_fails ("\"abc", "matching double-quote");

  cella_error_t err = NULL;
  char **w = NULL;
  CHECK (df_expand_words ("$P \"$SP\" '' x\\ y ${NOPE} \"a\"b", '\\', env_lookup, NULL, &w, &err) == 0,
         "expand_words succeeds");
  cleanup_free char *j = joined (w, false);
  CHECK_STR (j, "80|443|x  y|x y|ab", "unquoted values split, quoted kept whole, '' and unset give no word");
  strv_free (w);
  w = NULL;
  CHECK (df_expand_words ("   ", '\\', env_lookup, NULL, &w, &err) == 0 && w && w[0] == NULL, "blank: no words");
  strv_free (w);
  CHECK (df_expand_words ("${A", '\\', env_lookup, NULL, &w, &err) < 0 && err_has (&err, "missing '}'"),
         "expand_words errors");
}

static struct df_ignore *
ignore (const char *text)
{
  struct df_ignore *ig = NULL;
  cella_error_t err = NULL;
  if (df_ignore_parse (text, strlen (text), &ig, &err) < 0)
    {
      printf ("Bail out! ignore parse: %s\n", err->msg);
      exit (1);
    }
  return ig;
}

static void
test_ignore (void)
{
  struct df_ignore *ig = ignore ("# comment\n"
                                 "\n"
                                 "  *.txt  \n"
                                 "!keep.txt\n"
                                 "**/*.go\n"
                                 "build/\n"
                                 "/abs\n"
                                 "./dot/x\n"
                                 "a/../cleaned\n"
                                 "doc?/[a-c]*.md\n"
                                 "lit\\*\n"
                                 "deep/**/end\n"
                                 "tmp*\n"
                                 "!tmp/keep\n");
  CHECK (df_ignore_match (ig, "notes.txt"), "*.txt matches notes.txt");
  CHECK (!df_ignore_match (ig, "keep.txt"), "!keep.txt after *.txt: kept");
  CHECK (!df_ignore_match (ig, "sub/notes.txt"), "*.txt does not reach into sub/");
  CHECK (df_ignore_match (ig, "main.go") && df_ignore_match (ig, "a/b/c.go"), "**/*.go at the top and deep");
  CHECK (!df_ignore_match (ig, "main.golang"), "**/*.go is anchored at the end");
  CHECK (df_ignore_match (ig, "build") && df_ignore_match (ig, "build/x/y"), "build/ excludes the dir and its content");
  CHECK (!df_ignore_match (ig, "rebuild"), "build/ is not a suffix match");
  CHECK (df_ignore_match (ig, "abs") && df_ignore_match (ig, "/abs"), "/abs: leading slash dropped (both sides)");
  CHECK (df_ignore_match (ig, "dot/x"), "./dot/x: leading ./ dropped");
  CHECK (df_ignore_match (ig, "cleaned") && !df_ignore_match (ig, "a/cleaned"), "a/../cleaned cleaned to cleaned");
  CHECK (df_ignore_match (ig, "docs/api.md") && df_ignore_match (ig, "doc1/c.md"), "? and [a-c]");
  CHECK (!df_ignore_match (ig, "docs/d.md") && !df_ignore_match (ig, "doc/a.md"), "[a-c] and ? refuse");
  CHECK (df_ignore_match (ig, "lit*") && !df_ignore_match (ig, "litx"), "\\* is a literal star");
  CHECK (df_ignore_match (ig, "deep/end") && df_ignore_match (ig, "deep/1/2/end") && !df_ignore_match (ig, "deep/x"),
         "deep/**/end: zero or more dirs between");
  CHECK (df_ignore_match (ig, "tmp") && df_ignore_match (ig, "tmp/other") && !df_ignore_match (ig, "tmp/keep"),
         "tmp* excluded, tmp/keep excepted");
  CHECK (df_ignore_may_except (ig, "tmp"), "tmp may hold an exception: walk in");
  CHECK (!df_ignore_may_except (ig, "build"), "build holds no exception: skip it");
  CHECK (!df_ignore_match (ig, ".") && !df_ignore_match (ig, ""), "the context root is never excluded");
  CHECK (df_ignore_match (ig, "build//./y/"), "paths are cleaned before matching");
  df_ignore_free (ig);

  ig = ignore ("*\n!**/*.go\n");
  CHECK (df_ignore_match (ig, "x") && !df_ignore_match (ig, "src/a.go") && df_ignore_match (ig, "src/a.c"),
         "everything but .go files");
  CHECK (df_ignore_may_except (ig, "src/deep"), "!**/*.go: any dir may hold one");
  df_ignore_free (ig);

  ig = ignore ("vendor\n!vendor/keep/\n");
  CHECK (df_ignore_may_except (ig, "vendor") && !df_ignore_may_except (ig, "vendor/other"), "may_except by prefix");
  CHECK (!df_ignore_match (ig, "vendor/keep/a") && df_ignore_match (ig, "vendor/other/a"), "vendor/keep kept");
  df_ignore_free (ig);

  ig = ignore ("[^a]x\n\\[y\n");
  CHECK (df_ignore_match (ig, "bx") && !df_ignore_match (ig, "ax") && df_ignore_match (ig, "[y"), "[^a] and \\[");
  df_ignore_free (ig);

  ig = ignore ("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n**/**/**/**/**/**/**/**/x/y\n");
  char longname[200];
  memset (longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  for (size_t i = 101; i < sizeof longname - 1; i += 4)
    longname[i] = '/';
  CHECK (!df_ignore_match (ig, longname + 2), "many stars against a long path: no match, and no exponential time");
  df_ignore_free (ig);

  ig = ignore ("");
  CHECK (!df_ignore_match (ig, "a") && !df_ignore_may_except (ig, "a"), "no patterns: nothing excluded");
  df_ignore_free (ig);
  CHECK (!df_ignore_match (NULL, "a"), "a NULL matcher excludes nothing");

  cella_error_t err = NULL;
  CHECK (df_ignore_parse ("a\n!\n", 4, &ig, &err) < 0 && err_has (&err, "line 2: illegal exclusion pattern"),
         "a bare !");
  CHECK (df_ignore_parse ("[abc\n", 5, &ig, &err) < 0 && err_has (&err, "syntax error in pattern"), "an open [");
}

int
main (void)
{
  test_every_instruction ();
  test_forms ();
  test_continuations ();
  test_heredocs ();
  test_flags ();
  test_stages ();
  test_errors ();
  test_expand ();
  test_ignore ();
  return tap_done ();
}
