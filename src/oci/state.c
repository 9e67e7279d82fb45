/* The OCI runtime's state directory: ROOT/ID/{state.json, plan.json, exec.fifo, lock}. */
#define _GNU_SOURCE
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../util/json.h"
#include "../util/proc.h"

#define OCI_SPEC_VERSION "1.1.0"

void
oci_state_clear (struct oci_state *s)
{
  free (s->id);
  free (s->bundle);
  free (s->rootfs);
  free (s->created);
  free (s->annotations);
  memset (s, 0, sizeof *s);
}

char *
oci_root_default (void)
{
  const char *xdg = getenv ("XDG_RUNTIME_DIR");
  /* root, unless the fake root of `unshare -r`, which cannot write /run */
  if (geteuid () == 0 && (access ("/run/cella-oci", W_OK) == 0 || (errno == ENOENT && access ("/run", W_OK) == 0)))
    return xstrdup ("/run/cella-oci");
  if (xdg && xdg[0] == '/')
    return xasprintf ("%s/cella-oci", xdg);
  return xasprintf ("/tmp/cella-oci-%u", (unsigned) geteuid ());
}

static bool
id_valid (const char *id)
{
  if (id == NULL || id[0] == '\0' || strcmp (id, ".") == 0 || strcmp (id, "..") == 0 || strlen (id) > 1024)
    return false;
  for (const char *c = id; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr ("_+-.", *c)))
      return false;
  return true;
}

int
oci_dir (const char *root, const char *id, char **out, cella_error_t *err)
{
  if (!id_valid (id))
    return cella_error (err, 0, "invalid container id `%s` (letters, digits, _ + - . only)", id ? id : "");
  *out = xasprintf ("%s/%s", root, id);
  return 0;
}

int
oci_dir_create (const char *root, const char *id, char **out, cella_error_t *err)
{
  cleanup_free char *dir = NULL;
  if (oci_dir (root, id, &dir, err) < 0)
    return -1;
  if (mkdir_p (root, 0700, err) < 0)
    return -1;
  if (mkdir (dir, 0700) < 0)
    {
      if (errno == EEXIST)
        return cella_error (err, 0, "container `%s` already exists", id);
      return cella_error (err, errno, "create `%s`", dir);
    }
  *out = steal_pointer (&dir);
  return 0;
}

int
oci_lock (const char *dir, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/lock", dir);
  cleanup_close int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return cella_error (err, errno, "open the lock `%s`", path);
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      return cella_error (err, errno, "lock `%s`", path);
  return steal_fd (&fd);
}

int
oci_state_parse (const char *text, const char *id, const char *path, struct oci_state *s, cella_error_t *err)
{
  json_t *o, *ann;
  json_error_t je;
  memset (s, 0, sizeof *s);
  o = json_loads (text, 0, &je);
  if (o == NULL || !json_is_object (o))
    {
      json_decref (o);
      return cella_error (err, 0, "`%s`: not a state file (%s)", path, je.text);
    }
  s->id = xstrdup (id);
  s->bundle = json_member_str (o, "bundle");
  s->rootfs = json_member_str (o, "rootfs");
  s->created = json_member_str (o, "created");
  s->pid = (pid_t) json_integer_value (json_object_get (o, "pid"));
  s->start_time = (unsigned long long) json_integer_value (json_object_get (o, "start_time"));
  s->paused = json_is_true (json_object_get (o, "paused"));
  s->owner = (uid_t) json_integer_value (json_object_get (o, "owner_uid"));
  {
    const char *rm = json_string_value (json_object_get (o, "root_mount"));
    s->root_mount = rm ? strtoull (rm, NULL, 10) : 0;
  }
  ann = json_object_get (o, "annotations");
  s->annotations = json_is_object (ann) ? json_dumps (ann, JSON_COMPACT | JSON_PRESERVE_ORDER) : xstrdup ("{}");
  json_decref (o);
  if (s->bundle == NULL)
    s->bundle = xstrdup ("");
  return 0;
}

int
oci_state_read (const char *root, const char *id, struct oci_state *s, cella_error_t *err)
{
  cleanup_free char *dir = NULL, *path = NULL, *text = NULL;
  memset (s, 0, sizeof *s);
  if (oci_dir (root, id, &dir, err) < 0)
    return -1;
  path = xasprintf ("%s/state.json", dir);
  if (read_file (path, &text, NULL, NULL) < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR)
        return cella_error (err, 0, "container `%s` does not exist", id);
      return cella_error (err, errno, "read `%s`", path);
    }
  return oci_state_parse (text, id, path, s, err);
}

int
oci_state_write (const char *root, const struct oci_state *s, cella_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/%s/state.json", root, s->id), *text = NULL;
  json_t *ann = json_loads (s->annotations ? s->annotations : "{}", 0, NULL);
  json_t *o = json_pack ("{s:s, s:s, s:s?, s:I, s:I, s:s?, s:b, s:I, s:o}", "id", s->id, "bundle", s->bundle, "rootfs",
                         s->rootfs, "pid", (json_int_t) s->pid, "start_time", (json_int_t) s->start_time, "created",
                         s->created, "paused", s->paused, "owner_uid", (json_int_t) s->owner, "annotations",
                         ann ? ann : json_object ());
  int r;
  if (o == NULL)
    return cella_error (err, 0, "state of `%s`: cannot encode", s->id);
  if (s->root_mount)
    {
      char rm[32];
      snprintf (rm, sizeof rm, "%llu", s->root_mount);
      json_object_set_new (o, "root_mount", json_string (rm));
    }
  text = json_dumps (o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref (o);
  r = write_file_volatile (path, text, strlen (text), 0600, err);
  return r;
}

unsigned long long
oci_proc_start_time (pid_t pid, bool *zombie)
{
  struct proc_stat st;
  if (zombie)
    *zombie = false;
  if (proc_stat_read (pid, &st) < 0)
    return 0;
  if (zombie)
    *zombie = st.state == 'Z' || st.state == 'X';
  return st.start_time;
}

const char *
oci_state_status (const char *root, const struct oci_state *s)
{
  cleanup_free char *fifo = NULL;
  bool zombie;
  unsigned long long t;
  if (s->pid <= 0)
    return "creating";
  t = oci_proc_start_time (s->pid, &zombie);
  if (t == 0 || zombie || (s->start_time && t != s->start_time))
    return "stopped";
  fifo = xasprintf ("%s/%s/exec.fifo", root, s->id);
  if (access (fifo, F_OK) == 0)
    return "created";
  return s->paused ? "paused" : "running";
}

char *
oci_state_text (const char *root, const struct oci_state *s, int indent)
{
  const char *status = oci_state_status (root, s);
  json_t *ann = json_loads (s->annotations ? s->annotations : "{}", 0, NULL);
  bool stopped = strcmp (status, "stopped") == 0;
  json_t *o = json_pack ("{s:s, s:s, s:I, s:s, s:s, s:s?, s:s?, s:s?}", "ociVersion", OCI_SPEC_VERSION, "id", s->id,
                         "pid", (json_int_t) (stopped ? 0 : s->pid), "status", status, "bundle", s->bundle, "rootfs",
                         s->rootfs, "created", s->created, "owner", "");
  char *text;
  if (o == NULL)
    {
      json_decref (ann);
      return xstrdup ("{}");
    }
  json_object_set_new (o, "owner", json_string (""));
  if (ann && json_object_size (ann) > 0)
    json_object_set (o, "annotations", ann);
  json_decref (ann);
  text = json_dumps (o, JSON_PRESERVE_ORDER | (indent ? JSON_INDENT (indent) : JSON_COMPACT));
  json_decref (o);
  return text;
}

int
oci_dir_remove (const char *root, const char *id, cella_error_t *err)
{
  cleanup_free char *dir = NULL;
  if (oci_dir (root, id, &dir, err) < 0)
    return -1;
  if (remove_tree (dir) < 0 && errno != ENOENT)
    return cella_error (err, errno, "remove `%s`", dir);
  return 0;
}
