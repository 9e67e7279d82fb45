#define _GNU_SOURCE
#include "idmap.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct range_query {
  const char *name;
  char id[16];
  bool found;
  uint32_t start, count;
};

static int
range_match (char **f, size_t n, void *ud)
{
  struct range_query *q = ud;
  long long s, c;
  if (n < 3 || !((q->name && strcmp (f[0], q->name) == 0) || strcmp (f[0], q->id) == 0))
    return 0;
  s = parse_uint (f[1], UINT32_MAX);
  c = parse_uint (f[2], UINT32_MAX);
  if (s < 0 || c <= 0)
    return 0;
  q->found = true;
  q->start = s;
  q->count = c;
  return 1;
}

int
idmap_find_range (const char *text, const char *name, unsigned id, uint32_t *start, uint32_t *count)
{
  cleanup_free char *copy = xstrdup (text);
  struct range_query q = { .name = name };
  snprintf (q.id, sizeof q.id, "%u", id);
  colon_db_each (copy, range_match, &q);
  if (!q.found)
    return 1;
  *start = q.start;
  *count = q.count;
  return 0;
}

static void
add_map (struct id_map **m, size_t *n, uint32_t inside, uint32_t outside, uint32_t count)
{
  *m = xrealloc (*m, (*n + 1) * sizeof **m);
  (*m)[*n] = (struct id_map){ inside, outside, count };
  (*n)++;
}

static bool
sub_range (const char *file, const char *name, unsigned id, uint32_t *start, uint32_t *count)
{
  cleanup_free char *text = NULL;
  if (read_file (file, &text, NULL, NULL) < 0)
    return false;
  return idmap_find_range (text, name, id, start, count) == 0;
}

int
idmap_default (struct plan *p, cella_error_t *err)
{
  uid_t uid = geteuid ();
  gid_t gid = getegid ();
  cleanup_free char *name = host_passwd_field (uid, 0);
  uint32_t us, uc, gs, gc;
  bool helpers = access ("/usr/bin/newuidmap", X_OK) == 0 && access ("/usr/bin/newgidmap", X_OK) == 0;
  (void) err;

  add_map (&p->uid_map, &p->nuid_map, 0, uid, 1);
  add_map (&p->gid_map, &p->ngid_map, 0, gid, 1);
  if (helpers && sub_range ("/etc/subuid", name, uid, &us, &uc) && sub_range ("/etc/subgid", name, uid, &gs, &gc))
    {
      add_map (&p->uid_map, &p->nuid_map, 1, us, uc);
      add_map (&p->gid_map, &p->ngid_map, 1, gs, gc);
    }
  return 0;
}
