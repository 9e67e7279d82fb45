/* Table-driven option parsing: one row per option gives parsing and --help at once. */
#ifndef CELLA_CLI_OPTIONS_H
#define CELLA_CLI_OPTIONS_H

#include <stddef.h>

#include "../util/util.h"

enum opt_type { OPT_FLAG, OPT_STRING, OPT_LIST };

struct cli_option {
  const char *long_name;
  char short_name;          /* 0 for none */
  enum opt_type type;
  size_t offset;            /* into the command's options struct: bool, char *, char ** */
  const char *arg;          /* argument name for --help */
  const char *help;
};

/* Parse options up to the first operand; returns the index of the first operand, or -1 with
 * *err set. "--help"/"-h" sets *help. */
int cli_parse (const struct cli_option *table, void *opts, int argc, char **argv, int *help, cella_error_t *err);
void cli_print_help (const char *usage, const char *summary, const struct cli_option *table);

#endif
