/* Unit tests for the plan: option parsers, the builder's defaults, validation, JSON. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/options.h"
#include "util/caps.h"
#include "ns/landlock.h"
#include "plan/build.h"
#include "plan/idmap.h"
#include "tap.h"
#include "hosts.h"
#include "errcheck.h"

static void
test_volume (void)
{
  cella_error_t err = NULL;
  char *src = NULL, *dst = NULL;
  unsigned flags = 0;
  CHECK (parse_volume ("/a:/b", &src, &dst, &flags, &err) == 0 && strcmp (src, "/a") == 0 && strcmp (dst, "/b") == 0
             && (flags & BIND_WRITABLE) && (flags & BIND_RECURSIVE),
         "volume /a:/b is a writable recursive bind");
  free (src), free (dst), src = dst = NULL; /* a failed parse below leaves them as they are */
  CHECK (parse_volume ("/a:/b:ro", &src, &dst, &flags, &err) == 0 && !(flags & BIND_WRITABLE),
         "volume :ro is read-only");
  free (src), free (dst), src = dst = NULL;
  CHECK (parse_volume ("rel:/b", &src, &dst, &flags, &err) < 0 && err_has (&err, "`rel` must be an absolute host path"),
         "relative volume source is refused, naming it");
  CHECK (parse_volume ("/a:rel", &src, &dst, &flags, &err) < 0 && err_has (&err, "target `rel` must be an absolute"),
         "relative volume target is refused, naming it");
  CHECK (parse_volume ("/a", &src, &dst, &flags, &err) < 0 && err_has (&err, "expected HOST:CONTAINER"),
         "volume without target is refused");
  CHECK (parse_volume ("/a:/b:rx", &src, &dst, &flags, &err) < 0 && err_has (&err, "unknown option `rx`"),
         "unknown volume option is refused");
  CHECK (parse_volume ("/a:/b:ro:x", &src, &dst, &flags, &err) < 0 && err_has (&err, "too many"),
         "too many fields are refused");
}

static void
test_tmpfs (void)
{
  cella_error_t err = NULL;
  char *dst = NULL;
  long long size;
  mode_t mode;
  unsigned flags;
  CHECK (parse_tmpfs ("/t", &dst, &size, &mode, &flags, &err) == 0 && size == 0 && mode == 01777
             && (flags & REMOUNT_NOEXEC) && (flags & REMOUNT_NOSUID) && (flags & REMOUNT_NODEV),
         "tmpfs defaults: no size, mode 1777, noexec,nosuid,nodev (docker's)");
  free (dst), dst = NULL;
  CHECK (parse_tmpfs ("/t:size=1m,mode=755,exec", &dst, &size, &mode, &flags, &err) == 0 && size == 1048576
             && mode == 0755 && !(flags & REMOUNT_NOEXEC),
         "tmpfs size=1m,mode=755,exec");
  free (dst), dst = NULL;
  CHECK (parse_tmpfs ("/t:size=abc", &dst, &size, &mode, &flags, &err) < 0 && err_has (&err, "bad size `abc`"),
         "bad tmpfs size is refused, naming it");
  CHECK (parse_tmpfs ("/t:mode=99", &dst, &size, &mode, &flags, &err) < 0 && err_has (&err, "bad mode `99`"),
         "bad tmpfs mode is refused");
  CHECK (parse_tmpfs ("/t:bogus", &dst, &size, &mode, &flags, &err) < 0 && err_has (&err, "unknown option `bogus`"),
         "unknown tmpfs option is refused");
  CHECK (parse_tmpfs ("t", &dst, &size, &mode, &flags, &err) < 0 && err_has (&err, "must be an absolute path"),
         "relative tmpfs target is refused");
}

static void
test_sizes (void)
{
  CHECK (parse_size ("4096") == 4096 && parse_size ("2k") == 2048 && parse_size ("3M") == 3145728
             && parse_size ("1g") == 1073741824LL && parse_size ("1mb") == 1048576,
         "parse_size suffixes");
  CHECK (parse_size ("") < 0 && parse_size ("1x") < 0 && parse_size ("-1") < 0
             && parse_size ("99999999999999999999") < 0,
         "parse_size rejects garbage and overflow");
}

static void
test_env (void)
{
  cella_error_t err = NULL;
  char **env = NULL;
  char path[] = "/tmp/cella-envfile-XXXXXX";
  int fd = mkstemp (path);
  const char text[] = "# comment\n\nA=1\n  B=two words\nA=3\r\nHOSTVAR\n";
  CHECK (fd >= 0 && write (fd, text, sizeof text - 1) == (ssize_t) (sizeof text - 1), "write an env file");
  close (fd);
  setenv ("HOSTVAR", "fromhost", 1);
  CHECK (parse_env_file (path, &env, &err) == 0, "parse env file");
  CHECK_STR (env_get (env, "A"), "3", "later KEY replaces earlier; CRLF stripped");
  CHECK_STR (env_get (env, "B"), "two words", "value keeps its spaces");
  CHECK_STR (env_get (env, "HOSTVAR"), "fromhost", "bare KEY takes the host's value");
  CHECK (strv_len (env) == 3, "comments and blank lines are skipped");
  CHECK (parse_env_line ("=x", &env, &err) < 0 && err_has (&err, "expected KEY=VALUE"), "empty name is refused");
  CHECK (parse_env_line ("A B=x", &env, &err) < 0 && err_has (&err, "whitespace"), "name with space is refused");
  unlink (path);
  CHECK (parse_env_file (path, &env, &err) < 0 && err_has (&err, path), "missing env file names the file");
  strv_free (env);
}

static void
test_mount_spec (void)
{
  cella_error_t err = NULL;
  struct plan *p = plan_new ();
  CHECK (parse_mount ("type=overlay,target=/o,lower=/a:/b,readonly", p, &err) == 0 && p->nops == 1
             && p->ops[0].ov_mode == OVERLAY_READONLY && strv_len (p->ops[0].lower) == 2,
         "--mount overlay read-only with two lowers");
  CHECK (parse_mount ("type=overlay,target=/o,lower=/a,upper=/u,work=/w", p, &err) == 0
             && p->ops[1].ov_mode == OVERLAY_PERSISTENT,
         "--mount overlay persistent");
  CHECK (parse_mount ("type=overlay,target=/o,lower=/a", p, &err) == 0 && p->ops[2].ov_mode == OVERLAY_EPHEMERAL,
         "--mount overlay ephemeral");
  CHECK (parse_mount ("type=tmpfs,target=/t,tmpfs-size=1m", p, &err) == 0 && p->ops[3].size == 1048576,
         "--mount tmpfs with size");
  CHECK (parse_mount ("type=bind,source=/s,target=/t,readonly", p, &err) == 0 && !(p->ops[4].flags & BIND_WRITABLE),
         "--mount bind readonly");
  CHECK (parse_mount ("type=overlay,target=/o,lower=/a,upper=/u", p, &err) < 0 && err_has (&err, "upper= and work="),
         "overlay upper without work is refused");
  CHECK (parse_mount ("type=nfs,target=/x", p, &err) < 0 && err_has (&err, "unknown type `nfs`"), "unknown type");
  CHECK (parse_mount ("type=bind,target=/x,colour=red", p, &err) < 0 && err_has (&err, "unknown key `colour`"),
         "unknown key");
  /* found by fuzz/fuzz_options.c: a key given twice leaked its first value (the sanitizer build
   * reports it); the last one wins, as in docker */
  CHECK (parse_mount ("type=bind,src=/a,source=/b,type=overlay,lower=/l,target=/x,dst=/t,upper=/u,upper=/v", p, &err)
                 < 0
             && err_has (&err, "upper= and work="),
         "--mount with keys given twice, refused afterwards: nothing leaks");
  CHECK (parse_mount ("type=bind,type=tmpfs,target=/x,dst=/t", p, &err) == 0 && p->ops[5].kind == OP_TMPFS
             && strcmp (p->ops[5].target, "/t") == 0,
         "--mount with keys given twice: the last wins");
  /* validation: a read-only overlay needs two lowers; targets must be clean absolute paths */
  p->ops[0].lower[1] = (free (p->ops[0].lower[1]), NULL);
  p->rootfs = xstrdup ("/");
  strv_push (&p->process.argv, "true");
  CHECK (plan_validate (p, &err) < 0 && err_has (&err, "at least two lower layers"),
         "read-only overlay with one lower");
  plan_free (p);

  p = plan_new ();
  p->rootfs = xstrdup ("/");
  strv_push (&p->process.argv, "true");
  plan_add_tmpfs (p, "/a/../../etc", 0, 0);
  CHECK (plan_validate (p, &err) < 0 && err_has (&err, "without `..`"), "target with .. is refused");
  plan_free (p);
}

static void
test_idmap (void)
{
  uint32_t s = 0, c = 0;
  const char *text = "alice:100000:65536\n1001:300000:1000\nbob:200000:65536\n";
  CHECK (idmap_find_range (text, "bob", 1002, &s, &c) == 0 && s == 200000 && c == 65536, "subuid range by name");
  CHECK (idmap_find_range (text, "carol", 1001, &s, &c) == 0 && s == 300000 && c == 1000, "subuid range by uid");
  CHECK (idmap_find_range (text, "dave", 7, &s, &c) == 1, "no range for an unknown user");
}

static void
make_file (const char *dir, const char *name, const char *text)
{
  cleanup_free char *p = xasprintf ("%s/%s", dir, name);
  int fd = open (p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write (fd, text, strlen (text)) < 0)
    abort ();
  close (fd);
}

static void
test_user (void)
{
  char dir[] = "/tmp/cella-root-XXXXXX";
  cella_error_t err = NULL;
  uid_t uid;
  gid_t gid, *groups = NULL;
  size_t ng = 0;
  char *home = NULL;
  int rootfd;
  cleanup_free char *etc = NULL, *cmd = NULL;

  CHECK (mkdtemp (dir) != NULL, "temp root");
  etc = xasprintf ("%s/etc", dir);
  mkdir (etc, 0755);
  make_file (dir, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:www:/var/www:/bin/false\n");
  make_file (dir, "etc/group", "root:x:0:\nwww:x:34:\nstaff:x:50:www,other\n");
  rootfd = open (dir, O_PATH | O_DIRECTORY);
  CHECK (user_resolve (rootfd, "www", &uid, &gid, &groups, &ng, &home, &err) == 0 && uid == 33 && gid == 34 && ng == 1
             && groups[0] == 50 && strcmp (home, "/var/www") == 0,
         "user by name: uid, primary gid, supplementary groups, home");
  free (groups), free (home), groups = NULL, home = NULL;
  CHECK (user_resolve (rootfd, "1234:staff", &uid, &gid, &groups, &ng, &home, &err) == 0 && uid == 1234 && gid == 50,
         "numeric uid with group name");
  free (groups), free (home), groups = NULL, home = NULL;
  CHECK (user_resolve (rootfd, "33:7", &uid, &gid, &groups, &ng, &home, &err) == 0 && uid == 33 && gid == 7,
         "uid:gid numeric");
  free (groups), free (home), groups = NULL, home = NULL;
  CHECK (user_resolve (rootfd, "nosuch", &uid, &gid, &groups, &ng, &home, &err) < 0 && err_has (&err, "user `nosuch`"),
         "unknown user names it");
  CHECK (user_resolve (rootfd, "www:nogroup", &uid, &gid, &groups, &ng, &home, &err) < 0
             && err_has (&err, "no such group `nogroup`"),
         "unknown group names it");
  /* a symlinked /etc/passwd resolves inside the root, never to the host's file */
  make_file (dir, "etc/real", "evil:x:4242:4242::/:/bin/sh\n");
  {
    cleanup_free char *pw = xasprintf ("%s/etc/passwd", dir);
    unlink (pw);
    CHECK (symlink ("/etc/real", pw) == 0, "symlink /etc/passwd -> /etc/real (absolute, inside the root)");
  }
  CHECK (user_resolve (rootfd, "evil", &uid, &gid, &groups, &ng, &home, &err) == 0 && uid == 4242,
         "absolute symlink in the root is resolved in the root");
  free (groups), free (home);
  close (rootfd);
  cmd = xasprintf ("rm -rf '%s'", dir);
  CHECK (system (cmd) == 0, "clean up");
}

static void
test_builder (void)
{
  struct run_options o = { 0 };
  struct plan *p = NULL;
  cella_error_t err = NULL;
  char dir[] = "/tmp/cella-root-XXXXXX";
  cleanup_free char *etc = NULL, *json = NULL, *cmd = NULL;
  json_t *j;

  if (mkdtemp (dir) == NULL)
    abort ();
  etc = xasprintf ("%s/etc", dir);
  mkdir (etc, 0755);
  make_file (dir, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  strv_push (&o.command, "echo");
  strv_push (&o.env, "FOO=bar");
  strv_push (&o.tmpfs, "/scratch:size=1m");
  strv_push (&o.cap_drop, "ALL");
  strv_push (&o.cap_add, "chown");
  o.network = xstrdup ("none");
  o.hostname = xstrdup ("box");
  o.workdir = xstrdup ("/work");
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) == 0, "build a plan from options");
  if (p == NULL)
    return;
  CHECK (p->process.caps == (UINT64_C (1) << 0), "--cap-drop ALL --cap-add chown leaves only CAP_CHOWN");
  CHECK ((p->ns & PLAN_NS_NET) && p->net == NET_NONE, "--network none adds a network namespace");
  CHECK_STR (env_get (p->process.env, "FOO"), "bar", "-e is in the environment");
  CHECK_STR (env_get (p->process.env, "HOME"), "/root", "HOME from the container's passwd");
  CHECK_STR (env_get (p->process.env, "HOSTNAME"), "box", "HOSTNAME is the hostname");
  CHECK (p->process.seccomp && !p->process.no_new_privs, "seccomp on, no_new_privs off by default");
  CHECK (p->backend != BACKEND_NS || p->landlock == PLAN_LANDLOCK_AUTO, "Landlock scoping is auto by default (ns)");
  {
    bool proc = false, dev = false, mask_kcore = false, ro_sys = false, scratch = false, wd = false;
    for (size_t i = 0; i < p->nops; i++)
      {
        struct op *op = &p->ops[i];
        proc |= op->kind == OP_PROC && !strcmp (op->target, "/proc");
        dev |= op->kind == OP_DEV && op->mqueue;
        mask_kcore |= op->kind == OP_MASK && !strcmp (op->target, "/proc/kcore");
        ro_sys |= op->kind == OP_READONLY && !strcmp (op->target, "/proc/sys");
        scratch |= op->kind == OP_TMPFS && op->size == 1048576;
        wd |= op->kind == OP_MKDIR && !strcmp (op->target, "/work");
      }
    CHECK (proc && dev && mask_kcore && ro_sys && scratch && wd,
           "default ops: proc, dev with mqueue, masked /proc/kcore, read-only /proc/sys, the tmpfs, the workdir");
  }
  json = plan_to_json (p);
  j = json_loads (json, 0, NULL);
  CHECK (
      j && json_is_array (json_object_get (j, "ops"))
          && strcmp (json_string_value (json_object_get (j, "network")), "none") == 0
          && strcmp (json_string_value (json_array_get (json_object_get (json_object_get (j, "process"), "args"), 0)),
                     "echo")
                 == 0,
      "plan JSON has ops, network and args");
  json_decref (j);
  plan_free (p);
  p = NULL;

  free (o.network);
  o.network = xstrdup ("bridge0");
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) < 0 && err_has (&err, "--network `bridge0`"),
         "unknown network mode names it");
  free (o.network);
  o.network = NULL;
  strv_push (&o.security_opts, "landlock=off");
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) == 0 && p->landlock == 0,
         "--security-opt landlock=off");
  plan_free (p);
  p = NULL;
  strv_push (&o.security_opts, "landlock:signal");
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) == 0 && p->landlock == PLAN_LANDLOCK_SIGNAL,
         "the last --security-opt landlock wins");
  plan_free (p);
  p = NULL;
  o.privileged = true;
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) == 0 && p->landlock == PLAN_LANDLOCK_SIGNAL,
         "--privileged keeps a Landlock scope asked for by name");
  plan_free (p);
  p = NULL;
  strv_free (o.security_opts);
  o.security_opts = NULL;
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) == 0 && p->landlock == 0,
         "--privileged: no Landlock scoping");
  plan_free (p);
  p = NULL;
  o.privileged = false;
  strv_push (&o.security_opts, "landlock=nope");
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) < 0
             && err_has (&err, "--security-opt `landlock=nope`"),
         "a bad landlock value names the option");
  strv_free (o.security_opts);
  o.security_opts = NULL;
  strv_push (&o.cap_add, "CAP_BOGUS");
  CHECK (plan_from_run_options (&o, &root_host, dir, false, &p, &err) < 0 && err_has (&err, "BOGUS"),
         "unknown capability names it");
  run_options_free (&o);
  cmd = xasprintf ("rm -rf '%s'", dir);
  if (system (cmd) != 0)
    abort ();
}

struct opts_t {
  bool flag;
  char *str;
  char **list;
};

static void
test_cli_parse (void)
{
  static const struct cli_option t[] = {
    { "flag", 'f', OPT_FLAG, offsetof (struct opts_t, flag), NULL, "" },
    { "str", 's', OPT_STRING, offsetof (struct opts_t, str), "S", "" },
    { "list", 'l', OPT_LIST, offsetof (struct opts_t, list), "L", "" },
    { NULL, 0, 0, 0, NULL, NULL },
  };
  struct opts_t o = { 0 };
  cella_error_t err = NULL;
  int help;
  char *argv1[] = { "-fs", "x", "--list=a", "-lb", "--str", "y", "image", "-f", NULL };
  int first = cli_parse (t, &o, 8, argv1, &help, &err);
  CHECK (first == 6 && o.flag && strcmp (o.str, "y") == 0 && strv_len (o.list) == 2,
         "grouped, = and separate values; stops at operand");
  char *argv2[] = { "--nope", NULL };
  CHECK (cli_parse (t, &o, 1, argv2, &help, &err) < 0 && err_has (&err, "unknown option `--nope`"),
         "unknown long option");
  char *argv3[] = { "--str", NULL };
  CHECK (cli_parse (t, &o, 1, argv3, &help, &err) < 0 && err_has (&err, "needs a value"), "missing value");
  free (o.str);
  strv_free (o.list);
}

/* --security-opt landlock= and the OCI annotation's values; what AUTO becomes. */
static void
test_landlock (void)
{
  static const struct {
    const char *in, *out;
    unsigned v;
  } good[] = {
    { "off", "off", 0 },
    { "auto", "auto", PLAN_LANDLOCK_AUTO },
    { "signal", "signal", PLAN_LANDLOCK_SIGNAL },
    { "signal,abstract-unix-socket", "abstract-unix-socket,signal",
      PLAN_LANDLOCK_SIGNAL | PLAN_LANDLOCK_ABSTRACT_UNIX },
  };
  static const char *const bad[] = { "", ",", "on", "auto,signal", "signal,bogus", "SIGNAL" };
  cella_error_t err = NULL;
  struct plan *p = plan_new ();
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    {
      unsigned v = 99;
      cleanup_free char *f = NULL;
      CHECK (plan_landlock_parse (good[i].in, &v, &err) == 0 && v == good[i].v, "landlock value `%s`", good[i].in);
      f = plan_landlock_format (v);
      CHECK (strcmp (f, good[i].out) == 0, "landlock value `%s` written back as `%s` (got `%s`)", good[i].in,
             good[i].out, f);
    }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      unsigned v = 99;
      CHECK (plan_landlock_parse (bad[i], &v, &err) < 0 && v == 99 && err_has (&err, "expected off, auto"),
             "landlock value `%s` refused", bad[i]);
    }

  p->landlock = PLAN_LANDLOCK_AUTO;
  p->ns = PLAN_NS_MNT | PLAN_NS_PID;
  CHECK (landlock_scopes_for_start (p) == PLAN_LANDLOCK_ABSTRACT_UNIX,
         "auto, the host's network: abstract unix sockets");
  p->ns = PLAN_NS_MNT | PLAN_NS_NET;
  CHECK (landlock_scopes_for_start (p) == PLAN_LANDLOCK_SIGNAL, "auto, the host's PID namespace: signals");
  p->ns = PLAN_NS_MNT | PLAN_NS_NET | PLAN_NS_PID;
  CHECK (landlock_scopes_for_start (p) == 0, "auto, namespaces of its own: nothing");
  p->ns_path[4] = xstrdup ("/proc/self/ns/net");
  CHECK (landlock_scopes_for_start (p) == PLAN_LANDLOCK_ABSTRACT_UNIX, "auto, joining the host's network by path");
  CHECK (landlock_scopes_for_exec (p, getpid ()) == (PLAN_LANDLOCK_ABSTRACT_UNIX | PLAN_LANDLOCK_SIGNAL),
         "auto, exec into a process in the host's namespaces: both");
  p->landlock = PLAN_LANDLOCK_SIGNAL;
  CHECK (landlock_scopes_for_start (p) == PLAN_LANDLOCK_SIGNAL, "an explicit scope whatever the namespaces");
  p->landlock = 0;
  CHECK (landlock_scopes_for_start (p) == 0 && landlock_scopes_for_exec (p, getpid ()) == 0, "off: nothing");
  plan_free (p);
}

/* A container's saved plan reads back to the same plan (the monitor and exec rely on it). */
static void
test_json_round_trip (void)
{
  struct plan *p = plan_new (), *q = NULL;
  cella_error_t err = NULL;
  cleanup_free char *a = NULL, *b = NULL;
  struct op *op;
  p->id = xstrdup ("0123");
  p->rootfs = xstrdup ("/img");
  p->root_overlay = true;
  p->root_upper = xstrdup ("/c/upper");
  p->root_work = xstrdup ("/c/work");
  p->ns = PLAN_NS_MNT | PLAN_NS_PID | PLAN_NS_USER;
  p->rootless = true;
  p->uid_map = xzalloc (sizeof *p->uid_map);
  p->uid_map[0] = (struct id_map){ 0, 1000, 1 };
  p->nuid_map = 1;
  strv_push (&p->process.argv, "sh");
  strv_push (&p->process.env, "A=b");
  p->process.cwd = xstrdup ("/w");
  p->process.caps = 0xa80425fbULL;
  p->process.tty = p->process.seccomp = true;
  p->process.groups = xzalloc (2 * sizeof (gid_t));
  p->process.groups[0] = 10;
  p->process.groups[1] = 20;
  p->process.ngroups = 2;
  plan_add_bind (p, "/src", "/dst", BIND_WRITABLE | BIND_OPTIONAL);
  plan_add_file (p, "/etc/hostname", "box\n", 4, 0644);
  op = plan_add_op (p, OP_OVERLAY, "/o");
  strv_push (&op->lower, "/l1");
  strv_push (&op->lower, "/l2");
  op->ov_mode = OVERLAY_READONLY;
  op = plan_add_op (p, OP_REMOUNT, "/r");
  op->flags = REMOUNT_RDONLY | REMOUNT_NOEXEC;
  plan_add_op (p, OP_DEV, "/dev")->mqueue = true;
  p->landlock = PLAN_LANDLOCK_ABSTRACT_UNIX | PLAN_LANDLOCK_SIGNAL;
  a = plan_to_json (p);
  CHECK (plan_from_json (a, &q, &err) == 0, "the saved plan reads back");
  if (q)
    {
      b = plan_to_json (q);
      CHECK_STR (b, a, "plan → JSON → plan → JSON is the same text");
      CHECK (q->process.ngroups == 2 && q->process.groups[1] == 20, "supplementary groups survive");
      CHECK (q->ops[0].flags == (BIND_WRITABLE | BIND_OPTIONAL), "bind flags survive");
      CHECK (q->landlock == (PLAN_LANDLOCK_ABSTRACT_UNIX | PLAN_LANDLOCK_SIGNAL), "Landlock scopes survive");
      plan_free (q);
    }
  CHECK (plan_from_json ("{\"root\": 3}", &q, &err) < 0 && err_has (&err, "root"), "a damaged plan names the bad key");
  CHECK (plan_from_json ("not json", &q, &err) < 0, "text that is not JSON is refused");
  CHECK (plan_from_json ("{\"landlock\": \"all\"}", &q, &err) < 0 && err_has (&err, "landlock"),
         "a bad saved Landlock value names the key");
  cella_error_free (&err);
  plan_free (p);
}

int
main (void)
{
  test_volume ();
  test_tmpfs ();
  test_sizes ();
  test_env ();
  test_mount_spec ();
  test_idmap ();
  test_user ();
  test_builder ();
  test_cli_parse ();
  test_landlock ();
  test_json_round_trip ();
  return tap_done ();
}
