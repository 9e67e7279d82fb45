/* Small jansson helpers shared by every JSON reader and writer (records, the plan, the OCI config,
 * image metadata, doctor): one set of typed reads instead of a copy per file. */
#ifndef CELLA_UTIL_JSON_H
#define CELLA_UTIL_JSON_H

#include <jansson.h>
#include <stddef.h>

/* A NULL-terminated string vector as a JSON array (an empty one for NULL). */
json_t *json_strv (char *const *v);

/* Typed reads of o's member `key` (o may be NULL or not an object): a malloc'd copy of a string,
 * else NULL; an integer, else 0. */
char *json_member_str (json_t *o, const char *key);
long long json_member_int (json_t *o, const char *key);

/* The strings of array a as a NULL-terminated vector (other elements skipped); NULL when a is not
 * an array. */
char **json_strv_read (json_t *a);

#endif
