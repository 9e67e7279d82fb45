/* QEMU's jail (vm.h, docs/vm.md "The jail"): what Firecracker's jailer does for Firecracker, done
 * by cella for QEMU. The VMM is the part of a VM that a guest attacks first; a guest that escapes
 * into it should find nothing of the host. So QEMU starts:
 *   - in new mount, pid, ipc, uts and cgroup namespaces (and a network namespace unless its NIC is
 *     QEMU's user-mode network, which needs the host's); rootless in a user namespace of its own;
 *   - with a root of its own: a read-only tmpfs holding only the files it opens (its program, the
 *     ELF loader and libraries the host's loader resolves for it, its TCG module and two firmware
 *     files), the kernel and initramfs, the volumes, /dev/null, /dev/urandom (/dev/kvm);
 *     its disk, console log, sockets and tap come as file descriptors;
 *   - as real root: under an unprivileged uid:gid of its own (a slot of a dedicated range, held
 *     with a lock while the VM runs), with no capability, or only the four file capabilities 9p's
 *     security_model=none needs when the VM has volumes;
 *   - with no_new_privs, a clean environment, and its own -sandbox (seccomp) on top (qemu.c);
 *   - in a cgroup of its own whose memory limit is guest RAM + overhead (vm_memory_limit).
 * The mounts exist only in QEMU's mount namespace: they vanish with it, nothing to unmount. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/paths.h"
#include "util/caps.h"
#include "cgroup/cgroup.h"
#include "ns/ns.h"
#include "vm.h"

/* The uids QEMU runs under as real root: VM_JAIL_UIDS of them from $CELLA_VM_UID_BASE, by default
 * from 0x70000000 (1879048192), just above the range systemd gives containers (UIDS-GIDS.md). */
#define VM_JAIL_UID_BASE 0x70000000u
#define VM_JAIL_UIDS 65536u

/* The firmware microvm loads (its BIOS: bios-microvm.bin, or qboot.rom itself with acpi=off as
 * for the tuned kernel; the option ROM that boots -kernel), from QEMU's data directory next to its
 * program (<prefix>/share/qemu; QEMU looks there first). */
static const char *const firmware[] = { "bios-microvm.bin", "qboot.rom", "linuxboot_dma.bin" };
/* Where QEMU's TCG module is, relative to its program's directory (Debian's, then others). */
static const char *const module_dirs[] = { "../lib/x86_64-linux-gnu/qemu", "../lib64/qemu", "../lib/qemu" };
#define TCG_MODULE "accel-tcg-x86_64.so"

void
vm_jail_add (struct vm_jail *j, const char *host, const char *path, enum vm_jail_kind kind)
{
  for (size_t i = 0; i < j->nentries; i++)
    if (strcmp (j->entries[i].path, path) == 0)
      return;
  j->entries = xrealloc (j->entries, (j->nentries + 1) * sizeof *j->entries);
  j->entries[j->nentries++] = (struct vm_jail_entry){ xstrdup (host), xstrdup (path), kind };
}

void
vm_jail_clear (struct vm_jail *j)
{
  for (size_t i = 0; i < j->nentries; i++)
    {
      free (j->entries[i].host);
      free (j->entries[i].path);
    }
  free (j->entries);
  free (j->qemu);
  free (j->ld_path);
  if (j->uid_lock >= 0)
    close (j->uid_lock);
  memset (j, 0, sizeof *j);
  j->uid_lock = -1;
}

/* ---- what QEMU needs: its program, loader, libraries, module, firmware ---- */

/* The ELF interpreter (PT_INTERP) of path, malloc'd; NULL for a static program. */
static int
elf_interp (const char *path, char **interp, cella_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  Elf64_Ehdr eh;
  *interp = NULL;
  if (fd < 0 || pread (fd, &eh, sizeof eh, 0) != (ssize_t) sizeof eh)
    return cella_error (err, errno, "read `%s`", path);
  if (memcmp (eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64
      || eh.e_phentsize != sizeof (Elf64_Phdr))
    return cella_error (err, ENOEXEC, "`%s`: not a 64-bit ELF program", path);
  for (unsigned i = 0; i < eh.e_phnum; i++)
    {
      Elf64_Phdr ph;
      char buf[PATH_MAX];
      if (pread (fd, &ph, sizeof ph, (off_t) (eh.e_phoff + i * sizeof ph)) != (ssize_t) sizeof ph)
        return cella_error (err, errno ? errno : EIO, "read the program headers of `%s`", path);
      if (ph.p_type != PT_INTERP)
        continue;
      if (ph.p_filesz < 2 || ph.p_filesz > sizeof buf
          || pread (fd, buf, ph.p_filesz, (off_t) ph.p_offset) != (ssize_t) ph.p_filesz || buf[ph.p_filesz - 1] != '\0'
          || buf[0] != '/')
        return cella_error (err, ENOEXEC, "`%s`: a bad PT_INTERP", path);
      *interp = xstrdup (buf);
      return 0;
    }
  return 0;
}

/* The output of `INTERP --list PATH` (the host's loader resolving PATH's libraries the way it
 * will when PATH runs; nothing of PATH runs), with an empty environment. */
static int
loader_list (const char *interp, const char *path, char **out, cella_error_t *err)
{
  char *const argv[] = { (char *) interp, (char *) "--list", (char *) path, NULL };
  char *const envp[] = { NULL };
  int p[2], status;
  size_t len = 0;
  pid_t pid;
  if (pipe2 (p, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  pid = fork ();
  if (pid == 0)
    {
      dup2 (p[1], 1);
      execve (interp, argv, envp);
      _exit (127);
    }
  close (p[1]);
  if (pid < 0 || read_all_fd (p[0], out, &len, err) < 0)
    {
      close (p[0]);
      if (pid > 0)
        waitpid (pid, NULL, 0);
      return pid < 0 ? cella_error (err, errno, "fork") : -1;
    }
  close (p[0]);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return cella_error (err, 0, "`%s --list %s` failed (status %d)", interp, path, status);
  return 0;
}

/* LD_LIBRARY_PATH in the jail (it has no ld.so.cache): the libraries' directories, in order. */
static void
library_dir_add (struct vm_jail *j, const char *lib)
{
  cleanup_free char *dir = xstrdup (lib);
  char *next;
  size_t n;
  *strrchr (dir, '/') = '\0';
  n = strlen (dir);
  for (const char *p = j->ld_path; p && *p; p += strcspn (p, ":"), p += *p == ':')
    if (strncmp (p, dir, n) == 0 && (p[n] == ':' || p[n] == '\0'))
      return;
  next = xasprintf ("%s%s%s", j->ld_path ? j->ld_path : "", j->ld_path ? ":" : "", *dir ? dir : "/");
  free (j->ld_path);
  j->ld_path = next;
}

/* Add the libraries of one `--list` output: "\tNAME => PATH (0x...)" and "\tPATH (0x...)" lines
 * (the loader's own); a "not found" is an error naming the library. */
static int
add_listed (struct vm_jail *j, char *text, const char *of, cella_error_t *err)
{
  char *save = NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *arrow = strstr (line, " => "), *path = arrow ? arrow + 4 : line + strspn (line, " \t"), *end;
      if (strstr (line, "not found"))
        return cella_error (err, ENOENT, "`%s` needs %s, which the host's loader does not find", of,
                            line + strspn (line, " \t"));
      if (*path != '/')
        continue; /* the vDSO */
      end = strstr (path, " (0x");
      if (end)
        *end = '\0';
      vm_jail_add (j, path, path, VM_JAIL_RO);
      if (arrow)
        library_dir_add (j, path);
    }
  return 0;
}

/* The ELF file prog (QEMU, or a module it loads), and the loader and libraries the host's loader
 * resolves for it. */
static int
add_elf (struct vm_jail *j, const char *prog, const char *interp, cella_error_t *err)
{
  cleanup_free char *text = NULL;
  vm_jail_add (j, prog, prog, VM_JAIL_RO);
  if (interp == NULL)
    return 0; /* static: nothing more */
  if (loader_list (interp, prog, &text, err) < 0)
    return -1;
  return add_listed (j, text, prog, err);
}

/* dir/REL with REL's leading "../" taken lexically (dir is a real path, so the host agrees), as
 * QEMU forms the paths of its data and modules from its program's directory. */
static char *
beside (const char *dir, const char *rel)
{
  cleanup_free char *d = xstrdup (dir);
  while (has_prefix (rel, "../"))
    {
      char *slash = strrchr (d, '/');
      if (slash)
        *slash = '\0';
      rel += 3;
    }
  return xasprintf ("%s/%s", d, rel);
}

/* QEMU's files, found anew: the program, its libraries, its TCG module, microvm's firmware. */
static int
find_files (struct vm_jail *j, const char *real, cella_error_t *err)
{
  cleanup_free char *interp = NULL, *bindir = xstrdup (real);
  *strrchr (bindir, '/') = '\0';
  if (elf_interp (real, &interp, err) < 0 || add_elf (j, real, interp, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof module_dirs / sizeof module_dirs[0]; i++)
    {
      cleanup_free char *dir = beside (bindir, module_dirs[i]);
      cleanup_free char *m = xasprintf ("%s/" TCG_MODULE, dir);
      if (access (m, R_OK) != 0)
        continue;
      if (add_elf (j, m, interp, err) < 0)
        return -1;
      break;
    }
  for (size_t i = 0; i < sizeof firmware / sizeof firmware[0]; i++)
    {
      cleanup_free char *dir = beside (bindir, "../share/qemu");
      cleanup_free char *f = xasprintf ("%s/%s", dir, firmware[i]);
      if (access (f, R_OK) == 0)
        vm_jail_add (j, f, f, VM_JAIL_RO);
    }
  return 0;
}

/* What the found files hold until: the same QEMU program and the same ld.so.cache (ldconfig runs
 * whenever a package brings or changes a library). */
static char *
files_key (const char *real)
{
  struct stat q, c;
  if (stat (real, &q) < 0)
    return NULL;
  if (stat ("/etc/ld.so.cache", &c) < 0)
    memset (&c, 0, sizeof c);
  return xasprintf ("jail-files-2 %s %lu:%lu:%lld:%lld.%09ld %lu:%lu:%lld.%09ld", real, (unsigned long) q.st_dev,
                    (unsigned long) q.st_ino, (long long) q.st_size, (long long) q.st_mtim.tv_sec, q.st_mtim.tv_nsec,
                    (unsigned long) c.st_dev, (unsigned long) c.st_ino, (long long) c.st_mtim.tv_sec,
                    c.st_mtim.tv_nsec);
}

/* The cached list: LD_LIBRARY_PATH's line, then one path per line. */
static char *
files_text (const struct vm_jail *j)
{
  char *text = xasprintf ("%s\n", j->ld_path ? j->ld_path : "");
  for (size_t i = 0; i < j->nentries; i++)
    {
      char *next = xasprintf ("%s%s\n", text, j->entries[i].path);
      free (text);
      text = next;
    }
  return text;
}

static void
files_from_text (struct vm_jail *j, char *text)
{
  char *save = NULL, *nl = strchr (text, '\n');
  if (nl == NULL)
    return;
  *nl = '\0';
  j->ld_path = *text ? xstrdup (text) : NULL;
  for (char *line = strtok_r (nl + 1, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    if (*line == '/')
      vm_jail_add (j, line, line, VM_JAIL_RO);
}

int
vm_jail_init (struct vm_jail *j, const char *qemu, const char *cache_dir, cella_error_t *err)
{
  cleanup_free char *real = realpath (qemu, NULL), *key = NULL, *cache = NULL, *text = NULL;
  memset (j, 0, sizeof *j);
  j->uid_lock = -1;
  if (real == NULL)
    return cella_error (err, errno, "QEMU `%s`", qemu);
  /* its real path: QEMU finds its data and modules relative to where it runs from */
  j->qemu = xstrdup (real);
  key = files_key (real);
  cache = cache_dir ? xasprintf ("%s/jail-files", cache_dir) : NULL;
  text = vm_cache_get (cache, key);
  if (text)
    {
      files_from_text (j, text);
      if (j->nentries > 0 && strcmp (j->entries[0].path, real) == 0)
        return 0;
      vm_jail_clear (j); /* not what we wrote: found anew */
      j->qemu = xstrdup (real);
    }
  if (find_files (j, real, err) < 0)
    return cella_error_wrap (err, "QEMU's jail");
  free (text);
  text = files_text (j);
  vm_cache_put (cache, key, text);
  return 0;
}

/* ---- the uid, as real root ---- */

/* A uid (and the same gid) for this VM's QEMU alone: the first slot of the range whose lock file
 * in <run root>/vm-uids no one holds; held (j->uid_lock) until the VM is gone. */
static int
claim_uid (struct vm_jail *j, cella_error_t *err)
{
  const char *env = getenv ("CELLA_VM_UID_BASE");
  long long base = VM_JAIL_UID_BASE;
  cleanup_free char *dir = xasprintf ("%s/vm-uids", paths_run_root ());
  cleanup_close int dfd = -1;
  if (env && *env)
    {
      base = parse_uint (env, UINT32_MAX - 1 - VM_JAIL_UIDS);
      if (base <= 0)
        return cella_error (err, 0,
                            "$CELLA_VM_UID_BASE `%s`: expected a uid from 1 to %u (QEMU's jail takes %u uids from it)",
                            env, UINT32_MAX - 1 - VM_JAIL_UIDS, VM_JAIL_UIDS);
    }
  if (mkdir_p (dir, 0700, err) < 0)
    return -1;
  dfd = open (dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return cella_error (err, errno, "open `%s`", dir);
  for (unsigned slot = 0; slot < VM_JAIL_UIDS; slot++)
    {
      char name[16];
      int fd;
      snprintf (name, sizeof name, "%u", slot);
      fd = openat (dfd, name, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0)
        return cella_error (err, errno, "QEMU's jail: open `%s/%s`", dir, name);
      if (flock (fd, LOCK_EX | LOCK_NB) == 0)
        {
          j->uid_lock = fd;
          j->uid = j->gid = (uid_t) (base + slot);
          return 0;
        }
      close (fd);
      if (errno != EWOULDBLOCK)
        return cella_error (err, errno, "QEMU's jail: lock `%s/%s`", dir, name);
    }
  return cella_error (err, EAGAIN, "QEMU's jail: all %u uids from %lld are taken by running VMs", VM_JAIL_UIDS, base);
}

/* Files cella made for QEMU to read (the initramfs): owned by its uid, 0400. */
static int
give_owned (const struct vm_jail *j, cella_error_t *err)
{
  for (size_t i = 0; i < j->nentries; i++)
    {
      cleanup_close int fd = -1;
      if (j->entries[i].kind != VM_JAIL_OWNED)
        continue;
      fd = open (j->entries[i].host, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 || fchown (fd, j->uid, j->gid) < 0 || fchmod (fd, 0400) < 0)
        return cella_error (err, errno, "QEMU's jail: give `%s` to uid %u", j->entries[i].host, (unsigned) j->uid);
    }
  return 0;
}

/* ---- the child: its root, its ids, exec ---- */

static int
write_proc (const char *path, const char *text, cella_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write_all (fd, text, strlen (text)) < 0)
    return cella_error (err, errno, "write `%s`", path);
  return 0;
}

/* Rootless: QEMU's ids in its user namespace are ours, except 0 (under `unshare -r`), which would
 * keep every capability of that namespace across exec: 1 then. */
static int
map_self (const struct vm_jail *j, cella_error_t *err)
{
  char line[64];
  unsigned u = (unsigned) j->uid, g = (unsigned) j->gid;
  snprintf (line, sizeof line, "%u %u 1\n", u ? u : 1u, u);
  if (write_proc ("/proc/self/uid_map", line, err) < 0 || write_proc ("/proc/self/setgroups", "deny", err) < 0)
    return -1;
  snprintf (line, sizeof line, "%u %u 1\n", g ? g : 1u, g);
  return write_proc ("/proc/self/gid_map", line, err);
}

/* The mount flags of each kind of entry: nothing set-id, no device but the device nodes, nothing
 * written but the writable volumes and the device nodes. */
static unsigned long long
kind_attrs (enum vm_jail_kind k)
{
  switch (k)
    {
    case VM_JAIL_RW:
      return MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    case VM_JAIL_DEV:
      return MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
    case VM_JAIL_RO:
    case VM_JAIL_OWNED:
    default:
      return MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    }
}

/* A read-only file QEMU's uid could not read (a kernel of mode 0600) is copied in, not bound. */
static bool
must_copy (const struct vm_jail *j, const struct vm_jail_entry *e, const struct stat *st)
{
  return j->drop_uid && e->kind == VM_JAIL_RO && S_ISREG (st->st_mode) && !(st->st_mode & S_IROTH);
}

/* An entry's host object, acquired: a detached mount with its flags (a whole tree for a
 * directory), or a file to copy from. */
struct source {
  int fd;
  bool dir, copy;
};

/* Before the host is hidden: src[i] for entry i. */
static int
acquire (const struct vm_jail *j, struct source *src, cella_error_t *err)
{
  for (size_t i = 0; i < j->nentries; i++)
    {
      const struct vm_jail_entry *e = &j->entries[i];
      struct mount_attr attr = { .attr_set = kind_attrs (e->kind) };
      struct stat st;
      if (stat (e->host, &st) < 0)
        return cella_error (err, errno, "`%s`", e->host);
      src[i].dir = S_ISDIR (st.st_mode);
      src[i].copy = must_copy (j, e, &st);
      if (src[i].copy)
        src[i].fd = open (e->host, O_RDONLY | O_CLOEXEC);
      else
        src[i].fd
            = open_tree (AT_FDCWD, e->host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (src[i].dir ? AT_RECURSIVE : 0));
      if (src[i].fd < 0)
        return cella_error (err, errno, "%s `%s`", src[i].copy ? "open" : "clone a mount of", e->host);
      if (!src[i].copy
          && mount_setattr (src[i].fd, "", AT_EMPTY_PATH | (src[i].dir ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
        return cella_error (err, errno, "set the mount flags of `%s`", e->host);
    }
  return 0;
}

/* The jail's root: a fresh tmpfs mounted over a directory of our private copy of the host's mounts
 * (every host object was acquired before; nothing is created on the host). */
static int
mount_root (cella_error_t *err)
{
  const char *over = ns_staging_dir ();
  if (over == NULL)
    return cella_error (err, ENOENT, "no directory to mount the root on (looked for /tmp, /mnt, /run, /var/tmp)");
  return ns_tmpfs_over (over, "755", "root", err);
}

/* Create path (absolute) in the jail's root: its directories, then an empty directory or file to
 * mount on; an O_PATH fd of it. The tree is ours and new: no symlink to follow, none followed. */
static int
make_target (int rootfd, const char *path, bool dir, cella_error_t *err)
{
  cleanup_free char *buf = xstrdup (path);
  cleanup_close int cur = dup (rootfd);
  char *save = NULL, *name = strtok_r (buf, "/", &save), *next;
  int fd;
  for (; name && (next = strtok_r (NULL, "/", &save)) != NULL; name = next)
    {
      int d;
      if (mkdirat (cur, name, 0755) < 0 && errno != EEXIST)
        return cella_error (err, errno, "create `%s` in the jail", path);
      d = openat (cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (d < 0)
        return cella_error (err, errno, "open the directories of `%s` in the jail", path);
      close (cur);
      cur = d;
    }
  if (name == NULL)
    return cella_error (err, EINVAL, "`%s`: not a path in the jail", path);
  if (dir ? mkdirat (cur, name, 0755) < 0
          : (fd = openat (cur, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0444)) < 0)
    return cella_error (err, errno, "create `%s` in the jail", path);
  if (!dir)
    close (fd);
  fd = openat (cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "open `%s` in the jail", path);
  return fd;
}

static int
copy_in (int rootfd, const char *path, int from, cella_error_t *err)
{
  cleanup_close int target = make_target (rootfd, path, false, err);
  cleanup_close int to = -1;
  cleanup_free char *self = NULL;
  ssize_t n;
  if (target < 0)
    return -1;
  self = xasprintf ("/proc/self/fd/%d", target);
  to = open (self, O_WRONLY | O_CLOEXEC);
  if (to < 0)
    return cella_error (err, errno, "open `%s` in the jail", path);
  while ((n = sendfile (to, from, NULL, 1 << 30)) > 0)
    ;
  if (n < 0)
    return cella_error (err, errno, "copy `%s` into the jail", path);
  return 0;
}

/* With volumes: QEMU's 9p server changes modes and owners without following symlinks through
 * /proc/self/fd/N. A procfs of QEMU's own pid namespace with subset=pid: its own /proc/1 and
 * nothing of the system (no /proc/sys, no /proc/sysrq-trigger). Mounted before the pivot: in a
 * user namespace the kernel allows a new procfs only beside a fully visible one. */
static int
mount_proc (int rootfd, cella_error_t *err)
{
  cleanup_close int fs = fsopen ("proc", FSOPEN_CLOEXEC);
  cleanup_close int m = -1, target = -1;
  if (fs < 0 || fsconfig (fs, FSCONFIG_SET_STRING, "subset", "pid", 0) < 0
      || fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return cella_error (err, errno, "create a procfs (subset=pid)");
  m = fsmount (fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (m < 0)
    return cella_error (err, errno, "mount a procfs");
  target = make_target (rootfd, "/proc", true, err);
  if (target < 0)
    return -1;
  if (move_mount (m, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return cella_error (err, errno, "mount a procfs on /proc in the jail");
  return 0;
}

/* Put every acquired entry in place, then make the root itself read-only. */
static int
fill_root (const struct vm_jail *j, int rootfd, const struct source *src, cella_error_t *err)
{
  struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
  for (size_t i = 0; i < j->nentries; i++)
    {
      cleanup_close int target = -1;
      const char *path = j->entries[i].path;
      if (src[i].copy)
        {
          if (copy_in (rootfd, path, src[i].fd, err) < 0)
            return -1;
          continue;
        }
      target = make_target (rootfd, path, src[i].dir, err);
      if (target < 0)
        return -1;
      if (move_mount (src[i].fd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        return cella_error (err, errno, "mount `%s` on `%s` in the jail", j->entries[i].host, path);
    }
  if (j->proc && mount_proc (rootfd, err) < 0)
    return -1;
  if (mount_setattr (rootfd, "", AT_EMPTY_PATH, &ro, sizeof ro) < 0)
    return cella_error (err, errno, "make the jail's root read-only");
  return 0;
}

/* As real root: QEMU's own uid and gid (and /dev/kvm's group with KVM), keeping only j->caps
 * (ambient, so that they survive exec; the bounding set the same). */
static int
drop_ids (const struct vm_jail *j, cella_error_t *err)
{
  gid_t groups[1] = { j->kvm_gid };
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return cella_error (err, errno, "PR_SET_KEEPCAPS");
  if (setgroups (j->kvm_group ? 1 : 0, groups) < 0 || setresgid (j->gid, j->gid, j->gid) < 0
      || setresuid (j->uid, j->uid, j->uid) < 0)
    return cella_error (err, errno, "switch to uid %u", (unsigned) j->uid);
  return caps_apply_sets (j->caps, j->caps, j->caps, j->caps, j->caps, false, err);
}

/* The child, in its new namespaces: its root built (while the parent makes its cgroup), then in
 * that cgroup (a namespace of it), its ids and privileges dropped. Its stdio and the fds QEMU keeps
 * are in place; every other fd closes at exec. */
static int
child_setup (const struct vm_jail *j, int sync, int parent_pidfd, cella_error_t *err)
{
  cleanup_free struct source *src = xzalloc ((j->nentries + 1) * sizeof *src);
  cleanup_close int root = -1;
  struct pollfd pf = { .fd = parent_pidfd, .events = POLLIN };
  char go;
  int r = -1;
  if (j->userns && map_self (j, err) < 0)
    return -1;
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return cella_error (err, errno, "make the mounts private");
  for (size_t i = 0; i < j->nentries; i++)
    src[i].fd = -1;
  if (acquire (j, src, err) == 0 && (root = mount_root (err)) >= 0 && fill_root (j, root, src, err) == 0
      && ns_pivot_root (root, err) == 0)
    r = 0;
  for (size_t i = 0; i < j->nentries; i++)
    if (src[i].fd >= 0)
      close (src[i].fd);
  if (r < 0)
    return -1;
  if (read (sync, &go, 1) != 1)
    return cella_error (err, errno ? errno : EPIPE, "wait for the cgroup");
  if (unshare (CLONE_NEWCGROUP) < 0)
    return cella_error (err, errno, "a cgroup namespace");
  if (j->drop_uid && drop_ids (j, err) < 0)
    return -1;
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return cella_error (err, errno, "PR_SET_NO_NEW_PRIVS");
  /* after the last change of ids, which clears it; the parent may have died before */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || poll (&pf, 1, 0) != 0)
    return cella_error (err, ESRCH, "the supervisor is gone");
  return 0;
}

static void __attribute__ ((noreturn)) child_run (const struct vm_jail *j, char *const *argv, const int *keep,
                                                  size_t nkeep, int in, int out, int sync, int parent_pidfd)
{
  cella_error_t e = NULL;
  cleanup_free char *ld = j->ld_path ? xasprintf ("LD_LIBRARY_PATH=%s", j->ld_path) : NULL;
  char *envp[] = { ld, NULL };
  signals_default ();
  setpgid (0, 0); /* the terminal's and stop's signals are the supervisor's to forward */
  if (dup2 (in, 0) < 0 || dup2 (out, 1) < 0 || dup2 (out, 2) < 0)
    _exit (125);
  close_range (3, ~0U, CLOSE_RANGE_CLOEXEC);
  for (size_t i = 0; i < nkeep; i++)
    fcntl (keep[i], F_SETFD, 0);
  if (child_setup (j, sync, parent_pidfd, &e) == 0)
    {
      execve (j->qemu, argv, envp);
      cella_error (&e, errno, "exec `%s`", j->qemu);
    }
  cella_error_wrap (&e, "QEMU's jail");
  error_send (sync, e);
  _exit (125);
}

/* ---- the parent ---- */

static unsigned long long
clone_flags (const struct vm_jail *j)
{
  return CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | (j->new_net ? CLONE_NEWNET : 0)
         | (j->userns ? CLONE_NEWUSER : 0);
}

/* Its container's cgroup for QEMU alone, with the memory limit. */
static int
enter_cgroup (const struct vm_jail *j, pid_t pid, cella_error_t *err)
{
  struct plan_resources r = { .memory = j->memory_limit };
  if (j->cgroup_plan == NULL)
    return 0;
  return cgroup_enter_limited (j->cgroup_plan, &r, pid, err);
}

int
vm_jail_spawn (struct vm_jail *j, char *const *argv, const int *keep, size_t nkeep, int in, int out, pid_t *pid,
               int *pidfd, cella_error_t *err)
{
  cleanup_close int self = (int) syscall (SYS_pidfd_open, getpid (), 0);
  int sync[2], r;
  if (self < 0)
    return cella_error (err, errno, "pidfd_open");
  if (j->userns)
    {
      /* the ids to map in the child (where geteuid () is the overflow id until then) */
      j->uid = geteuid ();
      j->gid = getegid ();
    }
  if (j->drop_uid)
    {
      struct stat st;
      if ((j->uid_lock < 0 && claim_uid (j, err) < 0) || give_owned (j, err) < 0)
        return -1;
      j->kvm_group = j->kvm && stat ("/dev/kvm", &st) == 0 && st.st_gid != 0;
      j->kvm_gid = j->kvm_group ? st.st_gid : 0;
    }
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0)
    return cella_error (err, errno, "socketpair");
  fflush (NULL);
  *pid = ns_clone (clone_flags (j), -1, pidfd);
  if (*pid == 0)
    {
      close (sync[0]);
      child_run (j, argv, keep, nkeep, in, out, sync[1], self);
    }
  r = *pid < 0 ? cella_error (err, errno, "QEMU's jail: clone (%s)",
                              j->userns ? "a user namespace and others" : "namespaces")
               : 0;
  close (sync[1]);
  if (r == 0 && enter_cgroup (j, *pid, err) < 0)
    r = cella_error_wrap (err, "QEMU's jail");
  if (r == 0)
    {
      /* go (a child that failed before reading it has said why already), then the child's error,
       * or end of file once QEMU runs (the socket closes at exec) */
      (void) send (sync[0], "g", 1, MSG_NOSIGNAL);
      if (error_recv (sync[0], err) == 0)
        r = -1;
    }
  close (sync[0]);
  if (r < 0 && *pid > 0)
    {
      kill (*pid, SIGKILL);
      waitpid (*pid, NULL, 0);
      close (*pidfd);
      *pidfd = -1;
    }
  return r;
}

void
vm_jail_release (struct vm_jail *j)
{
  struct cgroup_dirs d;
  if (j->cgroup_plan && cgroup_path_of (j->cgroup_plan, &d, NULL) == 0)
    {
      cgroup_remove (&d, NULL);
      cgroup_dirs_clear (&d);
    }
  if (j->uid_lock >= 0)
    close (j->uid_lock);
  j->uid_lock = -1;
}
