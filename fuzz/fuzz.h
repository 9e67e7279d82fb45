/* What every fuzz target shares (docs/testing.md "Fuzzing"). Each fuzz_<parser>.c defines
 * LLVMFuzzerTestOneInput: libFuzzer calls it (make fuzz, clang), and so does replay.c, the plain
 * driver that `make check` builds with gcc and ASan+UBSan to run every corpus file once.
 *
 * A target feeds the bytes to one parser of untrusted input and, where the parser has a writer,
 * checks the round trip; a broken promise is an abort with a message (libFuzzer keeps the input). */
#ifndef CELLA_FUZZ_H
#define CELLA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* The bytes as a NUL-terminated string (an embedded NUL ends it early, as it would for a C
 * caller reading the same file); free it. */
static inline char *
fuzz_cstr (const uint8_t *data, size_t size)
{
  char *s = malloc (size + 1);
  if (s == NULL)
    abort ();
  if (size)
    memcpy (s, data, size);
  s[size] = '\0';
  return s;
}

#define FUZZ_CHECK(cond, ...)                                                                                          \
  do                                                                                                                   \
    {                                                                                                                  \
      if (!(cond))                                                                                                     \
        {                                                                                                              \
          fprintf (stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
          fprintf (stderr, __VA_ARGS__);                                                                               \
          fputc ('\n', stderr);                                                                                        \
          abort ();                                                                                                    \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

#endif
