/* The state files cella reads back: the OCI runtime's state.json (src/oci/state.c), a named
 * container's state.json (src/engine/store.c) and a network's lease file (src/net/ipam.c) with
 * its published-port items. They live in cella's own directories; a damaged one must give an
 * error or be skipped, never a crash, and what reads must write back to the same text. */
#include "fuzz.h"

#include "engine/container.h"
#include "net/internal.h"
#include "oci/state.h"

static void
oci_state (const char *text)
{
  cella_error_t err = NULL;
  struct oci_state s;
  if (oci_state_parse (text, "fuzz", "state.json", &s, &err) == 0)
    {
      FUZZ_CHECK (s.bundle != NULL && s.annotations != NULL, "a parsed state lacks bundle or annotations");
      oci_state_clear (&s);
    }
  cella_error_free (&err);
}

static void
ctr_state (const uint8_t *data, size_t size)
{
  struct ctr_state s;
  if (ctr_state_parse ((const char *) data, size, &s) == 0)
    {
      FUZZ_CHECK (s.id != NULL, "a parsed container state has no id");
      FUZZ_CHECK (ctr_status_name (s.status)[0] != 'u', "status %d out of range", (int) s.status);
      FUZZ_CHECK (s.health_nlog >= 0 && s.health_nlog <= HEALTH_LOG_MAX, "%d health results", s.health_nlog);
      FUZZ_CHECK ((s.hc.test == NULL) == (s.health == HEALTH_NONE), "health %d with test %p", (int) s.health,
                  (void *) s.hc.test);
      ctr_state_clear (&s);
    }
}

static void
port_items (const char *ports)
{
  char *copy = strdup (ports), *save = NULL;
  struct net_port pt;
  for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
    if (net_port_item_parse (t, &pt) == 0)
      FUZZ_CHECK (memchr (pt.ip, '\0', sizeof pt.ip) && memchr (pt.proto, '\0', sizeof pt.proto),
                  "an unterminated field in `%s`", t);
  free (copy);
}

static void
leases (const char *text)
{
  struct leases l, back;
  char *once, *twice;
  leases_parse (text, &l);
  for (size_t i = 0; i < l.n; i++)
    port_items (l.v[i].ports);
  once = leases_format (&l);
  leases_parse (once, &back);
  twice = leases_format (&back);
  FUZZ_CHECK (back.n == l.n && strcmp (once, twice) == 0, "the lease file changes when read back:\n%s\n%s", once,
              twice);
  free (once);
  free (twice);
  leases_clear (&back);
  leases_clear (&l);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = fuzz_cstr (data, size);
  oci_state (text);
  ctr_state (data, size);
  leases (text);
  free (text);
  return 0;
}
