/* Which device nodes a container may open or create: the allow-list, written to the v1 devices
 * controller or compiled to a cgroup v2 eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE). docs/security.md
 * ("Devices") and docs/resources.md.
 *
 * The effective list of a confined container is: deny everything, then the plan's own rules (an OCI
 * config's linux.resources.devices, `--device`), then the defaults below. A later rule wins over an
 * earlier one, as the v1 controller applies rules written one after the other. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup_internal.h"

/* What every confined container may use after its own rules, whatever they say (runc appends the same
 * list, so a config's lone "deny all" keeps /dev/null and the terminal working): mknod of any node (the
 * node cannot be opened unless another rule allows it), null, zero, full, random, urandom, tty, ptmx, the
 * container's ptys (136:*) and tun (10:200, kept by runc for compatibility; a tun device needs
 * CAP_NET_ADMIN to do anything). Not /dev/console (5:1): it is the host's console; a container's
 * terminal is a pty of its own devpts. */
static const struct plan_dev_rule defaults[] = {
  { true, 'c', -1, -1, "m" }, { true, 'b', -1, -1, "m" },    { true, 'c', 1, 3, "rwm" },    { true, 'c', 1, 5, "rwm" },
  { true, 'c', 1, 7, "rwm" }, { true, 'c', 1, 8, "rwm" },    { true, 'c', 1, 9, "rwm" },    { true, 'c', 5, 0, "rwm" },
  { true, 'c', 5, 2, "rwm" }, { true, 'c', 136, -1, "rwm" }, { true, 'c', 10, 200, "rwm" },
};

size_t
cgroup_dev_default_rules (const struct plan_dev_rule **out)
{
  *out = defaults;
  return sizeof defaults / sizeof defaults[0];
}

struct plan_dev_rule *
cgroup_dev_rules (const struct plan_resources *r, size_t *n)
{
  size_t nd = sizeof defaults / sizeof defaults[0];
  struct plan_dev_rule *v = xzalloc ((1 + r->ndev_rules + nd) * sizeof *v);
  v[0] = (struct plan_dev_rule){ .allow = false, .type = 'a', .major = -1, .minor = -1, .access = "rwm" };
  if (r->ndev_rules)
    memcpy (v + 1, r->dev_rules, r->ndev_rules * sizeof *v);
  memcpy (v + 1 + r->ndev_rules, defaults, sizeof defaults);
  *n = 1 + r->ndev_rules + nd;
  return v;
}

/* r, w and m of a rule as BPF_DEVCG_ACC_* bits; "" means all three. */
static unsigned
access_bits (const char *access)
{
  unsigned b = 0;
  if (*access == '\0')
    return BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  for (const char *c = access; *c; c++)
    b |= *c == 'r' ? BPF_DEVCG_ACC_READ : *c == 'w' ? BPF_DEVCG_ACC_WRITE : *c == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
  return b;
}

#define ACC_ALL (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)

/* Every device, every access: what the v1 controller means by a lone "a". */
static bool
rule_is_all (const struct plan_dev_rule *r)
{
  return (r->type == 'a' || r->type == 0) && r->major < 0 && r->minor < 0 && access_bits (r->access) == ACC_ALL;
}

char *
cgroup_dev_rule_text (const struct plan_dev_rule *r)
{
  char maj[24] = "*", min[24] = "*";
  if (r->major >= 0)
    snprintf (maj, sizeof maj, "%lld", r->major);
  if (r->minor >= 0)
    snprintf (min, sizeof min, "%lld", r->minor);
  return xasprintf ("%c %s:%s %s", r->type ? r->type : 'a', maj, min, r->access[0] ? r->access : "rwm");
}

/* ---- v1: devices.deny / devices.allow ---------------------------------------------------------------- */

static int
v1_write (const char *dir, const struct plan_dev_rule *r, cella_error_t *err)
{
  const char *file = r->allow ? "devices.allow" : "devices.deny";
  if (rule_is_all (r))
    return cg_write (dir, file, "a", err);
  if (r->type == 'a' || r->type == 0)
    {
      /* the controller reads any rule of type a as "every device, every access": a narrower one is
       * written as its c and b halves */
      struct plan_dev_rule half = *r;
      half.type = 'c';
      if (v1_write (dir, &half, err) < 0)
        return -1;
      half.type = 'b';
      return v1_write (dir, &half, err);
    }
  {
    cleanup_free char *text = cgroup_dev_rule_text (r);
    return cg_write (dir, file, text, err);
  }
}

static int
apply_v1 (const char *dir, const struct plan_dev_rule *rules, size_t n, cella_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    if (v1_write (dir, &rules[i], err) < 0)
      {
        /* an allow rule the parent cgroup does not allow itself (cella inside a confined container): the
         * parent keeps that access closed anyway */
        if (!rules[i].allow || (*err)->errno_ != EPERM)
          return -1;
        cella_error_free (err);
      }
  return 0;
}

/* ---- v2: an eBPF program ---------------------------------------------------------------------------- */

/* The program sees struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major, minor; }
 * and returns 1 to allow, 0 to refuse. Registers: r2 the device type, r3 the access bits still to be
 * granted, r4 the major, r5 the minor. Rules are tested from the last to the first; a deny rule that
 * covers any bit still asked refuses, an allow rule clears the bits it grants and allows once none is
 * left; nothing left to test refuses. */
enum { R0, R1, R2, R3, R4, R5 };

static struct bpf_insn
insn (uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
  return (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
}

struct prog {
  struct bpf_insn *v;
  size_t n, cap;
};

static void
emit (struct prog *p, struct bpf_insn i)
{
  if (p->n == p->cap)
    p->v = xrealloc (p->v, (p->cap = p->cap ? p->cap * 2 : 64) * sizeof *p->v);
  p->v[p->n++] = i;
}

static void
emit_return (struct prog *p, int value)
{
  emit (p, insn (BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, value));
  emit (p, insn (BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}

/* One rule's block; its conditional jumps skip to the next block. Returns true when the block always
 * returns (nothing after it can run). */
static bool
emit_rule (struct prog *p, const struct plan_dev_rule *r)
{
  size_t start = p->n;
  unsigned acc = access_bits (r->access);
  bool uncond = true;
  if (r->type == 'c' || r->type == 'b')
    {
      emit (p, insn (BPF_JMP32 | BPF_JNE | BPF_K, R2, 0, 0, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
      uncond = false;
    }
  if (r->major >= 0)
    {
      emit (p, insn (BPF_JMP32 | BPF_JNE | BPF_K, R4, 0, 0, (int32_t) (uint32_t) r->major));
      uncond = false;
    }
  if (r->minor >= 0)
    {
      emit (p, insn (BPF_JMP32 | BPF_JNE | BPF_K, R5, 0, 0, (int32_t) (uint32_t) r->minor));
      uncond = false;
    }
  if (acc != ACC_ALL)
    {
      if (r->allow)
        {
          emit (p, insn (BPF_ALU | BPF_AND | BPF_K, R3, 0, 0, (int32_t) (~acc & ACC_ALL)));
          emit (p, insn (BPF_JMP32 | BPF_JNE | BPF_K, R3, 0, 0, 0));
        }
      else
        {
          emit (p, insn (BPF_ALU | BPF_MOV | BPF_X, R0, R3, 0, 0));
          emit (p, insn (BPF_ALU | BPF_AND | BPF_K, R0, 0, 0, (int32_t) acc));
          emit (p, insn (BPF_JMP32 | BPF_JEQ | BPF_K, R0, 0, 0, 0));
        }
      uncond = false;
    }
  emit_return (p, r->allow ? 1 : 0);
  for (size_t i = start; i < p->n; i++)
    if (BPF_CLASS (p->v[i].code) == BPF_JMP32)
      p->v[i].off = (int16_t) (p->n - i - 1);
  return uncond;
}

int
cgroup_dev_bpf_build (const struct plan_dev_rule *rules, size_t n, struct bpf_insn **out, size_t *ninsn)
{
  struct prog p = { 0 };
  bool done = false;
  /* a rule block is at most 9 instructions: the jump offsets stay far below 32767 */
  if (n > 3000)
    return -1;
  emit (&p, insn (BPF_LDX | BPF_MEM | BPF_W, R2, R1, 0, 0));
  emit (&p, insn (BPF_ALU | BPF_MOV | BPF_X, R3, R2, 0, 0));
  emit (&p, insn (BPF_ALU | BPF_RSH | BPF_K, R3, 0, 0, 16));
  emit (&p, insn (BPF_ALU | BPF_AND | BPF_K, R2, 0, 0, 0xffff));
  emit (&p, insn (BPF_LDX | BPF_MEM | BPF_W, R4, R1, 4, 0));
  emit (&p, insn (BPF_LDX | BPF_MEM | BPF_W, R5, R1, 8, 0));
  /* what comes after a block that always returns would be unreachable, which the verifier refuses */
  for (size_t i = n; i-- > 0 && !done;)
    done = emit_rule (&p, &rules[i]);
  if (!done)
    emit_return (&p, 0);
  *out = p.v;
  *ninsn = p.n;
  return 0;
}

static int
sys_bpf (int cmd, union bpf_attr *a)
{
  return (int) syscall (SYS_bpf, cmd, a, sizeof *a);
}

static int
load_named (const struct bpf_insn *insns, size_t n, const char *name, cella_error_t *err)
{
  union bpf_attr a;
  char log[1024] = "";
  int fd;
  memset (&a, 0, sizeof a);
  if (name)
    snprintf (a.prog_name, sizeof a.prog_name, "%s", name);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = (uint64_t) (uintptr_t) insns;
  a.insn_cnt = (uint32_t) n;
  a.license = (uint64_t) (uintptr_t) "GPL";
  a.expected_attach_type = BPF_CGROUP_DEVICE;
  fd = sys_bpf (BPF_PROG_LOAD, &a);
  if (fd >= 0 || errno == EPERM)
    return fd >= 0 ? fd : cella_error (err, errno, "cgroup: load the device filter (eBPF; needs root)");
  /* again with the verifier's log, for the message */
  a.log_buf = (uint64_t) (uintptr_t) log;
  a.log_size = sizeof log;
  a.log_level = 1;
  fd = sys_bpf (BPF_PROG_LOAD, &a);
  if (fd >= 0)
    return fd;
  log[strcspn (log, "\n")] = '\0';
  return cella_error (err, errno, "cgroup: load the device filter (eBPF, %zu instructions)%s%s", n, *log ? ": " : "",
                      log);
}

int
cgroup_dev_bpf_load (const struct bpf_insn *insns, size_t n, cella_error_t *err)
{
  return load_named (insns, n, NULL, err);
}

/* prog attached to the cgroup cg (dir: its name in errors) with BPF_F_ALLOW_MULTI: every program on the way up is
 * run too, so a host's own device policy above us still holds */
static int
attach (int cg, int prog, const char *dir, cella_error_t *err)
{
  union bpf_attr a;
  memset (&a, 0, sizeof a);
  a.target_fd = (uint32_t) cg;
  a.attach_bpf_fd = (uint32_t) prog;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf (BPF_PROG_ATTACH, &a) < 0)
    return cella_error (err, errno, "cgroup: attach the device filter to `%s`", dir);
  return 0;
}

/* dir names cg (its name in errors); cg < 0: open dir */
static int
apply_bpf (const char *dir, int cg, const struct plan_dev_rule *rules, size_t n, cella_error_t *err)
{
  cleanup_free struct bpf_insn *insns = NULL;
  cleanup_close int prog = -1, own = -1;
  size_t ninsn;
  if (cgroup_dev_bpf_build (rules, n, &insns, &ninsn) < 0)
    return cella_error (err, 0, "cgroup: %zu device rules: too many", n);
  prog = cgroup_dev_bpf_load (insns, ninsn, err);
  if (prog < 0)
    return -1;
  if (cg < 0)
    {
      cg = own = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (cg < 0)
        return cella_error (err, errno, "cgroup: open `%s`", dir);
    }
  return attach (cg, prog, dir, err); /* the attachment holds the program; it goes with the cgroup */
}

/* ---- one program for every plain run of a rule set ---------------------------------------------------
 * A plain `cella run` (no limits: its cgroup is there for the device rules alone) goes to a cgroup of its
 * own under `cella/devices-KEY`, whose program of those rules is attached once and runs for every cgroup
 * below it (the kernel runs the programs of all ancestors; BPF_F_ALLOW_MULTI, so a container cannot take
 * it off). What each run saved: loading the program, its verification and its attach (~0.6 ms of the parent's
 * time here, docs/benchmarks.md). KEY is a hash of the program's instructions, which is also in the
 * program's name: a run finds its program attached by that name, and attaches it when it is not there
 * (the first run after boot, or after someone took it off). The directory stays for the next run. */

/* FNV-1a, 64 bits, of the instructions: equal programs, equal keys (not a secret, not a defence: the
 * directory and the program can only be changed by root of the host) */
static unsigned long long
prog_key (const struct bpf_insn *insns, size_t n)
{
  const unsigned char *b = (const unsigned char *) insns;
  unsigned long long h = 14695981039346656037ULL;
  for (size_t i = 0; i < n * sizeof *insns; i++)
    h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

static int
rules_key (const struct plan_resources *r, unsigned long long *key)
{
  size_t n, ninsn;
  cleanup_free struct plan_dev_rule *rules = cgroup_dev_rules (r, &n);
  cleanup_free struct bpf_insn *insns = NULL;
  if (cgroup_dev_bpf_build (rules, n, &insns, &ninsn) < 0)
    return -1;
  *key = prog_key (insns, ninsn);
  return 0;
}

char *
cgroup_dev_shared_name (const struct plan_resources *r)
{
  unsigned long long key;
  return rules_key (r, &key) < 0 ? NULL : xasprintf ("devices-%016llx", key);
}

/* Is a program named `name` of the device type attached to cg? */
static bool
attached_by_name (int cg, const char *name)
{
  union bpf_attr a;
  uint32_t ids[16] = { 0 };
  memset (&a, 0, sizeof a);
  a.query.target_fd = (uint32_t) cg;
  a.query.attach_type = BPF_CGROUP_DEVICE;
  a.query.prog_ids = (uint64_t) (uintptr_t) ids;
  a.query.prog_cnt = sizeof ids / sizeof ids[0];
  if (sys_bpf (BPF_PROG_QUERY, &a) < 0)
    return false;
  for (uint32_t i = 0; i < a.query.prog_cnt && i < sizeof ids / sizeof ids[0]; i++)
    {
      union bpf_attr g, q;
      struct bpf_prog_info info;
      cleanup_close int fd = -1;
      memset (&g, 0, sizeof g);
      g.prog_id = ids[i];
      if ((fd = sys_bpf (BPF_PROG_GET_FD_BY_ID, &g)) < 0)
        continue;
      memset (&info, 0, sizeof info);
      memset (&q, 0, sizeof q);
      q.info.bpf_fd = (uint32_t) fd;
      q.info.info_len = sizeof info;
      q.info.info = (uint64_t) (uintptr_t) &info;
      if (sys_bpf (BPF_OBJ_GET_INFO_BY_FD, &q) == 0 && info.type == BPF_PROG_TYPE_CGROUP_DEVICE
          && strncmp (info.name, name, sizeof info.name) == 0)
        return true;
    }
  return false;
}

/* The program of r's rules attached to the shared parent dir (made by the caller), unless it is there. */
static int
shared_ensure (const char *dir, const struct plan_resources *r, cella_error_t *err)
{
  size_t n, ninsn;
  cleanup_free struct plan_dev_rule *rules = cgroup_dev_rules (r, &n);
  cleanup_free struct bpf_insn *insns = NULL;
  cleanup_close int cg = -1, prog = -1;
  char name[16];
  if (cgroup_dev_bpf_build (rules, n, &insns, &ninsn) < 0)
    return cella_error (err, 0, "cgroup: %zu device rules: too many", n);
  /* "cella_" and 9 hex digits of the key: a program name holds 15 characters */
  snprintf (name, sizeof name, "cella_%09llx", prog_key (insns, ninsn) >> 28);
  if ((cg = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return cella_error (err, errno, "cgroup: open `%s`", dir);
  {
    struct stat st; /* a cgroup directory's link count is 2 + its subdirectories */
    if (fstat (cg, &st) == 0 && st.st_nlink > 2 + CGROUP_PLAIN_SWEEP_AT)
      cgroup_sweep_leaves (dir);
  }
  if (attached_by_name (cg, name))
    return 0;
  /* the first run: one attach, however many start at once (the lock goes with the fd) */
  if (flock (cg, LOCK_EX) == 0 && attached_by_name (cg, name))
    return 0;
  if ((prog = load_named (insns, ninsn, name, err)) < 0)
    return -1;
  return attach (cg, prog, dir, err);
}

/* ---- applying ---------------------------------------------------------------------------------------- */

int
cgroup_dev_apply (const struct cgroup_dirs *d, const struct plan_resources *r, cella_error_t *err)
{
  size_t n;
  cleanup_free struct plan_dev_rule *rules = cgroup_dev_rules (r, &n);
  if (d->dev_shared)
    return shared_ensure (d->dev_shared, r, err);
  if (d->layout == CGROUP_V2)
    return apply_bpf (d->v2, -1, rules, n, err);
  if (d->v1[CG_DEVICES])
    return apply_v1 (d->v1[CG_DEVICES], rules, n, err);
  /* hybrid without a v1 devices hierarchy: the kernel runs the cgroup2 tree's device programs too */
  if (d->layout == CGROUP_HYBRID && d->unified)
    return apply_bpf (d->unified, -1, rules, n, err);
  return cella_error (err, 0,
                      "cgroup: this host has neither a `devices` cgroup controller nor a cgroup2 tree: the "
                      "container's device access cannot be limited");
}

int
cgroup_dev_apply_v2_fd (const struct cgroup_dirs *d, const char *dir, int cgfd, const struct plan_resources *r,
                        cella_error_t *err)
{
  size_t n;
  if (d->dev_shared)
    return shared_ensure (d->dev_shared, r, err);
  cleanup_free struct plan_dev_rule *rules = cgroup_dev_rules (r, &n);
  return apply_bpf (dir, cgfd, rules, n, err);
}
