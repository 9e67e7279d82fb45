/* A system call without libc: no errno written, no stack protector or TLS needed. For code that runs
 * where libc cannot (the exec stub, execstub/main.c) or must not be touched (a CLONE_VM process that
 * shares cella's errno and heap, src/ns/spawn.c). RAW_SYS3 is defined where the architecture is known.
 * Returns the kernel's value: -errno on failure. */
#ifndef CELLA_UTIL_RAWSYS_H
#define CELLA_UTIL_RAWSYS_H

#if defined(__x86_64__)
#define RAW_SYS3 1
static inline long
raw_sys3 (long n, long a, long b, long c)
{
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
#elif defined(__aarch64__)
#define RAW_SYS3 1
static inline long
raw_sys3 (long n, long a, long b, long c)
{
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
#endif

#endif
