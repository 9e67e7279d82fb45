/* Unit tests for the pure parts of cgroups: units, cpus, shares → weight, paths, the plan's resources in
 * JSON, and the builder's checks of --memory, --cpus, ... */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "cgroup/cgroup.h"
#include "plan/build.h"
#include "tap.h"
#include "errcheck.h"

static void
test_bytes (void)
{
  static const struct {
    const char *in;
    long long want;
  } cases[] = {
    { "512", 512 },        { "64k", 65536 },       { "32m", 32LL << 20 },
    { "32M", 32LL << 20 }, { "32mb", 32LL << 20 }, { "32MiB", 32LL << 20 },
    { "1g", 1LL << 30 },   { "1.5g", 3LL << 29 },  { "2t", 2LL << 40 },
    { "100b", 100 },       { "12q", -1 },          { "", -1 },
    { "m", -1 },           { "-5m", -1 },          { "32 m", 32LL << 20 },
    { "32mm", -1 },        { "99999999999p", -1 },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      long long got = cgroup_parse_bytes (cases[i].in);
      CHECK (got == cases[i].want, "parse_bytes(\"%s\") = %lld (want %lld)", cases[i].in, got, cases[i].want);
    }
}

static void
test_cpus (void)
{
  CHECK (cgroup_parse_cpus ("1.5") == 1500000000LL, "--cpus 1.5 → 1.5e9 nano cpus");
  CHECK (cgroup_parse_cpus ("2") == 2000000000LL, "--cpus 2");
  CHECK (cgroup_parse_cpus ("0.01") == 10000000LL, "--cpus 0.01");
  CHECK (cgroup_parse_cpus (".5") == 500000000LL, "--cpus .5");
  CHECK (cgroup_parse_cpus ("0") == -1, "--cpus 0 refused");
  CHECK (cgroup_parse_cpus ("abc") == -1, "--cpus abc refused");
  CHECK (cgroup_parse_cpus ("1.5x") == -1, "--cpus 1.5x refused");
  CHECK (cgroup_parse_cpus ("") == -1, "--cpus '' refused");
  CHECK (cgroup_cpus_to_quota (1500000000LL, 100000) == 150000, "1.5 cpus → quota 150000 per 100000");
  CHECK (cgroup_cpus_to_quota (500000000LL, 50000) == 25000, "0.5 cpus → quota 25000 per 50000");
}

static void
test_weight (void)
{
  CHECK (cgroup_shares_to_weight (2) == 1, "shares 2 → weight 1");
  CHECK (cgroup_shares_to_weight (1024) == 39, "shares 1024 → weight 39 (got %llu)", cgroup_shares_to_weight (1024));
  CHECK (cgroup_shares_to_weight (262144) == 10000, "shares 262144 → weight 10000");
  CHECK (cgroup_shares_to_weight (512) == 20, "shares 512 → weight 20 (got %llu)", cgroup_shares_to_weight (512));
  CHECK (cgroup_shares_to_weight (0) == 0, "shares unset → weight unset");
}

static void
test_paths (void)
{
  cella_error_t err = NULL;
  char *out = NULL;
#define PATH_IS(cp, id, base, want)                                                                                    \
  do                                                                                                                   \
    {                                                                                                                  \
      out = NULL;                                                                                                      \
      if (cgroup_rel_path (cp, id, base, &out, &err) < 0)                                                              \
        err_has (&err, "");                                                                                            \
      CHECK_STR (out, want, "cgroupsPath " #cp " base " #base);                                                        \
      free (out);                                                                                                      \
    }                                                                                                                  \
  while (0)
  PATH_IS (NULL, "abc", "", "/cella/abc");
  PATH_IS (NULL, "abc", "/user.slice/u.service", "/user.slice/u.service/cella/abc");
  PATH_IS ("/a/b", "abc", "/base", "/a/b");
  PATH_IS ("/a//b/", "abc", "", "/a/b");
  PATH_IS ("a/b", "abc", "/base", "/base/a/b");
  PATH_IS ("system.slice:libpod:abc", "x", "", "/system.slice/libpod-abc.scope");
  PATH_IS ("machine-foo.slice:crio:abc", "x", "", "/machine.slice/machine-foo.slice/crio-abc.scope");
  PATH_IS (":cella:abc", "x", "", "/system.slice/cella-abc.scope");
  PATH_IS ("user.slice::abc", "x", "", "/user.slice/abc.scope");
  PATH_IS ("-.slice:p:n", "x", "", "/p-n.scope");
  PATH_IS ("a.slice:p:b.slice", "x", "", "/a.slice/b.slice");
#undef PATH_IS
  CHECK (cgroup_rel_path ("/a/../b", "x", "", &out, &err) < 0 && err_has (&err, "`..`"), "`..` refused");
  CHECK (cgroup_rel_path ("a:b", "x", "", &out, &err) < 0 && err_has (&err, "slice:prefix:name"),
         "a two-part systemd path refused");
  CHECK (cgroup_rel_path ("foo:p:n", "x", "", &out, &err) < 0 && err_has (&err, "ending in .slice"),
         "a slice without .slice refused");
  CHECK (cgroup_rel_path ("/", "x", "", &out, &err) < 0 && err_has (&err, "root cgroup"), "the root refused");
}

static void
test_json_round_trip (void)
{
  cella_error_t err = NULL;
  struct plan *p = plan_new (), *q = NULL;
  char *text;
  p->id = xstrdup ("0123");
  p->rootfs = xstrdup ("/");
  p->hostname = xstrdup ("h");
  p->process.cwd = xstrdup ("/");
  p->res.memory = 32LL << 20;
  p->res.memory_swap = -1;
  p->res.memory_reservation = 1 << 20;
  p->res.cpu_shares = 512;
  p->res.cpu_quota = 150000;
  p->res.cpu_period = 100000;
  p->res.nano_cpus = 1500000000LL;
  p->res.cpuset_cpus = xstrdup ("0-1");
  p->res.pids_limit = 10;
  p->res.io_weight = 300;
  p->res.cgroups_path = xstrdup ("/x/y");
  p->res.want = true;
  text = plan_to_json (p);
  CHECK (plan_from_json (text, &q, &err) == 0, "plan with resources reads back");
  if (q)
    {
      CHECK (q->res.memory == p->res.memory && q->res.memory_swap == -1 && q->res.memory_reservation == 1 << 20,
             "memory, swap, reservation round trip");
      CHECK (q->res.cpu_shares == 512 && q->res.cpu_quota == 150000 && q->res.cpu_period == 100000
                 && q->res.nano_cpus == 1500000000LL,
             "cpu fields round trip");
      CHECK_STR (q->res.cpuset_cpus, "0-1", "cpuset round trip");
      CHECK (q->res.pids_limit == 10 && q->res.io_weight == 300 && q->res.want, "pids, io weight, want round trip");
      CHECK_STR (q->res.cgroups_path, "/x/y", "cgroupsPath round trip");
    }
  cella_error_free (&err);
  free (text);
  plan_free (p);
  plan_free (q);
}

static void
test_res_helpers (void)
{
  struct plan_resources r = { 0 };
  CHECK (!cgroup_res_any (&r) && cgroup_res_first_flag (&r) == NULL, "no limit set");
  r.pids_limit = 10;
  CHECK (cgroup_res_any (&r) && strcmp (cgroup_res_first_flag (&r), "--pids-limit") == 0, "pids limit names its flag");
  r.memory = 1;
  CHECK (strcmp (cgroup_res_first_flag (&r), "--memory") == 0, "memory named first");
}

int
main (void)
{
  test_bytes ();
  test_cpus ();
  test_weight ();
  test_paths ();
  test_json_round_trip ();
  test_res_helpers ();
  return tap_done ();
}
