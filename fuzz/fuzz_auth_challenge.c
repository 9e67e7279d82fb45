/* A registry's WWW-Authenticate header (src/image/tool/registry.c): the registry, or anyone
 * between cella and it on plain http, writes it; the realm it names is where cella then sends
 * the user's credentials. */
#include "fuzz.h"

#include "image/tool/registry.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_cstr (data, size);
  struct reg_challenge c;
  int r = reg_challenge_parse (text, &c);
  FUZZ_CHECK ((r == 0) == (c.scheme != REG_AUTH_NONE), "result %d with scheme %d", r, (int) c.scheme);
  FUZZ_CHECK (c.scheme == REG_AUTH_BEARER || c.scheme == REG_AUTH_BASIC || c.scheme == REG_AUTH_NONE, "scheme");
  if (c.scheme == REG_AUTH_NONE)
    FUZZ_CHECK (c.realm == NULL && c.service == NULL && c.scope == NULL && c.error == NULL,
                "parameters kept without a challenge");
  reg_challenge_clear (&c);
  registry_host_is_local (text);
  free (text);
  return 0;
}
