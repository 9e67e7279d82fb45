/* tiocsti: push TEXT into the input of the terminal open on each FD (TIOCSTI), as a hostile
 * workload would to the caller's shell; one line per FD: "fd N: pushed" or "fd N: ERRNO-TEXT".
 * Built static by t_tty.sh and bind-mounted into the container: busybox has no such applet.
 *
 *   tiocsti TEXT FD... */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

int
main (int argc, char **argv)
{
  if (argc < 3)
    {
      fprintf (stderr, "usage: tiocsti TEXT FD...\n");
      return 2;
    }
  setvbuf (stdout, NULL, _IONBF, 0);
  for (int i = 2; i < argc; i++)
    {
      int fd = atoi (argv[i]), e = 0;
      for (const char *c = argv[1]; *c && e == 0; c++)
        if (ioctl (fd, TIOCSTI, c) < 0)
          e = errno;
      if (e)
        printf ("fd %d: %s\n", fd, strerror (e));
      else
        printf ("fd %d: pushed\n", fd);
    }
  return 0;
}
