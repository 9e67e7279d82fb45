/* Table-driven option parsing: one row per option gives parsing and --help at once. Every command
 * line uses it: the engine CLI (src/cli), the OCI runtime (src/oci) and the image tool. */
#ifndef CELLA_UTIL_OPTIONS_H
#define CELLA_UTIL_OPTIONS_H

#include <stddef.h>

#include "util.h"

enum opt_type { OPT_FLAG, OPT_STRING, OPT_LIST };

struct cli_option {
  const char *long_name;
  char short_name; /* 0 for none */
  enum opt_type type;
  size_t offset;   /* into the command's options struct: bool, char *, char ** */
  const char *arg; /* argument name for --help */
  const char *help;
};

/* Parse options up to the first operand; returns the index of the first operand, or -1 with
 * *err set. "--help"/"-h" sets *help. */
int cli_parse (const struct cli_option *table, void *opts, int argc, char **argv, int *help, cella_error_t *err);
void cli_print_help (const char *usage, const char *summary, const struct cli_option *table);

/* A command's options and operands: the index of the first operand; 0 after printing --help
 * (*status 0); -1 after printing an error (bad option, or fewer than min_args operands: "WHAT is
 * required"), *status 125. argv[0] is the command's name. */
int cli_parse_command (const struct cli_option *t, void *opts, int argc, char **argv, const char *usage,
                       const char *summary, int min_args, const char *what, int *status);

/* Print tpl with each {{.A.B}} replaced by the value at that path of o (strings bare, the rest
 * as JSON, "<no value>" when absent), then a newline. */
struct json_t;
void cli_print_template (const char *tpl, struct json_t *o);

#endif
