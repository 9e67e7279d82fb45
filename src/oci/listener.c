/* linux.seccomp.listenerPath (runtime-spec 1.1, config-linux.md "seccomp"): the listener fd of a
 * filter with SCMP_ACT_NOTIFY rules goes to the agent at that unix socket (SOCK_STREAM), one
 * connection per fd, in one message: the container process state as JSON with the fd attached
 * (SCM_RIGHTS):
 *   {"ociVersion", "fds": ["seccompFd"], "pid", "metadata", "state": {the container's state}}
 * A failure is the container's failure. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "oci.h"

static char *
process_state (const struct plan *p, const char *status, pid_t init_pid, pid_t pid)
{
  cleanup_free char *state_text = oci_state_json (p, status, init_pid);
  const struct plan_seccomp *s = p->process.seccomp_profile;
  json_t *o = json_pack ("{s:s, s:[s], s:i, s:s}", "ociVersion", "1.2.0", "fds", "seccompFd", "pid", (int) pid,
                         "metadata", s && s->listener_metadata ? s->listener_metadata : "");
  char *text;
  json_object_set_new (o, "state", json_loads (state_text, 0, NULL));
  text = json_dumps (o, JSON_COMPACT);
  json_decref (o);
  return text;
}

int
oci_seccomp_listener_send (const struct plan *p, const char *status, pid_t init_pid, int fd, pid_t pid,
                           cella_error_t *err)
{
  const char *path = p->process.seccomp_profile ? p->process.seccomp_profile->listener_path : NULL;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int sock = -1;
  cleanup_free char *text = NULL;
  char cbuf[CMSG_SPACE (sizeof (int))] = { 0 };
  struct iovec iov;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);
  if (path == NULL)
    return cella_error (err, 0, "seccomp listener: the profile has no listenerPath");
  if (strlen (path) >= sizeof sa.sun_path)
    return cella_error (err, ENAMETOOLONG, "seccomp listenerPath `%s`", path);
  strcpy (sa.sun_path, path);
  sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect (sock, (struct sockaddr *) &sa, sizeof sa) < 0)
    return cella_error (err, errno, "seccomp listenerPath `%s`: connect", path);
  text = process_state (p, status, init_pid, pid);
  iov = (struct iovec){ .iov_base = text, .iov_len = strlen (text) };
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cm), &fd, sizeof fd);
  if (sendmsg (sock, &mh, MSG_NOSIGNAL) != (ssize_t) iov.iov_len)
    return cella_error (err, errno, "seccomp listenerPath `%s`: send the state and the fd", path);
  return 0;
}
