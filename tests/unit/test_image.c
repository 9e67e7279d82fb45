/* Unit tests for image references (docker's naming rules), the layered root view (whiteouts and
 * opaque dirs as overlayfs merges them) and the store's records, names and lookups. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util/paths.h"
#include "image/ref.h"
#include "image/store.h"
#include "plan/build.h"
#include "tap.h"
#include "errcheck.h"

static void
check_ref (const char *in, const char *registry, const char *repo, const char *tag, const char *digest)
{
  struct image_ref r = { 0 };
  cella_error_t err = NULL;
  int rc = image_ref_parse (in, &r, &err);
  CHECK (rc == 0 && strcmp (r.registry, registry) == 0 && strcmp (r.repo, repo) == 0
             && ((tag == NULL && r.tag == NULL) || (tag && r.tag && strcmp (r.tag, tag) == 0))
             && ((digest == NULL && r.digest == NULL) || (digest && r.digest && strcmp (r.digest, digest) == 0)),
         "ref `%s` → %s / %s : %s @ %s (got %s / %s : %s)", in, registry, repo, tag ? tag : "-", digest ? digest : "-",
         rc == 0 ? r.registry : "error", rc == 0 ? r.repo : (err ? err->msg : ""), rc == 0 && r.tag ? r.tag : "-");
  cella_error_free (&err);
  image_ref_clear (&r);
}

static void
test_refs (void)
{
  static const char d[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  cella_error_t err = NULL;
  struct image_ref r = { 0 };
  char *s;
  unsetenv ("CELLA_DEFAULT_REGISTRY");
  setenv ("XDG_CONFIG_HOME", "/nonexistent-cella-test", 1);
  check_ref ("busybox", "docker.io", "library/busybox", "latest", NULL);
  check_ref ("busybox:1.36", "docker.io", "library/busybox", "1.36", NULL);
  check_ref ("user/app", "docker.io", "user/app", "latest", NULL);
  check_ref ("docker.io/library/alpine:3", "docker.io", "library/alpine", "3", NULL);
  check_ref ("index.docker.io/x", "docker.io", "library/x", "latest", NULL);
  check_ref ("quay.io/org/img:v1", "quay.io", "org/img", "v1", NULL);
  check_ref ("localhost/img", "localhost", "img", "latest", NULL);
  check_ref ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000", "a/b/c", "t", NULL);
  check_ref ("localhost:5000/img", "localhost:5000", "img", "latest", NULL);
  {
    cleanup_free char *in = xasprintf ("reg.example:443/x@%s", d);
    check_ref (in, "reg.example:443", "x", NULL, d);
  }
  {
    cleanup_free char *in = xasprintf ("x:t@%s", d);
    check_ref (in, "docker.io", "library/x", "t", d);
  }
  CHECK (image_ref_parse ("Busybox", &r, &err) < 0 && err_has (&err, "not a valid repository name"),
         "uppercase refused");
  CHECK (image_ref_parse ("a//b", &r, &err) < 0 && err_has (&err, "`a//b`"), "empty component refused");
  CHECK (image_ref_parse ("x:bad tag", &r, &err) < 0 && err_has (&err, "not a valid tag"), "bad tag refused");
  CHECK (image_ref_parse ("x@sha256:123", &r, &err) < 0 && err_has (&err, "not a digest"), "short digest refused");
  CHECK (image_ref_parse ("", &r, &err) < 0 && err_has (&err, "empty"), "empty refused");
  CHECK (image_ref_parse ("-x", &r, &err) < 0 && err_has (&err, "-x"), "leading separator refused");
  /* found by fuzz/fuzz_options.c: a short name of 450 characters was accepted, and the name it
   * is stored under (docker.io/ and library/ added) was then too long to be read back */
  {
    char longname[451], *canon;
    memset (longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK (image_ref_parse (longname, &r, &err) < 0 && err_has (&err, "longer than 255"),
           "a name longer than 255 characters with its registry refused");
    memset (longname, 'a', 255 - strlen ("docker.io/library/"));
    longname[255 - strlen ("docker.io/library/")] = '\0';
    CHECK (image_ref_parse (longname, &r, &err) == 0, "a name of 255 characters with its registry");
    canon = image_ref_string (&r);
    image_ref_clear (&r);
    CHECK (image_ref_parse (canon, &r, &err) == 0, "its full form reads back");
    image_ref_clear (&r);
    free (canon);
  }
  setenv ("CELLA_DEFAULT_REGISTRY", "reg.local:5000", 1);
  /* the default is read once per process: a fresh parse after the first keeps docker.io */
  CHECK (strcmp (image_default_registry (), "docker.io") == 0, "the default registry is cached per process");
  unsetenv ("CELLA_DEFAULT_REGISTRY");
  CHECK (image_ref_parse ("quay.io/a/b:c", &r, NULL) == 0, "parse for the string forms");
  s = image_ref_string (&r);
  CHECK_STR (s, "quay.io/a/b:c", "image_ref_string");
  free (s);
  s = image_ref_name (&r);
  CHECK_STR (s, "quay.io/a/b:c", "image_ref_name");
  free (s);
  image_ref_clear (&r);
  s = image_name_short ("docker.io/library/busybox:latest");
  CHECK_STR (s, "busybox:latest", "short name of an official image");
  free (s);
  s = image_name_short ("docker.io/user/app:1");
  CHECK_STR (s, "user/app:1", "short name of a docker.io image");
  free (s);
}

static char *
tmpdir (void)
{
  char *d = xstrdup ("/tmp/cella-image-test-XXXXXX");
  if (mkdtemp (d) == NULL)
    abort ();
  return d;
}

static void
put (const char *dir, const char *path, const char *text)
{
  cleanup_free char *p = xasprintf ("%s/%s", dir, path);
  int fd = open (p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (fd < 0 || write (fd, text, strlen (text)) < 0)
    abort ();
  close (fd);
}

static void
mk (const char *dir, const char *path)
{
  cleanup_free char *p = xasprintf ("%s/%s", dir, path);
  mkdir (p, 0755);
}

static bool
view_has (const struct root_view *v, const char *path, const char *want)
{
  int fd = root_view_openat (v, path, O_RDONLY);
  char buf[64] = "";
  ssize_t n;
  if (fd < 0)
    return want == NULL;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n < 0)
    return false;
  buf[n] = '\0';
  return want && strcmp (buf, want) == 0;
}

static void
test_root_view (void)
{
  cleanup_free char *base = tmpdir ();
  cleanup_free char *bottom = xasprintf ("%s/l1", base), *mid = xasprintf ("%s/l2", base),
                    *top = xasprintf ("%s/l3", base);
  char *layers[] = { top, mid, NULL };
  struct root_view v;
  cella_error_t err = NULL;
  mkdir (bottom, 0755);
  mkdir (mid, 0755);
  mkdir (top, 0755);
  mk (bottom, "etc");
  put (bottom, "etc/passwd", "bottom");
  put (bottom, "etc/gone", "bottom");
  mk (bottom, "opq");
  put (bottom, "opq/old", "bottom");
  mk (mid, "etc");
  put (mid, "etc/passwd", "mid");
  mk (top, "etc");
  mk (top, "opq");
  put (top, "opq/new", "top");
  {
    cleanup_free char *wh = xasprintf ("%s/etc/gone", top);
    bool can_whiteout = mknod (wh, S_IFCHR | 0000, makedev (0, 0)) == 0;
    cleanup_free char *opq = xasprintf ("%s/opq", top);
    bool can_xattr = setxattr (opq, "user.overlay.opaque", "y", 1, 0) == 0;
    CHECK (root_view_open (&v, layers, bottom, &err) == 0, "open a three-layer view");
    CHECK (view_has (&v, "/etc/passwd", "mid"), "the top-most layer that has a file wins");
    CHECK (view_has (&v, "etc/passwd", "mid"), "relative paths too");
    if (can_whiteout)
      CHECK (view_has (&v, "/etc/gone", NULL), "a whiteout hides the file below");
    else
      tap_skip ("mknod of a whiteout refused here", "a whiteout hides the file below");
    if (can_xattr)
      {
        CHECK (view_has (&v, "/opq/old", NULL), "an opaque dir hides the lower layers' entries");
        CHECK (view_has (&v, "/opq/new", "top"), "and keeps its own");
      }
    else
      tap_skip ("user xattrs not supported on /tmp", "opaque dirs");
    CHECK (view_has (&v, "/nosuch", NULL) && errno == ENOENT, "a missing file is ENOENT");
    root_view_close (&v);
  }
  CHECK (root_view_open (&v, NULL, "/nonexistent-cella", &err) < 0 && err_has (&err, "/nonexistent-cella"),
         "a missing layer is an error naming it");
  remove_tree (base);
}

#define D(c)                                                                                                           \
  "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
      c c c c c c c c c c c
static const char id1[] = D ("1"), l1[] = D ("2"), l2[] = D ("3"), m1[] = D ("4"), x1[] = D ("5"), x2[] = D ("6");

static struct image_record *
found (const char *ref)
{
  struct image_record *got = NULL;
  cella_error_t err = NULL;
  int r = image_lookup (ref, &got, &err);
  if (r < 0)
    printf ("#   lookup %s: %s\n", ref, err->msg);
  cella_error_free (&err);
  return r == 0 ? got : NULL;
}

/* found (ref) is the record of key (NULL: nothing is found). */
static bool
finds (const char *ref, const char *key)
{
  struct image_record *got = found (ref);
  bool ok = key ? got && strcmp (got->key, key) == 0 : got == NULL;
  if (!ok)
    printf ("#   %s found %s\n", ref, got ? got->key : "nothing");
  image_record_free (got);
  return ok;
}

static void
test_store (void)
{
  cleanup_free char *base = tmpdir ();
  struct image_layer layers[]
      = { { (char *) l1, (char *) "application/vnd.oci.image.layer.v1.tar+gzip", 10, (char *) x1 },
          { (char *) l2, NULL, 20, (char *) x2 } };
  struct image_record rec = { .key = (char *) m1,
                              .id = (char *) id1,
                              .manifest_digest = (char *) m1,
                              .layers = layers,
                              .nlayers = 2,
                              .source = (char *) "test" };
  struct image_record *got = NULL;
  cella_error_t err = NULL;
  cleanup_strv char **dirs = NULL;
  setenv ("CELLA_ROOT", base, 1);
  unsetenv ("CELLA_DEFAULT_REGISTRY");
  CHECK (image_record_write (&rec, &err) == 0, "write a record");
  {
    cleanup_free char *p = xasprintf ("%s/images/records/%s.json", base, m1 + 7);
    CHECK (access (p, F_OK) == 0, "the record is named by the manifest digest");
  }
  {
    char *const names[] = { (char *) "docker.io/library/x:latest", NULL };
    char *const drefs[] = { (char *) "docker.io/library/x@" D ("4"), NULL };
    CHECK (image_refs_set (names, drefs, m1, &err) == 0, "name it");
  }
  got = found ("x");
  CHECK (got && strcmp (got->key, m1) == 0 && strcmp (got->id, id1) == 0 && got->nlayers == 2 && got->size == 30
             && got->layers[0].diff_id && strcmp (got->layers[0].diff_id, x1) == 0,
         "look it up by short name");
  CHECK (got && strv_len (got->names) == 1 && strcmp (got->names[0], "docker.io/library/x:latest") == 0, "its names");
  image_record_free (got);
  CHECK (finds ("111111", m1), "by id prefix");
  CHECK (finds ("444444", m1), "by manifest digest prefix");
  CHECK (finds ("x@" D ("4"), m1), "by NAME@manifest digest");
  CHECK (finds ("x:other@" D ("4"), m1), "NAME:TAG@DIGEST: the tag plays no part");
  CHECK (finds ("y@" D ("4"), NULL), "another repository's NAME@DIGEST is not this image");
  CHECK (finds ("x@" D ("1"), NULL), "NAME@DIGEST of a digest it does not have");
  CHECK (finds ("y", NULL), "an unknown name is not found");

  /* write-once */
  CHECK (image_record_write (&rec, &err) == 0, "writing the same record again is fine");
  {
    struct image_layer evil[] = { { (char *) l1, NULL, 10, (char *) x1 }, { (char *) l1, NULL, 10, (char *) x1 } };
    struct image_record other = rec;
    other.layers = evil;
    CHECK (image_record_write (&other, &err) < 0 && err_has (&err, "other content"),
           "another image under that key is refused");
    other.layers = layers;
    other.id = (char *) l2;
    CHECK (image_record_write (&other, &err) < 0 && err_has (&err, "other content"),
           "another config under that key too");
    other.key = (char *) x2;
    CHECK (image_record_write (&other, &err) < 0 && err_has (&err, "manifest digest"),
           "a key that is not its manifest");
  }
  CHECK (finds ("x", m1) && (got = found ("x")) && got->nlayers == 2 && strcmp (got->layers[1].digest, l2) == 0,
         "the record is unchanged");
  image_record_free (got);

  CHECK (image_layer_dirs (&rec, &dirs, &err) < 0 && err_has (&err, "not unpacked"), "missing layer dirs are an error");
  {
    cleanup_free char *p1 = store_layer_path (l1), *p2 = store_layer_path (l2), *d1 = store_diff_id_path (l1);
    mkdir_p (p1, 0755, NULL);
    mkdir_p (p2, 0755, NULL);
    write_file_atomic (d1, x1, strlen (x1), 0600, NULL);
    CHECK (image_layer_dirs (&rec, &dirs, &err) == 0 && strv_len (dirs) == 2 && strcmp (dirs[0], p2) == 0,
           "layer dirs top-most first");
  }
  CHECK (image_name_remove ("docker.io/library/x:latest", &err) == 0, "remove the name");
  CHECK (image_name_remove ("docker.io/library/x:latest", &err) == 1, "removing it again says so");
  CHECK (finds ("x@" D ("4"), m1), "the digest reference outlives the name");
  {
    int64_t freed = 0;
    struct image_record **all = NULL;
    size_t n = 0;
    cleanup_free char *p1 = store_layer_path (l1), *d1 = store_diff_id_path (l1);
    CHECK (image_prune (false, &freed, &err) == 0, "prune");
    CHECK (image_list (&all, &n, &err) == 0 && n == 0, "the unnamed record is gone");
    image_list_free (all, n);
    CHECK (access (p1, F_OK) < 0 && access (d1, F_OK) < 0, "and its layers, and their diff_ids");
    CHECK (finds ("x@" D ("4"), NULL), "and its digest references");
  }
  fflush (stdout);
  remove_tree (base);
}

/* A store from before records were keyed by manifest digest: records named by config digest,
 * names pointing at config digests. It reads as it is. */
static void
test_store_before_manifest_keys (void)
{
  cleanup_free char *base = xstrdup (paths_data_root ()); /* cached: test_store's, emptied */
  cleanup_free char *rec = NULL, *idx = NULL;
  cella_error_t err = NULL;
  struct image_record *got = NULL;
  CHECK (store_init (&err) == 0, "a store");
  rec = xasprintf ("%s/images/records/%s.json", base, id1 + 7);
  idx = xasprintf ("%s/images/index.json", base);
  {
    cleanup_free char *text = xasprintf ("{\"id\": \"%s\", \"manifest\": \"%s\", \"layers\": [{\"digest\": \"%s\", "
                                         "\"size\": 5}], \"created\": 1, \"source\": \"pull\"}",
                                         id1, m1, l1);
    cleanup_free char *names = xasprintf ("{\"names\": {\"docker.io/library/old:1\": \"%s\"}}", id1);
    CHECK (write_file_atomic (rec, text, strlen (text), 0600, NULL) == 0
               && write_file_atomic (idx, names, strlen (names), 0600, NULL) == 0,
           "an old record and index");
  }
  got = found ("old:1");
  CHECK (got && strcmp (got->key, id1) == 0 && strcmp (got->id, id1) == 0 && got->nlayers == 1
             && got->layers[0].diff_id == NULL,
         "an old record is found by name; its key is its config digest");
  image_record_free (got);
  CHECK (finds ("old@" D ("4"), id1), "NAME@DIGEST finds it by its manifest digest and its name's repository");
  CHECK (finds ("other@" D ("4"), NULL), "but not for another repository");
  CHECK (finds (id1, id1), "by id");
  {
    cleanup_free char *text = xasprintf ("{\"id\": \"%s\", \"manifest\": \"%s\", \"layers\": []}", id1, m1);
    cleanup_free char *p = xasprintf ("%s/images/records/%s.json", base, x1 + 7);
    write_file_atomic (p, text, strlen (text), 0600, NULL);
    CHECK (image_record_read (x1, &got, &err) < 0 && err_has (&err, "not the record of"),
           "a record under a name that is neither its manifest nor its id is refused");
  }
  remove_tree (base);
}

int
main (void)
{
  test_refs ();
  test_root_view ();
  test_store ();
  test_store_before_manifest_keys ();
  return tap_done ();
}
