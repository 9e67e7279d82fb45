/* Unit tests for named volumes (src/engine/volume.c): names, records under a data root of the
 * test's own, and how a run's -v/--mount/--volumes-from values become binds. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/volume.h"
#include "errcheck.h"
#include "tap.h"

static char root[64] = "/tmp/cella-test-volume.XXXXXX";

static void
test_names (void)
{
  static const char *const good[] = { "a", "data", "my_vol.1-x", "0abc", "A" };
  static const char *const bad[] = { "", "_x", ".x", "-x", "a/b", "a b", "a:b", "..", "é" };
  char longname[300];
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    CHECK (volume_name_valid (good[i]), "valid name `%s`", good[i]);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK (!volume_name_valid (bad[i]), "invalid name `%s`", bad[i]);
  memset (longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  CHECK (!volume_name_valid (longname), "a 299-character name is refused");
}

static void
test_records (void)
{
  char *labels[] = { "app=web", "empty=", NULL };
  char *opts[] = { "type=tmpfs", "o=size=8m", NULL };
  char *bad_opts[] = { "type=nfs", NULL };
  struct volume v, again;
  bool created;
  cella_error_t err = NULL;

  CHECK (volume_create ("v1", labels, opts, false, false, &v, &created, &err) == 0 && created, "create v1");
  cella_error_free (&err);
  CHECK (v.name && strcmp (v.name, "v1") == 0 && v.labels && strcmp (v.labels[0], "app=web") == 0, "labels kept");
  CHECK (volume_load ("v1", &again, &err) == 0 && again.options && strv_len (again.options) == 2
             && strlen (again.created) == 20,
         "reloaded: options and CreatedAt");
  volume_clear (&again);
  CHECK (volume_create ("v1", NULL, NULL, false, false, &again, NULL, &err) < 0, "a second create of v1 is refused");
  cella_error_free (&err);
  CHECK (volume_create ("v1", NULL, NULL, false, true, &again, &created, &err) == 0 && !created
             && strv_len (again.labels) == 2,
         "exist_ok: the existing volume, untouched");
  volume_clear (&again);
  volume_clear (&v);
  CHECK (volume_create ("v2", NULL, bad_opts, false, false, &v, NULL, &err) < 0, "type=nfs refused");
  cella_error_free (&err);
  CHECK (volume_create ("bad/name", NULL, NULL, false, false, &v, NULL, &err) < 0, "bad name refused");
  cella_error_free (&err);
  CHECK (volume_create (NULL, NULL, NULL, true, false, &v, NULL, &err) == 0 && strlen (v.name) == 64 && v.anonymous,
         "no name: 64 hex, anonymous");
  CHECK (volume_remove (v.name, false, &err) == 0 && volume_load (v.name, &again, NULL) < 0, "removed");
  volume_clear (&v);
  CHECK (volume_remove ("nosuch", false, &err) < 0, "rm of a missing volume fails");
  cella_error_free (&err);
  CHECK (volume_remove ("v1", false, &err) == 0, "rm v1");
}

static void
test_resolve (void)
{
  struct run_options o = { 0 };
  struct ctr_volume *used = NULL;
  size_t n = 0;
  char **made = NULL;
  cella_error_t err = NULL;
  char want[256];

  strv_push (&o.volumes, "/h:/a");
  strv_push (&o.volumes, "data:/b:ro");
  strv_push (&o.volumes, "/c");
  strv_push (&o.mounts, "type=volume,source=m,target=/d,readonly");
  strv_push (&o.mounts, "type=tmpfs,target=/t");
  CHECK (volume_resolve_run (&o, NULL, false, &used, &n, &made, &err) == 0, "resolve");
  CHECK (n == 3 && strv_len (made) == 3, "three volumes used, all made now");
  CHECK_STR (o.volumes[0], "/h:/a", "a host bind stays as it is");
  snprintf (want, sizeof want, "%s/volumes/data/_data:/b:ro", root);
  CHECK_STR (o.volumes[1], want, "NAME:/b:ro becomes a read-only bind of the volume's _data");
  CHECK (n == 3 && used[0].readonly && !used[0].anonymous && strcmp (used[0].target, "/b") == 0, "data: ro, named");
  CHECK (n == 3 && used[1].anonymous && strlen (used[1].name) == 64 && strcmp (used[1].target, "/c") == 0,
         "-v /c: anonymous");
  snprintf (want, sizeof want, "%s/volumes/m/_data:/d:ro", root);
  CHECK_STR (o.volumes[3], want, "--mount type=volume becomes a bind");
  CHECK (strv_len (o.mounts) == 1 && strcmp (o.mounts[0], "type=tmpfs,target=/t") == 0, "other --mounts stay");
  for (size_t i = 0; made && made[i]; i++)
    volume_remove (made[i], true, NULL);
  ctr_volumes_free (used, n);
  strv_free (made);
  made = NULL;
  run_options_free (&o);

  memset (&o, 0, sizeof o);
  strv_push (&o.volumes, "./rel:/x");
  CHECK (volume_resolve_run (&o, NULL, false, &used, &n, &made, &err) < 0
             && err_has (&err, "neither an absolute host path nor a volume name"),
         "./rel:/x: the error says what the source must be");
  CHECK (made == NULL, "nothing made on error");
  run_options_free (&o);
}

int
main (void)
{
  if (mkdtemp (root) == NULL)
    {
      CHECK (false, "mkdtemp");
      return tap_done ();
    }
  setenv ("CELLA_ROOT", root, 1);
  test_names ();
  test_records ();
  test_resolve ();
  CHECK (remove_tree (root) == 0, "remove the test's data root");
  return tap_done ();
}
