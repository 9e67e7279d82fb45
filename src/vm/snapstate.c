/* A snapshot's saved state without the guest RAM's zero pages (docs/vm.md "Start from a
 * snapshot", "Cost").
 *
 * QEMU 7.2's migration stream writes every page of the guest's RAM: a page of data as its 4 KiB,
 * a zero page as a record of 9 to 20 bytes. Loading a zero page is not free, though: QEMU reads
 * the page to see whether it must clear it, which faults it in, and with QEMU's RAM madvised for
 * huge pages the first touch of each 2 MiB allocates and clears all of it, so a restore brought in
 * the whole guest RAM (256 MiB for 256 MiB) and spent most of its time in those faults. A VM being
 * restored starts with RAM that nothing has written (fresh anonymous memory, zero), so a zero
 * page's record there says nothing; dropping them leaves only the pages that hold data to load.
 *
 * The stream (QEMU's migration/savevm.c and ram.c, format version 3):
 *   "QEVM" be32(3) [0x07 be32(len) machine-name] sections... 0x00 (EOF) [vm description]
 *   section START 0x01 be32(id) u8(len) idstr be32(instance) be32(version) data footer
 *   section PART 0x02 / END 0x03 be32(id) data footer;  footer: 0x7e be32(id)
 * and the RAM section's ("ram") data, records until EOS:
 *   be64(addr | flags); flags ZERO 0x02, MEM_SIZE 0x04, PAGE 0x08, EOS 0x10, CONTINUE 0x20
 *   MEM_SIZE: the block list, u8(len) idstr be64(length) per block until the lengths sum to addr
 *   ZERO/PAGE: without CONTINUE u8(len) idstr (the block; CONTINUE: the previous record's), then
 *   ZERO: u8(fill byte); PAGE: the page's bytes
 * Only the RAM section's leading START/PART/END sections are rewritten (QEMU sends the devices'
 * state after them); everything else is copied as it is. Only zero pages of the guest's RAM block
 * (VM_STATE_RAM_BLOCK) go: a ROM block (firmware, tables) has contents before the load, which a
 * zero page in the stream would overwrite. A record kept after a dropped one that named the block
 * names it again (CONTINUE would refer to the dropped record's block otherwise). Anything else in
 * the stream (compressed or XBZRLE pages, RDMA hooks, another layout) is not rewritten: the state
 * stays as QEMU wrote it, which loads as before, only slower. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vm/vm.h"

#define RAM_ZERO 0x02ULL
#define RAM_MEM_SIZE 0x04ULL
#define RAM_PAGE 0x08ULL
#define RAM_EOS 0x10ULL
#define RAM_CONTINUE 0x20ULL
#define RAM_FLAGS 0xfffULL /* below the target page size (4 KiB) */
#define PAGE_BYTES 4096

#define SEC_START 0x01
#define SEC_PART 0x02
#define SEC_END 0x03
#define SEC_CONFIG 0x07
#define SEC_FOOTER 0x7e

struct rd {
  const unsigned char *p;
  size_t len, off;
  bool bad; /* ran past the end or met what we do not rewrite */
};

struct wr {
  int fd;
  unsigned char buf[1 << 16];
  size_t n;
  size_t total;
  int err; /* errno of a failed write */
};

static const unsigned char *
take (struct rd *r, size_t n)
{
  if (r->bad || r->len - r->off < n)
    {
      r->bad = true;
      return NULL;
    }
  r->off += n;
  return r->p + r->off - n;
}

static uint64_t
get_be (struct rd *r, size_t n)
{
  const unsigned char *b = take (r, n);
  uint64_t v = 0;
  for (size_t i = 0; b && i < n; i++)
    v = v << 8 | b[i];
  return v;
}

static void
put (struct wr *w, const void *data, size_t n)
{
  const unsigned char *d = data;
  while (n > 0 && w->err == 0)
    {
      if (w->n == sizeof w->buf)
        {
          if (write_all (w->fd, w->buf, w->n) < 0)
            w->err = errno ? errno : EIO;
          w->n = 0;
        }
      size_t k = sizeof w->buf - w->n < n ? sizeof w->buf - w->n : n;
      memcpy (w->buf + w->n, d, k);
      w->n += k;
      w->total += k;
      d += k;
      n -= k;
    }
}

static void
put_be64 (struct wr *w, uint64_t v)
{
  unsigned char b[8];
  for (int i = 7; i >= 0; i--, v >>= 8)
    b[i] = (unsigned char) v;
  put (w, b, sizeof b);
}

/* The block a record names (u8 length + idstr): its bytes in the stream, for comparing and
 * writing again. */
struct name {
  const unsigned char *s;
  size_t len;
};

static bool
name_is (struct name n, const char *s)
{
  return n.s && n.len == strlen (s) && memcmp (n.s, s, n.len) == 0;
}

static bool
name_eq (struct name a, struct name b)
{
  return a.s && b.s && a.len == b.len && memcmp (a.s, b.s, a.len) == 0;
}

struct ram {
  struct name cur;     /* the block of the stream's last record (what CONTINUE means in the input) */
  struct name emitted; /* the block the output's last named record set */
  struct vm_state_stats *st;
};

/* One RAM section's records, through EOS. */
static void
ram_records (struct rd *r, struct wr *w, struct ram *m)
{
  while (!r->bad)
    {
      size_t at = r->off;
      uint64_t h = get_be (r, 8), flags = h & RAM_FLAGS, addr = h & ~RAM_FLAGS;
      if (r->bad)
        return;
      if (flags & RAM_MEM_SIZE)
        {
          /* the block list: copied as it is */
          uint64_t left = addr;
          while (left > 0 && !r->bad)
            {
              size_t n = (size_t) get_be (r, 1);
              take (r, n);
              uint64_t blen = get_be (r, 8);
              if (blen == 0 || blen > left)
                r->bad = true;
              else
                left -= blen;
            }
          if (!r->bad)
            put (w, r->p + at, r->off - at);
          continue;
        }
      if (flags == RAM_EOS)
        {
          put (w, r->p + at, r->off - at);
          return;
        }
      if ((flags & ~(RAM_ZERO | RAM_PAGE | RAM_CONTINUE)) != 0 || !(flags & (RAM_ZERO | RAM_PAGE))
          || (flags & RAM_ZERO && flags & RAM_PAGE))
        {
          r->bad = true; /* compressed, XBZRLE, hooks...: not ours to rewrite */
          return;
        }
      if (!(flags & RAM_CONTINUE))
        {
          m->cur.len = (size_t) get_be (r, 1);
          m->cur.s = take (r, m->cur.len);
        }
      if (m->cur.s == NULL)
        {
          r->bad = true; /* CONTINUE before any block */
          return;
        }
      const unsigned char *body = take (r, flags & RAM_ZERO ? 1 : PAGE_BYTES);
      if (body == NULL)
        return;
      if (flags & RAM_ZERO && body[0] == 0 && name_is (m->cur, VM_STATE_RAM_BLOCK))
        {
          m->st->zero_dropped++;
          continue;
        }
      m->st->pages_kept++;
      if (name_eq (m->cur, m->emitted))
        put_be64 (w, addr | (flags & ~RAM_CONTINUE) | RAM_CONTINUE);
      else
        {
          unsigned char n = (unsigned char) m->cur.len;
          put_be64 (w, addr | (flags & ~RAM_CONTINUE));
          put (w, &n, 1);
          put (w, m->cur.s, m->cur.len);
          m->emitted = m->cur;
        }
      put (w, body, flags & RAM_ZERO ? 1 : PAGE_BYTES);
    }
}

/* The header and the RAM sections into w; false when the stream is not what we rewrite. Where
 * it stopped (r->off) the rest is copied as it is. */
static bool
rewrite (struct rd *r, struct wr *w, struct vm_state_stats *st)
{
  static const unsigned char magic[8] = { 'Q', 'E', 'V', 'M', 0, 0, 0, 3 };
  struct ram m = { .st = st };
  uint32_t ram_id = 0;
  bool have_ram = false;
  const unsigned char *h = take (r, sizeof magic);
  if (h == NULL || memcmp (h, magic, sizeof magic) != 0)
    return false;
  if (r->off < r->len && r->p[r->off] == SEC_CONFIG)
    {
      take (r, 1);
      take (r, (size_t) get_be (r, 4));
      /* its subsections (newer QEMUs, some machines) are not parsed: the RAM must follow */
      if (r->bad || r->off >= r->len || r->p[r->off] != SEC_START)
        return false;
    }
  put (w, r->p, r->off);
  for (;;)
    {
      size_t at = r->off;
      int type = r->off < r->len ? r->p[r->off] : -1;
      if (type == SEC_START && !have_ram)
        {
          take (r, 1);
          ram_id = (uint32_t) get_be (r, 4);
          size_t n = (size_t) get_be (r, 1);
          const unsigned char *id = take (r, n);
          take (r, 8); /* instance, version */
          if (r->bad || n != 3 || memcmp (id, "ram", 3) != 0)
            return false;
          have_ram = true;
        }
      else if ((type == SEC_PART || type == SEC_END) && have_ram && r->len - r->off >= 5
               && ((uint32_t) r->p[at + 1] << 24 | (uint32_t) r->p[at + 2] << 16 | (uint32_t) r->p[at + 3] << 8
                   | r->p[at + 4])
                      == ram_id)
        take (r, 5);
      else
        return have_ram; /* the devices' sections and the end: copied */
      put (w, r->p + at, r->off - at);
      ram_records (r, w, &m);
      at = r->off;
      if (get_be (r, 1) != SEC_FOOTER || get_be (r, 4) != ram_id || r->bad)
        return false;
      put (w, r->p + at, r->off - at);
    }
}

int
vm_state_compact (const void *state, size_t len, int out_fd, struct vm_state_stats *st, cella_error_t *err)
{
  struct rd r = { .p = state, .len = len };
  struct wr *w = xmalloc (sizeof *w);
  int ret;
  memset (st, 0, sizeof *st);
  w->fd = out_fd;
  w->n = w->total = 0;
  w->err = 0;
  if (!rewrite (&r, w, st))
    {
      st->zero_dropped = st->pages_kept = 0;
      free (w);
      return 1;
    }
  put (w, r.p + r.off, r.len - r.off);
  if (w->err == 0 && w->n > 0 && write_all (w->fd, w->buf, w->n) < 0)
    w->err = errno ? errno : EIO;
  st->bytes = w->total;
  ret = w->err ? cella_error (err, w->err, "write the snapshot's state") : 0;
  free (w);
  return ret;
}
