/* Minimal TAP output for the C unit tests: "ok N - what" / "not ok N - what". */
#ifndef CELLA_TAP_H
#define CELLA_TAP_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static void __attribute__ ((format (printf, 2, 3), unused)) tap_check (bool ok, const char *fmt, ...)
{
  va_list ap;
  printf ("%sok %d - ", ok ? "" : "not ", ++tap_n);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  putchar ('\n');
  if (!ok)
    tap_failed++;
}

/* An "ok" that says why it did not run: only for what the machine lacks. */
static void __attribute__ ((format (printf, 2, 3), unused)) tap_skip (const char *why, const char *fmt, ...)
{
  va_list ap;
  printf ("ok %d - ", ++tap_n);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf (" # SKIP %s\n", why);
}

#define CHECK(cond, ...) tap_check ((cond), __VA_ARGS__)
#define CHECK_STR(got, want, what)                                                                                     \
  do                                                                                                                   \
    {                                                                                                                  \
      const char *g_ = (got), *w_ = (want);                                                                            \
      bool ok_ = g_ && w_ && strcmp (g_, w_) == 0;                                                                     \
      tap_check (ok_, "%s", what);                                                                                     \
      if (!ok_)                                                                                                        \
        printf ("#   got:  %s\n#   want: %s\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");                               \
    }                                                                                                                  \
  while (0)

static int __attribute__ ((unused)) tap_done (void)
{
  printf ("1..%d\n", tap_n);
  return tap_failed ? 1 : 0;
}
#endif
