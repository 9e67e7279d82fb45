/* Option values a user (or a script fed by others: compose files, CI configs) passes to
 * `cella run` and friends: -v, --tmpfs, --mount, -p (then read back from the plan as the network
 * code does), -e, --add-host, --restart, --subnet and image references. An input is one value
 * prefixed by the option and a space ("-v /src:/dst:ro"); without a known prefix the whole input
 * goes to every parser. Each accepted value must also satisfy what the next stage relies on. */
#include "fuzz.h"

#include "engine/container.h"
#include "image/ref.h"
#include "net/net.h"
#include "plan/build.h"
#include "plan/plan.h"

static void
volume (const char *v)
{
  char *src = NULL, *dst = NULL;
  unsigned flags;
  cella_error_t err = NULL;
  if (parse_volume (v, &src, &dst, &flags, &err) == 0)
    FUZZ_CHECK (src[0] == '/' && dst[0] == '/', "a volume with a relative path: %s", v);
  free (src);
  free (dst);
  cella_error_free (&err);
}

static void
tmpfs (const char *v)
{
  char *dst = NULL;
  long long size;
  mode_t mode;
  unsigned flags;
  cella_error_t err = NULL;
  if (parse_tmpfs (v, &dst, &size, &mode, &flags, &err) == 0)
    FUZZ_CHECK (dst[0] == '/' && size >= 0 && mode <= 07777, "a tmpfs accepted with a bad value: %s", v);
  free (dst);
  cella_error_free (&err);
}

static void
mount (const char *v)
{
  struct plan *p = plan_new ();
  cella_error_t err = NULL;
  if (parse_mount (v, p, &err) == 0)
    {
      char *text;
      FUZZ_CHECK (p->nops == 1 && p->ops[0].target[0] == '/', "--mount made %zu ops", p->nops);
      plan_validate (p, &err);
      text = plan_to_json (p);
      free (text);
    }
  cella_error_free (&err);
  plan_free (p);
}

static void
publish (const char *v)
{
  char *out = NULL;
  cella_error_t err = NULL;
  struct net_port pt;
  if (parse_publish (v, &out, &err) == 0)
    {
      /* the plan keeps the canonical form; the network code reads it back when the container starts */
      FUZZ_CHECK (net_port_parse (out, &pt, &err) == 0, "-p `%s` became `%s`, which does not read back: %s", v, out,
                  err ? err->msg : "?");
      FUZZ_CHECK (pt.ctr > 0 && pt.ctr <= 65535 && pt.host <= 65535, "-p `%s`: ports out of range", v);
    }
  cella_error_free (&err);
  free (out);
  if (net_port_parse (v, &pt, &err) == 0)
    FUZZ_CHECK (memchr (pt.ip, '\0', sizeof pt.ip) && memchr (pt.proto, '\0', sizeof pt.proto), "unterminated");
  cella_error_free (&err);
}

static void
env (const char *v)
{
  char **e = NULL;
  cella_error_t err = NULL;
  parse_env_line (v, &e, &err);
  cella_error_free (&err);
  strv_free (e);
}

static void
add_host (const char *v)
{
  cella_error_t err = NULL;
  net_add_host_check (v, &err);
  cella_error_free (&err);
}

static void
restart (const char *v)
{
  cella_error_t err = NULL;
  enum restart_policy pol;
  int max;
  if (restart_policy_parse (v, &pol, &max, &err) == 0)
    FUZZ_CHECK ((unsigned) pol <= RESTART_UNLESS_STOPPED && max >= 0 && (max == 0 || pol == RESTART_ON_FAILURE),
                "--restart `%s`: policy %d, max %d", v, (int) pol, max);
  cella_error_free (&err);
}

static void
subnet (const char *v)
{
  cella_error_t err = NULL;
  uint32_t addr;
  int prefix;
  if (net_cidr_parse (v, &addr, &prefix, &err) == 0)
    FUZZ_CHECK (prefix >= 8 && prefix <= 30 && (addr & (0xffffffffu >> prefix)) == 0, "--subnet `%s`", v);
  cella_error_free (&err);
}

static void
image (const char *v)
{
  struct image_ref r = { 0 }, back = { 0 };
  cella_error_t err = NULL;
  if (image_ref_parse (v, &r, &err) == 0)
    {
      char *once = image_ref_string (&r), *twice;
      FUZZ_CHECK (image_ref_parse (once, &back, &err) == 0, "`%s` became `%s`, which does not parse: %s", v, once,
                  err ? err->msg : "?");
      twice = image_ref_string (&back);
      FUZZ_CHECK (strcmp (once, twice) == 0, "`%s` → `%s` → `%s`", v, once, twice);
      free (once);
      free (twice);
      image_ref_clear (&back);
    }
  image_ref_clear (&r);
  cella_error_free (&err);
}

static const struct {
  const char *option;
  void (*parse) (const char *value);
} parsers[] = {
  { "-v", volume },           { "--tmpfs", tmpfs },     { "--mount", mount },   { "-p", publish },  { "-e", env },
  { "--add-host", add_host }, { "--restart", restart }, { "--subnet", subnet }, { "image", image },
};

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_cstr (data, size), *sp = strchr (text, ' ');
  size_t n = sizeof parsers / sizeof parsers[0];
  if (sp)
    for (size_t i = 0; i < n; i++)
      if ((size_t) (sp - text) == strlen (parsers[i].option) && strncmp (text, parsers[i].option, sp - text) == 0)
        {
          parsers[i].parse (sp + 1);
          free (text);
          return 0;
        }
  for (size_t i = 0; i < n; i++)
    parsers[i].parse (text);
  free (text);
  return 0;
}
