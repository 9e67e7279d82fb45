/* A Containerfile (Dockerfile) read into stages and instructions, with what the build needs to
 * resolve them: words, variable expansion, and .dockerignore/.containerignore patterns. Pure code
 * (no I/O but what the caller hands in): `cella build` (src/cli/build.c, src/engine/build*.c)
 * executes it.
 *
 * What the parser does and what it leaves to the build:
 * - parser directives at the top (`# syntax=`, `# escape=` with \ or `), comments, blank lines,
 *   line continuations (the escape char at the end of a line; comment lines inside a continued
 *   instruction are dropped, as docker does), keywords in any case;
 * - the exec form (a JSON array of strings) told from the shell form for RUN, CMD, ENTRYPOINT,
 *   SHELL, and the `--name=value` flags in front of RUN, COPY, ADD, FROM, HEALTHCHECK;
 * - heredocs (`RUN <<EOF`, `<<-EOF`, `<<"EOF"`, several on one line, `COPY <<EOF /dest`);
 * - stages split at FROM (`FROM [--platform=P] IMAGE [AS NAME]`), ARGs before the first FROM kept
 *   as meta args.
 * Variables are NOT expanded by the parser: which ARG/ENV values apply is known only while the build
 * runs; df_expand does it then, word by word, with the quote removal that goes with it. */
#ifndef CELLA_IMAGE_DOCKERFILE_H
#define CELLA_IMAGE_DOCKERFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

enum df_kind {
  DF_FROM,
  DF_RUN,
  DF_CMD,
  DF_LABEL,
  DF_MAINTAINER,
  DF_EXPOSE,
  DF_ENV,
  DF_ADD,
  DF_COPY,
  DF_ENTRYPOINT,
  DF_VOLUME,
  DF_USER,
  DF_WORKDIR,
  DF_ARG,
  DF_ONBUILD,
  DF_STOPSIGNAL,
  DF_HEALTHCHECK,
  DF_SHELL,
};

struct df_heredoc {
  char *name;      /* the delimiter word, quotes removed: "EOF" */
  char *body;      /* the lines between, each ending in \n; leading tabs removed for <<- */
  bool expand;     /* unquoted delimiter: variables in the body are expanded (for COPY; RUN's shell does it) */
  bool strip_tabs; /* <<- */
};

struct df_flag {
  char *name;  /* "from", "chown", "chmod", "link", "mount", "network", "platform", "interval"... */
  char *value; /* after '=', unexpanded (quotes and escape chars removed, as docker does), or NULL for a bare --flag */
};

struct df_instr {
  enum df_kind kind;
  int line;              /* the first line of the instruction in the file, 1-based */
  char *text;            /* the instruction as written, continuations joined, comments dropped:
                          * "RUN apk add foo" (used in errors, history created_by and cache keys) */
  struct df_flag *flags; /* leading --name[=value] flags, in order */
  size_t n_flags;
  bool json; /* RUN/CMD/ENTRYPOINT/SHELL/COPY/ADD/VOLUME written as a JSON array */
  /* The arguments, unexpanded:
   * - json: the array's strings (already unescaped JSON strings; df_expand still applies for
   *   COPY/ADD/VOLUME/... like docker, never for RUN/CMD/ENTRYPOINT/SHELL);
   * - RUN/CMD/ENTRYPOINT/HEALTHCHECK CMD shell form: one string, the command text as written
   *   (after the flags), for the SHELL to run; for HEALTHCHECK args[0] is "CMD" or "NONE" and
   *   the command (shell text or JSON strings) follows;
   * - ENV, LABEL, ARG: pairs key, value (value NULL for `ARG NAME` with no default); the legacy
   *   `ENV KEY rest of line` gives one pair; keys and values keep their quotes (df_expand removes
   *   them);
   * - USER, WORKDIR, STOPSIGNAL, MAINTAINER: one string, the rest of the line (docker's
   *   `WORKDIR /my dir` is the one directory "/my dir");
   * - everything else (FROM, COPY, ADD, EXPOSE, VOLUME, SHELL's json): the words, split at
   *   unquoted blanks, quotes kept.
   * NULL-terminated (strv); ENV, LABEL, ARG pairs are walked by key (`for (i = 0; args[i]; i += 2)`):
   * an ARG value may be NULL, so strv_len/strv_dup do not apply to them. */
  char **args;
  struct df_heredoc *heredocs; /* in the order they appear on the instruction's line */
  size_t n_heredocs;
  struct df_instr *onbuild; /* ONBUILD's instruction (itself parsed; never FROM, ONBUILD, MAINTAINER) */
};

struct df_stage {
  int index;               /* 0-based */
  char *name;              /* `AS name`, lower-cased, or NULL */
  char *base;              /* the FROM image word, unexpanded ("scratch", "alpine:$V", a stage name) */
  char *platform;          /* --platform value or NULL */
  struct df_instr *from;   /* points into instrs[0] */
  struct df_instr *instrs; /* instrs[0] is the FROM */
  size_t n_instrs;
};

struct dockerfile {
  char escape;                /* '\\' or '`' */
  char *syntax;               /* `# syntax=` value or NULL (recorded, not acted on) */
  struct df_instr *meta_args; /* ARG instructions before the first FROM */
  size_t n_meta_args;
  struct df_stage *stages;
  size_t n_stages;
};

/* Parse text (len bytes, need not be NUL-terminated). filename names the file in errors, which read
 * "FILE:LINE: MESSAGE" (unknown instruction, instruction before FROM, missing arguments, bad JSON,
 * unterminated heredoc, bad flag for this instruction, ...). */
int df_parse (const char *text, size_t len, const char *filename, struct dockerfile *out, cella_error_t *err);
void dockerfile_free (struct dockerfile *df);

/* The stage a FROM/--from/--target word names: by name (case-insensitive) or by index ("0");
 * NULL when none is (then the word is an image). */
const struct df_stage *df_stage_find (const struct dockerfile *df, const char *name_or_index);

/* Variable expansion of one word, as the Dockerfile reference says: $VAR, ${VAR}, ${VAR:-word},
 * ${VAR:+word}, ${VAR-word}, ${VAR+word}, ${VAR:?msg}; single quotes stop expansion, double quotes
 * do not; the escape char escapes the next char; quotes are removed. lookup returns the value of a
 * variable or NULL when unset. */
typedef const char *(*df_lookup_fn) (const char *name, void *ud);
int df_expand (const char *word, char escape, df_lookup_fn lookup, void *ud, char **out, cella_error_t *err);

/* Expand then split into words at unquoted blanks (for instructions whose arguments are several
 * words after expansion, e.g. EXPOSE $PORTS). */
int df_expand_words (const char *text, char escape, df_lookup_fn lookup, void *ud, char ***out, cella_error_t *err);

const char *df_kind_name (enum df_kind k); /* "RUN" */

/* .dockerignore / .containerignore: patterns as docker reads them (one per line, # comments,
 * leading/trailing blanks trimmed, paths cleaned, leading / dropped, `**` for any number of
 * directories, `!` exceptions, the last matching pattern wins). */
struct df_ignore;
int df_ignore_parse (const char *text, size_t len, struct df_ignore **out, cella_error_t *err);
/* Whether path (relative to the context, cleaned, no leading /) is excluded. A directory that is
 * excluded may still hold excepted paths: df_ignore_may_except tells whether a walk must go in. */
bool df_ignore_match (const struct df_ignore *ig, const char *path);
bool df_ignore_may_except (const struct df_ignore *ig, const char *dir);
void df_ignore_free (struct df_ignore *ig);

#endif
