/* A container's cgroup: the host's layout, where the container's directories go, creating them, applying the
 * plan's limits, joining, removing. Reading back and controlling a running container's cgroup (stats, freeze,
 * signal, pids) is in cgroup_ctl.c. docs/resources.md. */
#define _GNU_SOURCE
#include "../backend/backend.h"
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_internal.h"
#include "../util/paths.h"

/* ---- the pure parts ---------------------------------------------------------------------------------- */

unsigned long long
cgroup_shares_to_weight (unsigned long long shares)
{
  if (shares == 0)
    return 0;
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

/* "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice" (systemd's nesting of dashed slice names); "-.slice" is
 * the root. */
static int
expand_slice (const char *slice, char **out, cella_error_t *err)
{
  size_t n = strlen (slice);
  char *acc = xstrdup ("");
  if (n < 6 || strcmp (slice + n - 6, ".slice") != 0 || strchr (slice, '/'))
    {
      free (acc);
      return cella_error (err, 0, "cgroupsPath slice `%s`: must be a name ending in .slice", slice);
    }
  if (strcmp (slice, "-.slice") != 0)
    for (const char *d = slice;; d++)
      {
        d = strchr (d, '-');
        size_t len = d ? (size_t) (d - slice) : n - 6;
        char *next;
        if (len == 0 || (d && d[1] == '-'))
          {
            free (acc);
            return cella_error (err, 0, "cgroupsPath slice `%s`: empty part between dashes", slice);
          }
        next = xasprintf ("%s/%.*s.slice", acc, (int) len, slice);
        free (acc);
        acc = next;
        if (d == NULL)
          break;
      }
  *out = acc;
  return 0;
}

/* Collapse "//", drop a trailing "/" and refuse ".." (it would leave the hierarchy). */
static int
clean_path (const char *in, char **out, cella_error_t *err)
{
  char *r = xmalloc (strlen (in) + 2), *w = r;
  for (const char *c = in; *c;)
    {
      const char *e = strchrnul (c, '/');
      size_t len = (size_t) (e - c);
      if (len == 2 && c[0] == '.' && c[1] == '.')
        {
          free (r);
          return cella_error (err, 0, "cgroupsPath `%s`: `..` is not allowed", in);
        }
      if (len && !(len == 1 && c[0] == '.'))
        {
          *w++ = '/';
          memcpy (w, c, len);
          w += len;
        }
      c = *e ? e + 1 : e;
    }
  *w = '\0';
  *out = r;
  return 0;
}

int
cgroup_rel_path (const char *cgroups_path, const char *id, const char *base, char **out, cella_error_t *err)
{
  cleanup_free char *raw = NULL;
  if (base == NULL)
    base = "";
  if (cgroups_path == NULL || *cgroups_path == '\0')
    {
      if (id == NULL || *id == '\0')
        return cella_error (err, 0, "cgroup: the container has no id");
      raw = xasprintf ("%s/cella/%s", base, id);
    }
  else if (cgroups_path[0] == '/')
    raw = xstrdup (cgroups_path);
  else if (strchr (cgroups_path, ':'))
    {
      /* systemd's "slice:prefix:name", as the cgroupfs path systemd would give it */
      cleanup_free char *copy = xstrdup (cgroups_path), *slice_dir = NULL;
      char *prefix = strchr (copy, ':'), *name;
      name = strchr (prefix + 1, ':');
      if (name == NULL || strchr (name + 1, ':') || name[1] == '\0')
        return cella_error (err, 0, "cgroupsPath `%s`: expected slice:prefix:name or a path", cgroups_path);
      *prefix++ = '\0';
      *name++ = '\0';
      if (expand_slice (*copy ? copy : "system.slice", &slice_dir, err) < 0)
        return -1;
      if (strchr (prefix, '/') || strchr (name, '/'))
        return cella_error (err, 0, "cgroupsPath `%s`: prefix and name cannot hold `/`", cgroups_path);
      if (strlen (name) > 6 && strcmp (name + strlen (name) - 6, ".slice") == 0)
        raw = xasprintf ("%s%s/%s", base, slice_dir, name);
      else
        raw = xasprintf ("%s%s/%s%s%s.scope", base, slice_dir, prefix, *prefix ? "-" : "", name);
    }
  else
    raw = xasprintf ("%s/%s", base, cgroups_path);
  if (clean_path (raw, out, err) < 0)
    return -1;
  if (**out == '\0')
    {
      free (*out);
      *out = NULL;
      return cella_error (err, 0,
                          "cgroupsPath `%s`: names the root cgroup; a container "
                          "needs one of its own",
                          cgroups_path);
    }
  return 0;
}

/* ---- files ------------------------------------------------------------------------------------------- */

int
cg_write (const char *dir, const char *file, const char *value, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  ssize_t n;
  if (fd < 0)
    return cella_error (err, errno, "cgroup: open `%s` to write `%s`", path, value);
  do
    n = write (fd, value, strlen (value));
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return cella_error (err, errno, "cgroup: write `%s` to `%s`", value, path);
  return 0;
}

char *
cg_read (const char *dir, const char *file)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  char *text = NULL;
  if (read_file (path, &text, NULL, NULL) < 0)
    {
      free (text);
      return NULL;
    }
  return text;
}

bool
cg_has (const char *dir, const char *file)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  return access (path, F_OK) == 0;
}

/* ---- the layout -------------------------------------------------------------------------------------- */

static const char *const v1_names[CG_V1__COUNT] = {
  [CG_MEMORY] = "memory",   [CG_CPU] = "cpu",         [CG_CPUACCT] = "cpuacct",
  [CG_CPUSET] = "cpuset",   [CG_PIDS] = "pids",       [CG_BLKIO] = "blkio",
  [CG_FREEZER] = "freezer", [CG_DEVICES] = "devices", [CG_HUGETLB] = "hugetlb",
};

struct layout_cache {
  bool done;
  enum cgroup_layout layout;
  char *v2_mount; /* v2; hybrid: the unified tree (only for hugetlb where v1 lacks it) */
  char *v1_mount[CG_V1__COUNT];
};
static struct layout_cache cache;

static bool
is_fs (const char *path, unsigned long magic)
{
  struct statfs s;
  return statfs (path, &s) == 0 && (unsigned long) s.f_type == magic;
}

/* cgroup v1 mounts from /proc/self/mountinfo: "... MOUNTPOINT OPTS ... - cgroup SRC rw,cpu,cpuacct" */
static void
find_v1_mounts (void)
{
  cleanup_free char *text = NULL;
  char *save = NULL;
  if (read_file ("/proc/self/mountinfo", &text, NULL, NULL) < 0)
    return;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *sep = strstr (line, " - "), *mnt, *opts, *s2 = NULL;
      char fstype[32];
      int off = 0;
      if (sep == NULL || sscanf (sep + 3, "%31s %*s %n", fstype, &off) < 1 || strcmp (fstype, "cgroup") != 0 || !off)
        continue;
      opts = sep + 3 + off;
      /* field 5 is the mount point */
      mnt = line;
      for (int f = 0; f < 4 && mnt; f++)
        mnt = strchr (mnt, ' ') ? strchr (mnt, ' ') + 1 : NULL;
      if (mnt == NULL)
        continue;
      *strchrnul (mnt, ' ') = '\0';
      for (char *o = strtok_r (opts, ",", &s2); o; o = strtok_r (NULL, ",", &s2))
        for (int c = 0; c < CG_V1__COUNT; c++)
          if (strcmp (o, v1_names[c]) == 0 && cache.v1_mount[c] == NULL)
            cache.v1_mount[c] = xstrdup (mnt);
    }
}

static void
layout_probe (void)
{
  bool any_v1 = false;
  if (cache.done)
    return;
  cache.done = true;
  if (is_fs ("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC))
    {
      cache.layout = CGROUP_V2;
      cache.v2_mount = xstrdup ("/sys/fs/cgroup");
      return;
    }
  find_v1_mounts ();
  for (int c = 0; c < CG_V1__COUNT; c++)
    any_v1 |= cache.v1_mount[c] != NULL;
  if (!any_v1)
    cache.layout = CGROUP_NONE;
  else if (is_fs ("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC))
    {
      cache.layout = CGROUP_HYBRID;
      cache.v2_mount = xstrdup ("/sys/fs/cgroup/unified");
    }
  else
    cache.layout = CGROUP_V1;
}

enum cgroup_layout
cgroup_layout (void)
{
  layout_probe ();
  return cache.layout;
}

const char *
cgroup_layout_name (enum cgroup_layout l)
{
  static const char *const names[] = { "none", "v1", "hybrid", "v2" };
  return names[l];
}

const char *
cg_v1_name (enum cgroup_v1 c)
{
  return v1_names[c];
}

/* Root of the host (euid 0 in the initial user namespace): the hierarchies' roots are ours. */
static bool
host_root (void)
{
  return geteuid () == 0 && in_initial_userns ();
}

/* This process's v2 cgroup, relative to the mount ("" for the root); NULL when unknown. */
static char *
own_v2_cgroup (void)
{
  cleanup_free char *text = NULL;
  char *save = NULL;
  if (read_file ("/proc/self/cgroup", &text, NULL, NULL) < 0)
    return NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    if (has_prefix (line, "0::/"))
      return xstrdup (strcmp (line + 3, "/") == 0 ? "" : line + 3);
  return NULL;
}

static bool
writable_cgroup (const char *dir)
{
  cleanup_free char *procs = xasprintf ("%s/cgroup.procs", dir);
  cleanup_free char *sub = xasprintf ("%s/cgroup.subtree_control", dir);
  return access (dir, W_OK) == 0 && access (procs, W_OK) == 0 && access (sub, W_OK) == 0;
}

/* Rootless: the highest ancestor of our own v2 cgroup that we may write (a delegated subtree), relative to
 * the mount, whose controllers can be handed down (it holds no process itself, or already delegates them).
 * NULL with *why when there is none. */
static char *
delegated_base (char **why)
{
  cleanup_free char *own = NULL, *best = NULL;
  if (cgroup_layout () != CGROUP_V2)
    {
      *why = xasprintf ("cgroup %s: only cgroup v2 can be delegated to a user", cgroup_layout_name (cgroup_layout ()));
      return NULL;
    }
  own = own_v2_cgroup ();
  if (own == NULL)
    {
      *why = xstrdup ("this process's cgroup is unknown");
      return NULL;
    }
  for (char *cur = xstrdup (own); cur;)
    {
      cleanup_free char *abs = xasprintf ("%s%s", cache.v2_mount, cur);
      char *slash = strrchr (cur, '/');
      if (*cur == '\0' || !writable_cgroup (abs))
        {
          free (cur);
          break;
        }
      free (best);
      best = xstrdup (cur);
      if (slash == NULL)
        {
          free (cur);
          break;
        }
      *slash = '\0';
    }
  if (best == NULL)
    {
      *why = xasprintf ("its cgroup %s is not delegated to it", *own ? own : "/");
      return NULL;
    }
  {
    cleanup_free char *abs = xasprintf ("%s%s", cache.v2_mount, best);
    cleanup_free char *procs = cg_read (abs, "cgroup.procs"), *ctl = cg_read (abs, "cgroup.controllers");
    cleanup_free char *sub = cg_read (abs, "cgroup.subtree_control");
    if (ctl == NULL || strstr (ctl, "memory") == NULL || strstr (ctl, "pids") == NULL)
      {
        *why = xasprintf ("its delegated cgroup %s has no memory and pids controllers", best);
        return NULL;
      }
    if (procs && *procs && (sub == NULL || strstr (sub, "memory") == NULL))
      {
        *why = xasprintf ("its delegated cgroup %s holds processes, so it cannot "
                          "hand controllers down",
                          best);
        return NULL;
      }
  }
  return steal_pointer (&best);
}

/* The directory under every hierarchy that cella works under ("" for the root); NULL + *why. */
static char *
work_base (char **why)
{
  if (cgroup_layout () == CGROUP_NONE)
    {
      *why = xstrdup ("no cgroup file system is mounted");
      return NULL;
    }
  if (host_root ())
    return xstrdup ("");
  return delegated_base (why);
}

bool
cgroup_usable (char **why)
{
  char *w = NULL, *base = work_base (&w);
  bool ok = base != NULL;
  free (base);
  if (why)
    *why = w;
  else
    free (w);
  return ok;
}

bool
cgroup_devices_confined (const struct plan *p)
{
  return backend_can (p, BACKEND_CAP_CGROUP_LIMITS) && !p->privileged && host_root ();
}

void
cgroup_notice_unapplied (const struct plan *p)
{
  static bool said;
  cleanup_free char *why = NULL;
  const char *flag = cgroup_res_first_flag (&p->res);
  if (said || !backend_can (p, BACKEND_CAP_CGROUP_LIMITS) || (flag == NULL && !cgroup_devices_confined (p))
      || cgroup_usable (&why))
    return;
  said = true;
  if (flag == NULL)
    fprintf (stderr,
             "cella: %s: the container's device rules are not applied (nodev mounts still keep nodes on its "
             "root and tmpfs closed)\n",
             why);
  else
    fprintf (stderr, "cella: no writable cgroup for this user: %s is not applied (%s)\n", flag, why);
}

/* Nothing but device rules asked (a plain foreground run): the cgroup is made only where they go, which keeps
 * the cost of a start small: the one directory (v2), the cgroup2 tree (hybrid: the kernel runs its device
 * programs too, and the child can be born there, see cgroup_create_for_clone), else the v1 devices
 * hierarchy. */
static bool
devices_only (const struct plan *p)
{
  /* (a vm plan's cgroup is QEMU's, with its memory limit: cgroup_enter_limited) */
  return backend_can (p, BACKEND_CAP_CGROUP_LIMITS) && !cgroup_res_any (&p->res) && !p->res.want
         && p->res.cgroups_path == NULL;
}

bool
cgroup_wanted (const struct plan *p)
{
  if (!backend_can (p, BACKEND_CAP_CGROUP_LIMITS))
    return false;
  if (devices_only (p) && !cgroup_devices_confined (p))
    return false;
  return cgroup_usable (NULL);
}

void
cgroup_dirs_clear (struct cgroup_dirs *d)
{
  free (d->v2);
  free (d->unified);
  free (d->dev_shared);
  for (int c = 0; c < CG_V1__COUNT; c++)
    free (d->v1[c]);
  memset (d, 0, sizeof *d);
}

int
cgroup_path_of (const struct plan *p, struct cgroup_dirs *out, cella_error_t *err)
{
  cleanup_free char *why = NULL, *base = NULL, *rel = NULL;
  memset (out, 0, sizeof *out);
  base = work_base (&why);
  if (base == NULL)
    return cella_error (err, 0, "cgroup: none for this container: %s", why);
  if (cgroup_rel_path (p->res.cgroups_path, p->id, base, &rel, err) < 0)
    return -1;
  out->layout = cgroup_layout ();
  if (devices_only (p) && cgroup_devices_confined (p) && (out->layout == CGROUP_V2 || out->layout == CGROUP_HYBRID))
    {
      cleanup_free char *shared = cgroup_dev_shared_name (&p->res);
      if (shared)
        {
          char *r = xasprintf ("%s/cella/%s/%s", base, shared, p->id);
          out->dev_shared = xasprintf ("%s%s/cella/%s", cache.v2_mount, base, shared);
          free (rel);
          rel = r;
        }
    }
  if (out->layout == CGROUP_V2)
    out->v2 = xasprintf ("%s%s", cache.v2_mount, rel);
  else if (!devices_only (p) || out->layout != CGROUP_HYBRID)
    for (int c = 0; c < CG_V1__COUNT; c++)
      if (cache.v1_mount[c] && (!devices_only (p) || c == CG_DEVICES))
        out->v1[c] = xasprintf ("%s%s", cache.v1_mount[c], rel);
  if (out->layout == CGROUP_HYBRID)
    out->unified = xasprintf ("%s%s", cache.v2_mount, rel);
  return 0;
}

/* ---- creating ---------------------------------------------------------------------------------------- */

/* v1 cpuset: a new cgroup starts with empty cpus/mems and refuses tasks until they are set. */
static int
cpuset_inherit (const char *dir, cella_error_t *err)
{
  static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
  cleanup_free char *parent = xstrdup (dir);
  *strrchr (parent, '/') = '\0';
  for (size_t i = 0; i < 2; i++)
    {
      cleanup_free char *mine = cg_read (dir, files[i]), *theirs = NULL;
      if (mine && mine[0] != '\n' && mine[0] != '\0')
        continue;
      theirs = cg_read (parent, files[i]);
      if (theirs == NULL)
        return cella_error (err, errno, "cgroup: read `%s/%s`", parent, files[i]);
      if (cg_write (dir, files[i], theirs, err) < 0)
        return -1;
    }
  return 0;
}

/* mkdir every level of dir below mount; each new v1 cpuset level copies its parent's sets. */
static int
make_levels (const char *mount, const char *dir, bool cpuset, cella_error_t *err)
{
  cleanup_free char *path = xstrdup (dir);
  for (char *s = path + strlen (mount) + 1;; s++)
    {
      char save;
      s = strchrnul (s, '/');
      save = *s;
      *s = '\0';
      if (mkdir (path, 0755) < 0 && errno != EEXIST)
        return cella_error (err, errno, "cgroup: create `%s`", path);
      if (cpuset && cpuset_inherit (path, err) < 0)
        return -1;
      *s = save;
      if (save == '\0')
        break;
    }
  return 0;
}

/* v2: hand the controllers down every level from the mount to the container's parent. The intermediate levels
 * hold no process ("no internal processes"), only the leaf does. */
static int
v2_make (const char *mount, const char *dir, const struct plan_resources *r, cella_error_t *err)
{
  static const char *const ctls[] = { "memory", "pids", "cpu", "cpuset", "io", "hugetlb" };
  cleanup_free char *path = xstrdup (dir);
  if (make_levels (mount, dir, false, err) < 0)
    return -1;
  for (char *s = path + strlen (mount);;)
    {
      cleanup_free char *avail = NULL, *on = NULL;
      char save = *s;
      *s = '\0';
      avail = cg_read (*path ? path : "/", "cgroup.controllers");
      on = cg_read (*path ? path : "/", "cgroup.subtree_control");
      for (size_t i = 0; avail && on && i < sizeof ctls / sizeof ctls[0]; i++)
        {
          cleanup_free char *plus = xasprintf ("+%s", ctls[i]);
          cella_error_t e = NULL;
          if (!cg_word (avail, ctls[i]) || cg_word (on, ctls[i]))
            continue;
          if (cg_write (path, "cgroup.subtree_control", plus, &e) < 0 && cg_v2_needed (r, ctls[i]))
            {
              *err = e;
              return -1;
            }
          cella_error_free (&e);
        }
      *s = save;
      if (save == '\0')
        break;
      s = strchrnul (s + 1, '/');
      if (*s == '\0')
        break; /* the leaf itself keeps its subtree_control empty */
    }
  return 0;
}

/* Hybrid without a v1 devices hierarchy: a confined container's device filter goes to the cgroup2 tree. */
static bool
devices_in_unified (const struct cgroup_dirs *d, bool confined)
{
  return confined && d->layout == CGROUP_HYBRID && d->unified && d->v1[CG_DEVICES] == NULL;
}

static int
dirs_make (const struct cgroup_dirs *d, const struct plan_resources *r, bool confined, cella_error_t *err)
{
  if (d->layout == CGROUP_V2)
    return v2_make (cache.v2_mount, d->v2, r, err);
  for (int c = 0; c < CG_V1__COUNT; c++)
    if (d->v1[c] && make_levels (cache.v1_mount[c], d->v1[c], c == CG_CPUSET, err) < 0)
      return -1;
  if (cg_unified_used (d, r) || devices_in_unified (d, confined))
    return v2_make (cache.v2_mount, d->unified, r, err);
  return 0;
}

int
cgroup_join (const struct cgroup_dirs *d, pid_t pid, cella_error_t *err)
{
  char buf[32];
  snprintf (buf, sizeof buf, "%d", (int) pid);
  if (d->layout == CGROUP_V2)
    return cg_write (d->v2, "cgroup.procs", buf, err);
  for (int c = 0; c < CG_V1__COUNT; c++)
    if (d->v1[c] && cg_write (d->v1[c], "cgroup.procs", buf, err) < 0)
      return -1;
  if (d->unified && access (d->unified, F_OK) == 0 && cg_write (d->unified, "cgroup.procs", buf, err) < 0)
    return -1;
  return 0;
}

/* The directories made, the limits in res and p's device rules applied: ready for the container's first
 * process. */
static int
dirs_ready (const struct plan *p, const struct plan_resources *res, const struct cgroup_dirs *d, cella_error_t *err)
{
  bool confined = cgroup_devices_confined (p);
  if (dirs_make (d, res, confined, err) < 0 || cgroup_update (d, res, err) < 0)
    return -1;
  return confined ? cgroup_dev_apply (d, &p->res, err) : 0;
}

static int
enter (const struct plan *p, const struct plan_resources *res, bool limited_only, pid_t pid, cella_error_t *err)
{
  struct cgroup_dirs d;
  int r;
  if (cgroup_path_of (p, &d, err) < 0)
    return -1;
  for (int c = 0; limited_only && c < CG_V1__COUNT; c++)
    if (d.v1[c] && !cg_v2_needed (res, c == CG_BLKIO ? "io" : cg_v1_name (c)))
      {
        free (d.v1[c]);
        d.v1[c] = NULL;
      }
  /* the device rules before the move: nothing of the container runs unconfined */
  r = dirs_ready (p, res, &d, err);
  if (r == 0)
    r = cgroup_join (&d, pid, err);
  if (r < 0)
    cgroup_remove (&d, NULL);
  cgroup_dirs_clear (&d);
  return r;
}

int
cgroup_enter (const struct plan *p, pid_t pid, cella_error_t *err)
{
  return enter (p, &p->res, false, pid, err);
}

int
cgroup_enter_limited (const struct plan *p, const struct plan_resources *res, pid_t pid, cella_error_t *err)
{
  return enter (p, res, true, pid, err);
}

/* One directory of a cgroup2 tree and nothing else: v2, or a hybrid host's devices-only cgroup. */
static const char *
single_v2_dir (const struct cgroup_dirs *d)
{
  if (d->layout == CGROUP_V2)
    return d->v2;
  for (int c = 0; c < CG_V1__COUNT; c++)
    if (d->v1[c])
      return NULL;
  return d->layout == CGROUP_HYBRID ? d->unified : NULL;
}

int
cgroup_create_for_clone (const struct plan *p, bool devices_later, int *fd, cella_error_t *err)
{
  struct cgroup_dirs d;
  const char *dir;
  int r = 0;
  *fd = -1;
  if (cgroup_path_of (p, &d, err) < 0)
    return -1;
  if ((dir = single_v2_dir (&d)) != NULL)
    {
      if (devices_later)
        r = dirs_make (&d, &p->res, cgroup_devices_confined (p), err) < 0 || cgroup_update (&d, &p->res, err) < 0 ? -1
                                                                                                                  : 0;
      else
        r = dirs_ready (p, &p->res, &d, err);
      if (r == 0 && (*fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        r = cella_error (err, errno, "cgroup: open `%s`", dir);
      if (r < 0)
        cgroup_remove (&d, NULL);
    }
  cgroup_dirs_clear (&d);
  return r;
}

int
cgroup_devices_apply (const struct plan *p, int cgfd, cella_error_t *err)
{
  struct cgroup_dirs d;
  const char *dir;
  int r = 0;
  if (!cgroup_devices_confined (p))
    return 0;
  if (cgroup_path_of (p, &d, err) < 0)
    return -1;
  dir = single_v2_dir (&d);
  if (dir == NULL)
    r = cella_error (err, 0, "internal: the device rules after clone, but no single cgroup2 directory");
  else
    r = cgroup_dev_apply_v2_fd (&d, dir, cgfd, &p->res, err);
  cgroup_dirs_clear (&d);
  return r;
}

/* ---- removing ---------------------------------------------------------------------------------------- */

/* rmdir of dir, and when it is busy, of the empty cgroups below it first (a container may make its own, e.g.
 * systemd in its cgroup namespace), the deepest first. rmdir itself refuses a cgroup that holds a task or a child, so
 * nothing alive goes. -1 with errno (ENOENT: gone, which callers count as removed). */
static int
rmdir_tree (const char *dir, int depth)
{
  DIR *dp;
  struct dirent *de;
  bool any = false;
  if (rmdir (dir) == 0)
    return 0;
  if (errno != EBUSY || depth >= 32)
    return -1;
  if ((dp = opendir (dir)) == NULL)
    {
      errno = EBUSY;
      return -1;
    }
  while ((de = readdir (dp)) != NULL)
    if (de->d_type == DT_DIR && strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      {
        cleanup_free char *sub = xasprintf ("%s/%s", dir, de->d_name);
        any |= rmdir_tree (sub, depth + 1) == 0;
      }
  closedir (dp);
  if (!any)
    {
      errno = EBUSY;
      return -1;
    }
  return rmdir (dir);
}

/* The pids cgroup.procs lists in dir, on one line ("" when none: the tasks left are exiting, which
 * cgroup.procs no longer shows although rmdir still counts them). */
static char *
procs_line (const char *dir)
{
  char *t = cg_read (dir, "cgroup.procs");
  if (t == NULL)
    return xstrdup ("?");
  for (char *c = t; *c; c++)
    if (*c == '\n')
      *c = c[1] ? ' ' : '\0';
  return t;
}

/* Remove dir's cgroup, waiting up to patience_ms while it is busy: a cgroup2 directory's cgroup.events
 * says when it empties ("populated 0", polled: POLLPRI), a v1 one is asked again every 10 ms. */
static int
remove_wait (const char *dir, long long patience_ms, cella_error_t *err)
{
  long long end = now_ns () + patience_ms * 1000000LL;
  cleanup_free char *events = xasprintf ("%s/cgroup.events", dir);
  cleanup_close int efd = open (events, O_RDONLY | O_CLOEXEC);
  for (;;)
    {
      long long left;
      if (rmdir_tree (dir, 0) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY)
        return cella_error (err, errno, "cgroup: remove `%s`", dir);
      left = (end - now_ns ()) / 1000000LL;
      if (left <= 0)
        break;
      if (efd >= 0)
        {
          char buf[128];
          struct pollfd pf = { .fd = efd, .events = POLLPRI };
          /* re-read to re-arm; "populated 0" already: only a child (removed above) or a dying task left */
          ssize_t got = pread (efd, buf, sizeof buf - 1, 0);
          buf[got > 0 ? got : 0] = '\0';
          if (strstr (buf, "populated 0"))
            {
              struct timespec ts = { 0, 10 * 1000000L };
              nanosleep (&ts, NULL);
            }
          else
            poll (&pf, 1, left < 100 ? (int) left : 100);
        }
      else
        {
          struct timespec ts = { 0, 10 * 1000000L };
          nanosleep (&ts, NULL);
        }
    }
  {
    cleanup_free char *procs = procs_line (dir);
    return cella_error (err, EBUSY, "cgroup: `%s` still busy after %lld ms (processes: %s)", dir, patience_ms,
                        *procs ? procs : "none listed, exiting ones");
  }
}

/* The record of cgroups left behind: <run root>/cgroup-leftover/NAME, one directory a line, retried by
 * cgroup_sweep (the next start, `system prune`). */
static char *
leftover_dir (void)
{
  return xasprintf ("%s/cgroup-leftover", paths_run_root ());
}

static void
leftover_record (const char *const *left, size_t n)
{
  cleanup_free char *dir = leftover_dir (), *path = NULL, *text = xstrdup ("");
  const char *any = n ? left[0] : NULL, *name;
  if (any == NULL || mkdir_p (dir, 0700, NULL) < 0)
    return;
  name = strrchr (any, '/') ? strrchr (any, '/') + 1 : any;
  path = xasprintf ("%s/%s", dir, name);
  for (size_t i = 0; i < n; i++)
    {
      struct stat st;
      char *t;
      if (stat (left[i], &st) < 0)
        continue;
      /* the inode tells this cgroup from one made again at the same path (a restart, a start again) */
      t = xasprintf ("%s%llu %s\n", text, (unsigned long long) st.st_ino, left[i]);
      free (text);
      text = t;
    }
  write_file_atomic (path, text, strlen (text), 0600, NULL);
}

int
cgroup_remove_patient (const struct cgroup_dirs *d, long long patience_ms, cella_error_t *err)
{
  const char *left[CG_V1__COUNT + 2];
  size_t n = 0;
  int r = 0;
  cella_error_t e = NULL;
  if (cgroup_signal_all (d, SIGKILL, &e) < 0)
    cella_error_free (&e);
  if (d->layout == CGROUP_V2)
    {
      if (d->v2 && remove_wait (d->v2, patience_ms, err) < 0)
        left[n++] = d->v2;
    }
  else
    {
      for (int c = 0; c < CG_V1__COUNT; c++)
        /* after the first busy one, the others get a short wait: the same tasks hold them all (or none) */
        if (d->v1[c] && remove_wait (d->v1[c], n ? 50 : patience_ms, n ? NULL : err) < 0)
          left[n++] = d->v1[c];
      if (d->unified && remove_wait (d->unified, n ? 50 : patience_ms, n ? NULL : err) < 0)
        left[n++] = d->unified;
    }
  if (n)
    {
      leftover_record (left, n);
      r = -1;
    }
  return r;
}

int
cgroup_remove (const struct cgroup_dirs *d, cella_error_t *err)
{
  return cgroup_remove_patient (d, 2000, err);
}

/* The mount points of the hierarchies cella found (v1 controllers, then the v2 one): how many. */
static size_t
hierarchy_mounts (const char *mounts[CG_V1__COUNT + 1])
{
  size_t n = 0;
  for (int c = 0; c < CG_V1__COUNT; c++)
    if (cache.v1_mount[c])
      mounts[n++] = cache.v1_mount[c];
  if (cache.v2_mount)
    mounts[n++] = cache.v2_mount;
  return n;
}

/* Is path a directory of a cgroup hierarchy cella found (under one of its mounts, no `..`)? */
static bool
under_a_mount (const char *path)
{
  const char *mounts[CG_V1__COUNT + 1];
  size_t n;
  layout_probe ();
  if (path[0] != '/' || strstr (path, "/../") || strstr (path, "\n"))
    return false;
  n = hierarchy_mounts (mounts);
  for (size_t i = 0; i < n; i++)
    {
      size_t l = strlen (mounts[i]);
      if (strncmp (path, mounts[i], l) == 0 && path[l] == '/' && path[l + 1]
          && (is_fs (path, CGROUP_SUPER_MAGIC) || is_fs (path, CGROUP2_SUPER_MAGIC)))
        return true;
    }
  return false;
}

/* The recorded leftovers: each one removed when it is empty now (nothing is killed: the container is
 * gone); a record goes once all its directories did. */
static size_t
sweep_records (void)
{
  cleanup_free char *dir = leftover_dir ();
  DIR *dp = opendir (dir);
  struct dirent *de;
  size_t removed = 0;
  if (dp == NULL)
    return 0;
  while ((de = readdir (dp)) != NULL)
    {
      cleanup_free char *path = NULL, *text = NULL, *rest = xstrdup ("");
      char *save = NULL;
      bool any = false;
      if (de->d_name[0] == '.')
        continue;
      path = xasprintf ("%s/%s", dir, de->d_name);
      if (read_file (path, &text, NULL, NULL) < 0)
        continue;
      for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
        {
          char *l = strchr (line, ' '), *t;
          struct stat st;
          unsigned long long ino = strtoull (line, NULL, 10);
          /* gone already, not a cgroup, or another one made at its path since: nothing to do */
          if (l == NULL || !under_a_mount (++l) || stat (l, &st) < 0 || (unsigned long long) st.st_ino != ino)
            {
              any = true;
              continue;
            }
          if (rmdir_tree (l, 0) == 0 || errno == ENOENT)
            {
              removed++;
              any = true;
              continue;
            }
          t = xasprintf ("%s%s\n", rest, line);
          free (rest);
          rest = t;
        }
      if (*rest == '\0')
        unlink (path);
      else if (any)
        write_file_atomic (path, rest, strlen (rest), 0600, NULL);
    }
  closedir (dp);
  return removed;
}

static bool
container_id_name (const char *s)
{
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
      return false;
  return n == 64;
}

/* The container-named cgroups of top that nobody keeps and that are old enough, removed when empty; and those
 * below the parents of plain runs (devices-KEY, which stay themselves: they carry the program for the next run). */
static size_t
sweep_dir (const char *top, bool nested, bool (*keep) (const char *id, void *ud), void *ud, long long now)
{
  DIR *dp = opendir (top);
  struct dirent *de;
  size_t removed = 0;
  while (dp && (de = readdir (dp)) != NULL)
    {
      cleanup_free char *sub = NULL;
      struct stat st;
      if (de->d_type != DT_DIR)
        continue;
      if (!nested && strncmp (de->d_name, "devices-", 8) == 0)
        {
          sub = xasprintf ("%s/%s", top, de->d_name);
          removed += sweep_dir (sub, true, keep, ud, now);
          continue;
        }
      if (!container_id_name (de->d_name) || (keep && keep (de->d_name, ud)))
        continue;
      sub = xasprintf ("%s/%s", top, de->d_name);
      /* a young one may be a start under way (made, its first process not yet in it) */
      if (stat (sub, &st) < 0 || now - (long long) st.st_mtime < CGROUP_ORPHAN_MIN_AGE_S)
        continue;
      if (rmdir_tree (sub, 0) == 0)
        removed++;
    }
  if (dp)
    closedir (dp);
  return removed;
}

size_t
cgroup_sweep_leaves (const char *parent)
{
  return sweep_dir (parent, true, NULL, NULL, (long long) time (NULL));
}

size_t
cgroup_sweep (bool scan, bool (*keep) (const char *id, void *ud), void *ud)
{
  cleanup_free char *why = NULL, *base = NULL;
  const char *mounts[CG_V1__COUNT + 1];
  size_t n, removed = sweep_records ();
  long long now = (long long) time (NULL);
  if (!scan || (base = work_base (&why)) == NULL)
    return removed;
  n = hierarchy_mounts (mounts);
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *top = xasprintf ("%s%s/cella", mounts[i], base);
      removed += sweep_dir (top, false, keep, ud, now);
    }
  return removed;
}

void
cgroup_remove_plan (const struct plan *p)
{
  struct cgroup_dirs d;
  if (!backend_can (p, BACKEND_CAP_CGROUP) || cgroup_path_of (p, &d, NULL) < 0)
    return;
  cgroup_remove (&d, NULL);
  cgroup_dirs_clear (&d);
}

static bool
dirs_exist (const struct cgroup_dirs *d)
{
  if (d->layout == CGROUP_V2)
    return d->v2 && access (d->v2, F_OK) == 0;
  for (int c = 0; c < CG_V1__COUNT; c++)
    if (d->v1[c] && access (d->v1[c], F_OK) < 0)
      return false;
  return true;
}

int
cgroup_join_plan (const struct plan *p, pid_t pid, cella_error_t *err)
{
  struct cgroup_dirs d;
  int r = 0;
  if (!cgroup_wanted (p))
    return 0;
  if (cgroup_path_of (p, &d, err) < 0)
    return -1;
  if (dirs_exist (&d)) /* a container made before it had a cgroup has none to join */
    r = cgroup_join (&d, pid, err);
  cgroup_dirs_clear (&d);
  return r;
}

bool
cgroup_plain_leaf (const struct plan *p, char *buf, size_t n)
{
  struct cgroup_dirs d;
  const char *dir;
  bool ok = false;
  if (!cgroup_wanted (p) || cgroup_path_of (p, &d, NULL) < 0)
    return false;
  dir = single_v2_dir (&d);
  if (d.dev_shared && dir && strlen (dir) < n)
    {
      memcpy (buf, dir, strlen (dir) + 1);
      ok = true;
    }
  cgroup_dirs_clear (&d);
  return ok;
}

bool
cgroup_finish (const struct plan *p)
{
  struct cgroup_dirs d;
  bool oom;
  if (!cgroup_wanted (p) || cgroup_path_of (p, &d, NULL) < 0)
    return false;
  oom = cgroup_oom_kills (&d) > 0;
  cgroup_remove (&d, NULL);
  cgroup_dirs_clear (&d);
  return oom;
}
