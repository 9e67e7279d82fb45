/* Unit tests for cella compose's pure parts: interpolation, YAML to JSON (types, anchors, merge
 * keys, errors), shell splitting, and the model's normalization of service keys. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/compose.h"
#include "tap.h"
#include "errcheck.h"

static void
test_interpolate (void)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
    { "a ${SET} b", "a val b" }, { "$SET/x", "val/x" },   { "${UNSET:-d}", "d" },          { "${EMPTY:-d}", "d" },
    { "${EMPTY-d}", "" },        { "${UNSET-d}", "d" },   { "${SET:-d}", "val" },          { "$$SET", "$SET" },
    { "${SET:+alt}", "alt" },    { "${UNSET:+alt}", "" }, { "${UNSET:-${SET}x}", "valx" }, { "100$", "100$" },
    { "${UNSET}", "" },
  };
  json_t *env = json_pack ("{s:s,s:s}", "SET", "val", "EMPTY", "");
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    {
      cella_error_t err = NULL;
      char *out = NULL;
      int rc = compose_interpolate (cases[i].in, env, &out, &err);
      CHECK (rc == 0 && out && strcmp (out, cases[i].out) == 0, "interpolate `%s` -> `%s` (got `%s`)", cases[i].in,
             cases[i].out, out ? out : "(error)");
      free (out);
      cella_error_free (&err);
    }
  {
    cella_error_t err = NULL;
    char *out = NULL;
    CHECK (compose_interpolate ("${UNSET:?tell me}", env, &out, &err) < 0 && err_has (&err, "tell me"),
           "${VAR:?msg} fails with the message");
    CHECK (compose_interpolate ("${SET", env, &out, &err) < 0 && err_has (&err, "no closing"),
           "an unclosed ${ is an error");
    CHECK (compose_interpolate ("${1X}", env, &out, &err) < 0 && err_has (&err, "invalid interpolation"),
           "a bad name is an error");
  }
  json_decref (env);
}

static void
test_yaml (void)
{
  const char *y = "a: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: [x, 'y']\nbase: &b {k: v, n: 2}\n"
                  "g:\n  <<: *b\n  n: 3\nh: ${SET}\n";
  json_t *env = json_pack ("{s:s}", "SET", "val"), *j = NULL;
  cella_error_t err = NULL;
  CHECK (compose_yaml_parse ("t.yaml", y, strlen (y), env, &j, &err) == 0, "parse a document");
  CHECK (json_is_integer (json_object_get (j, "a")) && json_is_string (json_object_get (j, "b")),
         "plain 1 is a number, quoted \"1\" a string");
  CHECK (json_is_true (json_object_get (j, "c")) && json_is_null (json_object_get (j, "d"))
             && json_is_real (json_object_get (j, "e")),
         "booleans, null and floats");
  CHECK (json_array_size (json_object_get (j, "f")) == 2, "flow sequences");
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "g"), "k")), "v", "<< merges an anchor's mapping");
  CHECK (json_integer_value (json_object_get (json_object_get (j, "g"), "n")) == 3, "a key beside << wins");
  CHECK_STR (json_string_value (json_object_get (j, "h")), "val", "values are interpolated");
  json_decref (j);
  j = NULL;
  CHECK (compose_yaml_parse ("t.yaml", "a: [1,\n", 7, env, &j, &err) < 0 && err_has (&err, "t.yaml: line"),
         "a YAML error names the file and line");
  CHECK (compose_yaml_parse ("t.yaml", "a: 1\na: 2\n", 10, env, &j, &err) < 0 && err_has (&err, "appears twice"),
         "a duplicate key is an error");
  CHECK (compose_yaml_parse ("t.yaml", "- a\n", 4, env, &j, &err) < 0 && err_has (&err, "not a mapping"),
         "the top level must be a mapping");
  json_decref (env);
}

static void
test_shell_split (void)
{
  json_t *a = NULL;
  cella_error_t err = NULL;
  CHECK (compose_shell_split ("sh -c 'echo \"a b\"; x' \"q\\\"d\" e\\ f", &a, &err) == 0 && json_array_size (a) == 5,
         "shell split: 5 words");
  CHECK_STR (json_string_value (json_array_get (a, 2)), "echo \"a b\"; x", "single quotes keep everything");
  CHECK_STR (json_string_value (json_array_get (a, 3)), "q\"d", "double quotes take \\\"");
  CHECK_STR (json_string_value (json_array_get (a, 4)), "e f", "a backslash escapes a space");
  json_decref (a);
  CHECK (compose_shell_split ("a 'b", &a, &err) < 0 && err_has (&err, "unterminated"), "an open quote is an error");
}

static void
test_model (void)
{
  char dir[] = "/tmp/cella-test-compose-XXXXXX";
  cella_error_t err = NULL;
  struct compose_project p;
  CHECK (mkdtemp (dir) != NULL, "temp dir");
  char *f1 = xasprintf ("%s/compose.yaml", dir), *f2 = xasprintf ("%s/over.yaml", dir);
  const char *y1 = "services:\n  web:\n    image: busybox\n    ports: [\"8080:80\", \"127.0.0.1:9000:90/udp\"]\n"
                   "    volumes: [\"data:/d:ro\", \"./site:/s\", /anon]\n    environment: [A=1, B=2]\n"
                   "  db:\n    image: busybox\n    depends_on: [web]\nvolumes:\n  data:\n";
  const char *y2 = "services:\n  web:\n    environment: {B: 3}\n    command: echo hi\n";
  write_file_atomic (f1, y1, strlen (y1), 0644, NULL);
  write_file_atomic (f2, y2, strlen (y2), 0644, NULL);
  char *files[] = { f1, f2, NULL };
  struct compose_load_opts o = { files, "Demo", NULL, NULL };
  CHECK (compose_load (&o, &p, &err) == 0, "load two files");
  if (err)
    err_has (&err, "");
  json_t *web = compose_service (&p, "web");
  CHECK_STR (p.name, "demo", "project name lower-cased");
  CHECK_STR (json_string_value (json_object_get (json_object_get (web, "environment"), "B")), "3",
             "a later file's env wins");
  CHECK_STR (json_string_value (json_object_get (json_object_get (web, "environment"), "A")), "1",
             "env merged key by key");
  CHECK_STR (json_string_value (json_array_get (json_object_get (web, "command"), 1)), "hi", "a string command split");
  json_t *p1 = json_array_get (json_object_get (web, "ports"), 1);
  CHECK (json_integer_value (json_object_get (p1, "target")) == 90
             && strcmp (json_string_value (json_object_get (p1, "host_ip")) ?: "", "127.0.0.1") == 0
             && strcmp (json_string_value (json_object_get (p1, "protocol")) ?: "", "udp") == 0,
         "short port syntax with an address and protocol");
  json_t *v1 = json_array_get (json_object_get (web, "volumes"), 1);
  char *site = xasprintf ("%s/site", dir);
  CHECK_STR (json_string_value (json_object_get (v1, "source")), site,
             "a relative bind is under the project directory");
  CHECK (json_is_true (json_object_get (json_array_get (json_object_get (web, "volumes"), 0), "read_only")), ":ro");
  CHECK_STR (
      json_string_value (json_object_get (json_object_get (json_object_get (p.model, "volumes"), "data"), "name")),
      "demo_data", "volume name PROJECT_VOL");
  CHECK (p.order && strcmp (p.order[0], "web") == 0 && strcmp (p.order[1], "db") == 0, "dependencies first");
  char *h1 = compose_service_hash (&p, "web");
  json_object_set_new (json_object_get (web, "environment"), "C", json_string ("x"));
  char *h2 = compose_service_hash (&p, "web");
  CHECK (strcmp (h1, h2) != 0, "a changed service has another hash");
  free (h1);
  free (h2);
  free (site);
  compose_project_free (&p);
  unlink (f1);
  unlink (f2);
  rmdir (dir);
  free (f1);
  free (f2);
}

/* Load one compose file's text into p (in a temp dir, kept in *dirp for paths); rc of compose_load. */
static int
load_text (const char *yaml, struct compose_project *p, char **dirp, cella_error_t *err)
{
  char dir[] = "/tmp/cella-test-compose-XXXXXX";
  if (mkdtemp (dir) == NULL)
    return -1;
  char *f = xasprintf ("%s/compose.yaml", dir);
  write_file_atomic (f, yaml, strlen (yaml), 0644, NULL);
  char *files[] = { f, NULL };
  struct compose_load_opts o = { files, "proj", NULL, NULL };
  int rc = compose_load (&o, p, err);
  unlink (f);
  rmdir (dir);
  free (f);
  *dirp = xstrdup (dir);
  return rc;
}

static void
test_build (void)
{
  cella_error_t err = NULL;
  struct compose_project p;
  char *dir = NULL;
  const char *y = "services:\n  a:\n    build: ./app\n"
                  "  b:\n    image: mine/b:1\n    build:\n      context: ctx\n      dockerfile: Other\n"
                  "      args: {V: \"2\", HOSTV: null}\n      target: final\n      labels: [l=1]\n";
  CHECK (load_text (y, &p, &dir, &err) == 0, "build: string and mapping forms load");
  if (err)
    err_has (&err, "");
  json_t *a = compose_service (&p, "a"), *b = compose_service (&p, "b");
  char *actx = xasprintf ("%s/app", dir), *bctx = xasprintf ("%s/ctx", dir);
  CHECK_STR (json_string_value (json_object_get (a, "image")), "proj-a", "a built image is named PROJECT-SERVICE");
  CHECK_STR (json_string_value (json_object_get (json_object_get (a, "build"), "context")), actx,
             "a string build is the context, under the project directory");
  CHECK_STR (json_string_value (json_object_get (b, "image")), "mine/b:1", "image: names the built image");
  json_t *bb = json_object_get (b, "build");
  CHECK_STR (json_string_value (json_object_get (bb, "context")), bctx, "build.context resolved");
  CHECK_STR (json_string_value (json_object_get (bb, "dockerfile")), "Other", "build.dockerfile kept");
  CHECK_STR (json_string_value (json_object_get (json_object_get (bb, "args"), "V")), "2", "build.args as a map");
  CHECK (json_is_null (json_object_get (json_object_get (bb, "args"), "HOSTV")), "a bare build arg stays null");
  CHECK_STR (json_string_value (json_object_get (bb, "target")), "final", "build.target");
  CHECK_STR (json_string_value (json_object_get (json_object_get (bb, "labels"), "l")), "1", "build.labels list");
  compose_project_free (&p);
  free (actx);
  free (bctx);
  free (dir);
  CHECK (load_text ("services:\n  a:\n    build: {context: ., ssh: [default]}\n", &p, &dir, &err) < 0
             && err_has (&err, "build.ssh"),
         "an unsupported build key is an error naming it");
  compose_project_free (&p);
  free (dir);
  CHECK (load_text ("services:\n  a:\n    command: [x]\n", &p, &dir, &err) < 0 && err_has (&err, "neither"),
         "a service without image and build is an error");
  compose_project_free (&p);
  free (dir);
}

static void
test_replicas (void)
{
  cella_error_t err = NULL;
  struct compose_project p;
  char *dir = NULL, *svc = NULL, *h1, *h2;
  int n = -1;
  const char *y = "services:\n  a:\n    image: x\n    deploy: {replicas: 3}\n    ports: [\"80\"]\n"
                  "  b:\n    image: x\n    scale: 0\n"
                  "  c:\n    image: x\n    ports: [\"8080:80\"]\n"
                  "  d:\n    image: x\n    container_name: fixed\n  e:\n    image: x\n";
  CHECK (load_text (y, &p, &dir, &err) == 0, "deploy.replicas and scale load");
  if (err)
    err_has (&err, "");
  CHECK (compose_service_replicas (&p, "a") == 3, "deploy.replicas: 3");
  CHECK (compose_service_replicas (&p, "b") == 0, "scale: 0");
  CHECK (compose_service_replicas (&p, "e") == 1, "no count: 1");
  CHECK (compose_check_replicas (&p, "a", &err) == 0, "3 replicas with an ephemeral host port are fine");
  CHECK (compose_check_replicas (&p, "c", &err) == 0 && compose_check_replicas (&p, "d", &err) == 0,
         "one replica with a fixed port or container_name is fine");
  h1 = compose_service_hash (&p, "a");
  CHECK (compose_set_replicas (&p, "a", 1, &err) == 0 && compose_service_replicas (&p, "a") == 1,
         "--scale a=1 sets it");
  h2 = compose_service_hash (&p, "a");
  CHECK_STR (h1, h2, "the config hash leaves out the replica count (scaling recreates nothing)");
  free (h1);
  free (h2);
  CHECK (compose_set_replicas (&p, "c", 2, &err) == 0 && compose_check_replicas (&p, "c", &err) < 0
             && err_has (&err, "service `c` publishes fixed host port 8080"),
         "2 replicas with a fixed host port: an error naming the service and the port");
  CHECK (compose_set_replicas (&p, "d", 2, &err) == 0 && compose_check_replicas (&p, "d", &err) < 0
             && err_has (&err, "container_name `fixed`"),
         "2 replicas with container_name: an error naming it");
  CHECK (compose_set_replicas (&p, "nosuch", 2, &err) < 0 && err_has (&err, "no such service: nosuch"),
         "--scale of an unknown service is an error naming it");
  compose_project_free (&p);
  free (dir);
  CHECK (compose_scale_parse ("web=12", &svc, &n, &err) == 0 && svc && strcmp (svc, "web") == 0 && n == 12,
         "--scale web=12 parses");
  free (svc);
  svc = NULL;
  CHECK (compose_scale_parse ("web=0", &svc, &n, &err) == 0 && n == 0, "--scale web=0 parses");
  free (svc);
  svc = NULL;
  static const char *const bad[] = { "web", "=3", "web=", "web=-1", "web=x", "web=1001" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    CHECK (compose_scale_parse (bad[i], &svc, &n, &err) < 0 && err_has (&err, bad[i]) && svc == NULL,
           "--scale `%s` is an error naming it", bad[i]);
  CHECK (load_text ("services:\n  a:\n    image: x\n    deploy: {replicas: -1}\n", &p, &dir, &err) < 0
             && err_has (&err, "deploy.replicas"),
         "a negative deploy.replicas is an error naming the key");
  compose_project_free (&p);
  free (dir);
  CHECK (load_text ("services:\n  a:\n    image: x\n    scale: two\n", &p, &dir, &err) < 0 && err_has (&err, "`scale`"),
         "a non-integer scale is an error naming the key");
  compose_project_free (&p);
  free (dir);
}

int
main (void)
{
  test_interpolate ();
  test_yaml ();
  test_shell_split ();
  test_model ();
  test_build ();
  test_replicas ();
  return tap_done ();
}
