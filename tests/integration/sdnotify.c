/* sdnotify MESSAGE: send MESSAGE as one datagram to $NOTIFY_SOCKET, as sd_notify(3) does.
 * Built static by the tests (t_oci.sh) and bound into the container: busybox has no
 * systemd-notify. Exit 0 when sent, 1 otherwise (with the reason on stderr). */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  const char *path = getenv ("NOTIFY_SOCKET");
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd;
  if (argc != 2 || path == NULL || strlen (path) >= sizeof sa.sun_path)
    {
      fprintf (stderr, "usage: NOTIFY_SOCKET=PATH sdnotify MESSAGE\n");
      return 1;
    }
  strcpy (sa.sun_path, path);
  if (sa.sun_path[0] == '@')
    sa.sun_path[0] = '\0';
  fd = socket (AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0 || sendto (fd, argv[1], strlen (argv[1]), 0, (struct sockaddr *) &sa,
                        (socklen_t) (offsetof (struct sockaddr_un, sun_path) + strlen (path))) < 0)
    {
      perror ("sdnotify");
      return 1;
    }
  return 0;
}
