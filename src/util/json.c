/* Small jansson helpers (see json.h). */
#include "json.h"

json_t *
json_strv (char *const *v)
{
  json_t *a = json_array ();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}
