/* config.json of an OCI bundle (src/oci/config.c), a `runc exec --process` file, and a seccomp
 * profile in docker's format (`--security-opt seccomp=FILE`, read by the same code): whoever hands
 * cella a bundle or a profile controls every byte. A config that parses becomes a plan that cella
 * saves with the container and reads back at `start`: that round trip must hold too, and so must
 * a profile's, which the plan keeps in the OCI form. */
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
  {
    /* includes/excludes decided for a container with CAP_SYS_ADMIN on amd64, Linux 6.1 */
    struct oci_seccomp_host h
        = { .caps = (UINT64_C (1) << 21) | 1, .arch = "amd64", .scmp_arch = "SCMP_ARCH_X86_64", .kernel = { 6, 1 } };
    p = plan_new ();
    p->rootfs = strdup ("/r");
    if (oci_seccomp_profile_parse (text, "profile.json", &h, &p->process.seccomp_profile, &err) == 0)
      fuzz_plan_round_trip (p);
    plan_free (p);
    cella_error_free (&err);
  }
  free (text);
  return 0;
}
