/* cella run: parse flags into run_options, resolve the image, build the plan, run it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../image/default_image.h"
#include "../ns/ns.h"
#include "../plan/build.h"
#include "commands.h"
#include "options.h"

#define O(f) offsetof (struct run_options, f)
static const struct cli_option run_table[] = {
  { "env", 'e', OPT_LIST, O (env), "KEY=VALUE", "Set an environment variable (KEY alone: take the host's value)" },
  { "env-file", 0, OPT_LIST, O (env_files), "FILE", "Read KEY=VALUE lines from a file (# comments)" },
  { "workdir", 'w', OPT_STRING, O (workdir), "DIR", "Working directory inside the container (created if missing)" },
  { "user", 'u', OPT_STRING, O (user), "USER[:GROUP]", "Run as this user (name or uid, resolved in the container)" },
  { "volume", 'v', OPT_LIST, O (volumes), "HOST:CTR[:ro|rw]", "Bind-mount a host path into the container" },
  { "tmpfs", 0, OPT_LIST, O (tmpfs), "CTR[:OPTS]", "Mount a tmpfs (OPTS: size=64m,mode=1777,ro,exec,...)" },
  { "mount", 0, OPT_LIST, O (mounts), "SPEC", "type=bind|tmpfs|overlay,target=..,source=..,lower=A:B,upper=..,work=.." },
  { "read-only", 0, OPT_FLAG, O (read_only), NULL, "Mount the container's root read-only" },
  { "hostname", 0, OPT_STRING, O (hostname), "NAME", "Container host name (default: short id)" },
  { "interactive", 'i', OPT_FLAG, O (interactive), NULL, "Keep stdin open and pass it to the container" },
  { "tty", 't', OPT_FLAG, O (tty), NULL, "Allocate a pseudo-terminal" },
  { "network", 0, OPT_STRING, O (network), "MODE", "none (own namespace, lo only) or host (default)" },
  { "net", 0, OPT_STRING, O (network), "MODE", "Same as --network" },
  { "cap-add", 0, OPT_LIST, O (cap_add), "CAP", "Add a capability (or ALL)" },
  { "cap-drop", 0, OPT_LIST, O (cap_drop), "CAP", "Drop a capability (or ALL)" },
  { "security-opt", 0, OPT_LIST, O (security_opts), "OPT", "no-new-privileges, seccomp=unconfined" },
  { "init", 0, OPT_FLAG, O (init), NULL, "Run a small init as PID 1 that reaps zombies and forwards signals" },
  { "rm", 0, OPT_FLAG, O (rm), NULL, "Remove the container when it exits (foreground runs keep nothing)" },
  { "name", 0, OPT_STRING, O (name), "NAME", "Container name" },
  { "backend", 0, OPT_STRING, O (backend), "NAME", "Backend: ns (default)" },
  { "dry-run", 0, OPT_FLAG, O (dry_run), NULL, "Print the plan as JSON and run nothing" },
  { "debug", 0, OPT_FLAG, O (debug), NULL, "Print each setup step as it is applied" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static const char run_usage[] = "cella run [OPTIONS] IMAGE|ROOTFS-DIR [COMMAND [ARG...]]";
static const char run_summary[]
    = "Run a command in a new container, in the foreground. IMAGE is an image name (the embedded\n"
      "`busybox` always works offline); a path starting with `/` or `.` is used as the root directory.\n"
      "Exit status: the command's own; 125 when cella fails; 126 when the command cannot be executed;\n"
      "127 when it is not found; 128+N when it is killed by signal N.";

/* An argument that starts with / or . is a directory; anything else names an image. */
static int
resolve_root (const char *arg, char **rootfs, bool *from_image, cella_error_t *err)
{
  struct stat st;
  if (arg[0] == '/' || arg[0] == '.')
    {
      char *r = realpath (arg, NULL);
      if (r == NULL)
        return cella_error (err, errno, "root directory `%s`", arg);
      if (stat (r, &st) < 0 || !S_ISDIR (st.st_mode))
        {
          free (r);
          return cella_error (err, ENOTDIR, "root directory `%s`", arg);
        }
      *rootfs = r;
      *from_image = false;
      return 0;
    }
  {
    int r = default_image_ensure (arg, rootfs, err);
    if (r < 0)
      return -1;
    if (r > 0)
      return cella_error (err, 0, "image `%s`: not found (available offline: busybox; a root directory must start with `/` or `.`)",
                          arg);
  }
  *from_image = true;
  return 0;
}

int
cmd_run (int argc, char **argv)
{
  struct run_options o = { 0 };
  cleanup_plan struct plan *p = NULL;
  cleanup_free char *rootfs = NULL;
  cella_error_t err = NULL;
  bool from_image = false;
  int help, first, status;

  first = cli_parse (run_table, &o, argc - 1, argv + 1, &help, &err);
  if (first < 0)
    goto error;
  if (help)
    {
      cli_print_help (run_usage, run_summary, run_table);
      run_options_free (&o);
      return 0;
    }
  first += 1;
  if (first >= argc)
    {
      cella_error (&err, 0, "run: an IMAGE or ROOTFS-DIR is required (usage: %s)", run_usage);
      goto error;
    }
  o.image = xstrdup (argv[first]);
  o.command = strv_dup (argv + first + 1);
  if (o.command[0] == NULL)
    {
      /* no image config yet: the embedded image runs a shell, like docker's busybox */
      strv_free (o.command);
      o.command = NULL;
      strv_push (&o.command, "sh");
    }
  if (resolve_root (o.image, &rootfs, &from_image, &err) < 0)
    goto error;
  if (plan_from_run_options (&o, rootfs, from_image, &p, &err) < 0)
    goto error;
  if (o.dry_run)
    {
      cleanup_free char *json = plan_to_json (p);
      puts (json);
      run_options_free (&o);
      return 0;
    }
  run_options_free (&o);
  status = ns_run (p, &err);
  if (status < 0)
    return cella_error_print (&err);
  return status;

error:
  run_options_free (&o);
  return cella_error_print (&err);
}
