/* cella image build --from debian:bookworm: a minimal Debian or Ubuntu root made by debootstrap
 * (variant minbase), imported as a one-layer image. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/paths.h"
#include "image/ref.h"
#include "image/store.h"
#include "ingest.h"
#include "tool.h"

struct build_opts {
  char *from, *tag, *mirror, *variant;
  bool dry_run;
};
#define O(f) offsetof (struct build_opts, f)
static const struct cli_option build_table[] = {
  { "from", 0, OPT_STRING, O (from), "DISTRO[:SUITE]",
    "debian, ubuntu, or a suite (bookworm, noble, ...); debian→bookworm, ubuntu→noble" },
  { "tag", 't', OPT_STRING, O (tag), "NAME[:TAG]", "Name of the image (default: localhost/DISTRO:SUITE)" },
  { "mirror", 0, OPT_STRING, O (mirror), "URL", "Package mirror (default: deb.debian.org or archive.ubuntu.com)" },
  { "variant", 0, OPT_STRING, O (variant), "NAME", "debootstrap variant (default minbase)" },
  { "dry-run", 0, OPT_FLAG, O (dry_run), NULL, "Print the debootstrap command and do nothing" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

static const struct {
  const char *suite, *distro;
} suites[] = {
  { "bookworm", "debian" }, { "trixie", "debian" }, { "bullseye", "debian" }, { "buster", "debian" },
  { "sid", "debian" },      { "stable", "debian" }, { "testing", "debian" },  { "unstable", "debian" },
  { "noble", "ubuntu" },    { "jammy", "ubuntu" },  { "focal", "ubuntu" },    { "oracular", "ubuntu" },
};

/* debian → (debian, bookworm), ubuntu:jammy → (ubuntu, jammy), bookworm → (debian, bookworm). */
static int
map_from (const char *from, char **distro, char **suite, cella_error_t *err)
{
  cleanup_free char *s = xstrdup (from);
  char *colon = strchr (s, ':');
  const char *name = s, *tag = colon ? colon + 1 : NULL;
  if (colon)
    *colon = '\0';
  if (strcmp (name, "debian") == 0 || strcmp (name, "ubuntu") == 0)
    {
      const char *def = strcmp (name, "debian") == 0 ? "bookworm" : "noble";
      if (tag && strcmp (tag, "latest") != 0)
        {
          bool known = false;
          for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
            known |= strcmp (suites[i].suite, tag) == 0 && strcmp (suites[i].distro, name) == 0;
          if (!known)
            return cella_error (err, 0, "--from `%s`: unknown %s suite `%s`", from, name, tag);
        }
      *distro = xstrdup (name);
      *suite = xstrdup (tag && strcmp (tag, "latest") != 0 ? tag : def);
      return 0;
    }
  for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
    if (strcmp (suites[i].suite, name) == 0)
      {
        *distro = xstrdup (suites[i].distro);
        *suite = xstrdup (name);
        return 0;
      }
  return cella_error (
      err, 0, "--from `%s`: expected debian, ubuntu, DISTRO:SUITE or a suite name (bookworm, noble, ...)", from);
}

int
cmd_build (int argc, char **argv)
{
  struct build_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *distro = NULL, *suite = NULL, *name = NULL, *tmp = NULL, *rootfs = NULL, *source = NULL;
  const char *mirror;
  char id[72];
  int status,
      first = cli_parse_command (build_table, &o, argc, argv, "cella image build --from DISTRO[:SUITE] [-t NAME]",
                                 "Bootstrap a minimal Debian or Ubuntu image with debootstrap (needs root and "
                                 "network access to the mirror) and store it.",
                                 0, "", &status);
  if (first <= 0)
    goto out;
  if (o.from == NULL)
    {
      cella_error (&err, 0, "build: --from is required (like --from debian:bookworm)");
      goto fail;
    }
  if (map_from (o.from, &distro, &suite, &err) < 0)
    goto fail;
  mirror = o.mirror                         ? o.mirror
           : strcmp (distro, "ubuntu") == 0 ? "http://archive.ubuntu.com/ubuntu"
                                            : "http://deb.debian.org/debian";
  {
    struct image_ref r = { 0 };
    cleanup_free char *given = o.tag ? xstrdup (o.tag) : xasprintf ("localhost/%s:%s", distro, suite);
    if (image_ref_parse (given, &r, &err) < 0)
      goto fail;
    name = image_ref_name (&r);
    image_ref_clear (&r);
  }
  tmp = xasprintf ("%s/layers/.tmp-build-XXXXXX", paths_data_root ());
  if (o.dry_run)
    {
      printf ("debootstrap --variant=%s %s ROOTFS %s\nimage name: %s\n", o.variant ? o.variant : "minbase", suite,
              mirror, name);
      status = 0;
      goto out;
    }
  if (access ("/usr/sbin/debootstrap", X_OK) < 0)
    {
      cella_error (&err, 0, "build: debootstrap is not installed (apt-get install debootstrap)");
      goto fail;
    }
  if (geteuid () != 0)
    {
      cella_error (&err, 0, "build: debootstrap needs root (run `sudo cella image build ...`)");
      goto fail;
    }
  if (store_init (&err) < 0)
    goto fail;
  if (mkdtemp (tmp) == NULL)
    {
      cella_error (&err, errno, "create `%s`", tmp);
      goto fail;
    }
  rootfs = xasprintf ("%s/rootfs", tmp);
  {
    char variant[64];
    pid_t pid;
    int st;
    snprintf (variant, sizeof variant, "--variant=%s", o.variant ? o.variant : "minbase");
    fprintf (stderr, "Running debootstrap %s %s %s (this takes minutes)\n", variant, suite, mirror);
    fflush (NULL);
    pid = fork ();
    if (pid == 0)
      {
        execl ("/usr/sbin/debootstrap", "debootstrap", variant, suite, rootfs, mirror, (char *) NULL);
        _exit (127);
      }
    if (pid < 0 || waitpid (pid, &st, 0) < 0 || !WIFEXITED (st) || WEXITSTATUS (st) != 0)
      {
        remove_tree (tmp);
        cella_error (&err, 0, "build: debootstrap of %s %s failed (see its output above)", distro, suite);
        goto fail;
      }
  }
  source = xasprintf ("build --from %s (debootstrap %s %s)", o.from, suite, mirror);
  {
    char *names[] = { name, NULL };
    struct ingest_limits lim;
    int rc = ingest_limits_init (&lim, NULL, &err) < 0 ? -1 : import_rootfs_dir (rootfs, names, source, &lim, id, &err);
    remove_tree (tmp);
    if (rc < 0)
      goto fail;
  }
  puts (id);
  status = 0;
  goto out;
fail:
  status = cella_error_print (&err);
out:
  free (o.from);
  free (o.tag);
  free (o.mirror);
  free (o.variant);
  return status;
}
