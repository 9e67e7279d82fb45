/* cella healthcheck run: one health check of a running container, now (podman's command). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "../engine/container.h"
#include "../engine/health.h"
#include "commands.h"
#include "../util/options.h"

static const char run_usage[] = "cella healthcheck run CONTAINER";
static const char run_summary[]
    = "Run the container's health check once, now, and record the result as the monitor does.\n"
      "Exit status: 0 healthy, 1 unhealthy, 125 when it cannot be run (no health check, not running).";

static int
health_run (int argc, char **argv)
{
  static const struct cli_option no_options[] = { { NULL, 0, 0, 0, NULL, NULL } };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  bool healthy = false;
  int status, first = cli_parse_command (no_options, NULL, argc, argv, run_usage, run_summary, 1,
                                         "a container is required", &status);
  if (first <= 0)
    return status;
  if (argc - first != 1)
    {
      cella_error (&err, 0, "healthcheck run: give exactly one container (usage: %s)", run_usage);
      return cella_error_print (&err);
    }
  if (ctr_lookup (argv[first], &id, &err) < 0 || ctr_health_run (id, &healthy, &err) < 0)
    return cella_error_print (&err);
  puts (healthy ? "healthy" : "unhealthy");
  return healthy ? 0 : 1;
}

int
cmd_healthcheck (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      printf ("Usage: cella healthcheck COMMAND\n\nCommands:\n  run CONTAINER   %s\n",
              "Run the container's health check now (exit 0 healthy, 1 unhealthy)");
      return argc < 2 ? EXIT_CELLA_ERROR : 0;
    }
  if (strcmp (argv[1], "run") == 0)
    return health_run (argc - 1, argv + 1);
  fprintf (stderr, "cella: healthcheck %s: unknown command (run)\n", argv[1]);
  return EXIT_CELLA_ERROR;
}
