/* The guest config (struct vm_guest_config) as text, written by the host and
 * read by the guest init. Built into libcella and into the static guest init
 * (guest/), so it uses only libc and cella_error (the guest links a small shim
 * for it).
 *
 * Format: one `key value...` per line, fields separated by one space, every
 * field percent-escaped (bytes <= 0x20, '%' and >= 0x7f become %XX), so strings
 * with spaces, newlines or '=' survive. First line `cella-vm-config 1`, last
 * line `end` (a missing `end` means the text was cut short). */
#define _GNU_SOURCE
#include "guest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#define GUESTCFG_MAGIC "cella-vm-config 1"

/* A growing buffer that aborts on OOM (the config is small and both sides treat
 * OOM as fatal). */
struct sbuf {
  char *p;
  size_t len, cap;
};

static void *
gc_alloc (void *p, size_t n)
{
  void *r = realloc (p, n ? n : 1);
  if (r == NULL)
    abort ();
  return r;
}

static void
sb_add (struct sbuf *b, const char *s, size_t n)
{
  if (b->len + n + 1 > b->cap)
    {
      b->cap = (b->len + n + 1) * 2;
      b->p = gc_alloc (b->p, b->cap);
    }
  memcpy (b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void
sb_str (struct sbuf *b, const char *s)
{
  sb_add (b, s, strlen (s));
}

static void
sb_field (struct sbuf *b, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  sb_add (b, " ", 1);
  for (const unsigned char *u = (const unsigned char *) s; *u; u++)
    {
      if (*u <= 0x20 || *u == '%' || *u >= 0x7f)
        {
          char e[3] = { '%', hex[*u >> 4], hex[*u & 15] };
          sb_add (b, e, 3);
        }
      else
        sb_add (b, (const char *) u, 1);
    }
}

static void
sb_key_str (struct sbuf *b, const char *key, const char *s)
{
  if (s == NULL)
    return;
  sb_str (b, key);
  sb_field (b, s);
  sb_add (b, "\n", 1);
}

static void
sb_key_num (struct sbuf *b, const char *key, unsigned long long n)
{
  char num[32];
  snprintf (num, sizeof num, "%llu", n);
  sb_str (b, key);
  sb_field (b, num);
  sb_add (b, "\n", 1);
}

char *
guestcfg_format (const struct vm_guest_config *c, size_t *len)
{
  struct sbuf b = { 0 };
  sb_str (&b, GUESTCFG_MAGIC "\n");
  for (size_t i = 0; c->argv && c->argv[i]; i++)
    sb_key_str (&b, "argv", c->argv[i]);
  for (size_t i = 0; c->env && c->env[i]; i++)
    sb_key_str (&b, "env", c->env[i]);
  sb_key_str (&b, "cwd", c->cwd);
  sb_key_num (&b, "uid", c->uid);
  sb_key_num (&b, "gid", c->gid);
  for (size_t i = 0; i < c->ngroups; i++)
    sb_key_num (&b, "group", c->groups[i]);
  sb_key_str (&b, "hostname", c->hostname);
  sb_key_str (&b, "user", c->user);
  if (c->root_dev)
    {
      sb_str (&b, "root");
      sb_field (&b, c->root_dev);
      sb_field (&b, c->root_fstype ? c->root_fstype : "ext4");
      sb_field (&b, c->root_ro ? "ro" : "rw");
      sb_add (&b, "\n", 1);
    }
  for (size_t i = 0; i < c->nmounts; i++)
    {
      sb_str (&b, "mount");
      sb_field (&b, c->mounts[i].tag);
      sb_field (&b, c->mounts[i].target);
      sb_field (&b, c->mounts[i].ro ? "ro" : "rw");
      sb_add (&b, "\n", 1);
    }
  sb_key_num (&b, "tty", c->tty ? 1 : 0);
  for (size_t i = 0; i < c->ntmpfs; i++)
    {
      char num[64];
      sb_str (&b, "tmpfs");
      sb_field (&b, c->tmpfs[i].target);
      snprintf (num, sizeof num, "%llu", c->tmpfs[i].size);
      sb_field (&b, num);
      snprintf (num, sizeof num, "%o", c->tmpfs[i].mode);
      sb_field (&b, num);
      snprintf (num, sizeof num, "%lu", c->tmpfs[i].flags);
      sb_field (&b, num);
      sb_add (&b, "\n", 1);
    }
  if (c->caps_set)
    {
      char num[32];
      snprintf (num, sizeof num, "%llx", c->caps);
      sb_key_str (&b, "caps", num);
    }
  if (c->no_new_privs)
    sb_key_num (&b, "nnp", 1);
  if (c->export_root)
    sb_key_num (&b, "export", 1);
  if (c->net_addr)
    {
      sb_str (&b, "net");
      sb_field (&b, c->net_ifname ? c->net_ifname : "eth0");
      sb_field (&b, c->net_addr);
      sb_field (&b, c->net_gateway ? c->net_gateway : "-");
      sb_add (&b, "\n", 1);
    }
  for (size_t i = 0; c->nameservers && c->nameservers[i]; i++)
    sb_key_str (&b, "nameserver", c->nameservers[i]);
  sb_str (&b, "end\n");
  if (len)
    *len = b.len;
  return b.p;
}

void
guestcfg_free (struct vm_guest_config *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; c->argv && c->argv[i]; i++)
    free (c->argv[i]);
  for (size_t i = 0; c->env && c->env[i]; i++)
    free (c->env[i]);
  free (c->argv);
  free (c->env);
  free (c->cwd);
  free (c->groups);
  free (c->hostname);
  free (c->user);
  free (c->root_dev);
  free (c->root_fstype);
  for (size_t i = 0; i < c->nmounts; i++)
    {
      free (c->mounts[i].tag);
      free (c->mounts[i].target);
    }
  free (c->mounts);
  for (size_t i = 0; i < c->ntmpfs; i++)
    free (c->tmpfs[i].target);
  free (c->tmpfs);
  free (c->net_ifname);
  free (c->net_addr);
  free (c->net_gateway);
  for (size_t i = 0; c->nameservers && c->nameservers[i]; i++)
    free (c->nameservers[i]);
  free (c->nameservers);
  memset (c, 0, sizeof *c);
}

/* Parser state: the line being read, for messages. */
struct pstate {
  struct vm_guest_config *c;
  size_t nargv, nenv, nns, ns_cap;
  size_t argv_cap, env_cap, groups_cap, mounts_cap, tmpfs_cap; /* grown by doubling: 64k entries stay linear */
  unsigned lineno;
  cella_error_t *err;
};

int
guestcfg_hexval (char ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Decode one field [s, s+n) into a new string; NULL with *err set on a bad
 * escape. */
static char *
unescape (struct pstate *st, const char *key, const char *s, size_t n)
{
  char *out = gc_alloc (NULL, n + 1), *o = out;
  for (size_t i = 0; i < n; i++)
    {
      if (s[i] != '%')
        {
          *o++ = s[i];
          continue;
        }
      int hi = i + 2 < n ? guestcfg_hexval (s[i + 1]) : -1;
      int lo = i + 2 < n ? guestcfg_hexval (s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        {
          free (out);
          cella_error (st->err, 0, "guest config line %u: `%s`: bad %%-escape", st->lineno, key);
          return NULL;
        }
      if (hi == 0 && lo == 0)
        {
          free (out);
          cella_error (st->err, 0, "guest config line %u: `%s`: NUL byte (%%00)", st->lineno, key);
          return NULL;
        }
      *o++ = (char) (hi << 4 | lo);
      i += 2;
    }
  *o = '\0';
  return out;
}

/* Split a line's value part into exactly `want` decoded fields. */
static int
split_fields (struct pstate *st, const char *key, const char *s, size_t n, char **f, size_t want)
{
  size_t seps = 0, got = 0;
  const char *p = s, *end = s + n;
  for (size_t i = 0; i < n; i++)
    seps += s[i] == ' ';
  if (seps != want - 1)
    return cella_error (st->err, 0, "guest config line %u: `%s` takes %zu value%s", st->lineno, key, want,
                        want == 1 ? "" : "s");
  for (got = 0; got < want; got++)
    {
      const char *sp = memchr (p, ' ', (size_t) (end - p));
      const char *fe = sp ? sp : end;
      f[got] = unescape (st, key, p, (size_t) (fe - p));
      if (f[got] == NULL)
        {
          for (size_t i = 0; i < got; i++)
            free (f[i]);
          return -1;
        }
      p = fe + 1;
    }
  return 0;
}

static int
parse_id (struct pstate *st, const char *key, const char *v, unsigned long *out)
{
  char *end;
  unsigned long n;
  if (*v < '0' || *v > '9')
    return cella_error (st->err, 0, "guest config line %u: `%s`: not a number: `%s`", st->lineno, key, v);
  errno = 0;
  n = strtoul (v, &end, 10);
  /* (uid_t) -1 means "no change" to setuid & co., so it is refused. */
  if (errno || *end || n >= UINT32_MAX)
    return cella_error (st->err, 0, "guest config line %u: `%s`: not a valid id: `%s`", st->lineno, key, v);
  *out = n;
  return 0;
}

static bool
bad_path (const char *p)
{
  if (p[0] != '/')
    return true;
  for (const char *s = p; (s = strstr (s, "..")) != NULL; s += 2)
    if (s[-1] == '/' && (s[2] == '/' || s[2] == '\0'))
      return true;
  return false;
}

static int
set_once (struct pstate *st, const char *key, char **slot, char *v)
{
  if (*slot)
    {
      free (v);
      return cella_error (st->err, 0, "guest config line %u: duplicate `%s`", st->lineno, key);
    }
  *slot = v;
  return 0;
}

static void *
grow (void *p, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap)
    return p;
  *cap = *cap ? *cap * 2 : 16;
  if (*cap < need)
    *cap = need;
  return gc_alloc (p, *cap * elem);
}

static int
add_string (struct pstate *st, const char *key, char ***v, size_t *n, size_t *cap, char *s)
{
  if (*n >= GUESTCFG_MAX_STRINGS)
    {
      free (s);
      return cella_error (st->err, 0, "guest config line %u: more than %d `%s` entries", st->lineno,
                          GUESTCFG_MAX_STRINGS, key);
    }
  *v = grow (*v, cap, *n + 2, sizeof **v);
  (*v)[(*n)++] = s;
  (*v)[*n] = NULL;
  return 0;
}

/* `net IFNAME ADDR/PREFIX GATEWAY|-`: IPv4 only (QEMU user-mode networking). */
static int
parse_net (struct pstate *st, const char *val, size_t vlen, unsigned *seen)
{
  struct vm_guest_config *c = st->c;
  char *f[3] = { NULL, NULL, NULL };
  const char *why = NULL;
  struct in_addr a;
  if (split_fields (st, "net", val, vlen, f, 3) < 0)
    return -1;
  char *slash = strchr (f[1], '/');
  if (*seen & 16)
    why = "duplicate `net`";
  else if (f[0][0] == '\0' || strlen (f[0]) > GUESTCFG_MAX_IFNAME || strchr (f[0], '/') || strcmp (f[0], ".") == 0
           || strcmp (f[0], "..") == 0)
    why = "not an interface name";
  else if (slash == NULL)
    why = "address must be ADDR/PREFIX";
  else
    {
      char *end;
      *slash = '\0';
      errno = 0;
      long prefix = strtol (slash + 1, &end, 10);
      if (inet_pton (AF_INET, f[1], &a) != 1)
        why = "not an IPv4 address";
      else if (slash[1] < '0' || slash[1] > '9' || *end || errno || prefix < 0 || prefix > 32)
        why = "prefix length must be 0 to 32";
      *slash = '/';
    }
  if (why == NULL && strcmp (f[2], "-") != 0 && inet_pton (AF_INET, f[2], &a) != 1)
    why = "gateway must be an IPv4 address or `-`";
  if (why)
    {
      for (int i = 0; i < 3; i++)
        free (f[i]);
      return cella_error (st->err, 0, "guest config line %u: `net`: %s", st->lineno, why);
    }
  *seen |= 16;
  c->net_ifname = f[0];
  c->net_addr = f[1];
  if (strcmp (f[2], "-") == 0)
    free (f[2]);
  else
    c->net_gateway = f[2];
  return 0;
}

static int
parse_line (struct pstate *st, const char *key, const char *val, size_t vlen, unsigned *seen)
{
  struct vm_guest_config *c = st->c;
  char *f[3] = { NULL, NULL, NULL };
  unsigned long id = 0;
  enum { SEEN_UID = 1, SEEN_GID = 2, SEEN_TTY = 4, SEEN_ROOT = 8 };

  if (strcmp (key, "argv") == 0 || strcmp (key, "env") == 0)
    {
      bool argv = key[0] == 'a';
      if (split_fields (st, key, val, vlen, f, 1) < 0)
        return -1;
      if (!argv && (f[0][0] == '=' || strchr (f[0], '=') == NULL))
        {
          free (f[0]);
          return cella_error (st->err, 0, "guest config line %u: `env` is not KEY=VALUE", st->lineno);
        }
      return argv ? add_string (st, key, &c->argv, &st->nargv, &st->argv_cap, f[0])
                  : add_string (st, key, &c->env, &st->nenv, &st->env_cap, f[0]);
    }
  if (strcmp (key, "user") == 0)
    {
      if (split_fields (st, key, val, vlen, f, 1) < 0)
        return -1;
      if (f[0][0] == '\0' || strlen (f[0]) > 256)
        {
          free (f[0]);
          return cella_error (st->err, 0, "guest config line %u: `user` must be 1 to 256 bytes", st->lineno);
        }
      return set_once (st, key, &c->user, f[0]);
    }
  if (strcmp (key, "cwd") == 0 || strcmp (key, "hostname") == 0)
    {
      bool cwd = key[0] == 'c';
      if (split_fields (st, key, val, vlen, f, 1) < 0)
        return -1;
      if (cwd && bad_path (f[0]))
        {
          free (f[0]);
          return cella_error (st->err, 0, "guest config line %u: `cwd` must be an absolute path without `..`",
                              st->lineno);
        }
      if (!cwd && (f[0][0] == '\0' || strlen (f[0]) > GUESTCFG_MAX_HOSTNAME))
        {
          free (f[0]);
          return cella_error (st->err, 0, "guest config line %u: `hostname` must be 1 to %d bytes", st->lineno,
                              GUESTCFG_MAX_HOSTNAME);
        }
      return set_once (st, key, cwd ? &c->cwd : &c->hostname, f[0]);
    }
  if (strcmp (key, "uid") == 0 || strcmp (key, "gid") == 0 || strcmp (key, "group") == 0 || strcmp (key, "tty") == 0)
    {
      unsigned bit = key[0] == 'u' ? SEEN_UID : key[0] == 't' ? SEEN_TTY : key[1] == 'i' ? SEEN_GID : 0;
      int r;
      if (split_fields (st, key, val, vlen, f, 1) < 0)
        return -1;
      if (bit == SEEN_TTY)
        {
          r = strcmp (f[0], "0") == 0 || strcmp (f[0], "1") == 0
                  ? 0
                  : cella_error (st->err, 0, "guest config line %u: `tty` must be 0 or 1", st->lineno);
          id = f[0][0] == '1';
        }
      else
        r = parse_id (st, key, f[0], &id);
      free (f[0]);
      if (r < 0)
        return -1;
      if (bit && (*seen & bit))
        return cella_error (st->err, 0, "guest config line %u: duplicate `%s`", st->lineno, key);
      *seen |= bit;
      if (bit == SEEN_UID)
        c->uid = (uid_t) id;
      else if (bit == SEEN_GID)
        c->gid = (gid_t) id;
      else if (bit == SEEN_TTY)
        c->tty = id != 0;
      else
        {
          if (c->ngroups >= GUESTCFG_MAX_GROUPS)
            return cella_error (st->err, 0, "guest config line %u: more than %d groups", st->lineno,
                                GUESTCFG_MAX_GROUPS);
          c->groups = grow (c->groups, &st->groups_cap, c->ngroups + 1, sizeof *c->groups);
          c->groups[c->ngroups++] = (gid_t) id;
        }
      return 0;
    }
  if (strcmp (key, "root") == 0 || strcmp (key, "mount") == 0)
    {
      bool root = key[0] == 'r';
      if (split_fields (st, key, val, vlen, f, 3) < 0)
        return -1;
      const char *why = NULL;
      if (strcmp (f[2], "ro") != 0 && strcmp (f[2], "rw") != 0)
        why = "mode must be `ro` or `rw`";
      else if (f[0][0] == '\0' || f[1][0] == '\0')
        why = root ? "device and fstype must not be empty" : "tag must not be empty";
      else if (root && f[0][0] != '/')
        why = "device must be an absolute path";
      else if (!root && (bad_path (f[1]) || strcmp (f[1], "/") == 0))
        why = "target must be an absolute path below / without `..`";
      else if (root && (*seen & SEEN_ROOT))
        why = "duplicate `root`";
      else if (!root && c->nmounts >= GUESTCFG_MAX_MOUNTS)
        why = "too many mounts";
      if (why)
        {
          for (int i = 0; i < 3; i++)
            free (f[i]);
          return cella_error (st->err, 0, "guest config line %u: `%s`: %s", st->lineno, key, why);
        }
      if (root)
        {
          *seen |= SEEN_ROOT;
          c->root_dev = f[0];
          c->root_fstype = f[1];
          c->root_ro = f[2][1] == 'o';
        }
      else
        {
          c->mounts = grow (c->mounts, &st->mounts_cap, c->nmounts + 1, sizeof *c->mounts);
          c->mounts[c->nmounts++] = (struct vm_mount){ .tag = f[0], .target = f[1], .ro = f[2][1] == 'o' };
        }
      free (f[2]);
      return 0;
    }
  if (strcmp (key, "tmpfs") == 0)
    {
      char *end1 = NULL, *end2 = NULL, *end3 = NULL, *f4[4] = { NULL, NULL, NULL, NULL };
      if (split_fields (st, key, val, vlen, f4, 4) < 0)
        return -1;
      f[0] = f4[0], f[1] = f4[1], f[2] = f4[2];
      unsigned long long size = strtoull (f[1], &end1, 10);
      unsigned long mode = strtoul (f[2], &end2, 8);
      unsigned long flags = strtoul (f4[3], &end3, 10);
      bool flags_ok = f4[3][0] >= '0' && f4[3][0] <= '9' && *end3 == '\0'
                      && (flags & ~(unsigned long) (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)) == 0;
      free (f4[3]);
      const char *why = NULL;
      if (bad_path (f[0]) || strcmp (f[0], "/") == 0)
        why = "target must be an absolute path below / without `..`";
      else if (f[1][0] < '0' || f[1][0] > '9' || *end1 || f[2][0] < '0' || f[2][0] > '7' || *end2 || mode > 07777
               || !flags_ok)
        why = "expected TARGET SIZE OCTAL-MODE MS-FLAGS";
      else if (c->ntmpfs >= GUESTCFG_MAX_MOUNTS)
        why = "too many tmpfs";
      free (f[1]);
      free (f[2]);
      if (why)
        {
          free (f[0]);
          return cella_error (st->err, 0, "guest config line %u: `tmpfs`: %s", st->lineno, why);
        }
      c->tmpfs = grow (c->tmpfs, &st->tmpfs_cap, c->ntmpfs + 1, sizeof *c->tmpfs);
      c->tmpfs[c->ntmpfs++]
          = (struct vm_tmpfs){ .target = f[0], .size = size, .mode = (unsigned) mode, .flags = flags };
      return 0;
    }
  if (strcmp (key, "caps") == 0 || strcmp (key, "nnp") == 0 || strcmp (key, "export") == 0)
    {
      char *end = NULL;
      if (split_fields (st, key, val, vlen, f, 1) < 0)
        return -1;
      unsigned long long v = strtoull (f[0], &end, key[0] == 'c' ? 16 : 10);
      bool ok = f[0][0] != '\0' && f[0][0] != '-' && *end == '\0' && (key[0] == 'c' || v == 1);
      free (f[0]);
      if (!ok)
        return cella_error (st->err, 0, "guest config line %u: bad `%s` value", st->lineno, key);
      if (key[0] == 'c')
        {
          c->caps_set = true;
          c->caps = v;
        }
      else if (key[0] == 'e')
        c->export_root = true;
      else
        c->no_new_privs = true;
      return 0;
    }
  if (strcmp (key, "net") == 0)
    return parse_net (st, val, vlen, seen);
  if (strcmp (key, "nameserver") == 0)
    {
      unsigned char buf[16];
      if (split_fields (st, key, val, vlen, f, 1) < 0)
        return -1;
      if (inet_pton (AF_INET, f[0], buf) != 1 && inet_pton (AF_INET6, f[0], buf) != 1)
        {
          free (f[0]);
          return cella_error (st->err, 0, "guest config line %u: `nameserver`: not an IP address", st->lineno);
        }
      if (st->nns >= GUESTCFG_MAX_NAMESERVERS)
        {
          free (f[0]);
          return cella_error (st->err, 0, "guest config line %u: more than %d `nameserver` lines", st->lineno,
                              GUESTCFG_MAX_NAMESERVERS);
        }
      return add_string (st, key, &c->nameservers, &st->nns, &st->ns_cap, f[0]);
    }
  return cella_error (st->err, 0, "guest config line %u: unknown key `%.40s`", st->lineno, key);
}

int
guestcfg_parse (const char *text, size_t len, struct vm_guest_config *c, cella_error_t *err)
{
  struct pstate st = { .c = c, .err = err };
  const char *p = text, *end = text + len;
  bool ended = false;
  unsigned seen = 0;

  memset (c, 0, sizeof *c);
  if (len > GUESTCFG_MAX_BYTES)
    return cella_error (err, 0, "guest config: larger than %d bytes", GUESTCFG_MAX_BYTES);
  if (memchr (text, '\0', len))
    return cella_error (err, 0, "guest config: contains a NUL byte");
  while (p < end)
    {
      const char *nl = memchr (p, '\n', (size_t) (end - p));
      char key[16];
      st.lineno++;
      if (nl == NULL)
        {
          cella_error (err, 0, "guest config line %u: no newline at the end (cut short?)", st.lineno);
          goto fail;
        }
      if (ended)
        {
          cella_error (err, 0, "guest config line %u: text after `end`", st.lineno);
          goto fail;
        }
      size_t n = (size_t) (nl - p);
      if (st.lineno == 1)
        {
          if (n != strlen (GUESTCFG_MAGIC) || memcmp (p, GUESTCFG_MAGIC, n) != 0)
            {
              cella_error (err, 0, "guest config: first line is not `" GUESTCFG_MAGIC "`");
              goto fail;
            }
        }
      else if (n == 3 && memcmp (p, "end", 3) == 0)
        ended = true;
      else
        {
          const char *sp = memchr (p, ' ', n);
          size_t klen = sp ? (size_t) (sp - p) : n;
          if (sp == NULL || klen == 0 || klen >= sizeof key)
            {
              cella_error (err, 0, "guest config line %u: expected `key value`", st.lineno);
              goto fail;
            }
          memcpy (key, p, klen);
          key[klen] = '\0';
          if (parse_line (&st, key, sp + 1, n - klen - 1, &seen) < 0)
            goto fail;
        }
      p = nl + 1;
    }
  if (st.lineno == 0)
    {
      cella_error (err, 0, "guest config: empty");
      goto fail;
    }
  if (!ended)
    {
      cella_error (err, 0, "guest config: no `end` line (cut short?)");
      goto fail;
    }
  if (st.nargv == 0)
    {
      cella_error (err, 0, "guest config: no `argv` (nothing to run)");
      goto fail;
    }
  if (c->env == NULL)
    c->env = gc_alloc (NULL, sizeof *c->env), c->env[0] = NULL;
  return 0;
fail:
  guestcfg_free (c);
  return -1;
}
