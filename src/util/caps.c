#define _GNU_SOURCE
#include "caps.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#define CAP_BIT(c) (UINT64_C (1) << (c))

static void
cleanup_capp (cap_t *c)
{
  if (*c)
    cap_free (*c);
}
#define cleanup_cap __attribute__ ((cleanup (cleanup_capp)))

int
caps_last_cap (void)
{
  /* A constant of the running kernel; a race between two first callers writes the same value. */
  static int last = -1;
  cleanup_close int fd = -1;
  char buf[16];
  ssize_t n;
  long long v;

  if (last >= 0)
    return last;
  last = CAP_LAST_CAP;
  fd = open ("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return last;
  n = read (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return last;
  buf[n] = '\0';
  buf[strcspn (buf, "\n")] = '\0';
  v = parse_uint (buf, 63);
  if (v >= 0)
    last = (int) v;
  return last;
}

uint64_t
caps_all (void)
{
  int last = caps_last_cap ();
  return last >= 63 ? UINT64_MAX : CAP_BIT (last + 1) - 1;
}

int
caps_modify (uint64_t *set, const char *name, bool add, cella_error_t *err)
{
  return caps_modify_in (set, name, add, caps_all (), err);
}

char *
caps_to_string (uint64_t set)
{
  char *out = xstrdup ("");
  size_t len = 0;

  for (int i = 0; i < 64; i++)
    {
      char *name;
      size_t n;

      if (!(set & CAP_BIT (i)))
        continue;
      /* "cap_chown", or the bare number for one newer than libcap. */
      name = cap_to_name (i);
      if (name == NULL)
        abort ();
      n = strlen (name);
      out = xrealloc (out, len + n + 2);
      if (len > 0)
        out[len++] = ',';
      for (size_t j = 0; j < n; j++)
        out[len++] = (char) toupper ((unsigned char) name[j]);
      out[len] = '\0';
      cap_free (name);
    }
  return out;
}

static int
get_permitted (uint64_t *out, cella_error_t *err)
{
  cleanup_cap cap_t c = cap_get_proc ();
  int last = caps_last_cap ();

  if (c == NULL)
    return cella_error (err, errno, "read the process capabilities");
  *out = 0;
  for (int i = 0; i <= last; i++)
    {
      cap_flag_value_t v;
      if (cap_get_flag (c, i, CAP_PERMITTED, &v) < 0)
        return cella_error (err, errno, "read the process capabilities");
      if (v == CAP_SET)
        *out |= CAP_BIT (i);
    }
  return 0;
}

/* effective = permitted = set, inheritable = empty. */
static int
set_eff_prm (uint64_t set, cella_error_t *err)
{
  cleanup_cap cap_t c = cap_init ();
  int last = caps_last_cap ();

  if (c == NULL)
    return cella_error (err, errno, "allocate a capability set");
  for (int i = 0; i <= last; i++)
    {
      cap_value_t v = i;
      if (!(set & CAP_BIT (i)))
        continue;
      if (cap_set_flag (c, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0 || cap_set_flag (c, CAP_PERMITTED, 1, &v, CAP_SET) < 0)
        return cella_error (err, errno, "build a capability set");
    }
  if (cap_set_proc (c) < 0)
    {
      int e = errno;
      cleanup_free char *names = caps_to_string (set);
      return cella_error (err, e, "set effective and permitted capabilities to `%s`", names);
    }
  return 0;
}

static int
drop_bounding (uint64_t set, cella_error_t *err)
{
  int last = caps_last_cap ();

  for (int i = 0; i <= last; i++)
    {
      if (set & CAP_BIT (i))
        continue;
      /* Dropping needs CAP_SETPCAP even when it changes nothing: without it (a runtime above us
       * took it), what is already gone is fine. Asking first would cost a syscall per cap. */
      if (prctl (PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && !(errno == EPERM && prctl (PR_CAPBSET_READ, i, 0, 0, 0) == 0))
        {
          int e = errno;
          cleanup_free char *name = caps_to_string (CAP_BIT (i));
          return cella_error (err, e, "drop %s from the bounding set", name);
        }
    }
  return 0;
}

static int
apply (uint64_t set, bool root_user, bool keep_admin, cella_error_t *err)
{
  uint64_t permitted = 0, target;

  if (get_permitted (&permitted, err) < 0)
    return -1;
  /* After setuid with PR_SET_KEEPCAPS the effective set is empty; PR_CAPBSET_DROP needs
   * CAP_SETPCAP in it. */
  if (set_eff_prm (permitted, err) < 0)
    return -1;
  if (drop_bounding (set, err) < 0)
    return -1;
  /* EINVAL: a kernel before 4.3 has no ambient set. */
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return cella_error (err, errno, "clear the ambient capabilities");
  /* A capability the bounding set lost can stay permitted: bounding only limits what execve
   * grants.  So keep_admin leaves CAP_SYS_ADMIN here for seccomp_load and nowhere else. */
  target = root_user ? set : 0;
  if (keep_admin)
    target |= CAP_BIT (CAP_SYS_ADMIN);
  if (set_eff_prm (target & permitted, err) < 0)
    return -1;
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return cella_error (err, errno, "clear PR_SET_KEEPCAPS");
  return 0;
}

int
caps_apply (uint64_t set, bool root_user, cella_error_t *err)
{
  return apply (set, root_user, false, err);
}

int
caps_apply_keep_admin (uint64_t set, bool root_user, cella_error_t *err)
{
  return apply (set, root_user, true, err);
}

int
caps_drop_admin_if_absent (uint64_t set, cella_error_t *err)
{
  cleanup_cap cap_t c = NULL;
  cap_value_t admin = CAP_SYS_ADMIN;

  if (set & CAP_BIT (CAP_SYS_ADMIN))
    return 0;
  c = cap_get_proc ();
  if (c == NULL)
    return cella_error (err, errno, "read the process capabilities");
  if (cap_set_flag (c, CAP_EFFECTIVE, 1, &admin, CAP_CLEAR) < 0
      || cap_set_flag (c, CAP_PERMITTED, 1, &admin, CAP_CLEAR) < 0)
    return cella_error (err, errno, "build a capability set");
  if (cap_set_proc (c) < 0)
    return cella_error (err, errno, "drop CAP_SYS_ADMIN from the effective and permitted sets");
  return 0;
}

/* effective, permitted and inheritable as given (each limited to what we hold). */
static int
set_three (uint64_t eff, uint64_t prm, uint64_t inh, cella_error_t *err)
{
  cleanup_cap cap_t c = cap_init ();
  int last = caps_last_cap ();
  if (c == NULL)
    return cella_error (err, errno, "allocate a capability set");
  for (int i = 0; i <= last; i++)
    {
      cap_value_t v = i;
      if (((eff & CAP_BIT (i)) && cap_set_flag (c, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0)
          || ((prm & CAP_BIT (i)) && cap_set_flag (c, CAP_PERMITTED, 1, &v, CAP_SET) < 0)
          || ((inh & CAP_BIT (i)) && cap_set_flag (c, CAP_INHERITABLE, 1, &v, CAP_SET) < 0))
        return cella_error (err, errno, "build a capability set");
    }
  if (cap_set_proc (c) < 0)
    {
      int e = errno;
      cleanup_free char *p = caps_to_string (prm), *i = caps_to_string (inh);
      return cella_error (err, e, "set permitted capabilities `%s`, inheritable `%s`", p, i);
    }
  return 0;
}

uint64_t
caps_held (void)
{
  uint64_t held = 0;
  cella_error_t err = NULL;
  if (get_permitted (&held, &err) < 0)
    cella_error_free (&err);
  return held;
}

int
caps_apply_sets (uint64_t bounding, uint64_t effective, uint64_t permitted, uint64_t inheritable, uint64_t ambient,
                 bool keep_admin, cella_error_t *err)
{
  uint64_t held = 0, admin = keep_admin ? CAP_BIT (CAP_SYS_ADMIN) : 0;
  int last = caps_last_cap ();
  if (get_permitted (&held, err) < 0 || set_eff_prm (held, err) < 0 || drop_bounding (bounding, err) < 0)
    return -1;
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return cella_error (err, errno, "clear the ambient capabilities");
  /* inheritable may only grow within the bounding set; permitted only shrink */
  if (set_three ((effective | admin) & held, (permitted | admin) & held, inheritable & (held | bounding), err) < 0)
    return -1;
  for (int i = 0; i <= last; i++)
    if ((ambient & CAP_BIT (i)) && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0)
      {
        int e = errno;
        cleanup_free char *name = caps_to_string (CAP_BIT (i));
        return cella_error (err, e, "raise %s in the ambient set", name);
      }
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return cella_error (err, errno, "clear PR_SET_KEEPCAPS");
  return 0;
}
