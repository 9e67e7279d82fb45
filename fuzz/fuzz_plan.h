/* The saved-plan round trip, checked by the targets whose parsers give a plan. */
#ifndef CELLA_FUZZ_PLAN_H
#define CELLA_FUZZ_PLAN_H

#include "fuzz.h"

#include "plan/plan.h"

/* p as cella saves it with a container must read back (`start`, `exec`, `inspect` read it), to a
 * plan that saves to the same text. */
static inline void
fuzz_plan_round_trip (const struct plan *p)
{
  cella_error_t err = NULL;
  struct plan *back = NULL;
  char *text = plan_to_json (p), *again;
  FUZZ_CHECK (text != NULL, "plan_to_json gave nothing");
  FUZZ_CHECK (plan_from_json (text, &back, &err) == 0, "the saved plan does not read back: %s\n%s",
              err ? err->msg : "?", text);
  again = plan_to_json (back);
  FUZZ_CHECK (strcmp (text, again) == 0, "the saved plan changes when read back:\n%s\n%s", text, again);
  free (again);
  plan_free (back);
  free (text);
}

#endif
