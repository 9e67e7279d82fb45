/* An OCI seccomp profile (linux.seccomp, kept in the plan as a rule list) compiled with
 * libseccomp and loaded in the container child. Unknown system call names are skipped (a
 * profile names calls of many kernels and architectures, as runc does); a rule whose action is
 * the default one adds nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <string.h>

#include "../plan/plan.h"
#include "seccomp.h"

static void
release (scmp_filter_ctx *ctx)
{
  if (*ctx)
    seccomp_release (*ctx);
}

static uint32_t
action (enum plan_scmp_action a, int errno_ret)
{
  int e = errno_ret >= 0 ? errno_ret : EPERM;
  switch (a)
    {
    case SCMPA_KILL:
    case SCMPA_KILL_THREAD:
      return SCMP_ACT_KILL_THREAD;
    case SCMPA_KILL_PROCESS:
      return SCMP_ACT_KILL_PROCESS;
    case SCMPA_TRAP:
      return SCMP_ACT_TRAP;
    case SCMPA_ERRNO:
      return SCMP_ACT_ERRNO ((uint16_t) e);
    case SCMPA_TRACE:
      return SCMP_ACT_TRACE ((uint16_t) e);
    case SCMPA_LOG:
      return SCMP_ACT_LOG;
    case SCMPA_NOTIFY:
      return SCMP_ACT_NOTIFY;
    case SCMPA_ALLOW:
    case SCMPA__COUNT:
    default:
      return SCMP_ACT_ALLOW;
    }
}

static const enum scmp_compare cmp_ops[SCMPO__COUNT] = {
  [SCMPO_NE] = SCMP_CMP_NE,
  [SCMPO_LT] = SCMP_CMP_LT,
  [SCMPO_LE] = SCMP_CMP_LE,
  [SCMPO_EQ] = SCMP_CMP_EQ,
  [SCMPO_GE] = SCMP_CMP_GE,
  [SCMPO_GT] = SCMP_CMP_GT,
  [SCMPO_MASKED_EQ] = SCMP_CMP_MASKED_EQ,
};

static int
add_arches (scmp_filter_ctx ctx, char *const *arches, cella_error_t *err)
{
  for (size_t i = 0; arches && arches[i]; i++)
    {
      char lower[32];
      size_t j;
      uint32_t a;
      int r;
      for (j = 0; arches[i][10 + j] && j < sizeof lower - 1; j++)
        lower[j] = (char) (arches[i][10 + j] >= 'A' && arches[i][10 + j] <= 'Z' ? arches[i][10 + j] - 'A' + 'a'
                                                                                : arches[i][10 + j]);
      lower[j] = '\0';
      a = seccomp_arch_resolve_name (lower);
      if (a == 0)
        return cella_error (err, 0, "seccomp architecture `%s`", arches[i]);
      r = seccomp_arch_add (ctx, a);
      if (r < 0 && r != -EEXIST)
        return cella_error (err, -r, "seccomp architecture `%s`", arches[i]);
    }
  return 0;
}

static int
set_flags (scmp_filter_ctx ctx, char *const *flags, cella_error_t *err)
{
  for (size_t i = 0; flags && flags[i]; i++)
    {
      enum scmp_filter_attr attr;
      int r;
      if (strcmp (flags[i], "SECCOMP_FILTER_FLAG_TSYNC") == 0)
        attr = SCMP_FLTATR_CTL_TSYNC;
      else if (strcmp (flags[i], "SECCOMP_FILTER_FLAG_LOG") == 0)
        attr = SCMP_FLTATR_CTL_LOG;
      else if (strcmp (flags[i], "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
        attr = SCMP_FLTATR_CTL_SSB;
      else
        return cella_error (err, 0, "seccomp flag `%s` is not supported", flags[i]);
      r = seccomp_attr_set (ctx, attr, 1);
      if (r < 0)
        return cella_error (err, -r, "seccomp flag `%s`", flags[i]);
    }
  return 0;
}

/* runc's rule: comparisons on distinct arguments are ANDed in one rule; two on the same
 * argument (which libseccomp cannot AND) make one rule each, ORed. */
static int
add_rule (scmp_filter_ctx ctx, const struct plan_scmp_rule *r, int nr, uint32_t act, cella_error_t *err)
{
  struct scmp_arg_cmp cmp[6];
  bool same_index = false;
  int rc;
  for (size_t i = 0; i < r->nargs; i++)
    for (size_t j = 0; j < i; j++)
      if (r->args[i].index == r->args[j].index)
        same_index = true;
  for (size_t i = 0; i < r->nargs && i < 6; i++)
    cmp[i] = (struct scmp_arg_cmp){ .arg = r->args[i].index,
                                    .op = cmp_ops[r->args[i].op],
                                    .datum_a = r->args[i].value,
                                    .datum_b = r->args[i].value_two };
  if (!same_index)
    rc = seccomp_rule_add_array (ctx, act, nr, (unsigned) (r->nargs < 6 ? r->nargs : 6), cmp);
  else
    {
      rc = 0;
      for (size_t i = 0; i < r->nargs && i < 6 && rc == 0; i++)
        rc = seccomp_rule_add_array (ctx, act, nr, 1, &cmp[i]);
    }
  if (rc < 0)
    return cella_error (err, -rc, "seccomp rule for `%s`", seccomp_syscall_resolve_num_arch (SCMP_ARCH_NATIVE, nr));
  return 0;
}

int
seccomp_load_profile (const struct plan_seccomp *prof, int *notify_fd, cella_error_t *err)
{
  __attribute__ ((cleanup (release))) scmp_filter_ctx ctx = NULL;
  uint32_t def = action (prof->default_action, prof->default_errno);
  bool notify = false;
  int r;
  *notify_fd = -1;
  ctx = seccomp_init (def);
  if (ctx == NULL)
    return cella_error (err, 0, "seccomp: create the filter");
  /* libseccomp sets no_new_privs before loading unless told not to: the config's
   * process.noNewPrivileges decides (the caller sets it, or holds CAP_SYS_ADMIN for the load) */
  r = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (r < 0)
    return cella_error (err, -r, "seccomp: set the filter attributes");
  if (add_arches (ctx, prof->arches, err) < 0 || set_flags (ctx, prof->flags, err) < 0)
    return -1;
  for (size_t i = 0; i < prof->nrules; i++)
    {
      const struct plan_scmp_rule *rule = &prof->rules[i];
      uint32_t act = action (rule->action, rule->errno_ret);
      if (act == def)
        continue;
      notify |= rule->action == SCMPA_NOTIFY;
      for (size_t n = 0; rule->names[n]; n++)
        {
          int nr = seccomp_syscall_resolve_name (rule->names[n]);
          if (nr == __NR_SCMP_ERROR)
            continue;
          if (add_rule (ctx, rule, nr, act, err) < 0)
            return -1;
        }
    }
  r = seccomp_load (ctx);
  if (r < 0)
    return cella_error (err, -r, "load the seccomp profile");
  /* a filter with SCMP_ACT_NOTIFY rules is loaded with a listener: its fd, ours to keep */
  if (notify && (r = seccomp_notify_fd (ctx)) >= 0 && (*notify_fd = fcntl (r, F_DUPFD_CLOEXEC, 3)) < 0)
    return cella_error (err, errno, "seccomp: the notification fd");
  if (notify && *notify_fd < 0)
    return cella_error (err, r < 0 ? -r : 0, "seccomp: the filter has no notification fd");
  return 0;
}
