/* Small jansson helpers (see json.h). */
#include "json.h"

#include "util.h"

json_t *
json_strv (char *const *v)
{
  json_t *a = json_array ();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

char *
json_member_str (json_t *o, const char *key)
{
  const char *v = json_string_value (json_object_get (o, key));
  return v ? xstrdup (v) : NULL;
}

long long
json_member_int (json_t *o, const char *key)
{
  return json_integer_value (json_object_get (o, key));
}

char **
json_strv_read (json_t *a)
{
  char **v;
  size_t i, n = 0;
  json_t *e;
  if (!json_is_array (a))
    return NULL;
  v = strv_new (json_array_size (a));
  json_array_foreach (a, i, e)
    if (json_is_string (e))
      v[n++] = xstrdup (json_string_value (e));
  return v;
}
