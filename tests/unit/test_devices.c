/* Unit tests for device access: the effective rule list, its v1 text, the cgroup v2 eBPF program (run
 * here by a small interpreter of the instructions the builder emits, and compared with the rules read
 * directly; loaded into the kernel when root), and --device's parser. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/caps.h"
#include "cgroup/cgroup.h"
#include "plan/build.h"
#include "tap.h"
#include "hosts.h"

/* ---- an interpreter for the instructions cgroup_dev_bpf_build emits --------------------------------- */

/* 1 allow, 0 refuse, -1 an instruction it does not know or a jump out of the program */
static int
run_prog (const struct bpf_insn *p, size_t n, unsigned type, unsigned access, unsigned major, unsigned minor)
{
  uint32_t ctx[3] = { access << 16 | type, major, minor };
  uint64_t r[11] = { 0 };
  for (size_t pc = 0; pc < n; pc++)
    {
      const struct bpf_insn *i = &p[pc];
      switch (i->code)
        {
        case BPF_LDX | BPF_MEM | BPF_W:
          if (i->src_reg != 1 || i->off < 0 || i->off > 8 || i->off % 4)
            return -1;
          r[i->dst_reg] = ctx[i->off / 4];
          break;
        case BPF_ALU | BPF_MOV | BPF_X:
          r[i->dst_reg] = (uint32_t) r[i->src_reg];
          break;
        case BPF_ALU | BPF_AND | BPF_K:
          r[i->dst_reg] = (uint32_t) r[i->dst_reg] & (uint32_t) i->imm;
          break;
        case BPF_ALU | BPF_RSH | BPF_K:
          r[i->dst_reg] = (uint32_t) r[i->dst_reg] >> i->imm;
          break;
        case BPF_ALU64 | BPF_MOV | BPF_K:
          r[i->dst_reg] = (uint64_t) (int64_t) i->imm;
          break;
        case BPF_JMP32 | BPF_JNE | BPF_K:
          if ((uint32_t) r[i->dst_reg] != (uint32_t) i->imm)
            pc += (size_t) i->off;
          break;
        case BPF_JMP32 | BPF_JEQ | BPF_K:
          if ((uint32_t) r[i->dst_reg] == (uint32_t) i->imm)
            pc += (size_t) i->off;
          break;
        case BPF_JMP | BPF_EXIT:
          return (int) r[0];
        default:
          return -1;
        }
    }
  return -1;
}

/* The rules read directly: from the last to the first, a deny rule of the device that covers an access
 * still asked refuses, an allow rule grants what it covers; allowed once everything asked is granted. */
static int
reference (const struct plan_dev_rule *rules, size_t n, char type, unsigned access, long long major, long long minor)
{
  for (size_t k = n; k-- > 0;)
    {
      const struct plan_dev_rule *x = &rules[k];
      unsigned acc = 0;
      if ((x->type == 'c' || x->type == 'b') && x->type != type)
        continue;
      if ((x->major >= 0 && x->major != major) || (x->minor >= 0 && x->minor != minor))
        continue;
      for (const char *c = x->access[0] ? x->access : "rwm"; *c; c++)
        acc |= *c == 'm' ? 1u : *c == 'r' ? 2u : 4u;
      if (!x->allow && (access & acc))
        return 0;
      if (x->allow && (access &= ~acc) == 0)
        return 1;
    }
  return 0;
}

static bool
is_real_root (void)
{
  return geteuid () == 0 && in_initial_userns ();
}

/* Every combination of type, access and some majors/minors: the program and the rules agree; the kernel's
 * verifier takes it when we may load it. */
static void
check_program (const char *what, const struct plan_dev_rule *rules, size_t n)
{
  static const long long majors[] = { 1, 5, 7, 10, 136, 254, 4294967295LL };
  static const long long minors[] = { 0, 1, 2, 3, 5, 7, 8, 9, 11, 200, 4294967295LL };
  struct bpf_insn *prog = NULL;
  size_t ninsn = 0, bad = 0, tried = 0;
  int built = cgroup_dev_bpf_build (rules, n, &prog, &ninsn);
  CHECK (built == 0 && ninsn > 0, "%s: program built (%zu instructions)", what, ninsn);
  for (int t = 0; t < 2; t++)
    for (unsigned acc = 1; acc < 8; acc++)
      for (size_t a = 0; a < sizeof majors / sizeof majors[0]; a++)
        for (size_t b = 0; b < sizeof minors / sizeof minors[0]; b++)
          {
            char type = t ? 'b' : 'c';
            int got = run_prog (prog, ninsn, t ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, acc, (unsigned) majors[a],
                                (unsigned) minors[b]);
            int want = reference (rules, n, type, acc, majors[a], minors[b]);
            tried++;
            if (got != want && bad++ < 3)
              printf ("#   %s: %c %lld:%lld access %u: program %d, rules %d\n", what, type, majors[a], minors[b], acc,
                      got, want);
          }
  CHECK (bad == 0, "%s: the program decides as the rules say (%zu cases, %zu differ)", what, tried, bad);
  if (is_real_root ())
    {
      cella_error_t err = NULL;
      int fd = cgroup_dev_bpf_load (prog, ninsn, &err);
      CHECK (fd >= 0, "%s: the kernel's verifier takes it%s%s", what, err ? ": " : "", err ? err->msg : "");
      cella_error_free (&err);
      if (fd >= 0)
        close (fd);
    }
  else
    tap_skip ("needs root of the host to load eBPF", "%s: the kernel's verifier takes it", what);
  free (prog);
}

static struct plan_dev_rule
rule (bool allow, char type, long long major, long long minor, const char *access)
{
  struct plan_dev_rule r = { .allow = allow, .type = type, .major = major, .minor = minor };
  snprintf (r.access, sizeof r.access, "%s", access);
  return r;
}

static void
test_effective_rules (void)
{
  struct plan_resources res = { 0 };
  struct plan_dev_rule mine[1] = { rule (true, 'b', 7, 0, "r") };
  const struct plan_dev_rule *def;
  size_t nd = cgroup_dev_default_rules (&def), n;
  struct plan_dev_rule *v = cgroup_dev_rules (&res, &n);
  bool console = false, null = false, pts = false, mknod_c = false, loop = false;
  CHECK (n == 1 + nd, "no rules of the plan's own: deny all + the %zu defaults", nd);
  CHECK (!v[0].allow && v[0].type == 'a' && v[0].major < 0 && v[0].minor < 0 && strcmp (v[0].access, "rwm") == 0,
         "the first rule denies everything");
  for (size_t i = 1; i < n; i++)
    {
      console |= v[i].type == 'c' && v[i].major == 5 && v[i].minor == 1;
      null |= v[i].allow && v[i].type == 'c' && v[i].major == 1 && v[i].minor == 3 && strcmp (v[i].access, "rwm") == 0;
      pts |= v[i].allow && v[i].major == 136 && v[i].minor < 0;
      mknod_c |= v[i].allow && v[i].type == 'c' && v[i].major < 0 && strcmp (v[i].access, "m") == 0;
      loop |= v[i].allow && v[i].type == 'b' && v[i].major == 7;
    }
  CHECK (null && pts && mknod_c, "defaults: /dev/null, the ptys, mknod of character devices");
  CHECK (!console && !loop, "defaults: not the host's console (5:1), no block device");
  free (v);
  res.dev_rules = mine;
  res.ndev_rules = 1;
  v = cgroup_dev_rules (&res, &n);
  CHECK (n == 2 + nd && v[1].type == 'b' && v[1].major == 7 && strcmp (v[1].access, "r") == 0,
         "the plan's rules between deny-all and the defaults");
  free (v);
  {
    struct plan_dev_rule r1 = rule (true, 'c', 136, -1, "rwm"), r2 = rule (false, 'a', -1, -1, "");
    struct plan_dev_rule r3 = rule (true, 'b', 8, 16, "m");
    cleanup_free char *t1 = cgroup_dev_rule_text (&r1), *t2 = cgroup_dev_rule_text (&r2),
                      *t3 = cgroup_dev_rule_text (&r3);
    CHECK_STR (t1, "c 136:* rwm", "rule text");
    CHECK_STR (t2, "a *:* rwm", "rule text: empty access is all");
    CHECK_STR (t3, "b 8:16 m", "rule text");
  }
}

static void
test_programs (void)
{
  struct plan_resources res = { 0 };
  size_t n;
  struct plan_dev_rule *v = cgroup_dev_rules (&res, &n);
  check_program ("the default list", v, n);
  free (v);
  {
    struct plan_dev_rule mine[] = { rule (true, 'b', 7, 0, "r"), rule (true, 'c', 10, 229, "rw") };
    res.dev_rules = mine;
    res.ndev_rules = 2;
    v = cgroup_dev_rules (&res, &n);
    check_program ("--device rules", v, n);
    free (v);
  }
  {
    /* an OCI config: partial accesses, wildcards, a deny after an allow, a max major */
    struct plan_dev_rule mine[] = {
      rule (true, 'a', -1, -1, "r"),
      rule (false, 'c', 1, -1, "w"),
      rule (true, 'c', 1, 11, "w"),
      rule (false, 'b', -1, 0, "rwm"),
      rule (true, 'b', 254, -1, ""),
      rule (false, 'a', 4294967295LL, -1, "m"),
      rule (true, 'c', 4294967295LL, 4294967295LL, "rw"),
    };
    res.dev_rules = mine;
    res.ndev_rules = sizeof mine / sizeof mine[0];
    v = cgroup_dev_rules (&res, &n);
    check_program ("an OCI list", v, n);
    free (v);
  }
  {
    /* an allow-all in the middle: what comes before it can never decide (and must not be emitted: the
     * verifier refuses unreachable instructions) */
    struct plan_dev_rule mine[] = { rule (true, 'c', 9, 9, "r"), rule (true, 'a', -1, -1, "rwm") };
    struct plan_resources none = { 0 };
    struct bpf_insn *prog = NULL, *def_prog = NULL;
    size_t ninsn = 0, ndef = 0;
    res.dev_rules = mine;
    res.ndev_rules = 2;
    v = cgroup_dev_rules (&res, &n);
    check_program ("allow-all after deny-all", v, n);
    cgroup_dev_bpf_build (v, n, &prog, &ninsn);
    free (v);
    v = cgroup_dev_rules (&none, &n);
    cgroup_dev_bpf_build (v, n, &def_prog, &ndef);
    CHECK (run_prog (prog, ninsn, BPF_DEVCG_DEV_BLOCK, 6, 254, 0) == 1, "allow-all: the host's disk may be opened");
    CHECK (ninsn == ndef, "allow-all: nothing emitted for the rules before it (%zu instructions, %zu without them)",
           ninsn, ndef);
    free (prog);
    free (def_prog);
    free (v);
  }
  {
    struct plan_dev_rule only[] = { rule (false, 'a', -1, -1, "") };
    check_program ("deny-all alone", only, 1);
  }
}

static void
test_parse_device (void)
{
  struct plan_device d;
  struct plan_dev_rule r;
  cella_error_t err = NULL;
  static const struct {
    const char *spec, *path, *access;
  } ok[] = {
    { "/dev/null", "/dev/null", "rwm" },
    { "/dev/null:/dev/mynull", "/dev/mynull", "rwm" },
    { "/dev/null:rw", "/dev/null", "rw" },
    { "/dev/null:/dev/sub/x:mr", "/dev/sub/x", "mr" },
  };
  static const struct {
    const char *spec, *msg;
  } bad[] = {
    { "/dev/null:/dev/x:rwx", "permissions `rwx` must be made of r, w and m" },
    { "/dev/null:/dev/x:rr", "permissions `rr`" },
    { "/dev/null:/dev/x:", "permissions ``" },
    { "/dev/null:/mnt/x", "the container path `/mnt/x` must be an absolute path under /dev/" },
    { "/dev/null:/dev/", "the container path `/dev/`" },
    { "/dev/null:/dev/../x", "the container path `/dev/../x`" },
    { "dev/null", "`dev/null` must be an absolute host path" },
    { "/dev/null:/dev/a:r:w", "too many `:`" },
    { "/dev/nonexistent-device", "`/dev/nonexistent-device` on the host" },
    { "/etc/hostname:/dev/h", "is not a character or block device" },
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    {
      int rc = parse_device (ok[i].spec, &d, &r, &err);
      CHECK (rc == 0 && strcmp (d.path, ok[i].path) == 0 && strcmp (d.host_path, "/dev/null") == 0 && d.type == 'c'
                 && d.major == 1 && d.minor == 3 && r.allow && r.type == 'c' && r.major == 1 && r.minor == 3
                 && strcmp (r.access, ok[i].access) == 0,
             "--device %s → %s, c 1:3 %s", ok[i].spec, ok[i].path, ok[i].access);
      if (rc == 0)
        {
          free (d.path);
          free (d.host_path);
        }
      cella_error_free (&err);
    }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      int rc = parse_device (bad[i].spec, &d, &r, &err);
      bool named = err && strstr (err->msg, bad[i].msg) && strstr (err->msg, "--device `");
      CHECK (rc < 0 && named, "--device %s refused: %s", bad[i].spec, err ? err->msg : "(no error)");
      cella_error_free (&err);
    }
}

static bool
has_op (const struct plan *p, enum op_kind kind)
{
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == kind)
      return true;
  return false;
}

static const struct op *
find_op (const struct plan *p, enum op_kind kind)
{
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == kind)
      return &p->ops[i];
  return NULL;
}

/* run options → plan → JSON → plan: --device's node and rule, --privileged's every part */
static void
test_plan_options (void)
{
  char tmpl[] = "/tmp/cella-devices-XXXXXX";
  char *dir = mkdtemp (tmpl);
  struct run_options o = { 0 };
  struct plan *p = NULL, *q = NULL;
  cella_error_t err = NULL;
  cleanup_free char *etc = NULL, *passwd = NULL, *text = NULL;
  FILE *f;
  if (dir == NULL)
    abort ();
  etc = xasprintf ("%s/etc", dir);
  passwd = xasprintf ("%s/etc/passwd", dir);
  mkdir (etc, 0755);
  f = fopen (passwd, "w");
  fputs ("root:x:0:0:root:/root:/bin/sh\n", f);
  fclose (f);
  strv_push (&o.command, "true");
  strv_push (&o.devices, "/dev/null:/dev/mynull:rw");
  o.backend = xstrdup ("ns");
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) == 0, "a plan with --device");
  if (p)
    {
      CHECK (p->ndevices == 1 && strcmp (p->devices[0].path, "/dev/mynull") == 0
                 && strcmp (p->devices[0].host_path, "/dev/null") == 0 && p->res.ndev_rules == 1
                 && strcmp (p->res.dev_rules[0].access, "rw") == 0 && !p->privileged && p->process.seccomp
                 && has_op (p, OP_MASK) && !find_op (p, OP_DEV)->dev_host && !find_op (p, OP_SYSFS)->dev_writable,
             "--device: a node and its rule; nothing else lifted");
      text = plan_to_json (p);
      CHECK (plan_from_json (text, &q, &err) == 0 && q->ndevices == 1 && q->devices[0].host_path
                 && strcmp (q->devices[0].host_path, "/dev/null") == 0 && q->res.ndev_rules == 1 && !q->privileged,
             "--device round trip (hostPath kept)");
      plan_free (q);
      q = NULL;
      free (text);
      text = NULL;
      plan_free (p);
      p = NULL;
    }
  cella_error_free (&err);
  o.privileged = true;
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) == 0, "a plan with --privileged");
  if (p)
    {
      uint64_t all = (UINT64_C (1) << 41) - 1; /* cap_last 40 */
      CHECK (p->privileged && !p->process.seccomp && !has_op (p, OP_MASK) && !has_op (p, OP_READONLY)
                 && p->process.caps == all,
             "--privileged: every capability, no seccomp, no masked or read-only paths");
      CHECK (find_op (p, OP_DEV)->dev_host && find_op (p, OP_DEV)->dev_writable && find_op (p, OP_SYSFS)->dev_writable,
             "--privileged: host devices in a writable /dev, /sys read-write");
      text = plan_to_json (p);
      CHECK (plan_from_json (text, &q, &err) == 0 && q->privileged && find_op (q, OP_DEV)->dev_host
                 && find_op (q, OP_DEV)->dev_writable && find_op (q, OP_SYSFS)->dev_writable,
             "--privileged round trip");
      plan_free (q);
      plan_free (p);
    }
  cella_error_free (&err);
  strv_push (&o.cap_drop, "NET_RAW");
  p = NULL;
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) == 0 && p && !(p->process.caps & (1ULL << 13)),
         "--privileged --cap-drop NET_RAW drops it");
  plan_free (p);
  cella_error_free (&err);
  free (o.backend);
  o.backend = xstrdup ("proot");
  p = NULL;
  if (plan_from_run_options (&o, &root_host, dir, false, &p, &err) < 0)
    CHECK (err
               && (strstr (err->msg, "--device /dev/null:/dev/mynull:rw: the proot backend")
                   || strstr (err->msg, "proot")),
           "--backend proot refuses --device: %s", err ? err->msg : "");
  else
    CHECK (false, "--backend proot accepted --device");
  plan_free (p);
  cella_error_free (&err);
  run_options_free (&o);
  remove (passwd);
  rmdir (etc);
  rmdir (dir);
}

int
main (void)
{
  test_effective_rules ();
  test_programs ();
  test_parse_device ();
  test_plan_options ();
  return tap_done ();
}
