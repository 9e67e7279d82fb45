/* Parsers for option values given by the user: volumes, tmpfs, env files, --mount. */
#define _GNU_SOURCE
#include "build.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* A target that names the container's root itself ("/", "//", "/.", "/a/.."): a mount there
 * would hide the whole root, and the setup used to skip it without a word. */
static bool
target_is_root (const char *t)
{
  int depth = 0;
  for (const char *c = t; *c;)
    {
      size_t n = strcspn (c, "/");
      if (n == 2 && strncmp (c, "..", 2) == 0)
        depth = depth > 0 ? depth - 1 : 0;
      else if (n > 0 && !(n == 1 && *c == '.'))
        depth++;
      c += n;
      while (*c == '/')
        c++;
    }
  return depth == 0;
}

#define ROOT_TARGET_HINT "the container's root `/` cannot be a mount target (the root comes from IMAGE or ROOTFS-DIR)"

int
parse_volume (const char *spec, char **src, char **dst, unsigned *flags, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (spec);
  char *parts[4] = { NULL };
  size_t n = 0;
  char *save = NULL;

  for (char *t = strtok_r (copy, ":", &save); t; t = strtok_r (NULL, ":", &save))
    {
      if (n == 3)
        return cella_error (err, 0, "volume `%s`: too many `:` (expected HOST:CONTAINER[:ro|rw])", spec);
      parts[n++] = t;
    }
  if (n < 2)
    return cella_error (err, 0, "volume `%s`: expected HOST:CONTAINER[:ro|rw]", spec);
  if (parts[0][0] != '/')
    return cella_error (
        err, 0,
        "volume `%s`: source `%s` must be an absolute host path (volume names are resolved by the engine first)", spec,
        parts[0]);
  if (parts[1][0] != '/')
    return cella_error (err, 0, "volume `%s`: target `%s` must be an absolute path in the container", spec, parts[1]);
  if (target_is_root (parts[1]))
    return cella_error (err, 0, "volume `%s`: " ROOT_TARGET_HINT, spec);
  *flags = BIND_WRITABLE | BIND_RECURSIVE;
  if (n == 3)
    {
      cleanup_free char *opts = xstrdup (parts[2]);
      char *s2 = NULL;
      for (char *o = strtok_r (opts, ",", &s2); o; o = strtok_r (NULL, ",", &s2))
        {
          if (strcmp (o, "ro") == 0)
            *flags &= ~BIND_WRITABLE;
          else if (strcmp (o, "rw") == 0)
            *flags |= BIND_WRITABLE;
          else if (strcmp (o, "z") == 0 || strcmp (o, "Z") == 0 || strcmp (o, "rbind") == 0)
            ; /* accepted like docker; SELinux labels do not apply here */
          else if (strcmp (o, "bind") == 0 || strcmp (o, "norbind") == 0)
            *flags &= ~BIND_RECURSIVE;
          else
            return cella_error (err, 0, "volume `%s`: unknown option `%s` (expected ro or rw)", spec, o);
        }
    }
  *src = xstrdup (parts[0]);
  *dst = xstrdup (parts[1]);
  return 0;
}

int
parse_tmpfs (const char *spec, char **dst, long long *size, mode_t *mode, unsigned *flags, cella_error_t *err)
{
  const char *colon = strchr (spec, ':');
  cleanup_free char *target = colon ? strndup (spec, colon - spec) : xstrdup (spec);
  *size = 0;
  *mode = 01777;
  /* docker's defaults for --tmpfs */
  *flags = REMOUNT_NOSUID | REMOUNT_NODEV | REMOUNT_NOEXEC;
  if (target[0] != '/')
    return cella_error (err, 0, "tmpfs `%s`: target `%s` must be an absolute path in the container", spec, target);
  if (target_is_root (target))
    return cella_error (
        err, 0, "tmpfs `%s`: " ROOT_TARGET_HINT " (--read-only with --tmpfs for the places that must be writable)",
        spec);
  if (colon)
    {
      cleanup_free char *opts = xstrdup (colon + 1);
      char *save = NULL;
      for (char *o = strtok_r (opts, ",", &save); o; o = strtok_r (NULL, ",", &save))
        {
          if (has_prefix (o, "size="))
            {
              *size = parse_size (o + 5);
              if (*size <= 0)
                return cella_error (err, 0,
                                    "tmpfs `%s`: bad size `%s` (expected a number with an optional k, m or g suffix)",
                                    spec, o + 5);
            }
          else if (has_prefix (o, "mode="))
            {
              char *end;
              unsigned long m = strtoul (o + 5, &end, 8);
              if (o[5] == '\0' || *end || m > 07777)
                return cella_error (err, 0, "tmpfs `%s`: bad mode `%s` (expected octal, e.g. 1777)", spec, o + 5);
              *mode = m;
            }
          else if (strcmp (o, "ro") == 0)
            *flags |= REMOUNT_RDONLY;
          else if (strcmp (o, "rw") == 0)
            *flags &= ~REMOUNT_RDONLY;
          else if (strcmp (o, "exec") == 0)
            *flags &= ~REMOUNT_NOEXEC;
          else if (strcmp (o, "noexec") == 0)
            *flags |= REMOUNT_NOEXEC;
          else if (strcmp (o, "suid") == 0)
            *flags &= ~REMOUNT_NOSUID;
          else if (strcmp (o, "nosuid") == 0)
            *flags |= REMOUNT_NOSUID;
          else if (strcmp (o, "dev") == 0)
            *flags &= ~REMOUNT_NODEV;
          else if (strcmp (o, "nodev") == 0)
            *flags |= REMOUNT_NODEV;
          else
            return cella_error (
                err, 0, "tmpfs `%s`: unknown option `%s` (expected size=, mode=, ro, rw, [no]exec, [no]suid, [no]dev)",
                spec, o);
        }
    }
  *dst = steal_pointer (&target);
  return 0;
}

const char *
env_get (char *const *env, const char *key)
{
  size_t kl = strlen (key);
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp (env[i], key, kl) == 0 && env[i][kl] == '=')
      return env[i] + kl + 1;
  return NULL;
}

void
env_set (char ***env, const char *kv)
{
  const char *eq = strchr (kv, '=');
  size_t kl = eq ? (size_t) (eq - kv) : strlen (kv);
  for (size_t i = 0; *env && (*env)[i]; i++)
    if (strncmp ((*env)[i], kv, kl) == 0 && (*env)[i][kl] == '=')
      {
        free ((*env)[i]);
        (*env)[i] = xstrdup (kv);
        return;
      }
  strv_push (env, kv);
}

/* One -e value or env-file line: KEY=VALUE sets; a bare KEY takes the host's value (docker). */
int
parse_env_line (const char *line, char ***env, cella_error_t *err)
{
  const char *eq = strchr (line, '=');
  if (line[0] == '\0' || eq == line)
    return cella_error (err, 0, "environment variable `%s`: expected KEY=VALUE", line);
  for (const char *c = line; c < (eq ? eq : line + strlen (line)); c++)
    if (*c == ' ' || *c == '\t')
      return cella_error (err, 0, "environment variable `%s`: the name contains whitespace", line);
  if (eq)
    env_set (env, line);
  else
    {
      const char *v = getenv (line);
      if (v)
        {
          cleanup_free char *kv = xasprintf ("%s=%s", line, v);
          env_set (env, kv);
        }
    }
  return 0;
}

int
parse_env_file (const char *path, char ***env, cella_error_t *err)
{
  cleanup_free char *buf = NULL;
  unsigned lineno = 0;
  if (read_file (path, &buf, NULL, err) < 0)
    return cella_error_wrap (err, "env file");
  /* strtok_r would merge empty lines and lose their numbers; walk by hand. */
  for (char *line = buf, *next; line && *line; line = next)
    {
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      lineno++;
      if (line[0] && line[strlen (line) - 1] == '\r')
        line[strlen (line) - 1] = '\0';
      while (*line == ' ' || *line == '\t')
        line++;
      if (*line == '\0' || *line == '#')
        continue;
      if (parse_env_line (line, env, err) < 0)
        return cella_error_wrap (err, "env file `%s` line %u", path, lineno);
    }
  return 0;
}

/* A key given twice: the last value wins, as in docker. */
static void
replace_str (char **slot, const char *v)
{
  free (*slot);
  *slot = xstrdup (v);
}

/* A --mount flag's value, as docker reads it (Go's strconv.ParseBool): 1 when true, 0 when
 * false, -1 for anything else. A key given without a value is true. */
static int
mount_bool (const char *v)
{
  static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
  static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
  if (v == NULL)
    return 1;
  if (str_index (yes, sizeof yes / sizeof yes[0], v) >= 0)
    return 1;
  if (str_index (no, sizeof no / sizeof no[0], v) >= 0)
    return 0;
  return -1;
}

/* --mount type=bind|tmpfs|overlay,key=value,... (docker's syntax, plus overlay). */
int
parse_mount (const char *spec, struct plan *p, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (spec);
  cleanup_free char *type = NULL, *src = NULL, *dst = NULL, *upper = NULL, *work = NULL;
  cleanup_strv char **lower = NULL;
  bool ro = false, optional = false;
  long long size = 0;
  mode_t mode = 01777;
  char *save = NULL;
  struct op *op;

  for (char *kv = strtok_r (copy, ",", &save); kv; kv = strtok_r (NULL, ",", &save))
    {
      char *eq = strchr (kv, '=');
      char *v = eq ? eq + 1 : NULL;
      if (eq)
        *eq = '\0';
      if (strcmp (kv, "type") == 0 && v)
        replace_str (&type, v);
      else if ((strcmp (kv, "source") == 0 || strcmp (kv, "src") == 0) && v)
        replace_str (&src, v);
      else if ((strcmp (kv, "target") == 0 || strcmp (kv, "dst") == 0 || strcmp (kv, "destination") == 0) && v)
        replace_str (&dst, v);
      else if (strcmp (kv, "readonly") == 0 || strcmp (kv, "ro") == 0 || strcmp (kv, "optional") == 0)
        {
          int b = mount_bool (v);
          if (b < 0)
            return cella_error (err, 0, "mount `%s`: `%s=%s`: expected true or false (1, t, TRUE, 0, f, FALSE ...)",
                                spec, kv, v);
          if (strcmp (kv, "optional") == 0)
            optional = b;
          else
            ro = b;
        }
      else if (strcmp (kv, "tmpfs-size") == 0 && v)
        {
          if ((size = parse_size (v)) <= 0)
            return cella_error (err, 0, "mount `%s`: bad tmpfs-size `%s`", spec, v);
        }
      else if (strcmp (kv, "tmpfs-mode") == 0 && v)
        {
          char *end;
          mode = strtoul (v, &end, 8);
          if (*v == '\0' || *end || mode > 07777)
            return cella_error (err, 0, "mount `%s`: bad tmpfs-mode `%s`", spec, v);
        }
      else if (strcmp (kv, "lower") == 0 && v)
        {
          cleanup_free char *l = xstrdup (v);
          char *s2 = NULL;
          for (char *x = strtok_r (l, ":", &s2); x; x = strtok_r (NULL, ":", &s2))
            strv_push (&lower, x);
        }
      else if (strcmp (kv, "upper") == 0 && v)
        replace_str (&upper, v);
      else if (strcmp (kv, "work") == 0 && v)
        replace_str (&work, v);
      else
        return cella_error (err, 0, "mount `%s`: unknown key `%s`", spec, kv);
    }
  if (type == NULL || dst == NULL)
    return cella_error (err, 0, "mount `%s`: type= and target= are required", spec);
  if (dst[0] != '/')
    return cella_error (err, 0, "mount `%s`: target `%s` must be an absolute path in the container", spec, dst);
  if (target_is_root (dst))
    return cella_error (err, 0, "mount `%s`: " ROOT_TARGET_HINT, spec);
  if (strcmp (type, "bind") == 0)
    {
      if (src == NULL || src[0] != '/')
        return cella_error (err, 0, "mount `%s`: source must be an absolute host path", spec);
      plan_add_bind (p, src, dst, BIND_RECURSIVE | (ro ? 0 : BIND_WRITABLE) | (optional ? BIND_OPTIONAL : 0));
    }
  else if (strcmp (type, "tmpfs") == 0)
    {
      op = plan_add_tmpfs (p, dst, size, mode);
      op->flags = REMOUNT_NOSUID | REMOUNT_NODEV | (ro ? REMOUNT_RDONLY : 0);
    }
  else if (strcmp (type, "overlay") == 0)
    {
      if (lower == NULL)
        return cella_error (err, 0, "mount `%s`: an overlay needs lower=DIR[:DIR...]", spec);
      if ((upper == NULL) != (work == NULL))
        return cella_error (err, 0, "mount `%s`: give both upper= and work=, or neither", spec);
      op = plan_add_op (p, OP_OVERLAY, dst);
      op->lower = steal_pointer (&lower);
      if (upper)
        {
          op->ov_mode = OVERLAY_PERSISTENT;
          op->upper = steal_pointer (&upper);
          op->work = steal_pointer (&work);
        }
      else
        op->ov_mode = ro ? OVERLAY_READONLY : OVERLAY_EPHEMERAL;
    }
  else
    return cella_error (err, 0, "mount `%s`: unknown type `%s` (expected bind, volume, tmpfs or overlay)", spec, type);
  return 0;
}

static long long
port_number (const char *s, size_t n)
{
  char buf[8];
  if (n == 0 || n >= sizeof buf)
    return -1;
  memcpy (buf, s, n);
  buf[n] = '\0';
  return parse_uint (buf, 65535);
}

int
parse_publish (const char *spec, char **out, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (spec);
  char *proto = strchr (copy, '/'), *last, *mid;
  const char *ip = "";
  long long host, ctr;
  struct in_addr in;
  if (proto)
    {
      *proto++ = '\0';
      if (strcmp (proto, "tcp") != 0 && strcmp (proto, "udp") != 0)
        return cella_error (err, 0, "-p `%s`: the protocol must be tcp or udp", spec);
    }
  last = strrchr (copy, ':');
  if (last == NULL)
    {
      /* -p CTR: a random host port (chosen when the container starts) */
      ctr = parse_uint (copy, 65535);
      if (ctr <= 0)
        return cella_error (err, 0, "-p `%s`: ports must be numbers from 1 to 65535", spec);
      *out = xasprintf (":0:%lld/%s", ctr, proto ? proto : "tcp");
      return 0;
    }
  ctr = parse_uint (last + 1, 65535);
  *last = '\0';
  mid = strrchr (copy, ':');
  if (mid)
    {
      *mid = '\0';
      ip = copy;
      host = port_number (mid + 1, strlen (mid + 1));
    }
  else
    host = port_number (copy, strlen (copy));
  if (host <= 0 || ctr <= 0)
    return cella_error (err, 0, "-p `%s`: ports must be numbers from 1 to 65535", spec);
  /* the network code reads the address back when the container starts (net_port_parse): one it
   * cannot read is refused here, naming the option */
  if (*ip && inet_pton (AF_INET, ip, &in) != 1)
    return cella_error (err, 0, "-p `%s`: `%s` is not an IPv4 address", spec, ip);
  *out = xasprintf ("%s:%lld:%lld/%s", ip, host, ctr, proto ? proto : "tcp");
  return 0;
}
/* r, w and m, each at most once, at least one */
static bool
device_perms_valid (const char *s)
{
  if (*s == '\0' || strlen (s) > 3 || strspn (s, "rwm") != strlen (s))
    return false;
  for (const char *c = s; *c; c++)
    if (strchr (c + 1, *c))
      return false;
  return true;
}

int
parse_device (const char *spec, struct plan_device *dev, struct plan_dev_rule *rule, cella_error_t *err)
{
  cleanup_free char *copy = xstrdup (spec);
  char *parts[3] = { NULL }, *rest = copy;
  const char *host, *ctr, *perms = "rwm";
  size_t n = 0;
  struct stat st;
  memset (dev, 0, sizeof *dev);
  memset (rule, 0, sizeof *rule);
  while (rest)
    {
      if (n == 3)
        return cella_error (err, 0, "--device `%s`: too many `:` (expected HOST[:CONTAINER][:PERMISSIONS])", spec);
      parts[n++] = strsep (&rest, ":");
    }
  host = parts[0];
  ctr = parts[0];
  if (n == 2 && device_perms_valid (parts[1]))
    perms = parts[1];
  else if (n >= 2)
    ctr = parts[1];
  if (n == 3)
    perms = parts[2];
  if (!path_is_clean_abs (host))
    return cella_error (err, 0, "--device `%s`: `%s` must be an absolute host path", spec, host);
  if (!path_is_clean_abs (ctr) || strncmp (ctr, "/dev/", 5) != 0 || ctr[5] == '\0')
    return cella_error (err, 0, "--device `%s`: the container path `%s` must be an absolute path under /dev/", spec,
                        ctr);
  if (!device_perms_valid (perms))
    return cella_error (err, 0, "--device `%s`: permissions `%s` must be made of r, w and m (like rw or rwm)", spec,
                        perms);
  if (stat (host, &st) < 0)
    return cella_error (err, errno, "--device `%s`: `%s` on the host", spec, host);
  if (!S_ISCHR (st.st_mode) && !S_ISBLK (st.st_mode))
    return cella_error (err, 0, "--device `%s`: `%s` is not a character or block device", spec, host);
  dev->path = xstrdup (ctr);
  dev->host_path = xstrdup (host);
  dev->type = S_ISBLK (st.st_mode) ? 'b' : 'c';
  dev->major = major (st.st_rdev);
  dev->minor = minor (st.st_rdev);
  dev->mode = st.st_mode & 07777;
  dev->uid = st.st_uid;
  dev->gid = st.st_gid;
  rule->allow = true;
  rule->type = dev->type;
  rule->major = dev->major;
  rule->minor = dev->minor;
  snprintf (rule->access, sizeof rule->access, "%s", perms);
  return 0;
}
