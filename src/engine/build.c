/* cella build: the executor (build.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../backend/backend.h"
#include "../host/facts.h"
#include "../image/default_image.h"
#include "../image/dockerfile.h"
#include "../image/flatten.h"
#include "../image/ref.h"
#include "../image/store.h"
#include "../ns/ns.h"
#include "../plan/build.h"
#include "../util/paths.h"
#include "build.h"
#include "build_internal.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct stage_state {
  const struct df_stage *st;
  bool needed, done;
  char *key;      /* store key of the image so far; NULL: scratch or base_dir */
  char *base_dir; /* FROM the embedded busybox: its rootfs (a layer once something is committed) */
  json_t *config; /* the whole image config so far */
  char chain[33]; /* the cache key of what is built so far */
  bool dirty;     /* config changed since key was made */
  char **args;    /* ARG values in scope, "K=V" */
  char *flat;     /* flattened root for COPY --from (made on first use) */
};

struct build {
  const struct build_opts *o;
  struct dockerfile df;
  char *file;      /* the Containerfile's path */
  char *file_name; /* its name for messages */
  char *context;   /* realpath */
  int ctxfd;
  struct df_ignore *ignore;
  char **meta_args; /* "K=V" of the ARGs before the first FROM, resolved */
  struct stage_state *ss;
  size_t n;
  char *tmp; /* $data/build/tmp-<id>: upper dirs, flattened roots, config files */
  int tmpfd; /* tmp, flock'd while the build runs */
  unsigned step, steps;
  unsigned *first_step; /* per stage: the number of its FROM step minus one (progress, step dir names) */
  struct host_facts facts;
  bool have_facts;
};

/* ---- small helpers ----------------------------------------------------------------------------- */

static const char *
build_backend (const struct build *b)
{
  return b->o->backend ? b->o->backend : "ns";
}

static const char *
kv_get (char *const *v, const char *key)
{
  size_t n = strlen (key);
  for (size_t i = 0; v && v[i]; i++)
    if (strncmp (v[i], key, n) == 0 && v[i][n] == '=')
      return v[i] + n + 1;
  return NULL;
}

static bool
kv_has (char *const *v, const char *key)
{
  return kv_get (v, key) != NULL;
}

static json_t *
member (json_t *o, const char *key)
{
  json_t *m = json_object_get (o, key);
  if (!json_is_object (m))
    {
      m = json_object ();
      json_object_set_new (o, key, m);
    }
  return m;
}

static json_t *
cfg_of (struct stage_state *s)
{
  return member (s->config, "config");
}

static char **
json_strv (json_t *a)
{
  char **v = NULL;
  size_t i;
  json_t *x;
  json_array_foreach (a, i, x)
    if (json_is_string (x))
      strv_push (&v, json_string_value (x));
  return v;
}

static json_t *
strv_json (char *const *v)
{
  json_t *a = json_array ();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

struct lookup_ctx {
  struct stage_state *s;
  char **env; /* the config's Env */
};

static const char *
lookup (const char *name, void *ud)
{
  struct lookup_ctx *c = ud;
  const char *v = kv_get (c->env, name);
  return v ? v : c->s ? kv_get (c->s->args, name) : NULL;
}

static const char *
meta_lookup (const char *name, void *ud)
{
  return kv_get ((char **) ud, name);
}

static int
expand (struct build *b, struct stage_state *s, const char *word, char **out, cella_error_t *err)
{
  cleanup_strv char **env = json_strv (json_object_get (cfg_of (s), "Env"));
  struct lookup_ctx c = { s, env };
  return df_expand (word, b->df.escape, lookup, &c, out, err);
}

static char *
where (struct build *b, const struct df_instr *in)
{
  return xasprintf ("%s:%d: %s", b->file_name, in->line, in->text);
}

static const char *
flag_get (const struct df_instr *in, const char *name)
{
  for (size_t i = 0; i < in->n_flags; i++)
    if (strcmp (in->flags[i].name, name) == 0)
      return in->flags[i].value ? in->flags[i].value : "";
  return NULL;
}

static void
chain_step (struct stage_state *s, const char *what, const char *extra)
{
  struct bhash h;
  bh_init (&h);
  bh_str (&h, s->chain);
  bh_str (&h, what);
  bh_str (&h, extra ? extra : "");
  bh_hex (&h, s->chain);
}

static void
history_add (struct stage_state *s, const char *created_by, bool empty)
{
  json_t *hist = json_object_get (s->config, "history");
  cleanup_free char *now = utc_now_rfc3339 ();
  if (!json_is_array (hist))
    {
      hist = json_array ();
      json_object_set_new (s->config, "history", hist);
    }
  json_array_append_new (
      hist, empty ? json_pack ("{s:s, s:s, s:b}", "created", now, "created_by", created_by, "empty_layer", 1)
                  : json_pack ("{s:s, s:s}", "created", now, "created_by", created_by));
}

/* ---- the platform ------------------------------------------------------------------------------- */

/* This machine's architecture as OCI names it. */
static const char *
host_arch (void)
{
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

/* A --platform value (the option's or FROM's): only this machine's is built (RUN executes natively;
 * there is no emulation), so another is an error naming it and what is supported. */
static int
platform_check (const char *what, const char *p, cella_error_t *err)
{
  cleanup_free char *os = xstrdup (p);
  char *arch = strchr (os, '/'), *variant = NULL;
  if (arch == NULL)
    return cella_error (err, 0, "%s `%s`: expected OS/ARCH[/VARIANT], like linux/%s", what, p, host_arch ());
  *arch++ = '\0';
  if ((variant = strchr (arch, '/')) != NULL)
    *variant++ = '\0';
  if (strcmp (arch, "x86_64") == 0)
    arch = (char *) "amd64";
  else if (strcmp (arch, "aarch64") == 0)
    arch = (char *) "arm64";
  if (strcmp (os, "linux") == 0 && strcmp (arch, host_arch ()) == 0
      && (variant == NULL || (strcmp (arch, "arm64") == 0 && strcmp (variant, "v8") == 0)))
    return 0;
  return cella_error (err, 0,
                      "%s `%s`: not supported: cella builds only for this machine's platform, linux/%s (RUN steps run "
                      "natively; there is no emulation of another architecture)",
                      what, p, host_arch ());
}

/* ---- the cache ------------------------------------------------------------------------------------ */

static char *
cache_path (const char *chain)
{
  return xasprintf ("%s/build-cache/%s", paths_data_root (), chain);
}

/* The image a cache entry names, when it is still in the store: its key out. */
static bool
cache_get (struct build *b, const char *chain, char **key)
{
  cleanup_free char *p = cache_path (chain), *text = NULL;
  size_t len;
  struct image_record *r = NULL;
  cella_error_t e = NULL;
  if (b->o->no_cache || read_file (p, &text, &len, &e) < 0)
    {
      cella_error_free (&e);
      return false;
    }
  text[strcspn (text, "\n")] = '\0';
  if (image_record_read (text, &r, &e) != 0)
    {
      cella_error_free (&e);
      return false;
    }
  image_record_free (r);
  *key = xstrdup (text);
  return true;
}

static void
cache_put (const char *chain, const char *key)
{
  cleanup_free char *dir = xasprintf ("%s/build-cache", paths_data_root ()), *p = cache_path (chain),
                    *line = xasprintf ("%s\n", key);
  cella_error_t e = NULL;
  if (mkdir_p (dir, 0700, &e) < 0 || write_file_atomic (p, line, strlen (line), 0600, &e) < 0)
    cella_error_free (&e); /* a cache that cannot be written is only slower */
}

/* The config of the image key (the blob, parsed). */
static int
config_of (const char *key, json_t **out, char **id, cella_error_t *err)
{
  struct image_record *r = NULL;
  cleanup_free char *path = NULL;
  json_error_t je;
  int rc = image_record_read (key, &r, err);
  if (rc > 0)
    return cella_error (err, 0, "image %s: not in the store", key);
  if (rc < 0)
    return -1;
  path = store_blob_path (r->id);
  *out = json_load_file (path, 0, &je);
  if (id)
    *id = xstrdup (r->id);
  image_record_free (r);
  if (!json_is_object (*out))
    {
      json_decref (*out);
      *out = NULL;
      return cella_error (err, 0, "image config `%s`: %s", path, je.text);
    }
  return 0;
}

/* Take the image key as the stage's state (a cache hit, a commit). */
static int
stage_take (struct stage_state *s, const char *key, cella_error_t *err)
{
  json_t *c = NULL;
  if (config_of (key, &c, NULL, err) < 0)
    return -1;
  json_decref (s->config);
  s->config = c;
  free (s->key);
  s->key = xstrdup (key);
  free (s->base_dir);
  s->base_dir = NULL;
  s->dirty = false;
  free (s->flat);
  s->flat = NULL;
  return 0;
}

/* ---- the image tool ------------------------------------------------------------------------------ */

/* Store the stage's config (with the layer in upper, when given) as a new image; its key out. */
static int
commit (struct build *b, struct stage_state *s, const char *upper, const char *created_by, char *const *mounts,
        char **key, cella_error_t *err)
{
  cleanup_free char *cfg = xasprintf ("%s/config.json", b->tmp), *kf = xasprintf ("%s/key", b->tmp), *text = NULL;
  cleanup_strv char **v = NULL;
  size_t len;
  int status;
  unlink (kf);
  if (json_dump_file (s->config, cfg, JSON_COMPACT) < 0)
    return cella_error (err, errno, "write `%s`", cfg);
  strv_push (&v, "commit");
  strv_push (&v, "--config");
  strv_push (&v, cfg);
  strv_push (&v, "--key-file");
  strv_push (&v, kf);
  strv_push (&v, "--source");
  strv_push (&v, "build");
  if (s->key)
    {
      strv_push (&v, "--parent");
      strv_push (&v, s->key);
    }
  else if (s->base_dir)
    {
      strv_push (&v, "--base-dir");
      strv_push (&v, s->base_dir);
    }
  if (upper)
    {
      strv_push (&v, "--upper");
      strv_push (&v, upper);
      strv_push (&v, "--created-by");
      strv_push (&v, created_by);
    }
  for (size_t i = 0; mounts && mounts[i]; i++)
    {
      strv_push (&v, "--mount-point");
      strv_push (&v, mounts[i]);
    }
  status = b->o->tool (v, err);
  if (status < 0)
    return -1;
  if (status != 0)
    return cella_error (err, 0, "storing the layer failed (see above)");
  if (read_file (kf, &text, &len, err) < 0)
    return -1;
  text[strcspn (text, "\n")] = '\0';
  *key = xstrdup (text);
  unlink (kf);
  unlink (cfg);
  return 0;
}

/* The root the stage has so far, for RUN and COPY: bottom layer and those above it. */
static int
stage_layers (struct stage_state *s, char **bottom, char ***layers, cella_error_t *err)
{
  *bottom = NULL;
  *layers = NULL;
  if (s->key)
    {
      struct image_record *r = NULL;
      char **dirs = NULL;
      size_t n;
      int rc = image_record_read (s->key, &r, err);
      if (rc != 0)
        return rc > 0 ? cella_error (err, 0, "image %s: not in the store", s->key) : -1;
      rc = image_layer_dirs (r, &dirs, err);
      image_record_free (r);
      if (rc < 0)
        return -1;
      n = strv_len (dirs);
      if (n == 0)
        {
          strv_free (dirs);
          return 0;
        }
      *bottom = dirs[n - 1];
      dirs[n - 1] = NULL;
      *layers = dirs;
      return 0;
    }
  if (s->base_dir)
    *bottom = xstrdup (s->base_dir);
  return 0;
}

/* A fresh step dir (upper + work) under the build's temp dir. */
static char *
step_dir (struct build *b, cella_error_t *err)
{
  char *d = xasprintf ("%s/step-%u", b->tmp, b->step);
  cleanup_free char *u = xasprintf ("%s/upper", d), *w = xasprintf ("%s/work", d);
  if (mkdir (d, 0700) < 0 || mkdir (u, 0755) < 0 || mkdir (w, 0700) < 0)
    {
      cella_error (err, errno, "make `%s`", d);
      free (d);
      return NULL;
    }
  return d;
}

static void
step_dir_remove (char *d)
{
  if (d)
    remove_tree_mapped (d);
  free (d);
}

/* ---- RUN ----------------------------------------------------------------------------------------- */

/* ---- RUN --mount, --network ----------------------------------------------------------------------- */

static int from_root (struct build *b, const char *name, const char *w, char **root, char **src_key,
                      cella_error_t *err);

/* One RUN --mount=type=bind|cache|tmpfs,... as written (variables expanded). */
struct run_mount {
  char *type, *target, *id, *sharing, *from, *source;
  bool rw;
  long long size;
};

/* What a RUN's container gets besides the stage's root: --mount specs in the `run --mount` syntax,
 * the network, the flock'd fds of `sharing=locked` caches (closed after the RUN). */
struct run_extra {
  struct run_mount *m;
  size_t n;
  const char *network; /* none | host */
  char **mounts;
  int *locks;
  size_t nlocks;
};

static void
run_extra_free (struct run_extra *x)
{
  for (size_t i = 0; i < x->n; i++)
    {
      free (x->m[i].type);
      free (x->m[i].target);
      free (x->m[i].id);
      free (x->m[i].sharing);
      free (x->m[i].from);
      free (x->m[i].source);
    }
  free (x->m);
  for (size_t i = 0; i < x->nlocks; i++)
    close (x->locks[i]);
  free (x->locks);
  strv_free (x->mounts);
}

static void
set_str (char **p, const char *v)
{
  free (*p);
  *p = xstrdup (v);
}

static int
mount_bool (const char *spec, const char *k, const char *v, bool *out, const char *w, cella_error_t *err)
{
  if (v == NULL || strcmp (v, "true") == 0 || strcmp (v, "1") == 0)
    *out = true;
  else if (strcmp (v, "false") == 0 || strcmp (v, "0") == 0)
    *out = false;
  else
    return cella_error (err, 0, "%s: --mount `%s`: `%s=%s`: true or false", w, spec, k, v);
  return 0;
}

static int
run_mount_parse (struct build *b, struct stage_state *s, const char *raw, const char *w, struct run_mount *m,
                 cella_error_t *err)
{
  cleanup_free char *spec = NULL, *copy = NULL;
  char *save = NULL;
  bool ro = false;
  if (expand (b, s, raw, &spec, err) < 0)
    return cella_error_wrap (err, "%s", w);
  copy = xstrdup (spec);
  for (char *kv = strtok_r (copy, ",", &save); kv; kv = strtok_r (NULL, ",", &save))
    {
      char *v = strchr (kv, '=');
      if (v)
        *v++ = '\0';
      if (strcmp (kv, "type") == 0 && v)
        set_str (&m->type, v);
      else if ((strcmp (kv, "target") == 0 || strcmp (kv, "dst") == 0 || strcmp (kv, "destination") == 0) && v)
        set_str (&m->target, v);
      else if ((strcmp (kv, "source") == 0 || strcmp (kv, "src") == 0) && v)
        set_str (&m->source, v);
      else if (strcmp (kv, "id") == 0 && v)
        set_str (&m->id, v);
      else if (strcmp (kv, "sharing") == 0 && v)
        set_str (&m->sharing, v);
      else if (strcmp (kv, "from") == 0 && v)
        set_str (&m->from, v);
      else if (strcmp (kv, "rw") == 0 || strcmp (kv, "readwrite") == 0)
        {
          if (mount_bool (spec, kv, v, &m->rw, w, err) < 0)
            return -1;
        }
      else if (strcmp (kv, "ro") == 0 || strcmp (kv, "readonly") == 0)
        {
          if (mount_bool (spec, kv, v, &ro, w, err) < 0)
            return -1;
        }
      else if (strcmp (kv, "size") == 0 && v)
        {
          if ((m->size = parse_size (v)) <= 0)
            return cella_error (err, 0, "%s: --mount `%s`: size `%s`: a size (64m, 1g)", w, spec, v);
        }
      else
        return cella_error (err, 0,
                            "%s: --mount `%s`: unknown option `%s` (known: type, target, source, from, id, "
                            "sharing, rw, ro, size)",
                            w, spec, kv);
    }
  if (m->type == NULL)
    m->type = xstrdup ("bind");
  if (strcmp (m->type, "bind") && strcmp (m->type, "cache") && strcmp (m->type, "tmpfs"))
    return cella_error (err, 0, "%s: --mount type=%s: not supported (supported: bind, cache, tmpfs)", w, m->type);
  if (m->target == NULL)
    return cella_error (err, 0, "%s: --mount `%s`: needs target=DIR", w, spec);
  {
    const char *wd = json_string_value (json_object_get (cfg_of (s), "WorkingDir"));
    cleanup_free char *abs
        = m->target[0] == '/' ? xstrdup (m->target) : xasprintf ("%s/%s", wd && *wd ? wd : "/", m->target);
    free (m->target);
    m->target = path_clean (abs);
    if (strcmp (m->target, "/") == 0)
      return cella_error (err, 0, "%s: --mount `%s`: the target cannot be /", w, spec);
  }
  if (m->sharing && strcmp (m->sharing, "shared") && strcmp (m->sharing, "private") && strcmp (m->sharing, "locked"))
    return cella_error (err, 0, "%s: --mount `%s`: sharing=%s: shared, private or locked", w, spec, m->sharing);
  if (strcmp (m->type, "cache") != 0 && (m->id || m->sharing))
    return cella_error (err, 0, "%s: --mount `%s`: id= and sharing= are for type=cache", w, spec);
  if (strcmp (m->type, "bind") != 0 && (m->from || m->source))
    return cella_error (err, 0, "%s: --mount `%s`: from= and source= are for type=bind", w, spec);
  if (strcmp (m->type, "tmpfs") != 0 && m->size)
    return cella_error (err, 0, "%s: --mount `%s`: size= is for type=tmpfs", w, spec);
  if (ro)
    m->rw = false;
  if (m->id == NULL && strcmp (m->type, "cache") == 0)
    m->id = xstrdup (m->target);
  if (strchr (m->target, ','))
    return cella_error (err, 0, "%s: --mount `%s`: a target with a comma is not supported", w, spec);
  return 0;
}

/* The RUN's flags: --mount (parsed, and hashed into h: the spec, and for a bind the content it
 * shows), --network. */
static int
run_flags (struct build *b, struct stage_state *s, const struct df_instr *in, const char *w, struct run_extra *x,
           struct bhash *h, cella_error_t *err)
{
  x->network = "host";
  for (size_t i = 0; i < in->n_flags; i++)
    {
      const struct df_flag *f = &in->flags[i];
      if (strcmp (f->name, "network") == 0)
        {
          const char *v = f->value ? f->value : "";
          if (strcmp (v, "none") == 0)
            x->network = "none";
          else if (strcmp (v, "host") == 0 || strcmp (v, "default") == 0)
            x->network = "host";
          else
            return cella_error (err, 0, "%s: --network=%s: none, host or default (the host's network)", w, v);
          bh_str (h, x->network);
          continue;
        }
      if (strcmp (f->name, "mount") != 0)
        return cella_error (err, 0, "%s: --%s: not supported for RUN (supported: --mount, --network)", w, f->name);
      {
        struct run_mount *m;
        x->m = xrealloc (x->m, (x->n + 1) * sizeof *x->m);
        m = &x->m[x->n++];
        memset (m, 0, sizeof *m);
        if (run_mount_parse (b, s, f->value ? f->value : "", w, m, err) < 0)
          return -1;
        bh_str (h, m->type);
        bh_str (h, m->target);
        bh_str (h, m->rw ? "rw" : "ro");
        if (strcmp (m->type, "bind") == 0)
          {
            /* what the mount shows is part of the step: its content (context) or its image (from=) */
            bh_str (h, m->source ? m->source : ".");
            if (m->from)
              {
                cleanup_free char *k = NULL;
                if (from_root (b, m->from, w, NULL, &k, err) < 0)
                  return -1;
                bh_str (h, k);
              }
            else
              {
                int fd = bc_open (b->ctxfd, m->source ? m->source : "", O_PATH, false);
                if (fd < 0 && (errno == EXDEV || errno == ELOOP))
                  return cella_error (err, 0, "%s: --mount source `%s`: outside the build context", w, m->source);
                if (fd < 0)
                  return cella_error (err, errno, "%s: --mount source `%s` in the build context", w,
                                      m->source ? m->source : ".");
                close (fd);
                if (bc_hash_source (b->ctxfd, m->source ? m->source : "", b->ignore, h) < 0)
                  return cella_error (err, errno, "%s: read `%s`", w, m->source ? m->source : ".");
              }
          }
      }
    }
  return 0;
}

/* A path safe to hand the mount code: fd's, as the kernel resolved it (openat2 kept it beneath
 * its root). A comma would end the spec. */
static char *
fd_path (int fd)
{
  char link[64], buf[4096];
  ssize_t n;
  snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink (link, buf, sizeof buf - 1);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  return strchr (buf, ',') ? NULL : xstrdup (buf);
}

/* The mounts on a cache miss: cache dirs made (and locked), bind sources resolved (and copied for
 * rw, so that writes are dropped with the step, as docker does). */
static int
run_mounts_prepare (struct build *b, const char *w, struct run_extra *x, cella_error_t *err)
{
  for (size_t i = 0; i < x->n; i++)
    {
      struct run_mount *m = &x->m[i];
      cleanup_free char *spec = NULL;
      if (strcmp (m->type, "tmpfs") == 0)
        spec = m->size ? xasprintf ("type=tmpfs,target=%s,tmpfs-size=%lld", m->target, m->size)
                       : xasprintf ("type=tmpfs,target=%s", m->target);
      else if (strcmp (m->type, "cache") == 0)
        {
          struct bhash h;
          char hex[33];
          cleanup_free char *dir = NULL;
          bh_init (&h);
          bh_str (&h, m->id);
          bh_hex (&h, hex);
          dir = xasprintf ("%s/build-cache/mounts/%s", paths_data_root (), hex);
          if (mkdir_p (dir, 0755, err) < 0)
            return cella_error_wrap (err, "%s: --mount type=cache", w);
          if (m->sharing && strcmp (m->sharing, "locked") == 0)
            {
              int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
              if (fd < 0 || flock (fd, LOCK_EX) < 0)
                {
                  if (fd >= 0)
                    close (fd);
                  return cella_error (err, errno, "%s: lock the cache `%s`", w, dir);
                }
              x->locks = xrealloc (x->locks, (x->nlocks + 1) * sizeof *x->locks);
              x->locks[x->nlocks++] = fd;
            }
          if (strchr (dir, ','))
            return cella_error (err, 0, "%s: the data root `%s` has a comma: no cache mount", w, dir);
          spec = xasprintf ("type=bind,source=%s,target=%s", dir, m->target);
        }
      else
        {
          cleanup_free char *root = NULL, *k = NULL, *path = NULL;
          int rootfd, fd;
          struct stat st;
          if (m->from && from_root (b, m->from, w, &root, &k, err) < 0)
            return -1;
          rootfd = m->from ? open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : b->ctxfd;
          if (rootfd < 0)
            return cella_error (err, errno, "open `%s`", root);
          fd = bc_open (rootfd, m->source ? m->source : "", O_PATH, m->from != NULL);
          if (m->from)
            close (rootfd);
          if (fd < 0)
            return cella_error (err, errno, "%s: --mount source `%s`%s%s", w, m->source ? m->source : ".",
                                m->from ? " in " : " in the build context", m->from ? m->from : "");
          path = fd_path (fd);
          if (fstat (fd, &st) < 0)
            st.st_mode = 0;
          close (fd);
          if (path == NULL)
            return cella_error (err, 0, "%s: --mount source `%s`: a path with a comma is not supported", w,
                                m->source ? m->source : ".");
          if (m->rw)
            {
              char *copy = xasprintf ("%s/mount-%u-%zu", b->tmp, b->step, i);
              if (!S_ISDIR (st.st_mode))
                {
                  free (copy);
                  return cella_error (err, 0, "%s: --mount rw of `%s`: only a directory can be mounted rw", w,
                                      m->source ? m->source : ".");
                }
              if (tree_copy (path, copy, NULL, err) < 0)
                {
                  free (copy);
                  return cella_error_wrap (err, "%s: --mount rw", w);
                }
              free (path);
              path = copy;
            }
          spec = xasprintf ("type=bind,source=%s,target=%s%s", path, m->target, m->rw ? "" : ",readonly");
        }
      strv_push (&x->mounts, spec);
    }
  return 0;
}

static int
run_container (struct build *b, struct stage_state *s, char **argv, const char *dir, const struct run_extra *x,
               char ***mounts, int *status, cella_error_t *err)
{
  struct run_options o = { 0 };
  struct image_defaults img = { 0 };
  cleanup_free char *bottom = NULL;
  cleanup_strv char **layers = NULL, **env = json_strv (json_object_get (cfg_of (s), "Env"));
  struct plan *p = NULL;
  const char *wd = json_string_value (json_object_get (cfg_of (s), "WorkingDir")),
             *user = json_string_value (json_object_get (cfg_of (s), "User"));
  int saved[3] = { -1, -1, -1 }, rc = -1, nullfd = -1, outfd = -1;
  cleanup_free char *outpath = xasprintf ("%s/run.out", b->tmp);
  if (stage_layers (s, &bottom, &layers, err) < 0)
    return -1;
  if (bottom == NULL)
    return cella_error (err, 0, "RUN needs a root with a shell (this stage is FROM scratch with no files)");
  o.backend = xstrdup (build_backend (b));
  if (!b->have_facts)
    {
      struct host_facts_query q;
      plan_facts_query (&o, &q);
      host_facts_gather (&q, &b->facts);
      b->have_facts = true;
    }
  /* the ARGs reach RUN as environment variables (the config's ENV wins) */
  for (size_t i = 0; s->args && s->args[i]; i++)
    {
      cleanup_free char *k = strndup (s->args[i], strcspn (s->args[i], "="));
      if (!kv_has (env, k))
        strv_push (&env, s->args[i]);
    }
  if (!kv_has (env, "PATH"))
    strv_push (&env, DEFAULT_PATH);
  img.id = s->key;
  img.layers = layers;
  o.img = &img;
  o.env = steal_pointer (&env);
  o.workdir = wd && *wd ? xstrdup (wd) : NULL;
  o.user = user && *user ? xstrdup (user) : NULL;
  /* a VM has no host network to share: the default and host networks are QEMU's user-mode one */
  o.network
      = xstrdup (strcmp (build_backend (b), "vm") == 0 && strcmp (x->network, "host") == 0 ? "private" : x->network);
  o.mounts = strv_dup (x->mounts);
  o.command = strv_dup (argv);
  o.image = xstrdup ("build");
  if (plan_from_run_options (&o, &b->facts, bottom, true, &p, err) < 0)
    goto out;
  p->root_upper = xasprintf ("%s/upper", dir);
  p->root_work = xasprintf ("%s/work", dir);
  if (p->backend == BACKEND_VM)
    p->vm_export = xasprintf ("%s/export.raw", dir); /* the guest's root: build_vm_layer */
  if (backend_check (p, err) < 0)
    goto out;
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].target)
      strv_push (mounts, p->ops[i].target);
  fflush (NULL);
  nullfd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  saved[0] = dup (0);
  if (nullfd >= 0)
    dup2 (nullfd, 0);
  if (b->o->quiet)
    {
      outfd = open (outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      saved[1] = dup (1);
      saved[2] = dup (2);
      if (outfd >= 0)
        {
          dup2 (outfd, 1);
          dup2 (outfd, 2);
        }
    }
  *status = backend_of (p)->run (p, err);
  fflush (NULL);
  for (int i = 0; i < 3; i++)
    if (saved[i] >= 0)
      {
        dup2 (saved[i], i);
        close (saved[i]);
      }
  if (b->o->quiet && *status != 0)
    {
      /* the failing step's output, which -q held back */
      cleanup_free char *text = NULL;
      size_t len;
      cella_error_t e = NULL;
      if (read_file (outpath, &text, &len, &e) == 0)
        fwrite (text, 1, len, stderr);
      cella_error_free (&e);
    }
  rc = *status < 0 ? -1 : 0;
out:
  if (nullfd >= 0)
    close (nullfd);
  if (outfd >= 0)
    close (outfd);
  unlink (outpath);
  o.img = NULL;
  run_options_free (&o);
  plan_free (p);
  return rc;
}

/* A RUN past its cache key: a hit, or the container run and its upper dir committed. */
static int
run_step (struct build *b, struct stage_state *s, char **argv, const char *created, const char *w, struct run_extra *x,
          cella_error_t *err)
{
  cleanup_strv char **mounts = NULL;
  cleanup_free char *key = NULL;
  char *dir = NULL;
  int status = 0;
  if (cache_get (b, s->chain, &key))
    {
      if (!b->o->quiet)
        printf ("--> Using cache %s\n", key);
      return stage_take (s, key, err);
    }
  history_add (s, created, false);
  /* the tool adds the layer's history entry itself: take ours back */
  json_array_remove (json_object_get (s->config, "history"),
                     json_array_size (json_object_get (s->config, "history")) - 1);
  if (run_mounts_prepare (b, w, x, err) < 0)
    return -1;
  if ((dir = step_dir (b, err)) == NULL)
    return -1;
  if (run_container (b, s, argv, dir, x, &mounts, &status, err) < 0)
    {
      step_dir_remove (dir);
      return cella_error_wrap (err, "%s", w);
    }
  if (status != 0)
    {
      step_dir_remove (dir);
      return cella_error (err, 0, "%s: the command exited with status %d", w, status);
    }
  if (strcmp (build_backend (b), "vm") == 0)
    {
      cleanup_free char *bottom = NULL;
      cleanup_strv char **layers = NULL;
      int r = stage_layers (s, &bottom, &layers, err);
      if (r == 0 && bottom)
        strv_push (&layers, bottom);
      if (r < 0 || build_vm_layer (dir, layers, err) < 0)
        {
          step_dir_remove (dir);
          return cella_error_wrap (err, "%s", w);
        }
    }
  {
    cleanup_free char *upper = xasprintf ("%s/upper", dir);
    int r = commit (b, s, upper, created, mounts, &key, err);
    step_dir_remove (dir);
    if (r < 0)
      return cella_error_wrap (err, "%s", w);
  }
  cache_put (s->chain, key);
  return stage_take (s, key, err);
}

static int
do_run (struct build *b, struct stage_state *s, const struct df_instr *in, cella_error_t *err)
{
  cleanup_strv char **argv = NULL;
  cleanup_free char *w = where (b, in), *desc = NULL, *created = NULL;
  char hex[33];
  int rc;
  struct run_extra x = { 0 };
  struct bhash h;
  bh_init (&h);
  if (run_flags (b, s, in, w, &x, &h, err) < 0)
    {
      run_extra_free (&x);
      return -1;
    }
  bh_hex (&h, hex);
  if (in->json)
    argv = strv_dup (in->args);
  else
    {
      cleanup_strv char **shell = json_strv (json_object_get (cfg_of (s), "Shell"));
      cleanup_free char *script = NULL;
      const char *text = in->args && in->args[0] ? in->args[0] : "";
      if (shell == NULL)
        {
          strv_push (&shell, "/bin/sh");
          strv_push (&shell, "-c");
        }
      if (in->n_heredocs == 1 && strncmp (text + strspn (text, " \t"), "<<", 2) == 0
          && strcspn (text + strspn (text, " \t"), " \t") == strlen (text + strspn (text, " \t")))
        script = xstrdup (in->heredocs[0].body); /* RUN <<EOF: the body is the script */
      else
        {
          /* the shell reads the heredocs itself */
          script = xstrdup (text);
          for (size_t i = 0; i < in->n_heredocs; i++)
            {
              char *n = xasprintf ("%s\n%s%s", script, in->heredocs[i].body, in->heredocs[i].name);
              free (script);
              script = n;
            }
        }
      argv = strv_dup (shell);
      strv_push (&argv, script);
    }
  {
    /* the key: the command, the environment it gets (ARGs included) */
    cleanup_free char *a = NULL;
    json_t *j = strv_json (argv), *e = strv_json (s->args);
    a = json_dumps (j, JSON_COMPACT);
    desc = json_dumps (e, JSON_COMPACT);
    json_decref (j);
    json_decref (e);
    if (in->n_flags)
      {
        char *d2 = xasprintf ("%s %s", desc, hex);
        free (desc);
        desc = d2;
      }
    {
      /* the backend made the layer: a step run in a VM is another step */
      char *d2 = xasprintf ("%s backend=%s", desc, build_backend (b));
      free (desc);
      desc = d2;
    }
    chain_step (s, a, desc);
    created = xasprintf ("RUN %s", in->json ? a : argv[strv_len (argv) - 1]);
  }
  rc = run_step (b, s, argv, created, w, &x, err);
  run_extra_free (&x);
  return rc;
}

/* ---- COPY / ADD ---------------------------------------------------------------------------------- */

static int stage_build (struct build *b, size_t i, cella_error_t *err);

/* The root --from=NAME reads: a stage's (built first) or an image's, flattened once. */
static int
from_root (struct build *b, const char *name, const char *w, char **root, char **src_key, cella_error_t *err)
/* root NULL: only the source's key (for the cache key) */
{
  const struct df_stage *st = df_stage_find (&b->df, name);
  struct stage_state tmp = { 0 }, *s = &tmp;
  if (st)
    {
      if (stage_build (b, (size_t) st->index, err) < 0)
        return -1;
      s = &b->ss[st->index];
    }
  else
    {
      struct image_record *r = NULL;
      int rc = image_lookup (name, &r, err);
      if (rc != 0)
        return rc < 0 ? -1 : cella_error (err, 0, "%s: --from `%s`: no stage and no image of that name", w, name);
      tmp.key = xstrdup (r->key);
      image_record_free (r);
    }
  *src_key = xstrdup (s->key ? s->key : s->base_dir ? s->base_dir : "scratch");
  if (root == NULL)
    {
      free (tmp.key);
      return 0;
    }
  if (s->flat == NULL)
    {
      cleanup_free char *bottom = NULL;
      cleanup_strv char **layers = NULL, **all = NULL;
      char *dest = xasprintf ("%s/from-%u-%zu", b->tmp, b->step, (size_t) (st ? st->index : 999));
      if (stage_layers (s, &bottom, &layers, err) < 0)
        {
          free (dest);
          free (tmp.key);
          return -1;
        }
      all = strv_dup (layers);
      if (bottom)
        strv_push (&all, bottom);
      if (all == NULL ? mkdir (dest, 0755) < 0 && cella_error (err, errno, "mkdir `%s`", dest)
                      : image_flatten (all, dest, NULL, err) < 0)
        {
          free (dest);
          free (tmp.key);
          return -1;
        }
      s->flat = dest;
    }
  *root = xstrdup (s->flat);
  if (s == &tmp)
    {
      free (tmp.key);
      free (tmp.flat);
    }
  return 0;
}

static int
parse_chown (struct build *b, struct stage_state *s, const char *spec, const char *w, uid_t *uid, gid_t *gid,
             cella_error_t *err)
{
  cleanup_free char *bottom = NULL;
  cleanup_strv char **layers = NULL;
  struct root_view view = { 0 };
  gid_t *groups = NULL;
  size_t ng = 0;
  char *home = NULL, *end;
  unsigned long u, g;
  const char *colon = strchr (spec, ':');
  int r;
  /* numeric ids need no passwd file */
  errno = 0;
  u = strtoul (spec, &end, 10);
  if (end != spec && (*end == '\0' || *end == ':') && errno == 0)
    {
      *uid = (uid_t) u;
      *gid = (gid_t) u;
      if (colon)
        {
          g = strtoul (colon + 1, &end, 10);
          if (end != colon + 1 && *end == '\0')
            {
              *gid = (gid_t) g;
              return 0;
            }
        }
      else
        return 0;
    }
  (void) b;
  if (stage_layers (s, &bottom, &layers, err) < 0)
    return -1;
  if (bottom == NULL)
    return cella_error (err, 0, "%s: --chown `%s`: no /etc/passwd in a root FROM scratch (use numeric ids)", w, spec);
  if (root_view_open (&view, layers, bottom, err) < 0)
    return -1;
  r = user_resolve_view (&view, spec, uid, gid, &groups, &ng, &home, err);
  root_view_close (&view);
  free (groups);
  free (home);
  if (r < 0)
    return cella_error_wrap (err, "%s: --chown", w);
  return 0;
}

static bool
is_url (const char *w)
{
  return has_prefix (w, "http://") || has_prefix (w, "https://");
}

/* The sources of a COPY/ADD (words but the last), resolved under rootfd and hashed into h (h NULL:
 * not hashed); *dest_dir set when there are several or a glob. */
static int
resolve_sources (struct build *b, char **words, size_t n, bool add, int rootfd, const char *from, const char *w,
                 char ***sources, struct bhash *h, bool *dest_dir, cella_error_t *err)
{
  for (size_t i = 0; i + 1 < n; i++)
    {
      size_t before = strv_len (*sources);
      if (is_url (words[i]))
        return cella_error (err, 0, "%s: `%s`: %s", w, words[i],
                            add ? "a URL and local sources in one ADD (use one ADD for each)"
                                : "COPY does not download URLs (ADD does)");
      if (bc_sources (rootfd, words[i], from != NULL, from ? NULL : b->ignore, w, sources, err) < 0)
        return -1;
      for (size_t k = before; h && (*sources)[k]; k++)
        if (bc_hash_source (rootfd, (*sources)[k], from ? NULL : b->ignore, h) < 0)
          return cella_error (err, errno, "%s: read `%s`", w, (*sources)[k]);
      if (strv_len (*sources) - before > 1 || strpbrk (words[i], "*?["))
        *dest_dir = true;
    }
  if (strv_len (*sources) > 1)
    *dest_dir = true;
  return 0;
}

/* ADD URL... DEST: each URL downloaded by the image tool (libcurl) into a dir of the step, named by
 * the last component of the URL's path; the files are then the sources, hashed into h (the content
 * decides the cache, as a context file's does). *dl out: that dir. */
static int
fetch_sources (struct build *b, char **words, size_t n, const char *checksum, const char *w, char **dl, char ***sources,
               struct bhash *h, cella_error_t *err)
{
  int dfd;
  *dl = xasprintf ("%s/url-%u", b->tmp, b->step);
  if (mkdir (*dl, 0700) < 0)
    return cella_error (err, errno, "mkdir `%s`", *dl);
  if (checksum && n != 2)
    return cella_error (err, 0, "%s: --checksum goes with one URL source", w);
  for (size_t i = 0; i + 1 < n; i++)
    {
      cleanup_free char *path = NULL, *out = NULL;
      const char *slash, *name;
      size_t len;
      int status;
      if (!is_url (words[i]))
        return cella_error (err, 0, "%s: `%s`: a URL and local sources in one ADD (use one ADD for each)", w, words[i]);
      slash = strchr (strstr (words[i], "://") + 3, '/');
      path = strndup (slash ? slash : "/", slash ? strcspn (slash, "?#") : 1);
      len = strlen (path);
      while (len > 1 && path[len - 1] == '/')
        path[--len] = '\0';
      name = strrchr (path, '/') + 1;
      if (*name == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
        name = "download";
      for (size_t k = 0; *sources && (*sources)[k]; k++)
        if (strcmp ((*sources)[k], name) == 0)
          return cella_error (err, 0, "%s: two URLs name the same file `%s`", w, name);
      out = xasprintf ("%s/%s", *dl, name);
      {
        char *const fargv[] = { (char *) "fetch",
                                (char *) "--output",
                                out,
                                checksum ? (char *) "--checksum" : words[i],
                                checksum ? (char *) checksum : NULL,
                                checksum ? words[i] : NULL,
                                NULL };
        status = b->o->tool (fargv, err);
      }
      if (status < 0)
        return cella_error_wrap (err, "%s", w);
      if (status != 0)
        return cella_error (err, 0, "%s: downloading `%s` failed (see above)", w, words[i]);
      strv_push (sources, name);
    }
  dfd = open (*dl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return cella_error (err, errno, "open `%s`", *dl);
  for (size_t k = 0; (*sources)[k]; k++)
    if (bc_hash_source (dfd, (*sources)[k], NULL, h) < 0)
      {
        int e = errno;
        close (dfd);
        return cella_error (err, e, "%s: read `%s`", w, (*sources)[k]);
      }
  close (dfd);
  return 0;
}

static int
do_copy (struct build *b, struct stage_state *s, const struct df_instr *in, cella_error_t *err)
{
  cleanup_free char *w = where (b, in), *from_root_dir = NULL, *src_key = NULL, *dest = NULL, *key = NULL,
                    *created = NULL, *bottom = NULL, *heredoc = NULL, *from_x = NULL, *src_key2 = NULL, *dl = NULL;
  cleanup_strv char **words = NULL, **sources = NULL, **layers = NULL, **mounts = NULL;
  const char *from = flag_get (in, "from"), *chown = flag_get (in, "chown"), *chmod = flag_get (in, "chmod"),
             *checksum = flag_get (in, "checksum");
  bool url;
  struct copy_job j = { 0 };
  struct bhash h;
  size_t n;
  int rootfd = b->ctxfd, rc;
  char *dir = NULL, hex[33];
  bool add = in->kind == DF_ADD;
  for (size_t i = 0; in->args && in->args[i]; i++)
    {
      char *x = NULL;
      if (expand (b, s, in->args[i], &x, err) < 0)
        return cella_error_wrap (err, "%s", w);
      strv_push (&words, x);
      free (x);
    }
  n = strv_len (words);
  if (n < 2 && !(n == 1 && in->n_heredocs))
    return cella_error (err, 0, "%s: needs a source and a destination", w);
  url = add && from == NULL && !in->n_heredocs && is_url (words[0]);
  if (checksum && !url)
    return cella_error (err, 0, "%s: --checksum is for an ADD of a URL", w);
  bh_init (&h);
  /* the destination: absolute, relative to WORKDIR */
  {
    const char *d = words[n - 1];
    const char *wd = json_string_value (json_object_get (cfg_of (s), "WorkingDir"));
    cleanup_free char *abs = d[0] == '/' ? xstrdup (d) : xasprintf ("%s/%s", wd && *wd ? wd : "/", d);
    size_t dlen = strlen (d);
    dest = path_clean (abs);
    j.dest_dir
        = (dlen && d[dlen - 1] == '/') || (dlen >= 2 && strcmp (d + dlen - 2, "/.") == 0) || strcmp (d, ".") == 0;
  }
  if (from)
    {
      if (expand (b, s, from, &from_x, err) < 0)
        return cella_error_wrap (err, "%s", w);
      if (from_root (b, from_x, w, NULL, &src_key, err) < 0)
        return -1;
      bh_str (&h, src_key);
    }
  if (in->n_heredocs)
    {
      /* COPY <<EOF /dest */
      const struct df_heredoc *hd = &in->heredocs[0];
      if (hd->expand)
        {
          if (expand (b, s, hd->body, &heredoc, err) < 0)
            return cella_error_wrap (err, "%s", w);
        }
      else
        heredoc = xstrdup (hd->body);
      bh_str (&h, heredoc);
      j.heredoc_data = heredoc;
      j.heredoc_name = hd->name;
    }
  else if (url)
    {
      cleanup_free char *cx = NULL;
      if (checksum && expand (b, s, checksum, &cx, err) < 0)
        return cella_error_wrap (err, "%s", w);
      if (fetch_sources (b, words, n, cx, w, &dl, &sources, &h, err) < 0)
        {
          if (dl)
            remove_tree_mapped (dl);
          return -1;
        }
      if (n > 2)
        j.dest_dir = true;
    }
  else if (from == NULL && resolve_sources (b, words, n, add, b->ctxfd, NULL, w, &sources, &h, &j.dest_dir, err) < 0)
    return -1;
  {
    char *all = NULL;
    json_t *a = strv_json (words);
    char *aj = json_dumps (a, JSON_COMPACT);
    json_decref (a);
    all = xasprintf ("%s %s from=%s chown=%s chmod=%s", add ? "ADD" : "COPY", aj, from ? from : "", chown ? chown : "",
                     chmod ? chmod : "");
    free (aj);
    bh_hex (&h, hex);
    chain_step (s, all, hex);
    created = xasprintf ("%s %s", add ? "ADD" : "COPY", in->text + strcspn (in->text, " \t") + 1);
    free (all);
  }
  if (cache_get (b, s->chain, &key))
    {
      if (!b->o->quiet)
        printf ("--> Using cache %s\n", key);
      return stage_take (s, key, err);
    }
  if (from)
    {
      int r;
      if (from_root (b, from_x, w, &from_root_dir, &src_key2, err) < 0)
        return -1;
      if ((rootfd = open (from_root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return cella_error (err, errno, "open `%s`", from_root_dir);
      r = in->n_heredocs ? 0 : resolve_sources (b, words, n, add, rootfd, from, w, &sources, NULL, &j.dest_dir, err);
      close (rootfd);
      if (r < 0)
        return -1;
    }
  /* the job */
  j.where = w;
  j.src_root = from ? from_root_dir : url ? dl : b->context;
  j.is_context = from == NULL; /* a download: beneath its dir, owned by 0:0 like a context file */
  j.sources = sources;
  j.ignore = from || url ? NULL : b->ignore;
  j.dest = dest;
  j.add = add && from == NULL && !url; /* a downloaded archive is not unpacked, as docker does */
  if (stage_layers (s, &bottom, &layers, err) < 0)
    return -1;
  j.bottom = bottom;
  j.layers = layers;
  if (!j.dest_dir && !in->n_heredocs && sources && sources[0] && bottom)
    {
      /* dest is a directory the image has: the source goes in it */
      struct root_view view;
      if (root_view_open (&view, layers, bottom, err) < 0)
        return -1;
      int fd = root_view_openat (&view, dest, O_RDONLY | O_DIRECTORY);
      if (fd >= 0)
        {
          j.dest_dir = true;
          close (fd);
        }
      root_view_close (&view);
    }
  {
    struct stat st;
    if (!j.dest_dir && !url && sources && sources[0]
        && fstatat (j.is_context ? b->ctxfd : AT_FDCWD, j.is_context ? (*sources[0] ? sources[0] : ".") : "/", &st,
                    AT_SYMLINK_NOFOLLOW)
               == 0
        && S_ISDIR (st.st_mode) && j.is_context)
      j.dest_dir = true;
  }
  if (chown)
    {
      cleanup_free char *cx = NULL;
      if (expand (b, s, chown, &cx, err) < 0 || parse_chown (b, s, cx, w, &j.uid, &j.gid, err) < 0)
        return -1;
      j.chown_set = true;
    }
  if (chmod)
    {
      char *end;
      unsigned long m = strtoul (chmod, &end, 8);
      if (*chmod == '\0' || *end != '\0' || m > 07777)
        return cella_error (err, 0, "%s: --chmod `%s`: an octal mode", w, chmod);
      j.mode = (mode_t) m;
      j.chmod_set = true;
    }
  if ((dir = step_dir (b, err)) == NULL)
    return -1;
  {
    cleanup_free char *upper = xasprintf ("%s/upper", dir);
    j.upper = upper;
    if (ns_run_mapped (bc_copy_run, &j, err) < 0)
      {
        step_dir_remove (dir);
        return -1; /* its errors name the step */
      }
    rc = commit (b, s, upper, created, NULL, &key, err);
    step_dir_remove (dir);
    if (dl)
      remove_tree_mapped (dl);
    if (rc < 0)
      return cella_error_wrap (err, "%s", w);
  }
  cache_put (s->chain, key);
  return stage_take (s, key, err);
}

/* ---- the config instructions --------------------------------------------------------------------- */

static int
exec_or_shell (struct build *b, struct stage_state *s, const struct df_instr *in, json_t **out)
{
  (void) b;
  if (in->json)
    *out = strv_json (in->args);
  else
    {
      cleanup_strv char **shell = json_strv (json_object_get (cfg_of (s), "Shell"));
      if (shell == NULL)
        {
          strv_push (&shell, "/bin/sh");
          strv_push (&shell, "-c");
        }
      strv_push (&shell, in->args && in->args[0] ? in->args[0] : "");
      *out = strv_json (shell);
    }
  return 0;
}

static long long
duration_ns (const char *s, bool *ok)
{
  long long total = 0;
  *ok = *s != '\0';
  while (*s && *ok)
    {
      char *end;
      double v = strtod (s, &end);
      long long unit;
      if (end == s)
        {
          *ok = false;
          break;
        }
      s = end;
      if (strncmp (s, "ms", 2) == 0)
        unit = 1000000LL, s += 2;
      else if (strncmp (s, "us", 2) == 0)
        unit = 1000LL, s += 2;
      else if (strncmp (s, "ns", 2) == 0)
        unit = 1, s += 2;
      else if (*s == 's')
        unit = 1000000000LL, s++;
      else if (*s == 'm')
        unit = 60000000000LL, s++;
      else if (*s == 'h')
        unit = 3600000000000LL, s++;
      else
        {
          *ok = false;
          break;
        }
      total += (long long) (v * (double) unit);
    }
  return total;
}

static int
do_healthcheck (struct build *b, struct stage_state *s, const struct df_instr *in, const char *w, cella_error_t *err)
{
  json_t *hc = json_object ();
  const char *first = in->args && in->args[0] ? in->args[0] : "";
  static const char *const durs[][2] = { { "interval", "Interval" },
                                         { "timeout", "Timeout" },
                                         { "start-period", "StartPeriod" },
                                         { "start-interval", "StartInterval" } };
  (void) b;
  if (strcasecmp (first, "NONE") == 0)
    json_object_set_new (hc, "Test", json_pack ("[s]", "NONE"));
  else
    {
      json_t *t;
      if (in->json)
        {
          t = json_pack ("[s]", "CMD");
          for (size_t i = 1; in->args[i]; i++)
            json_array_append_new (t, json_string (in->args[i]));
        }
      else
        {
          /* the command text after CMD */
          cleanup_free char *line = NULL;
          for (size_t i = 1; in->args && in->args[i]; i++)
            {
              char *n = line ? xasprintf ("%s %s", line, in->args[i]) : xstrdup (in->args[i]);
              free (line);
              line = n;
            }
          if (line == NULL)
            {
              json_decref (hc);
              return cella_error (err, 0, "%s: HEALTHCHECK CMD needs a command", w);
            }
          t = json_pack ("[s, s]", "CMD-SHELL", line);
        }
      json_object_set_new (hc, "Test", t);
      for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++)
        {
          const char *v = flag_get (in, durs[i][0]);
          bool ok;
          long long ns;
          if (v == NULL)
            continue;
          ns = duration_ns (v, &ok);
          if (!ok)
            {
              json_decref (hc);
              return cella_error (err, 0, "%s: --%s `%s`: a duration (30s, 1m30s)", w, durs[i][0], v);
            }
          json_object_set_new (hc, durs[i][1], json_integer (ns));
        }
      if (flag_get (in, "retries"))
        json_object_set_new (hc, "Retries", json_integer (atoi (flag_get (in, "retries"))));
    }
  json_object_set_new (cfg_of (s), "Healthcheck", hc);
  return 0;
}

static int
pairs (struct build *b, struct stage_state *s, const struct df_instr *in, const char *w, bool env, cella_error_t *err)
{
  for (size_t i = 0; in->args && in->args[i]; i += 2)
    {
      cleanup_free char *k = NULL, *v = NULL;
      if (expand (b, s, in->args[i], &k, err) < 0 || (in->args[i + 1] && expand (b, s, in->args[i + 1], &v, err) < 0))
        return cella_error_wrap (err, "%s", w);
      if (in->args[i + 1] == NULL)
        break;
      if (env)
        {
          cleanup_strv char **e = json_strv (json_object_get (cfg_of (s), "Env"));
          cleanup_free char *kv = xasprintf ("%s=%s", k, v);
          env_set (&e, kv);
          json_object_set_new (cfg_of (s), "Env", strv_json (e));
        }
      else
        json_object_set_new (member (cfg_of (s), "Labels"), k, json_string (v));
    }
  return 0;
}

static int
do_arg (struct build *b, struct stage_state *s, const struct df_instr *in, cella_error_t *err)
{
  for (size_t i = 0; in->args && in->args[i]; i += 2)
    {
      const char *name = in->args[i], *given = kv_get (b->o->build_args, name);
      cleanup_free char *v = NULL, *kv = NULL;
      if (given)
        v = xstrdup (given);
      else if (in->args[i + 1])
        {
          if (expand (b, s, in->args[i + 1], &v, err) < 0)
            {
              cleanup_free char *w = where (b, in);
              return cella_error_wrap (err, "%s", w);
            }
        }
      else if (kv_get (b->meta_args, name))
        v = xstrdup (kv_get (b->meta_args, name));
      if (v)
        {
          kv = xasprintf ("%s=%s", name, v);
          env_set (&s->args, kv);
        }
      chain_step (s, "ARG", kv ? kv : name);
      if (in->args[i + 1] == NULL && given == NULL && v == NULL)
        continue;
    }
  return 0;
}

/* One metadata instruction onto the config. */
static int
do_meta (struct build *b, struct stage_state *s, const struct df_instr *in, cella_error_t *err)
{
  cleanup_free char *w = where (b, in), *v = NULL, *created = NULL;
  json_t *cfg = cfg_of (s);
  switch (in->kind)
    {
    case DF_ENV:
      if (pairs (b, s, in, w, true, err) < 0)
        return -1;
      break;
    case DF_LABEL:
      if (pairs (b, s, in, w, false, err) < 0)
        return -1;
      break;
    case DF_MAINTAINER:
      json_object_set_new (s->config, "author", json_string (in->args && in->args[0] ? in->args[0] : ""));
      break;
    case DF_CMD:
    case DF_ENTRYPOINT:
      {
        json_t *a;
        exec_or_shell (b, s, in, &a);
        if (in->kind == DF_ENTRYPOINT)
          {
            json_object_set_new (cfg, "Entrypoint", a);
            json_object_del (cfg, "Cmd"); /* a new ENTRYPOINT drops the Cmd it had, as docker does */
          }
        else
          json_object_set_new (cfg, "Cmd", a);
      }
      break;
    case DF_EXPOSE:
    case DF_VOLUME:
      for (size_t i = 0; in->args && in->args[i]; i++)
        {
          cleanup_strv char **words = NULL;
          cleanup_strv char **env = json_strv (json_object_get (cfg, "Env"));
          struct lookup_ctx c = { s, env };
          if (df_expand_words (in->args[i], b->df.escape, lookup, &c, &words, err) < 0)
            return cella_error_wrap (err, "%s", w);
          for (size_t k = 0; words && words[k]; k++)
            {
              if (in->kind == DF_VOLUME)
                {
                  json_object_set_new (member (cfg, "Volumes"), words[k], json_object ());
                  continue;
                }
              char *end, *slash = strchr (words[k], '/');
              long port = strtol (words[k], &end, 10);
              cleanup_free char *pk = NULL;
              if (end == words[k] || (end != slash && *end) || port < 1 || port > 65535
                  || (slash && strcmp (slash, "/tcp") && strcmp (slash, "/udp") && strcmp (slash, "/sctp")))
                return cella_error (err, 0, "%s: `%s` is not PORT[/tcp|udp|sctp]", w, words[k]);
              pk = xasprintf ("%ld%s", port, slash ? slash : "/tcp");
              json_object_set_new (member (cfg, "ExposedPorts"), pk, json_object ());
            }
        }
      break;
    case DF_USER:
    case DF_WORKDIR:
    case DF_STOPSIGNAL:
      if (in->args == NULL || in->args[0] == NULL)
        return cella_error (err, 0, "%s: needs a value", w);
      if (expand (b, s, in->args[0], &v, err) < 0)
        return cella_error_wrap (err, "%s", w);
      if (in->kind == DF_WORKDIR)
        {
          const char *old = json_string_value (json_object_get (cfg, "WorkingDir"));
          cleanup_free char *abs = v[0] == '/' ? xstrdup (v) : xasprintf ("%s/%s", old && *old ? old : "/", v);
          cleanup_free char *clean = path_clean (abs);
          json_object_set_new (cfg, "WorkingDir", json_string (clean));
        }
      else
        {
          if (in->kind == DF_STOPSIGNAL && signal_parse (v) < 0)
            return cella_error (err, 0, "%s: `%s` is not a signal", w, v);
          json_object_set_new (cfg, in->kind == DF_USER ? "User" : "StopSignal", json_string (v));
        }
      break;
    case DF_SHELL:
      if (!in->json)
        return cella_error (err, 0, "%s: SHELL needs the JSON form: SHELL [\"/bin/sh\", \"-c\"]", w);
      json_object_set_new (cfg, "Shell", strv_json (in->args));
      break;
    case DF_HEALTHCHECK:
      if (do_healthcheck (b, s, in, w, err) < 0)
        return -1;
      break;
    case DF_ONBUILD:
      {
        json_t *ob = json_object_get (cfg, "OnBuild");
        const char *t = in->onbuild ? in->onbuild->text : in->text + strcspn (in->text, " \t") + 1;
        if (!json_is_array (ob))
          {
            ob = json_array ();
            json_object_set_new (cfg, "OnBuild", ob);
          }
        json_array_append_new (ob, json_string (t));
      }
      break;
    default:
      return cella_error (err, 0, "%s: not a config instruction", w);
    }
  {
    /* the key: the instruction with its variables as they are now */
    cleanup_free char *text = json_dumps (cfg, JSON_COMPACT | JSON_SORT_KEYS);
    chain_step (s, in->text, text);
  }
  created = xasprintf ("/bin/sh -c #(nop) %s", in->text);
  history_add (s, created, true);
  s->dirty = true;
  return 0;
}

/* ---- stages -------------------------------------------------------------------------------------- */

static int
stage_from (struct build *b, struct stage_state *s, cella_error_t *err)
{
  const struct df_stage *st = s->st;
  cleanup_free char *base = NULL, *w = where (b, st->from);
  const struct df_stage *prev;
  struct image_record *r = NULL;
  int rc;
  if (df_expand (st->base, b->df.escape, meta_lookup, b->meta_args, &base, err) < 0)
    return cella_error_wrap (err, "%s", w);
  if (st->platform)
    {
      cleanup_free char *pf = NULL;
      if (df_expand (st->platform, b->df.escape, meta_lookup, b->meta_args, &pf, err) < 0
          || platform_check ("--platform", pf, err) < 0)
        return cella_error_wrap (err, "%s", w);
    }
  memset (s->chain, '0', 32);
  s->chain[32] = '\0';
  prev = df_stage_find (&b->df, base);
  if (prev && prev->index < st->index)
    {
      struct stage_state *p = &b->ss[prev->index];
      if (stage_build (b, (size_t) prev->index, err) < 0)
        return -1;
      s->key = p->key ? xstrdup (p->key) : NULL;
      s->base_dir = p->base_dir ? xstrdup (p->base_dir) : NULL;
      s->config = json_deep_copy (p->config);
      memcpy (s->chain, p->chain, sizeof s->chain);
      chain_step (s, "FROM stage", "");
      return 0;
    }
  if (prev)
    return cella_error (err, 0, "%s: stage `%s` comes after this one", w, base);
  if (strcmp (base, "scratch") == 0)
    {
      s->config = json_pack ("{s:s, s:s, s:{}, s:{s:s, s:[]}}", "architecture", "amd64", "os", "linux", "config",
                             "rootfs", "type", "layers", "diff_ids");
      json_object_set_new (s->config, "architecture",
                           json_string (
#if defined(__x86_64__)
                               "amd64"
#elif defined(__aarch64__)
                               "arm64"
#else
                               "unknown"
#endif
                               ));
      chain_step (s, "FROM scratch", "");
      return 0;
    }
  rc = image_lookup (base, &r, err);
  if (rc < 0)
    return cella_error_wrap (err, "%s", w);
  if (rc == 0 && b->o->pull)
    {
      /* --pull: the registry's image now, whatever the store has */
      char *const pargv[] = { (char *) "pull", base, NULL };
      int status = b->o->tool (pargv, err);
      image_record_free (r);
      r = NULL;
      if (status < 0)
        return cella_error_wrap (err, "%s", w);
      if (status != 0)
        return cella_error (err, 0, "%s: --pull: pulling `%s` failed (see above)", w, base);
      rc = image_lookup (base, &r, err);
      if (rc != 0)
        return rc < 0 ? -1 : cella_error (err, 0, "%s: image `%s`: pulled, but the store does not name it", w, base);
    }
  if (rc > 0)
    {
      char *rootfs = NULL;
      int d = default_image_ensure (base, &rootfs, err);
      if (d < 0)
        return cella_error_wrap (err, "%s", w);
      if (d == 0)
        {
          /* the embedded busybox: its rootfs is the base layer of what is committed */
          struct stat stb;
          cleanup_free char *ident = NULL;
          s->base_dir = rootfs;
          s->config = json_pack ("{s:s, s:s, s:{s:[s], s:[s]}, s:{s:s, s:[]}, s:[{s:s}]}", "architecture", "amd64",
                                 "os", "linux", "config", "Env", DEFAULT_PATH, "Cmd", "sh", "rootfs", "type", "layers",
                                 "diff_ids", "history", "created_by", "cella: the embedded busybox rootfs");
          ident = stat (rootfs, &stb) == 0
                      ? xasprintf ("%s %ld.%ld", rootfs, (long) stb.st_mtim.tv_sec, (long) stb.st_mtim.tv_nsec)
                      : xstrdup (rootfs);
          chain_step (s, "FROM busybox (embedded)", ident);
          return 0;
        }
      {
        char *const pargv[] = { (char *) "pull", (char *) "--quiet-if-present", base, NULL };
        int status = b->o->tool (pargv, err);
        if (status < 0)
          return -1;
        if (status != 0)
          return cella_error (err, 0, "%s: image `%s` is not in the store and the pull failed (see above)", w, base);
      }
      rc = image_lookup (base, &r, err);
      if (rc != 0)
        return rc < 0 ? -1 : cella_error (err, 0, "%s: image `%s`: pulled, but the store does not name it", w, base);
    }
  s->key = xstrdup (r->key);
  image_record_free (r);
  if (config_of (s->key, &s->config, NULL, err) < 0)
    return -1;
  if (!json_is_array (json_object_get (s->config, "history")))
    {
      /* a base without history: one entry per layer first, so that entries and layers pair up */
      json_t *h = json_array ();
      for (size_t i = 0; i < json_array_size (json_object_get (member (s->config, "rootfs"), "diff_ids")); i++)
        json_array_append_new (h, json_object ());
      json_object_set_new (s->config, "history", h);
    }
  chain_step (s, "FROM", s->key);
  return 0;
}

/* One instruction of a stage (or an ONBUILD trigger) onto the stage's state. */
static int
dispatch (struct build *b, struct stage_state *s, const struct df_instr *in, cella_error_t *err)
{
  switch (in->kind)
    {
    case DF_RUN:
      return do_run (b, s, in, err);
    case DF_COPY:
    case DF_ADD:
      return do_copy (b, s, in, err);
    case DF_ARG:
      return do_arg (b, s, in, err);
    case DF_FROM:
      return cella_error (err, 0, "%s:%d: FROM inside a stage", b->file_name, in->line);
    default:
      return do_meta (b, s, in, err);
    }
}

/* The base image's ONBUILD triggers, right after FROM, as docker runs them: parsed as instructions
 * of their own, in order; the new image does not inherit them (OnBuild is dropped first). Errors
 * name the FROM's FILE:LINE and the trigger. */
static int
onbuild_triggers (struct build *b, struct stage_state *s, cella_error_t *err)
{
  json_t *ob = json_object_get (cfg_of (s), "OnBuild");
  cleanup_free char *text = NULL, *w = NULL;
  struct dockerfile df = { 0 };
  size_t i;
  json_t *x;
  if (!json_is_array (ob) || json_array_size (ob) == 0)
    {
      if (ob)
        json_object_del (cfg_of (s), "OnBuild");
      return 0;
    }
  text = xstrdup ("FROM scratch\n");
  json_array_foreach (ob, i, x)
    {
      char *n;
      if (!json_is_string (x))
        continue;
      n = xasprintf ("%s%s\n", text, json_string_value (x));
      free (text);
      text = n;
    }
  w = where (b, s->st->from);
  if (df_parse (text, strlen (text), "ONBUILD", &df, err) < 0)
    return cella_error_wrap (err, "%s: the base image's ONBUILD triggers", w);
  json_object_del (cfg_of (s), "OnBuild");
  chain_step (s, "ONBUILD triggers", text);
  s->dirty = true;
  for (size_t k = 1; df.n_stages == 1 && k < df.stages[0].n_instrs; k++)
    {
      struct df_instr *in = &df.stages[0].instrs[k];
      if (in->kind == DF_FROM || in->kind == DF_ONBUILD || in->kind == DF_MAINTAINER)
        {
          cella_error (err, 0, "%s: ONBUILD trigger `%s`: not allowed in a trigger", w, in->text);
          dockerfile_free (&df);
          return -1;
        }
      if (!b->o->quiet)
        {
          printf ("--> ONBUILD trigger: %s\n", in->text);
          fflush (stdout);
        }
      in->line = s->st->from->line;
      if (dispatch (b, s, in, err) < 0)
        {
          cella_error_wrap (err, "%s: ONBUILD trigger", w);
          dockerfile_free (&df);
          return -1;
        }
    }
  dockerfile_free (&df);
  return 0;
}

static int stage_steps (struct build *b, struct stage_state *s, size_t i, cella_error_t *err);

static int
stage_build (struct build *b, size_t i, cella_error_t *err)
{
  struct stage_state *s = &b->ss[i];
  unsigned outer = b->step; /* a stage built for another's COPY --from: that one's numbering goes on after */
  int rc;
  if (s->done)
    return 0;
  b->step = b->first_step ? b->first_step[i] : b->step;
  rc = stage_steps (b, s, i, err);
  b->step = outer;
  return rc;
}

static int
stage_steps (struct build *b, struct stage_state *s, size_t i, cella_error_t *err)
{
  const struct df_stage *st = s->st;
  if (!b->o->quiet)
    printf ("[%zu/%zu] STEP %u/%u: %s\n", i + 1, b->n, ++b->step, b->steps, st->from->text);
  else
    b->step++;
  if (stage_from (b, s, err) < 0 || onbuild_triggers (b, s, err) < 0)
    return -1;
  for (size_t k = 1; k < st->n_instrs; k++)
    {
      const struct df_instr *in = &st->instrs[k];
      b->step++;
      if (!b->o->quiet)
        {
          printf ("[%zu/%zu] STEP %u/%u: %s\n", i + 1, b->n, b->step, b->steps, in->text);
          fflush (stdout);
        }
      if (dispatch (b, s, in, err) < 0)
        return -1;
    }
  s->done = true;
  return 0;
}

/* ---- independent stages, two at a time ------------------------------------------------------------ */

#define BUILD_PARALLEL 2

/* A stage that needs no other stage (FROM an image or scratch; no COPY --from or RUN --mount from=
 * naming a stage): it can be built beside another. */
static bool
stage_independent (struct build *b, size_t i)
{
  const struct df_stage *st = b->ss[i].st;
  cleanup_free char *base = NULL;
  cella_error_t e = NULL;
  if (df_expand (st->base, b->df.escape, meta_lookup, b->meta_args, &base, &e) < 0)
    {
      cella_error_free (&e);
      return false;
    }
  if (df_stage_find (&b->df, base))
    return false;
  for (size_t k = 1; k < st->n_instrs; k++)
    {
      const struct df_instr *in = &st->instrs[k];
      for (size_t f = 0; f < in->n_flags; f++)
        if ((strcmp (in->flags[f].name, "from") == 0 && in->flags[f].value)
            || (strcmp (in->flags[f].name, "mount") == 0 && in->flags[f].value && strstr (in->flags[f].value, "from=")))
          return false; /* an image or a stage: a stage is a dependency; keep it simple */
    }
  return true;
}

/* In the child: build stage i in a temp dir of its own and leave its state in STATE.json there. */
static void __attribute__ ((noreturn)) stage_child (struct build *b, size_t i, const char *dir)
{
  struct stage_state *s = &b->ss[i];
  cella_error_t e = NULL;
  json_t *st;
  cleanup_free char *path = xasprintf ("%s/state.json", dir);
  int rc;
  b->tmp = xstrdup (dir);
  setvbuf (stdout, NULL, _IOLBF, 0); /* the two stages' progress lines interleave as they happen */
  rc = stage_build (b, i, &e);
  st = rc == 0
           ? json_pack ("{s:s?, s:s?, s:s, s:O}", "key", s->key, "base_dir", s->base_dir, "chain", s->chain, "config",
                        s->config)
           : json_pack ("{s:s, s:i}", "error", e && e->msg ? e->msg : "the stage failed", "errno", e ? e->errno_ : 0);
  if (s->dirty && rc == 0)
    json_object_set_new (st, "dirty", json_true ());
  fflush (NULL);
  rc = json_dump_file (st, path, JSON_COMPACT) == 0 && rc == 0 ? 0 : 1;
  _exit (rc);
}

/* The child's result into the parent's stage state. */
static int
stage_adopt (struct build *b, size_t i, const char *dir, int wstatus, cella_error_t *err)
{
  struct stage_state *s = &b->ss[i];
  cleanup_free char *path = xasprintf ("%s/state.json", dir);
  json_t *st = json_load_file (path, 0, NULL);
  const char *msg = json_string_value (json_object_get (st, "error"));
  int rc = 0;
  if (st == NULL || msg)
    {
      if (msg)
        cella_error (err, (int) json_integer_value (json_object_get (st, "errno")), "%s", msg);
      else
        cella_error (err, 0, "stage %zu: the process building it ended with status %d", i + 1,
                     WIFEXITED (wstatus) ? WEXITSTATUS (wstatus) : 128 + WTERMSIG (wstatus));
      json_decref (st);
      return -1;
    }
  free (s->key);
  free (s->base_dir);
  json_decref (s->config);
  s->key = json_string_value (json_object_get (st, "key")) ? xstrdup (json_string_value (json_object_get (st, "key")))
                                                           : NULL;
  s->base_dir = json_string_value (json_object_get (st, "base_dir"))
                    ? xstrdup (json_string_value (json_object_get (st, "base_dir")))
                    : NULL;
  s->config = json_incref (json_object_get (st, "config"));
  snprintf (s->chain, sizeof s->chain, "%s",
            json_string_value (json_object_get (st, "chain")) ? json_string_value (json_object_get (st, "chain")) : "");
  s->dirty = json_is_true (json_object_get (st, "dirty"));
  s->done = true;
  if (!json_is_object (s->config))
    rc = cella_error (err, 0, "stage %zu: the process building it left no config", i + 1);
  json_decref (st);
  return rc;
}

/* Build the independent stages the target needs (not the target itself) BUILD_PARALLEL at a time,
 * each in a child process (a RUN redirects the process's stdio: threads would share it); the
 * parent takes each child's final state. Only when there are two or more. */
static int
stages_parallel (struct build *b, size_t target, cella_error_t *err)
{
  size_t cand[64], nc = 0, next = 0, running = 0;
  struct {
    pid_t pid;
    size_t i;
    char *dir;
  } kids[BUILD_PARALLEL];
  int rc = 0;
  for (size_t i = 0; i < target && nc < sizeof cand / sizeof cand[0]; i++)
    if (b->ss[i].needed && !b->ss[i].done && stage_independent (b, i))
      cand[nc++] = i;
  if (nc < 2)
    return 0;
  fflush (NULL);
  while (next < nc || running > 0)
    {
      if (rc == 0 && next < nc && running < BUILD_PARALLEL)
        {
          size_t i = cand[next++];
          char *dir = xasprintf ("%s/par-%zu", b->tmp, i);
          pid_t pid;
          if (mkdir (dir, 0700) < 0)
            {
              rc = cella_error (err, errno, "mkdir `%s`", dir);
              free (dir);
              continue;
            }
          pid = fork ();
          if (pid < 0)
            {
              rc = cella_error (err, errno, "fork");
              free (dir);
              continue;
            }
          if (pid == 0)
            stage_child (b, i, dir);
          kids[running].pid = pid;
          kids[running].i = i;
          kids[running].dir = dir;
          running++;
          continue;
        }
      if (running == 0)
        break;
      {
        int ws = 0;
        pid_t pid = waitpid (-1, &ws, 0);
        size_t k;
        if (pid < 0)
          {
            if (errno == EINTR)
              continue;
            rc = rc ? rc : cella_error (err, errno, "waitpid");
            break;
          }
        for (k = 0; k < running && kids[k].pid != pid; k++)
          ;
        if (k == running)
          continue; /* not ours (a RUN's helper is waited for by its own code) */
        {
          cella_error_t later = NULL; /* after the first failure, the others' errors are dropped */
          if (stage_adopt (b, kids[k].i, kids[k].dir, ws, rc == 0 ? err : &later) < 0)
            rc = -1;
          cella_error_free (&later);
        }
        free (kids[k].dir);
        kids[k] = kids[--running];
      }
    }
  return rc;
}

/* Which stages the target needs: its FROM chain and the --from stages of its COPYs. */
static void
mark_needed (struct build *b, size_t i)
{
  struct stage_state *s = &b->ss[i];
  const struct df_stage *st = s->st, *dep;
  cleanup_free char *base = NULL;
  cella_error_t e = NULL;
  if (s->needed)
    return;
  s->needed = true;
  if (df_expand (st->base, b->df.escape, meta_lookup, b->meta_args, &base, &e) == 0
      && (dep = df_stage_find (&b->df, base)) != NULL && (size_t) dep->index < i)
    mark_needed (b, (size_t) dep->index);
  cella_error_free (&e);
  for (size_t k = 1; k < st->n_instrs; k++)
    {
      const char *f
          = st->instrs[k].kind == DF_COPY || st->instrs[k].kind == DF_ADD ? flag_get (&st->instrs[k], "from") : NULL;
      if (f && (dep = df_stage_find (&b->df, f)) != NULL && (size_t) dep->index != i)
        mark_needed (b, (size_t) dep->index);
      /* RUN --mount=...,from=STAGE */
      for (size_t m = 0; st->instrs[k].kind == DF_RUN && m < st->instrs[k].n_flags; m++)
        {
          const struct df_flag *fl = &st->instrs[k].flags[m];
          cleanup_free char *spec = fl->value && strcmp (fl->name, "mount") == 0 ? xstrdup (fl->value) : NULL;
          char *save = NULL;
          for (char *kv = spec ? strtok_r (spec, ",", &save) : NULL; kv; kv = strtok_r (NULL, ",", &save))
            if (has_prefix (kv, "from=") && (dep = df_stage_find (&b->df, kv + 5)) != NULL && (size_t) dep->index != i)
              mark_needed (b, (size_t) dep->index);
        }
    }
}

static int
read_inputs (struct build *b, cella_error_t *err)
{
  const struct build_opts *o = b->o;
  cleanup_free char *text = NULL;
  size_t len;
  b->context = realpath (o->context, NULL);
  if (b->context == NULL)
    return cella_error (err, errno, "build context `%s`", o->context);
  b->ctxfd = open (b->context, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (b->ctxfd < 0)
    return cella_error (err, errno, "build context `%s`", o->context);
  if (o->file)
    b->file = xstrdup (o->file);
  else
    {
      b->file = xasprintf ("%s/Containerfile", b->context);
      if (access (b->file, F_OK) < 0)
        {
          free (b->file);
          b->file = xasprintf ("%s/Dockerfile", b->context);
        }
    }
  b->file_name = xstrdup (strrchr (b->file, '/') ? strrchr (b->file, '/') + 1 : b->file);
  if (read_file (b->file, &text, &len, err) < 0)
    return cella_error_wrap (err, "Containerfile");
  if (df_parse (text, len, b->file_name, &b->df, err) < 0)
    return -1;
  if (b->df.n_stages == 0)
    return cella_error (err, 0, "%s: no FROM: nothing to build", b->file_name);
  {
    static const char *const ign[] = { ".containerignore", ".dockerignore" };
    for (size_t i = 0; i < 2 && b->ignore == NULL; i++)
      {
        cleanup_free char *p = xasprintf ("%s/%s", b->context, ign[i]), *t = NULL;
        size_t n;
        cella_error_t e = NULL;
        if (read_file (p, &t, &n, &e) < 0)
          {
            cella_error_free (&e);
            continue;
          }
        if (df_ignore_parse (t, n, &b->ignore, err) < 0)
          return cella_error_wrap (err, "%s", p);
      }
  }
  {
    /* the automatic platform ARGs (FROM --platform=$BUILDPLATFORM; `ARG TARGETARCH` in a stage) */
    const char *a = host_arch ();
    cleanup_free char *tp = xasprintf ("TARGETPLATFORM=linux/%s", a), *ta = xasprintf ("TARGETARCH=%s", a),
                      *bp = xasprintf ("BUILDPLATFORM=linux/%s", a), *ba = xasprintf ("BUILDARCH=%s", a);
    const char *const pa[] = { tp, "TARGETOS=linux", ta, "TARGETVARIANT=", bp, "BUILDOS=linux", ba, "BUILDVARIANT=" };
    for (size_t i = 0; i < sizeof pa / sizeof pa[0]; i++)
      env_set (&b->meta_args, pa[i]);
  }
  /* the meta ARGs (before the first FROM), with --build-arg over their defaults */
  for (size_t i = 0; i < b->df.n_meta_args; i++)
    {
      const struct df_instr *in = &b->df.meta_args[i];
      for (size_t k = 0; in->args && in->args[k]; k += 2)
        {
          const char *given = kv_get (o->build_args, in->args[k]);
          cleanup_free char *v = NULL, *kv = NULL;
          if (given)
            v = xstrdup (given);
          else if (in->args[k + 1] && df_expand (in->args[k + 1], b->df.escape, meta_lookup, b->meta_args, &v, err) < 0)
            return -1;
          if (v)
            {
              kv = xasprintf ("%s=%s", in->args[k], v);
              env_set (&b->meta_args, kv);
            }
          if (in->args[k + 1] == NULL)
            break;
        }
    }
  return 0;
}

/* The temp dirs of builds that were killed (a build holds a flock on its own while it runs). */
static void
sweep_stale (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir (d)) != NULL)
    {
      cleanup_free char *p = NULL;
      int fd;
      if (strncmp (e->d_name, "tmp-", 4) != 0)
        continue;
      p = xasprintf ("%s/%s", dir, e->d_name);
      fd = open (p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        continue;
      if (flock (fd, LOCK_EX | LOCK_NB) == 0)
        remove_tree_mapped (p);
      close (fd);
    }
  closedir (d);
}

int
build_image (const struct build_opts *o, char **id, cella_error_t *err)
{
  struct build b = { .o = o, .ctxfd = -1, .tmpfd = -1 };
  cleanup_strv char **names = NULL;
  size_t target;
  int rc = -1;
  struct stage_state *t;
  cleanup_free char *key = NULL;
  /* the tags are checked before anything is built */
  for (size_t i = 0; o->tags && o->tags[i]; i++)
    {
      struct image_ref r = { 0 };
      char *n;
      if (image_ref_parse (o->tags[i], &r, err) < 0)
        return cella_error_wrap (err, "-t `%s`", o->tags[i]);
      if (r.digest)
        {
          image_ref_clear (&r);
          return cella_error (err, 0, "-t `%s`: a name to store cannot have a digest", o->tags[i]);
        }
      n = image_ref_name (&r);
      strv_push (&names, n);
      free (n);
      image_ref_clear (&r);
    }
  if (o->platform && platform_check ("--platform", o->platform, err) < 0)
    return -1;
  if (o->backend && strcmp (o->backend, "ns") != 0 && strcmp (o->backend, "vm") != 0)
    return cella_error (err, 0,
                        strcmp (o->backend, "proot") == 0
                            ? "--backend proot: not supported by cella build (a RUN step's layer is an overlay "
                              "upper dir (ns) or the root a VM hands back (vm)); use --backend ns or vm"
                            : "--backend `%s`: unknown (cella build runs RUN steps with ns or vm)",
                        o->backend);
  for (size_t i = 0; o->labels && o->labels[i]; i++)
    if (strchr (o->labels[i], '=') == NULL)
      return cella_error (err, 0, "--label `%s`: KEY=VALUE", o->labels[i]);
  if (read_inputs (&b, err) < 0)
    goto out;
  b.n = b.df.n_stages;
  b.ss = xzalloc (b.n * sizeof *b.ss);
  for (size_t i = 0; i < b.n; i++)
    b.ss[i].st = &b.df.stages[i];
  target = b.n - 1;
  if (o->target)
    {
      const struct df_stage *st = df_stage_find (&b.df, o->target);
      if (st == NULL)
        {
          cella_error (err, 0, "--target `%s`: no stage of that name in %s", o->target, b.file_name);
          goto out;
        }
      target = (size_t) st->index;
    }
  mark_needed (&b, target);
  b.first_step = xzalloc (b.n * sizeof *b.first_step);
  for (size_t i = 0; i < b.n; i++)
    if (b.ss[i].needed)
      {
        b.first_step[i] = b.steps;
        b.steps += (unsigned) b.ss[i].st->n_instrs;
      }
  /* a check of every --from before anything runs: an unknown stage that is not an image either */
  for (size_t i = 0; i < b.n; i++)
    for (size_t k = 1; b.ss[i].needed && k < b.ss[i].st->n_instrs; k++)
      {
        const struct df_instr *in = &b.ss[i].st->instrs[k];
        const char *f = in->kind == DF_COPY || in->kind == DF_ADD ? flag_get (in, "from") : NULL;
        struct image_record *r = NULL;
        if (f == NULL || df_stage_find (&b.df, f) || strchr (f, '$'))
          continue;
        if (image_lookup (f, &r, err) != 0)
          {
            cleanup_free char *w = where (&b, in);
            cella_error_free (err);
            cella_error (err, 0, "%s: --from `%s`: no stage of that name and no such image in the store", w, f);
            goto out;
          }
        image_record_free (r);
      }
  if (store_init (err) < 0)
    goto out;
  {
    cleanup_free char *dir = xasprintf ("%s/build", paths_data_root ()), *nid = paths_new_id ();
    if (mkdir_p (dir, 0700, err) < 0)
      goto out;
    b.tmp = xasprintf ("%s/tmp-%.12s", dir, nid);
    if (mkdir (b.tmp, 0700) < 0)
      {
        cella_error (err, errno, "mkdir `%s`", b.tmp);
        free (b.tmp);
        b.tmp = NULL;
        goto out;
      }
    /* held while this build runs: a later build removes only temp dirs nobody holds */
    b.tmpfd = open (b.tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b.tmpfd >= 0)
      flock (b.tmpfd, LOCK_EX);
    sweep_stale (dir);
  }
  if (stages_parallel (&b, target, err) < 0)
    goto out;
  for (size_t i = 0; i <= target; i++)
    if (b.ss[i].needed && stage_build (&b, i, err) < 0)
      goto out;
  t = &b.ss[target];
  /* --label, then the final image: committed when the config changed since the last layer */
  for (size_t i = 0; o->labels && o->labels[i]; i++)
    {
      size_t kl = strcspn (o->labels[i], "=");
      cleanup_free char *k = strndup (o->labels[i], kl);
      json_object_set_new (member (cfg_of (t), "Labels"), k, json_string (o->labels[i] + kl + 1));
      chain_step (t, "--label", o->labels[i]);
      t->dirty = true;
    }
  if (t->dirty || t->key == NULL)
    {
      chain_step (t, "COMMIT", "");
      if (!cache_get (&b, t->chain, &key))
        {
          if (commit (&b, t, NULL, NULL, NULL, &key, err) < 0)
            goto out;
          cache_put (t->chain, key);
        }
    }
  else
    key = xstrdup (t->key);
  if (names && image_refs_set (names, NULL, key, err) < 0)
    goto out;
  {
    struct image_record *r = NULL;
    if (image_record_read (key, &r, err) != 0)
      {
        if (*err == NULL)
          cella_error (err, 0, "the built image %s is not in the store", key);
        goto out;
      }
    *id = xstrdup (r->id);
    image_record_free (r);
  }
  if (!o->quiet)
    {
      printf ("COMMIT");
      for (size_t i = 0; names && names[i]; i++)
        printf (" %s", names[i]);
      printf ("\n--> %.12s\n", *id + strlen ("sha256:"));
    }
  rc = 0;
out:
  if (b.tmp)
    {
      remove_tree_mapped (b.tmp);
      free (b.tmp);
    }
  if (b.tmpfd >= 0)
    close (b.tmpfd);
  for (size_t i = 0; i < b.n; i++)
    {
      free (b.ss[i].key);
      free (b.ss[i].base_dir);
      json_decref (b.ss[i].config);
      strv_free (b.ss[i].args);
      free (b.ss[i].flat);
    }
  free (b.ss);
  free (b.first_step);
  if (b.have_facts)
    host_facts_free (&b.facts);
  if (b.ignore)
    df_ignore_free (b.ignore);
  if (b.n || b.df.stages)
    dockerfile_free (&b.df);
  strv_free (b.meta_args);
  if (b.ctxfd >= 0)
    close (b.ctxfd);
  free (b.context);
  free (b.file);
  free (b.file_name);
  return rc;
}
