/* cella build [-t NAME]... [-f FILE] [--build-arg K=V]... [--target STAGE] [--no-cache] [-q]
 * [--label K=V]... [--pull] [--platform P] CONTEXT: an image from a Containerfile (the executor: src/engine/build.c).
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/build.h"
#include "commands.h"
#include "../util/options.h"

struct build_cli {
  char **tags, **build_args, **labels;
  char *file, *target, *platform;
  char *backend;
  bool no_cache, quiet, pull;
};

#define O(f) offsetof (struct build_cli, f)
static const struct cli_option build_table[] = {
  { "tag", 't', OPT_LIST, O (tags), "NAME[:TAG]", "Name the image (repeatable)" },
  { "file", 'f', OPT_STRING, O (file), "FILE",
    "The Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile)" },
  { "build-arg", 0, OPT_LIST, O (build_args), "KEY=VALUE", "A value for an ARG (KEY alone: the host's $KEY)" },
  { "target", 0, OPT_STRING, O (target), "STAGE", "Build up to this stage (name or index), not the last" },
  { "no-cache", 0, OPT_FLAG, O (no_cache), NULL, "Run every step again instead of taking layers from the cache" },
  { "quiet", 'q', OPT_FLAG, O (quiet), NULL, "Print only the new image's id (a failing step's output still shows)" },
  { "label", 0, OPT_LIST, O (labels), "KEY=VALUE", "Add a label to the image (repeatable)" },
  { "pull", 0, OPT_FLAG, O (pull), NULL,
    "Pull every base image from its registry again, even when the store has it (not the embedded busybox)" },
  { "backend", 0, OPT_STRING, O (backend), "ns|vm",
    "What RUN steps run in: ns (namespaces, the default) or vm (a microVM; its root's changes become the layer)" },
  { "platform", 0, OPT_STRING, O (platform), "OS/ARCH[/VARIANT]",
    "The platform to build for: only the host's is supported (linux/amd64 on x86_64)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

int
cmd_build (int argc, char **argv)
{
  struct build_cli c = { 0 };
  struct build_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  cleanup_strv char **args = NULL;
  int status,
      first = cli_parse_command (build_table, &c, argc, argv,
                                 "cella build [-t NAME]... [-f FILE] [--build-arg K=V]... [--target STAGE] "
                                 "[--no-cache] [-q] [--label K=V]... [--pull] [--platform P] [--backend ns|vm] CONTEXT",
                                 "Build an image from a Containerfile (Dockerfile) and the files of CONTEXT. "
                                 "Prints each step, and the new image's id last.",
                                 1, "a CONTEXT directory is required", &status);
  if (first <= 0)
    goto out;
  if (argc - first > 1)
    {
      cella_error (&err, 0, "build: one CONTEXT directory (usage: cella build [OPTIONS] CONTEXT)");
      status = cella_error_print (&err);
      goto out;
    }
  for (size_t i = 0; c.build_args && c.build_args[i]; i++)
    {
      /* KEY alone: the host's value, when it has one */
      if (strchr (c.build_args[i], '='))
        strv_push (&args, c.build_args[i]);
      else if (getenv (c.build_args[i]))
        {
          cleanup_free char *kv = xasprintf ("%s=%s", c.build_args[i], getenv (c.build_args[i]));
          strv_push (&args, kv);
        }
    }
  o.context = argv[first];
  o.file = c.file;
  o.target = c.target;
  o.tags = c.tags;
  o.build_args = args;
  o.labels = c.labels;
  o.no_cache = c.no_cache;
  o.quiet = c.quiet;
  o.pull = c.pull;
  o.platform = c.platform;
  o.backend = c.backend;
  o.tool = image_tool_run;
  if (build_image (&o, &id, &err) < 0)
    status = cella_error_print (&err);
  else
    {
      puts (id);
      status = 0;
    }
out:
  strv_free (c.tags);
  strv_free (c.build_args);
  strv_free (c.labels);
  free (c.file);
  free (c.target);
  free (c.platform);
  free (c.backend);
  return status;
}

/* `cella image build`: --from DISTRO bootstraps with debootstrap (the image tool); anything else
 * is `cella build`. */
int
cmd_image_build (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--from") == 0 || strncmp (argv[i], "--from=", 7) == 0)
      return cmd_image_tool (argc, argv);
  return cmd_build (argc, argv);
}
