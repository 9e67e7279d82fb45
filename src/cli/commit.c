/* cella commit CONTAINER [IMAGE]: a container's changes as a new image. This half finds the
 * container, its overlay upper dir and its image, pauses it while its changes are packed, and runs
 * the image tool (`cella-image commit`, src/image/tool/commit.c), which packs, stores and records. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/events.h"
#include "../cgroup/cgroup.h"
#include "../engine/container.h"
#include "commands.h"
#include "../util/options.h"

struct commit_opts {
  char *message, *author, *pause;
  char **changes;
};

#define O(f) offsetof (struct commit_opts, f)
static const struct cli_option commit_table[] = {
  { "message", 'm', OPT_STRING, O (message), "MSG", "A comment for the new layer's history entry" },
  { "author", 'a', OPT_STRING, O (author), "AUTHOR", "The image's author (\"Name <mail>\")" },
  { "change", 'c', OPT_LIST, O (changes), "INSTR",
    "Change the config with an instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL "
    "(repeatable)" },
  { "pause", 0, OPT_STRING, O (pause), "true|false",
    "Freeze a running container while its changes are read "
    "(default true)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static void
commit_opts_free (struct commit_opts *o)
{
  free (o->message);
  free (o->author);
  free (o->pause);
  strv_free (o->changes);
}

/* The image tool's argv for this container. */
static char **
tool_argv (const struct commit_opts *o, const struct plan *p, const char *id, const char *created_by, const char *name)
{
  char **v = NULL;
  strv_push (&v, "commit");
  strv_push (&v, "--upper");
  strv_push (&v, p->root_upper);
  strv_push (&v, p->image_id ? "--parent" : "--base-dir");
  strv_push (&v, p->image_id ? p->image_id : p->rootfs);
  strv_push (&v, "--container");
  strv_push (&v, id);
  if (created_by)
    {
      strv_push (&v, "--created-by");
      strv_push (&v, created_by);
    }
  if (o->message)
    {
      strv_push (&v, "--message");
      strv_push (&v, o->message);
    }
  if (o->author)
    {
      strv_push (&v, "--author");
      strv_push (&v, o->author);
    }
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].target)
      {
        strv_push (&v, "--mount-point");
        strv_push (&v, p->ops[i].target);
      }
  for (size_t i = 0; o->changes && o->changes[i]; i++)
    {
      strv_push (&v, "--change");
      strv_push (&v, o->changes[i]);
    }
  if (name)
    {
      strv_push (&v, "--");
      strv_push (&v, name);
    }
  return v;
}

/* Freeze the container's cgroup; false (and nothing frozen) when it has none here. */
static bool
freeze (const struct plan *p, struct cgroup_dirs *dirs)
{
  cella_error_t e = NULL;
  if (cgroup_path_of (p, dirs, NULL) < 0)
    return false;
  if (cgroup_freeze (dirs, true, &e) < 0)
    {
      fprintf (stderr, "cella: commit: the container is not paused: %s\n", e->msg);
      cella_error_free (&e);
      return false;
    }
  return true;
}

int
cmd_commit (int argc, char **argv)
{
  struct commit_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  cleanup_strv char **lowers = NULL, **targv = NULL;
  struct plan *p = NULL;
  struct ctr_state st = { 0 };
  struct cgroup_dirs dirs = { 0 };
  bool frozen = false, have_state = false;
  int status,
      first = cli_parse_command (commit_table, &o, argc, argv,
                                 "cella commit [-m MSG] [-a AUTHOR] [-c INSTR]... [--pause=false] CONTAINER "
                                 "[IMAGE[:TAG]]",
                                 "Make an image of a container's changes: its image's layers and one more layer with "
                                 "what it added, changed and deleted. Prints the new image's id.",
                                 1, "a CONTAINER is required", &status);
  if (first <= 0)
    goto out;
  if (argc - first > 2)
    cella_error (&err, 0, "commit: too many arguments (usage: cella commit [OPTIONS] CONTAINER [IMAGE[:TAG]])");
  else if (o.pause && strcmp (o.pause, "true") != 0 && strcmp (o.pause, "false") != 0)
    cella_error (&err, 0, "commit: --pause `%s`: true or false", o.pause);
  else if (ctr_lookup (argv[first], &id, &err) == 0 && ctr_plan_load (id, &p, &err) == 0
           && ctr_overlay_lowers (argv[first], p, &lowers, &err) == 0
           && (have_state = ctr_state_read (id, &st, -1, &err) == 0))
    {
      targv = tool_argv (&o, p, id, st.command, argc - first == 2 ? argv[first + 1] : NULL);
      if (st.status == CTR_RUNNING && !st.paused && !(o.pause && strcmp (o.pause, "false") == 0))
        frozen = freeze (p, &dirs);
      status = image_tool_run (targv, &err);
      if (status == 0)
        event_emit ("image", "commit", argc - first == 2 ? argv[first + 1] : id,
                    argc - first == 2 ? argv[first + 1] : NULL, (const char *[]){ "container", st.name, NULL });
      if (frozen)
        {
          cella_error_t e = NULL;
          if (cgroup_freeze (&dirs, false, &e) < 0)
            {
              fprintf (stderr, "cella: commit: resume the container: %s\n", e->msg);
              cella_error_free (&e);
            }
        }
    }
  if (err)
    status = cella_error_print (&err);
out:
  if (have_state)
    ctr_state_clear (&st);
  cgroup_dirs_clear (&dirs);
  plan_free (p);
  commit_opts_free (&o);
  return status;
}
