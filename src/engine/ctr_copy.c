/* `cella cp` on a container: find its root (a running one's through /proc/PID/root, a stopped
 * one's by mounting its overlay detached, in a user namespace when rootless), then copy with
 * copy.c, which never leaves that root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"
#include "backend/backend.h"
#include "ns/ns.h"
#include "copy.h"

/* Copied in as root, a file belongs to the container's root: 0, or with --userns the first id
 * of its range. */
static int
do_copy (const struct plan *p, int rootfd, bool into, const char *ctr_path, const char *host_path, cella_error_t *err)
{
  bool shifted = p->userns_mode && p->nuid_map && p->ngid_map;
  struct copy_opts o = { .chown = into && geteuid () == 0,
                         .uid = shifted ? p->uid_map[0].outside : 0,
                         .gid = shifted ? p->gid_map[0].outside : 0 };
  if (into)
    return copy_into_root (host_path, rootfd, ctr_path, &o, err);
  return copy_out_of_root (rootfd, ctr_path, host_path, &o, err);
}

static int
write_self_map (const char *file, unsigned id)
{
  char buf[64];
  int fd = open (file, O_WRONLY | O_CLOEXEC), r;
  snprintf (buf, sizeof buf, "0 %u 1\n", id);
  if (fd < 0)
    return -1;
  r = write_all (fd, buf, strlen (buf));
  close (fd);
  return r;
}

/* A rootless caller mounts the overlay as root of a user namespace of its own, its id as 0:
 * the same owner the container's root has, so what it creates belongs to the container. */
static int
enter_userns (cella_error_t *err)
{
  unsigned uid = geteuid (), gid = getegid ();
  if (unshare (CLONE_NEWUSER | CLONE_NEWNS) < 0)
    return cella_error (err, errno, "create a user namespace to mount the container's root");
  if (write_self_map ("/proc/self/setgroups", 0) < 0)
    {
      int fd = open ("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
      if (fd >= 0)
        {
          write_all (fd, "deny", 4);
          close (fd);
        }
    }
  if (write_self_map ("/proc/self/uid_map", uid) < 0 || write_self_map ("/proc/self/gid_map", gid) < 0)
    return cella_error (err, errno, "write the user namespace's id maps");
  return 0;
}

static int
mount_root (const struct plan *p, cella_error_t *err)
{
  cleanup_close int fs = fsopen ("overlay", FSOPEN_CLOEXEC);
  cleanup_strv char **lowers = strv_dup (p->root_layers);
  int m;
  strv_push (&lowers, p->rootfs);
  if (fs < 0)
    return cella_error (err, errno, "mount the container's root overlay");
  if (overlay_set_lowers (fs, lowers, strv_len (lowers), err) < 0)
    return -1;
  if (fsconfig (fs, FSCONFIG_SET_STRING, "upperdir", p->root_upper, 0) < 0
      || fsconfig (fs, FSCONFIG_SET_STRING, "workdir", p->root_work, 0) < 0
      || ((p->rootless || !in_initial_userns ()) && fsconfig (fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
      || fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return cella_error (err, errno, "mount the container's root overlay");
  m = fsmount (fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
  if (m < 0)
    return cella_error (err, errno, "mount the container's root overlay");
  return m;
}

/* In a child: the mount and the user namespace go away with it. Errors come back over a pipe. */
static int
copy_stopped (const struct plan *p, bool into, const char *ctr_path, const char *host_path, cella_error_t *err)
{
  int sv[2], status;
  pid_t pid;
  ssize_t n;
  if (!p->root_overlay)
    {
      cleanup_close int rootfd = open (p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (rootfd < 0)
        return cella_error (err, errno, "root `%s`", p->rootfs);
      return do_copy (p, rootfd, into, ctr_path, host_path, err);
    }
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return cella_error (err, errno, "socketpair");
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    return cella_error (err, errno, "fork");
  if (pid == 0)
    {
      cella_error_t e = NULL;
      int rootfd;
      close (sv[0]);
      /* a mount namespace of our own: under `unshare -r` the one we are in is not ours */
      /* --userns: the overlay the container gets (idmapped layers), not one of its host ids */
      if ((p->rootless ? enter_userns (&e) < 0
                       : unshare (CLONE_NEWNS) < 0 && cella_error (&e, errno, "create a mount namespace") < 0)
          || (rootfd = ns_root_premount_wanted (p) ? ns_root_premount (p, &e) : mount_root (p, &e)) < 0
          || do_copy (p, rootfd, into, ctr_path, host_path, &e) < 0)
        {
          error_send (sv[1], e);
          _exit (1);
        }
      _exit (0);
    }
  close (sv[1]);
  n = error_recv (sv[0], err);
  close (sv[0]);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (n == 0)
    return -1;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return cella_error (err, 0, "cp: the copy process failed");
  return 0;
}

int
ctr_copy (const char *id, bool into, const char *ctr_path, const char *host_path, cella_error_t *err)
{
  cleanup_plan struct plan *p = NULL;
  cleanup_close int lock = -1;
  struct ctr_state st;
  if (ctr_path[0] != '/')
    return cella_error (err, 0, "cp: `%s`: a container path must be absolute", ctr_path);
  /* held while a stopped container's root is mounted here: it cannot start meanwhile */
  lock = ctr_lock (id, err);
  if (lock < 0 || ctr_state_read (id, &st, lock, err) < 0 || ctr_plan_load (id, &p, err) < 0)
    return -1;
  if (p->backend == BACKEND_VM)
    {
      bool running = st.status == CTR_RUNNING && proc_alive (st.pid, st.pid_start), paused = st.paused;
      ctr_state_clear (&st);
      if (running && paused)
        return cella_error (err, 0, "cp: container %.12s is paused: unpause it first with `cella unpause %.12s`", id,
                            id);
      close (steal_fd (&lock)); /* as below: the guest copies; stop may end it */
      return ctr_copy_vm (p, id, running, into, ctr_path, host_path, err);
    }
  /* a proot container's root is a plain directory, running or not (/proc/PID/root is the host's) */
  if (st.status == CTR_RUNNING && !backend_can (p, BACKEND_CAP_PLAIN_ROOT))
    {
      cleanup_free char *proc_root = xasprintf ("/proc/%d/root", (int) st.pid);
      cleanup_close int rootfd = open (proc_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
      bool alive = proc_alive (st.pid, st.pid_start);
      ctr_state_clear (&st);
      close (steal_fd (&lock)); /* a long copy must not hold up stop */
      if (rootfd < 0 || !alive)
        return cella_error (err, errno, "cp: cannot reach the root of container %.12s through `%s`", id, proc_root);
      return do_copy (p, rootfd, into, ctr_path, host_path, err);
    }
  ctr_state_clear (&st);
  return copy_stopped (p, into, ctr_path, host_path, err);
}
