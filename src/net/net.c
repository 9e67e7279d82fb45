/* Networking: placeholder until the network work lands (see net.h). */
#include "net.h"

bool
net_wanted (const struct plan *p)
{
  (void) p;
  return false;
}

int
net_attach (struct plan *p, pid_t pid, cella_error_t *err)
{
  (void) p;
  (void) pid;
  (void) err;
  return 0;
}
