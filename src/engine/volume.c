/* Named volumes: records, create/list/remove, and what a run mounts (volume.h has the layout). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "volume.h"
#include "container.h"
#include "../ns/ns.h"
#include "../util/json.h"
#include "../util/paths.h"

static char *
volumes_base (void)
{
  return xasprintf ("%s/volumes", paths_data_root ());
}

static char *
volume_dir (const char *name)
{
  return xasprintf ("%s/volumes/%s", paths_data_root (), name);
}

void
volume_clear (struct volume *v)
{
  free (v->name);
  free (v->mountpoint);
  free (v->created);
  strv_free (v->labels);
  strv_free (v->options);
  memset (v, 0, sizeof *v);
}

void
volume_list_free (struct volume *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    volume_clear (&v[i]);
  free (v);
}

bool
volume_name_valid (const char *name)
{
  return name_token_valid (name, 255);
}

static int
name_error (const char *name, cella_error_t *err)
{
  return cella_error (err, 0,
                      "invalid volume name `%s`: use letters, digits and _ . - (starting with a letter or digit, "
                      "at most 255 characters)",
                      name);
}

/* Under the lock nobody is creating or removing a volume: a .tmp- or .rm- entry is what a killed
 * create or rm left. */
static void
volume_gc (const char *base)
{
  DIR *d = opendir (base);
  struct dirent *e;
  while (d && (e = readdir (d)) != NULL)
    if (has_prefix (e->d_name, ".tmp-") || has_prefix (e->d_name, ".rm-"))
      {
        cleanup_free char *path = xasprintf ("%s/%s", base, e->d_name);
        remove_tree_mapped (path);
      }
  if (d)
    closedir (d);
}

int
volume_lock (cella_error_t *err)
{
  cleanup_free char *base = volumes_base ();
  cleanup_free char *path = xasprintf ("%s/.lock", base);
  int fd;
  if (mkdir_p (base, 0700, err) < 0)
    return -1;
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return cella_error (err, errno, "open `%s`", path);
  if (flock (fd, LOCK_EX) < 0)
    {
      close (fd);
      return cella_error (err, errno, "lock `%s`", path);
    }
  volume_gc (base);
  return fd;
}

/* --- the record ------------------------------------------------------------------------------ */

static json_t *
kv_object (char *const *kv)
{
  json_t *o = json_object ();
  for (size_t i = 0; kv && kv[i]; i++)
    {
      const char *eq = strchr (kv[i], '=');
      cleanup_free char *k = eq ? strndup (kv[i], eq - kv[i]) : xstrdup (kv[i]);
      json_object_set_new (o, k, json_string (eq ? eq + 1 : ""));
    }
  return o;
}

static char **
kv_read (json_t *o)
{
  char **v = NULL;
  const char *k;
  json_t *val;
  json_object_foreach (o, k, val)
    {
      cleanup_free char *kv = xasprintf ("%s=%s", k, json_string_value (val) ? json_string_value (val) : "");
      strv_push (&v, kv);
    }
  return v;
}

static const char *
kv_get (char *const *kv, const char *key)
{
  size_t kl = strlen (key);
  for (size_t i = 0; kv && kv[i]; i++)
    if (strncmp (kv[i], key, kl) == 0 && kv[i][kl] == '=')
      return kv[i] + kl + 1;
  return NULL;
}

json_t *
volume_json (const struct volume *v)
{
  return json_pack ("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:b}", "Name", v->name, "Driver", "local", "Mountpoint",
                    v->mountpoint, "Labels", kv_object (v->labels), "Options", kv_object (v->options), "CreatedAt",
                    v->created, "Scope", "local", "Anonymous", v->anonymous);
}

int
volume_load (const char *name, struct volume *v, cella_error_t *err)
{
  cleanup_free char *dir = NULL, *path = NULL, *text = NULL;
  json_t *o;
  memset (v, 0, sizeof *v);
  if (!volume_name_valid (name))
    return name_error (name, err);
  dir = volume_dir (name);
  path = xasprintf ("%s/volume.json", dir);
  if (read_file (path, &text, NULL, NULL) < 0)
    return cella_error (err, 0, "no such volume: `%s`", name);
  o = json_loads (text, 0, NULL);
  if (!json_is_object (o))
    {
      json_decref (o);
      return cella_error (err, 0, "volume `%s`: `%s` is not a volume record", name, path);
    }
  v->name = xstrdup (name);
  v->mountpoint = xasprintf ("%s/_data", dir);
  v->created = json_member_str (o, "CreatedAt");
  if (v->created == NULL)
    v->created = xstrdup ("");
  v->labels = kv_read (json_object_get (o, "Labels"));
  v->options = kv_read (json_object_get (o, "Options"));
  v->anonymous = json_is_true (json_object_get (o, "Anonymous"));
  json_decref (o);
  return 0;
}

static int
check_options (char *const *opts, cella_error_t *err)
{
  const char *type = kv_get (opts, "type"), *device = kv_get (opts, "device");
  for (size_t i = 0; opts && opts[i]; i++)
    if (!has_prefix (opts[i], "type=") && !has_prefix (opts[i], "device=") && !has_prefix (opts[i], "o="))
      return cella_error (err, 0, "--opt `%s`: expected type=tmpfs|bind|none, device=PATH or o=OPTIONS", opts[i]);
  if (type && strcmp (type, "tmpfs") != 0 && strcmp (type, "bind") != 0 && strcmp (type, "none") != 0)
    return cella_error (err, 0, "--opt type=%s: the local driver here knows tmpfs, bind and none", type);
  if (type && (strcmp (type, "bind") == 0 || strcmp (type, "none") == 0))
    {
      struct stat st;
      if (device == NULL || device[0] != '/')
        return cella_error (err, 0, "--opt type=%s needs device=ABSOLUTE-HOST-PATH", type);
      if (stat (device, &st) < 0)
        return cella_error (err, errno, "--opt device=%s", device);
      if (!S_ISDIR (st.st_mode))
        return cella_error (err, ENOTDIR, "--opt device=%s", device);
    }
  for (size_t i = 0; opts && opts[i]; i++)
    if (has_prefix (opts[i], "o=") && type && strcmp (type, "tmpfs") == 0)
      {
        /* checked now, not at the first run: size=, mode=, [no]exec... as --tmpfs takes them */
        cleanup_free char *spec = xasprintf ("/x:%s", opts[i] + 2), *dst = NULL;
        long long size;
        mode_t mode;
        unsigned flags;
        if (parse_tmpfs (spec, &dst, &size, &mode, &flags, err) < 0)
          return cella_error_wrap (err, "--opt %s", opts[i]);
      }
  return 0;
}

static int
write_new_volume (const char *tmp, const struct volume *v, cella_error_t *err)
{
  cleanup_free char *data = xasprintf ("%s/_data", tmp), *rec = xasprintf ("%s/volume.json", tmp);
  json_t *o = json_pack ("{s:s, s:o, s:o, s:s, s:b}", "Name", v->name, "Labels", kv_object (v->labels), "Options",
                         kv_object (v->options), "CreatedAt", v->created, "Anonymous", v->anonymous);
  char *text = json_dumps (o, JSON_COMPACT);
  int r = 0;
  json_decref (o);
  /* 0755 like docker's _data; the container's root owns it (rootless: the caller, which is root
   * in the container's user namespace) */
  if (mkdir (data, 0755) < 0)
    r = cella_error (err, errno, "create `%s`", data);
  else
    r = write_file_atomic (rec, text, strlen (text), 0600, err);
  free (text);
  return r;
}

int
volume_create (const char *name, char *const *labels, char *const *opts, bool anonymous, bool exist_ok,
               struct volume *v, bool *created, cella_error_t *err)
{
  cleanup_free char *gen = NULL, *base = volumes_base (), *tmp = NULL, *final = NULL, *rnd = NULL;
  struct volume nv = { 0 };
  int r;

  if (created)
    *created = false;
  memset (v, 0, sizeof *v);
  if (name == NULL && (name = gen = paths_new_id ()) == NULL)
    return cella_error (err, errno, "generate a volume name");
  if (!volume_name_valid (name))
    return name_error (name, err);
  for (size_t i = 0; labels && labels[i]; i++)
    if (labels[i][0] == '=' || labels[i][0] == '\0')
      return cella_error (err, 0, "--label `%s`: expected KEY=VALUE", labels[i]);
  if (check_options (opts, err) < 0)
    return -1;
  if (mkdir_p (base, 0700, err) < 0)
    return -1;
  final = volume_dir (name);
  if (access (final, F_OK) == 0)
    {
      if (!exist_ok)
        return cella_error (err, EEXIST, "create volume `%s`", name);
      return volume_load (name, v, err);
    }
  rnd = paths_new_id ();
  tmp = xasprintf ("%s/.tmp-%.16s-%s", base, rnd ? rnd : "0", name);
  if (mkdir (tmp, 0701) < 0)
    return cella_error (err, errno, "create `%s`", tmp);
  nv.name = (char *) name;
  nv.labels = (char **) labels;
  nv.options = (char **) opts;
  nv.anonymous = anonymous;
  nv.created = utc_now_rfc3339 ();
  r = write_new_volume (tmp, &nv, err);
  free (nv.created);
  /* rename(2) onto an existing non-empty directory fails: two creates of one name, one wins */
  if (r == 0 && rename (tmp, final) < 0)
    {
      int e = errno;
      remove_tree (tmp);
      if ((e == ENOTEMPTY || e == EEXIST) && exist_ok)
        return volume_load (name, v, err);
      return cella_error (err, e == ENOTEMPTY ? EEXIST : e, "create volume `%s`", name);
    }
  if (r < 0)
    {
      remove_tree (tmp);
      return -1;
    }
  fsync_parent (final);
  if (created)
    *created = true;
  event_emit ("volume", "create", name, NULL, NULL);
  return volume_load (name, v, err);
}

static int
by_name (const void *a, const void *b)
{
  return strcmp (((const struct volume *) a)->name, ((const struct volume *) b)->name);
}

int
volume_list (struct volume **out, size_t *n, cella_error_t *err)
{
  cleanup_free char *base = volumes_base ();
  DIR *d = opendir (base);
  struct dirent *e;
  struct volume *v = NULL;
  size_t len = 0;
  *out = NULL;
  *n = 0;
  if (d == NULL)
    return errno == ENOENT ? 0 : cella_error (err, errno, "open `%s`", base);
  while ((e = readdir (d)) != NULL)
    {
      struct volume one;
      if (e->d_name[0] == '.' || volume_load (e->d_name, &one, NULL) < 0)
        continue;
      v = xrealloc (v, (len + 1) * sizeof *v);
      v[len++] = one;
    }
  closedir (d);
  if (len)
    qsort (v, len, sizeof *v, by_name);
  *out = v;
  *n = len;
  return 0;
}

char **
volume_users (const char *name)
{
  struct ctr_state *cs = NULL;
  size_t n = 0;
  char **users = NULL;
  if (ctr_list (&cs, &n, NULL) < 0)
    return NULL;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < cs[i].nvolumes; j++)
      if (strcmp (cs[i].volumes[j].name, name) == 0)
        {
          strv_push (&users, cs[i].name ? cs[i].name : cs[i].id);
          break;
        }
  ctr_list_free (cs, n);
  return users;
}

int
volume_hold (const char *name)
{
  cleanup_free char *dir = volume_name_valid (name) ? volume_dir (name) : NULL;
  int fd = dir ? open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
  if (fd >= 0 && flock (fd, LOCK_SH | LOCK_NB) < 0)
    {
      close (fd);
      fd = -1;
    }
  return fd;
}

/* Is a foreground run holding it (volume_hold)? */
static bool
volume_held (const char *dir)
{
  cleanup_close int fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return false;
  if (flock (fd, LOCK_EX | LOCK_NB) < 0)
    return errno == EWOULDBLOCK;
  flock (fd, LOCK_UN);
  return false;
}

int
volume_remove (const char *name, bool force, cella_error_t *err)
{
  cleanup_free char *dir = NULL, *gone = NULL, *rnd = NULL;
  cleanup_strv char **users = NULL;
  struct volume v;
  if (volume_load (name, &v, err) < 0)
    return -1;
  volume_clear (&v);
  users = volume_users (name);
  if (users && !force)
    return cella_error (err, EBUSY, "volume `%s` is in use by container `%s`%s: remove the container first", name,
                        users[0], users[1] ? " (and others)" : "");
  dir = volume_dir (name);
  if (!force && volume_held (dir))
    return cella_error (err, EBUSY,
                        "volume `%s` is in use by a running container (a `cella run` the engine does not keep)", name);
  rnd = paths_new_id ();
  gone = xasprintf ("%s/volumes/.rm-%.16s-%s", paths_data_root (), rnd ? rnd : "0", name);
  /* out of sight first: ls never shows a half-removed volume */
  if (rename (dir, gone) < 0)
    return cella_error (err, errno, "remove volume `%s`", name);
  fsync_parent (dir);
  event_emit ("volume", "destroy", name, NULL, NULL);
  if (remove_tree_mapped (gone) < 0)
    return cella_error (err, errno, "remove `%s`", gone);
  return 0;
}

void
volume_remove_anonymous (const struct ctr_volume *v, size_t n)
{
  int lock = -1;
  for (size_t i = 0; i < n; i++)
    {
      if (!v[i].anonymous)
        continue;
      if (lock < 0 && (lock = volume_lock (NULL)) < 0)
        return;
      volume_remove (v[i].name, false, NULL);
    }
  if (lock >= 0)
    close (lock);
}

/* --- what a run mounts ----------------------------------------------------------------------- */

struct resolver {
  struct ctr_volume *used;
  size_t nused;
  char ***made;
  char **volumes, **mounts, **tmpfs; /* the rewritten lists */
};

static bool
target_taken (const struct resolver *r, const char *target)
{
  for (size_t i = 0; i < r->nused; i++)
    if (strcmp (r->used[i].target, target) == 0)
      return true;
  return false;
}

/* Take (or make) volume name (NULL: a new anonymous one) for target, and give the plan builder
 * the mount: a bind of its directory, or a tmpfs for a tmpfs-typed volume. */
static int
use_volume (struct resolver *r, const char *name, const char *target, bool ro, bool nocopy, cella_error_t *err)
{
  struct volume v;
  bool created;
  const char *type, *device;
  cleanup_free char *spec = NULL;
  if (volume_create (name, NULL, NULL, name == NULL, true, &v, &created, err) < 0)
    return -1;
  if (created)
    strv_push (r->made, v.name);
  type = kv_get (v.options, "type");
  device = kv_get (v.options, "device");
  if (type && strcmp (type, "tmpfs") == 0)
    {
      const char *o = kv_get (v.options, "o");
      spec = xasprintf ("%s:%s%s%s", target, o && *o ? o : "", o && *o && ro ? "," : "", ro ? "ro" : "");
      if (spec[strlen (spec) - 1] == ':')
        spec[strlen (spec) - 1] = '\0';
      strv_push (&r->tmpfs, spec);
    }
  else
    {
      const char *src = device && type ? device : v.mountpoint;
      spec = xasprintf ("%s:%s:%s", src, target, ro ? "ro" : "rw");
      strv_push (&r->volumes, spec);
    }
  r->used = xrealloc (r->used, (r->nused + 1) * sizeof *r->used);
  r->used[r->nused].name = xstrdup (v.name);
  r->used[r->nused].target = xstrdup (target);
  r->used[r->nused].readonly = ro;
  r->used[r->nused].anonymous = v.anonymous;
  r->used[r->nused].nocopy = nocopy;
  r->nused++;
  volume_clear (&v);
  return 0;
}

/* -v SPEC: HOST:CTR[:OPTS] stays as it is; NAME:CTR[:OPTS] and CTR alone are volumes. */
static int
resolve_dash_v (struct resolver *r, const char *spec, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (spec);
  char *colon = strchr (copy, ':'), *dst, *opts;
  bool ro = false, nocopy = false;
  if (copy[0] == '/' && colon == NULL)
    return use_volume (r, NULL, copy, false, false, err); /* -v /path: anonymous */
  if (copy[0] == '/' || colon == NULL)
    {
      strv_push (&r->volumes, spec); /* a bind, or an error parse_volume explains */
      return 0;
    }
  *colon = '\0';
  if (!volume_name_valid (copy))
    return cella_error (err, 0,
                        "volume `%s`: source `%s` is neither an absolute host path nor a volume name (letters, "
                        "digits and _ . -, starting with a letter or digit)",
                        spec, copy);
  dst = colon + 1;
  opts = strchr (dst, ':');
  if (opts)
    *opts++ = '\0';
  if (dst[0] != '/')
    return cella_error (err, 0, "volume `%s`: target `%s` must be an absolute path in the container", spec, dst);
  for (char *save = NULL, *o = opts ? strtok_r (opts, ",", &save) : NULL; o; o = strtok_r (NULL, ",", &save))
    {
      if (strcmp (o, "ro") == 0 || strcmp (o, "readonly") == 0)
        ro = true;
      else if (strcmp (o, "rw") == 0)
        ro = false;
      else if (strcmp (o, "nocopy") == 0)
        nocopy = true;
      else if (strcmp (o, "z") == 0 || strcmp (o, "Z") == 0)
        ;
      else
        return cella_error (err, 0, "volume `%s`: unknown option `%s` (expected ro or rw)", spec, o);
    }
  return use_volume (r, copy, dst, ro, nocopy, err);
}

static int
mount_bool_true (const char *v)
{
  return v == NULL || strcmp (v, "1") == 0 || strcasecmp (v, "true") == 0;
}

/* --mount type=volume,source=NAME,target=/p[,readonly]; other types stay as they are. */
static int
resolve_mount (struct resolver *r, const char *spec, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (spec);
  char *save = NULL;
  const char *type = NULL, *src = NULL, *dst = NULL;
  bool ro = false, nocopy = false;
  for (char *kv = strtok_r (copy, ",", &save); kv; kv = strtok_r (NULL, ",", &save))
    {
      char *eq = strchr (kv, '=');
      char *v = eq ? eq + 1 : NULL;
      if (eq)
        *eq = '\0';
      if (strcmp (kv, "type") == 0)
        type = v;
      else if (strcmp (kv, "source") == 0 || strcmp (kv, "src") == 0)
        src = v;
      else if (strcmp (kv, "target") == 0 || strcmp (kv, "destination") == 0 || strcmp (kv, "dst") == 0)
        dst = v;
      else if (strcmp (kv, "readonly") == 0 || strcmp (kv, "ro") == 0)
        ro = mount_bool_true (v);
      else if (strcmp (kv, "volume-nocopy") == 0)
        nocopy = mount_bool_true (v);
      else if (type && strcmp (type, "volume") == 0)
        return cella_error (err, 0, "--mount `%s`: unknown key `%s` for type=volume", spec, kv);
    }
  if (type == NULL || strcmp (type, "volume") != 0)
    {
      strv_push (&r->mounts, spec);
      return 0;
    }
  if (dst == NULL || dst[0] != '/')
    return cella_error (err, 0, "--mount `%s`: type=volume needs target=ABSOLUTE-PATH", spec);
  if (src && *src && !volume_name_valid (src))
    return name_error (src, err);
  return use_volume (r, src && *src ? src : NULL, dst, ro, nocopy, err);
}

/* --volumes-from CTR[:ro|rw]: the volumes its record names, at the same targets. */
static int
resolve_from (struct resolver *r, const char *spec, cella_error_t *err)
{
  cleanup_free char *ref = xstrdup (spec), *id = NULL;
  char *mode = strchr (ref, ':');
  struct ctr_state st;
  int rc = 0;
  if (mode)
    *mode++ = '\0';
  if (mode && strcmp (mode, "ro") != 0 && strcmp (mode, "rw") != 0)
    return cella_error (err, 0, "--volumes-from `%s`: expected CONTAINER[:ro|rw]", spec);
  if (ctr_lookup (ref, &id, err) < 0 || ctr_state_read (id, &st, -1, err) < 0)
    return cella_error_wrap (err, "--volumes-from `%s`", spec);
  for (size_t i = 0; rc == 0 && i < st.nvolumes; i++)
    {
      bool ro = mode ? strcmp (mode, "ro") == 0 : st.volumes[i].readonly;
      if (!target_taken (r, st.volumes[i].target))
        rc = use_volume (r, st.volumes[i].name, st.volumes[i].target, ro, false, err);
    }
  ctr_state_clear (&st);
  return rc;
}

/* Does a user mount (bind, tmpfs, --mount) already cover target? Then the image's VOLUME there
 * gets no anonymous volume (docker). */
static bool
user_covers (const struct resolver *r, const char *target)
{
  size_t tl = strlen (target);
  while (tl > 1 && target[tl - 1] == '/')
    tl--;
  if (target_taken (r, target))
    return true;
  for (size_t i = 0; r->volumes && r->volumes[i]; i++)
    {
      const char *c = strchr (r->volumes[i], ':');
      if (c && strncmp (c + 1, target, tl) == 0 && (c[1 + tl] == '\0' || c[1 + tl] == ':' || c[1 + tl] == '/'))
        return true;
    }
  for (size_t i = 0; r->tmpfs && r->tmpfs[i]; i++)
    if (strncmp (r->tmpfs[i], target, tl) == 0 && (r->tmpfs[i][tl] == '\0' || r->tmpfs[i][tl] == ':'))
      return true;
  for (size_t i = 0; r->mounts && r->mounts[i]; i++)
    {
      const char *t = strstr (r->mounts[i], "target=");
      if (t == NULL)
        t = strstr (r->mounts[i], "destination=");
      if (t == NULL)
        t = strstr (r->mounts[i], "dst=");
      if (t && (t = strchr (t, '=') + 1) && strncmp (t, target, tl) == 0 && (t[tl] == '\0' || t[tl] == ','))
        return true;
    }
  return false;
}

int
volume_resolve_run (struct run_options *o, char *const *volumes_from, bool anon_image, struct ctr_volume **used,
                    size_t *nused, char ***made, cella_error_t *err)
{
  struct resolver r = { .made = made };
  int rc = 0;
  *used = NULL;
  *nused = 0;
  for (size_t i = 0; rc == 0 && o->volumes && o->volumes[i]; i++)
    rc = resolve_dash_v (&r, o->volumes[i], err);
  for (size_t i = 0; rc == 0 && o->mounts && o->mounts[i]; i++)
    rc = resolve_mount (&r, o->mounts[i], err);
  for (size_t i = 0; rc == 0 && volumes_from && volumes_from[i]; i++)
    rc = resolve_from (&r, volumes_from[i], err);
  for (size_t i = 0; rc == 0 && anon_image && o->img && o->img->volumes && o->img->volumes[i]; i++)
    if (o->img->volumes[i][0] == '/' && !user_covers (&r, o->img->volumes[i]))
      rc = use_volume (&r, NULL, o->img->volumes[i], false, false, err);
  if (rc < 0)
    {
      ctr_volumes_free (r.used, r.nused);
      strv_free (r.volumes);
      strv_free (r.mounts);
      strv_free (r.tmpfs);
      return -1;
    }
  strv_free (o->volumes);
  strv_free (o->mounts);
  o->volumes = r.volumes;
  o->mounts = r.mounts;
  for (size_t i = 0; r.tmpfs && r.tmpfs[i]; i++)
    strv_push (&o->tmpfs, r.tmpfs[i]);
  strv_free (r.tmpfs);
  *used = r.used;
  *nused = r.nused;
  return 0;
}
