/* The child's steps for what an OCI config adds to a plan: namespaces joined by path, sysctl,
 * oom_score_adj, a time namespace's offsets, LSM labels, rlimits, umask, personality, and the
 * createContainer/startContainer hooks. Each does nothing when its plan field is unset, so an
 * engine plan runs exactly as before. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../oci/oci.h"
#include "../plan/build.h"
#include "internal.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const int ns_clone_flag[PLAN_NS_COUNT] = { CLONE_NEWNS,  CLONE_NEWPID,    CLONE_NEWUTS,  CLONE_NEWIPC,
                                                  CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWUSER, CLONE_NEWTIME };

static int
join_one (const struct plan *p, unsigned i, cella_error_t *err)
{
  cleanup_close int fd = open (p->ns_path[i], O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "%s namespace `%s`", plan_ns_name (i), p->ns_path[i]);
  if (setns (fd, ns_clone_flag[i]) < 0)
    return cella_error (err, errno, "join the %s namespace `%s`", plan_ns_name (i), p->ns_path[i]);
  return 0;
}

/* In the child, first thing. A user namespace was joined before the clone that made us (spawn.c
 * clone_in_userns: our new namespaces belong to it), pid and time apply to children only (the
 * parent entered them around clone, ns_enter_for_children); the others here. */
int
ns_join_paths (const struct plan *p, cella_error_t *err)
{
  for (unsigned i = 0; i < PLAN_NS_COUNT; i++)
    if (p->ns_path[i] && i != 6 && i != 1 && i != 7 && join_one (p, i, err) < 0)
      return -1;
  return 0;
}

/* Parent, around clone: the pid and time namespaces to join become those of the next child.
 * *saved holds our own to go back to (ns_leave_for_children). */
int
ns_enter_for_children (const struct plan *p, int saved[2], cella_error_t *err)
{
  static const unsigned which[2] = { 1, 7 };
  static const char *const self[2] = { "/proc/self/ns/pid_for_children", "/proc/self/ns/time_for_children" };
  saved[0] = saved[1] = -1;
  for (int k = 0; k < 2; k++)
    {
      if (p->ns_path[which[k]] == NULL)
        continue;
      saved[k] = open (self[k], O_RDONLY | O_CLOEXEC);
      if (saved[k] < 0)
        return cella_error (err, errno, "open `%s`", self[k]);
      if (join_one (p, which[k], err) < 0)
        return -1;
    }
  return 0;
}

void
ns_leave_for_children (int saved[2])
{
  for (int k = 0; k < 2; k++)
    if (saved[k] >= 0)
      {
        if (setns (saved[k], k == 0 ? CLONE_NEWPID : CLONE_NEWTIME) < 0)
          fprintf (stderr, "cella: warning: could not return to our own %s namespace: %s\n", k ? "time" : "pid",
                   strerror (errno));
        close (saved[k]);
        saved[k] = -1;
      }
}

static int
write_text (const char *path, const char *text, cella_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write_all (fd, text, strlen (text)) < 0)
    return -1;
  (void) err;
  return 0;
}

/* Through the host's /proc, still mounted here: a sysctl file acts on the namespaces of the
 * process that writes it, which are the container's now. */
static int
apply_sysctl (const struct plan *p, cella_error_t *err)
{
  for (size_t i = 0; p->sysctl && p->sysctl[i]; i++)
    {
      const char *eq = strchr (p->sysctl[i], '=');
      cleanup_free char *key = strndup (p->sysctl[i], (size_t) (eq - p->sysctl[i]));
      cleanup_free char *path = NULL;
      for (char *c = key; *c; c++)
        if (*c == '.')
          *c = '/';
      path = xasprintf ("/proc/sys/%s", key);
      if (write_text (path, eq + 1, err) < 0)
        return cella_error (err, errno, "sysctl %.*s=%s", (int) (eq - p->sysctl[i]), p->sysctl[i], eq + 1);
    }
  return 0;
}

static int
apply_oom_score_adj (const struct plan *p, cella_error_t *err)
{
  char buf[16];
  if (!p->process.has_oom_score_adj)
    return 0;
  snprintf (buf, sizeof buf, "%d", p->process.oom_score_adj);
  if (write_text ("/proc/self/oom_score_adj", buf, err) < 0)
    return cella_error (err, errno, "oom_score_adj %d%s", p->process.oom_score_adj,
                        errno == EACCES ? " (lowering it needs CAP_SYS_RESOURCE)" : "");
  return 0;
}

/* A new time namespace is for our children and for us at execve; its offsets can be written
 * only until a process is in it, so here, before exec. */
static int
apply_time_ns (const struct plan *p, cella_error_t *err)
{
  char buf[128];
  if (!(p->ns & PLAN_NS_TIME))
    return 0;
  if (unshare (CLONE_NEWTIME) < 0)
    return cella_error (err, errno, "create a time namespace");
  if (!p->has_time_offsets)
    return 0;
  snprintf (buf, sizeof buf, "monotonic %lld %lld\nboottime %lld %lld\n", p->time_offset[0][0], p->time_offset[0][1],
            p->time_offset[1][0], p->time_offset[1][1]);
  if (write_text ("/proc/self/timens_offsets", buf, err) < 0)
    return cella_error (err, errno, "write the time namespace's offsets");
  return 0;
}

static int
apply_lsm (const struct plan *p, cella_error_t *err)
{
  if (p->process.apparmor_profile)
    {
      cleanup_free char *t = xasprintf ("exec %s", p->process.apparmor_profile);
      if (write_text ("/proc/self/attr/apparmor/exec", t, err) < 0 && write_text ("/proc/self/attr/exec", t, err) < 0)
        return cella_error (err, errno, "AppArmor profile `%s`", p->process.apparmor_profile);
    }
  if (p->process.selinux_label && write_text ("/proc/self/attr/exec", p->process.selinux_label, err) < 0)
    return cella_error (err, errno, "SELinux label `%s`", p->process.selinux_label);
  return 0;
}

int
ns_oci_before_root (const struct plan *p, cella_error_t *err)
{
  if (apply_sysctl (p, err) < 0 || apply_oom_score_adj (p, err) < 0 || apply_time_ns (p, err) < 0
      || apply_lsm (p, err) < 0)
    return -1;
  return 0;
}

static int
apply_rlimits (const struct plan_process *pr, cella_error_t *err)
{
  for (size_t i = 0; i < pr->nrlimits; i++)
    {
      const struct plan_rlimit *l = &pr->rlimits[i];
      struct rlimit rl = { .rlim_cur = l->soft, .rlim_max = l->hard }, now;
      if (setrlimit (l->resource, &rl) == 0)
        continue;
      if (errno == EPERM && getrlimit (l->resource, &now) == 0 && l->hard > now.rlim_max)
        return cella_error (err, EPERM,
                            "rlimit %d (soft %llu, hard %llu): raising the hard limit above %llu needs "
                            "CAP_SYS_RESOURCE, which cella does not hold here",
                            l->resource, l->soft, l->hard, (unsigned long long) now.rlim_max);
      return cella_error (err, errno, "rlimit %d (soft %llu, hard %llu)", l->resource, l->soft, l->hard);
    }
  return 0;
}

/* The process's own settings, for the container's first process and for exec. */
static int
process_settings (const struct plan *p, cella_error_t *err)
{
  const struct plan_process *pr = &p->process;
  /* the engine's supplementary groups come from the image's /etc/group and are dropped where
   * setgroups is denied; an OCI config asks for them explicitly: an error then */
  if (p->bundle && pr->ngroups && p->rootless && p->ngid_map <= 1 && (p->ns & PLAN_NS_USER))
    return cella_error (err, 0,
                        "process.user.additionalGids: this user namespace maps one group id only, so "
                        "setgroups is denied (map a range with gidMappings)");
  if (apply_rlimits (pr, err) < 0)
    return -1;
  if (pr->has_umask)
    umask (pr->umask);
  if (pr->tty && (pr->console_height || pr->console_width))
    {
      struct winsize ws
          = { .ws_row = (unsigned short) pr->console_height, .ws_col = (unsigned short) pr->console_width };
      ioctl (0, TIOCSWINSZ, &ws);
    }
  return 0;
}

/* Before the user switch (rlimits may need our capabilities). */
int
ns_oci_process (const struct plan *p, cella_error_t *err)
{
  if (process_settings (p, err) < 0)
    return -1;
  if (p->personality && personality (p->personality == PERSONALITY_LINUX32 ? PER_LINUX32 : PER_LINUX) < 0)
    return cella_error (err, errno, "set the personality");
  if (p->domainname && setdomainname (p->domainname, strlen (p->domainname)) < 0)
    return cella_error (err, errno, "set domainname `%s`", p->domainname);
  return 0;
}

int
ns_oci_exec_process (const struct plan *p, cella_error_t *err)
{
  if (process_settings (p, err) < 0)
    return -1;
  if (p->personality && personality (p->personality == PERSONALITY_LINUX32 ? PER_LINUX32 : PER_LINUX) < 0)
    return cella_error (err, errno, "set the personality");
  return 0;
}

/* runc makes every process of a container (init and exec) lead a session and process group of
 * its own: conmon's `kill(-pid)` on --timeout must reach the container, not conmon. With a
 * terminal, setup_tty has made the session already. */
int
ns_oci_session (const struct plan *p, cella_error_t *err)
{
  if (p->bundle == NULL || p->process.tty || getsid (0) == getpid ())
    return 0;
  if (setsid () < 0)
    return cella_error (err, errno, "setsid");
  return 0;
}

/* A process.cwd the root does not have is created (as runc does), inside the root, 0755. */
int
ns_oci_make_cwd (const struct plan *p, cella_error_t *err)
{
  cleanup_close int rootfd = -1, fd = -1;
  if (p->bundle == NULL || access (p->process.cwd, F_OK) == 0 || errno != ENOENT)
    return 0;
  rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return cella_error (err, errno, "open the container's root");
  fd = root_open (rootfd, p->process.cwd, true, true, err);
  return fd < 0 ? cella_error_wrap (err, "create the working directory `%s`", p->process.cwd) : 0;
}

/* The environment the workload gets: the plan's, with HOME from the container's /etc/passwd for
 * the process's uid ("/" when it has no line) when the plan has none or an empty one (runc does this for
 * the container's process and for exec). Run before the user switch: /etc/passwd may be
 * readable by root only. */
char **
ns_process_env (const struct plan *p)
{
  char **env = strv_dup (p->process.env);
  cleanup_close int rootfd = -1;
  cleanup_free char *spec = NULL, *home = NULL, *kv = NULL;
  cleanup_free gid_t *groups = NULL;
  size_t ngroups = 0;
  uid_t uid;
  gid_t gid;
  cella_error_t err = NULL;
  if (env_get (env, "HOME") && *env_get (env, "HOME"))
    return env; /* an empty HOME counts as none, as with runc */
  rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  spec = xasprintf ("%u", (unsigned) p->process.uid);
  if (rootfd < 0 || user_resolve (rootfd, spec, &uid, &gid, &groups, &ngroups, &home, &err) < 0)
    cella_error_free (&err);
  kv = xasprintf ("HOME=%s", home && *home ? home : "/");
  env_set (&env, kv);
  return env;
}

pid_t
ns_host_pid (void)
{
  char buf[32] = "";
  ssize_t n = readlink ("/proc/self", buf, sizeof buf - 1);
  return n > 0 ? (pid_t) atoi (buf) : getpid ();
}

int
ns_oci_hooks (const struct plan *p, enum plan_hook_kind kind, const char *status, pid_t pid, cella_error_t *err)
{
  cleanup_free char *state = NULL;
  if (p->nhooks[kind] == 0)
    return 0;
  state = oci_state_json (p, status, pid);
  return oci_hooks_run (p, kind, state, err);
}
