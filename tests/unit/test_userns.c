/* Unit tests for --userns (src/engine/userns.c): the mode's syntax, the pool read from
 * /etc/subuid-style text, first fit, and the allocations recorded under a data root of the
 * test's own (disjoint ranges, release, a dead maker's record reclaimed). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/userns.h"
#include "tap.h"

static void
test_parse (void)
{
  static const struct {
    const char *s;
    enum userns_mode mode;
    uint32_t size;
  } ok[] = {
    { NULL, USERNS_HOST, USERNS_DEFAULT_SIZE },   { "", USERNS_HOST, USERNS_DEFAULT_SIZE },
    { "host", USERNS_HOST, USERNS_DEFAULT_SIZE }, { "auto", USERNS_AUTO, 65536 },
    { "auto:size=1000", USERNS_AUTO, 1000 },      { "keep-id", USERNS_KEEP_ID, USERNS_DEFAULT_SIZE },
  };
  static const struct {
    const char *s, *msg;
  } bad[] = {
    { "private", "--userns `private`: unknown mode (expected host, auto[:size=N] or keep-id)" },
    { "auto:size=0", "--userns auto:size=0: size must be a number of ids from 1 to 4294967295" },
    { "auto:size=lots", "--userns auto:size=lots: size must be a number of ids from 1 to 4294967295" },
    { "auto:uidmapping=0:1:2",
      "--userns auto:uidmapping=0:1:2: unknown option `uidmapping=0:1:2` (auto takes size=N)" },
    { "keep-id:uid=5", "--userns keep-id:uid=5: keep-id takes no options for a container run by root" },
    { "autox", "--userns `autox`: unknown mode" },
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    {
      struct userns_spec s;
      cella_error_t err = NULL;
      int r = userns_parse (ok[i].s, &s, &err);
      CHECK (r == 0 && s.mode == ok[i].mode && s.size == ok[i].size, "--userns %s", ok[i].s ? ok[i].s : "(none)");
      cella_error_free (&err);
    }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      struct userns_spec s;
      cella_error_t err = NULL;
      int r = userns_parse (bad[i].s, &s, &err);
      bool good = r < 0 && err && strncmp (err->msg, bad[i].msg, strlen (bad[i].msg)) == 0;
      CHECK (good, "--userns %s refused", bad[i].s);
      if (!good)
        printf ("#   got: %s\n", err ? err->msg : "(no error)");
      cella_error_free (&err);
    }
}

static void
test_pool (void)
{
  struct id_range *r = NULL;
  char *why = NULL;
  size_t n = userns_pool ("alice:100000:65536\ncontainers:200000:1000\n# x\ncontainers:500000:70000\n", &r, &why);
  CHECK (n == 2 && r[0].start == 200000 && r[0].count == 1000 && r[1].start == 500000 && r[1].count == 70000,
         "the `containers` lines, in order");
  free (r);
  n = userns_pool ("alice:100000:65536\n", &r, &why);
  CHECK (n == 1 && r[0].start == USERNS_OWN_START && r[0].count == USERNS_OWN_COUNT,
         "no `containers` line: cella's own range");
  free (r);
  n = userns_pool (NULL, &r, &why);
  CHECK (n == 1 && r[0].start == USERNS_OWN_START, "no file: cella's own range");
  free (r);
  n = userns_pool ("alice:100000:65536\nbob:3000000000:100\n", &r, &why);
  CHECK (n == 0 && r == NULL && why && strstr (why, "`bob`"), "a line inside cella's range: no pool, and why (%s)",
         why ? why : "");
  free (why);
  n = userns_pool ("bob:2147483000:648\n", &r, &why);
  CHECK (n == 1, "a line that ends where cella's range starts does not overlap it");
  free (r);
  n = userns_pool ("bob:2147483000:649\n", &r, &why);
  CHECK (n == 0, "one id into cella's range overlaps it");
  free (why);
}

static void
test_pick (void)
{
  const struct id_range pool[] = { { 1000, 300 }, { 5000, 1000 } };
  const struct id_range used[] = { { 1000, 100 }, { 1150, 50 }, { 5000, 10 } };
  uint32_t s = 0;
  CHECK (userns_pick (pool, 2, NULL, 0, 100, &s) == 0 && s == 1000, "nothing used: the pool's start");
  CHECK (userns_pick (pool, 2, used, 3, 50, &s) == 0 && s == 1100, "first fit: the gap between two ranges");
  CHECK (userns_pick (pool, 2, used, 3, 51, &s) == 0 && s == 1200, "a gap one id too small is skipped");
  CHECK (userns_pick (pool, 2, used, 3, 100, &s) == 0 && s == 1200, "up to the range's end exactly");
  CHECK (userns_pick (pool, 2, used, 3, 101, &s) == 0 && s == 5010, "the next range of the pool");
  CHECK (userns_pick (pool, 2, used, 3, 991, &s) < 0, "no room anywhere");
  {
    const struct id_range top[] = { { 4294967295u - 100, 100 } };
    CHECK (userns_pick (top, 1, NULL, 0, 100, &s) == 0 && s == 4294967195u, "the top of the id space, no overflow");
    CHECK (userns_pick (top, 1, NULL, 0, 101, &s) < 0, "past the top: none");
  }
  {
    /* used ranges in any order, overlapping each other */
    const struct id_range messy[] = { { 1200, 20 }, { 1000, 150 }, { 1100, 120 } };
    CHECK (userns_pick (pool, 2, messy, 3, 10, &s) == 0 && s == 1220, "unordered, overlapping used ranges");
  }
}

static void
test_records (void)
{
  char dir[] = "/tmp/cella-unit-userns.XXXXXX";
  const char *a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  const char *b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  const char *c = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
  uint32_t ua, ga, ub, gb, uc, gc, ud, gd;
  cella_error_t err = NULL;
  char *path;
  FILE *f;
  if (mkdtemp (dir) == NULL)
    {
      CHECK (false, "mkdtemp");
      return;
    }
  setenv ("CELLA_ROOT", dir, 1);
  CHECK (userns_allocate (a, 65536, true, &ua, &ga, &err) == 0, "a first range");
  CHECK (userns_allocate (b, 65536, true, &ub, &gb, &err) == 0, "a second range");
  CHECK (ub >= ua + 65536 || ua >= ub + 65536, "disjoint uid ranges (%u, %u)", ua, ub);
  CHECK (gb >= ga + 65536 || ga >= gb + 65536, "disjoint gid ranges (%u, %u)", ga, gb);
  CHECK (userns_allocate (c, 10, false, &uc, &gc, &err) == 0 && uc != ua && uc != ub, "a dry run avoids both");
  path = xasprintf ("%s/userns/%s", dir, c);
  CHECK (access (path, F_OK) < 0, "a dry run records nothing");
  free (path);
  userns_release (a);
  CHECK (userns_allocate (c, 65536, true, &uc, &gc, &err) == 0 && uc == ua, "a released range is given again");
  /* a record whose maker is gone and whose container does not exist is reclaimed */
  path = xasprintf ("%s/userns/%s", dir, a);
  f = fopen (path, "w");
  if (f)
    {
      fprintf (f, "%u %u 65536 999999999 1\n", ub + 65536, gb + 65536);
      fclose (f);
    }
  CHECK (
      userns_allocate ("dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", 65536, true, &ud, &gd, &err)
              == 0
          && ud == ub + 65536 && access (path, F_OK) < 0,
      "a dead maker's record is reclaimed");
  free (path);
  /* ... but not one whose container exists */
  path = xasprintf ("%s/containers/%s", dir, b);
  mkdir_p (path, 0700, NULL);
  free (path);
  path = xasprintf ("%s/userns/%s", dir, b);
  f = fopen (path, "w");
  if (f)
    {
      fprintf (f, "%u %u 65536 999999999 1\n", ub, gb);
      fclose (f);
    }
  CHECK (userns_allocate (a, 65536, true, &ua, &ga, &err) == 0 && ua != ub && access (path, F_OK) == 0,
         "a record whose container exists stays in use");
  free (path);
  CHECK (userns_allocate ("not-an-id", 1, false, &ua, &ga, &err) < 0, "a bad id is refused");
  cella_error_free (&err);
  remove_tree (dir);
}

int
main (void)
{
  test_parse ();
  test_pool ();
  test_pick ();
  test_records ();
  return tap_done ();
}
