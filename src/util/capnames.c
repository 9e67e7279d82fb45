/* Capabilities by docker's names, and docker's default set: what a plan is built from
 * (applying them in the container child is src/ns/caps.c). */
#define _GNU_SOURCE
#include "capnames.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>

#define CAP_BIT(c) (UINT64_C (1) << (c))

uint64_t
caps_default (void)
{
  return CAP_BIT (CAP_CHOWN) | CAP_BIT (CAP_DAC_OVERRIDE) | CAP_BIT (CAP_FSETID) | CAP_BIT (CAP_FOWNER)
         | CAP_BIT (CAP_MKNOD) | CAP_BIT (CAP_NET_RAW) | CAP_BIT (CAP_SETGID) | CAP_BIT (CAP_SETUID)
         | CAP_BIT (CAP_SETFCAP) | CAP_BIT (CAP_SETPCAP) | CAP_BIT (CAP_NET_BIND_SERVICE) | CAP_BIT (CAP_SYS_CHROOT)
         | CAP_BIT (CAP_KILL) | CAP_BIT (CAP_AUDIT_WRITE);
}

/* The number of a docker-style name ("chown", "CAP_CHOWN", "Cap_Chown"), -1 if unknown. */
int
caps_number (const char *name)
{
  char buf[64] = "cap_";
  size_t len = strlen (buf);
  cap_value_t v;

  if (strncasecmp (name, "cap_", 4) == 0)
    name += 4;
  if (*name == '\0')
    return -1;
  /* libcap's lookup also takes numbers and stops at the first character that cannot be in a
   * name ("chown,kill" would be chown), so only whole names get that far. */
  for (; *name; name++)
    {
      if (!isalnum ((unsigned char) *name) && *name != '_')
        return -1;
      if (len + 1 >= sizeof buf)
        return -1;
      buf[len++] = (char) tolower ((unsigned char) *name);
    }
  buf[len] = '\0';
  if (cap_from_name (buf, &v) < 0 || v < 0 || v > 63)
    return -1;
  return v;
}

int
caps_modify_in (uint64_t *set, const char *name, bool add, uint64_t all, cella_error_t *err)
{
  int cap;

  if (strcasecmp (name, "all") == 0)
    {
      *set = add ? (*set | all) : 0;
      return 0;
    }
  cap = caps_number (name);
  if (cap < 0)
    return cella_error (err, 0, "unknown capability \"%s\": see capabilities(7) for names", name);
  if (add)
    *set |= CAP_BIT (cap);
  else
    *set &= ~CAP_BIT (cap);
  return 0;
}
