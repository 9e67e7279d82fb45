/* A container's saved plan (plan.json, src/plan/from_json.c), read at every start, exec and
 * inspect. It lives in cella's own store, but a damaged or edited one must give an error, not a
 * crash; one that reads must write back to text that reads the same. */
#include "fuzz_plan.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_cstr (data, size);
  cella_error_t err = NULL;
  struct plan *p = NULL;
  if (plan_from_json (text, &p, &err) == 0)
    {
      fuzz_plan_round_trip (p);
      plan_free (p);
    }
  cella_error_free (&err);
  free (text);
  return 0;
}
