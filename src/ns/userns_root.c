/* The root of a container that root runs in a user namespace of its own (--userns auto or
 * keep-id), mounted by the parent before clone, as docker and podman mount a container's root on
 * the host before the runtime gets it:
 * - the overlay belongs to the host's user namespace (no `userxattr`): the opaque directories of
 *   layers that root stored (trusted.overlay.opaque) still hide what is below them;
 * - with shifted ids (auto) every layer is an idmapped mount (MOUNT_ATTR_IDMAP, Linux 5.19+ under
 *   overlayfs) through a user namespace with the container's maps, so that a file of host uid 0 in
 *   the image belongs to 0 inside; the upper directory is not idmapped, so what the container
 *   writes belongs to its own ids on the host (the range's first id for its root).
 * Overlayfs takes no detached mount as a layer before Linux 6.15, so a helper attaches the layers
 * on a tmpfs in a mount namespace of its own; the overlay it makes is detached and comes back as a
 * descriptor, which the container's child attaches as its root (rootfs.c). The helper's mount
 * namespace goes away with it; the overlay keeps what it uses. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "ns.h"

bool
ns_root_premount_wanted (const struct plan *p)
{
  return p->userns_mode && (p->ns & PLAN_NS_USER) && !p->rootless && geteuid () == 0;
}

/* A detached clone of path, seen through the user namespace usernsfd when >= 0. */
static int
layer_tree (const char *path, int usernsfd, bool recursive, cella_error_t *err)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t) usernsfd };
  cleanup_close int t
      = open_tree (AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (t < 0)
    return cella_error (err, errno, "root layer `%s`", path);
  if (usernsfd >= 0 && mount_setattr (t, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
    return cella_error (err, errno, "idmapped mount of `%s`%s", path,
                        errno == EINVAL ? ": its file system does not support idmapped mounts (needs Linux 5.12+, and "
                                          "5.19+ for overlay layers)"
                                        : "");
  return steal_fd (&t);
}

/* The helper's sources, taken before its tmpfs covers anything (the data root may be under it). */
struct sources {
  int *layers; /* detached, idmapped for auto; top-most first, the root's bottom layer last */
  size_t n;
  int upper, work; /* a persistent upper and work directory (O_PATH); -1 for an ephemeral root */
};

static void
sources_close (struct sources *s)
{
  for (size_t i = 0; i < s->n; i++)
    close (s->layers[i]);
  free (s->layers);
  if (s->upper >= 0)
    close (s->upper);
  if (s->work >= 0)
    close (s->work);
}

static int
sources_take (const struct plan *p, int usernsfd, struct sources *s, cella_error_t *err)
{
  size_t nl = strv_len (p->root_layers);
  s->layers = xmalloc ((nl + 1) * sizeof *s->layers);
  for (size_t i = 0; i <= nl; i++)
    {
      int t = layer_tree (i < nl ? p->root_layers[i] : p->rootfs, usernsfd, false, err);
      if (t < 0)
        return -1;
      s->layers[s->n++] = t;
    }
  if (p->root_upper
      && ((s->upper = open (p->root_upper, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0
          || (s->work = open (p->root_work, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0))
    return cella_error (err, errno, "root overlay: upper `%s` or work `%s`", p->root_upper, p->root_work);
  return 0;
}

/* In the helper (its own mount namespace, a tmpfs on dir): each layer attached at <dir>/l<N>,
 * then the overlay. */
static int
helper_overlay (const struct plan *p, const struct sources *src, const char *dir, cella_error_t *err)
{
  cleanup_strv char **lowers = NULL;
  cleanup_free char *upper = NULL, *work = NULL;
  cleanup_close int fs = -1;
  int m;
  for (size_t i = 0; i < src->n; i++)
    {
      cleanup_free char *at = xasprintf ("%s/l%zu", dir, i);
      if (mkdir (at, 0700) < 0 || move_mount (src->layers[i], "", AT_FDCWD, at, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return cella_error (err, errno, "attach root layer %zu", i);
      strv_push (&lowers, at);
    }
  if (src->upper >= 0)
    {
      upper = xasprintf ("/proc/self/fd/%d", src->upper);
      work = xasprintf ("/proc/self/fd/%d", src->work);
    }
  else
    {
      upper = xasprintf ("%s/upper", dir);
      work = xasprintf ("%s/work", dir);
      /* the top directory of an ephemeral root is the container root's, as a persistent one's is
       * (store.c) */
      if (mkdir (upper, 0755) < 0 || mkdir (work, 0700) < 0
          || chown (upper, p->uid_map[0].outside, p->gid_map[0].outside) < 0)
        return cella_error (err, errno, "root overlay: create its upper directory");
    }
  fs = fsopen ("overlay", FSOPEN_CLOEXEC);
  if (fs < 0 || overlay_set_lowers (fs, lowers, src->n, err) < 0)
    return fs < 0 ? cella_error (err, errno, "create an overlay filesystem") : -1;
  if (fsconfig (fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0
      || fsconfig (fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0
      || fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return cella_error (err, errno, "create the root overlay over `%s`", p->rootfs);
  /* nodev as overlay_mount's: no node on the root opens a device, whatever the cgroup says */
  m = fsmount (fs, FSMOUNT_CLOEXEC, p->privileged ? 0 : MOUNT_ATTR_NODEV);
  if (m < 0)
    return cella_error (err, errno, "mount the root overlay");
  return m;
}

__attribute__ ((noreturn)) static void
helper_main (const struct plan *p, int usernsfd, int sock)
{
  cella_error_t err = NULL;
  struct sources src = { .upper = -1, .work = -1 };
  const char *dir = "/tmp";
  int m = -1;
  if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    cella_error (&err, errno, "root overlay: a mount namespace of its own");
  else if (sources_take (p, usernsfd, &src, &err) < 0)
    ;
  else if (mount ("cella-root", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0)
    cella_error (&err, errno, "root overlay: a tmpfs on %s", dir);
  else
    m = helper_overlay (p, &src, dir, &err);
  sources_close (&src);
  if (m < 0 || send_fd_with (sock, (char[]){ "0\nok" }, 4, m) < 0)
    {
      error_send (sock, err);
      _exit (1);
    }
  _exit (0);
}

/* The helper's answer: a mount descriptor, or its error. */
static int
recv_mount (int sock, cella_error_t *err)
{
  char buf[1024], cbuf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf - 1 };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  int fd = -1;
  ssize_t n;
  do
    n = recvmsg (sock, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR (&mh) : NULL; cm; cm = CMSG_NXTHDR (&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
      memcpy (&fd, CMSG_DATA (cm), sizeof fd);
  if (fd >= 0)
    return fd;
  if (n <= 0)
    return cella_error (err, 0, "root overlay: the helper died without an answer");
  buf[n] = '\0';
  return cella_error (err, atoi (buf), "%s", strchr (buf, '\n') ? strchr (buf, '\n') + 1 : buf);
}

static int
premount_overlay (const struct plan *p, int usernsfd, cella_error_t *err)
{
  int sv[2], fd, status;
  pid_t pid;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return cella_error (err, errno, "socketpair");
  fflush (NULL);
  pid = fork ();
  if (pid == 0)
    {
      close (sv[0]);
      helper_main (p, usernsfd, sv[1]);
    }
  close (sv[1]);
  fd = pid < 0 ? cella_error (err, errno, "fork") : recv_mount (sv[0], err);
  close (sv[0]);
  while (pid > 0 && waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  return fd;
}

int
ns_root_premount (const struct plan *p, cella_error_t *err)
{
  bool shift = strcmp (p->userns_mode, "auto") == 0;
  cleanup_close int usernsfd = -1;
  if (shift && (usernsfd = ns_userns_fd (p->uid_map, p->nuid_map, p->gid_map, p->ngid_map)) < 0)
    return cella_error (err, errno, "--userns %s: a user namespace with the container's maps", p->userns_mode);
  if (p->root_overlay)
    return premount_overlay (p, usernsfd, err);
  /* a root directory: its recursive clone, idmapped as a whole, nodev as rootfs.c makes it */
  {
    struct mount_attr nodev = { .attr_set = MOUNT_ATTR_NODEV };
    cleanup_close int t = layer_tree (p->rootfs, usernsfd, true, err);
    if (t >= 0 && root_nodev (p) && mount_setattr (t, "", AT_EMPTY_PATH | AT_RECURSIVE, &nodev, sizeof nodev) < 0)
      return cella_error (err, errno, "root `%s`: make it nodev", p->rootfs);
    return steal_fd (&t);
  }
}
