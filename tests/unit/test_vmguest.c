/* Unit tests for the guest side of the vm backend: the guest config text (round
 * trips, every malformed-input error, limits) and the initramfs writer (newc
 * cpio parsed back). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tap.h"
#include "vm/guest.h"

static bool
strv_eq (char **a, char **b)
{
  size_t i;
  for (i = 0; a && b && a[i] && b[i]; i++)
    if (strcmp (a[i], b[i]) != 0)
      return false;
  return (a == NULL || a[i] == NULL) && (b == NULL || b[i] == NULL);
}

static void
test_roundtrip (void)
{
  char *argv[] = { "sh", "-c", "echo 'a b'\n\tx=1 %41 %", "", "ünï\x7f\x01", NULL };
  char *env[] = { "PATH=/bin:/usr/bin", "A=b=c", "SPACE=a b", "NL=x\ny", "EMPTY=", NULL };
  gid_t groups[] = { 10, 20, 4294967294u };
  struct vm_mount mounts[] = { { "vol0", "/data", true }, { "tag with space", "/my dir/x%y", false } };
  struct vm_guest_config c = { .argv = argv,
                               .env = env,
                               .cwd = "/work dir",
                               .uid = 1000,
                               .gid = 4294967294u,
                               .groups = groups,
                               .ngroups = 3,
                               .hostname = "h o",
                               .user = "no body:wheel",
                               .root_dev = "/dev/vda",
                               .root_fstype = "ext4",
                               .root_ro = true,
                               .mounts = mounts,
                               .nmounts = 2,
                               .tty = true };
  struct vm_guest_config d;
  cella_error_t err = NULL;
  size_t len;
  char *text = guestcfg_format (&c, &len);

  CHECK (len == strlen (text), "format: length matches the text");
  CHECK (strncmp (text, "cella-vm-config 1\n", 18) == 0, "format: magic first line");
  CHECK (len >= 4 && strcmp (text + len - 4, "end\n") == 0, "format: end line last");
  /* Every line is printable ASCII: escaping leaves no raw control,
   * space-in-field or high byte. */
  bool clean = true;
  for (size_t i = 0; i < len; i++)
    if ((text[i] < 0x20 && text[i] != '\n') || (unsigned char) text[i] >= 0x7f)
      clean = false;
  CHECK (clean, "format: escaped output is printable ASCII");

  int r = guestcfg_parse (text, len, &d, &err);
  CHECK (r == 0, "parse: round trip parses%s%s", err ? ": " : "", err ? err->msg : "");
  CHECK (strv_eq (d.argv, argv), "round trip: argv with spaces, newlines, %%, empty, high bytes");
  CHECK (strv_eq (d.env, env), "round trip: env with =, spaces, newlines, empty value");
  CHECK_STR (d.cwd, "/work dir", "round trip: cwd");
  CHECK (d.uid == 1000 && d.gid == 4294967294u, "round trip: uid, gid");
  CHECK (d.ngroups == 3 && d.groups[0] == 10 && d.groups[1] == 20 && d.groups[2] == 4294967294u, "round trip: groups");
  CHECK_STR (d.hostname, "h o", "round trip: hostname");
  CHECK_STR (d.user, "no body:wheel", "round trip: user (exec -u)");
  CHECK_STR (d.root_dev, "/dev/vda", "round trip: root_dev");
  CHECK_STR (d.root_fstype, "ext4", "round trip: root_fstype");
  CHECK (d.root_ro && d.tty, "round trip: root_ro, tty");
  CHECK (d.nmounts == 2 && strcmp (d.mounts[0].tag, "vol0") == 0 && strcmp (d.mounts[0].target, "/data") == 0
             && d.mounts[0].ro && strcmp (d.mounts[1].tag, "tag with space") == 0
             && strcmp (d.mounts[1].target, "/my dir/x%y") == 0 && !d.mounts[1].ro,
         "round trip: mounts");
  guestcfg_free (&d);
  guestcfg_free (&d); /* idempotent */
  free (text);

  /* What init applies: tmpfs, capabilities, no_new_privs. */
  struct vm_tmpfs tm[] = { { "/scratch dir", 8 << 20, 01770, MS_NOSUID | MS_NODEV | MS_NOEXEC }, { "/t", 0, 0, 0 } };
  char *argv3[] = { "sh", NULL };
  struct vm_guest_config x = { .argv = argv3,
                               .tmpfs = tm,
                               .ntmpfs = 2,
                               .caps_set = true,
                               .caps = 0xa80425fbULL,
                               .no_new_privs = true,
                               .export_root = true };
  text = guestcfg_format (&x, &len);
  r = guestcfg_parse (text, len, &d, &err);
  CHECK (r == 0 && d.ntmpfs == 2 && strcmp (d.tmpfs[0].target, "/scratch dir") == 0 && d.tmpfs[0].size == 8 << 20
             && d.tmpfs[0].mode == 01770 && d.tmpfs[0].flags == (MS_NOSUID | MS_NODEV | MS_NOEXEC)
             && d.tmpfs[1].size == 0 && d.tmpfs[1].mode == 0 && d.tmpfs[1].flags == 0,
         "round trip: tmpfs target, size, mode, flags");
  CHECK (r == 0 && d.caps_set && d.caps == 0xa80425fbULL && d.no_new_privs, "round trip: caps, nnp");
  CHECK (r == 0 && d.export_root, "round trip: export (cella build's RUN)");
  guestcfg_free (&d);
  free (text);

  /* The minimal config: no root (initramfs root), no env, nothing optional. */
  char *argv2[] = { "true", NULL };
  struct vm_guest_config m = { .argv = argv2 };
  text = guestcfg_format (&m, &len);
  r = guestcfg_parse (text, len, &d, &err);
  CHECK (r == 0 && d.root_dev == NULL && d.root_fstype == NULL && d.env && d.env[0] == NULL && d.cwd == NULL
             && d.hostname == NULL && d.user == NULL && d.nmounts == 0 && !d.tty && d.uid == 0,
         "minimal config: root_dev NULL, env empty, defaults");
  guestcfg_free (&d);
  free (text);

  /* A root line without fstype in the struct defaults to ext4. */
  struct vm_guest_config n = { .argv = argv2, .root_dev = "/dev/vdb" };
  text = guestcfg_format (&n, &len);
  r = guestcfg_parse (text, len, &d, &err);
  CHECK (r == 0 && strcmp (d.root_fstype, "ext4") == 0 && !d.root_ro, "root without fstype: ext4, rw");
  guestcfg_free (&d);
  free (text);
}

/* Parse `body` wrapped in the magic and end lines (unless raw) and expect an
 * error naming `want`. */
static void
expect_error (const char *body, bool raw, const char *want, const char *what)
{
  struct vm_guest_config d;
  cella_error_t err = NULL;
  char *text = raw ? strdup (body) : NULL;
  if (!raw && asprintf (&text, "cella-vm-config 1\nargv x\n%send\n", body) < 0)
    abort ();
  memset (&d, 0x55, sizeof d);
  int r = guestcfg_parse (text, strlen (text), &d, &err);
  bool ok = r < 0 && err && strstr (err->msg, want) != NULL && d.argv == NULL && d.nmounts == 0;
  tap_check (ok, "error: %s", what);
  if (!ok)
    printf ("#   got: r=%d msg=%s\n#   want: %s\n", r, err ? err->msg : "(none)", want);
  cella_error_free (&err);
  free (text);
}

static void
test_errors (void)
{
  expect_error ("", true, "empty", "empty text");
  expect_error ("cella-vm-config 2\nargv x\nend\n", true, "first line", "wrong version");
  expect_error ("hello\n", true, "first line", "not a config");
  expect_error ("cella-vm-config 1\nargv x\n", true, "no `end` line", "truncated before end");
  expect_error ("cella-vm-config 1\nargv x\nend", true, "no newline", "last line without newline");
  expect_error ("cella-vm-config 1\nargv x\nenv A=", true, "line 3: no newline", "cut inside a line");
  expect_error ("cella-vm-config 1\nend\n", true, "no `argv`", "no argv");
  expect_error ("cella-vm-config 1\nargv x\nend\nargv y\n", true, "line 4: text after `end`", "text after end");
  expect_error ("bogus 1\n", false, "line 3: unknown key `bogus`", "unknown key");
  expect_error ("argv\n", false, "line 3: expected `key value`", "key without value");
  expect_error (" x\n", false, "line 3: expected `key value`", "empty key");
  expect_error ("averyveryverylongkey x\n", false, "expected `key value`", "overlong key");
  expect_error ("argv a b\n", false, "`argv` takes 1 value", "two fields for argv");
  expect_error ("argv a%2\n", false, "line 3: `argv`: bad %-escape", "short escape at end");
  expect_error ("argv a%zz\n", false, "bad %-escape", "non-hex escape");
  expect_error ("argv %00\n", false, "NUL byte (%00)", "escaped NUL");
  expect_error ("env NOEQUALS\n", false, "`env` is not KEY=VALUE", "env without =");
  expect_error ("env =x\n", false, "`env` is not KEY=VALUE", "env with empty key");
  expect_error ("cwd relative\n", false, "`cwd` must be an absolute path", "relative cwd");
  expect_error ("cwd /a/../b\n", false, "`cwd` must be an absolute path without `..`", "cwd with ..");
  expect_error ("cwd /a\ncwd /b\n", false, "line 4: duplicate `cwd`", "duplicate cwd");
  expect_error ("hostname a\nhostname b\n", false, "duplicate `hostname`", "duplicate hostname");
  expect_error ("user a\nuser b\n", false, "duplicate `user`", "duplicate user");
  expect_error ("tmpfs /x 0 1777 1073741824\n", false, "`tmpfs`: expected",
                "tmpfs with a mount flag beyond ro/nosuid/nodev/noexec");
  expect_error ("tmpfs / 0 1777 0\n", false, "`tmpfs`: target", "tmpfs on /");
  expect_error ("tmpfs /x 0 9 0\n", false, "`tmpfs`: expected", "tmpfs with a non-octal mode");
  expect_error ("caps zz\n", false, "bad `caps`", "caps not hex");
  expect_error ("nnp 2\n", false, "bad `nnp`", "nnp other than 1");
  expect_error ("export 0\n", false, "bad `export`", "export other than 1");
  expect_error ("hostname \n", false, "`hostname` must be 1 to 64 bytes", "empty hostname");
  expect_error ("hostname "
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                false, "`hostname` must be 1 to 64 bytes", "65-byte hostname");
  expect_error ("uid abc\n", false, "`uid`: not a number: `abc`", "uid not a number");
  expect_error ("uid -1\n", false, "`uid`: not a number", "negative uid");
  expect_error ("uid 4294967295\n", false, "`uid`: not a valid id", "uid (uid_t)-1");
  expect_error ("gid 99999999999999999999\n", false, "`gid`: not a valid id", "gid overflow");
  expect_error ("uid 12x\n", false, "`uid`: not a valid id: `12x`", "uid with trailing junk");
  expect_error ("uid 1\nuid 2\n", false, "duplicate `uid`", "duplicate uid");
  expect_error ("group x\n", false, "`group`: not a number", "bad group");
  expect_error ("tty 2\n", false, "`tty` must be 0 or 1", "bad tty");
  expect_error ("tty 1\ntty 0\n", false, "duplicate `tty`", "duplicate tty");
  expect_error ("root /dev/vda ext4\n", false, "`root` takes 3 values", "root with 2 fields");
  expect_error ("root /dev/vda ext4 rx\n", false, "`root`: mode must be `ro` or `rw`", "root bad mode");
  expect_error ("root vda ext4 rw\n", false, "`root`: device must be an absolute path", "root relative dev");
  expect_error ("root /dev/vda  rw\n", false, "`root`: device and fstype must not be empty", "root empty fstype");
  expect_error ("root /dev/vda ext4 rw\nroot /dev/vdb ext4 rw\n", false, "line 4: `root`: duplicate `root`",
                "duplicate root");
  expect_error ("mount t /x\n", false, "`mount` takes 3 values", "mount with 2 fields");
  expect_error ("mount t /x ro extra\n", false, "`mount` takes 3 values", "mount with 4 fields");
  expect_error ("mount  /x ro\n", false, "`mount`: tag must not be empty", "mount empty tag");
  expect_error ("mount t x ro\n", false, "`mount`: target must be an absolute path", "mount relative target");
  expect_error ("mount t / ro\n", false, "`mount`: target must be", "mount on /");
  expect_error ("mount t /a/.. ro\n", false, "`mount`: target must be", "mount target with ..");
  expect_error ("mount t /a RO\n", false, "`mount`: mode must be `ro` or `rw`", "mount bad mode");

  /* A NUL byte inside the text. */
  {
    static const char t[] = "cella-vm-config 1\nargv x\0y\nend\n";
    struct vm_guest_config d;
    cella_error_t err = NULL;
    int r = guestcfg_parse (t, sizeof t - 1, &d, &err);
    CHECK (r < 0 && err && strstr (err->msg, "NUL byte"), "error: raw NUL byte in the text");
    cella_error_free (&err);
  }
}

static void
test_limits (void)
{
  struct vm_guest_config d;
  cella_error_t err = NULL;
  size_t cap = 64 << 20, len = 0;
  char *t = malloc (cap);

  /* Over the byte limit. */
  len = (size_t) snprintf (t, cap, "cella-vm-config 1\nargv ");
  memset (t + len, 'a', GUESTCFG_MAX_BYTES);
  len += GUESTCFG_MAX_BYTES;
  len += (size_t) snprintf (t + len, cap - len, "\nend\n");
  CHECK (guestcfg_parse (t, len, &d, &err) < 0 && strstr (err->msg, "larger than"), "limit: text size");
  cella_error_free (&err);

  /* Exactly GUESTCFG_MAX_STRINGS argv entries pass; one more fails. */
  len = (size_t) snprintf (t, cap, "cella-vm-config 1\n");
  for (int i = 0; i < GUESTCFG_MAX_STRINGS; i++)
    len += (size_t) snprintf (t + len, cap - len, "argv %d\n", i);
  len += (size_t) snprintf (t + len, cap - len, "end\n");
  int r = guestcfg_parse (t, len, &d, &err);
  CHECK (r == 0 && d.argv[GUESTCFG_MAX_STRINGS - 1] && d.argv[GUESTCFG_MAX_STRINGS] == NULL,
         "limit: %d argv entries accepted", GUESTCFG_MAX_STRINGS);
  guestcfg_free (&d);
  len -= 4;
  len += (size_t) snprintf (t + len, cap - len, "argv x\nend\n");
  CHECK (guestcfg_parse (t, len, &d, &err) < 0 && strstr (err->msg, "more than 65536 `argv`"),
         "limit: one argv entry too many");
  cella_error_free (&err);

  /* Mounts. */
  len = (size_t) snprintf (t, cap, "cella-vm-config 1\nargv x\n");
  for (int i = 0; i <= GUESTCFG_MAX_MOUNTS; i++)
    len += (size_t) snprintf (t + len, cap - len, "mount t%d /m%d rw\n", i, i);
  len += (size_t) snprintf (t + len, cap - len, "end\n");
  CHECK (guestcfg_parse (t, len, &d, &err) < 0 && strstr (err->msg, "too many mounts"), "limit: mounts");
  cella_error_free (&err);

  /* Groups. */
  len = (size_t) snprintf (t, cap, "cella-vm-config 1\nargv x\n");
  for (int i = 0; i <= GUESTCFG_MAX_GROUPS; i++)
    len += (size_t) snprintf (t + len, cap - len, "group %d\n", i);
  len += (size_t) snprintf (t + len, cap - len, "end\n");
  CHECK (guestcfg_parse (t, len, &d, &err) < 0 && strstr (err->msg, "more than 65536 groups"), "limit: groups");
  cella_error_free (&err);
  free (t);
}

/* ---- initramfs
 * ----------------------------------------------------------------------------
 */

struct centry {
  char name[256];
  unsigned mode, uid, gid, size, rmaj, rmin;
  char data[64];
};

/* Parse a newc archive back, checking magic, hex fields and 4-byte alignment;
 * -1 on a bad one. */
static int
cpio_parse (const char *buf, size_t len, struct centry *out, int max, bool *aligned)
{
  size_t off = 0;
  int n = 0;
  *aligned = true;
  while (off + 110 <= len && n < max)
    {
      unsigned f[13];
      char field[9] = { 0 };
      if (memcmp (buf + off, "070701", 6) != 0)
        return -1;
      for (int i = 0; i < 13; i++)
        {
          memcpy (field, buf + off + 6 + i * 8, 8);
          char *end;
          f[i] = (unsigned) strtoul (field, &end, 16);
          if (*end)
            return -1;
        }
      struct centry *e = &out[n++];
      memset (e, 0, sizeof *e);
      e->mode = f[1], e->uid = f[2], e->gid = f[3], e->size = f[6], e->rmaj = f[9], e->rmin = f[10];
      size_t namesize = f[11];
      if (off + 110 + namesize > len || buf[off + 110 + namesize - 1] != '\0')
        return -1;
      snprintf (e->name, sizeof e->name, "%s", buf + off + 110);
      off += 110 + namesize;
      /* The writer pads with NULs to the next multiple of 4 after the name and
       * after the data. */
      for (; off % 4; off++)
        if (off >= len || buf[off] != '\0')
          *aligned = false;
      if (off + e->size > len)
        return -1;
      memcpy (e->data, buf + off, e->size < sizeof e->data - 1 ? e->size : sizeof e->data - 1);
      off += e->size;
      for (; off % 4; off++)
        if (off >= len || buf[off] != '\0')
          *aligned = false;
      if (strcmp (e->name, "TRAILER!!!") == 0)
        break;
    }
  return n;
}

static struct centry *
centry_find (struct centry *v, int n, const char *name)
{
  for (int i = 0; i < n; i++)
    if (strcmp (v[i].name, name) == 0)
      return &v[i];
  return NULL;
}

static int
centry_count (struct centry *v, int n, const char *name)
{
  int c = 0;
  for (int i = 0; i < n; i++)
    c += strcmp (v[i].name, name) == 0;
  return c;
}

static void
put (const char *path, const char *text, mode_t mode)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0 || write (fd, text, strlen (text)) != (ssize_t) strlen (text))
    abort ();
  close (fd);
  chmod (path, mode);
}

static char *
tmpdir (void)
{
  char *d = strdup ("/tmp/cella-vmguest-XXXXXX");
  if (mkdtemp (d) == NULL)
    abort ();
  return d;
}

static void
rm_rf (const char *d)
{
  char *cmd;
  if (asprintf (&cmd, "rm -rf '%s'", d) < 0 || system (cmd) != 0)
    abort ();
  free (cmd);
}

static void
test_cpio (void)
{
  char *d = tmpdir (), path[512], out[512], init[512];
  cella_error_t err = NULL;
  snprintf (init, sizeof init, "%s/vminit", d);
  put (init, "INIT", 0700);
  snprintf (path, sizeof path, "%s/tree", d);
  mkdir (path, 0755);
  chmod (path, 0711);
  snprintf (path, sizeof path, "%s/tree/dir", d);
  mkdir (path, 0750);
  snprintf (path, sizeof path, "%s/tree/dir/file", d);
  put (path, "hello", 0640);
  snprintf (path, sizeof path, "%s/tree/link", d);
  if (symlink ("dir/file", path) < 0)
    abort ();
  snprintf (path, sizeof path, "%s/tree/fifo", d);
  mkfifo (path, 0600);
  snprintf (path, sizeof path, "%s/tree/init", d);
  put (path, "NOT OURS", 0755);
  snprintf (path, sizeof path, "%s/tree/cella", d);
  mkdir (path, 0755);
  snprintf (path, sizeof path, "%s/tree", d);
  snprintf (out, sizeof out, "%s/initramfs.cpio", d);

  int r = initramfs_build_with_tree (out, init, NULL, "CONFIG", 6, path, &err);
  CHECK (r == 0, "initramfs_build_with_tree succeeds%s%s", err ? ": " : "", err ? err->msg : "");
  cella_error_free (&err);
  struct stat st;
  CHECK (stat (out, &st) == 0 && (st.st_mode & 07777) == 0600, "initramfs: created mode 0600");
  CHECK (st.st_size % 512 == 0, "initramfs: padded to 512 bytes");
  char *buf = malloc ((size_t) st.st_size);
  int fd = open (out, O_RDONLY);
  if (fd < 0 || read (fd, buf, (size_t) st.st_size) != st.st_size)
    abort ();
  close (fd);
  struct centry e[64];
  bool aligned;
  int n = cpio_parse (buf, (size_t) st.st_size, e, 64, &aligned);
  CHECK (n > 0, "initramfs: parses back as newc (%d entries)", n);
  CHECK (aligned, "initramfs: names and data 4-byte aligned");
  CHECK (n > 0 && strcmp (e[n - 1].name, "TRAILER!!!") == 0, "initramfs: ends with TRAILER!!!");
  struct centry *x;
  x = centry_find (e, n, ".");
  CHECK (x && x->mode == (S_IFDIR | 0711), "tree: root directory entry keeps its mode");
  x = centry_find (e, n, "dir");
  CHECK (x && x->mode == (S_IFDIR | 0750) && x->uid == 0 && x->gid == 0, "tree: directory mode, owned by root");
  x = centry_find (e, n, "dir/file");
  CHECK (x && x->mode == (S_IFREG | 0640) && x->size == 5 && strcmp (x->data, "hello") == 0,
         "tree: file mode, size, data");
  CHECK (centry_find (e, n, "dir") < centry_find (e, n, "dir/file"), "tree: directory before its contents");
  x = centry_find (e, n, "link");
  CHECK (x && S_ISLNK (x->mode) && x->size == 8 && strcmp (x->data, "dir/file") == 0, "tree: symlink target");
  x = centry_find (e, n, "fifo");
  CHECK (x && S_ISFIFO (x->mode) && x->size == 0, "tree: fifo");
  x = centry_find (e, n, "init");
  CHECK (centry_count (e, n, "init") == 1 && x->mode == (S_IFREG | 0755) && strcmp (x->data, "INIT") == 0,
         "init: ours, once, mode 0755 (the tree's own /init left out)");
  x = centry_find (e, n, "dev/console");
  CHECK (x && S_ISCHR (x->mode) && x->rmaj == 5 && x->rmin == 1, "dev/console: char device 5,1");
  x = centry_find (e, n, "cella/config");
  CHECK (x && x->size == 6 && strcmp (x->data, "CONFIG") == 0, "cella/config holds the config");
  x = centry_find (e, n, "cella/modules.order");
  CHECK (x && x->size == 0, "no kernel release: empty modules.order");
  CHECK (centry_find (e, n, "proc") && centry_find (e, n, "sys") && centry_find (e, n, "newroot")
             && centry_find (e, n, "dev") && S_ISDIR (centry_find (e, n, "proc")->mode),
         "mount point directories");
  free (buf);

  /* Without a tree: no "." entry, same fixed entries. */
  r = initramfs_build (out, init, NULL, "C", 1, &err);
  CHECK (r == 0, "initramfs_build without a tree");
  buf = malloc (1 << 16);
  fd = open (out, O_RDONLY);
  ssize_t len = read (fd, buf, 1 << 16);
  close (fd);
  n = cpio_parse (buf, (size_t) len, e, 64, &aligned);
  CHECK (n == 11 && !centry_find (e, n, ".") && aligned, "initramfs_build: 10 entries and the trailer");
  free (buf);

  /* Errors. */
  r = initramfs_build (out, "/nonexistent/init", NULL, "C", 1, &err);
  CHECK (r < 0 && err && strstr (err->msg, "/nonexistent/init"), "error: missing init binary named");
  cella_error_free (&err);
  r = initramfs_build (out, init, "../x", "C", 1, &err);
  CHECK (r < 0 && err && strstr (err->msg, "not a release name"), "error: bad kernel release");
  cella_error_free (&err);
  snprintf (path, sizeof path, "%s/none", d);
  r = initramfs_build_with_tree (out, init, NULL, "C", 1, path, &err);
  CHECK (r < 0 && err && strstr (err->msg, "open root tree"), "error: missing tree");
  cella_error_free (&err);
  snprintf (path, sizeof path, "%s/nodir/x.cpio", d);
  r = initramfs_build (path, init, NULL, "C", 1, &err);
  CHECK (r < 0 && err && strstr (err->msg, "create"), "error: output directory missing");
  cella_error_free (&err);
  rm_rf (d);
  free (d);
}

static void
test_modules (void)
{
  char *d = tmpdir (), path[512];
  cella_error_t err = NULL;
  char **mods = NULL;
  static const char dep[] = "kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko "
                            "kernel/drivers/virtio/virtio_ring.ko\n"
                            "kernel/drivers/virtio/virtio.ko:\n"
                            "kernel/drivers/virtio/virtio_ring.ko:\n"
                            "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko "
                            "kernel/drivers/virtio/virtio_ring.ko\n"
                            "kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko\n"
                            "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko "
                            "kernel/fs/jbd2/jbd2.ko\n"
                            "kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\n"
                            "kernel/crypto/crc32c-generic.ko:\n";
  static const char builtin[] = "kernel/fs/9p/9p.ko\nkernel/net/9p/9pnet_virtio.ko\n";
  snprintf (path, sizeof path, "%s/modules.dep", d);
  put (path, dep, 0644);
  snprintf (path, sizeof path, "%s/modules.builtin", d);
  put (path, builtin, 0644);

  int r = initramfs_modules (d, &mods, &err);
  const char *want[]
      = { "virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio_console", "crc32c-generic", "jbd2",
          "mbcache",     "crc16",  "ext4",        NULL };
  bool ok = r == 0 && mods != NULL;
  size_t i;
  for (i = 0; ok && want[i]; i++)
    {
      char w[512];
      const char *base = mods[i] ? strrchr (mods[i], '/') + 1 : "";
      snprintf (w, sizeof w, "%s.ko", want[i]);
      ok = mods[i] && strncmp (mods[i], d, strlen (d)) == 0 && strcmp (base, w) == 0;
      if (!ok)
        printf ("#   at %zu got %s want %s\n", i, mods[i] ? mods[i] : "(end)", w);
    }
  CHECK (ok && mods[i] == NULL, "modules: dependencies first, each once, "
                                "built-ins and absent optionals left out");
  for (i = 0; mods && mods[i]; i++)
    free (mods[i]);
  free (mods);

  /* A required module missing. */
  snprintf (path, sizeof path, "%s/modules.builtin", d);
  put (path, "kernel/fs/9p/9p.ko\n", 0644);
  r = initramfs_modules (d, &mods, &err);
  CHECK (r < 0 && err && strstr (err->msg, "`9pnet_virtio` is neither built in nor in modules.dep"),
         "modules: a required module missing is an error naming it");
  cella_error_free (&err);

  /* Compressed modules. */
  put (path, builtin, 0644);
  snprintf (path, sizeof path, "%s/modules.dep", d);
  put (path, "kernel/drivers/virtio/virtio_mmio.ko.xz:\n", 0644);
  r = initramfs_modules (d, &mods, &err);
  CHECK (r < 0 && err && strstr (err->msg, "compressed (.ko.xz)"), "modules: compressed module refused");
  cella_error_free (&err);

  /* No modules directory: everything built in. */
  snprintf (path, sizeof path, "%s/none", d);
  r = initramfs_modules (path, &mods, &err);
  CHECK (r == 0 && mods == NULL, "modules: no modules directory, no modules");
  rm_rf (d);
  free (d);

  /* The real Debian kernel's modules, when installed: the archive lists them in
   * modules.order. */
  const char *rel = "6.1.0-56-amd64";
  if (access ("/lib/modules/6.1.0-56-amd64/modules.dep", R_OK) != 0)
    {
      tap_skip ("no /lib/modules/6.1.0-56-amd64", "modules: real kernel's modules in the archive");
      return;
    }
  d = tmpdir ();
  char out[512], init[512];
  snprintf (init, sizeof init, "%s/vminit", d);
  put (init, "INIT", 0700);
  snprintf (out, sizeof out, "%s/i.cpio", d);
  r = initramfs_build (out, init, rel, "C", 1, &err);
  struct stat st;
  ok = r == 0 && stat (out, &st) == 0;
  char *buf = ok ? malloc ((size_t) st.st_size) : NULL;
  int fd = open (out, O_RDONLY);
  ok = ok && fd >= 0 && read (fd, buf, (size_t) st.st_size) == st.st_size;
  close (fd);
  static struct centry e[64];
  bool aligned = false;
  int n = ok ? cpio_parse (buf, (size_t) st.st_size, e, 64, &aligned) : 0;
  if (!ok)
    printf ("#   build: %s\n", err ? err->msg : "read failed");
  cella_error_free (&err);
  struct centry *order = centry_find (e, n, "cella/modules.order");
  ok = ok && order && aligned && centry_find (e, n, "cella/modules/ext4.ko")
       && centry_find (e, n, "cella/modules/jbd2.ko") < centry_find (e, n, "cella/modules/ext4.ko")
       && centry_find (e, n, "cella/modules/virtio_mmio.ko") && strncmp (order->data, "/cella/modules/", 15) == 0;
  CHECK (ok,
         "modules: %s's modules in the archive, jbd2 before ext4, modules.order "
         "lists paths",
         rel);
  {
    /* the NIC's driver and its dependencies, dependencies first */
    struct centry *fo = centry_find (e, n, "cella/modules/failover.ko"),
                  *nf = centry_find (e, n, "cella/modules/net_failover.ko"),
                  *vn = centry_find (e, n, "cella/modules/virtio_net.ko");
    CHECK (fo && nf && vn && fo < nf && nf < vn, "modules: virtio_net, net_failover, failover in the archive, "
                                                 "dependencies first");
  }
  free (buf);
  rm_rf (d);
  free (d);
}

/* The network settings (additive keys): round trip, absent by default, errors.
 */
static void
test_net (void)
{
  char *argv[] = { "true", NULL };
  char *ns[] = { "10.0.2.3", "2001:db8::53", NULL };
  struct vm_guest_config c = {
    .argv = argv, .net_ifname = "eth0", .net_addr = "10.0.2.15/24", .net_gateway = "10.0.2.2", .nameservers = ns
  };
  struct vm_guest_config d;
  cella_error_t err = NULL;
  size_t len;
  char *text = guestcfg_format (&c, &len);
  CHECK (strstr (text, "\nnet eth0 10.0.2.15/24 10.0.2.2\n")
             && strstr (text, "\nnameserver 10.0.2.3\nnameserver 2001:db8::53\n"),
         "net: format writes `net` and `nameserver` lines");
  int r = guestcfg_parse (text, len, &d, &err);
  CHECK (r == 0 && d.net_ifname && strcmp (d.net_ifname, "eth0") == 0 && d.net_addr
             && strcmp (d.net_addr, "10.0.2.15/24") == 0 && d.net_gateway && strcmp (d.net_gateway, "10.0.2.2") == 0
             && strv_eq (d.nameservers, ns),
         "net: round trip of interface, address, gateway, name servers%s%s", err ? ": " : "", err ? err->msg : "");
  guestcfg_free (&d);
  free (text);

  /* no gateway, no name servers; no interface name: eth0 */
  struct vm_guest_config g = { .argv = argv, .net_addr = "192.168.7.2/30" };
  text = guestcfg_format (&g, &len);
  r = guestcfg_parse (text, len, &d, &err);
  CHECK (r == 0 && strcmp (d.net_ifname, "eth0") == 0 && strcmp (d.net_addr, "192.168.7.2/30") == 0
             && d.net_gateway == NULL && d.nameservers == NULL,
         "net: without gateway (`-`) and name servers; eth0 by default");
  guestcfg_free (&d);
  free (text);

  /* nothing asked: no net line, nothing to write in the root */
  struct vm_guest_config m = { .argv = argv };
  text = guestcfg_format (&m, &len);
  r = guestcfg_parse (text, len, &d, &err);
  CHECK (r == 0 && strstr (text, "net") == NULL && d.net_addr == NULL && d.net_ifname == NULL && d.nameservers == NULL,
         "net: absent unless asked (lo only, no resolv.conf)");
  guestcfg_free (&d);
  free (text);

  expect_error ("net eth0 10.0.2.15/24\n", false, "`net` takes 3 values", "net with 2 fields");
  expect_error ("net eth0 10.0.2.15 10.0.2.2\n", false, "`net`: address must be ADDR/PREFIX", "net without prefix");
  expect_error ("net eth0 10.0.2.15/33 -\n", false, "`net`: prefix length must be 0 to 32", "net prefix 33");
  expect_error ("net eth0 10.0.2.15/ -\n", false, "`net`: prefix length must be 0 to 32", "net empty prefix");
  expect_error ("net eth0 10.0.2.15/2x -\n", false, "`net`: prefix length must be 0 to 32", "net prefix junk");
  expect_error ("net eth0 10.0.2/24 -\n", false, "`net`: not an IPv4 address", "net bad address");
  expect_error ("net eth0 fd00::2/64 -\n", false, "`net`: not an IPv4 address", "net IPv6 address");
  expect_error ("net eth0 10.0.2.15/24 gw\n", false, "`net`: gateway must be an IPv4 address or `-`",
                "net bad gateway");
  expect_error ("net  10.0.2.15/24 -\n", false, "`net`: not an interface name", "net empty interface");
  expect_error ("net a/b 10.0.2.15/24 -\n", false, "`net`: not an interface name", "net interface with /");
  expect_error ("net abcdefghijklmnop 10.0.2.15/24 -\n", false, "`net`: not an interface name",
                "net 16-byte interface");
  expect_error ("net eth0 10.0.2.15/24 -\nnet eth1 10.0.3.15/24 -\n", false, "line 4: `net`: duplicate `net`",
                "duplicate net");
  expect_error ("nameserver dns.example\n", false, "`nameserver`: not an IP address", "nameserver not an address");
  expect_error ("nameserver 1.1.1.1 8.8.8.8\n", false, "`nameserver` takes 1 value", "nameserver with 2 fields");
  expect_error ("nameserver 1.1.1.1\nnameserver 1.1.1.2\nnameserver 1.1.1.3\n"
                "nameserver 1.1.1.4\nnameserver 1.1.1.5\nnameserver 1.1.1.6\n"
                "nameserver 1.1.1.7\nnameserver 1.1.1.8\nnameserver 1.1.1.9\n",
                false, "line 11: more than 8 `nameserver` lines", "nine nameservers");
}

int
main (void)
{
  test_roundtrip ();
  test_net ();
  test_errors ();
  test_limits ();
  test_cpio ();
  test_modules ();
  return tap_done ();
}
