/* A container's saved plan (plan.json, src/plan/from_json.c), read at every start, exec and
 * inspect. It lives in cella's own store, but a damaged or edited one must give an error, not a
 * crash; one that reads must write back to text that reads the same. */
#include "fuzz.h"

#include "plan/plan.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_cstr (data, size);
  cella_error_t err = NULL;
  struct plan *p = NULL;
  if (plan_from_json (text, &p, &err) == 0)
    {
      char *once = plan_to_json (p), *twice;
      struct plan *back = NULL;
      FUZZ_CHECK (plan_from_json (once, &back, &err) == 0, "a written plan does not read back: %s\n%s",
                  err ? err->msg : "?", once);
      twice = plan_to_json (back);
      FUZZ_CHECK (strcmp (once, twice) == 0, "the plan changes on a second round trip:\n%s\n%s", once, twice);
      free (twice);
      free (once);
      plan_free (back);
      plan_free (p);
    }
  cella_error_free (&err);
  free (text);
  return 0;
}
