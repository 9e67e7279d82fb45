#define _GNU_SOURCE
#include "idmap.h"

#include <stdio.h>
#include <string.h>

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

void
idmap_from_facts (struct plan *p, const struct host_facts *f)
{
  add_map (&p->uid_map, &p->nuid_map, 0, f->euid, 1);
  add_map (&p->gid_map, &p->ngid_map, 0, f->egid, 1);
  if (f->subid_found)
    {
      add_map (&p->uid_map, &p->nuid_map, 1, f->subuid_start, f->subuid_count);
      add_map (&p->gid_map, &p->ngid_map, 1, f->subgid_start, f->subgid_count);
    }
}

void
host_facts_free (struct host_facts *f)
{
  free (f->ns_why);
  free (f->proot_path);
  free (f->proot_why);
  free (f->vm_kernel);
  free (f->vm_kernel_release);
  free (f->vm_why);
  free (f->kvm_why);
  free (f->network_extra_missing);
  memset (f, 0, sizeof *f);
}
