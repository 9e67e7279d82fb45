/* config.json of an OCI bundle (src/oci/config.c), and a `runc exec --process` file: whoever
 * hands cella a bundle controls every byte. A config that parses becomes a plan that cella saves
 * with the container and reads back at `start`: that round trip must hold too. */
#include "fuzz.h"

#include "oci/oci.h"
#include "plan/plan.h"

static void
check_round_trip (const struct plan *p)
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

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_cstr (data, size);
  cella_error_t err = NULL;
  struct plan *p = NULL;
  struct plan_process pr;
  if (oci_config_parse (text, "/nonexistent-bundle", "config.json", &p, &err) == 0)
    {
      check_round_trip (p);
      plan_free (p);
    }
  cella_error_free (&err);
  if (oci_process_parse (text, "process.json", &pr, &err) == 0)
    oci_process_clear (&pr);
  cella_error_free (&err);
  free (text);
  return 0;
}
