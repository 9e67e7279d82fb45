/* Small jansson helpers shared by the plan's JSON, the OCI config reader and doctor. */
#ifndef CELLA_UTIL_JSON_H
#define CELLA_UTIL_JSON_H

#include <jansson.h>
#include <stddef.h>

/* A NULL-terminated string vector as a JSON array (an empty one for NULL). */
json_t *json_strv (char *const *v);

#endif
