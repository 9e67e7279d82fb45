#ifndef CELLA_EXECSTUB_H
#define CELLA_EXECSTUB_H
/* The exec stub (execstub/main.c, built into build/gen/execstub_bin.c): a few hundred bytes of
 * freestanding code, with no libc, that a container's first process execs from a sealed memfd
 * right before the workload, so that when the workload's execve starts, /proc/self/exe of the
 * container is that sealed copy and never the host's cella binary (CVE-2019-5736: a workload
 * whose file is `#!/proc/self/exe` would otherwise run the host binary inside the container).
 * It replaces the re-exec of the whole 2 MB binary for `cella run` (docs/security.md): an exec
 * of a program without libc touches two pages and runs no cpuid, where glibc's start-up runs
 * dozens of each, and each costs tens of microseconds in a VM.
 *
 * argv: cella-exec SYNC-FD PATH-LIST PROGRAM [ARG...]; envp: the workload's. SYNC-FD (not
 * close-on-exec) is set close-on-exec before the workload's execve; PROGRAM without a `/` is
 * looked for in PATH-LIST (`:`-separated, an empty entry is `.`), as execvp does. When no
 * execve succeeds, one struct execstub_failure goes to SYNC-FD and the stub exits with its
 * status: 127 when the program was not found, 126 when it could not be run. Run any other way
 * (a container's `#!/proc/self/exe` script reaches it so) it says what it is and exits 126. */

#define EXECSTUB_FAILED 9 /* = SYNC_EXEC_FAILED of the ns backend's sync protocol */

struct execstub_failure {
  int type;   /* EXECSTUB_FAILED */
  int status; /* 126 or 127 */
  int errno_; /* the execve error that decides (as execvp's) */
};

/* The stub's ELF image (build/gen/execstub_bin.c). */
extern const unsigned char execstub_elf[];
extern const unsigned int execstub_elf_len;
#endif
