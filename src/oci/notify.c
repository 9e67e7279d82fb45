/* sd_notify through the runtime (runc's NOTIFY_SOCKET protocol): when NOTIFY_SOCKET is set for
 * create or run, the container gets a socket of its own (ROOT/ID/notify/notify.sock, bound
 * read-only at /run/notify, NOTIFY_SOCKET=/run/notify/notify.sock in its environment); `start`
 * (or run) listens there, and once the container says READY=… passes that on to the host's
 * NOTIFY_SOCKET with MAINPID=<the container's init>, then waits for the receiver's barrier.
 * podman --sdnotify=container and systemd units (Type=notify) rely on it. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "../plan/build.h"

#define NOTIFY_DIR_IN_CONTAINER "/run/notify"
#define NOTIFY_SOCK_NAME "notify.sock"

/* NOTIFY_SOCKET from our environment: NULL when unset or empty */
static const char *
host_socket (void)
{
  const char *s = getenv ("NOTIFY_SOCKET");
  return s && *s ? s : NULL;
}

int
oci_notify_prepare (const char *dir, struct plan *p, cella_error_t *err)
{
  cleanup_free char *nd = NULL;
  if (host_socket () == NULL)
    return 0;
  nd = xasprintf ("%s/notify", dir);
  if (mkdir (nd, 0755) < 0 && errno != EEXIST)
    return cella_error (err, errno, "NOTIFY_SOCKET: make `%s`", nd);
  /* read-only, nosuid, nodev, noexec: a socket on it can still be sent to */
  plan_add_bind (p, nd, NOTIFY_DIR_IN_CONTAINER, BIND_NOSUID | BIND_NOEXEC);
  env_set (&p->process.env, "NOTIFY_SOCKET=" NOTIFY_DIR_IN_CONTAINER "/" NOTIFY_SOCK_NAME);
  return 0;
}

/* sun_path for path; a long path goes through /proc/self/fd of its directory (dirfd kept open
 * by the caller); '@' is the abstract namespace (systemd's notation). */
static int
fill_addr (struct sockaddr_un *sa, socklen_t *len, const char *path, int *dirfd, cella_error_t *err)
{
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  *dirfd = -1;
  if (path[0] == '@')
    {
      if (strlen (path) > sizeof sa->sun_path - 1)
        return cella_error (err, ENAMETOOLONG, "socket `%s`", path);
      memcpy (sa->sun_path + 1, path + 1, strlen (path + 1));
      *len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + strlen (path));
      return 0;
    }
  if (strlen (path) >= sizeof sa->sun_path)
    {
      const char *slash = strrchr (path, '/');
      cleanup_free char *dir = slash && slash != path ? strndup (path, (size_t) (slash - path)) : xstrdup ("/");
      *dirfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (*dirfd < 0)
        return cella_error (err, errno, "socket `%s`", path);
      snprintf (sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", *dirfd, slash ? slash + 1 : path);
    }
  else
    strcpy (sa->sun_path, path);
  *len = (socklen_t) sizeof *sa;
  return 0;
}

int
oci_notify_listen (const char *dir, int *out, cella_error_t *err)
{
  cleanup_free char *nd = xasprintf ("%s/notify", dir), *path = xasprintf ("%s/" NOTIFY_SOCK_NAME, nd);
  cleanup_close int fd = -1, dfd = -1;
  struct sockaddr_un sa;
  socklen_t len;
  *out = -1;
  /* no NOTIFY_SOCKET now, or none at create (nothing in the container would send) */
  if (host_socket () == NULL || access (nd, F_OK) < 0)
    return 0;
  unlink (path);
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cella_error (err, errno, "NOTIFY_SOCKET: socket");
  if (fill_addr (&sa, &len, path, &dfd, err) < 0)
    return -1;
  if (bind (fd, (struct sockaddr *) &sa, len) < 0)
    return cella_error (err, errno, "NOTIFY_SOCKET: bind `%s`", path);
  /* the container's processes may run as any user */
  if (chmod (path, 0777) < 0)
    return cella_error (err, errno, "NOTIFY_SOCKET: chmod `%s`", path);
  *out = steal_fd (&fd);
  return 0;
}

static int
send_text (int fd, const char *text, int pass_fd, cella_error_t *err)
{
  char cbuf[CMSG_SPACE (sizeof (int))] = { 0 };
  struct iovec iov = { .iov_base = (void *) text, .iov_len = strlen (text) };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (pass_fd >= 0)
    {
      struct cmsghdr *cm;
      mh.msg_control = cbuf;
      mh.msg_controllen = sizeof cbuf;
      cm = CMSG_FIRSTHDR (&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (cm), &pass_fd, sizeof pass_fd);
    }
  if (sendmsg (fd, &mh, MSG_NOSIGNAL) < 0)
    return cella_error (err, errno, "NOTIFY_SOCKET: send to `%s`", host_socket ());
  return 0;
}

/* READY line and MAINPID to the host's socket, then sd_notify_barrier: a pipe's write end sent
 * with BARRIER=1, whose closing says the receiver has read what came before (at most 30 s). */
static int
tell_host (const char *ready, pid_t pid, cella_error_t *err)
{
  cleanup_close int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), dfd = -1;
  cleanup_free char *line = xasprintf ("%s\n", ready), *mainpid = xasprintf ("MAINPID=%d\n", (int) pid);
  struct sockaddr_un sa;
  socklen_t len;
  int pp[2];
  struct pollfd pf;
  if (fd < 0 || fill_addr (&sa, &len, host_socket (), &dfd, err) < 0)
    return fd < 0 ? cella_error (err, errno, "NOTIFY_SOCKET: socket") : -1;
  if (connect (fd, (struct sockaddr *) &sa, len) < 0)
    return cella_error (err, errno, "NOTIFY_SOCKET: connect to `%s`", host_socket ());
  if (send_text (fd, line, -1, err) < 0 || send_text (fd, mainpid, -1, err) < 0)
    return -1;
  if (pipe2 (pp, O_CLOEXEC) < 0)
    return cella_error (err, errno, "NOTIFY_SOCKET: pipe");
  if (send_text (fd, "BARRIER=1", pp[1], err) < 0)
    {
      close (pp[0]);
      close (pp[1]);
      return -1;
    }
  close (pp[1]);
  pf = (struct pollfd){ .fd = pp[0], .events = POLLIN };
  while (poll (&pf, 1, 30000) < 0 && errno == EINTR)
    ;
  close (pp[0]);
  return 0;
}

/* The line of a datagram that starts with READY= ("STATUS=…\nREADY=1"), or NULL */
static char *
ready_line (const char *buf)
{
  for (const char *l = buf; l && *l; l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
    if (strncmp (l, "READY=", 6) == 0)
      return strndup (l, strcspn (l, "\n"));
  return NULL;
}

int
oci_notify_relay (int sock, pid_t pid, cella_error_t *err)
{
  cleanup_close int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (pidfd < 0)
    return 0; /* already gone: nothing will be ready */
  for (;;)
    {
      struct pollfd pf[2] = { { .fd = sock, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
      char buf[4096];
      ssize_t n;
      cleanup_free char *ready = NULL;
      if (poll (pf, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return cella_error (err, errno, "NOTIFY_SOCKET: wait for the container");
        }
      if (pf[0].revents & POLLIN)
        {
          n = recv (sock, buf, sizeof buf - 1, MSG_DONTWAIT);
          if (n > 0)
            {
              buf[n] = '\0';
              if ((ready = ready_line (buf)) != NULL)
                return tell_host (ready, pid, err);
            }
          continue;
        }
      if (pf[1].revents & POLLIN)
        return 0; /* the container ended before it was ready: nothing to say */
    }
}
