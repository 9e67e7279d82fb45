/* Writing into the image store: blobs, layers, records (ingest.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "util/paths.h"
#include "image/ref.h"
#include "ingest.h"
#include "manifest.h"
#include "ns/ns.h"
#include "registry.h"
#include "unpack.h"

static char *
blob_dir (void)
{
  return xasprintf ("%s/blobs/sha256", paths_data_root ());
}

static char *
layer_dir (void)
{
  return xasprintf ("%s/layers", paths_data_root ());
}

bool
ingest_privileged (void)
{
  return geteuid () == 0 && in_initial_userns ();
}

/* ---- limits -------------------------------------------------------------------------------------- */

struct limit_row {
  const char *option, *env, *setting;
  size_t arg;   /* offset in struct limit_args */
  size_t field; /* offset in struct ingest_limits */
  uint64_t def;
  bool count; /* a number of entries, not a size */
};

static const struct limit_row limit_rows[] = {
  { "--max-layer-size", "CELLA_MAX_LAYER_SIZE", "max_layer_size", offsetof (struct limit_args, max_layer_size),
    offsetof (struct ingest_limits, layer_bytes), INGEST_LAYER_BYTES_DEFAULT, false },
  { "--max-image-size", "CELLA_MAX_IMAGE_SIZE", "max_image_size", offsetof (struct limit_args, max_image_size),
    offsetof (struct ingest_limits, image_bytes), INGEST_IMAGE_BYTES_DEFAULT, false },
  { "--max-layer-entries", "CELLA_MAX_LAYER_ENTRIES", "max_layer_entries",
    offsetof (struct limit_args, max_layer_entries), offsetof (struct ingest_limits, layer_entries),
    INGEST_LAYER_ENTRIES_DEFAULT, true },
};

int
ingest_limits_init (struct ingest_limits *l, const struct limit_args *a, cella_error_t *err)
{
  memset (l, 0, sizeof *l);
  for (size_t i = 0; i < sizeof limit_rows / sizeof limit_rows[0]; i++)
    {
      const struct limit_row *row = &limit_rows[i];
      const char *opt = a ? *(char *const *) ((const char *) a + row->arg) : NULL, *env = getenv (row->env);
      cleanup_free char *setting = NULL, *from = NULL;
      const char *v = opt;
      long long n;
      if (v)
        from = xstrdup (row->option);
      else if (env && *env)
        from = xasprintf ("$%s", row->env), v = env;
      else if ((setting = image_setting (row->setting)) != NULL)
        from = xasprintf ("\"%s\" in config.json", row->setting), v = setting;
      n = v == NULL ? (long long) row->def : row->count ? parse_uint (v, LLONG_MAX) : parse_size (v);
      if (n < 0)
        return cella_error (err, 0, "%s: `%s`: expected %s (0: no limit)", from, v,
                            row->count ? "a number" : "a size like 512M, 16G or 1T");
      *(uint64_t *) ((char *) l + row->field) = (uint64_t) n;
    }
  return 0;
}

void
limit_args_free (struct limit_args *a)
{
  free (a->max_layer_size);
  free (a->max_image_size);
  free (a->max_layer_entries);
}

/* "16 MiB", "1.5 GiB", "300 bytes" */
static void
size_text (uint64_t n, char buf[32])
{
  static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
  size_t u = 0;
  double v = (double) n;
  while (v >= 1024 && u + 1 < sizeof units / sizeof units[0])
    v /= 1024, u++;
  if (u == 0 || v == (double) (uint64_t) v)
    snprintf (buf, 32, "%llu %s", (unsigned long long) v, units[u]);
  else
    snprintf (buf, 32, "%.1f %s", v, units[u]);
}

/* Remove ".tmp-*" entries of dir that no live writer holds locked. */
static void
sweep_tmp (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    {
      int fd;
      if (!has_prefix (e->d_name, ".tmp-"))
        continue;
      fd = openat (dirfd (d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        continue;
      if (flock (fd, LOCK_EX | LOCK_NB) == 0)
        {
          cleanup_free char *p = xasprintf ("%s/%s", dir, e->d_name);
          remove_tree_mapped (p);
        }
      close (fd);
    }
  closedir (d);
}

void
ingest_sweep (void)
{
  cleanup_free char *b = blob_dir (), *l = layer_dir ();
  sweep_tmp (b);
  sweep_tmp (l);
}

bool
blob_present (const char *digest)
{
  cleanup_free char *p = store_blob_path (digest);
  return access (p, F_OK) == 0;
}

int
blob_tmp_open (char **path, cella_error_t *err)
{
  cleanup_free char *dir = blob_dir ();
  char *p = xasprintf ("%s/.tmp-XXXXXX", dir);
  int fd = mkostemp (p, O_CLOEXEC);
  if (fd < 0)
    {
      cella_error (err, errno, "create a temp file in `%s`", dir);
      free (p);
      return -1;
    }
  flock (fd, LOCK_EX);
  *path = p;
  return fd;
}

int
blob_commit (int fd, const char *tmp_path, const char *digest, cella_error_t *err)
{
  cleanup_free char *final = store_blob_path (digest);
  if (fsync (fd) < 0)
    return cella_error (err, errno, "sync `%s`", tmp_path);
  fchmod (fd, 0600);
  if (rename (tmp_path, final) < 0)
    return cella_error (err, errno, "store blob %s", digest);
  fsync_parent (final);
  return 0;
}

int
blob_put_mem (const void *buf, size_t len, char digest[72], cella_error_t *err)
{
  struct sha256 *h = sha256_new ();
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;
  sha256_update (h, buf, len);
  sha256_final (h, digest);
  if (blob_present (digest))
    return 0;
  fd = blob_tmp_open (&tmp, err);
  if (fd < 0)
    return -1;
  if (write_all (fd, buf, len) < 0 || blob_commit (fd, tmp, digest, err) < 0)
    {
      int e = errno;
      unlink (tmp);
      return err && *err ? -1 : cella_error (err, e, "write blob %s", digest);
    }
  return 0;
}

/* Hash src to its end without storing it (the store has the blob): the digest and size out. */
static int
hash_only (int src, char digest[72], int64_t *size, cella_error_t *err)
{
  uint64_t n;
  if (lseek (src, 0, SEEK_SET) < 0 && errno != ESPIPE)
    return cella_error (err, errno, "rewind the blob's source");
  if (sha256_fd (src, digest, &n, err) < 0)
    return -1;
  if (size)
    *size = (int64_t) n;
  return 0;
}

static int
copy_hashing (int src, int fd, const char *tmp, char digest[72], int64_t *size, cella_error_t *err)
{
  struct sha256 *h = sha256_new ();
  char buf[1 << 16];
  int64_t total = 0;
  ssize_t n;
  if (lseek (src, 0, SEEK_SET) < 0 && errno != ESPIPE)
    {
      sha256_free (h);
      return cella_error (err, errno, "rewind the blob's source");
    }
  while ((n = read (src, buf, sizeof buf)) > 0)
    {
      sha256_update (h, buf, (size_t) n);
      if (write_all (fd, buf, (size_t) n) < 0)
        {
          sha256_free (h);
          return cella_error (err, errno, "write `%s`", tmp);
        }
      total += n;
    }
  if (n < 0)
    {
      sha256_free (h);
      return cella_error (err, errno, "read the blob's source");
    }
  sha256_final (h, digest);
  if (size)
    *size = total;
  return 0;
}

int
blob_put_fd (int src, const char *expected, char digest[72], int64_t *size, cella_error_t *err)
{
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;
  if (expected && blob_present (expected))
    {
      /* nothing to store, but the source is checked all the same */
      if (hash_only (src, digest, size, err) < 0)
        return -1;
    }
  else
    {
      fd = blob_tmp_open (&tmp, err);
      if (fd < 0)
        return -1;
      if (copy_hashing (src, fd, tmp, digest, size, err) < 0)
        {
          unlink (tmp);
          return -1;
        }
    }
  if (expected && strcmp (expected, digest) != 0)
    {
      if (tmp)
        unlink (tmp);
      return cella_error (err, 0, "blob %s: digest mismatch (got %s): the source is damaged or was tampered with",
                          expected, digest);
    }
  if (tmp == NULL)
    return 0;
  if (blob_present (digest))
    {
      unlink (tmp);
      return 0;
    }
  if (blob_commit (fd, tmp, digest, err) < 0)
    {
      unlink (tmp);
      return -1;
    }
  return 0;
}

int
blob_read (const char *digest, size_t max, char **buf, size_t *len, cella_error_t *err)
{
  cleanup_free char *p = store_blob_path (digest);
  cleanup_close int fd = open (p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return cella_error (err, errno, "blob %s is not in the store", digest);
  if (fstat (fd, &st) < 0)
    return cella_error (err, errno, "blob %s", digest);
  if ((uint64_t) st.st_size > max)
    return cella_error (err, EFBIG, "blob %s: %lld bytes, more than the %zu a manifest or config may have", digest,
                        (long long) st.st_size, max);
  return read_all_fd (fd, buf, len, err);
}

bool
layer_media_type_ok (const char *mt)
{
  static const char *const ok[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
  };
  if (mt == NULL)
    return true; /* docker-archive and old OCI layouts leave it out */
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp (mt, ok[i]) == 0)
      return true;
  return false;
}

struct unpack_job {
  int bfd, dfd;
  const struct unpack_opts *o;
  struct unpack_stats *st;
};

static int
unpack_fn (void *ud, cella_error_t *err)
{
  struct unpack_job *j = ud;
  return layer_unpack (j->bfd, j->dfd, j->o, j->st, err);
}

/* ---- diff_ids of unpacked layers ---------------------------------------------------------------- */

static int
diff_id_read (const char *digest, char out[72])
{
  cleanup_free char *p = store_diff_id_path (digest), *buf = NULL;
  size_t len;
  if (read_file (p, &buf, &len, NULL) < 0 || len < 71)
    return -1;
  buf[71] = '\0';
  if (!digest_valid (buf))
    return -1;
  memcpy (out, buf, 72);
  return 0;
}

static int
diff_id_write (const char *digest, const char *diff_id, cella_error_t *err)
{
  cleanup_free char *p = store_diff_id_path (digest), *line = xasprintf ("%s\n", diff_id);
  return write_file_atomic (p, line, strlen (line), 0600, err);
}

/* The diff_id of a layer unpacked earlier: recorded then, or, in a store from before diffids/,
 * computed from its blob once and recorded. */
static int
known_diff_id (const char *digest, char out[72], cella_error_t *err)
{
  cleanup_free char *blob = store_blob_path (digest);
  cleanup_close int fd = -1;
  struct unpack_stats st;
  if (diff_id_read (digest, out) == 0)
    return 0;
  fd = open (blob, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "layer %s: blob `%s`", digest, blob);
  if (layer_diff_id (fd, 0, &st, err) < 0)
    return cella_error_wrap (err, "layer %s", digest);
  memcpy (out, st.diff_id, 72);
  return diff_id_write (digest, out, err);
}

static int
diff_id_check (const char *digest, const char *got, const char *want, cella_error_t *err)
{
  if (want == NULL || strcmp (got, want) == 0)
    return 0;
  return cella_error (err, 0,
                      "layer %s: its uncompressed tar is %s, but the image config's rootfs.diff_ids says %s: the image "
                      "is damaged or was tampered with",
                      digest, got, want);
}

/* ---- unpacking within the limits ------------------------------------------------------------------- */

/* The most bytes this layer may unpack: the layer limit, or what is left of the image's. */
static uint64_t
layer_budget (const struct ingest_limits *lim, bool *by_image)
{
  uint64_t cap = lim->layer_bytes, left;
  *by_image = false;
  if (lim->image_bytes == 0)
    return cap;
  left = lim->image_bytes > lim->used ? lim->image_bytes - lim->used : 0;
  if (cap == 0 || left < cap)
    {
      *by_image = true;
      return left;
    }
  return cap;
}

int
ingest_limit_error (const char *what, enum unpack_limit over, bool by_image, const struct ingest_limits *lim,
                    cella_error_t *err)
{
  char sz[32];
  if (over == UNPACK_OVER_ENTRIES)
    return cella_error (err, 0,
                        "%s has more than %llu entries, the limit per layer (raise it with --max-layer-entries or "
                        "$CELLA_MAX_LAYER_ENTRIES): refused, none of it was unpacked",
                        what, (unsigned long long) lim->layer_entries);
  if (by_image)
    {
      size_text (lim->image_bytes, sz);
      return cella_error (err, 0,
                          "%s: the image expands to more than %s, the limit per pull or import (raise it with "
                          "--max-image-size or $CELLA_MAX_IMAGE_SIZE): refused, none of it was unpacked",
                          what, sz);
    }
  size_text (lim->layer_bytes, sz);
  return cella_error (err, 0,
                      "%s expands to more than %s, the limit per layer (raise it with --max-layer-size or "
                      "$CELLA_MAX_LAYER_SIZE): refused, none of it was unpacked",
                      what, sz);
}

int
ingest_run_mapped (int (*fn) (void *ud, cella_error_t *err), void *ud, cella_error_t *err)
{
  return ns_run_mapped (fn, ud, err);
}

/* Unpack blob fd into the temp dir dfd (as root of a mapped user namespace when rootless with a
 * subordinate range, so that files keep their owners); the stats live in shared memory so that
 * the mapped child's diff_id comes back. */
static int
unpack_into (int bfd, int dfd, struct unpack_opts *o, struct unpack_stats *st, cella_error_t *err)
{
  struct unpack_job job = { bfd, dfd, o, st };
  o->mode = UNPACK_LAYER;
  o->user_xattr = !ingest_privileged ();
  o->set_owner = ingest_privileged () || geteuid () != 0;
  o->skip_devices = !ingest_privileged ();
  return ns_run_mapped (unpack_fn, &job, err);
}

static int
layer_unpack_new (const char *digest, const char *want, struct ingest_limits *lim, char diff_id[72], cella_error_t *err)
{
  cleanup_free char *final = store_layer_path (digest), *blob = store_blob_path (digest), *dir = layer_dir ();
  cleanup_free char *tmp = NULL, *what = xasprintf ("layer %s", digest);
  cleanup_close int bfd = -1, dfd = -1;
  struct unpack_opts o = { 0 };
  struct unpack_stats *st;
  struct stat sb;
  bool by_image;
  int rc = -1;
  bfd = open (blob, O_RDONLY | O_CLOEXEC);
  if (bfd < 0)
    return cella_error (err, errno, "layer %s: blob `%s`", digest, blob);
  o.max_bytes = layer_budget (lim, &by_image);
  o.max_entries = lim->layer_entries;
  if (by_image && o.max_bytes == 0)
    return ingest_limit_error (what, UNPACK_OVER_BYTES, true, lim, err);
  st = mmap (NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (st == MAP_FAILED)
    return cella_error (err, errno, "mmap");
  tmp = xasprintf ("%s/.tmp-%.12s-XXXXXX", dir, digest + 7);
  if (mkdtemp (tmp) == NULL)
    {
      cella_error (err, errno, "create a temp dir in `%s`", dir);
      goto out;
    }
  dfd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || flock (dfd, LOCK_EX) < 0)
    cella_error (err, errno, "open `%s`", tmp);
  else if (unpack_into (bfd, dfd, &o, st, err) < 0)
    {
      if (st->over != UNPACK_WITHIN_LIMITS)
        ingest_limit_error (what, st->over, by_image, lim, err);
      else
        cella_error_wrap (err, "unpack layer %s", digest);
    }
  else if (diff_id_check (digest, st->diff_id, want, err) == 0 && diff_id_write (digest, st->diff_id, err) == 0)
    {
      fchmod (dfd, 0755);
      syncfs (dfd);
      if (rename (tmp, final) == 0)
        {
          fsync_parent (final);
          rc = 0;
        }
      else if ((errno == ENOTEMPTY || errno == EEXIST) && stat (final, &sb) == 0)
        rc = 0; /* another pull unpacked it first */
      else
        cella_error (err, errno, "store layer %s", digest);
    }
  if (rc == 0)
    {
      lim->used += st->stream_bytes;
      if (diff_id)
        memcpy (diff_id, st->diff_id, 72);
    }
  if (tmp && access (tmp, F_OK) == 0)
    remove_tree_mapped (tmp);
out:
  munmap (st, sizeof *st);
  return rc;
}

int
layer_ensure (const char *digest, const char *want, struct ingest_limits *lim, char diff_id[72], cella_error_t *err)
{
  cleanup_free char *final = store_layer_path (digest);
  struct stat sb;
  char got[72];
  if (stat (final, &sb) < 0 || !S_ISDIR (sb.st_mode))
    return layer_unpack_new (digest, want, lim, diff_id, err);
  if (known_diff_id (digest, got, err) < 0 || diff_id_check (digest, got, want, err) < 0)
    return -1;
  if (diff_id)
    memcpy (diff_id, got, 72);
  return 0;
}

/* ---- records -------------------------------------------------------------------------------------- */

/* REPO@MANIFEST (and REPO@INDEX) for the repository of each name. */
static char **
digest_refs (const struct image_source *src)
{
  char **v = xzalloc (sizeof *v);
  for (size_t i = 0; src->names && src->names[i]; i++)
    {
      cleanup_free char *repo = image_name_repo (src->names[i]);
      cleanup_free char *m = xasprintf ("%s@%s", repo, src->manifest);
      strv_push (&v, m);
      if (src->repo_digest)
        {
          cleanup_free char *x = xasprintf ("%s@%s", repo, src->repo_digest);
          strv_push (&v, x);
        }
    }
  return v;
}

/* Each layer unpacked and checked against the config's diff_ids: r->layers filled. */
static int
register_layers (const struct image_source *src, const struct oci_manifest *m, char *const *diff_ids,
                 struct ingest_limits *lim, struct image_record *r, cella_error_t *err)
{
  size_t n = strv_len (diff_ids);
  if (n != m->nlayers)
    return cella_error (
        err, 0,
        "manifest %s lists %zu layers, but its config's rootfs.diff_ids has %zu: the image is damaged or "
        "was tampered with",
        src->manifest, m->nlayers, n);
  r->layers = xzalloc (sizeof *r->layers * (n + 1));
  for (size_t i = 0; i < n; i++)
    {
      const struct oci_descriptor *d = &m->layers[i];
      if (!layer_media_type_ok (d->media_type))
        return cella_error (err, 0, "layer %zu (%s) has unsupported media type %s", i + 1, d->digest, d->media_type);
      if (src->progress)
        fprintf (stderr, "Unpacking layer %.19s\n", d->digest);
      if (layer_ensure (d->digest, diff_ids[i], lim, NULL, err) < 0)
        return cella_error_wrap (err, "layer %zu of %zu", i + 1, n);
      r->layers[i] = (struct image_layer){ .digest = (char *) d->digest,
                                           .media_type = d->media_type,
                                           .size = d->size < 0 ? 0 : d->size,
                                           .diff_id = diff_ids[i] };
      r->nlayers++;
    }
  return 0;
}

int
image_register (const struct image_source *src, struct ingest_limits *lim, char id[72], cella_error_t *err)
{
  cleanup_free char *mbuf = NULL, *cbuf = NULL;
  cleanup_strv char **diff_ids = NULL, **drefs = NULL;
  struct oci_manifest m;
  struct image_record r = { 0 };
  size_t mlen, clen;
  int rc = -1;
  if (blob_read (src->manifest, INGEST_JSON_MAX, &mbuf, &mlen, err) < 0 || manifest_parse (mbuf, mlen, &m, err) < 0)
    return cella_error_wrap (err, "manifest %s", src->manifest);
  if (blob_read (m.config.digest, INGEST_JSON_MAX, &cbuf, &clen, err) < 0
      || config_diff_ids_parse (cbuf, clen, &diff_ids, err) < 0)
    cella_error_wrap (err, "config %s", m.config.digest);
  else if (register_layers (src, &m, diff_ids, lim, &r, err) == 0)
    {
      r.key = (char *) src->manifest;
      r.id = m.config.digest;
      r.manifest_digest = (char *) src->manifest;
      r.manifest_media_type = (char *) (src->media_type ? src->media_type
                                        : m.media_type  ? m.media_type
                                                        : MT_OCI_MANIFEST);
      r.repo_digest = (char *) src->repo_digest;
      r.source = (char *) src->source;
      r.created = time (NULL);
      drefs = digest_refs (src);
      if (image_record_write (&r, err) == 0 && image_refs_set (src->names, drefs, src->manifest, err) == 0)
        {
          snprintf (id, 72, "%s", m.config.digest);
          rc = 0;
        }
    }
  free (r.layers);
  manifest_clear (&m);
  return rc;
}

const char *
platform_arch (void)
{
  static const struct {
    const char *uname, *oci;
  } map[] = {
    { "x86_64", "amd64" }, { "aarch64", "arm64" },   { "armv7l", "arm" },  { "armv6l", "arm" },      { "i686", "386" },
    { "i386", "386" },     { "ppc64le", "ppc64le" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
  };
  static char arch[65];
  struct utsname u;
  if (arch[0])
    return arch;
  if (uname (&u) < 0)
    return "amd64";
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp (u.machine, map[i].uname) == 0)
      {
        snprintf (arch, sizeof arch, "%s", map[i].oci);
        return arch;
      }
  snprintf (arch, sizeof arch, "%s", u.machine);
  return arch;
}

int
index_pick (json_t *index, const char *platform, const char **digest, const char **media_type, cella_error_t *err)
{
  json_t *ms = json_object_get (index, "manifests"), *m;
  cleanup_free char *want = xstrdup (platform ? platform : "");
  cleanup_free char *offered = xstrdup ("");
  const char *os = "linux", *arch = platform_arch (), *variant = NULL;
  size_t i;
  if (platform)
    {
      char *s1 = strchr (want, '/'), *s2;
      if (s1 == NULL)
        return cella_error (err, 0, "--platform `%s`: expected OS/ARCH[/VARIANT], like linux/amd64", platform);
      *s1 = '\0';
      os = want;
      arch = s1 + 1;
      if ((s2 = strchr (s1 + 1, '/')) != NULL)
        {
          *s2 = '\0';
          variant = s2 + 1;
        }
    }
  json_array_foreach (ms, i, m)
    {
      json_t *p = json_object_get (m, "platform");
      const char *mos = json_string_value (json_object_get (p, "os"));
      const char *march = json_string_value (json_object_get (p, "architecture"));
      const char *mvar = json_string_value (json_object_get (p, "variant"));
      char *o2;
      if (mos && march && strcmp (mos, os) == 0 && strcmp (march, arch) == 0
          && (variant == NULL || (mvar && strcmp (mvar, variant) == 0)))
        {
          *digest = json_string_value (json_object_get (m, "digest"));
          *media_type = json_string_value (json_object_get (m, "mediaType"));
          if (*digest == NULL || !digest_valid (*digest))
            return cella_error (err, 0, "the index's entry for %s/%s has no valid digest", os, arch);
          return 0;
        }
      o2 = xasprintf ("%s%s%s/%s%s%s", offered, *offered ? ", " : "", mos ? mos : "?", march ? march : "?",
                      mvar ? "/" : "", mvar ? mvar : "");
      free (offered);
      offered = o2;
    }
  return cella_error (err, 0, "no image for %s/%s%s%s in the manifest list (it has: %s); choose one with --platform",
                      os, arch, variant ? "/" : "", variant ? variant : "", *offered ? offered : "nothing");
}
