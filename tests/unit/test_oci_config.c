/* Unit tests for the OCI config.json loader (src/oci/config.c): each section's values in the
 * plan, the saved plan's round trip, and every error naming its JSON path. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "oci/oci.h"
#include "tap.h"

static const char *const base_config
    = "{\"ociVersion\": \"1.0.2\","
      " \"root\": {\"path\": \"rootfs\", \"readonly\": true},"
      " \"process\": {\"args\": [\"sh\", \"-c\", \"true\"], \"cwd\": \"/\", \"env\": [\"PATH=/bin\"],"
      "              \"user\": {\"uid\": 0, \"gid\": 0}},"
      " \"hostname\": \"box\","
      " \"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
      "            {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
      "             \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]}],"
      " \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"mount\"}, {\"type\": \"uts\"},"
      "                              {\"type\": \"ipc\"}, {\"type\": \"network\"}]},"
      " \"someFutureKey\": {\"ignored\": true}}";

/* base_config with `patch` merged in (objects recursively; anything else replaced) */
static int
load (const char *patch, struct plan **p, cella_error_t *err)
{
  json_t *base = json_loads (base_config, 0, NULL), *pj = patch ? json_loads (patch, 0, NULL) : NULL;
  char *text;
  int r;
  if (patch && pj == NULL)
    {
      printf ("# bad test patch: %s\n", patch);
      abort ();
    }
  if (pj)
    json_object_update_recursive (base, pj);
  text = json_dumps (base, 0);
  r = oci_config_parse (text, "/b", "config.json", p, err);
  free (text);
  json_decref (base);
  json_decref (pj);
  return r;
}

static struct plan *
load_ok (const char *patch, const char *what)
{
  cella_error_t err = NULL;
  struct plan *p = NULL;
  if (load (patch, &p, &err) < 0)
    {
      printf ("#   error: %s\n", err->msg);
      cella_error_free (&err);
    }
  CHECK (p != NULL, "%s: loads", what);
  return p;
}

static const struct op *
find_op (const struct plan *p, enum op_kind k, const char *target)
{
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].kind == k && strcmp (p->ops[i].target, target) == 0)
      return &p->ops[i];
  return NULL;
}

static void
test_base (void)
{
  cleanup_plan struct plan *p = load_ok (NULL, "base config");
  if (p == NULL)
    return;
  CHECK_STR (p->rootfs, "/b/rootfs", "root.path is relative to the bundle");
  CHECK (p->readonly, "root.readonly");
  CHECK_STR (p->hostname, "box", "hostname");
  CHECK (p->ns == (PLAN_NS_PID | PLAN_NS_MNT | PLAN_NS_UTS | PLAN_NS_IPC | PLAN_NS_NET), "namespaces → plan bits");
  CHECK (p->net == NET_NONE, "a new network namespace: loopback only");
  CHECK_STR (p->process.argv[2], "true", "process.args");
  CHECK_STR (p->process.cwd, "/", "process.cwd");
  CHECK (p->process.stdin_open && !p->process.tty, "stdio as given, no terminal");
  CHECK (p->process.capsets.set && p->process.capsets.bounding == 0 && p->process.capsets.effective == 0,
         "no capabilities key: no capabilities");
  CHECK (find_op (p, OP_PROC, "/proc") != NULL, "proc mount → proc op");
  CHECK (find_op (p, OP_DEV, "/dev") != NULL && find_op (p, OP_DEV, "/dev")->size == 65536 * 1024
             && find_op (p, OP_DEV, "/dev")->dev_writable,
         "tmpfs on /dev → dev op with its size, writable as runc's");
  CHECK (!p->process.seccomp && p->process.seccomp_profile == NULL, "no seccomp key: no filter");
  CHECK_STR (p->bundle, "/b", "bundle kept");
}

static void
test_process (void)
{
  cleanup_plan struct plan *p = load_ok (
      "{\"process\": {\"terminal\": true, \"consoleSize\": {\"height\": 40, \"width\": 100},"
      "  \"user\": {\"uid\": 1000, \"gid\": 100, \"umask\": 18, \"additionalGids\": [5, 6]},"
      "  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 10, \"hard\": 20}],"
      "  \"capabilities\": {\"bounding\": [\"CAP_CHOWN\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],"
      "    \"effective\": [\"CAP_KILL\"], \"permitted\": [\"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],"
      "    \"inheritable\": [\"CAP_NET_BIND_SERVICE\"], \"ambient\": [\"CAP_NET_BIND_SERVICE\"]},"
      "  \"noNewPrivileges\": true, \"oomScoreAdj\": 100, \"apparmorProfile\": \"\", \"selinuxLabel\": \"\"}}",
      "process section");
  const struct plan_process *pr;
  if (p == NULL)
    return;
  pr = &p->process;
  CHECK (pr->uid == 1000 && pr->gid == 100, "user.uid, user.gid");
  CHECK (pr->has_umask && pr->umask == 022, "user.umask");
  CHECK (pr->ngroups == 2 && pr->groups[0] == 5 && pr->groups[1] == 6, "user.additionalGids");
  CHECK (pr->nrlimits == 1 && pr->rlimits[0].resource == RLIMIT_NOFILE && pr->rlimits[0].soft == 10
             && pr->rlimits[0].hard == 20,
         "rlimits");
  CHECK (pr->capsets.bounding == ((1ULL << 0) | (1ULL << 5) | (1ULL << 10)), "capabilities.bounding");
  CHECK (pr->capsets.effective == (1ULL << 5), "capabilities.effective");
  CHECK (pr->capsets.ambient == (1ULL << 10) && pr->capsets.inheritable == (1ULL << 10), "ambient, inheritable");
  CHECK (pr->no_new_privs, "noNewPrivileges");
  CHECK (pr->has_oom_score_adj && pr->oom_score_adj == 100, "oomScoreAdj");
  CHECK (pr->tty && pr->console_height == 40 && pr->console_width == 100, "terminal, consoleSize");
  CHECK (pr->apparmor_profile == NULL && pr->selinux_label == NULL, "empty LSM labels accepted");
}

static void
test_mounts (void)
{
  cleanup_plan struct plan *p = load_ok (
      "{\"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\"},"
      " {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"options\": [\"mode=755\"]},"
      " {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"options\": [\"nosuid\", \"noexec\", \"newinstance\","
      "   \"ptmxmode=0666\", \"mode=0620\"]},"
      " {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\", \"options\": [\"nosuid\"]},"
      " {\"destination\": \"/sys\", \"type\": \"sysfs\", \"options\": [\"ro\"]},"
      " {\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"options\": [\"ro\", \"nosuid\"]},"
      " {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv/data\","
      "   \"options\": [\"rbind\", \"ro\", \"nosuid\", \"noexec\", \"rprivate\"]},"
      " {\"destination\": \"/rel\", \"type\": \"none\", \"source\": \"rel\", \"options\": [\"bind\", \"nodev\"]},"
      " {\"destination\": \"/etc\", \"type\": \"tmpfs\", \"options\": [\"tmpcopyup\", \"size=1m\", \"mode=700\", \"nr_inodes=100\"]},"
      " {\"destination\": \"/idm\", \"type\": \"bind\", \"source\": \"/srv/idm\", \"options\": [\"rbind\", \"idmap\"],"
      "   \"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 10}],"
      "   \"gidMappings\": [{\"containerID\": 0, \"hostID\": 2000, \"size\": 10}]}]}",
      "mounts section");
  const struct op *op;
  if (p == NULL)
    return;
  op = find_op (p, OP_MOUNT, "/dev/pts");
  CHECK (op && strcmp (op->fstype, "devpts") == 0 && op->flags == (REMOUNT_NOSUID | REMOUNT_NOEXEC)
             && strv_len (op->fsopts) == 3 && strcmp (op->fsopts[0], "newinstance") == 0,
         "devpts: type, flags and data options");
  /* the config's own /dev/pts and /dev/mqueue: one mount each, the dev op makes only their
   * directories; the source is what mountinfo will show */
  op = find_op (p, OP_MOUNT, "/dev/mqueue");
  CHECK (op && strcmp (op->fstype, "mqueue") == 0 && op->source && strcmp (op->source, "mqueue") == 0,
         "mqueue on /dev/mqueue: a mount of its own, with its source");
  CHECK (!find_op (p, OP_DEV, "/dev")->mqueue
             && find_op (p, OP_DEV, "/dev")->dev_later == (PLAN_DEV_PTS | PLAN_DEV_MQUEUE),
         "the dev op leaves /dev/pts and /dev/mqueue to the config's mounts");
  CHECK (find_op (p, OP_SYSFS, "/sys") != NULL, "sysfs");
  op = find_op (p, OP_MOUNT, "/sys/fs/cgroup");
  CHECK (op && strcmp (op->fstype, "cgroup") == 0 && (op->flags & REMOUNT_RDONLY), "cgroup: the container's own, ro");
  op = find_op (p, OP_BIND, "/data");
  CHECK (op && op->flags == (BIND_RECURSIVE | BIND_NOSUID | BIND_NOEXEC | BIND_DEVICE)
             && op->propagation == PROP_RPRIVATE,
         "rbind ro nosuid noexec rprivate");
  op = find_op (p, OP_BIND, "/rel");
  CHECK (op && strcmp (op->source, "/b/rel") == 0 && op->flags == BIND_WRITABLE, "relative bind source, nodev");
  op = find_op (p, OP_TMPFS, "/etc");
  CHECK (op && op->tmpcopyup && op->size == 1 << 20 && op->mode == 0700 && strv_len (op->fsopts) == 1,
         "tmpfs: tmpcopyup, size, mode, other options passed on");
  op = find_op (p, OP_BIND, "/idm");
  CHECK (op && op->nidmap_uid == 1 && op->idmap_uid[0].outside == 1000 && op->idmap_gid[0].outside == 2000
             && op->idmap_recursive,
         "idmapped rbind with its own mappings");
}

static void
test_hooks (void)
{
  cleanup_plan struct plan *p = load_ok (
      "{\"hooks\": {\"prestart\": [{\"path\": \"/bin/a\"}],"
      " \"createRuntime\": [{\"path\": \"/bin/b\", \"args\": [\"b\", \"1\"], \"env\": [\"X=1\"], \"timeout\": 5}],"
      " \"createContainer\": [{\"path\": \"/bin/c\"}, {\"path\": \"/bin/c2\"}], \"startContainer\": [{\"path\": \"/bin/d\"}],"
      " \"poststart\": [{\"path\": \"/bin/e\"}], \"poststop\": [{\"path\": \"/bin/f\"}]}}",
      "hooks section");
  if (p == NULL)
    return;
  CHECK (p->nhooks[HOOK_PRESTART] == 1 && p->nhooks[HOOK_CREATE_CONTAINER] == 2 && p->nhooks[HOOK_POSTSTOP] == 1,
         "every hook kind");
  CHECK (strcmp (p->hooks[HOOK_CREATE_RUNTIME][0].path, "/bin/b") == 0
             && strv_len (p->hooks[HOOK_CREATE_RUNTIME][0].args) == 2
             && strcmp (p->hooks[HOOK_CREATE_RUNTIME][0].env[0], "X=1") == 0
             && p->hooks[HOOK_CREATE_RUNTIME][0].timeout == 5,
         "hook path, args, env, timeout");
}

static const char *const linux_patch
    = "{\"annotations\": {\"org.example\": \"yes\"}, \"domainname\": \"example.org\","
      " \"linux\": {\"sysctl\": {\"net.ipv4.ip_forward\": \"1\", \"kernel.shmmax\": \"1000000\", \"kernel.domainname\": \"x\"},"
      " \"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229, \"fileMode\": 438, \"uid\": 0, \"gid\": 0},"
      "              {\"path\": \"/dev/myfifo\", \"type\": \"p\"}],"
      " \"resources\": {\"memory\": {\"limit\": 67108864, \"reservation\": 33554432, \"swap\": 134217728, \"swappiness\": 10,"
      "                            \"disableOOMKiller\": false, \"kernel\": 1, \"kernelTCP\": 2097152},"
      "   \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000, \"cpus\": \"0\", \"mems\": \"0\"},"
      "   \"pids\": {\"limit\": 64},"
      "   \"blockIO\": {\"weight\": 500, \"throttleReadBpsDevice\": [{\"major\": 8, \"minor\": 0, \"rate\": 1048576}]},"
      "   \"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 0}],"
      "   \"devices\": [{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rw\"}],"
      "   \"unified\": {\"memory.high\": \"50000000\"}},"
      " \"cgroupsPath\": \"/cella-test/box\","
      " \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\"],"
      "   \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"],"
      "   \"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38},"
      "                {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ERRNO\","
      "                 \"args\": [{\"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\"}]}]},"
      " \"maskedPaths\": [\"/proc/kcore\", \"/proc/keys\"], \"readonlyPaths\": [\"/proc/sys\"],"
      " \"rootfsPropagation\": \"rslave\", \"mountLabel\": \"\", \"personality\": {\"domain\": \"LINUX32\"}}}";

static void
test_linux (void)
{
  cleanup_plan struct plan *p = load_ok (linux_patch, "linux section");
  const struct plan_seccomp *s;
  if (p == NULL)
    return;
  CHECK (strv_len (p->sysctl) == 3, "sysctl");
  CHECK (p->ndevices == 2 && p->devices[0].type == 'c' && p->devices[0].major == 10 && p->devices[0].minor == 229
             && p->devices[0].mode == 0666 && p->devices[1].type == 'p',
         "devices");
  CHECK (p->res.memory == 67108864 && p->res.memory_reservation == 33554432 && p->res.memory_swap == 134217728
             && p->res.has_swappiness && p->res.memory_swappiness == 10 && p->res.memory_kernel_tcp == 2097152,
         "resources.memory");
  CHECK (p->res.cpu_shares == 512 && p->res.cpu_quota == 50000 && p->res.cpu_period == 100000
             && strcmp (p->res.cpuset_cpus, "0") == 0,
         "resources.cpu");
  CHECK (p->res.pids_limit == 64 && p->res.io_weight == 500, "resources.pids, blockIO.weight");
  CHECK (p->res.nio_throttle == 1 && p->res.io_throttle[0].kind == IO_READ_BPS && p->res.io_throttle[0].rate == 1048576,
         "resources.blockIO throttle");
  CHECK (p->res.nhugepage_limits == 1 && strcmp (p->res.hugepage_limits[0].page_size, "2MB") == 0, "hugepageLimits");
  CHECK (p->res.ndev_rules == 2 && !p->res.dev_rules[0].allow && p->res.dev_rules[0].type == 'a'
             && p->res.dev_rules[1].major == 1 && strcmp (p->res.dev_rules[1].access, "rw") == 0,
         "resources.devices");
  CHECK (strv_len (p->res.unified) == 1, "resources.unified");
  CHECK_STR (p->res.cgroups_path, "/cella-test/box", "cgroupsPath");
  s = p->process.seccomp_profile;
  CHECK (s && s->default_action == SCMPA_ALLOW && strv_len (s->arches) == 2 && s->nrules == 2
             && s->rules[0].errno_ret == 38 && s->rules[1].nargs == 1 && s->rules[1].args[0].op == SCMPO_EQ
             && s->rules[1].args[0].value == 8,
         "seccomp");
  CHECK (find_op (p, OP_MASK, "/proc/kcore") && find_op (p, OP_READONLY, "/proc/sys"), "maskedPaths, readonlyPaths");
  CHECK (p->ops[p->nops - 1].kind == OP_READONLY, "masked and read-only paths come after the mounts");
  CHECK (p->rootfs_propagation == PROP_RSLAVE, "rootfsPropagation");
  CHECK (p->personality == PERSONALITY_LINUX32, "personality");
  CHECK_STR (p->domainname, "example.org", "domainname");
  CHECK (strv_len (p->annotations) == 1, "annotations");
}

static void
test_namespaces (void)
{
  cleanup_plan struct plan *p = load_ok (
      "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"network\", \"path\": \"/run/netns/x\"},"
      " {\"type\": \"user\"}, {\"type\": \"uts\"}],"
      " \"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}],"
      " \"gidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}]}}",
      "namespaces with a path, user namespace with mappings");
  if (p == NULL)
    return;
  CHECK (p->ns == (PLAN_NS_MNT | PLAN_NS_USER | PLAN_NS_UTS), "a namespace with a path is joined, not created");
  CHECK_STR (p->ns_path[4], "/run/netns/x", "network namespace path");
  CHECK (p->nuid_map == 1 && p->uid_map[0].outside == 100000 && p->uid_map[0].count == 65536, "uidMappings");
  if (access ("/proc/self/ns/time", F_OK) == 0)
    {
      cleanup_plan struct plan *t = load_ok (
          "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"time\"}],"
          " \"timeOffsets\": {\"monotonic\": {\"secs\": 86400, \"nanosecs\": 0}, \"boottime\": {\"secs\": 3600}}}, \"hostname\": null}",
          "time namespace with offsets");
      CHECK (t && (t->ns & PLAN_NS_TIME) && t->has_time_offsets && t->time_offset[0][0] == 86400
                 && t->time_offset[1][0] == 3600,
             "timeOffsets");
    }
  else
    tap_skip ("this kernel has no time namespaces", "timeOffsets");
}

static void
test_round_trip (void)
{
  cleanup_plan struct plan *p = load_ok (linux_patch, "linux section (round trip)");
  cleanup_plan struct plan *q = NULL;
  cleanup_free char *a = NULL, *b = NULL;
  cella_error_t err = NULL;
  if (p == NULL)
    return;
  p->process.rlimits = xzalloc (sizeof *p->process.rlimits);
  p->process.rlimits[0] = (struct plan_rlimit){ RLIMIT_NOFILE, 5, 6 };
  p->process.nrlimits = 1;
  p->process.has_umask = true;
  p->process.umask = 027;
  p->process.capsets = (struct plan_capsets){ true, 1, 2, 3, 2, 2 };
  p->hooks[HOOK_POSTSTOP] = xzalloc (sizeof *p->hooks[HOOK_POSTSTOP]);
  p->hooks[HOOK_POSTSTOP][0].path = xstrdup ("/bin/true");
  p->hooks[HOOK_POSTSTOP][0].timeout = 3;
  p->nhooks[HOOK_POSTSTOP] = 1;
  p->ns_path[4] = xstrdup ("/run/netns/y");
  a = plan_to_json (p);
  if (plan_from_json (a, &q, &err) < 0)
    {
      printf ("#   error: %s\n", err->msg);
      cella_error_free (&err);
    }
  CHECK (q != NULL, "saved plan with OCI fields reloads");
  if (q == NULL)
    return;
  b = plan_to_json (q);
  CHECK (strcmp (a, b) == 0, "plan_to_json → plan_from_json → plan_to_json is the same text");
  CHECK (q->process.seccomp_profile && q->process.seccomp_profile->nrules == 2 && q->ndevices == 2
             && q->process.capsets.set && q->process.capsets.permitted == 3 && q->process.umask == 027
             && q->res.nio_throttle == 1 && q->res.memory_kernel_tcp == 2097152
             && strcmp (q->ns_path[4], "/run/netns/y") == 0,
         "the reloaded plan has the OCI fields");
  if (strcmp (a, b) != 0)
    printf ("# first:\n%s\n# second:\n%s\n", a, b);
}

static void
test_process_json (void)
{
  struct plan_process pr;
  cella_error_t err = NULL;
  int r = oci_process_parse ("{\"args\": [\"ls\"], \"cwd\": \"/tmp\", \"env\": [\"A=1\"],"
                             " \"capabilities\": {\"bounding\": [\"CAP_KILL\"]}}",
                             "process.json", &pr, &err);
  CHECK (r == 0 && strcmp (pr.argv[0], "ls") == 0 && pr.capsets.bounding == (1ULL << 5), "exec --process JSON");
  if (r == 0)
    oci_process_clear (&pr);
  cella_error_free (&err);
  r = oci_process_parse ("{\"args\": [], \"cwd\": \"/\"}", "process.json", &pr, &err);
  CHECK (r < 0 && err && strcmp (err->msg, "process.json: args: must name the program to run") == 0,
         "exec --process: the error names the key");
  cella_error_free (&err);
}

static const struct {
  const char *patch, *msg;
} errors[] = {
  { "{\"ociVersion\": null}", "config.json: ociVersion: is required" },
  { "{\"ociVersion\": \"2.0.0\"}", "config.json: ociVersion: `2.0.0`: cella runs version 1 configurations" },
  { "{\"root\": {\"path\": 5}}", "config.json: root.path: must be a string" },
  { "{\"root\": {\"readonly\": \"yes\"}}", "config.json: root.readonly: must be true or false" },
  { "{\"process\": null}", "config.json: process: is required" },
  { "{\"process\": {\"args\": []}}", "config.json: process.args: must name the program to run" },
  { "{\"process\": {\"args\": [\"sh\", 3]}}", "config.json: process.args[1]: must be a string" },
  { "{\"process\": {\"cwd\": \"tmp\"}}", "config.json: process.cwd: `tmp`: must be an absolute path" },
  { "{\"process\": {\"env\": [\"PATH=/bin\", \"NOEQUALS\"]}}",
    "config.json: process.env[1]: `NOEQUALS`: must be KEY=VALUE" },
  { "{\"process\": {\"user\": {\"uid\": -1}}}", "config.json: process.user.uid: must be between 0 and 4294967294" },
  { "{\"process\": {\"user\": {\"uid\": 0, \"gid\": 0, \"umask\": 512}}}",
    "config.json: process.user.umask: must be between 0 and 511" },
  { "{\"process\": {\"user\": {\"uid\": 0, \"gid\": 0, \"additionalGids\": [\"wheel\"]}}}",
    "config.json: process.user.additionalGids[0]: must be a group id (an integer)" },
  { "{\"process\": {\"rlimits\": [{\"type\": \"RLIMIT_BOGUS\", \"soft\": 1, \"hard\": 1}]}}",
    "config.json: process.rlimits[0].type: unknown resource limit `RLIMIT_BOGUS`" },
  { "{\"process\": {\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 10, \"hard\": 5}]}}",
    "config.json: process.rlimits[0]: soft limit 10 is above the hard limit 5" },
  { "{\"process\": {\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1, \"hard\": 1}, {\"type\": \"RLIMIT_NOFILE\", \"soft\": 1, \"hard\": 1}]}}",
    "config.json: process.rlimits[1]: RLIMIT_NOFILE given twice" },

  { "{\"process\": {\"oomScoreAdj\": 2000}}", "config.json: process.oomScoreAdj: must be between -1000 and 1000" },
  { "{\"process\": {\"scheduler\": {\"policy\": \"SCHED_OTHER\"}}}", "config.json: process.scheduler: not supported" },
  { "{\"process\": {\"noNewPrivileges\": 1}}", "config.json: process.noNewPrivileges: must be true or false" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/s\", \"options\": [\"rbind\", \"rwx\"]}]}",
    "config.json: mounts[0].options[1]: unknown option `rwx`" },
  { "{\"mounts\": [{\"destination\": \"x\", \"type\": \"tmpfs\"}]}",
    "config.json: mounts[0].destination: `x`: must be an absolute path without `..`" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\"}]}",
    "config.json: mounts[0].source: a bind mount needs a source" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"ext4\", \"source\": \"/dev/sda\"}]}",
    "config.json: mounts[0].type: mount type `ext4` is not supported" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"tmpfs\", \"options\": [\"size=lots\"]}]}",
    "config.json: mounts[0].options[0]: `size=lots`: size must be a number of bytes (with k, m or g)" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/s\", \"options\": [\"bind\", \"idmap\"]}]}",
    "config.json: mounts[0]: idmap without uidMappings and gidMappings on the mount needs a new user namespace" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"tmpfs\", \"options\": [\"idmap\"]}]}",
    "config.json: mounts[0]: idmapped mounts are for bind mounts only" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/s\", \"options\": [\"bind\", \"tmpcopyup\"]}]}",
    "config.json: mounts[0].options: tmpcopyup is for tmpfs mounts" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/s\","
    " \"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]}]}",
    "config.json: mounts[0]: an idmapped mount needs both uidMappings and gidMappings" },
  { "{\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/s\","
    " \"uidMappings\": [{\"containerID\": 0, \"size\": 1}]}]}",
    "config.json: mounts[0].uidMappings[0]: needs containerID, hostID and size" },
  { "{\"hooks\": {\"prestart\": [{\"path\": \"hook\"}]}}",
    "config.json: hooks.prestart[0].path: `hook`: must be an absolute path" },
  { "{\"hooks\": {\"poststop\": [{\"path\": \"/h\", \"timeout\": 0}]}}",
    "config.json: hooks.poststop[0].timeout: must be between 1 and 2147483647" },
  /* found by fuzz/fuzz_oci_config.c: a refused hook leaked the args and env read before (ASan build) */
  { "{\"hooks\": {\"poststop\": [{\"path\": \"/h\", \"args\": [\"h\", \"-x\"], \"env\": [\"A=1\"], \"timeout\": 0}]}}",
    "config.json: hooks.poststop[0].timeout: must be between 1 and 2147483647" },
  { "{\"hooks\": {\"prestart\": [{\"args\": [\"h\"], \"env\": [\"A=1\", 2]}]}}",
    "config.json: hooks.prestart[0].env[1]: must be a string" },
  { "{\"hooks\": {\"createContainer\": {}}}", "config.json: hooks.createContainer: must be an array" },
  { "{\"annotations\": {\"a\": 1}}", "config.json: annotations.a: must be a string" },
  { "{\"linux\": null}", "config.json: linux: is required (cella runs Linux containers)" },
  { "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"space\"}]}}",
    "config.json: linux.namespaces[1].type: unknown namespace type `space`" },
  { "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"mount\"}]}}",
    "config.json: linux.namespaces[1]: namespace `mount` given twice" },
  { "{\"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"user\"}], \"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}],"
    " \"gidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]}, \"hostname\": null}",
    "config.json: linux.namespaces: a new user namespace needs a new mount namespace too" },
  { "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"network\", \"path\": \"netns\"}]}, \"hostname\": null}",
    "config.json: linux.namespaces[1].path: `netns`: must be an absolute path" },
  { "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}",
    "config.json: hostname: needs a UTS namespace of the container's own" },
  { "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"user\"}, {\"type\": \"uts\"}]}}",
    "config.json: linux.uidMappings: a new user namespace needs uidMappings and gidMappings" },
  { "{\"linux\": {\"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]}}",
    "config.json: linux.uidMappings: id mappings need a new user namespace" },
  { "{\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"c\"}]}}",
    "config.json: linux.devices[0]: a character device needs major and minor" },
  { "{\"linux\": {\"devices\": [{\"path\": \"/etc/../x\", \"type\": \"c\", \"major\": 1, \"minor\": 3}]}}",
    "config.json: linux.devices[0].path: `/etc/../x`: must be an absolute path without `..`" },
  { "{\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"c\", \"major\": 1, \"minor\": 3, \"fileMode\": 131072}]}}",
    "config.json: linux.devices[0].fileMode: must be between 0 and 65535" },
  { "{\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"z\"}]}}",
    "config.json: linux.devices[0].type: must be c, b, u or p" },
  { "{\"mounts\": [], \"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"c\", \"major\": 1, \"minor\": 3}]}}",
    "config.json: linux.devices: cella makes the device nodes under /dev in a tmpfs mounted on /dev" },
  { "{\"linux\": {\"sysctl\": {\"kernel.hostname\": \"x\"}}}",
    "config.json: linux.sysctl.kernel.hostname: not allowed: it conflicts with the config's `hostname` field" },
  { "{\"mounts\": [{\"destination\": \"/img\", \"type\": \"overlay\", \"options\": [\"upperdir=/u\"]}]}",
    "config.json: mounts[0].options: an overlay mount needs lowerdir=" },
  { "{\"mounts\": [{\"destination\": \"/img\", \"type\": \"overlay\", \"options\": [\"lowerdir=l\"]}]}",
    "config.json: mounts[0].options: `lowerdir=l`: overlay directories must be absolute host paths" },
  { "{\"mounts\": [{\"destination\": \"/img\", \"type\": \"overlay\", \"options\": [\"lowerdir=/l\", \"upperdir=/u\"]}]}",
    "config.json: mounts[0].options: an overlay mount needs both upperdir= and workdir=, or neither" },
  { "{\"linux\": {\"sysctl\": {\"kernel.panic\": \"1\"}}}",
    "config.json: linux.sysctl.kernel.panic: not a namespaced sysctl: it would change the host" },
  { "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"uts\"}], \"sysctl\": {\"net.ipv4.ip_forward\": \"1\"}}}",
    "config.json: linux.sysctl.net.ipv4.ip_forward: needs a network namespace of the container's own" },
  { "{\"linux\": {\"sysctl\": {\"net.ipv4.ip_forward\": 1}}}",
    "config.json: linux.sysctl.net.ipv4.ip_forward: must be a string" },
  { "{\"linux\": {\"resources\": {\"memory\": {\"limit\": \"64m\"}}}}",
    "config.json: linux.resources.memory.limit: must be an integer" },
  { "{\"linux\": {\"resources\": {\"memory\": {\"swappiness\": 200}}}}",
    "config.json: linux.resources.memory.swappiness: must be between 0 and 100" },
  { "{\"linux\": {\"resources\": {\"cpu\": {\"realtimeRuntime\": 1000}}}}",
    "config.json: linux.resources.cpu.realtimeRuntime: not supported by cella" },
  { "{\"linux\": {\"resources\": {\"blockIO\": {\"weight\": 5}}}}",
    "config.json: linux.resources.blockIO.weight: must be between 10 and 1000" },
  { "{\"linux\": {\"resources\": {\"blockIO\": {\"throttleWriteIOPSDevice\": [{\"major\": 8}]}}}}",
    "config.json: linux.resources.blockIO.throttleWriteIOPSDevice[0]: needs major, minor and rate" },
  { "{\"linux\": {\"resources\": {\"hugepageLimits\": [{\"pageSize\": \"huge\", \"limit\": 1}]}}}",
    "config.json: linux.resources.hugepageLimits[0].pageSize: must be a page size like 2MB or 1GB" },
  { "{\"linux\": {\"resources\": {\"devices\": [{\"access\": \"rwm\"}]}}}",
    "config.json: linux.resources.devices[0].allow: is required (true or false)" },
  { "{\"linux\": {\"resources\": {\"devices\": [{\"allow\": true, \"access\": \"rwx\"}]}}}",
    "config.json: linux.resources.devices[0].access: must be made of r, w and m" },
  { "{\"linux\": {\"resources\": {\"network\": {\"classID\": 1}}}}",
    "config.json: linux.resources.network: not supported by cella" },
  { "{\"linux\": {\"resources\": {\"unified\": {\"../x\": \"1\"}}}}",
    "config.json: linux.resources.unified.../x: not a cgroup file name (controller.file)" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_MAYBE\"}}}",
    "config.json: linux.seccomp.defaultAction: unknown action `SCMP_ACT_MAYBE`" },
  { "{\"linux\": {\"seccomp\": {}}}", "config.json: linux.seccomp.defaultAction: is required" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"run/l.sock\"}}}",
    "config.json: linux.seccomp.listenerPath: `run/l.sock`: must be an absolute path" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}}}",
    "config.json: linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_NOTIFY\", \"listenerPath\": \"/run/l.sock\"}}}",
    "config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_VAX\"]}}}",
    "config.json: linux.seccomp.architectures[0]: unknown architecture `SCMP_ARCH_VAX`" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_NEW_LISTENER\"]}}}",
    "config.json: linux.seccomp.flags[0]: unknown or unsupported flag `SECCOMP_FILTER_FLAG_NEW_LISTENER`" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [], \"action\": \"SCMP_ACT_KILL\"}]}}}",
    "config.json: linux.seccomp.syscalls[0].names: must name at least one system call" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_KILL\","
    " \"args\": [{\"index\": 7, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}}}",
    "config.json: linux.seccomp.syscalls[0].args[0].index: must be between 0 and 5" },
  { "{\"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_KILL\","
    " \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_ABOUT\"}]}]}}}",
    "config.json: linux.seccomp.syscalls[0].args[0].op: unknown operator `SCMP_CMP_ABOUT`" },
  { "{\"linux\": {\"maskedPaths\": [\"proc/kcore\"]}}",
    "config.json: linux.maskedPaths[0]: `proc/kcore`: must be an absolute path" },
  { "{\"linux\": {\"readonlyPaths\": [\"/proc/../etc\"]}}",
    "config.json: linux.readonlyPaths[0]: `/proc/../etc`: must be an absolute path" },
  { "{\"linux\": {\"rootfsPropagation\": \"sideways\"}}",
    "config.json: linux.rootfsPropagation: unknown propagation `sideways`" },
  { "{\"linux\": {\"personality\": {\"domain\": \"BSD\"}}}",
    "config.json: linux.personality.domain: must be LINUX or LINUX32" },
  { "{\"linux\": {\"personality\": {\"domain\": \"LINUX\", \"flags\": [\"ADDR_NO_RANDOMIZE\"]}}}",
    "config.json: linux.personality.flags: personality flags are not supported by cella" },
  { "{\"linux\": {\"timeOffsets\": {\"monotonic\": {\"secs\": 1}}}}",
    "config.json: linux.timeOffsets: needs a new time namespace" },
  { "{\"linux\": {\"intelRdt\": {\"closID\": \"x\"}}}",
    "config.json: linux.intelRdt: Intel RDT is not supported by cella" },
};

static void
test_errors (void)
{
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    {
      cella_error_t err = NULL;
      struct plan *p = NULL;
      int r = load (errors[i].patch, &p, &err);
      bool ok = r < 0 && p == NULL && err && strncmp (err->msg, errors[i].msg, strlen (errors[i].msg)) == 0;
      CHECK (ok, "error: %s", errors[i].msg);
      if (!ok)
        printf ("#   got: %s\n", err ? err->msg : "(no error)");
      plan_free (p);
      cella_error_free (&err);
    }
}

static void
test_lsm_and_json (void)
{
  cella_error_t err = NULL;
  struct plan *p = NULL;
  if (access ("/sys/kernel/security/apparmor", F_OK) != 0)
    {
      int r = load ("{\"process\": {\"apparmorProfile\": \"docker-default\"}}", &p, &err);
      CHECK (
          r < 0 && err
              && strcmp (err->msg, "config.json: process.apparmorProfile: `docker-default`: this host has no AppArmor")
                     == 0,
          "apparmorProfile on a host without AppArmor");
      cella_error_free (&err);
    }
  else
    tap_skip ("this host has AppArmor", "apparmorProfile refused without AppArmor");
  if (access ("/sys/fs/selinux/enforce", F_OK) != 0)
    {
      int r = load ("{\"process\": {\"selinuxLabel\": \"system_u:system_r:container_t:s0\"}}", &p, &err);
      CHECK (r < 0 && err && strstr (err->msg, "process.selinuxLabel") && strstr (err->msg, "this host has no SELinux"),
             "selinuxLabel on a host without SELinux");
      cella_error_free (&err);
    }
  else
    tap_skip ("this host has SELinux", "selinuxLabel refused without SELinux");
  /* a mount label: nothing to label without SELinux (accepted, as runc and crun); refused with it */
  {
    int r = load ("{\"linux\": {\"mountLabel\": \"system_u:object_r:container_file_t:s0\"}}", &p, &err);
    if (access ("/sys/fs/selinux/enforce", F_OK) != 0)
      CHECK (r == 0, "mountLabel accepted on a host without SELinux");
    else
      CHECK (r < 0 && strstr (err->msg, "SELinux mount labels are not supported"), "mountLabel refused with SELinux");
    cella_error_free (&err);
    plan_free (p);
    p = NULL;
  }
  CHECK (oci_config_parse ("{\"a\": ", "/b", "config.json", &p, &err) < 0
             && strstr (err->msg, "config.json: not valid JSON"),
         "not JSON");
  cella_error_free (&err);
  CHECK (oci_config_parse ("{\"ociVersion\": \"1.0.0\", \"ociVersion\": \"1.0.1\"}", "/b", "config.json", &p, &err) < 0,
         "duplicate keys refused");
  cella_error_free (&err);
  CHECK (oci_config_load ("/nonexistent-bundle", &p, &err) < 0 && strstr (err->msg, "bundle `/nonexistent-bundle`"),
         "missing bundle");
  cella_error_free (&err);
}

static void
test_hook_run (void)
{
  struct plan_hook ok
      = { .path = (char *) "/bin/sh", .args = (char *[]){ "sh", "-c", "read -r s; test -n \"$s\"", NULL } };
  struct plan_hook bad = { .path = (char *) "/bin/sh", .args = (char *[]){ "sh", "-c", "exit 3", NULL } };
  struct plan_hook slow
      = { .path = (char *) "/bin/sh", .args = (char *[]){ "sh", "-c", "sleep 5", NULL }, .timeout = 1 };
  cella_error_t err = NULL;
  CHECK (oci_hook_run (&ok, "{\"status\":\"creating\"}", &err) == 0, "a hook reads the state on stdin");
  cella_error_free (&err);
  CHECK (oci_hook_run (&bad, "{}", &err) < 0 && strcmp (err->msg, "hook `/bin/sh`: exited with status 3") == 0,
         "a failing hook is an error naming it");
  cella_error_free (&err);
  CHECK (oci_hook_run (&slow, "{}", &err) < 0 && strstr (err->msg, "timeout of 1 s"),
         "a hook past its timeout is killed");
  cella_error_free (&err);
}

/* `features` advertises what the parse table takes: every name loads on a tmpfs mount (or, for
 * bind-only ones, on a bind) */
static void
test_advertised_mount_options (void)
{
  json_t *names = oci_mount_option_names (), *n;
  size_t i, refused = 0;
  CHECK (json_array_size (names) > 20, "features lists the mount options");
  json_array_foreach (names, i, n)
    {
      const char *o = json_string_value (n);
      bool bind_only = strcmp (o, "idmap") == 0 || strcmp (o, "ridmap") == 0;
      cleanup_free char *patch = xasprintf (
          "{\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"uts\"}, {\"type\": \"user\"}],"
          " \"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}],"
          " \"gidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]},"
          " \"mounts\": [{\"destination\": \"/m\", \"type\": \"%s\", \"source\": \"%s\", \"options\": [\"%s\"]}]}",
          bind_only ? "bind" : "tmpfs", bind_only ? "/srv" : "tmpfs", o);
      cella_error_t err = NULL;
      struct plan *p = NULL;
      if (load (patch, &p, &err) < 0)
        {
          printf ("#   `%s`: %s\n", o, err->msg);
          cella_error_free (&err);
          refused++;
        }
      plan_free (p);
    }
  CHECK (refused == 0, "every advertised mount option is accepted (%zu refused)", refused);
  json_decref (names);
}

/* What runc and crun accept with a warning: left out of the plan, said in process.warnings. */
static void
test_warnings (void)
{
  cleanup_plan struct plan *p = load_ok (
      "{\"process\": {\"capabilities\": {\"bounding\": [\"CAP_KILL\", \"CAP_FLY\"], \"permitted\": [\"CAP_KILL\", \"CAP_CHOWN\"],"
      " \"inheritable\": [\"CAP_KILL\"], \"ambient\": [\"CAP_KILL\", \"CAP_CHOWN\"]}}}",
      "an unknown capability, an ambient one not inheritable");
  if (p == NULL)
    return;
  CHECK (p->process.capsets.bounding == (1ULL << 5), "unknown capability left out of bounding");
  CHECK (p->process.capsets.ambient == (1ULL << 5), "ambient CAP_CHOWN (not inheritable) dropped, CAP_KILL kept");
  CHECK (
      strv_len (p->process.warnings) == 2
          && strstr (p->process.warnings[0], "process.capabilities.bounding[1]: unknown capability `CAP_FLY`: ignored")
          && strstr (p->process.warnings[1],
                     "process.capabilities.ambient: CAP_CHOWN: not also permitted and inheritable"),
      "both said as warnings naming their JSON path");
}

/* What podman and runc's users write, accepted as runc accepts it. */
static void
test_runc_compat (void)
{
  cleanup_plan struct plan *p = load_ok (
      "{\"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\"},"
      " {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"options\": [\"nosuid\", \"strictatime\", \"mode=755\"]},"
      " {\"destination\": \"/a//b/./c/\", \"type\": \"tmpfs\", \"options\": [\"noatime\", \"nodiratime\", \"sync\", \"dirsync\"]},"
      " {\"destination\": \"/img\", \"type\": \"overlay\", \"source\": \"overlay\","
      "   \"options\": [\"lowerdir=/l1:/l2\", \"private\"]},"
      " {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv\", \"options\": [\"bind\", \"strictatime\"]}],"
      " \"linux\": {\"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229, \"fileMode\": 8630},"
      "  {\"path\": \"/opt/null\", \"type\": \"c\", \"major\": 1, \"minor\": 3}],"
      "  \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/agent.sock\", \"listenerMetadata\": \"m\","
      "   \"syscalls\": [{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}}}",
      "podman's configs");
  const struct op *op;
  if (p == NULL)
    return;
  op = find_op (p, OP_DEV, "/dev");
  CHECK (op && op->dev_no_shm && op->flags == MOUNTF_STRICTATIME, "/dev: strictatime kept, no /dev/shm of its own");
  op = find_op (p, OP_TMPFS, "/a/b/c");
  CHECK (op && op->flags == (MOUNTF_NOATIME | MOUNTF_NODIRATIME) && strv_len (op->fsopts) == 2
             && strcmp (op->fsopts[0], "sync") == 0 && strcmp (op->fsopts[1], "dirsync") == 0,
         "repeated slashes cleaned; noatime, nodiratime, sync, dirsync applied");
  op = find_op (p, OP_MOUNT, "/img");
  CHECK (op && strcmp (op->fstype, "overlay") == 0 && strv_len (op->fsopts) == 1 && op->propagation == PROP_PRIVATE,
         "an overlay mount (podman --mount type=image)");
  op = find_op (p, OP_BIND, "/data");
  CHECK (op && (op->flags & MOUNTF_STRICTATIME), "strictatime on a bind");
  CHECK (p->ndevices == 2 && p->devices[0].mode == 0666 && strcmp (p->devices[1].path, "/opt/null") == 0,
         "fileMode with the type bits (0o20666); a device outside /dev");
  CHECK (p->process.seccomp_profile && strcmp (p->process.seccomp_profile->listener_path, "/run/agent.sock") == 0
             && p->process.seccomp_profile->rules[0].action == SCMPA_NOTIFY,
         "seccomp listenerPath and SCMP_ACT_NOTIFY");
  {
    cleanup_free char *a = plan_to_json (p), *b = NULL;
    cleanup_plan struct plan *q = NULL;
    cella_error_t err = NULL;
    if (plan_from_json (a, &q, &err) < 0)
      cella_error_free (&err);
    b = q ? plan_to_json (q) : NULL;
    CHECK (b && strcmp (a, b) == 0 && find_op (q, OP_DEV, "/dev")->dev_no_shm
               && find_op (q, OP_TMPFS, "/a/b/c")->flags == (MOUNTF_NOATIME | MOUNTF_NODIRATIME)
               && strcmp (q->process.seccomp_profile->listener_metadata, "m") == 0,
           "the saved plan keeps them");
  }
}

int
main (void)
{
  test_base ();
  test_process ();
  test_mounts ();
  test_hooks ();
  test_linux ();
  test_namespaces ();
  test_round_trip ();
  test_process_json ();
  test_errors ();
  test_warnings ();
  test_runc_compat ();
  test_lsm_and_json ();
  test_hook_run ();
  test_advertised_mount_options ();
  return tap_done ();
}
