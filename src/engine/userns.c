/* --userns: the mode's syntax, and --userns=auto's allocator. Each allocation is a file
 * $data/userns/<container id> ("UID GID SIZE PID START"), written under $data/userns/.lock; an
 * allocation is in use while its container's directory exists or, before that (a create under
 * way, or a foreground run that keeps no directory), while the process that made it lives. A
 * record of neither is reclaimed by the next allocation, so a crash leaks no ids for good. */
#define _GNU_SOURCE
#include "userns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "../util/paths.h"

int
userns_parse (const char *s, struct userns_spec *out, cella_error_t *err)
{
  out->mode = USERNS_HOST;
  out->size = USERNS_DEFAULT_SIZE;
  if (s == NULL || *s == '\0' || strcmp (s, "host") == 0)
    return 0;
  if (strcmp (s, "keep-id") == 0)
    {
      out->mode = USERNS_KEEP_ID;
      return 0;
    }
  if (has_prefix (s, "keep-id:"))
    return cella_error (err, 0,
                        "--userns %s: keep-id takes no options for a container run by root (its ids are the "
                        "host's; uid= and gid= are for rootless podman)",
                        s);
  if (strcmp (s, "auto") != 0 && !has_prefix (s, "auto:"))
    return cella_error (err, 0, "--userns `%s`: unknown mode (expected host, auto[:size=N] or keep-id)", s);
  out->mode = USERNS_AUTO;
  if (s[4] == ':')
    {
      cleanup_free char *opts = xstrdup (s + 5);
      char *save = NULL;
      for (char *o = strtok_r (opts, ",", &save); o; o = strtok_r (NULL, ",", &save))
        {
          long long n;
          if (!has_prefix (o, "size="))
            return cella_error (err, 0, "--userns %s: unknown option `%s` (auto takes size=N)", s, o);
          n = parse_uint (o + 5, UINT32_MAX);
          if (n <= 0)
            return cella_error (err, 0, "--userns %s: size must be a number of ids from 1 to %u", s, UINT32_MAX);
          out->size = (uint32_t) n;
        }
    }
  return 0;
}

/* ---- the pool and first fit: pure ---- */

struct pool_scan {
  struct id_range *r;
  size_t n;
  bool own_overlapped;
  char *overlapper;
};

static int
pool_line (char **f, size_t n, void *ud)
{
  struct pool_scan *q = ud;
  long long s, c;
  if (n < 3 || (s = parse_uint (f[1], UINT32_MAX)) < 0 || (c = parse_uint (f[2], UINT32_MAX)) <= 0)
    return 0;
  if (strcmp (f[0], USERNS_SUBID_USER) == 0)
    {
      q->r = xrealloc (q->r, (q->n + 1) * sizeof *q->r);
      q->r[q->n++] = (struct id_range){ (uint32_t) s, (uint32_t) c };
    }
  else if ((unsigned long long) s < (unsigned long long) USERNS_OWN_START + USERNS_OWN_COUNT
           && (unsigned long long) s + (unsigned long long) c > USERNS_OWN_START && !q->own_overlapped)
    {
      q->own_overlapped = true;
      q->overlapper = xstrdup (f[0]);
    }
  return 0;
}

size_t
userns_pool (const char *subid_text, struct id_range **out, char **why)
{
  cleanup_free char *copy = xstrdup (subid_text ? subid_text : "");
  struct pool_scan q = { 0 };
  colon_db_each (copy, pool_line, &q);
  *out = NULL;
  if (why)
    *why = NULL;
  if (q.n)
    {
      free (q.overlapper);
      *out = q.r;
      return q.n;
    }
  if (q.own_overlapped)
    {
      if (why)
        *why = xasprintf ("cella's own range %u-%u overlaps the subordinate ids of `%s`", USERNS_OWN_START,
                          USERNS_OWN_START + USERNS_OWN_COUNT - 1, q.overlapper);
      free (q.overlapper);
      return 0;
    }
  *out = xmalloc (sizeof **out);
  (*out)[0] = (struct id_range){ USERNS_OWN_START, USERNS_OWN_COUNT };
  return 1;
}

int
userns_pick (const struct id_range *pool, size_t npool, const struct id_range *used, size_t nused, uint32_t size,
             uint32_t *start)
{
  for (size_t i = 0; i < npool; i++)
    {
      unsigned long long cand = pool[i].start, end = (unsigned long long) pool[i].start + pool[i].count;
      bool moved = true;
      while (moved && cand + size <= end)
        {
          moved = false;
          for (size_t j = 0; j < nused; j++)
            {
              unsigned long long us = used[j].start, ue = us + used[j].count;
              if (us < cand + size && ue > cand)
                {
                  cand = ue;
                  moved = true;
                }
            }
        }
      if (cand + size <= end)
        {
          *start = (uint32_t) cand;
          return 0;
        }
    }
  return -1;
}

/* ---- the records ---- */

struct record {
  struct id_range uid, gid;
};

static char *
records_dir (void)
{
  return xasprintf ("%s/userns", paths_data_root ());
}

static bool
is_id (const char *s)
{
  size_t n = strspn (s, "0123456789abcdef");
  return n == 64 && s[n] == '\0';
}

/* A record still in use: its container exists, or its maker runs. Else it is removed. */
static bool
record_read_live (int dfd, const char *id, struct record *out)
{
  cleanup_free char *text = NULL, *cdir = xasprintf ("%s/containers/%s", paths_data_root (), id);
  unsigned u, g, n, pid;
  unsigned long long start;
  struct stat st;
  cleanup_close int fd = openat (dfd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || read_all_fd (fd, &text, NULL, NULL) < 0
      || sscanf (text, "%u %u %u %u %llu", &u, &g, &n, &pid, &start) != 5)
    return false; /* written by rename, so never half: not one of ours */
  out->uid = (struct id_range){ u, n };
  out->gid = (struct id_range){ g, n };
  if ((stat (cdir, &st) == 0 && S_ISDIR (st.st_mode)) || proc_alive ((pid_t) pid, start))
    return true;
  unlinkat (dfd, id, 0);
  return false;
}

/* Every live record but `id`'s own (a plan made again for the same id replaces it). Under the
 * lock (`locked`), a temporary file is a writer's that died before its rename: removed. */
static size_t
records_live (const char *dir, const char *id, bool locked, struct record **out)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  size_t n = 0;
  *out = NULL;
  while (d && (e = readdir (d)) != NULL)
    {
      struct record r;
      if (locked && strspn (e->d_name, "0123456789abcdef") == 64 && has_prefix (e->d_name + 64, ".tmp."))
        unlinkat (dirfd (d), e->d_name, 0);
      if (!is_id (e->d_name) || strcmp (e->d_name, id) == 0 || !record_read_live (dirfd (d), e->d_name, &r))
        continue;
      *out = xrealloc (*out, (n + 1) * sizeof **out);
      (*out)[n++] = r;
    }
  if (d)
    closedir (d);
  return n;
}

/* One side (uid or gid): the pool from `file`, the ids that records leave free. */
static int
pick_side (const char *file, const struct record *recs, size_t nrecs, bool uid_side, uint32_t size, uint32_t *start,
           cella_error_t *err)
{
  cleanup_free char *text = NULL, *why = NULL;
  cleanup_free struct id_range *pool = NULL, *used = xmalloc ((nrecs + 1) * sizeof *used);
  size_t npool;
  if (read_file (file, &text, NULL, NULL) < 0)
    text = NULL; /* no file: cella's own range */
  npool = userns_pool (text, &pool, &why);
  if (npool == 0)
    return cella_error (err, 0,
                        "--userns auto: no subordinate ids to give containers (%s): add a line "
                        "`" USERNS_SUBID_USER ":START:COUNT` with ids nobody else uses to /etc/subuid and /etc/subgid",
                        why ? why : file);
  for (size_t i = 0; i < nrecs; i++)
    used[i] = uid_side ? recs[i].uid : recs[i].gid;
  if (userns_pick (pool, npool, used, nrecs, size, start) < 0)
    return cella_error (err, 0,
                        "--userns auto: no free range of %u ids left in %s (%zu containers hold ranges; give "
                        "`" USERNS_SUBID_USER "` more ids there, or ask for a smaller size=)",
                        size, file, nrecs);
  return 0;
}

int
userns_allocate (const char *id, uint32_t size, bool record, uint32_t *uid, uint32_t *gid, cella_error_t *err)
{
  cleanup_free char *dir = records_dir (), *lockp = xasprintf ("%s/.lock", dir), *path = NULL, *text = NULL;
  cleanup_free struct record *recs = NULL;
  cleanup_close int lock = -1;
  size_t n;
  if (!is_id (id))
    return cella_error (err, 0, "--userns auto: `%s` is not a container id", id);
  if (record)
    {
      if (mkdir_p (dir, 0700, err) < 0)
        return cella_error_wrap (err, "--userns auto");
      lock = open (lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (lock < 0 || flock (lock, LOCK_EX) < 0)
        return cella_error (err, errno, "--userns auto: lock `%s`", lockp);
    }
  n = records_live (dir, id, record, &recs);
  if (pick_side ("/etc/subuid", recs, n, true, size, uid, err) < 0
      || pick_side ("/etc/subgid", recs, n, false, size, gid, err) < 0)
    return -1;
  if (!record)
    return 0;
  path = xasprintf ("%s/%s", dir, id);
  text = xasprintf ("%u %u %u %d %llu\n", *uid, *gid, size, (int) getpid (), proc_start_time (getpid ()));
  if (write_file_atomic (path, text, strlen (text), 0600, err) < 0)
    return cella_error_wrap (err, "--userns auto: record the range");
  return 0;
}

void
userns_release (const char *id)
{
  cleanup_free char *dir = records_dir (), *path = NULL;
  if (id == NULL || !is_id (id))
    return;
  path = xasprintf ("%s/%s", dir, id);
  unlink (path);
}
