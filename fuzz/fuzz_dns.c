/* A DNS packet as the embedded name server of a user-defined network reads it (src/net/dns.c):
 * any container of the network can send one. A query that parses is answered the way the server
 * does (an A record, NXDOMAIN, SERVFAIL), into a buffer that fits and one that does not; the
 * answer must parse back to the same question with the address in it. */
#include "fuzz.h"

#include "net/internal.h"

static void
answer (const uint8_t *query, const struct dns_msg *q, int rcode, uint32_t addr)
{
  uint8_t out[4096], small[40];
  struct dns_msg back;
  size_t n = dns_reply (query, q, rcode, addr, 5, out, sizeof out);
  size_t n_small = dns_reply (query, q, rcode, addr, 5, small, sizeof small);
  FUZZ_CHECK (n_small <= sizeof small, "the reply overran its buffer (%zu > %zu)", n_small, sizeof small);
  if (n == 0)
    return;
  FUZZ_CHECK (n <= sizeof out, "the reply overran its buffer");
  FUZZ_CHECK (dns_parse (out, n, &back) == 0, "our own reply does not parse");
  FUZZ_CHECK (strcmp (back.qname, q->qname) == 0 && back.qtype == q->qtype && back.qclass == q->qclass,
              "the reply asks another question: %s vs %s", back.qname, q->qname);
  FUZZ_CHECK (back.id == q->id && (back.flags & 0x8000) && (back.flags & 0xf) == rcode, "reply header");
  FUZZ_CHECK (back.first_a == addr, "the reply carries %08x, not %08x", back.first_a, addr);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct dns_msg q;
  if (dns_parse (data, size, &q) < 0)
    return 0;
  FUZZ_CHECK (q.qend <= size && strlen (q.qname) < sizeof q.qname, "parsed past the packet");
  answer (data, &q, 0, 0x0a580002);
  answer (data, &q, 3, 0);
  answer (data, &q, 2, 0);
  return 0;
}
