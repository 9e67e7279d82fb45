/* An OCI `cgroup` (or `cgroup2`) mount: the container's own cgroups at the target, as runc and
 * crun make it, never the root of the host's hierarchies (which would show every other
 * container's cgroup, and values `update` changes in the container's own would not be where
 * the container looks).
 *
 * In the child, before pivot_root: the host's hierarchies are still in view at /sys/fs/cgroup,
 * and /proc/self/cgroup says where the parent put us.
 *   v2 only: the container's directory of the cgroup2 tree, bound at the target;
 *   v1 and hybrid: a tmpfs at the target, holding one bind per hierarchy (its entry in the
 *     host's /sys/fs/cgroup, at the container's path in that hierarchy) and the host's
 *     symlinks (cpu → cpu,cpuacct);
 *   with a cgroup namespace of its own, a fresh mount of each hierarchy instead of the bind:
 *     its root is the namespace's, which is the container's cgroup (runc and crun do this). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define HOST_CGROUP "/sys/fs/cgroup"

/* One cgroup mount of the host's under /sys/fs/cgroup. */
struct cg_mount {
  char *name;      /* its entry under /sys/fs/cgroup; "" for /sys/fs/cgroup itself */
  char *root;      /* the mount's root in its hierarchy (mountinfo field 4) */
  char *superopts; /* "rw,cpu,cpuacct", "rw,xattr,name=systemd", "rw,nsdelegate" */
  bool v2;
};

static void
cg_mounts_free (struct cg_mount *m, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (m[i].name);
      free (m[i].root);
      free (m[i].superopts);
    }
  free (m);
}

/* The cgroup and cgroup2 mounts at /sys/fs/cgroup and directly below it. */
static int
host_cg_mounts (struct cg_mount **out, size_t *n, cella_error_t *err)
{
  cleanup_free char *text = NULL;
  char *save = NULL;
  *out = NULL;
  *n = 0;
  if (read_file ("/proc/self/mountinfo", &text, NULL, err) < 0)
    return -1;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char root[4096], mnt[4096], fstype[64], superopts[1024];
      const char *dash = strstr (line, " - "), *name;
      if (dash == NULL || sscanf (line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2
          || sscanf (dash + 3, "%63s %*s %1023s", fstype, superopts) != 2)
        continue;
      if (strcmp (fstype, "cgroup") != 0 && strcmp (fstype, "cgroup2") != 0)
        continue;
      if (strcmp (mnt, HOST_CGROUP) == 0)
        name = "";
      else if (strncmp (mnt, HOST_CGROUP "/", sizeof HOST_CGROUP) == 0 && !strchr (mnt + sizeof HOST_CGROUP, '/'))
        name = mnt + sizeof HOST_CGROUP;
      else
        continue;
      *out = xrealloc (*out, (*n + 1) * sizeof **out);
      (*out)[*n] = (struct cg_mount){ .name = xstrdup (name),
                                      .root = xstrdup (root),
                                      .superopts = xstrdup (superopts),
                                      .v2 = strcmp (fstype, "cgroup2") == 0 };
      (*n)++;
    }
  return 0;
}

static bool
has_word (const char *list, const char *word)
{
  size_t n = strlen (word);
  for (const char *s = list; s; s = strchr (s, ','), s = s ? s + 1 : NULL)
    if (strncmp (s, word, n) == 0 && (s[n] == ',' || s[n] == '\0'))
      return true;
  return false;
}

/* Our path in the hierarchy mounted as m, from /proc/self/cgroup ("ID:CONTROLLERS:PATH"; v2's
 * CONTROLLERS is empty; a v1 hierarchy's are all in its superblock options). NULL: not found. */
static char *
own_path (const char *self, const struct cg_mount *m)
{
  cleanup_free char *copy = xstrdup (self);
  char *save = NULL;
  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *c1 = strchr (line, ':'), *c2 = c1 ? strchr (c1 + 1, ':') : NULL;
      bool match = true;
      if (c2 == NULL)
        continue;
      *c2 = '\0';
      if (m->v2)
        match = c1[1] == '\0';
      else if (c1[1] == '\0')
        match = false;
      else
        for (char *s = c1 + 1, *e; s && match; s = e ? e + 1 : NULL)
          {
            e = strchr (s, ',');
            if (e)
              *e = '\0';
            match = has_word (m->superopts, s);
          }
      if (match)
        return xstrdup (c2 + 1);
    }
  return NULL;
}

/* A fresh mount of hierarchy m (in our cgroup namespace: rooted at our cgroup). */
static int
fresh_mount (const struct cg_mount *m, unsigned long long attrs, cella_error_t *err)
{
  const char **opts = NULL;
  cleanup_free char *copy = xstrdup (m->superopts);
  char *save = NULL;
  size_t n = 0;
  int fd;
  if (m->v2)
    return mount_new_fs ("cgroup2", NULL, attrs, err);
  opts = xzalloc ((strlen (m->superopts) + 2) * sizeof *opts);
  for (char *w = strtok_r (copy, ",", &save); w; w = strtok_r (NULL, ",", &save))
    {
      char *eq = strchr (w, '=');
      /* ro/rw are mount flags; a release agent is for the initial namespaces only */
      if (strcmp (w, "rw") == 0 || strcmp (w, "ro") == 0 || strncmp (w, "release_agent=", 14) == 0)
        continue;
      if (eq)
        *eq = '\0';
      opts[n++] = w;
      opts[n++] = eq ? eq + 1 : NULL;
    }
  opts[n] = NULL;
  fd = mount_new_fs ("cgroup", opts, attrs, err);
  free (opts);
  return fd;
}

/* Hierarchy m as a detached mount: our own part of it. */
static int
hierarchy_mount (const struct cg_mount *m, const char *self, bool own_ns, unsigned long long attrs, cella_error_t *err)
{
  cleanup_free char *path = NULL, *src = NULL;
  size_t rl = strlen (m->root);
  int fd;
  if (own_ns)
    return fresh_mount (m, attrs, err);
  path = own_path (self, m);
  if (path == NULL)
    return cella_error (err, 0, "cgroup mount: no line for the hierarchy at `%s/%s` in /proc/self/cgroup", HOST_CGROUP,
                        m->name);
  /* a host that is itself a container may see its hierarchies from below their root */
  if (strcmp (m->root, "/") != 0 && strncmp (path, m->root, rl) == 0 && (path[rl] == '/' || path[rl] == '\0'))
    memmove (path, path + rl, strlen (path + rl) + 1);
  src = xasprintf ("%s%s%s%s", HOST_CGROUP, *m->name ? "/" : "", m->name, strcmp (path, "/") == 0 ? "" : path);
  fd = open_tree (AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "cgroup mount: clone `%s`", src);
  if (mount_set_attr (fd, attrs, false, src, err) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* The host's symlinks under /sys/fs/cgroup (cpu → cpu,cpuacct), made again in tofd. */
static int
copy_links (int tofd, cella_error_t *err)
{
  DIR *d = opendir (HOST_CGROUP);
  struct dirent *e;
  int r = 0;
  if (d == NULL)
    return 0;
  while (r == 0 && (e = readdir (d)) != NULL)
    {
      char link[256];
      ssize_t n;
      if (e->d_type != DT_LNK || (n = readlinkat (dirfd (d), e->d_name, link, sizeof link - 1)) < 0)
        continue;
      link[n] = '\0';
      if (symlinkat (link, tofd, e->d_name) < 0)
        r = cella_error (err, errno, "cgroup mount: symlink `%s`", e->d_name);
    }
  closedir (d);
  return r;
}

static int
mount_split (struct mount_ctx *c, const struct op *op, int target, const struct cg_mount *ms, size_t n,
             const char *self, bool own_ns, unsigned long long attrs, cella_error_t *err)
{
  static const char *const tmpfs_opts[] = { "mode", "755", NULL };
  cleanup_close int tmp = mount_new_fs ("tmpfs", tmpfs_opts, attrs & ~(unsigned long long) MOUNT_ATTR_RDONLY, err);
  (void) c;
  if (tmp < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_close int dir = -1, m = -1;
      if (*ms[i].name == '\0')
        continue;
      if (mkdirat (tmp, ms[i].name, 0755) < 0
          || (dir = openat (tmp, ms[i].name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return cella_error (err, errno, "cgroup mount: mkdir `%s`", ms[i].name);
      m = hierarchy_mount (&ms[i], self, own_ns, attrs, err);
      if (m < 0 || mount_attach (m, dir, "cgroup", ms[i].name, err) < 0)
        return -1;
    }
  if (copy_links (tmp, err) < 0)
    return -1;
  if ((attrs & MOUNT_ATTR_RDONLY) && mount_set_attr (tmp, MOUNT_ATTR_RDONLY, false, op->target, err) < 0)
    return -1;
  return mount_attach (tmp, target, "tmpfs", op->target, err);
}

int
mount_cgroups (struct mount_ctx *c, const struct op *op, cella_error_t *err)
{
  unsigned long long attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
                             | ((op->flags & REMOUNT_RDONLY) ? MOUNT_ATTR_RDONLY : 0);
  bool own_ns = (c->plan->ns & PLAN_NS_CGROUP) || c->plan->ns_path[5];
  struct cg_mount *ms = NULL;
  cleanup_free char *self = NULL;
  cleanup_close int target = -1, m = -1;
  size_t n = 0;
  int r = -1;
  if (host_cg_mounts (&ms, &n, err) < 0)
    return -1;
  if (n == 0)
    {
      cg_mounts_free (ms, n);
      return 0; /* the host has no cgroup file system mounted: nothing to show */
    }
  if (read_file ("/proc/self/cgroup", &self, NULL, err) < 0)
    goto out;
  target = mount_open_fs_target (c->rootfd, op->target, err);
  if (target < 0)
    goto out;
  if (n == 1 && *ms[0].name == '\0' && ms[0].v2)
    {
      m = hierarchy_mount (&ms[0], self, own_ns, attrs, err);
      r = m < 0 ? -1 : mount_attach (m, target, "cgroup2", op->target, err);
    }
  else
    r = mount_split (c, op, target, ms, n, self, own_ns, attrs, err);
  if (r == 0)
    r = mount_set_propagation (c->rootfd, op->target, op->propagation, err);
out:
  cg_mounts_free (ms, n);
  return r;
}
