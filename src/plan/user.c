/* --user resolution against the container's own /etc/passwd and /etc/group. */
#define _GNU_SOURCE
#include "build.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Read a colon-separated database; calls fn for each line split into fields. Missing file: 0. */
static int
db_each (const struct root_view *root, const char *path, int (*fn) (char **f, size_t n, void *ud), void *ud,
         cella_error_t *err)
{
  cleanup_close int fd = root_view_openat (root, path, O_RDONLY);
  cleanup_free char *buf = NULL;
  if (fd < 0)
    return errno == ENOENT ? 0 : cella_error (err, errno, "open `/%s` in the container", path);
  if (read_all_fd (fd, &buf, NULL, err) < 0)
    return -1;
  colon_db_each (buf, fn, ud);
  return 0;
}

struct pw_query {
  const char *name; /* or NULL to match uid */
  long long uid;
  bool found;
  uid_t r_uid;
  gid_t r_gid;
  char *user_name, *home;
};

static int
pw_match (char **f, size_t n, void *ud)
{
  struct pw_query *q = ud;
  long long uid, gid;
  if (n < 7)
    return 0;
  uid = parse_uint (f[2], UINT32_MAX);
  gid = parse_uint (f[3], UINT32_MAX);
  if (uid < 0 || gid < 0)
    return 0;
  if (q->name ? strcmp (f[0], q->name) != 0 : uid != q->uid)
    return 0;
  q->found = true;
  q->r_uid = uid;
  q->r_gid = gid;
  q->user_name = xstrdup (f[0]);
  q->home = xstrdup (f[5]);
  return 1;
}

struct gr_query {
  const char *name; /* group to find by name (for uid:group) */
  bool found;
  gid_t gid;
  const char *member; /* collect supplementary groups of this user */
  gid_t *groups;
  size_t ngroups;
};

static int
gr_match (char **f, size_t n, void *ud)
{
  struct gr_query *q = ud;
  long long gid;
  if (n < 4 || (gid = parse_uint (f[2], UINT32_MAX)) < 0)
    return 0;
  if (q->name && !q->found && strcmp (f[0], q->name) == 0)
    {
      q->found = true;
      q->gid = gid;
    }
  if (q->member)
    {
      cleanup_free char *members = xstrdup (f[3]);
      char *save = NULL;
      for (char *m = strtok_r (members, ",", &save); m; m = strtok_r (NULL, ",", &save))
        if (strcmp (m, q->member) == 0)
          {
            q->groups = xrealloc (q->groups, (q->ngroups + 1) * sizeof (gid_t));
            q->groups[q->ngroups++] = gid;
          }
    }
  return 0;
}

int
user_resolve (int rootfd, const char *spec, uid_t *uid, gid_t *gid, gid_t **groups, size_t *ngroups, char **home,
              cella_error_t *err)
{
  struct root_view v = { .fds = &rootfd, .n = 1 };
  return user_resolve_view (&v, spec, uid, gid, groups, ngroups, home, err);
}

int
user_resolve_view (const struct root_view *root, const char *spec, uid_t *uid, gid_t *gid, gid_t **groups,
                   size_t *ngroups, char **home, cella_error_t *err)
{
  cleanup_free char *u = xstrdup (spec);
  char *g = strchr (u, ':');
  struct pw_query pq = { .uid = -1 };
  struct gr_query gq = { 0 };
  long long n;

  if (g)
    *g++ = '\0';
  if (*u == '\0')
    return cella_error (err, 0, "user `%s`: empty user name", spec);
  n = parse_uint (u, UINT32_MAX - 1);
  if (n >= 0)
    pq.uid = n;
  else
    pq.name = u;
  if (db_each (root, "etc/passwd", pw_match, &pq, err) < 0)
    return -1;
  if (!pq.found && pq.name)
    return cella_error (err, 0, "user `%s`: no such user in the container's /etc/passwd", spec);
  *uid = pq.found ? pq.r_uid : (uid_t) n;
  *gid = pq.found ? pq.r_gid : 0;
  if (g)
    {
      if (*g == '\0')
        {
          free (pq.user_name);
          free (pq.home);
          return cella_error (err, 0, "user `%s`: empty group name", spec);
        }
      n = parse_uint (g, UINT32_MAX - 1);
      if (n < 0)
        gq.name = g;
      else
        *gid = n;
    }
  gq.member = pq.user_name;
  if (db_each (root, "etc/group", gr_match, &gq, err) < 0)
    {
      free (pq.user_name);
      free (pq.home);
      free (gq.groups);
      return -1;
    }
  free (pq.user_name);
  if (gq.name && !gq.found)
    {
      free (gq.groups);
      free (pq.home);
      return cella_error (err, 0, "user `%s`: no such group `%s` in the container's /etc/group", spec, gq.name);
    }
  if (gq.name)
    *gid = gq.gid;
  *groups = gq.groups;
  *ngroups = gq.ngroups;
  *home = pq.home ? pq.home : xstrdup ("/");
  return 0;
}
