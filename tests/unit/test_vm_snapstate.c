/* Unit tests for vm_state_compact (src/vm/snapstate.c): a QEMU migration stream made here record
 * by record (the layout QEMU 7.2 writes for -M microvm, as read from a real snapshot's state)
 * loses the zero pages of the guest RAM's block and nothing else: pages with data, a ROM block's
 * zero page, the block list, the sections' footers and the devices' state after them stay; a
 * record kept after a dropped one names its block again; a stream of another shape is left alone.
 * (t_vm's snapshot tests restore real VMs from states written this way.) */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tap.h"
#include "vm/vm.h"

struct buf {
  unsigned char *p;
  size_t len;
};

static void
add (struct buf *b, const void *d, size_t n)
{
  b->p = realloc (b->p, b->len + n);
  memcpy (b->p + b->len, d, n);
  b->len += n;
}

static void
add_u8 (struct buf *b, unsigned v)
{
  unsigned char c = (unsigned char) v;
  add (b, &c, 1);
}

static void
add_be (struct buf *b, uint64_t v, int n)
{
  for (int i = n - 1; i >= 0; i--)
    add_u8 (b, (unsigned) (v >> (8 * i)) & 0xff);
}

static void
add_name (struct buf *b, const char *s)
{
  add_u8 (b, (unsigned) strlen (s));
  add (b, s, strlen (s));
}

#define ZERO 0x02
#define MEM_SIZE 0x04
#define PAGE 0x08
#define EOS 0x10
#define CONT 0x20

/* A record: block NULL means CONTINUE. A page's bytes are its first byte `fill`. */
static void
rec (struct buf *b, uint64_t addr, unsigned flags, const char *block, unsigned fill)
{
  add_be (b, addr | flags | (block ? 0 : CONT), 8);
  if (block)
    add_name (b, block);
  if (flags & ZERO)
    add_u8 (b, fill);
  else
    {
      unsigned char page[4096];
      memset (page, 0, sizeof page);
      page[0] = (unsigned char) fill;
      add (b, page, sizeof page);
    }
}

static void
header (struct buf *b)
{
  add (b, "QEVM", 4);
  add_be (b, 3, 4);
  add_u8 (b, 0x07);
  add_be (b, 7, 4);
  add (b, "microvm", 7);
  /* START ram: the block list */
  add_u8 (b, 0x01);
  add_be (b, 2, 4);
  add_name (b, "ram");
  add_be (b, 0, 4);
  add_be (b, 4, 4);
  add_be (b, (0x20000 + 0x10000) | MEM_SIZE, 8);
  add_name (b, "microvm.ram");
  add_be (b, 0x20000, 8);
  add_name (b, "pc.bios");
  add_be (b, 0x10000, 8);
  add_be (b, EOS, 8);
  add_u8 (b, 0x7e);
  add_be (b, 2, 4);
}

static const char tail[] = "\x04\x00\x00\x00\x05\x03cpu device state bytes \x10\x00\x00\x00\x00\x7e\x00";

/* The stream: PART and END sections of RAM, then a device section and the end (copied). */
static struct buf
stream (unsigned extra_flag)
{
  struct buf b = { 0 };
  header (&b);
  add_u8 (&b, 0x02);
  add_be (&b, 2, 4);
  rec (&b, 0x0000, ZERO, "microvm.ram", 0); /* dropped: names the block */
  rec (&b, 0x1000, PAGE, NULL, 0xaa);       /* kept: must name microvm.ram itself now */
  rec (&b, 0x2000, ZERO, NULL, 0);          /* dropped */
  rec (&b, 0x0000, ZERO, "pc.bios", 0);     /* kept: a ROM block's zero page */
  rec (&b, 0x3000, ZERO, "microvm.ram", 0); /* dropped */
  rec (&b, 0x4000, PAGE, NULL, 0xbb);       /* kept: names microvm.ram (the output's last was pc.bios) */
  rec (&b, 0x5000, PAGE, NULL, 0xcc);       /* kept, CONTINUE */
  rec (&b, 0x6000, ZERO, NULL, 0x11);       /* kept: a fill byte that is not zero */
  if (extra_flag)
    rec (&b, 0x7000, PAGE | extra_flag, NULL, 0);
  add_be (&b, EOS, 8);
  add_u8 (&b, 0x7e);
  add_be (&b, 2, 4);
  add_u8 (&b, 0x03);
  add_be (&b, 2, 4);
  rec (&b, 0x8000, ZERO, NULL, 0);    /* dropped: CONTINUE of microvm.ram across sections */
  rec (&b, 0x9000, PAGE, NULL, 0xdd); /* kept, CONTINUE (the output's last named microvm.ram) */
  add_be (&b, EOS, 8);
  add_u8 (&b, 0x7e);
  add_be (&b, 2, 4);
  add (&b, tail, sizeof tail - 1);
  return b;
}

/* Compact `in` through a memfd; the output (malloc'd) in *out. */
static int
compact (struct buf in, struct buf *out, struct vm_state_stats *st)
{
  cella_error_t err = NULL;
  int fd = memfd_create ("state", 0);
  int r = vm_state_compact (in.p, in.len, fd, st, &err);
  cella_error_free (&err);
  off_t n = lseek (fd, 0, SEEK_END);
  out->p = malloc (n > 0 ? (size_t) n : 1);
  out->len = n > 0 ? (size_t) pread (fd, out->p, (size_t) n, 0) : 0;
  close (fd);
  return r;
}

/* The RAM records of the output as "addr:flags:block:fill" lines (block "-" when CONTINUE). */
static void
describe (const struct buf *o, size_t from, char *desc, size_t cap)
{
  size_t i = from, n = 0;
  desc[0] = '\0';
  while (i + 8 <= o->len)
    {
      uint64_t h = 0;
      for (int k = 0; k < 8; k++)
        h = h << 8 | o->p[i + (size_t) k];
      i += 8;
      unsigned flags = (unsigned) (h & 0xfff);
      if (flags == EOS)
        {
          /* footer, then maybe the next RAM section's header */
          i += 5;
          if (i < o->len && o->p[i] == 0x03)
            {
              i += 5;
              continue;
            }
          break;
        }
      char block[64] = "-";
      if (!(flags & CONT))
        {
          size_t l = o->p[i++];
          snprintf (block, sizeof block, "%.*s", (int) l, (const char *) o->p + i);
          i += l;
        }
      unsigned fill = o->p[i];
      i += flags & ZERO ? 1 : 4096;
      n += (size_t) snprintf (desc + n, cap - n, "%llx:%s:%s:%02x ", (unsigned long long) (h & ~0xfffULL),
                              flags & ZERO ? "zero" : "page", block, fill);
    }
}

int
main (void)
{
  struct vm_state_stats st;
  struct buf in = stream (0), out = { 0 };
  char desc[1024];
  CHECK (compact (in, &out, &st) == 0, "a microvm stream is rewritten");
  CHECK (st.zero_dropped == 4 && st.pages_kept == 6,
         "4 zero pages of microvm.ram dropped, 6 records kept (got %zu, %zu)", st.zero_dropped, st.pages_kept);
  CHECK (st.bytes == out.len && out.len < in.len, "the stats count what was written");
  /* the header and the START section (block list) are as they were */
  size_t start_len = 8 + 1 + 4 + 7 + 1 + 4 + 4 + 4 + 4 + 8 + 12 + 8 + 8 + 8 + 8 + 5;
  CHECK (out.len > start_len + 5 && memcmp (in.p, out.p, start_len + 5) == 0,
         "header, block list and the first section header copied as they are");
  describe (&out, start_len + 5, desc, sizeof desc);
  CHECK_STR (desc,
             "1000:page:microvm.ram:aa 0:zero:pc.bios:00 4000:page:microvm.ram:bb 5000:page:-:cc 6000:zero:-:11 "
             "9000:page:-:dd ",
             "kept records, each after a dropped one naming its block");
  CHECK (out.len >= sizeof tail - 1 && memcmp (out.p + out.len - (sizeof tail - 1), tail, sizeof tail - 1) == 0,
         "the devices' state and the end copied as they are");
  free (out.p);
  free (in.p);

  /* What we do not rewrite: the state stays as QEMU wrote it. */
  in = stream (0x100); /* a compressed page */
  out = (struct buf){ 0 };
  CHECK (compact (in, &out, &st) == 1 && st.zero_dropped == 0, "a compressed page: not rewritten (1)");
  free (out.p);
  in.p[3] = 'X';
  out = (struct buf){ 0 };
  CHECK (compact (in, &out, &st) == 1, "not a QEMU stream: not rewritten");
  free (out.p);
  free (in.p);
  in = stream (0);
  in.len -= sizeof tail - 1 + 20; /* cut inside the END section */
  out = (struct buf){ 0 };
  CHECK (compact (in, &out, &st) == 1, "a stream cut short: not rewritten");
  free (out.p);
  free (in.p);
  return tap_done ();
}
