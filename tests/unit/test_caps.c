/* Unit tests for src/ns/caps.c, TAP output.  The caps_apply checks fork a child and need
 * CAP_SETPCAP, CAP_SETUID and CAP_SETGID (root, or root in a user namespace); without them they
 * say SKIP. */
#define _GNU_SOURCE
#include "util/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

#define BIT(c) (UINT64_C (1) << (c))
#define CHILD_SKIP 77

/* One of the Cap* lines of /proc/self/status; UINT64_MAX if missing. */
static uint64_t
proc_caps (const char *field)
{
  cleanup_fclose FILE *f = fopen ("/proc/self/status", "re");
  char line[256];
  size_t n = strlen (field);
  if (f == NULL)
    return UINT64_MAX;
  while (fgets (line, sizeof line, f))
    if (strncmp (line, field, n) == 0 && line[n] == ':')
      return strtoull (line + n + 1, NULL, 16);
  return UINT64_MAX;
}

static uint64_t
modified (uint64_t set, const char *name, bool add)
{
  cella_error_t err = NULL;
  if (caps_modify (&set, name, add, &err) < 0)
    {
      printf ("# caps_modify (%s): %s\n", name, err->msg);
      cella_error_free (&err);
      return UINT64_MAX;
    }
  return set;
}

static void
test_default (void)
{
  uint64_t d = caps_default ();
  tap_check (__builtin_popcountll (d) == 14, "caps_default has 14 capabilities (%d)", __builtin_popcountll (d));
  tap_check ((d & BIT (CAP_CHOWN)) && (d & BIT (CAP_AUDIT_WRITE)) && (d & BIT (CAP_SETFCAP))
                 && !(d & BIT (CAP_SYS_ADMIN)) && !(d & BIT (CAP_NET_ADMIN)),
             "caps_default has CHOWN, AUDIT_WRITE, SETFCAP and not SYS_ADMIN, NET_ADMIN");
}

static void
test_last_cap (void)
{
  int last = caps_last_cap ();
  tap_check (last >= CAP_AUDIT_READ && last < 64, "caps_last_cap is plausible (%d)", last);
  tap_check (caps_last_cap () == last, "caps_last_cap is stable");
  tap_check (__builtin_popcountll (caps_all ()) == last + 1 && (caps_all () & 1), "caps_all is 0..last_cap");
}

static void
test_modify_names (void)
{
  static const struct {
    const char *name;
    int cap;
  } names[] = {
    { "NET_ADMIN", CAP_NET_ADMIN },
    { "CAP_NET_ADMIN", CAP_NET_ADMIN },
    { "net_admin", CAP_NET_ADMIN },
    { "cap_sys_admin", CAP_SYS_ADMIN },
    { "Cap_Sys_Ptrace", CAP_SYS_PTRACE },
    { "SETFCAP", CAP_SETFCAP },
    { "setpcap", CAP_SETPCAP },
    { "CAP_CHECKPOINT_RESTORE", CAP_CHECKPOINT_RESTORE },
    { "chown", CAP_CHOWN },
    { "bpf", CAP_BPF },
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    tap_check (modified (0, names[i].name, true) == BIT (names[i].cap), "caps_modify adds \"%s\" as capability %d",
               names[i].name, names[i].cap);

  tap_check (modified (caps_default (), "CAP_CHOWN", false) == (caps_default () & ~BIT (CAP_CHOWN)),
             "caps_modify drops CAP_CHOWN");
  tap_check (modified (caps_default (), "chown", true) == caps_default (),
             "caps_modify adding a capability already there changes nothing");
  tap_check (modified (0, "sys_admin", false) == 0, "caps_modify dropping an absent capability");
  tap_check (modified (BIT (CAP_KILL), "ALL", true) == caps_all (), "caps_modify adds ALL");
  tap_check (modified (0, "all", true) == caps_all (), "caps_modify adds \"all\"");
  tap_check (modified (caps_all (), "ALL", false) == 0, "caps_modify drops ALL");
}

static void
test_modify_errors (void)
{
  static const char *bad[] = {
    "FOO", "CAP_", "", "cap_chown,cap_kill", "12", "CAP_12", " chown", "chown ", "CAP_ALL", "chownx", "cap_cap_chown",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      cella_error_t err = NULL;
      uint64_t set = caps_default ();
      cleanup_free char *want = xasprintf ("unknown capability \"%s\": see capabilities(7) for names", bad[i]);
      int r = caps_modify (&set, bad[i], true, &err);
      tap_check (r < 0 && err && strcmp (err->msg, want) == 0 && err->status == EXIT_CELLA_ERROR && err->errno_ == 0
                     && set == caps_default (),
                 "caps_modify rejects \"%s\" (%s)", bad[i], err ? err->msg : "no error");
      cella_error_free (&err);
    }
}

static void
test_to_string (void)
{
  cleanup_free char *empty = caps_to_string (0);
  cleanup_free char *two = caps_to_string (BIT (CAP_KILL) | BIT (CAP_CHOWN));
  cleanup_free char *def = caps_to_string (caps_default ());
  cleanup_free char *all = caps_to_string (caps_all ());
  const char *want_def = "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_SETGID,"
                         "CAP_SETUID,CAP_SETPCAP,CAP_NET_BIND_SERVICE,CAP_NET_RAW,CAP_SYS_CHROOT,"
                         "CAP_MKNOD,CAP_AUDIT_WRITE,CAP_SETFCAP";
  uint64_t round = 0;
  cleanup_free char *copy = xstrdup (all);
  char *save = NULL;

  tap_check (strcmp (empty, "") == 0, "caps_to_string (0) is \"\"");
  tap_check (strcmp (two, "CAP_CHOWN,CAP_KILL") == 0, "caps_to_string of CHOWN|KILL (%s)", two);
  tap_check (strcmp (def, want_def) == 0, "caps_to_string of the default set (%s)", def);
  for (char *tok = strtok_r (copy, ",", &save); tok; tok = strtok_r (NULL, ",", &save))
    round = modified (round, tok, true);
  tap_check (round == caps_all (), "caps_to_string (caps_all) parses back with caps_modify");
}

/* The caps_apply checks, each in a child given the sets it started with: 0 = pass, CHILD_SKIP,
 * anything else = fail. */
struct expect {
  uint64_t bnd, eff, prm;
};

static int
compare (const struct expect *want)
{
  struct {
    const char *field;
    uint64_t want;
  } rows[] = {
    { "CapBnd", want->bnd }, { "CapEff", want->eff }, { "CapPrm", want->prm }, { "CapInh", 0 }, { "CapAmb", 0 },
  };
  int bad = 0;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    {
      uint64_t got = proc_caps (rows[i].field);
      if (got != rows[i].want)
        {
          printf ("#   %s: got %016llx, want %016llx\n", rows[i].field, (unsigned long long) got,
                  (unsigned long long) rows[i].want);
          bad = 1;
        }
    }
  if (prctl (PR_GET_KEEPCAPS, 0, 0, 0, 0) != 0)
    {
      printf ("#   PR_SET_KEEPCAPS still set\n");
      bad = 1;
    }
  fflush (stdout);
  return bad;
}

static int
report (cella_error_t *err)
{
  printf ("#   %s: %s\n", (*err)->msg, strerror ((*err)->errno_));
  fflush (stdout);
  cella_error_free (err);
  return 1;
}

/* Raise CAP_KILL into inheritable and ambient, so the test sees caps_apply clear them. */
static int
raise_ambient (void)
{
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  if (syscall (SYS_capget, &h, d) < 0)
    return -1;
  d[0].inheritable |= 1u << CAP_KILL;
  if (syscall (SYS_capset, &h, d) < 0)
    return -1;
  return prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0);
}

/* Switch to nobody the way the container child does: keep the permitted set. */
static int
become_nobody (void)
{
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return -1;
  if (setresgid (65534, 65534, 65534) < 0 || setresuid (65534, 65534, 65534) < 0)
    return errno == EINVAL ? CHILD_SKIP : -1; /* EINVAL: 65534 not mapped in this user ns */
  return 0;
}

static int
child_apply_root (uint64_t prm0, uint64_t bnd0)
{
  cella_error_t err = NULL;
  struct expect want = { caps_default () & bnd0, caps_default () & prm0, caps_default () & prm0 };
  if (raise_ambient () < 0 || proc_caps ("CapAmb") != BIT (CAP_KILL))
    return 2;
  if (caps_apply (caps_default (), true, &err) < 0)
    return report (&err);
  return compare (&want);
}

static int
child_apply_nobody (uint64_t prm0, uint64_t bnd0)
{
  cella_error_t err = NULL;
  struct expect want = { caps_default () & bnd0, 0, 0 };
  int r = become_nobody ();
  (void) prm0;
  if (r != 0)
    return r < 0 ? 2 : r;
  if (caps_apply (caps_default (), false, &err) < 0)
    return report (&err);
  if (getuid () != 65534 || geteuid () != 65534)
    return 3;
  return compare (&want);
}

static int
child_apply_all (uint64_t prm0, uint64_t bnd0)
{
  cella_error_t err = NULL;
  /* What the process never held stays out, instead of failing. */
  struct expect want = { caps_all () & bnd0, caps_all () & prm0, caps_all () & prm0 };
  if (caps_apply (caps_all (), true, &err) < 0)
    return report (&err);
  return compare (&want);
}

static int
child_keep_admin_root (uint64_t prm0, uint64_t bnd0)
{
  cella_error_t err = NULL;
  uint64_t set = caps_default () & prm0;
  struct expect kept = { caps_default () & bnd0, set | BIT (CAP_SYS_ADMIN), set | BIT (CAP_SYS_ADMIN) };
  struct expect dropped = { caps_default () & bnd0, set, set };
  if (caps_apply_keep_admin (caps_default (), true, &err) < 0)
    return report (&err);
  if (compare (&kept) != 0)
    return 1;
  if (caps_drop_admin_if_absent (caps_default (), &err) < 0)
    return report (&err);
  return compare (&dropped);
}

static int
child_keep_admin_wanted (uint64_t prm0, uint64_t bnd0)
{
  cella_error_t err = NULL;
  uint64_t set = (caps_default () | BIT (CAP_SYS_ADMIN)) & prm0;
  struct expect want = { (caps_default () | BIT (CAP_SYS_ADMIN)) & bnd0, set, set };
  if (caps_apply_keep_admin (caps_default () | BIT (CAP_SYS_ADMIN), true, &err) < 0)
    return report (&err);
  if (caps_drop_admin_if_absent (caps_default () | BIT (CAP_SYS_ADMIN), &err) < 0)
    return report (&err);
  return compare (&want);
}

static int
child_keep_admin_nobody (uint64_t prm0, uint64_t bnd0)
{
  cella_error_t err = NULL;
  struct expect kept = { caps_default () & bnd0, BIT (CAP_SYS_ADMIN), BIT (CAP_SYS_ADMIN) };
  struct expect dropped = { caps_default () & bnd0, 0, 0 };
  int r = become_nobody ();
  (void) prm0;
  if (r != 0)
    return r < 0 ? 2 : r;
  if (caps_apply_keep_admin (caps_default (), false, &err) < 0)
    return report (&err);
  if (compare (&kept) != 0)
    return 1;
  if (caps_drop_admin_if_absent (0, &err) < 0)
    return report (&err);
  return compare (&dropped);
}

static void
run_child (const char *what, int (*fn) (uint64_t prm0, uint64_t bnd0))
{
  uint64_t need = BIT (CAP_SETPCAP) | BIT (CAP_SETUID) | BIT (CAP_SETGID) | BIT (CAP_SYS_ADMIN);
  uint64_t prm0 = proc_caps ("CapPrm"), bnd0 = proc_caps ("CapBnd");
  int status;
  pid_t pid;

  if ((proc_caps ("CapEff") & need) != need)
    {
      tap_skip ("needs CAP_SETPCAP, CAP_SETUID, CAP_SETGID, CAP_SYS_ADMIN", "%s", what);
      return;
    }
  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    {
      tap_check (false, "%s: fork: %s", what, strerror (errno));
      return;
    }
  if (pid == 0)
    _exit (fn (prm0, bnd0));
  if (waitpid (pid, &status, 0) < 0)
    status = -1;
  if (WIFEXITED (status) && WEXITSTATUS (status) == CHILD_SKIP)
    tap_skip ("uid 65534 is not mapped", "%s", what);
  else
    tap_check (WIFEXITED (status) && WEXITSTATUS (status) == 0, "%s (status %d)", what, status);
}

int
main (void)
{
  test_default ();
  test_last_cap ();
  test_modify_names ();
  test_modify_errors ();
  test_to_string ();
  run_child ("caps_apply as root: bnd = eff = prm = default, inh = amb = 0", child_apply_root);
  run_child ("caps_apply as nobody: bnd = default, eff = prm = 0", child_apply_nobody);
  run_child ("caps_apply ALL keeps what the process holds", child_apply_all);
  run_child ("caps_apply_keep_admin + caps_drop_admin_if_absent as root", child_keep_admin_root);
  run_child ("caps_drop_admin_if_absent keeps CAP_SYS_ADMIN when asked for", child_keep_admin_wanted);
  run_child ("caps_apply_keep_admin + caps_drop_admin_if_absent (0) as nobody", child_keep_admin_nobody);
  return tap_done ();
}
