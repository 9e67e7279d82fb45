/* OCI spec (a default config.json) and features (what this runtime supports, as JSON). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <seccomp.h>

#include "../util/options.h"
#include "../cgroup/cgroup.h"
#include "oci.h"
#include "cli.h"

#ifndef CELLA_VERSION
#define CELLA_VERSION "0.1.0"
#endif

static json_t *
strs (const char *const *v)
{
  json_t *a = json_array ();
  for (; *v; v++)
    json_array_append_new (a, json_string (*v));
  return a;
}

static json_t *
mount (const char *dst, const char *type, const char *src, const char *const *opts)
{
  json_t *m = json_pack ("{s:s, s:s, s:s}", "destination", dst, "type", type, "source", src);
  if (opts)
    json_object_set_new (m, "options", strs (opts));
  return m;
}

static const char *const masked[] = { "/proc/acpi",
                                      "/proc/asound",
                                      "/proc/kcore",
                                      "/proc/keys",
                                      "/proc/latency_stats",
                                      "/proc/timer_list",
                                      "/proc/timer_stats",
                                      "/proc/sched_debug",
                                      "/sys/firmware",
                                      "/proc/scsi",
                                      NULL };
static const char *const readonly[]
    = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL };
static const char *const default_caps[] = { "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", NULL };

static json_t *
default_spec (bool rootless)
{
  static const char *const args[] = { "sh", NULL };
  static const char *const env[]
      = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL };
  static const char *const dev_opts[] = { "nosuid", "strictatime", "mode=755", "size=65536k", NULL };
  static const char *const pts_opts[]
      = { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL };
  static const char *const pts_opts_rootless[]
      = { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", NULL };
  static const char *const shm_opts[] = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL };
  static const char *const mq_opts[] = { "nosuid", "noexec", "nodev", NULL };
  static const char *const sys_opts[] = { "nosuid", "noexec", "nodev", "ro", NULL };
  static const char *const sys_opts_rootless[] = { "rbind", "nosuid", "noexec", "nodev", "ro", NULL };
  static const char *const cg_opts[] = { "nosuid", "noexec", "nodev", "relatime", "ro", NULL };
  json_t *caps = json_pack ("{s:o, s:o, s:o}", "bounding", strs (default_caps), "effective", strs (default_caps),
                            "permitted", strs (default_caps));
  json_t *process
      = json_pack ("{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:o, s:[{s:s, s:i, s:i}], s:b}", "terminal", 1, "user", "uid", 0,
                   "gid", 0, "args", strs (args), "env", strs (env), "cwd", "/", "capabilities", caps, "rlimits",
                   "type", "RLIMIT_NOFILE", "hard", 1024, "soft", 1024, "noNewPrivileges", 1);
  json_t *mounts = json_array ();
  json_t *ns = json_array ();
  json_t *linux_ = json_object ();
  const char *const nss[] = { "pid", "network", "ipc", "uts", "mount", "cgroup", NULL };

  json_array_append_new (mounts, mount ("/proc", "proc", "proc", NULL));
  json_array_append_new (mounts, mount ("/dev", "tmpfs", "tmpfs", dev_opts));
  json_array_append_new (mounts, mount ("/dev/pts", "devpts", "devpts", rootless ? pts_opts_rootless : pts_opts));
  json_array_append_new (mounts, mount ("/dev/shm", "tmpfs", "shm", shm_opts));
  json_array_append_new (mounts, mount ("/dev/mqueue", "mqueue", "mqueue", mq_opts));
  if (rootless)
    json_array_append_new (mounts, mount ("/sys", "none", "/sys", sys_opts_rootless));
  else
    {
      json_array_append_new (mounts, mount ("/sys", "sysfs", "sysfs", sys_opts));
      json_array_append_new (mounts, mount ("/sys/fs/cgroup", "cgroup", "cgroup", cg_opts));
    }
  for (size_t i = 0; nss[i]; i++)
    if (!(rootless && strcmp (nss[i], "network") == 0) && !(rootless && strcmp (nss[i], "cgroup") == 0))
      json_array_append_new (ns, json_pack ("{s:s}", "type", nss[i]));
  if (rootless)
    {
      json_array_append_new (ns, json_pack ("{s:s}", "type", "user"));
      json_object_set_new (linux_, "uidMappings",
                           json_pack ("[{s:I, s:I, s:I}]", "containerID", (json_int_t) 0, "hostID",
                                      (json_int_t) geteuid (), "size", (json_int_t) 1));
      json_object_set_new (linux_, "gidMappings",
                           json_pack ("[{s:I, s:I, s:I}]", "containerID", (json_int_t) 0, "hostID",
                                      (json_int_t) getegid (), "size", (json_int_t) 1));
    }
  else
    json_object_set_new (linux_, "resources", json_pack ("{s:[{s:b, s:s}]}", "devices", "allow", 0, "access", "rwm"));
  json_object_set_new (linux_, "namespaces", ns);
  json_object_set_new (linux_, "maskedPaths", strs (masked));
  json_object_set_new (linux_, "readonlyPaths", strs (readonly));
  return json_pack ("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.1.0", "process", process, "root",
                    "path", "rootfs", "readonly", 1, "hostname", "cella", "mounts", mounts, "linux", linux_);
}

struct spec_opts {
  bool rootless;
  char *bundle;
};
static const struct cli_option spec_table[] = {
  { "rootless", 0, OPT_FLAG, offsetof (struct spec_opts, rootless), NULL,
    "For a container started by an ordinary user (user namespace, no network or cgroup namespace)" },
  { "bundle", 'b', OPT_STRING, offsetof (struct spec_opts, bundle), "DIR", "Write DIR/config.json (default: .)" },
  { NULL, 0, OPT_FLAG, 0, NULL, NULL },
};

int
oci_cmd_spec (struct oci_ctx *c, int argc, char **argv)
{
  struct spec_opts o = { 0 };
  cella_error_t err = NULL;
  cleanup_free char *path = NULL, *text = NULL;
  json_t *spec;
  int help = 0, first = cli_parse (spec_table, &o, argc - 1, argv + 1, &help, &err), r = -1;
  cleanup_close int fd = -1;
  if (first < 0)
    goto out;
  if (help)
    {
      cli_print_help ("cella spec [--rootless] [--bundle DIR]",
                      "Write a default config.json (args: sh, terminal: true, root: rootfs, read-only).", spec_table);
      r = 0;
      goto out;
    }
  path = xasprintf ("%s/config.json", o.bundle ? o.bundle : ".");
  spec = default_spec (o.rootless);
  text = json_dumps (spec, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (spec);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      if (errno == EEXIST)
        cella_error (&err, 0, "spec: `%s` exists already: remove it first", path);
      else
        cella_error (&err, errno, "spec: create `%s`", path);
      goto out;
    }
  if (write_all (fd, text, strlen (text)) < 0 || write_all (fd, "\n", 1) < 0)
    {
      cella_error (&err, errno, "spec: write `%s`", path);
      goto out;
    }
  r = 0;
out:
  free (o.bundle);
  return r < 0 ? oci_fail (c, &err) : 0;
}

/* ---- features ---- */

int
oci_cmd_features (struct oci_ctx *c, int argc, char **argv)
{
  static const char *const hooks[]
      = { "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", NULL };
  static const char *const namespaces[] = { "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts", NULL };
  static const char *const actions[]
      = { "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO",  "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
          "SCMP_ACT_LOG",   "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",         NULL };
  static const char *const operators[] = { "SCMP_CMP_EQ", "SCMP_CMP_GE",        "SCMP_CMP_GT", "SCMP_CMP_LE",
                                           "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE", NULL };
  static const char *const archs[]
      = { "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", NULL };
  static const char *const scmp_flags[]
      = { "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", NULL };
  static const char *const cap_names[] = { "CAP_CHOWN",
                                           "CAP_DAC_OVERRIDE",
                                           "CAP_DAC_READ_SEARCH",
                                           "CAP_FOWNER",
                                           "CAP_FSETID",
                                           "CAP_KILL",
                                           "CAP_SETGID",
                                           "CAP_SETUID",
                                           "CAP_SETPCAP",
                                           "CAP_LINUX_IMMUTABLE",
                                           "CAP_NET_BIND_SERVICE",
                                           "CAP_NET_BROADCAST",
                                           "CAP_NET_ADMIN",
                                           "CAP_NET_RAW",
                                           "CAP_IPC_LOCK",
                                           "CAP_IPC_OWNER",
                                           "CAP_SYS_MODULE",
                                           "CAP_SYS_RAWIO",
                                           "CAP_SYS_CHROOT",
                                           "CAP_SYS_PTRACE",
                                           "CAP_SYS_PACCT",
                                           "CAP_SYS_ADMIN",
                                           "CAP_SYS_BOOT",
                                           "CAP_SYS_NICE",
                                           "CAP_SYS_RESOURCE",
                                           "CAP_SYS_TIME",
                                           "CAP_SYS_TTY_CONFIG",
                                           "CAP_MKNOD",
                                           "CAP_LEASE",
                                           "CAP_AUDIT_WRITE",
                                           "CAP_AUDIT_CONTROL",
                                           "CAP_SETFCAP",
                                           "CAP_MAC_OVERRIDE",
                                           "CAP_MAC_ADMIN",
                                           "CAP_SYSLOG",
                                           "CAP_WAKE_ALARM",
                                           "CAP_BLOCK_SUSPEND",
                                           "CAP_AUDIT_READ",
                                           "CAP_PERFMON",
                                           "CAP_BPF",
                                           "CAP_CHECKPOINT_RESTORE",
                                           NULL };
  const struct scmp_version *v = seccomp_version ();
  enum cgroup_layout layout = cgroup_layout ();
  cleanup_free char *lib = xasprintf ("%u.%u.%u", v ? v->major : 0, v ? v->minor : 0, v ? v->micro : 0);
  char *text;
  json_t *f;
  if (argc > 1 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
    {
      printf ("Usage: cella features\n\nPrint what this runtime supports, as JSON (runc's `features` form).\n");
      return 0;
    }
  (void) c;
  f = json_pack ("{s:s, s:s, s:o, s:o, s:{s:{s:o}, s:o, s:{s:b, s:b, s:b}, s:{s:b, s:o, s:o, s:o, s:o}, "
                 "s:{s:b}, s:{s:b}}, s:{s:s, s:s}}",
                 "ociVersionMin", "1.0.0", "ociVersionMax", "1.1.0", "hooks", strs (hooks), "mountOptions",
                 oci_mount_option_names (), "linux", "namespaces", "types", strs (namespaces), "capabilities",
                 strs (cap_names), "cgroup", "v1", layout == CGROUP_V1 || layout == CGROUP_HYBRID, "v2",
                 layout == CGROUP_V2, "systemd", 0, "seccomp", "enabled", 1, "actions", strs (actions), "operators",
                 strs (operators), "archs", strs (archs), "knownFlags", strs (scmp_flags), "apparmor", "enabled", 0,
                 "selinux", "enabled", 0, "annotations", "io.github.cella.version", CELLA_VERSION,
                 "io.github.cella.libseccomp.version", lib);
  if (f == NULL)
    {
      cella_error_t err = NULL;
      cella_error (&err, 0, "features: cannot encode");
      return oci_fail (c, &err);
    }
  /* runc's shape: linux.namespaces is a plain list */
  json_object_set_new (json_object_get (f, "linux"), "namespaces", strs (namespaces));
  text = json_dumps (f, JSON_INDENT (4) | JSON_PRESERVE_ORDER);
  printf ("%s\n", text);
  free (text);
  json_decref (f);
  return 0;
}
