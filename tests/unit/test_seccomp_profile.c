/* Unit tests for docker's seccomp profile format (`--security-opt seccomp=FILE`, src/oci/config.c
 * oci_seccomp_profile_parse): archMap, name/names, includes/excludes against capabilities,
 * architectures and kernels, the OCI profile it turns into, its round trip through a saved plan,
 * and each error naming the file and the JSON path. */
#define _GNU_SOURCE
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>

#include "util/caps.h"
#include "oci/oci.h"
#include "tap.h"

#define CAPBIT(c) (UINT64_C (1) << CAP_##c)

/* The shape of moby's profiles/seccomp/default.json, cut down to one rule of each kind. */
static const char *const profile
    = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 1,"
      " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\", \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},"
      "              {\"architecture\": \"SCMP_ARCH_S390X\", \"subArchitectures\": [\"SCMP_ARCH_S390\"]},"
      "              {\"architecture\": \"SCMP_ARCH_RISCV64\", \"subArchitectures\": null}],"
      " \"syscalls\": ["
      "  {\"names\": [\"read\", \"write\", \"execve\"], \"action\": \"SCMP_ACT_ALLOW\"},"
      "  {\"names\": [\"ptrace\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"4.8\"}},"
      "  {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\","
      "   \"args\": [{\"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\"}]},"
      "  {\"names\": [\"arch_prctl\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"arches\": [\"amd64\", \"x32\"]}},"
      "  {\"names\": [\"sethostname\", \"mount\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},"
      "  {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ALLOW\","
      "   \"args\": [{\"index\": 0, \"value\": 2114060288, \"op\": \"SCMP_CMP_MASKED_EQ\"}],"
      "   \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"], \"arches\": [\"s390\", \"s390x\"]}},"
      "  {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ALLOW\","
      "   \"args\": [{\"index\": 1, \"value\": 2114060288, \"op\": \"SCMP_CMP_MASKED_EQ\"}],"
      "   \"comment\": \"s390 parameter ordering for clone is different\","
      "   \"includes\": {\"arches\": [\"s390\", \"s390x\"]}, \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},"
      "  {\"name\": \"clone3\", \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38, \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},"
      "  {\"names\": [\"kcmp\"], \"action\": \"SCMP_ACT_ALLOW\","
      "   \"includes\": {\"caps\": [\"CAP_SYS_PTRACE\", \"CAP_SYS_ADMIN\"]}},"
      "  {\"names\": [\"userfaultfd\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"minKernel\": \"5.11\"}}"
      " ]}";

static struct oci_seccomp_host
host (const char *arch, const char *scmp, uint64_t caps, unsigned major, unsigned minor)
{
  struct oci_seccomp_host h = { .caps = caps, .arch = arch, .scmp_arch = scmp, .kernel = { major, minor } };
  return h;
}

static struct plan_seccomp *
parse_ok (const char *text, const struct oci_seccomp_host *h, const char *what)
{
  cella_error_t err = NULL;
  struct plan_seccomp *s = NULL;
  if (oci_seccomp_profile_parse (text, "p.json", h, &s, &err) < 0)
    {
      printf ("#   error: %s\n", err->msg);
      cella_error_free (&err);
    }
  CHECK (s != NULL, "%s: parses", what);
  return s;
}

/* The rules kept, as "name[,name...]" joined by spaces, for one comparison per case. */
static char *
rule_names (const struct plan_seccomp *s)
{
  char *out = xstrdup ("");
  for (size_t i = 0; i < s->nrules; i++)
    {
      char *joined = xstrdup ("");
      for (size_t j = 0; s->rules[i].names[j]; j++)
        {
          char *n = xasprintf ("%s%s%s", joined, j ? "," : "", s->rules[i].names[j]);
          free (joined);
          joined = n;
        }
      char *n = xasprintf ("%s%s%s", out, i ? " " : "", joined);
      free (joined);
      free (out);
      out = n;
    }
  return out;
}

static void
test_amd64_default_caps (void)
{
  struct oci_seccomp_host h = host ("amd64", "SCMP_ARCH_X86_64", caps_default (), 6, 1);
  struct plan_seccomp *s = parse_ok (profile, &h, "amd64, default caps");
  char *names;
  if (s == NULL)
    return;
  names = rule_names (s);
  CHECK_STR (names, "read,write,execve ptrace personality arch_prctl clone clone3",
             "amd64, Linux 6.1, docker's default capabilities: the rules that apply");
  free (names);
  oci_seccomp_free (s);
}

static void
test_conditions (void)
{
  struct {
    struct oci_seccomp_host h;
    const char *want, *what;
  } cases[] = {
    { host ("amd64", "SCMP_ARCH_X86_64", caps_default (), 5, 10),
      "read,write,execve ptrace personality arch_prctl clone clone3 userfaultfd",
      "Linux 5.10: userfaultfd (excluded from 5.11 on) applies" },
    { host ("amd64", "SCMP_ARCH_X86_64", caps_default (), 4, 4),
      "read,write,execve personality arch_prctl clone clone3 userfaultfd",
      "Linux 4.4: ptrace (included from 4.8 on) does not apply" },
    { host ("amd64", "SCMP_ARCH_X86_64", caps_default (), 4, 8),
      "read,write,execve ptrace personality arch_prctl clone clone3 userfaultfd", "Linux 4.8: minKernel is inclusive" },
    { host ("amd64", "SCMP_ARCH_X86_64", caps_default () | CAPBIT (SYS_ADMIN), 6, 1),
      "read,write,execve ptrace personality arch_prctl sethostname,mount",
      "CAP_SYS_ADMIN: its rule in, the clone filters out" },
    { host ("amd64", "SCMP_ARCH_X86_64", caps_default () | CAPBIT (SYS_PTRACE), 6, 1),
      "read,write,execve ptrace personality arch_prctl clone clone3", "includes.caps needs every capability it names" },
    { host ("amd64", "SCMP_ARCH_X86_64", caps_default () | CAPBIT (SYS_PTRACE) | CAPBIT (SYS_ADMIN), 6, 1),
      "read,write,execve ptrace personality arch_prctl sethostname,mount kcmp", "both capabilities: kcmp in" },
    { host ("s390x", "SCMP_ARCH_S390X", caps_default (), 6, 1), "read,write,execve ptrace personality clone clone3",
      "s390x: the s390 clone rule, not amd64's arch_prctl" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      struct plan_seccomp *s = parse_ok (profile, &cases[i].h, cases[i].what);
      char *names;
      if (s == NULL)
        continue;
      names = rule_names (s);
      CHECK_STR (names, cases[i].want, cases[i].what);
      free (names);
      oci_seccomp_free (s);
    }
}

static void
test_fields (void)
{
  struct oci_seccomp_host h = host ("amd64", "SCMP_ARCH_X86_64", caps_default (), 6, 1);
  struct oci_seccomp_host s390 = host ("s390x", "SCMP_ARCH_S390X", caps_default (), 6, 1);
  struct oci_seccomp_host none = host ("mips64", NULL, caps_default (), 6, 1);
  struct plan_seccomp *s = parse_ok (profile, &h, "fields");
  if (s)
    {
      const struct plan_scmp_rule *clone = &s->rules[4], *clone3 = &s->rules[5], *pers = &s->rules[2];
      CHECK (s->default_action == SCMPA_ERRNO && s->default_errno == 1, "defaultAction and defaultErrnoRet");
      CHECK (s->arches && strv_len (s->arches) == 3 && strcmp (s->arches[0], "SCMP_ARCH_X86_64") == 0
                 && strcmp (s->arches[1], "SCMP_ARCH_X86") == 0 && strcmp (s->arches[2], "SCMP_ARCH_X32") == 0,
             "archMap: the native architecture and its sub-architectures");
      CHECK (clone->nargs == 1 && clone->args[0].index == 0 && clone->args[0].value == 2114060288ULL
                 && clone->args[0].op == SCMPO_MASKED_EQ,
             "args of a kept rule");
      CHECK (clone3->action == SCMPA_ERRNO && clone3->errno_ret == 38 && strcmp (clone3->names[0], "clone3") == 0
                 && clone3->names[1] == NULL,
             "`name` becomes names, errnoRet kept");
      CHECK (pers->errno_ret == -1 && pers->args[0].value == 8, "no errnoRet: -1 (EPERM when loaded)");
      oci_seccomp_free (s);
    }
  s = parse_ok (profile, &s390, "s390x archMap");
  if (s)
    {
      CHECK (strv_len (s->arches) == 2 && strcmp (s->arches[0], "SCMP_ARCH_S390X") == 0
                 && strcmp (s->arches[1], "SCMP_ARCH_S390") == 0,
             "archMap on s390x");
      oci_seccomp_free (s);
    }
  s = parse_ok (profile, &none, "no archMap entry for this machine");
  if (s)
    {
      CHECK (s->arches == NULL, "archMap without this machine's entry: libseccomp's native architecture only");
      oci_seccomp_free (s);
    }
}

/* The profile a container gets is saved with its plan (OCI form) and read back the same. */
static void
test_round_trip (void)
{
  struct oci_seccomp_host h = host ("amd64", "SCMP_ARCH_X86_64", caps_default (), 6, 1);
  struct plan *p = plan_new (), *q = NULL;
  cella_error_t err = NULL;
  char *a, *b;
  p->id = xstrdup ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  p->rootfs = xstrdup ("/r");
  p->process.argv = xzalloc (2 * sizeof (char *));
  p->process.argv[0] = xstrdup ("sh");
  p->process.seccomp_profile = parse_ok (profile, &h, "round trip");
  a = plan_to_json (p);
  if (plan_from_json (a, &q, &err) < 0)
    {
      printf ("#   error: %s\n", err->msg);
      cella_error_free (&err);
    }
  b = q ? plan_to_json (q) : NULL;
  CHECK (q && q->process.seccomp_profile && q->process.seccomp_profile->nrules == p->process.seccomp_profile->nrules,
         "the saved plan keeps the profile's rules");
  CHECK_STR (b, a, "plan → JSON → plan → JSON is stable");
  free (a);
  free (b);
  plan_free (p);
  plan_free (q);
}

static const struct {
  const char *text, *msg;
} errors[] = {
  { "[1]", "p.json: must be a JSON object" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\",", "p.json: not valid JSON" },
  { "{}", "p.json: defaultAction: is required" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86_64\"],"
    " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\"}]}",
    "p.json: archMap: give either architectures or archMap, not both" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"archMap\": [{\"subArchitectures\": []}]}",
    "p.json: archMap[0].architecture: is required" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\","
    " \"subArchitectures\": [\"SCMP_ARCH_PDP11\"]}]}",
    "p.json: archMap[0].subArchitectures[0]: unknown architecture `SCMP_ARCH_PDP11`" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"name\": \"read\", \"names\": [\"write\"],"
    " \"action\": \"SCMP_ACT_ERRNO\"}]}",
    "p.json: syscalls[0].name: give either name or names, not both" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"action\": \"SCMP_ACT_ERRNO\"}]}",
    "p.json: syscalls[0].names: must name at least one system call" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\","
    " \"includes\": {\"caps\": [\"CAP_FLY\"]}}]}",
    "p.json: syscalls[0].includes.caps[0]: unknown capability `CAP_FLY`" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\","
    " \"excludes\": {\"minKernel\": \"new\"}}]}",
    "p.json: syscalls[0].excludes.minKernel: `new`: expected a kernel version like 4.8" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\","
    " \"includes\": \"amd64\"}]}",
    "p.json: syscalls[0].includes: must be an object" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\","
    " \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_SOMETIMES\"}]}]}",
    "p.json: syscalls[0].args[0].op: unknown operator `SCMP_CMP_SOMETIMES`" },
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}",
    "p.json: syscalls[0].action: SCMP_ACT_NOTIFY needs a seccomp listener, which only an OCI bundle can name" },
  /* a rule that does not apply here is still checked: its errors do not depend on the host */
  { "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\","
    " \"errnoRet\": 99999, \"includes\": {\"arches\": [\"vax\"]}}]}",
    "p.json: syscalls[0].errnoRet: must be between 0 and 4095" },
};

static void
test_errors (void)
{
  struct oci_seccomp_host h = host ("amd64", "SCMP_ARCH_X86_64", caps_default (), 6, 1);
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    {
      cella_error_t err = NULL;
      struct plan_seccomp *s = NULL;
      int r = oci_seccomp_profile_parse (errors[i].text, "p.json", &h, &s, &err);
      bool ok = r < 0 && s == NULL && err && strncmp (err->msg, errors[i].msg, strlen (errors[i].msg)) == 0;
      CHECK (ok, "error: %s", errors[i].msg);
      if (!ok)
        printf ("#   got: %s\n", err ? err->msg : "(no error)");
      cella_error_free (&err);
      oci_seccomp_free (s);
    }
}

static void
test_native_host (void)
{
  struct oci_seccomp_host h;
  oci_seccomp_host_native (caps_default (), &h);
#if defined(__x86_64__)
  CHECK_STR (h.arch, "amd64", "docker's name of this machine's architecture");
  CHECK_STR (h.scmp_arch, "SCMP_ARCH_X86_64", "and libseccomp's");
#elif defined(__aarch64__)
  CHECK_STR (h.arch, "arm64", "docker's name of this machine's architecture");
#endif
  CHECK (h.kernel[0] >= 3, "the running kernel's version (%u.%u)", h.kernel[0], h.kernel[1]);
}

int
main (void)
{
  test_amd64_default_caps ();
  test_conditions ();
  test_fields ();
  test_round_trip ();
  test_errors ();
  test_native_host ();
  return tap_done ();
}
