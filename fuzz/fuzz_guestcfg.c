/* The vm backend's guest config (src/vm/guestcfg.c): the host writes it, the guest init (PID 1
 * in the VM, guest/init.c) parses it from the config disk, which the host's other users cannot
 * reach but which a damaged or hostile disk image could hold. What parses must format to text
 * that parses to the same text again. */
#include "fuzz.h"

#include "vm/guest.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct vm_guest_config c, back;
  cella_error_t err = NULL;
  char *once, *twice;
  size_t n1, n2;
  if (guestcfg_parse ((const char *) data, size, &c, &err) < 0)
    {
      cella_error_free (&err);
      return 0;
    }
  once = guestcfg_format (&c, &n1);
  FUZZ_CHECK (once != NULL && strlen (once) == n1, "format gave %zu bytes, strlen %zu", n1, once ? strlen (once) : 0);
  FUZZ_CHECK (guestcfg_parse (once, n1, &back, &err) == 0, "our own config does not parse: %s\n%s",
              err ? err->msg : "?", once);
  twice = guestcfg_format (&back, &n2);
  FUZZ_CHECK (n1 == n2 && memcmp (once, twice, n1) == 0, "the config changes when read back:\n%s\n%s", once, twice);
  free (once);
  free (twice);
  guestcfg_free (&back);
  guestcfg_free (&c);
  return 0;
}
