/* Unit tests for the vm backend's host side (src/vm/): the disk size rule, an ext4 disk built from
 * a tree without privileges (e2fsck accepts it; debugfs shows root-owned entries, modes kept, a
 * symlink and a hard link), the clone, the work dir removal that refuses a symlink and a mounted
 * tree, the bzImage release, and QEMU's command line. Runs as root and unprivileged. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vm/guest.h"
#include "vm/vm.h"
#include "tap.h"

#define MIB (1024ULL * 1024ULL)

/* argv's output (stdout+stderr) and exit status. */
static int
run_out (char *const *argv, char **out)
{
  int p[2], st;
  size_t len;
  pid_t pid;
  if (pipe (p) < 0)
    return -1;
  pid = fork ();
  if (pid == 0)
    {
      dup2 (p[1], 1);
      dup2 (p[1], 2);
      close (p[0]);
      execv (argv[0], argv);
      _exit (127);
    }
  close (p[1]);
  *out = NULL;
  read_all_fd (p[0], out, &len, NULL);
  close (p[0]);
  waitpid (pid, &st, 0);
  return WIFEXITED (st) ? WEXITSTATUS (st) : 128;
}

static char *
debugfs (const char *img, const char *req)
{
  char *out = NULL;
  char *const argv[] = { (char *) "/usr/sbin/debugfs", (char *) "-R", (char *) req, (char *) img, NULL };
  run_out (argv, &out);
  return out;
}

static void
put (const char *path, const char *data, mode_t mode)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd >= 0)
    {
      write_all (fd, data, strlen (data));
      close (fd);
    }
  chmod (path, mode);
}

static void
test_size (void)
{
  CHECK (vm_disk_size (0) == 64 * MIB, "an empty tree gets the 64 MiB floor");
  CHECK (vm_disk_size (10 * MIB) == 64 * MIB, "10 MiB used: still the floor");
  CHECK (vm_disk_size (100 * MIB) == 240 * MIB, "100 MiB used: 2 x used + 32 MiB = 232, rounded to 240 MiB");
  CHECK (vm_disk_size (100 * MIB) % (16 * MIB) == 0, "sizes are multiples of 16 MiB");
}

static void
test_build (const char *tmp)
{
  cleanup_free char *tree = xasprintf ("%s/tree", tmp), *img = xasprintf ("%s/disk.ext4", tmp);
  cleanup_free char *clone = xasprintf ("%s/clone.ext4", tmp);
  char *p = NULL, *out = NULL;
  cella_error_t err = NULL;
  const char *method = NULL;
  struct stat st;
  int r;
  if (access ("/usr/sbin/mkfs.ext4", X_OK) != 0 || access ("/usr/sbin/debugfs", X_OK) != 0)
    {
      tap_skip ("no e2fsprogs (mkfs.ext4, debugfs)", "disk build");
      return;
    }
  mkdir (tree, 0755);
  p = xasprintf ("%s/bin", tree);
  mkdir (p, 0755);
  free (p);
  p = xasprintf ("%s/bin/tool", tree);
  put (p, "#!/bin/sh\necho tool\n", 04755);
  free (p);
  p = xasprintf ("%s/secret", tree);
  put (p, "s\n", 0600);
  free (p);
  p = xasprintf ("%s/private", tree);
  mkdir (p, 0700);
  free (p);
  p = xasprintf ("%s/tmp", tree);
  mkdir (p, 01777);
  chmod (p, 01777);
  free (p);
  p = xasprintf ("%s/bin/sh", tree);
  CHECK (symlink ("tool", p) == 0, "symlink in the tree");
  free (p);
  {
    cleanup_free char *a = xasprintf ("%s/bin/tool", tree), *b = xasprintf ("%s/bin/tool2", tree);
    CHECK (link (a, b) == 0, "hard link in the tree");
  }
  r = vm_disk_build (tree, img, &err);
  CHECK (r == 0, "vm_disk_build: %s", err ? err->msg : "ok");
  cella_error_free (&err);
  if (r < 0)
    return;
  CHECK (stat (img, &st) == 0 && (uint64_t) st.st_size == 64 * MIB && (st.st_mode & 07777) == 0600,
         "the disk is 64 MiB (the floor), mode 0600");
  {
    char *const argv[] = { (char *) "/usr/sbin/e2fsck", (char *) "-fn", img, NULL };
    int rc = run_out (argv, &out);
    CHECK (rc == 0, "e2fsck -fn accepts the disk (status %d)", rc);
    if (rc != 0)
      printf ("# %s\n", out);
    free (out);
  }
  out = debugfs (img, "stat /bin/tool");
  CHECK (out && strstr (out, "User:     0") && strstr (out, "Group:     0"), "/bin/tool is owned by 0:0");
  CHECK (out && strstr (out, "Mode:  04755"), "/bin/tool keeps mode 4755");
  CHECK (out && strstr (out, "Links: 2"), "/bin/tool and /bin/tool2 stay one inode with two links");
  free (out);
  out = debugfs (img, "stat /secret");
  CHECK (out && strstr (out, "User:     0") && strstr (out, "Mode:  0600"), "/secret: 0:0, mode 0600");
  free (out);
  out = debugfs (img, "stat /tmp");
  CHECK (out && strstr (out, "Mode:  01777"), "/tmp keeps its sticky bit");
  free (out);
  out = debugfs (img, "stat /");
  CHECK (out && strstr (out, "User:     0") && strstr (out, "Mode:  0755"), "the root directory: 0:0, 0755");
  free (out);
  out = debugfs (img, "stat /bin/sh");
  CHECK (out && strstr (out, "Type: symlink") && strstr (out, "Fast link dest: \"tool\""),
         "/bin/sh is the symlink to tool");
  free (out);
  out = NULL;

  r = vm_disk_clone (img, clone, &method, &err);
  CHECK (r == 0 && method && (strcmp (method, "reflink") == 0 || strcmp (method, "copy") == 0), "clone by %s",
         method ? method : "(failed)");
  cella_error_free (&err);
  {
    struct stat a, b;
    CHECK (stat (img, &a) == 0 && stat (clone, &b) == 0 && a.st_size == b.st_size && b.st_blocks <= a.st_blocks + 8,
           "the clone has the same size and keeps the holes");
    char *const argv[] = { (char *) "/usr/sbin/e2fsck", (char *) "-fn", clone, NULL };
    CHECK (run_out (argv, &out) == 0, "e2fsck accepts the clone");
    free (out);
  }
  CHECK (vm_disk_clone (img, clone, &method, &err) < 0 && err && err->errno_ == EEXIST,
         "cloning onto an existing file is refused");
  cella_error_free (&err);
}

static void
test_workdir_remove (const char *tmp)
{
  cleanup_free char *dir = xasprintf ("%s/work", tmp), *link_ = xasprintf ("%s/worklink", tmp);
  cleanup_free char *sub = xasprintf ("%s/work/mnt", tmp), *f = xasprintf ("%s/work/file", tmp);
  cella_error_t err = NULL;
  mkdir (dir, 0700);
  mkdir (sub, 0700);
  put (f, "x", 0644);
  CHECK (symlink (dir, link_) == 0, "a symlink to the work dir");
  CHECK (vm_workdir_remove (link_, &err) < 0 && err && strstr (err->msg, "symbolic link") && access (f, F_OK) == 0,
         "a work dir reached through a symlink is refused, its target kept");
  cella_error_free (&err);
  unlink (link_);
  if (geteuid () != 0)
    tap_skip ("mounting needs root", "a work dir with a mount under it is refused");
  else
    {
      pid_t pid = fork ();
      int st;
      if (pid == 0)
        {
          /* a private mount namespace: the tmpfs goes away with this child */
          cella_error_t e = NULL;
          if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0
              || mount ("tmpfs", sub, "tmpfs", 0, "size=1m") < 0)
            _exit (2);
          if (vm_workdir_remove (dir, &e) < 0 && e && strstr (e->msg, "still mounted") && access (f, F_OK) == 0)
            {
              /* and rm -rf itself never enters the mount: its file stays (so does the path to it) */
              cleanup_free char *inside = xasprintf ("%s/in-the-mount", sub);
              put (inside, "keep", 0600);
              _exit (remove_tree (dir) < 0 && access (inside, F_OK) == 0 ? 0 : 3);
            }
          _exit (1);
        }
      waitpid (pid, &st, 0);
      CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0,
             "a work dir with a mount under it is refused, nothing removed; remove_tree does not enter the mount (%d)",
             WIFEXITED (st) ? WEXITSTATUS (st) : -1);
    }
  {
    /* what a planted link points at survives: a file, a directory, a link in a 000 directory */
    cleanup_free char *victim = xasprintf ("%s/victim", tmp), *vdir = xasprintf ("%s/victim-dir", tmp);
    cleanup_free char *vf = xasprintf ("%s/victim-dir/f", tmp), *l1 = xasprintf ("%s/work/l1", tmp);
    cleanup_free char *l2 = xasprintf ("%s/work/l2", tmp), *closed = xasprintf ("%s/work/closed", tmp);
    cleanup_free char *l3 = xasprintf ("%s/work/closed/l3", tmp);
    put (victim, "keep", 0600);
    mkdir (vdir, 0700);
    put (vf, "keep", 0600);
    mkdir (closed, 0700);
    CHECK (symlink (victim, l1) == 0 && symlink (vdir, l2) == 0 && symlink (vdir, l3) == 0 && chmod (closed, 0) == 0,
           "links planted in the work dir");
    CHECK (vm_workdir_remove (dir, &err) == 0 && access (dir, F_OK) < 0, "a plain work dir is removed: %s",
           err ? err->msg : "ok");
    {
      struct stat st;
      CHECK (access (victim, F_OK) == 0 && access (vf, F_OK) == 0 && stat (vdir, &st) == 0
                 && (st.st_mode & 07777) == 0700,
             "the links' targets are kept, the linked directory's mode untouched");
    }
  }
  cella_error_free (&err);
  CHECK (vm_workdir_remove (dir, &err) == 0, "a missing work dir is nothing to do");
}

static void
test_kernel (void)
{
  cleanup_free char *path = NULL, *rel = NULL, *hdr = NULL;
  const char *kind = NULL;
  cella_error_t err = NULL;
  if (vm_kernel_find (NULL, &path, &rel, &kind, &err) < 0)
    {
      path = rel = NULL;
      CHECK (err && strstr (err->msg, "linux-image-amd64"), "no kernel: the error names the package");
      cella_error_free (&err);
      tap_skip ("no readable /boot/vmlinuz-*", "the kernel's release");
      return;
    }
  hdr = vm_kernel_release_of (path);
  CHECK (rel && hdr && strcmp (rel, hdr) == 0, "the release from the file name (%s) is the bzImage header's (%s)", rel,
         hdr ? hdr : "(none)");
  {
    char *p2 = NULL, *r2 = NULL;
    CHECK (vm_kernel_find ("/nonexistent/vmlinuz", &p2, &r2, &kind, &err) < 0 && err && strstr (err->msg, "--kernel"),
           "a missing --kernel is an error naming the option");
    free (p2);
    free (r2);
  }
  {
    /* the tuned kernel's cache: DIR/current -> KEY/{bzImage,release} */
    char tmpl[] = "/tmp/test-vm-kernel.XXXXXX";
    char *dir = mkdtemp (tmpl);
    char *p2 = NULL, *r2 = NULL;
    CHECK (dir && vm_kernel_tuned (dir, &p2, &r2) < 0, "no tuned kernel cached: none");
    cleanup_free char *key = xasprintf ("%s/0123456789abcdef", dir);
    cleanup_free char *img = xasprintf ("%s/bzImage", key);
    cleanup_free char *relf = xasprintf ("%s/release", key);
    cleanup_free char *cur = xasprintf ("%s/current", dir);
    cleanup_free char *cmd = xasprintf ("cp '%s' '%s'", path, img);
    CHECK (mkdir (key, 0755) == 0 && symlink ("0123456789abcdef", cur) == 0 && system (cmd) == 0, "a cached kernel");
    CHECK (vm_kernel_tuned (dir, &p2, &r2) == 0 && p2 && strcmp (p2, img) == 0 && r2 && strcmp (r2, hdr) == 0,
           "a tuned kernel without a release file: its real path, the release from its header (%s)",
           r2 ? r2 : "(none)");
    free (p2);
    free (r2);
    p2 = r2 = NULL;
    CHECK (write_file_atomic (relf, "6.1.192-cella\n", 14, 0644, &err) == 0, "its release file");
    CHECK (vm_kernel_tuned (dir, &p2, &r2) == 0 && r2 && strcmp (r2, "6.1.192-cella") == 0,
           "the release from the release file, without its newline");
    free (p2);
    free (r2);
    p2 = r2 = NULL;
    CHECK (vm_kernel_find (img, &p2, &r2, &kind, &err) == 0 && strcmp (kind, VM_KERNEL_GIVEN) == 0, "--kernel: given");
    free (p2);
    free (r2);
    p2 = r2 = NULL;
    {
      static const char cfg[] = "#\n# CONFIG_ACPI is not set\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n"
                                "# CONFIG_MODULES is not set\n";
      cleanup_free char *cfgf = xasprintf ("%s/config", key);
      CHECK (write_file_atomic (cfgf, cfg, sizeof cfg - 1, 0644, &err) == 0, "its config");
    }
    CHECK (vm_kernel_find (img, &p2, &r2, &kind, &err) == 0 && strcmp (kind, VM_KERNEL_TUNED) == 0,
           "--kernel with vm-kernel.sh's config beside it (no ACPI, no modules): tuned");
    free (p2);
    free (r2);
    cleanup_free char *rm = xasprintf ("rm -rf '%s'", dir);
    CHECK (system (rm) == 0, "cleanup");
  }
  cella_error_free (&err);
}

static bool
has_pair (char **argv, const char *opt, const char *val)
{
  for (size_t i = 0; argv && argv[i] && argv[i + 1]; i++)
    if (strcmp (argv[i], opt) == 0 && strcmp (argv[i + 1], val) == 0)
      return true;
  return false;
}

static void
test_qemu_argv (void)
{
  struct vm_share sh[] = { { "/srv/da,ta", "vol0", true } };
  struct vm_launch l = { .qemu = "/usr/bin/qemu-system-x86_64",
                         .kernel = "/vm/kernel",
                         .initrd = "/vm/initrd",
                         .cmdline = "console=ttyS0",
                         .disk_fd = 8,
                         .disk_ro_fd = 9,
                         .kvm = false,
                         .memory_mib = 256,
                         .cpus = 1,
                         .console_fd = 10,
                         .hvc_fd = 5,
                         .stdout_fd = 15,
                         .stderr_fd = 16,
                         .ctl_fd = 6,
                         .exec_fd = -1,
                         .qmp_fd = 7,
                         .shares = sh,
                         .nshares = 1 };
  cleanup_strv char **argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-M", "microvm,pit=on,pic=on,rtc=on") && has_pair (argv, "-accel", "tcg,tb-size=256")
             && has_pair (argv, "-m", "256M"),
         "microvm with the PIT, tcg with a bounded translation cache, 256M");
  CHECK (argv && has_pair (argv, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")
             && strcmp (argv[1], "-sandbox") == 0,
         "QEMU's seccomp sandbox, first");
  CHECK (has_pair (argv, "-add-fd", "fd=8,set=1") && has_pair (argv, "-add-fd", "fd=9,set=1")
             && has_pair (argv, "-drive", "id=root,file=/dev/fdset/1,format=raw,if=none,cache=writeback,discard=unmap"),
         "the disk from its two fds (read-write, read-only) in fd set 1");
  CHECK (has_pair (argv, "-add-fd", "fd=10,set=2") && has_pair (argv, "-chardev", "file,id=con,path=/dev/fdset/2"),
         "the console log from its fd in fd set 2");
  CHECK (vm_memory_limit (256, false) == (256LL + 256 + 256) << 20
             && vm_memory_limit (1024, true) == (1024LL + 256) << 20,
         "QEMU's memory limit: guest + 256 MiB (+ 256 MiB of TCG cache)");
  CHECK (has_pair (argv, "-chardev", "socket,id=hvc,fd=5") && has_pair (argv, "-device", "virtconsole,chardev=hvc"),
         "hvc0 on the given socket");
  CHECK (has_pair (argv, "-device", "virtserialport,chardev=ctl,name=cella.ctl"), "the cella.ctl port");
  CHECK (has_pair (argv, "-device", "virtio-serial-device,max_ports=8"),
         "room for hvc0, cella.stdout, cella.stderr, cella.exec, cella.ctl");
  CHECK (has_pair (argv, "-chardev", "socket,id=out,fd=15")
             && has_pair (argv, "-device", "virtserialport,chardev=out,name=cella.stdout")
             && has_pair (argv, "-chardev", "socket,id=err,fd=16")
             && has_pair (argv, "-device", "virtserialport,chardev=err,name=cella.stderr"),
         "stdout and stderr on ports of their own (virtserialport: held back, never dropped)");
  CHECK (!has_pair (argv, "-device", "virtconsole,chardev=out")
             && !has_pair (argv, "-device", "virtconsole,chardev=err"),
         "stdout and stderr are no consoles (QEMU drops what a console's host end does not take)");
  {
    ssize_t at_out = -1, at_err = -1, at_ctl = -1;
    for (size_t i = 0; argv && argv[i]; i++)
      {
        if (strcmp (argv[i], "virtserialport,chardev=out,name=cella.stdout") == 0)
          at_out = (ssize_t) i;
        if (strcmp (argv[i], "virtserialport,chardev=err,name=cella.stderr") == 0)
          at_err = (ssize_t) i;
        if (strcmp (argv[i], "virtserialport,chardev=ctl,name=cella.ctl") == 0)
          at_ctl = (ssize_t) i;
      }
    CHECK (at_out >= 0 && at_err > at_out && at_ctl > at_err,
           "the output ports before cella.ctl (the guest finds them once cella.ctl is there)");
  }
  CHECK (!has_pair (argv, "-device", "virtserialport,chardev=exec,name=cella.exec"), "no exec port without its fd");
  CHECK (!has_pair (argv, "-device", "virtio-blk-device,drive=export,serial=" VM_EXPORT_SERIAL),
         "no export disk without its fd");
  l.export_fd = 13;
  l.export_ro_fd = 14;
  strv_free (argv);
  argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-add-fd", "fd=13,set=3") && has_pair (argv, "-add-fd", "fd=14,set=3")
             && has_pair (argv, "-drive", "id=export,file=/dev/fdset/3,format=raw,if=none,cache=unsafe")
             && has_pair (argv, "-device", "virtio-blk-device,drive=export,serial=" VM_EXPORT_SERIAL),
         "cella build's export disk: raw, in fd set 3, found by its serial");
  l.export_fd = 0;
  l.exec_fd = 11;
  strv_free (argv);
  argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-chardev", "socket,id=exec,fd=11")
             && has_pair (argv, "-device", "virtserialport,chardev=exec,name=cella.exec"),
         "the cella.exec port on its socket");
  l.exec_fd = -1;
  CHECK (has_pair (argv, "-fsdev", "local,id=fs0,path=/srv/da,,ta,security_model=none,readonly=on")
             && has_pair (argv, "-device", "virtio-9p-device,fsdev=fs0,mount_tag=vol0"),
         "a read-only 9p share, its comma escaped");
  CHECK (strv_len (argv) > 0 && !has_pair (argv, "-cpu", "host"), "no -cpu host under tcg");
  {
    bool incoming = false;
    for (size_t i = 0; argv && argv[i]; i++)
      incoming |= strcmp (argv[i], "-incoming") == 0;
    CHECK (!incoming, "a boot: no -incoming");
  }
  l.incoming_fd = 12;
  strv_free (argv);
  argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-incoming", "fd:12"), "from a snapshot: -incoming fd:N (the saved state's fd)");
  l.incoming_fd = 0;
  l.kvm = true;
  strv_free (argv);
  argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-accel", "kvm") && has_pair (argv, "-cpu", "host"), "kvm: -accel kvm -cpu host");
  CHECK (has_pair (argv, "-M", "microvm"), "kvm: microvm with its defaults");
  l.no_acpi = true;
  strv_free (argv);
  argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-M", "microvm,acpi=off"), "a kernel without ACPI (the tuned one): acpi=off");
  l.kvm = false;
  strv_free (argv);
  argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-M", "microvm,pit=on,pic=on,rtc=on,acpi=off"), "the same under tcg");
  l.kvm = true;
  l.no_acpi = false;
  CHECK (!has_pair (argv, "-device", "virtio-net-device,netdev=n0"), "no netdev: no NIC");
  l.netdev = "user,id=n0";
  strv_free (argv);
  argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-netdev", "user,id=n0") && has_pair (argv, "-device", "virtio-net-device,netdev=n0"),
         "a netdev: the virtio-net NIC on it");
  l.netdev = "tap,id=n0,fd=7";
  l.net_mac = "02:42:0a:d1:00:02";
  strv_free (argv);
  argv = vm_qemu_argv (&l);
  CHECK (has_pair (argv, "-netdev", "tap,id=n0,fd=7")
             && has_pair (argv, "-device", "virtio-net-device,netdev=n0,mac=02:42:0a:d1:00:02"),
         "a tap netdev: the NIC with its MAC address");
}

/* -p as QEMU hostfwd rules: random host ports picked, a taken port refused, a port given twice. */
static void
test_netdev_user (void)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  cleanup_close int busy = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cleanup_free char *nd = NULL, *lines = NULL, *want = NULL, *taken = NULL;
  cella_error_t err = NULL;
  unsigned udp = 0;
  char *none[] = { NULL };
  if (busy < 0 || bind (busy, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (busy, 1) < 0
      || getsockname (busy, (struct sockaddr *) &sa, &len) < 0)
    {
      tap_skip ("no loopback socket", "netdev: hostfwd rules");
      return;
    }
  CHECK (vm_netdev_user (none, "x", &nd, &lines, &err) == 0
             && strcmp (nd, "user,id=n0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,ipv6=off") == 0
             && strcmp (lines, "") == 0,
         "netdev: user-mode network without ports");
  free (nd);
  free (lines);
  nd = lines = NULL;
  {
    char *ports[] = { (char *) ":0:53/udp", NULL };
    const char *h;
    int r = vm_netdev_user (ports, "x", &nd, &lines, &err);
    CHECK (r == 0 && (h = strstr (nd, ",hostfwd=udp::")) != NULL && sscanf (h, ",hostfwd=udp::%u-:53", &udp) == 1
               && udp > 0,
           "netdev: -p 53/udp gets a random host port: %s", r == 0 ? nd : err->msg);
    cella_error_free (&err);
    want = xasprintf ("53/udp -> 0.0.0.0:%u\n", udp);
    CHECK_STR (lines ? lines : "", want, "netdev: its line for cella port");
  }
  free (nd);
  free (lines);
  nd = lines = NULL;
  taken = xasprintf ("127.0.0.1:%u:80/tcp", ntohs (sa.sin_port));
  {
    char *ports[] = { taken, NULL };
    cleanup_free char *msg = xasprintf ("host port %u is in use", ntohs (sa.sin_port));
    CHECK (vm_netdev_user (ports, "x", &nd, &lines, &err) < 0 && err && strstr (err->msg, msg) && nd == NULL,
           "netdev: a taken host port is an error");
    cella_error_free (&err);
  }
  close (busy);
  busy = -1;
  {
    char *ports[] = { taken, NULL };
    cleanup_free char *rule = xasprintf (",hostfwd=tcp:127.0.0.1:%u-:80", ntohs (sa.sin_port));
    CHECK (vm_netdev_user (ports, "x", &nd, &lines, &err) == 0 && strstr (nd, rule),
           "netdev: IP:HOST:CTR as hostfwd=tcp:IP:HOST-:CTR");
    free (nd);
    free (lines);
    nd = lines = NULL;
    cella_error_free (&err);
  }
  {
    char *ports[] = { taken, taken, NULL };
    CHECK (vm_netdev_user (ports, "x", &nd, &lines, &err) < 0 && err && strstr (err->msg, "published twice"),
           "netdev: the same host port twice is an error");
    cella_error_free (&err);
  }
}

/* The plan's vm fields survive its JSON form (a container's saved plan). */
static void
test_plan_json (void)
{
  cleanup_plan struct plan *p = plan_new ();
  cleanup_plan struct plan *q = NULL;
  cleanup_free char *json = NULL;
  cella_error_t err = NULL;
  p->id = xstrdup ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  p->rootfs = xstrdup ("/tmp/root");
  p->hostname = xstrdup ("h");
  p->backend = BACKEND_VM;
  p->vm_engine = xstrdup ("qemu");
  p->vm_kernel = xstrdup ("/boot/vmlinuz-6.1.0-56-amd64");
  p->vm_kernel_release = xstrdup ("6.1.0-56-amd64");
  p->vm_accel = xstrdup ("tcg");
  p->vm_memory_mib = 512;
  strv_push (&p->process.argv, "true");
  p->process.cwd = xstrdup ("/");
  json = plan_to_json (p);
  CHECK (plan_from_json (json, &q, &err) == 0, "the vm plan reads back: %s", err ? err->msg : "ok");
  cella_error_free (&err);
  if (q == NULL)
    return;
  CHECK (q->backend == BACKEND_VM, "backend vm");
  CHECK_STR (q->vm_engine, "qemu", "vm engine");
  CHECK_STR (q->vm_kernel, "/boot/vmlinuz-6.1.0-56-amd64", "vm kernel");
  CHECK_STR (q->vm_kernel_release, "6.1.0-56-amd64", "vm kernel release");
  CHECK_STR (q->vm_accel, "tcg", "vm accel");
  CHECK (q->vm_memory_mib == 512, "vm memory");
  CHECK (!q->vm_snapshot_off, "snapshots on by default");
  p->vm_snapshot_off = true;
  free (json);
  json = plan_to_json (p);
  plan_free (q);
  q = NULL;
  CHECK (plan_from_json (json, &q, &err) == 0 && q && q->vm_snapshot_off, "--vm-snapshot=off kept in the plan");
  cella_error_free (&err);
}

static const struct vm_jail_entry *
jail_find (const struct vm_jail *j, const char *part)
{
  for (size_t i = 0; i < j->nentries; i++)
    if (strstr (j->entries[i].path, part))
      return &j->entries[i];
  return NULL;
}

/* What QEMU's jail starts with: the program, its loader and libraries as the host's loader
 * resolves them (asked of a dynamic program the host surely has, /bin/true, and of QEMU). */
static void
test_jail_files (const char *tmp)
{
  struct vm_jail j;
  cella_error_t err = NULL;
  cleanup_free char *truth = realpath ("/bin/true", NULL), *qemu = NULL;
  const struct vm_jail_entry *e;
  bool all_there = true;
  CHECK (vm_jail_init (&j, "/bin/true", NULL, &err) == 0, "jail of /bin/true: %s", err ? err->msg : "ok");
  CHECK (j.nentries >= 3 && truth && strcmp (j.entries[0].path, truth) == 0 && strcmp (j.qemu, truth) == 0,
         "the program first, at its real path");
  e = jail_find (&j, "/ld-linux");
  CHECK (e && e->kind == VM_JAIL_RO && strcmp (e->host, e->path) == 0, "the ELF loader, read-only, at its path");
  e = jail_find (&j, "/libc.so");
  CHECK (e && j.ld_path && strstr (j.ld_path, "/lib") && strncmp (j.ld_path, e->path, strlen (j.ld_path)) == 0,
         "libc, and its directory in LD_LIBRARY_PATH (%s)", j.ld_path ? j.ld_path : "none");
  for (size_t i = 0; i < j.nentries; i++)
    all_there &= j.entries[i].path[0] == '/' && access (j.entries[i].host, R_OK) == 0;
  CHECK (all_there, "every entry an absolute path to a readable host file");
  vm_jail_add (&j, "/etc/hostname", j.entries[0].path, VM_JAIL_RW);
  CHECK (strcmp (j.entries[0].host, truth) == 0, "a path already in the jail keeps its entry");
  vm_jail_clear (&j);
  {
    /* kept in the cache dir: the second look-up reads the same list back; a list that does not
     * start with the program is not trusted */
    cleanup_free char *file = xasprintf ("%s/jail-files", tmp), *text = NULL, *key = NULL;
    struct vm_jail k;
    size_t n;
    CHECK (vm_jail_init (&j, "/bin/true", tmp, &err) == 0 && access (file, F_OK) == 0, "the list kept in jail-files");
    CHECK (vm_jail_init (&k, "/bin/true", tmp, &err) == 0 && k.nentries == j.nentries && k.ld_path && j.ld_path
               && strcmp (k.ld_path, j.ld_path) == 0
               && strcmp (k.entries[k.nentries - 1].path, j.entries[j.nentries - 1].path) == 0,
           "read back the same");
    vm_jail_clear (&k);
    n = j.nentries;
    vm_jail_clear (&j);
    if (read_file (file, &text, NULL, NULL) == 0 && strchr (text, '\n'))
      {
        key = xstrdup (text);
        key[strcspn (key, "\n")] = '\0';
        vm_cache_put (file, key, "/lib\n/etc/shadow\n");
      }
    CHECK (key && vm_jail_init (&j, "/bin/true", tmp, &err) == 0 && j.nentries == n && !jail_find (&j, "/etc/shadow"),
           "a kept list that does not start with the program is found anew");
    vm_jail_clear (&j);
  }
  CHECK (vm_jail_init (&j, "/nonexistent/qemu", NULL, &err) < 0 && err && strstr (err->msg, "/nonexistent/qemu"),
         "a missing QEMU is named");
  cella_error_free (&err);
  vm_jail_clear (&j);
  if (vm_qemu_find (&qemu, NULL) < 0)
    {
      tap_skip ("QEMU not installed", "QEMU's own jail");
      return;
    }
  CHECK (vm_jail_init (&j, qemu, NULL, &err) == 0 && jail_find (&j, "/libglib-2.0.so"),
         "QEMU's jail has its libraries: %s", err ? err->msg : "ok");
  CHECK (jail_find (&j, "/qemu/accel-tcg-x86_64.so")
             || access ("/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so", F_OK) != 0,
         "its TCG module where Debian has one");
  CHECK (jail_find (&j, "/share/qemu/bios-microvm.bin") || access ("/usr/share/qemu/bios-microvm.bin", F_OK) != 0,
         "microvm's firmware, at the path QEMU opens (a symlink on Debian: bound as its target)");
  vm_jail_clear (&j);
}

int
main (void)
{
  char tmpl[] = "/tmp/cella-vmdisk-XXXXXX";
  const char *base = getenv ("TMPDIR");
  cleanup_free char *tmp = xasprintf ("%s/cella-vmdisk-XXXXXX", base && *base ? base : "/tmp");
  (void) tmpl;
  if (mkdtemp (tmp) == NULL)
    return 1;
  test_size ();
  test_build (tmp);
  test_workdir_remove (tmp);
  test_kernel ();
  test_qemu_argv ();
  test_jail_files (tmp);
  test_netdev_user ();
  test_plan_json ();
  remove_tree (tmp);
  return tap_done ();
}
