/* cella save: images to an OCI archive (a tar of an OCI image layout). cella export: a container
 * as an image (its image's layers plus one layer of its changes) to an OCI archive. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "engine/container.h"
#include "image/ref.h"
#include "ingest.h"
#include "pack.h"
#include "plan/plan.h"
#include "tool.h"

#define MT_OCI_MANIFEST_S "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG_S "application/vnd.oci.image.config.v1+json"

struct oci_out {
  struct archive *a;
  char *path, *tmp;
  int fd;
  char **written; /* blob names already in the archive */
};

static int
out_open (struct oci_out *o, const char *path, cella_error_t *err)
{
  memset (o, 0, sizeof *o);
  o->fd = -1;
  if (path == NULL || strcmp (path, "-") == 0)
    {
      if (isatty (1))
        return cella_error (err, 0, "refusing to write an archive to a terminal: give -o FILE or redirect stdout");
      o->fd = dup (1);
    }
  else
    {
      o->path = xstrdup (path);
      /* an unpredictable name made with O_EXCL: -o may name a directory others can write */
      o->tmp = xasprintf ("%s.tmp-XXXXXX", path);
      o->fd = mkostemp (o->tmp, O_CLOEXEC);
      if (o->fd < 0)
        {
          int e = errno;
          free (o->tmp);
          o->tmp = NULL; /* nothing of ours to remove */
          return cella_error (err, e, "create a temp file next to `%s`", path);
        }
      if (fchmod (o->fd, 0644) < 0)
        return cella_error (err, errno, "create `%s`", o->tmp);
    }
  o->a = archive_write_new ();
  archive_write_set_format_pax_restricted (o->a);
  if (archive_write_open_fd (o->a, o->fd) != ARCHIVE_OK)
    return cella_error (err, 0, "write the archive: %s", archive_error_string (o->a));
  o->written = xzalloc (sizeof (char *));
  /* the directories too, owned like the files (readers that create them themselves chown them
   * to root, which fails for a rootless reader) */
  for (int i = 0; i < 2; i++)
    {
      struct archive_entry *e = archive_entry_new ();
      int r;
      archive_entry_set_pathname (e, i == 0 ? "blobs/" : "blobs/sha256/");
      archive_entry_set_filetype (e, AE_IFDIR);
      archive_entry_set_perm (e, 0755);
      archive_entry_set_uid (e, getuid ());
      archive_entry_set_gid (e, getgid ());
      r = archive_write_header (o->a, e);
      archive_entry_free (e);
      if (r != ARCHIVE_OK)
        return cella_error (err, 0, "write the archive: %s", archive_error_string (o->a));
    }
  return 0;
}

static int
out_entry (struct oci_out *o, const char *name, int64_t size, cella_error_t *err)
{
  struct archive_entry *e = archive_entry_new ();
  int r;
  archive_entry_set_pathname (e, name);
  archive_entry_set_size (e, size);
  archive_entry_set_filetype (e, AE_IFREG);
  archive_entry_set_perm (e, 0644);
  archive_entry_set_mtime (e, 0, 0);
  /* owned by whoever wrote it, as tar does: a rootless reader (skopeo) can then unpack it */
  archive_entry_set_uid (e, getuid ());
  archive_entry_set_gid (e, getgid ());
  r = archive_write_header (o->a, e);
  archive_entry_free (e);
  if (r != ARCHIVE_OK)
    return cella_error (err, 0, "write `%s` to the archive: %s", name, archive_error_string (o->a));
  return 0;
}

static int
out_mem (struct oci_out *o, const char *name, const void *buf, size_t len, cella_error_t *err)
{
  if (out_entry (o, name, (int64_t) len, err) < 0)
    return -1;
  if (len && archive_write_data (o->a, buf, len) != (ssize_t) len)
    return cella_error (err, 0, "write `%s` to the archive: %s", name, archive_error_string (o->a));
  return 0;
}

static int
out_file (struct oci_out *o, const char *name, int fd, cella_error_t *err)
{
  struct stat st;
  char buf[1 << 16];
  ssize_t n;
  if (fstat (fd, &st) < 0 || lseek (fd, 0, SEEK_SET) < 0)
    return cella_error (err, errno, "read `%s`", name);
  if (out_entry (o, name, st.st_size, err) < 0)
    return -1;
  while ((n = read (fd, buf, sizeof buf)) > 0)
    if (archive_write_data (o->a, buf, (size_t) n) != n)
      return cella_error (err, 0, "write `%s` to the archive: %s", name, archive_error_string (o->a));
  if (n < 0)
    return cella_error (err, errno, "read `%s`", name);
  return 0;
}

/* A blob of the store, once. */
static int
out_blob (struct oci_out *o, const char *digest, cella_error_t *err)
{
  cleanup_free char *name = xasprintf ("blobs/sha256/%s", digest + 7), *path = store_blob_path (digest);
  cleanup_close int fd = -1;
  for (size_t i = 0; o->written[i]; i++)
    if (strcmp (o->written[i], name) == 0)
      return 0;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cella_error (err, errno, "blob %s is missing from the store (`%s`): pull the image again", digest, path);
  if (out_file (o, name, fd, err) < 0)
    return -1;
  strv_push (&o->written, name);
  return 0;
}

static int
out_close (struct oci_out *o, json_t *index, bool ok, cella_error_t *err)
{
  int rc = ok ? 0 : -1;
  if (ok)
    {
      static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
      char *text = json_dumps (index, JSON_COMPACT);
      if (out_mem (o, "oci-layout", layout, sizeof layout - 1, err) < 0
          || out_mem (o, "index.json", text, strlen (text), err) < 0)
        rc = -1;
      free (text);
    }
  if (o->a)
    {
      if (archive_write_close (o->a) != ARCHIVE_OK && rc == 0)
        rc = cella_error (err, 0, "finish the archive: %s", archive_error_string (o->a));
      archive_write_free (o->a);
    }
  if (rc == 0 && o->fd >= 0 && o->path && fsync (o->fd) < 0)
    rc = cella_error (err, errno, "sync `%s`", o->tmp);
  if (o->fd >= 0)
    close (o->fd);
  if (o->tmp)
    {
      if (rc == 0 && rename (o->tmp, o->path) < 0)
        rc = cella_error (err, errno, "rename `%s` to `%s`", o->tmp, o->path);
      if (rc < 0)
        unlink (o->tmp);
    }
  free (o->path);
  free (o->tmp);
  strv_free (o->written);
  return rc;
}

static json_t *
index_entry (const char *digest, int64_t size, const char *refname)
{
  json_t *e
      = json_pack ("{s:s, s:s, s:I}", "mediaType", MT_OCI_MANIFEST_S, "digest", digest, "size", (json_int_t) size);
  if (refname)
    json_object_set_new (
        e, "annotations",
        json_pack ("{s:s, s:s}", "io.containerd.image.name", refname, "org.opencontainers.image.ref.name", refname));
  return e;
}

static int
blob_size (const char *digest, int64_t *size)
{
  cleanup_free char *p = store_blob_path (digest);
  struct stat st;
  if (stat (p, &st) < 0)
    return -1;
  *size = st.st_size;
  return 0;
}

struct save_opts {
  char *output;
};
#define O(f) offsetof (struct save_opts, f)
static const struct cli_option save_table[] = {
  { "output", 'o', OPT_STRING, O (output), "FILE", "Write to FILE (default: standard output, if not a terminal)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
#undef O

int
cmd_save (int argc, char **argv)
{
  struct save_opts o = { 0 };
  struct oci_out out;
  cella_error_t err = NULL;
  json_t *index = json_pack ("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
                             "application/vnd.oci.image.index.v1+json", "manifests");
  bool ok = false;
  cleanup_close int lock = -1;
  int status,
      first = cli_parse_command (save_table, &o, argc, argv, "cella save [-o FILE] IMAGE...",
                                 "Write images (their manifests, configs and layers) to an OCI archive: a tar of an "
                                 "OCI image layout that `cella image import`, podman load and skopeo read.",
                                 1, "an image is required", &status);
  if (first <= 0)
    {
      json_decref (index);
      free (o.output);
      return status;
    }
  /* held shared: a prune waits, so that what is being saved (the embedded busybox's nameless
   * import included) stays */
  if (store_init (&err) < 0 || (lock = store_lock (false, &err)) < 0)
    goto done;
  if (out_open (&out, o.output, &err) < 0)
    {
      out_close (&out, index, false, NULL);
      goto done;
    }
  for (int i = first; i < argc; i++)
    {
      struct image_record *r = NULL;
      int64_t msize = 0;
      const char *refname = NULL;
      bool embedded = false;
      int rc = tool_image_or_embedded (argv[i], &r, &embedded, &err);
      if (rc != 0)
        {
          out_close (&out, index, false, NULL);
          goto done;
        }
      for (size_t j = 0; r->names[j]; j++)
        if (strstr (argv[i], r->names[j]) || refname == NULL)
          refname = r->names[j];
      if (embedded)
        refname = "docker.io/library/busybox:latest"; /* what `busybox` means to run */
      if (out_blob (&out, r->manifest_digest, &err) < 0 || out_blob (&out, r->id, &err) < 0)
        rc = -1;
      for (size_t j = 0; rc == 0 && j < r->nlayers; j++)
        rc = out_blob (&out, r->layers[j].digest, &err);
      if (rc == 0 && blob_size (r->manifest_digest, &msize) == 0)
        json_array_append_new (json_object_get (index, "manifests"), index_entry (r->manifest_digest, msize, refname));
      image_record_free (r);
      if (rc < 0)
        {
          out_close (&out, index, false, NULL);
          goto done;
        }
    }
  ok = true;
  if (out_close (&out, index, true, &err) < 0)
    ok = false;
done:
  json_decref (index);
  free (o.output);
  return ok ? 0 : cella_error_print (&err);
}

/* ---- export ---------------------------------------------------------------------------------------------- */

struct tapx {
  struct sha256 *h;
  int64_t n;
};

static void
tapx_fn (const void *buf, size_t len, void *ud)
{
  struct tapx *t = ud;
  sha256_update (t->h, buf, len);
  t->n += (int64_t) len;
}

/* Pack dir into a temp file (gzip): fd, digest, diff_id, size. */
static int
pack_to_tmp (const char *dir, bool upper, int *fd_out, char digest[72], char diff_id[72], int64_t *size,
             cella_error_t *err)
{
  char tmpl[] = "/var/tmp/cella-export-XXXXXX";
  cleanup_close int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct pack_opts po = { .compression = PACK_GZIP, .overlay_upper = upper, .reproducible = true };
  struct tapx b = { sha256_new (), 0 }, r = { sha256_new (), 0 };
  int fd;
  if (dfd < 0)
    {
      sha256_free (b.h);
      sha256_free (r.h);
      return cella_error (err, errno, "open `%s`", dir);
    }
  fd = mkostemp (tmpl, O_CLOEXEC);
  if (fd < 0)
    {
      sha256_free (b.h);
      sha256_free (r.h);
      return cella_error (err, errno, "create a temp file in /var/tmp");
    }
  unlink (tmpl);
  if (layer_pack (dfd, fd, &po, tapx_fn, &b, tapx_fn, &r, err) < 0)
    {
      sha256_free (b.h);
      sha256_free (r.h);
      close (fd);
      return cella_error_wrap (err, "pack `%s`", dir);
    }
  sha256_final (b.h, digest);
  sha256_final (r.h, diff_id);
  *size = b.n;
  *fd_out = fd;
  return 0;
}

int
cmd_export (int argc, char **argv)
{
  struct save_opts o = { 0 };
  struct oci_out out = { .fd = -1 };
  cella_error_t err = NULL;
  cleanup_free char *id = NULL;
  struct plan *p = NULL;
  struct image_record *r = NULL;
  json_t *index = json_pack ("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
                             "application/vnd.oci.image.index.v1+json", "manifests");
  json_t *config = NULL, *layers = json_array (), *diff_ids, *manifest = NULL;
  int fds[2] = { -1, -1 }, nf = 0;
  char *cfg_text = NULL, *man_text = NULL;
  char cdigest[72], mdigest[72];
  bool ok = false;
  cleanup_close int lock = -1;
  int status,
      first = cli_parse_command (save_table, &o, argc, argv, "cella export [-o FILE] CONTAINER",
                                 "Write a container as an image to an OCI archive: its image's layers and one more "
                                 "layer with the container's changes.",
                                 1, "a container is required", &status);
  if (first <= 0)
    goto done_quiet;
  if (ctr_lookup (argv[first], &id, &err) < 0 || ctr_plan_load (id, &p, &err) < 0)
    goto done;
  if (p->image_id)
    {
      cleanup_free char *cp = NULL;
      int rc = image_record_read (p->image_id, &r, &err);
      if (rc > 0)
        cella_error (&err, 0, "export: the image %.19s of container %.12s is no longer in the store", p->image_id, id);
      if (rc != 0)
        goto done;
      cp = store_blob_path (r->id);
      config = json_load_file (cp, 0, NULL);
    }
  if (config == NULL)
    config = json_pack ("{s:s, s:s, s:{}, s:{s:s, s:[]}}", "architecture", platform_arch (), "os", "linux", "config",
                        "rootfs", "type", "layers", "diff_ids");
  diff_ids = json_object_get (json_object_get (config, "rootfs"), "diff_ids");
  if (!json_is_array (diff_ids))
    {
      cella_error (&err, 0, "export: the image config has no rootfs.diff_ids");
      goto done;
    }
  for (size_t i = 0; r && i < r->nlayers; i++)
    json_array_append_new (layers, json_pack ("{s:s, s:s, s:I}", "mediaType",
                                              r->layers[i].media_type ? r->layers[i].media_type
                                                                      : "application/vnd.oci.image.layer.v1.tar+gzip",
                                              "digest", r->layers[i].digest, "size", (json_int_t) r->layers[i].size));
  /* a root that is no store image (a directory, the embedded busybox) becomes a layer itself */
  if (r == NULL)
    {
      char d[72], di[72];
      int64_t sz;
      if (pack_to_tmp (p->rootfs, false, &fds[nf], d, di, &sz, &err) < 0)
        goto done;
      nf++;
      json_array_append_new (layers,
                             json_pack ("{s:s, s:s, s:I}", "mediaType", "application/vnd.oci.image.layer.v1.tar+gzip",
                                        "digest", d, "size", (json_int_t) sz));
      json_array_append_new (diff_ids, json_string (di));
    }
  if (p->root_upper)
    {
      char d[72], di[72];
      int64_t sz;
      if (pack_to_tmp (p->root_upper, true, &fds[nf], d, di, &sz, &err) < 0)
        goto done;
      nf++;
      json_array_append_new (layers,
                             json_pack ("{s:s, s:s, s:I}", "mediaType", "application/vnd.oci.image.layer.v1.tar+gzip",
                                        "digest", d, "size", (json_int_t) sz));
      json_array_append_new (diff_ids, json_string (di));
    }
  {
    char now[64];
    time_t t = time (NULL);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new (config, "created", json_string (now));
  }
  cfg_text = json_dumps (config, JSON_COMPACT);
  {
    struct sha256 *h = sha256_new ();
    sha256_update (h, cfg_text, strlen (cfg_text));
    sha256_final (h, cdigest);
  }
  manifest = json_pack ("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST_S,
                        "config", "mediaType", MT_OCI_CONFIG_S, "digest", cdigest, "size",
                        (json_int_t) strlen (cfg_text), "layers", layers);
  man_text = json_dumps (manifest, JSON_COMPACT);
  {
    struct sha256 *h = sha256_new ();
    sha256_update (h, man_text, strlen (man_text));
    sha256_final (h, mdigest);
  }
  /* held shared: a prune waits, so that what is being saved (the embedded busybox's nameless
   * import included) stays */
  if (store_init (&err) < 0 || (lock = store_lock (false, &err)) < 0)
    goto done;
  if (out_open (&out, o.output, &err) < 0)
    {
      out_close (&out, index, false, NULL);
      goto done;
    }
  {
    cleanup_free char *mname = xasprintf ("blobs/sha256/%s", mdigest + 7),
                      *cname = xasprintf ("blobs/sha256/%s", cdigest + 7);
    int rc = out_mem (&out, mname, man_text, strlen (man_text), &err);
    size_t base = r ? r->nlayers : 0;
    if (rc == 0)
      rc = out_mem (&out, cname, cfg_text, strlen (cfg_text), &err);
    for (size_t i = 0; rc == 0 && r && i < r->nlayers; i++)
      rc = out_blob (&out, r->layers[i].digest, &err);
    for (int i = 0; rc == 0 && i < nf; i++)
      {
        const char *d = json_string_value (json_object_get (json_array_get (layers, base + (size_t) i), "digest"));
        cleanup_free char *ln = xasprintf ("blobs/sha256/%s", d + 7);
        rc = out_file (&out, ln, fds[i], &err);
      }
    json_array_append_new (json_object_get (index, "manifests"),
                           index_entry (mdigest, (int64_t) strlen (man_text), NULL));
    if (out_close (&out, index, rc == 0, &err) < 0)
      goto done;
  }
  ok = true;
done:
  status = ok ? 0 : cella_error_print (&err);
done_quiet:
  for (int i = 0; i < nf; i++)
    close (fds[i]);
  free (cfg_text);
  free (man_text);
  json_decref (manifest);
  json_decref (config);
  json_decref (layers);
  json_decref (index);
  image_record_free (r);
  plan_free (p);
  free (o.output);
  return status;
}
