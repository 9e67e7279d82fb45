/* A growable byte buffer shared by the Containerfile parser's files (dockerfile.c,
 * dockerfile_expand.c, dockerignore.c); private to them. */
#ifndef CELLA_IMAGE_DOCKERFILE_BUF_H
#define CELLA_IMAGE_DOCKERFILE_BUF_H

#include <string.h>

#include "util/util.h"

struct df_buf {
  char *p;
  size_t n, cap;
};

static inline void
df_buf_add (struct df_buf *b, const char *s, size_t n)
{
  if (b->n + n + 1 > b->cap)
    {
      b->cap = (b->n + n + 1) * 2;
      b->p = xrealloc (b->p, b->cap);
    }
  if (n)
    memcpy (b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static inline void
df_buf_addc (struct df_buf *b, char c)
{
  df_buf_add (b, &c, 1);
}

/* The text so far as a NUL-terminated string the caller owns; the buffer is empty after. */
static inline char *
df_buf_steal (struct df_buf *b)
{
  char *r = b->p ? b->p : xstrdup ("");
  b->p = NULL;
  b->n = b->cap = 0;
  return r;
}

/* A NUL-terminated string vector built by appending owned strings (strv_push copies and walks). */
struct df_vec {
  char **v;
  size_t n;
};

static inline void
df_vec_take (struct df_vec *w, char *s)
{
  w->v = xrealloc (w->v, (w->n + 2) * sizeof (char *));
  w->v[w->n++] = s;
  w->v[w->n] = NULL;
}

static inline char **
df_vec_steal (struct df_vec *w)
{
  char **r = w->v ? w->v : strv_new (0);
  w->v = NULL;
  w->n = 0;
  return r;
}

#endif
