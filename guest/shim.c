/* The part of libcella's error API that src/vm/guestcfg.c uses, for the static
 * guest init (which does not link libcella: it stays free of jansson and
 * libseccomp). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

int
cella_error (cella_error_t *err, int errno_, const char *fmt, ...)
{
  va_list ap;
  cella_error_t e;
  if (err == NULL)
    return -1;
  e = calloc (1, sizeof *e);
  if (e == NULL)
    abort ();
  e->errno_ = errno_;
  e->status = EXIT_CELLA_ERROR;
  va_start (ap, fmt);
  if (vasprintf (&e->msg, fmt, ap) < 0)
    abort ();
  va_end (ap);
  cella_error_free (err);
  *err = e;
  return errno_ > 0 ? -errno_ : -1;
}

void
cella_error_free (cella_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}
