/* The unit tests' check of an error's message: true when *err holds a message with `needle`;
 * prints the message otherwise, and frees the error either way. */
#ifndef CELLA_ERRCHECK_H
#define CELLA_ERRCHECK_H
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

static bool __attribute__ ((unused)) err_has (cella_error_t *err, const char *needle)
{
  bool r = err && *err && strstr ((*err)->msg, needle) != NULL;
  if (!r)
    printf ("#   error was: %s\n", err && *err ? (*err)->msg : "(none)");
  cella_error_free (err);
  return r;
}
#endif
