#define _GNU_SOURCE
#include "idmap.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
idmap_find_range (const char *text, const char *name, unsigned id, uint32_t *start, uint32_t *count)
{
  char idbuf[16];
  snprintf (idbuf, sizeof idbuf, "%u", id);
  for (const char *line = text; line && *line;)
    {
      const char *nl = strchr (line, '\n');
      size_t len = nl ? (size_t) (nl - line) : strlen (line);
      char buf[256], *c1, *c2;
      if (len < sizeof buf)
        {
          memcpy (buf, line, len);
          buf[len] = '\0';
          c1 = strchr (buf, ':');
          c2 = c1 ? strchr (c1 + 1, ':') : NULL;
          if (c1 && c2)
            {
              long long s, n;
              *c1 = *c2 = '\0';
              s = parse_uint (c1 + 1, UINT32_MAX);
              n = parse_uint (c2 + 1, UINT32_MAX);
              if (s >= 0 && n > 0 && ((name && strcmp (buf, name) == 0) || strcmp (buf, idbuf) == 0))
                {
                  *start = s;
                  *count = n;
                  return 0;
                }
            }
        }
      line = nl ? nl + 1 : NULL;
    }
  return 1;
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
