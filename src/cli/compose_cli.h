/* cella compose, CLI side: compose.c (commands), compose_argv.c (a service as `cella run`
 * arguments), compose_logs.c (following several containers' logs, prefixed). compose acts by
 * running this same binary's subcommands (`cella run -d`, `stop`, `rm`, `network create` ...):
 * each step is then exactly what a user could type, with that command's checks and errors. */
#ifndef CELLA_CLI_COMPOSE_CLI_H
#define CELLA_CLI_COMPOSE_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "../engine/compose.h"

/* Run `cella ARGS...` (args NULL-terminated, without argv[0]); its exit status (125 when it could
 * not be started). out: its stdout, malloc'd, when not NULL. quiet: its stdout to /dev/null. */
int compose_cella (char *const *args, char **out, bool quiet);

/* Whether this cella can make the project's networks: user-defined networks are for root of the
 * initial user namespace. Elsewhere each service gets its own private network (published ports
 * work; services do not reach each other by name), with one warning. */
bool compose_networks_supported (void);

/* The container name of a service's replica `number` (1...): container_name for 1 when set, else
 * PROJECT-SVC-NUMBER (docker compose's names). */
char *compose_ctr_name (const struct compose_project *p, const char *svc, int number);

/* `cella run` arguments (after "run") for svc: replica `number` (> 0: -d, labelled with the number)
 * or, for `compose run` (0), --rm with command replacing the service's (NULL: the service's) and
 * name. */
int compose_run_args (const struct compose_project *p, const char *svc, int number, const char *name,
                      char *const *command, char ***args, cella_error_t *err);

struct compose_log_src {
  const char *container;
  const char *label; /* "svc-1" */
};

/* Print the logs of n containers, each line prefixed "label  | " (coloured on a tty); follow: until
 * they all stop (or *stop becomes true: SIGINT). */
int compose_logs_follow (const struct compose_log_src *srcs, size_t n, bool follow, char **extra_args,
                         volatile int *stop);

#endif
