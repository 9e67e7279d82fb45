/* A compose file (src/engine/compose_yaml.c): YAML from a project directory that may come from
 * anywhere (a cloned repository), with ${VAR} interpolation applied to every value. */
#include "fuzz.h"

#include "engine/compose.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_cstr (data, size);
  json_t *env = json_pack ("{s:s,s:s}", "SET", "value", "EMPTY", "");
  json_t *doc = NULL;
  cella_error_t err = NULL;
  int r = compose_yaml_parse ("fuzz.yaml", text, size, env, &doc, &err);
  FUZZ_CHECK ((r == 0) == (doc != NULL && json_is_object (doc)), "result %d with doc %p", r, (void *) doc);
  FUZZ_CHECK ((r == 0) == (err == NULL), "result %d and the error disagree", r);
  if (r == 0)
    {
      /* a value's interpolation, again, must not crash either */
      char *s = json_dumps (doc, JSON_COMPACT), *out = NULL;
      if (s && compose_interpolate (s, env, &out, &err) < 0)
        cella_error_free (&err);
      free (out);
      free (s);
    }
  cella_error_free (&err);
  json_decref (doc);
  json_decref (env);
  free (text);
  return 0;
}
