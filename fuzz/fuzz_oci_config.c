/* config.json of an OCI bundle (src/oci/config.c), and a `runc exec --process` file: whoever
 * hands cella a bundle controls every byte. A config that parses becomes a plan that cella saves
 * with the container and reads back at `start`: that round trip must hold too. */
#include "fuzz_plan.h"

#include "oci/oci.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_cstr (data, size);
  cella_error_t err = NULL;
  struct plan *p = NULL;
  struct plan_process pr;
  if (oci_config_parse (text, "/nonexistent-bundle", "config.json", &p, &err) == 0)
    {
      fuzz_plan_round_trip (p);
      plan_free (p);
    }
  cella_error_free (&err);
  if (oci_process_parse (text, "process.json", &pr, &err) == 0)
    oci_process_clear (&pr);
  cella_error_free (&err);
  free (text);
  return 0;
}
