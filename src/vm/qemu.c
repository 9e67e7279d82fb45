/* QEMU for the vm backend (vm.h): the microvm command line, /dev/kvm, QMP. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "net/net.h"
#include "guest.h"
#include "vm.h"

/* Start QEMU with KVM and the CPU model the vm backend uses, paused, and quit at once. /dev/kvm can
 * open while no guest can run on it: a nested hypervisor that refuses an MSR QEMU sets for
 * `-cpu host` (QEMU then aborts: "failed to set MSR 0x10a"), seen on a Firecracker-hosted machine.
 * NULL when QEMU starts; else why not (malloc'd). */
static char *
kvm_try_qemu (const char *qemu)
{
  const char *argv[] = { qemu,       "-M",    "microvm",     "-accel",          "kvm",      "-cpu", "host",
                         "-m",       "64M",   "-nodefaults", "-no-user-config", "-display", "none", "-S",
                         "-monitor", "stdio", NULL };
  int in[2], out[2];
  char buf[512];
  size_t n = 0;
  ssize_t r;
  int status;
  pid_t pid;
  if (pipe2 (in, O_CLOEXEC) < 0)
    return xasprintf ("pipe: %s", strerror (errno));
  if (pipe2 (out, O_CLOEXEC) < 0)
    {
      close (in[0]), close (in[1]);
      return xasprintf ("pipe: %s", strerror (errno));
    }
  pid = fork ();
  if (pid == 0)
    {
      dup2 (in[0], 0);
      dup2 (out[1], 1);
      dup2 (out[1], 2);
      execv (qemu, (char *const *) argv);
      _exit (127);
    }
  close (in[0]);
  close (out[1]);
  if (pid > 0 && write (in[1], "quit\n", 5) < 0)
    { /* QEMU already gone: its status says why */
    }
  close (in[1]);
  while (pid > 0 && n < sizeof buf - 1 && (r = read (out[0], buf + n, sizeof buf - 1 - n)) != 0)
    if (r > 0)
      n += (size_t) r;
    else if (errno != EINTR)
      break;
  buf[n] = '\0';
  close (out[0]);
  if (pid < 0)
    return xasprintf ("fork: %s", strerror (errno));
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return NULL;
  /* the first line QEMU printed that is not its monitor's banner or prompt */
  for (char *line = strtok (buf, "\r\n"); line; line = strtok (NULL, "\r\n"))
    {
      while (has_prefix (line, "(qemu) "))
        line += strlen ("(qemu) ");
      if (*line && !has_prefix (line, "QEMU ") && strcmp (line, "(qemu)") != 0)
        return xasprintf ("QEMU cannot start a KVM guest here: %s", line);
    }
  return xstrdup ("QEMU cannot start a KVM guest here: it ended without saying why");
}

/* "BOOT-ID QEMU-PATH DEV:INO:MTIME": what a cached probe result is valid for. */
static char *
kvm_probe_key (const char *qemu)
{
  cleanup_free char *boot = NULL;
  struct stat st;
  if (read_file ("/proc/sys/kernel/random/boot_id", &boot, NULL, NULL) < 0 || stat (qemu, &st) < 0)
    return NULL;
  boot[strcspn (boot, "\n")] = '\0';
  return xasprintf ("%s %s %lu:%lu:%lld", boot, qemu, (unsigned long) st.st_dev, (unsigned long) st.st_ino,
                    (long long) st.st_mtime);
}

char *
vm_cache_get (const char *file, const char *key)
{
  cleanup_free char *text = NULL;
  char *nl;
  if (file == NULL || key == NULL || read_file (file, &text, NULL, NULL) < 0)
    return NULL;
  nl = strchr (text, '\n');
  if (nl == NULL || (size_t) (nl - text) != strlen (key) || strncmp (text, key, (size_t) (nl - text)) != 0)
    return NULL;
  return xstrdup (nl + 1);
}

void
vm_cache_put (const char *file, const char *key, const char *value)
{
  cleanup_free char *text = NULL;
  if (file == NULL || key == NULL)
    return;
  text = xasprintf ("%s\n%s", key, value);
  (void) write_file_atomic (file, text, strlen (text), 0600, NULL); /* kept only where the dir exists */
}

char *
vm_kvm_problem (const char *cache_dir)
{
  const char *no = getenv ("CELLA_NO_KVM"); /* benchmarks and tests: TCG on a KVM host */
  cleanup_free char *qemu = NULL, *key = NULL, *cache = NULL, *text = NULL;
  char *why;
  int fd;
  if (no && *no && strcmp (no, "0") != 0)
    return xstrdup ("$CELLA_NO_KVM is set");
  fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return xasprintf ("/dev/kvm: %s", strerror (errno));
  close (fd);
  if (vm_qemu_find (&qemu, NULL) < 0)
    return xstrdup ("qemu-system-x86_64 not found");
  /* The answer holds until the next boot or another QEMU binary: cached in CACHE_DIR/kvm-probe. */
  key = kvm_probe_key (qemu);
  cache = cache_dir ? xasprintf ("%s/kvm-probe", cache_dir) : NULL;
  text = vm_cache_get (cache, key);
  if (text)
    {
      text[strcspn (text, "\n")] = '\0';
      return strcmp (text, "ok") == 0 ? NULL : xstrdup (text);
    }
  why = kvm_try_qemu (qemu);
  {
    cleanup_free char *line = xasprintf ("%s\n", why ? why : "ok");
    vm_cache_put (cache, key, line);
  }
  return why;
}

static bool
executable (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode) && access (path, X_OK) == 0;
}

int
vm_qemu_find (char **path, cella_error_t *err)
{
  const char *env = getenv ("CELLA_QEMU"), *pathv = getenv ("PATH");
  cleanup_free char *dirs = xstrdup (pathv && *pathv ? pathv : "/usr/local/bin:/usr/bin:/bin");
  char *save = NULL;
  if (env && *env)
    {
      if (!executable (env))
        return cella_error (err, errno ? errno : EACCES, "$CELLA_QEMU `%s`: not an executable file", env);
      *path = xstrdup (env);
      return 0;
    }
  for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      cleanup_free char *p = xasprintf ("%s/qemu-system-x86_64", *d ? d : ".");
      if (executable (p))
        {
          *path = steal_pointer (&p);
          return 0;
        }
    }
  if (executable ("/usr/bin/qemu-system-x86_64"))
    {
      *path = xstrdup ("/usr/bin/qemu-system-x86_64");
      return 0;
    }
  return cella_error (err, 0,
                      "the vm backend needs QEMU: qemu-system-x86_64 not found on PATH (apt-get install "
                      "qemu-system-x86, or set $CELLA_QEMU)");
}

char *
vm_tcg_cmdline (void)
{
  cleanup_fclose FILE *f = fopen ("/proc/cpuinfo", "re");
  char line[256];
  double mhz = 0;
  while (f && fgets (line, sizeof line, f))
    if (has_prefix (line, "cpu MHz") && sscanf (strchr (line, ':') ? strchr (line, ':') + 1 : "", "%lf", &mhz) == 1)
      break;
  if (mhz < 100 || mhz > 100000)
    return xstrdup ("");
  return xasprintf (" tsc_early_khz=%lu", (unsigned long) (mhz * 1000));
}

/* QEMU's option values separate with ','; a ',' in a value is written ",,". */
static char *
qemu_escape (const char *s)
{
  size_t n = 0;
  char *out, *w;
  for (const char *c = s; *c; c++)
    n += *c == ',' ? 2 : 1;
  w = out = xmalloc (n + 1);
  for (const char *c = s; *c; c++)
    {
      *w++ = *c;
      if (*c == ',')
        *w++ = ',';
    }
  *w = '\0';
  return out;
}

static void
push2 (char ***argv, const char *opt, const char *val)
{
  strv_push (argv, opt);
  strv_push (argv, val);
}

static void
pushf (char ***argv, const char *opt, char *val)
{
  push2 (argv, opt, val);
  free (val);
}

long long
vm_memory_limit (unsigned memory_mib, bool kvm)
{
  /* QEMU's own part: 128 MiB was measured for a 256 MiB guest; a 3 GiB TCG guest that had filled its RAM (the
   * cgroup v2 lane) took 119 MiB besides the guest and the translation cache, and was killed at the line */
  return ((long long) memory_mib + VM_QEMU_OVERHEAD_MIB + (kvm ? 0 : VM_TCG_TB_MIB)) << 20;
}

/* QEMU's own seccomp filter on top of the jail: no obsolete system calls, no set*id, no
 * fork/exec, no scheduler or priority changes. */
#define VM_QEMU_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

/* Files QEMU gets as fds (its jail has no path to them): -add-fd into an fd set, opened as
 * /dev/fdset/N, which QEMU serves by dup'ing the set's fd with the access mode it asks for. */
enum { FDSET_DISK = 1, FDSET_CONSOLE = 2, FDSET_EXPORT = 3 };

char **
vm_qemu_argv (const struct vm_launch *l)
{
  char **argv = NULL;
  strv_push (&argv, l->qemu ? l->qemu : "qemu-system-x86_64");
  push2 (&argv, "-sandbox", VM_QEMU_SANDBOX);
  /* microvm: no PCI, no firmware tables beyond what Linux needs, virtio-mmio devices */
  /* under TCG the guest kernel calibrates its clock against the PIT, which microvm leaves out
   * unless asked (without it the boot stops at "tsc: Marking TSC unstable") */
  /* acpi=off also makes QEMU boot with qboot rather than SeaBIOS, and add the virtio-mmio
   * devices to the kernel's command line */
  pushf (&argv, "-M", xasprintf ("microvm%s%s", l->kvm ? "" : ",pit=on,pic=on,rtc=on", l->no_acpi ? ",acpi=off" : ""));
  if (l->kvm)
    push2 (&argv, "-accel", "kvm");
  else
    pushf (&argv, "-accel", xasprintf ("tcg,tb-size=%u", VM_TCG_TB_MIB));
  if (l->kvm)
    push2 (&argv, "-cpu", "host");
  pushf (&argv, "-m", xasprintf ("%uM", l->memory_mib));
  pushf (&argv, "-smp", xasprintf ("%u", l->cpus ? l->cpus : 1));
  strv_push (&argv, "-nodefaults");
  strv_push (&argv, "-no-user-config");
  strv_push (&argv, "-nographic");
  strv_push (&argv, "-no-reboot"); /* the guest's reboot (init's power off) ends QEMU */
  push2 (&argv, "-kernel", l->kernel);
  push2 (&argv, "-initrd", l->initrd);
  push2 (&argv, "-append", l->cmdline);
  /* ttyS0: the kernel's console, to the console log, never to the workload's output */
  pushf (&argv, "-add-fd", xasprintf ("fd=%d,set=%d", l->console_fd, FDSET_CONSOLE));
  pushf (&argv, "-chardev", xasprintf ("file,id=con,path=/dev/fdset/%d", FDSET_CONSOLE));
  push2 (&argv, "-serial", "chardev:con");
  push2 (&argv, "-device", "virtio-serial-device,max_ports=8");
  /* the first virtconsole is the guest's hvc0: the workload's stdin, and its terminal with -t */
  pushf (&argv, "-chardev", xasprintf ("socket,id=hvc,fd=%d", l->hvc_fd));
  push2 (&argv, "-device", "virtconsole,chardev=hvc");
  /* Without -t, stdout and stderr: ports, not consoles. QEMU counts what a console's host end
   * did not take as written (it drops it: a slow reader lost output), while a port's data waits
   * in the guest's queue until the host end takes it. Given with -t too (unused there), so that a
   * snapshot has one device set; before cella.ctl, like cella.exec. */
  pushf (&argv, "-chardev", xasprintf ("socket,id=out,fd=%d", l->stdout_fd));
  push2 (&argv, "-device", "virtserialport,chardev=out,name=" STDOUT_PORT_NAME);
  pushf (&argv, "-chardev", xasprintf ("socket,id=err,fd=%d", l->stderr_fd));
  push2 (&argv, "-device", "virtserialport,chardev=err,name=" STDERR_PORT_NAME);
  if (l->exec_fd >= 0)
    {
      /* before cella.ctl: the guest finds it named once cella.ctl is */
      pushf (&argv, "-chardev", xasprintf ("socket,id=exec,fd=%d", l->exec_fd));
      push2 (&argv, "-device", "virtserialport,chardev=exec,name=cella.exec");
    }
  pushf (&argv, "-chardev", xasprintf ("socket,id=ctl,fd=%d", l->ctl_fd));
  push2 (&argv, "-device", "virtserialport,chardev=ctl,name=cella.ctl");
  pushf (&argv, "-chardev", xasprintf ("socket,id=qmp,fd=%d,server=on,wait=off", l->qmp_fd));
  push2 (&argv, "-mon", "chardev=qmp,mode=control");
  if (l->disk_fd >= 0)
    {
      pushf (&argv, "-add-fd", xasprintf ("fd=%d,set=%d", l->disk_fd, FDSET_DISK));
      pushf (&argv, "-add-fd", xasprintf ("fd=%d,set=%d", l->disk_ro_fd, FDSET_DISK));
      /* the container's own copy: written back to the host file, never shared */
      pushf (&argv, "-drive",
             xasprintf ("id=root,file=/dev/fdset/%d,format=raw,if=none,cache=writeback,discard=unmap%s", FDSET_DISK,
                        l->disk_nolock ? ",file.locking=off" : ""));
      push2 (&argv, "-device", "virtio-blk-device,drive=root");
    }
  if (l->export_fd > 0)
    {
      /* raw bytes, no file system: the guest writes a tar stream, the host reads it as one */
      pushf (&argv, "-add-fd", xasprintf ("fd=%d,set=%d", l->export_fd, FDSET_EXPORT));
      pushf (&argv, "-add-fd", xasprintf ("fd=%d,set=%d", l->export_ro_fd, FDSET_EXPORT));
      pushf (&argv, "-drive", xasprintf ("id=export,file=/dev/fdset/%d,format=raw,if=none,cache=unsafe", FDSET_EXPORT));
      push2 (&argv, "-device", "virtio-blk-device,drive=export,serial=" VM_EXPORT_SERIAL);
    }
  if (l->netdev)
    {
      /* the guest's eth0 (virtio_net); no -netdev: no NIC, the guest has lo only */
      push2 (&argv, "-netdev", l->netdev);
      if (l->net_mac)
        pushf (&argv, "-device", xasprintf ("virtio-net-device,netdev=n0,mac=%s", l->net_mac));
      else
        push2 (&argv, "-device", "virtio-net-device,netdev=n0");
    }
  for (size_t i = 0; i < l->nshares; i++)
    {
      cleanup_free char *h = qemu_escape (l->shares[i].host), *t = qemu_escape (l->shares[i].tag);
      /* security_model=none: the guest sees the host's owners and modes, and its writes are the
       * caller's (no privileges needed, nothing stored in xattrs) */
      pushf (&argv, "-fsdev",
             xasprintf ("local,id=fs%zu,path=%s,security_model=none%s", i, h, l->shares[i].ro ? ",readonly=on" : ""));
      pushf (&argv, "-device", xasprintf ("virtio-9p-device,fsdev=fs%zu,mount_tag=%s", i, t));
    }
  if (l->incoming_fd > 0)
    pushf (&argv, "-incoming", xasprintf ("fd:%d", l->incoming_fd));
  return argv;
}

/* A free host port for pt (the kernel's choice for a socket bound to port 0 on pt's address). */
static int
pick_port (struct net_port *pt, cella_error_t *err)
{
  struct sockaddr_in sa = { .sin_family = AF_INET };
  socklen_t len = sizeof sa;
  cleanup_close int s = socket (AF_INET, (strcmp (pt->proto, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (*pt->ip)
    inet_pton (AF_INET, pt->ip, &sa.sin_addr);
  if (s < 0 || bind (s, (struct sockaddr *) &sa, sizeof sa) < 0 || getsockname (s, (struct sockaddr *) &sa, &len) < 0)
    return cella_error (err, errno, "pick a free host port for %u/%s", pt->ctr, pt->proto);
  pt->host = ntohs (sa.sin_port);
  return 0;
}

int
vm_netdev_user (char *const *ports, const char *id, char **netdev, char **lines, cella_error_t *err)
{
  size_t n = strv_len ((char **) ports);
  cleanup_free struct net_port *v = xzalloc ((n + 1) * sizeof *v);
  char *nd = xstrdup ("user,id=n0,net=10.0.2.0/24,host=" VM_NET_GATEWAY ",dns=" VM_NET_DNS ",ipv6=off");
  char *ls = xstrdup ("");
  for (size_t i = 0; i < n; i++)
    {
      char *next;
      if (net_port_parse (ports[i], &v[i], err) < 0)
        goto fail;
      if (v[i].host == 0 ? pick_port (&v[i], err) < 0 : net_port_check (&v[i], id, err) < 0)
        goto fail;
      for (size_t j = 0; j < i; j++)
        if (v[j].host == v[i].host && strcmp (v[j].proto, v[i].proto) == 0
            && (!*v[j].ip || !*v[i].ip || strcmp (v[j].ip, v[i].ip) == 0))
          {
            cella_error (err, 0, "-p %s%s%u:%u/%s: host port %u is published twice", v[i].ip, *v[i].ip ? ":" : "",
                         v[i].host, v[i].ctr, v[i].proto, v[i].host);
            goto fail;
          }
      next = xasprintf ("%s,hostfwd=%s:%s:%u-:%u", nd, v[i].proto, v[i].ip, v[i].host, v[i].ctr);
      free (nd);
      nd = next;
      next = xasprintf ("%s%u/%s -> %s:%u\n", ls, v[i].ctr, v[i].proto, *v[i].ip ? v[i].ip : "0.0.0.0", v[i].host);
      free (ls);
      ls = next;
    }
  *netdev = nd;
  *lines = ls;
  return 0;
fail:
  free (nd);
  free (ls);
  return -1;
}

/* One line of QMP (a JSON object per line); false on timeout or close. */
static bool
qmp_line (int fd, char *buf, size_t cap)
{
  size_t n = 0;
  while (n + 1 < cap)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      ssize_t r;
      if (poll (&p, 1, 3000) <= 0)
        return false;
      r = read (fd, buf + n, 1);
      if (r <= 0)
        return false;
      if (buf[n] == '\n')
        break;
      n++;
    }
  buf[n] = '\0';
  return true;
}

/* Which member a QMP line's object has: "return" (1), "error" (-1), anything else, an event or
 * text that is no JSON object (0). With `member` "QMP": the greeting (1). */
static int
qmp_kind (const char *line, const char *member)
{
  json_t *o = json_loads (line, 0, NULL);
  int kind = 0;
  if (json_object_get (o, member))
    kind = 1;
  else if (json_object_get (o, "error"))
    kind = -1;
  json_decref (o);
  return kind;
}

/* Read lines until the reply (not an event). */
static int
qmp_reply (int fd, const char *what, cella_error_t *err)
{
  char buf[4096];
  for (int i = 0; i < 64; i++)
    {
      int kind;
      if (!qmp_line (fd, buf, sizeof buf))
        return cella_error (err, ETIMEDOUT, "QMP: no reply to %s", what);
      kind = qmp_kind (buf, "return");
      if (kind > 0)
        return 0;
      if (kind < 0)
        return cella_error (err, 0, "QMP %s: %s", what, buf);
    }
  return cella_error (err, 0, "QMP: no reply to %s", what);
}

/* {"execute": COMMAND} and a newline, then its reply. */
static int
qmp_execute (int fd, const char *command, cella_error_t *err)
{
  json_t *o = json_pack ("{s:s}", "execute", command);
  cleanup_free char *text = o ? json_dumps (o, JSON_COMPACT) : NULL;
  json_decref (o);
  if (text == NULL)
    return cella_error (err, EINVAL, "QMP %s: cannot build the request", command);
  if (write_all (fd, text, strlen (text)) < 0 || write_all (fd, "\n", 1) < 0)
    return cella_error (err, errno, "QMP %s", command);
  return qmp_reply (fd, command, err);
}

int
vm_qmp (const char *qmp_path, const char *command, cella_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char greeting[4096];
  if (strlen (qmp_path) >= sizeof sa.sun_path)
    return cella_error (err, ENAMETOOLONG, "QMP socket `%s`", qmp_path);
  strcpy (sa.sun_path, qmp_path);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return cella_error (err, errno, "connect to QMP at `%s`", qmp_path);
  if (!qmp_line (fd, greeting, sizeof greeting) || qmp_kind (greeting, "QMP") <= 0)
    return cella_error (err, EPROTO, "QMP at `%s`: no greeting", qmp_path);
  if (qmp_execute (fd, "qmp_capabilities", err) < 0)
    return -1;
  return qmp_execute (fd, command, err);
}

/* Connected to QMP at qmp_path, past its greeting and capabilities negotiation; -1 with *err. */
static int
qmp_open (const char *qmp_path, cella_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char greeting[4096];
  if (strlen (qmp_path) >= sizeof sa.sun_path)
    {
      if (fd >= 0)
        close (fd);
      return cella_error (err, ENAMETOOLONG, "QMP socket `%s`", qmp_path);
    }
  strcpy (sa.sun_path, qmp_path);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      cella_error (err, errno, "connect to QMP at `%s`", qmp_path);
      if (fd >= 0)
        close (fd);
      return -1;
    }
  if (!qmp_line (fd, greeting, sizeof greeting) || qmp_kind (greeting, "QMP") <= 0)
    {
      close (fd);
      return cella_error (err, EPROTO, "QMP at `%s`: no greeting", qmp_path);
    }
  if (qmp_execute (fd, "qmp_capabilities", err) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* A request (JSON text, one line) with `pass` (>= 0) as an SCM_RIGHTS fd, then its reply; with
 * `reply` the reply's line (malloc'd). */
static int
qmp_request (int fd, const char *text, int pass, char **reply, cella_error_t *err)
{
  char buf[4096];
  struct iovec iov = { .iov_base = (void *) text, .iov_len = strlen (text) };
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE (sizeof (int))];
  } u;
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (pass >= 0)
    {
      memset (&u, 0, sizeof u);
      m.msg_control = u.b;
      m.msg_controllen = sizeof u.b;
      struct cmsghdr *c = CMSG_FIRSTHDR (&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (c), &pass, sizeof (int));
    }
  if (sendmsg (fd, &m, MSG_NOSIGNAL) != (ssize_t) iov.iov_len)
    return cella_error (err, errno, "QMP: send `%s`", text);
  for (int i = 0; i < 64; i++)
    {
      int kind;
      if (!qmp_line (fd, buf, sizeof buf))
        return cella_error (err, ETIMEDOUT, "QMP: no reply to `%s`", text);
      kind = qmp_kind (buf, "return");
      if (kind < 0)
        return cella_error (err, 0, "QMP `%s`: %s", text, buf);
      if (kind > 0)
        {
          if (reply)
            *reply = xstrdup (buf);
          return 0;
        }
    }
  return cella_error (err, 0, "QMP: no reply to `%s`", text);
}

/* query-migrate's status ("completed", "failed", "active", ...), malloc'd; NULL on error. */
static char *
migrate_status (int fd, cella_error_t *err)
{
  cleanup_free char *reply = NULL;
  if (qmp_request (fd, "{\"execute\":\"query-migrate\"}\n", -1, &reply, err) < 0)
    return NULL;
  json_t *o = json_loads (reply, 0, NULL);
  const char *st = json_string_value (json_object_get (json_object_get (o, "return"), "status"));
  char *r = xstrdup (st ? st : "none");
  json_decref (o);
  return r;
}

int
vm_qmp_save (const char *qmp_path, int state_fd, long long *ms, cella_error_t *err)
{
  cleanup_close int fd = qmp_open (qmp_path, err);
  long long t0 = now_ns ();
  int r = -1;
  if (fd < 0)
    return -1;
  if (qmp_request (fd, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"cella-snap\"}}\n", state_fd, NULL, err) < 0
      || qmp_request (fd, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:cella-snap\"}}\n", -1, NULL, err) < 0)
    return -1;
  /* the guest waits idle: its memory goes in one pass; a minute is far beyond it */
  while (now_ns () - t0 < 60000000000LL)
    {
      cleanup_free char *st = migrate_status (fd, err);
      if (st == NULL)
        return -1;
      if (strcmp (st, "completed") == 0)
        {
          r = 0;
          break;
        }
      if (strcmp (st, "failed") == 0 || strcmp (st, "cancelled") == 0)
        {
          cella_error (err, 0, "QEMU's migration to the snapshot file %s (see qemu.log)", st);
          break;
        }
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  if (r < 0 && (err == NULL || *err == NULL))
    cella_error (err, ETIMEDOUT, "QEMU's migration to the snapshot file did not end within 60 s");
  if (ms)
    *ms = (now_ns () - t0) / 1000000;
  /* the VM goes on (migration paused it), also when the save failed */
  if (r == 0 && qmp_request (fd, "{\"execute\":\"cont\"}\n", -1, NULL, err) < 0)
    return -2;
  if (r < 0)
    {
      cella_error_t ignored = NULL;
      if (qmp_request (fd, "{\"execute\":\"cont\"}\n", -1, NULL, &ignored) < 0)
        r = -2;
      cella_error_free (&ignored);
    }
  return r;
}
