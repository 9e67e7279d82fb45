/* tar.h: the archive `cella cp` moves between the host and a VM's guest. libc only: the static
 * guest init links this file too (Makefile GUEST_SRC), so no libcella helpers beyond
 * cella_error. */
#define _GNU_SOURCE
#include "tar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK 512
#define NAME_MAX_LEN 4096              /* a whole entry name, as PATH_MAX */
#define META_MAX (1 << 20)             /* a pax or GNU long-name record's data */
#define OCTAL_MAX_SIZE 077777777777ULL /* 12-byte field: 8 GiB - 1 */
#define OCTAL_MAX_ID 07777777ULL       /* 8-byte field */

static void
close_fdp (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
#define tar_close __attribute__ ((cleanup (close_fdp)))

static int
put_all (int fd, const void *buf, size_t len, cella_error_t *err)
{
  const char *p = buf;
  while (len)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return cella_error (err, errno, "cp: write the archive");
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

/* Read exactly len bytes: 1, 0 at a clean end before any byte, -1 (error, or end mid-way). */
static int
get_all (int fd, void *buf, size_t len, cella_error_t *err)
{
  char *p = buf;
  size_t got = 0;
  while (got < len)
    {
      ssize_t n = read (fd, p + got, len - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return cella_error (err, errno, "cp: read the archive");
      if (n == 0)
        return got == 0 ? 0 : cella_error (err, 0, "cp: the archive is truncated");
      got += (size_t) n;
    }
  return 1;
}

/* Files by (device, inode): the writer's first name of a file with several links, the reader's
 * regular files it made (a hard-link entry may point only at one of those). Open addressing,
 * grown at half full. */
struct inode_slot {
  dev_t dev;
  ino_t ino;
  char *name;
  bool used;
};
struct inode_set {
  struct inode_slot *v;
  size_t cap, n;
};

static size_t
inode_hash (dev_t dev, ino_t ino, size_t cap)
{
  uint64_t h = ((uint64_t) ino * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t) dev * 0xC2B2AE3D27D4EB4FULL);
  return (size_t) (h ^ (h >> 31)) & (cap - 1);
}

static struct inode_slot *
inode_find (const struct inode_set *s, dev_t dev, ino_t ino)
{
  for (size_t i = s->cap ? inode_hash (dev, ino, s->cap) : 0; s->cap && s->v[i].used; i = (i + 1) & (s->cap - 1))
    if (s->v[i].dev == dev && s->v[i].ino == ino)
      return &s->v[i];
  return NULL;
}

static void
inode_add (struct inode_set *s, dev_t dev, ino_t ino, const char *name)
{
  if (inode_find (s, dev, ino))
    return;
  if (2 * (s->n + 1) > s->cap)
    {
      struct inode_set g = { .cap = s->cap ? 2 * s->cap : 64 };
      g.v = calloc (g.cap, sizeof *g.v);
      if (g.v == NULL)
        abort ();
      for (size_t i = 0; i < s->cap; i++)
        if (s->v[i].used)
          {
            size_t j = inode_hash (s->v[i].dev, s->v[i].ino, g.cap);
            while (g.v[j].used)
              j = (j + 1) & (g.cap - 1);
            g.v[j] = s->v[i];
          }
      free (s->v);
      g.n = s->n;
      *s = g;
    }
  size_t i = inode_hash (dev, ino, s->cap);
  while (s->v[i].used)
    i = (i + 1) & (s->cap - 1);
  s->v[i] = (struct inode_slot){ .dev = dev, .ino = ino, .name = name ? strdup (name) : NULL, .used = true };
  if (name && s->v[i].name == NULL)
    abort ();
  s->n++;
}

static void
inode_set_free (struct inode_set *s)
{
  for (size_t i = 0; i < s->cap; i++)
    free (s->v[i].name);
  free (s->v);
  *s = (struct inode_set){ 0 };
}

/* ---- writing ---- */

static void
put_octal (char *field, size_t width, unsigned long long v)
{
  snprintf (field, width, "%0*llo", (int) width - 1, v);
}

static void
pax_add_bytes (char **buf, size_t *len, const char *key, const char *value, size_t vlen)
{
  size_t body = strlen (key) + vlen + 3; /* " " "=" "\n" */
  size_t digits = 1, total;
  for (;;)
    {
      total = body + digits;
      size_t d = snprintf (NULL, 0, "%zu", total);
      if (d == digits)
        break;
      digits = d;
    }
  char *n = realloc (*buf, *len + total + 1);
  if (n == NULL)
    abort ();
  int head = snprintf (n + *len, total + 1, "%zu %s=", total, key);
  memcpy (n + *len + head, value, vlen);
  n[*len + total - 1] = '\n';
  *buf = n;
  *len += total;
}

static void
pax_add (char **buf, size_t *len, const char *key, const char *value)
{
  pax_add_bytes (buf, len, key, value, strlen (value));
}

/* The xattrs of an open file as pax records (SCHILY.xattr.NAME), appended to *buf; those that
 * cannot be read are left out. */
static void
pax_xattrs (int fd, char **buf, size_t *len)
{
  char names[65536], value[65536];
  ssize_t n = fd >= 0 ? flistxattr (fd, names, sizeof names) : -1;
  for (ssize_t i = 0; i < n; i += (ssize_t) strlen (names + i) + 1)
    {
      ssize_t v = fgetxattr (fd, names + i, value, sizeof value);
      char key[300];
      if (v < 0 || strlen (names + i) > 255)
        continue;
      snprintf (key, sizeof key, "SCHILY.xattr.%s", names + i);
      pax_add_bytes (buf, len, key, value, (size_t) v);
    }
}

static int
put_header (int fd, const char *name, char type, const struct stat *st, unsigned long long size, const char *link,
            bool zero_owner, int xattr_fd, cella_error_t *err)
{
  char h[BLK], num[32];
  char *pax = NULL;
  size_t paxlen = 0;
  unsigned long long uid = zero_owner ? 0 : st->st_uid, gid = zero_owner ? 0 : st->st_gid;
  memset (h, 0, sizeof h);
  if (strlen (name) >= 100)
    pax_add (&pax, &paxlen, "path", name);
  if (link && strlen (link) >= 100)
    pax_add (&pax, &paxlen, "linkpath", link);
  if (size > OCTAL_MAX_SIZE)
    {
      snprintf (num, sizeof num, "%llu", size);
      pax_add (&pax, &paxlen, "size", num);
    }
  if (uid > OCTAL_MAX_ID)
    {
      snprintf (num, sizeof num, "%llu", uid);
      pax_add (&pax, &paxlen, "uid", num);
    }
  if (gid > OCTAL_MAX_ID)
    {
      snprintf (num, sizeof num, "%llu", gid);
      pax_add (&pax, &paxlen, "gid", num);
    }
  pax_xattrs (xattr_fd, &pax, &paxlen);
  if (pax)
    {
      struct stat none = { .st_mode = 0644 };
      char pad[BLK] = { 0 };
      int r = put_header (fd, "././@PaxHeader", 'x', &none, paxlen, NULL, true, -1, err);
      if (r == 0)
        r = put_all (fd, pax, paxlen, err);
      if (r == 0 && paxlen % BLK)
        r = put_all (fd, pad, BLK - paxlen % BLK, err);
      free (pax);
      if (r < 0)
        return r;
    }
  memcpy (h, name, strnlen (name, 99));
  put_octal (h + 100, 8, st->st_mode & 07777);
  put_octal (h + 108, 8, uid > OCTAL_MAX_ID ? 0 : uid);
  put_octal (h + 116, 8, gid > OCTAL_MAX_ID ? 0 : gid);
  put_octal (h + 124, 12, size > OCTAL_MAX_SIZE ? 0 : size);
  put_octal (h + 136, 12, st->st_mtime < 0 ? 0 : (unsigned long long) st->st_mtime & OCTAL_MAX_SIZE);
  h[156] = type;
  if (link)
    memcpy (h + 157, link, strnlen (link, 99));
  memcpy (h + 257, "ustar", 6);
  memcpy (h + 263, "00", 2);
  memset (h + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < BLK; i++)
    sum += (unsigned char) h[i];
  snprintf (h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return put_all (fd, h, BLK, err);
}

/* The file's first `size` bytes (zeros when it shrank meanwhile), padded to a block. */
static int
put_data (int fd, int src, unsigned long long size, const char *name, cella_error_t *err)
{
  char buf[65536];
  unsigned long long left = size;
  bool eof = false;
  while (left)
    {
      size_t want = left < sizeof buf ? (size_t) left : sizeof buf;
      ssize_t n = 0;
      if (!eof)
        {
          n = read (src, buf, want);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            return cella_error (err, errno, "cp: read `%s`", name);
          eof = n == 0;
        }
      if (eof)
        {
          memset (buf, 0, want);
          n = (ssize_t) want;
        }
      if (put_all (fd, buf, (size_t) n, err) < 0)
        return -1;
      left -= (unsigned long long) n;
    }
  if (size % BLK)
    {
      memset (buf, 0, BLK);
      return put_all (fd, buf, BLK - size % BLK, err);
    }
  return 0;
}

static int
put_tree (int fd, int at, const char *name, const char *path, bool follow, bool zero_owner, struct inode_set *links,
          cella_error_t *err)
{
  struct stat st;
  if (fstatat (at, name, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
    return cella_error (err, errno, "cp: `%s`", path);
  switch (st.st_mode & S_IFMT)
    {
    case S_IFREG:
      {
        if (links && st.st_nlink > 1)
          {
            const struct inode_slot *first = inode_find (links, st.st_dev, st.st_ino);
            if (first)
              return put_header (fd, path, '1', &st, 0, first->name, zero_owner, -1, err);
            inode_add (links, st.st_dev, st.st_ino, path);
          }
        tar_close int src = openat (at, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | (follow ? 0 : O_NOFOLLOW));
        if (src < 0)
          return cella_error (err, errno, "cp: open `%s`", path);
        if (put_header (fd, path, '0', &st, (unsigned long long) st.st_size, NULL, zero_owner, src, err) < 0)
          return -1;
        return put_data (fd, src, (unsigned long long) st.st_size, path, err);
      }
    case S_IFLNK:
      {
        char target[NAME_MAX_LEN + 1];
        ssize_t n = readlinkat (at, name, target, sizeof target - 1);
        if (n < 0)
          return cella_error (err, errno, "cp: read the link `%s`", path);
        target[n] = '\0';
        return put_header (fd, path, '2', &st, 0, target, zero_owner, -1, err);
      }
    case S_IFIFO:
      return put_header (fd, path, '6', &st, 0, NULL, zero_owner, -1, err);
    case S_IFDIR:
      break;
    default:
      return 0; /* sockets, devices: left out */
    }
  int dfd = openat (at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
  if (put_header (fd, path, '5', &st, 0, NULL, zero_owner, dfd, err) < 0)
    {
      if (dfd >= 0)
        close (dfd);
      return -1;
    }
  DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
  struct dirent *e;
  int r = 0;
  if (d == NULL)
    {
      r = cella_error (err, errno, "cp: open the directory `%s`", path);
      if (dfd >= 0)
        close (dfd);
      return r;
    }
  while (r == 0 && (errno = 0, e = readdir (d)) != NULL)
    {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      size_t len = strlen (path) + strlen (e->d_name) + 2;
      if (len > NAME_MAX_LEN)
        {
          r = cella_error (err, ENAMETOOLONG, "cp: `%s/%s`", path, e->d_name);
          break;
        }
      char *child = malloc (len);
      if (child == NULL)
        abort ();
      size_t pl = strlen (path);
      memcpy (child, path, pl);
      child[pl] = '/';
      memcpy (child + pl + 1, e->d_name, len - pl - 1); /* with its NUL */
      r = put_tree (fd, dirfd (d), e->d_name, child, false, zero_owner, links, err);
      free (child);
    }
  if (r == 0 && errno != 0)
    r = cella_error (err, errno, "cp: read the directory `%s`", path);
  closedir (d);
  return r;
}

int
tar_write_tree (int fd, int at, const char *name, const char *as, bool follow, bool zero_owner, bool hardlinks,
                cella_error_t *err)
{
  char end[2 * BLK];
  struct inode_set links = { 0 };
  int r = put_tree (fd, at, name, as, follow, zero_owner, hardlinks ? &links : NULL, err);
  inode_set_free (&links);
  if (r < 0)
    return -1;
  memset (end, 0, sizeof end);
  return put_all (fd, end, sizeof end, err);
}

/* ---- reading ---- */

struct pending_dir {
  char *rel;
  mode_t mode;
  long long mtime;
};

struct reader {
  int fd;
  const struct tar_read_opts *o;
  int root;  /* where the top goes (from o->first) */
  char *top; /* the archive's top name */
  char *as;  /* its name under root (a copy); NULL: its contents go into root */
  bool started;
  struct pending_dir *dirs;
  size_t ndirs;
  struct inode_set made; /* with o->hardlinks: the regular files this archive made */
};

struct xattr {
  char *name, *value;
  size_t len;
};

struct entry {
  char *name, *link;
  struct xattr *xattrs;
  size_t nxattrs;
  char type;
  unsigned long long size, uid, gid;
  long long mtime;
  unsigned mode;
};

static bool
parse_num (const char *f, size_t width, unsigned long long *out)
{
  unsigned long long v = 0;
  size_t i = 0;
  if ((unsigned char) f[0] & 0x80)
    {
      /* base-256 (GNU): big-endian, the first byte's top bit the marker; negative refused */
      if ((unsigned char) f[0] & 0x40)
        return false;
      v = (unsigned char) f[0] & 0x3f;
      for (i = 1; i < width; i++)
        {
          if (v >> 56)
            return false;
          v = v << 8 | (unsigned char) f[i];
        }
      *out = v;
      return true;
    }
  while (i < width && f[i] == ' ')
    i++;
  for (; i < width && f[i] >= '0' && f[i] <= '7'; i++)
    {
      if (v >> 60)
        return false;
      v = v * 8 + (unsigned) (f[i] - '0');
    }
  if (i < width && f[i] != '\0' && f[i] != ' ')
    return false;
  *out = v;
  return true;
}

static bool
checksum_ok (const unsigned char *h)
{
  unsigned long long want;
  unsigned sum = 0;
  int ssum = 0;
  if (!parse_num ((const char *) h + 148, 8, &want))
    return false;
  for (size_t i = 0; i < BLK; i++)
    {
      unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
      sum += c;
      ssum += (signed char) c;
    }
  return want == sum || (long long) want == ssum;
}

/* Skip n bytes of the stream. */
static int skip_raw (int fd, unsigned long long n, cella_error_t *err);

/* Skip a payload of size bytes and its padding. */
static int
skip_data (int fd, unsigned long long size, cella_error_t *err)
{
  return skip_raw (fd, (size + BLK - 1) / BLK * BLK, err);
}

static int
skip_raw (int fd, unsigned long long left, cella_error_t *err)
{
  char buf[BLK * 16];
  while (left)
    {
      size_t n = left < sizeof buf ? (size_t) left : sizeof buf;
      if (get_all (fd, buf, n, err) <= 0)
        return err && *err ? -1 : cella_error (err, 0, "cp: the archive is truncated");
      left -= n;
    }
  return 0;
}

/* A pax or GNU long-name record's payload, NUL-terminated (malloc'd). */
static char *
read_meta (int fd, unsigned long long size, cella_error_t *err)
{
  char *buf;
  if (size > META_MAX)
    {
      cella_error (err, 0, "cp: an archive's extended header of %llu bytes (at most %d)", size, META_MAX);
      return NULL;
    }
  buf = malloc ((size_t) size + 1);
  if (buf == NULL)
    abort ();
  if (size && get_all (fd, buf, (size_t) size, err) <= 0)
    {
      if (err && *err == NULL)
        cella_error (err, 0, "cp: the archive is truncated");
      free (buf);
      return NULL;
    }
  buf[size] = '\0';
  if (skip_raw (fd, size % BLK ? BLK - size % BLK : 0, err) < 0)
    {
      free (buf);
      return NULL;
    }
  return buf;
}

static void
set_str (char **dst, const char *v, size_t len)
{
  free (*dst);
  *dst = strndup (v, len);
  if (*dst == NULL)
    abort ();
}

/* pax records "LEN key=value\n": path, linkpath, size, uid, gid, mtime kept; others ignored. */
static int
parse_pax (const char *buf, size_t len, struct entry *over, bool *have_size, cella_error_t *err)
{
  size_t off = 0;
  while (off < len)
    {
      char *end;
      unsigned long long rl = strtoull (buf + off, &end, 10);
      const char *rec = buf + off, *eq, *val;
      if (end == rec || *end != ' ' || rl > len - off || rl < (size_t) (end - rec) + 3 || rec[rl - 1] != '\n')
        return cella_error (err, 0, "cp: a malformed pax record in the archive");
      eq = memchr (end + 1, '=', (size_t) (rec + rl - 1 - (end + 1)));
      if (eq == NULL)
        return cella_error (err, 0, "cp: a malformed pax record in the archive");
      val = eq + 1;
      size_t klen = (size_t) (eq - (end + 1)), vlen = (size_t) (rec + rl - 1 - val);
      const char *key = end + 1;
#define KEY(k) (klen == sizeof k - 1 && memcmp (key, k, klen) == 0)
      if (klen > 13 && memcmp (key, "SCHILY.xattr.", 13) == 0)
        {
          struct xattr *x;
          if (over->nxattrs >= 128)
            return cella_error (err, 0, "cp: more than 128 xattrs on one archive entry");
          over->xattrs = realloc (over->xattrs, (over->nxattrs + 1) * sizeof *over->xattrs);
          if (over->xattrs == NULL)
            abort ();
          x = &over->xattrs[over->nxattrs++];
          x->name = strndup (key + 13, klen - 13);
          x->value = malloc (vlen ? vlen : 1);
          if (x->name == NULL || x->value == NULL)
            abort ();
          memcpy (x->value, val, vlen);
          x->len = vlen;
        }
      else if (KEY ("path"))
        set_str (&over->name, val, vlen);
      else if (KEY ("linkpath"))
        set_str (&over->link, val, vlen);
      else if (KEY ("size") || KEY ("uid") || KEY ("gid") || KEY ("mtime"))
        {
          char num[32];
          unsigned long long v;
          if (vlen == 0 || vlen >= sizeof num)
            return cella_error (err, 0, "cp: a malformed pax number in the archive");
          memcpy (num, val, vlen);
          num[vlen] = '\0';
          errno = 0;
          v = strtoull (num, &end, 10);
          if (errno || end == num || (*end && !(KEY ("mtime") && *end == '.')))
            return cella_error (err, 0, "cp: a malformed pax number `%s` in the archive", num);
          if (KEY ("size"))
            over->size = v, *have_size = true;
          else if (KEY ("uid"))
            over->uid = v + 1; /* 0: not given */
          else if (KEY ("gid"))
            over->gid = v + 1;
          else
            over->mtime = (long long) v + 1;
        }
#undef KEY
      off += (size_t) rl;
    }
  return 0;
}

/* The entry's name mapped under r->root ("" for the top itself in contents mode; NULL after an
 * error): checked against the rules in tar.h. */
static char *
map_name (struct reader *r, struct entry *e, cella_error_t *err)
{
  char *n = e->name, *rel;
  size_t len = strlen (n);
  while (len > 1 && n[len - 1] == '/')
    n[--len] = '\0';
  if (len == 0 || len > NAME_MAX_LEN || n[0] == '/')
    goto bad;
  for (const char *c = n; *c;)
    {
      const char *s = strchr (c, '/');
      size_t cl = s ? (size_t) (s - c) : strlen (c);
      if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.') || cl > NAME_MAX)
        goto bad;
      c += cl + (s ? 1 : 0);
    }
  if (!r->started)
    {
      struct tar_dest d = { .dirfd = -1 };
      if (strchr (n, '/'))
        goto bad;
      if (r->o->first (r->o->ctx, n, e->type == '5', &d, err) < 0)
        return NULL;
      if (d.as && (strchr (d.as, '/') || !*d.as || strcmp (d.as, ".") == 0 || strcmp (d.as, "..") == 0))
        {
          cella_error (err, 0, "cp: `%s` cannot be the name of what is copied", d.as);
          return NULL;
        }
      if (d.as == NULL && e->type != '5')
        {
          cella_error (err, ENOTDIR, "cp: `%s` is not a directory: it has no contents to copy", n);
          return NULL;
        }
      r->started = true;
      r->root = d.dirfd;
      r->as = d.as ? strdup (d.as) : NULL; /* d.as may be the caller's view of n */
      r->top = strdup (n);
      if (r->top == NULL || (d.as && r->as == NULL))
        abort ();
    }
  size_t tl = strlen (r->top);
  if (strncmp (n, r->top, tl) != 0 || (n[tl] != '\0' && n[tl] != '/'))
    {
      cella_error (err, 0, "cp: the archive's entry `%s` is not below its first, `%s`", n, r->top);
      return NULL;
    }
  if (r->as == NULL)
    rel = strdup (n[tl] ? n + tl + 1 : "");
  else if (asprintf (&rel, "%s%s", r->as, n + tl) < 0)
    rel = NULL;
  if (rel == NULL)
    abort ();
  return rel;
bad:
  cella_error (err, 0, "cp: the archive's entry name `%.200s` is refused (absolute, empty, `.` or `..` in it)", n);
  return NULL;
}

/* The directory that holds rel (every component opened with O_NOFOLLOW), *last its name. */
static int
open_parent (int root, const char *rel, const char **last, cella_error_t *err)
{
  int cur = fcntl (root, F_DUPFD_CLOEXEC, 3);
  const char *c = rel, *s;
  char comp[NAME_MAX + 1];
  if (cur < 0)
    return cella_error (err, errno, "cp: dup");
  while ((s = strchr (c, '/')) != NULL)
    {
      size_t cl = (size_t) (s - c);
      memcpy (comp, c, cl);
      comp[cl] = '\0';
      int next = openat (cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int e = errno;
      close (cur);
      if (next < 0)
        return cella_error (err, e,
                            "cp: `%s`: its directory `%.*s` (not a directory of the archive's own, or a symlink)", rel,
                            (int) (s - rel), rel);
      cur = next;
      c = s + 1;
    }
  *last = c;
  return cur;
}

/* Make room for a new non-directory (or directory) entry `name` in dir. */
static int
clear_slot (int dir, const char *name, const char *rel, bool for_dir, bool *is_dir, cella_error_t *err)
{
  struct stat st;
  *is_dir = false;
  if (fstatat (dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : cella_error (err, errno, "cp: `%s`", rel);
  if (S_ISDIR (st.st_mode))
    {
      if (for_dir)
        {
          *is_dir = true;
          return 0;
        }
      return cella_error (err, EISDIR, "cp: cannot replace the directory `%s` with a non-directory", rel);
    }
  if (unlinkat (dir, name, 0) < 0)
    return cella_error (err, errno, "cp: replace `%s`", rel);
  return 0;
}

static int
copy_data (struct reader *r, int out, const struct entry *e, const char *rel, cella_error_t *err)
{
  char buf[65536];
  unsigned long long left = e->size;
  while (left)
    {
      size_t n = left < sizeof buf ? (size_t) left : sizeof buf;
      if (get_all (r->fd, buf, n, err) <= 0)
        return err && *err ? -1 : cella_error (err, 0, "cp: the archive is truncated");
      if (put_all (out, buf, n, err) < 0)
        return cella_error (err, errno, "cp: write `%s`", rel);
      left -= n;
    }
  return skip_raw (r->fd, e->size % BLK ? BLK - e->size % BLK : 0, err);
}

static void
xattrs_free (struct entry *e)
{
  for (size_t i = 0; i < e->nxattrs; i++)
    {
      free (e->xattrs[i].name);
      free (e->xattrs[i].value);
    }
  free (e->xattrs);
  e->xattrs = NULL;
  e->nxattrs = 0;
}

/* With o->xattrs: the entry's user.* (not overlay's own: they steer an overlay mount of the tree)
 * and security.capability xattrs on fd; others are left out. */
static int
set_xattrs (const struct reader *r, const struct entry *e, int fd, const char *rel, cella_error_t *err)
{
  for (size_t i = 0; r->o->xattrs && i < e->nxattrs; i++)
    {
      const char *n = e->xattrs[i].name;
      bool ok = (strncmp (n, "user.", 5) == 0 && strncmp (n, "user.overlay.", 13) != 0)
                || strcmp (n, "security.capability") == 0;
      if (ok && fsetxattr (fd, n, e->xattrs[i].value, e->xattrs[i].len, 0) < 0)
        return cella_error (err, errno, "cp: set the xattr `%s` of `%s`", n, rel);
    }
  return 0;
}

static mode_t
entry_mode (const struct reader *r, const struct entry *e)
{
  return (mode_t) (e->mode & (r->o->no_setid ? 01777u : 07777u));
}

static char *map_name (struct reader *r, struct entry *e, cella_error_t *err);

/* A hard-link entry: its target named like an entry (the same rules), resolved component by
 * component, and a regular file this archive made; then a link to it at dir/last. */
static int
extract_link (struct reader *r, const struct entry *e, int dir, const char *last, const char *rel, cella_error_t *err)
{
  struct entry t = { .name = strdup (e->link ? e->link : ""), .type = '0' };
  char *trel;
  const char *tlast;
  struct stat st;
  bool is_dir;
  int tdir, rc = -1;
  if (t.name == NULL)
    abort ();
  trel = map_name (r, &t, err);
  free (t.name);
  if (trel == NULL)
    return -1; /* map_name said why */
  if (*trel == '\0' || (tdir = open_parent (r->root, trel, &tlast, err)) < 0)
    {
      if (*trel == '\0')
        cella_error (err, 0, "cp: the hard link `%s` points at the archive's top", rel);
      free (trel);
      return -1;
    }
  if (fstatat (tdir, tlast, &st, AT_SYMLINK_NOFOLLOW) < 0)
    cella_error (err, errno, "cp: the hard link `%s`: its target `%s`", rel, trel);
  else if (!S_ISREG (st.st_mode) || inode_find (&r->made, st.st_dev, st.st_ino) == NULL)
    cella_error (err, EPERM, "cp: the hard link `%s`: its target `%s` is not a file of the archive's own", rel, trel);
  else if (clear_slot (dir, last, rel, false, &is_dir, err) == 0)
    {
      if (linkat (tdir, tlast, dir, last, 0) < 0)
        cella_error (err, errno, "cp: create the hard link `%s` to `%s`", rel, trel);
      else
        rc = skip_data (r->fd, e->size, err);
    }
  close (tdir);
  free (trel);
  return rc;
}

static int
extract (struct reader *r, struct entry *e, const char *rel, cella_error_t *err)
{
  const char *last;
  bool is_dir;
  struct timespec t[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t) e->mtime } };
  int dir = open_parent (r->root, rel, &last, err), rc = -1;
  if (dir < 0)
    return -1;
  switch (e->type)
    {
    case '5':
      if (clear_slot (dir, last, rel, true, &is_dir, err) < 0
          || (!is_dir && mkdirat (dir, last, 0700) < 0 && cella_error (err, errno, "cp: create `%s`", rel) < 0)
          || (r->o->chown && fchownat (dir, last, (uid_t) e->uid, (gid_t) e->gid, AT_SYMLINK_NOFOLLOW) < 0
              && cella_error (err, errno, "cp: set the owner of `%s`", rel) < 0))
        break;
      if (e->nxattrs && r->o->xattrs)
        {
          int dfd = openat (dir, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          int x = dfd < 0 ? cella_error (err, errno, "cp: open `%s`", rel) : set_xattrs (r, e, dfd, rel, err);
          if (dfd >= 0)
            close (dfd);
          if (x < 0)
            break;
        }
      r->dirs = realloc (r->dirs, (r->ndirs + 1) * sizeof *r->dirs);
      if (r->dirs == NULL)
        abort ();
      r->dirs[r->ndirs++] = (struct pending_dir){ strdup (rel), entry_mode (r, e), e->mtime };
      rc = skip_data (r->fd, e->size, err);
      break;
    case '0':
    case '\0':
    case '7':
      {
        int out;
        if (clear_slot (dir, last, rel, false, &is_dir, err) < 0)
          break;
        out = openat (dir, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
          {
            cella_error (err, errno, "cp: create `%s`", rel);
            break;
          }
        rc = copy_data (r, out, e, rel, err);
        if (rc == 0 && r->o->hardlinks)
          {
            struct stat st;
            if (fstat (out, &st) < 0)
              rc = cella_error (err, errno, "cp: `%s`", rel);
            else
              inode_add (&r->made, st.st_dev, st.st_ino, NULL);
          }
        /* the owner first: fchown clears set-id bits */
        if (rc == 0 && r->o->chown && fchown (out, (uid_t) e->uid, (gid_t) e->gid) < 0)
          rc = cella_error (err, errno, "cp: set the owner of `%s`", rel);
        if (rc == 0 && fchmod (out, entry_mode (r, e)) < 0)
          rc = cella_error (err, errno, "cp: set the mode of `%s`", rel);
        if (rc == 0)
          rc = set_xattrs (r, e, out, rel, err); /* after the owner: fchown clears a file capability */
        if (rc == 0 && futimens (out, t) < 0)
          rc = cella_error (err, errno, "cp: set the time of `%s`", rel);
        close (out);
        break;
      }
    case '2':
    case '6':
      if (clear_slot (dir, last, rel, false, &is_dir, err) < 0)
        break;
      if (e->type == '2' ? symlinkat (e->link, dir, last) < 0 : mkfifoat (dir, last, entry_mode (r, e) & 0777) < 0)
        {
          cella_error (err, errno, "cp: create `%s`", rel);
          break;
        }
      if (r->o->chown && fchownat (dir, last, (uid_t) e->uid, (gid_t) e->gid, AT_SYMLINK_NOFOLLOW) < 0)
        {
          cella_error (err, errno, "cp: set the owner of `%s`", rel);
          break;
        }
      utimensat (dir, last, t, AT_SYMLINK_NOFOLLOW);
      rc = skip_data (r->fd, e->size, err);
      break;
    case '3':
    case '4':
      rc = skip_data (r->fd, e->size, err); /* device nodes: left out */
      break;
    case '1':
      if (!r->o->hardlinks)
        cella_error (err, ENOTSUP, "cp: `%s`: hard links in the archive are not supported", rel);
      else
        rc = extract_link (r, e, dir, last, rel, err);
      break;
    default:
      cella_error (err, ENOTSUP, "cp: `%s`: an archive entry of unknown type `%c`", rel, e->type);
      break;
    }
  close (dir);
  return rc;
}

/* Directories' modes and times, deepest first (adding entries changed their mtimes; a read-only
 * mode would have stopped us adding them). */
static int
finish_dirs (struct reader *r, cella_error_t *err)
{
  for (size_t i = r->ndirs; i-- > 0;)
    {
      struct pending_dir *d = &r->dirs[i];
      struct timespec t[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t) d->mtime } };
      const char *last;
      int dir = open_parent (r->root, d->rel, &last, err), fd;
      if (dir < 0)
        return -1;
      fd = openat (dir, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (dir);
      if (fd < 0)
        return cella_error (err, errno, "cp: `%s`", d->rel);
      if (fchmod (fd, d->mode) < 0 || futimens (fd, t) < 0)
        {
          int e = errno;
          close (fd);
          return cella_error (err, e, "cp: set the mode and time of `%s`", d->rel);
        }
      close (fd);
    }
  return 0;
}

static char *
steal_name (char **p)
{
  char *v = *p;
  *p = NULL;
  return v;
}

static int
read_entries (struct reader *r, cella_error_t *err)
{
  struct entry over = { 0 };
  bool have_size = false;
  int rc = -1;
  for (;;)
    {
      unsigned char h[BLK];
      struct entry e = { 0 };
      unsigned long long v;
      int g = get_all (r->fd, h, BLK, err);
      bool zero = true;
      if (g <= 0)
        {
          if (g == 0)
            cella_error (err, 0, "cp: the archive ended without its end-of-archive block");
          break;
        }
      for (size_t i = 0; i < BLK && zero; i++)
        zero = h[i] == 0;
      if (zero)
        {
          rc = r->started ? 0 : cella_error (err, 0, "cp: the archive is empty");
          break;
        }
      if (!checksum_ok (h))
        {
          cella_error (err, 0, "cp: a damaged archive header (bad checksum)");
          break;
        }
      e.type = (char) h[156];
      if (!parse_num ((const char *) h + 124, 12, &e.size) || !parse_num ((const char *) h + 100, 8, &v))
        {
          cella_error (err, 0, "cp: a damaged archive header (size or mode)");
          break;
        }
      e.mode = (unsigned) v;
      if (have_size)
        e.size = over.size;
      if (e.type == 'x' || e.type == 'g' || e.type == 'L' || e.type == 'K')
        {
          char *m = read_meta (r->fd, e.size, err);
          if (m == NULL)
            break;
          if (e.type == 'x' && parse_pax (m, (size_t) e.size, &over, &have_size, err) < 0)
            {
              free (m);
              break;
            }
          if (e.type == 'L' || e.type == 'K')
            set_str (e.type == 'L' ? &over.name : &over.link, m, strnlen (m, (size_t) e.size));
          free (m);
          continue;
        }
      if (!parse_num ((const char *) h + 108, 8, &e.uid) || !parse_num ((const char *) h + 116, 8, &e.gid)
          || !parse_num ((const char *) h + 136, 12, &v))
        {
          cella_error (err, 0, "cp: a damaged archive header (owner or time)");
          break;
        }
      e.mtime = (long long) v;
      if (over.uid)
        e.uid = over.uid - 1;
      if (over.gid)
        e.gid = over.gid - 1;
      if (over.mtime)
        e.mtime = over.mtime - 1;
      if (over.name)
        e.name = steal_name (&over.name);
      else
        {
          char n[256 + 1];
          size_t pl = strnlen ((const char *) h + 345, 155), nl = strnlen ((const char *) h, 100);
          if (memcmp (h + 257, "ustar", 5) == 0 && pl)
            snprintf (n, sizeof n, "%.*s/%.*s", (int) pl, h + 345, (int) nl, h);
          else
            snprintf (n, sizeof n, "%.*s", (int) nl, h);
          set_str (&e.name, n, strlen (n));
        }
      if (over.link)
        e.link = steal_name (&over.link);
      else
        set_str (&e.link, (const char *) h + 157, strnlen ((const char *) h + 157, 100));
      have_size = false;
      e.xattrs = over.xattrs;
      e.nxattrs = over.nxattrs;
      over = (struct entry){ 0 };
      char *rel = map_name (r, &e, err);
      int x = rel == NULL ? -1 : *rel == '\0' ? skip_data (r->fd, e.size, err) : extract (r, &e, rel, err);
      free (rel);
      free (e.name);
      free (e.link);
      xattrs_free (&e);
      if (x < 0)
        break;
    }
  free (over.name);
  free (over.link);
  xattrs_free (&over);
  return rc;
}

int
tar_read (int fd, const struct tar_read_opts *o, cella_error_t *err)
{
  struct reader r = { .fd = fd, .o = o, .root = -1 };
  int rc = read_entries (&r, err);
  if (rc == 0)
    rc = finish_dirs (&r, err);
  for (size_t i = 0; i < r.ndirs; i++)
    free (r.dirs[i].rel);
  free (r.dirs);
  inode_set_free (&r.made);
  free (r.top);
  free (r.as);
  return rc;
}
