/* Writing into the image store: blobs, layers, records (ingest.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "engine/paths.h"
#include "ingest.h"
#include "ns/ns.h"
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

int
blob_put_fd (int src, const char *expected, char digest[72], int64_t *size, cella_error_t *err)
{
  struct sha256 *h = sha256_new ();
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;
  char buf[1 << 16];
  int64_t total = 0;
  ssize_t n;
  if (expected && blob_present (expected))
    {
      struct stat st;
      cleanup_free char *p = store_blob_path (expected);
      sha256_free (h);
      strcpy (digest, expected);
      if (size)
        *size = stat (p, &st) == 0 ? st.st_size : -1;
      return 0;
    }
  fd = blob_tmp_open (&tmp, err);
  if (fd < 0)
    {
      sha256_free (h);
      return -1;
    }
  if (lseek (src, 0, SEEK_SET) < 0 && errno != ESPIPE)
    {
      sha256_free (h);
      unlink (tmp);
      return cella_error (err, errno, "rewind the blob's source");
    }
  while ((n = read (src, buf, sizeof buf)) > 0)
    {
      sha256_update (h, buf, (size_t) n);
      if (write_all (fd, buf, (size_t) n) < 0)
        {
          sha256_free (h);
          unlink (tmp);
          return cella_error (err, errno, "write `%s`", tmp);
        }
      total += n;
    }
  if (n < 0)
    {
      sha256_free (h);
      unlink (tmp);
      return cella_error (err, errno, "read the blob's source");
    }
  sha256_final (h, digest);
  if (expected && strcmp (expected, digest) != 0)
    {
      unlink (tmp);
      return cella_error (err, 0, "blob %s: digest mismatch (got %s): the source is damaged or was tampered with", expected,
                          digest);
    }
  if (size)
    *size = total;
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

int
layer_ensure (const char *digest, cella_error_t *err)
{
  cleanup_free char *final = store_layer_path (digest), *blob = store_blob_path (digest), *dir = layer_dir ();
  cleanup_free char *tmp = NULL;
  cleanup_close int bfd = -1, dfd = -1;
  struct unpack_opts o = { 0 };
  struct unpack_stats st = { 0 };
  struct stat sb;
  if (stat (final, &sb) == 0 && S_ISDIR (sb.st_mode))
    return 0;
  bfd = open (blob, O_RDONLY | O_CLOEXEC);
  if (bfd < 0)
    return cella_error (err, errno, "layer %s: blob `%s`", digest, blob);
  tmp = xasprintf ("%s/.tmp-%.12s-XXXXXX", dir, digest + 7);
  if (mkdtemp (tmp) == NULL)
    return cella_error (err, errno, "create a temp dir in `%s`", dir);
  dfd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || flock (dfd, LOCK_EX) < 0)
    {
      cella_error (err, errno, "open `%s`", tmp);
      remove_tree (tmp);
      return -1;
    }
  o.mode = UNPACK_LAYER;
  o.user_xattr = !ingest_privileged ();
  o.set_owner = ingest_privileged ();
  o.skip_devices = !ingest_privileged ();
  {
    /* rootless with a subordinate id range: unpack as root of a user namespace mapped like the
     * containers', so that files keep their owners */
    struct unpack_job job = { bfd, dfd, &o, &st };
    if (geteuid () != 0)
      o.set_owner = true;
    if (ns_run_mapped (unpack_fn, &job, err) < 0)
      {
        remove_tree_mapped (tmp);
        return cella_error_wrap (err, "unpack layer %s", digest);
      }
  }
  fchmod (dfd, 0755);
  syncfs (dfd);
  if (rename (tmp, final) < 0)
    {
      int e = errno;
      remove_tree_mapped (tmp);
      if ((e == ENOTEMPTY || e == EEXIST) && stat (final, &sb) == 0)
        return 0; /* another pull unpacked it first */
      return cella_error (err, e, "store layer %s", digest);
    }
  fsync_parent (final);
  return 0;
}

int
image_register (json_t *manifest, const char *mdigest, const char *media_type, const char *repo_digest,
                const char *source, char *const *names, char id[72], cella_error_t *err)
{
  json_t *config = json_object_get (manifest, "config"), *layers = json_object_get (manifest, "layers"), *l;
  struct image_record r = { 0 };
  const char *cd = json_string_value (json_object_get (config, "digest"));
  size_t i;
  int rc = -1;
  if (cd == NULL || !digest_valid (cd) || !json_is_array (layers))
    return cella_error (err, 0, "manifest %s: no valid config digest or layer list", mdigest);
  r.id = (char *) cd;
  r.manifest_digest = (char *) mdigest;
  r.manifest_media_type = (char *) media_type;
  r.repo_digest = (char *) repo_digest;
  r.source = (char *) source;
  r.created = time (NULL);
  r.layers = xzalloc (sizeof *r.layers * (json_array_size (layers) + 1));
  json_array_foreach (layers, i, l)
    {
      const char *d = json_string_value (json_object_get (l, "digest"));
      if (d == NULL || !digest_valid (d))
        {
          cella_error (err, 0, "manifest %s: layer %zu has no valid digest", mdigest, i);
          goto out;
        }
      r.layers[i].digest = (char *) d;
      r.layers[i].media_type = (char *) json_string_value (json_object_get (l, "mediaType"));
      r.layers[i].size = json_integer_value (json_object_get (l, "size"));
      r.nlayers++;
    }
  if (image_record_write (&r, err) < 0)
    goto out;
  for (i = 0; names && names[i]; i++)
    if (image_name_set (names[i], cd, err) < 0)
      goto out;
  strcpy (id, cd);
  rc = 0;
out:
  free (r.layers);
  return rc;
}

const char *
platform_arch (void)
{
  static const struct
  {
    const char *uname, *oci;
  } map[] = {
    { "x86_64", "amd64" }, { "aarch64", "arm64" }, { "armv7l", "arm" }, { "armv6l", "arm" }, { "i686", "386" },
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
      o2 = xasprintf ("%s%s%s/%s%s%s", offered, *offered ? ", " : "", mos ? mos : "?", march ? march : "?", mvar ? "/" : "",
                      mvar ? mvar : "");
      free (offered);
      offered = o2;
    }
  return cella_error (err, 0, "no image for %s/%s%s%s in the manifest list (it has: %s); choose one with --platform", os,
                      arch, variant ? "/" : "", variant ? variant : "", *offered ? offered : "nothing");
}
