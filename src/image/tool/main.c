/* cella-image: the image tool's entry point. Users do not call it: `cella pull …` runs it. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "tool.h"

static const struct {
  const char *name;
  int (*fn) (int argc, char **argv);
} commands[] = {
  { "pull", cmd_pull },   { "import", cmd_import }, { "save", cmd_save },   { "export", cmd_export },
  { "login", cmd_login }, { "logout", cmd_logout }, { "build", cmd_build }, { "commit", cmd_image_commit },
  { "push", cmd_push },   { "fetch", cmd_fetch },   { NULL, NULL },
};

int
main (int argc, char **argv)
{
  int status;
  if (argc < 2)
    {
      fprintf (stderr, "cella-image: the image tool of cella; run `cella pull`, `cella image import` ... instead\n");
      return 125;
    }
  for (size_t i = 0; commands[i].name; i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        curl_global_init (CURL_GLOBAL_DEFAULT);
        status = commands[i].fn (argc - 1, argv + 1);
        curl_global_cleanup ();
        return status;
      }
  fprintf (stderr, "cella: unknown image command `%s`\n", argv[1]);
  return 125;
}
