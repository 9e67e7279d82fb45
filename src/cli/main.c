/* cella: the command-line entry point. Dispatches to one file per command family. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../oci/cli.h"
#include "../util/paths.h"
#include "../util/selfexec.h"
#include "commands.h"

#ifndef CELLA_VERSION
#define CELLA_VERSION "0.1.0"
#endif

struct command {
  const char *name;
  int (*fn) (int argc, char **argv);
  bool starts_containers; /* runs code inside a container: re-exec from a sealed copy first */
  const char *help;
};

static const struct command commands[] = {
  { "run", cmd_run, true, "Run a command in a new container" },
  { "create", cmd_create, false, "Create a container without starting it" },
  { "start", cmd_start, true, "Start containers" },
  { "stop", cmd_stop, false, "Stop running containers (TERM, then KILL)" },
  { "restart", cmd_restart, true, "Stop and start containers" },
  { "kill", cmd_kill, false, "Send a signal to containers" },
  { "rm", cmd_rm, false, "Remove containers" },
  { "ps", cmd_ps, false, "List containers" },
  { "inspect", cmd_inspect, false, "Show containers' configuration and state (JSON)" },
  { "logs", cmd_logs, false, "Print a container's output" },
  { "wait", cmd_wait, false, "Wait for containers to stop; print their exit codes" },
  { "exec", cmd_exec, true, "Run a command in a running container" },
  { "cp", cmd_cp, false, "Copy files between a container and the host" },
  { "attach", cmd_attach, false, "Attach to a running container" },
  { "top", cmd_top, false, "List a container's processes" },
  { "stats", cmd_stats, false, "Show containers' cpu, memory, block I/O and process use" },
  { "rename", cmd_rename, false, "Rename a container" },
  { "port", cmd_port, false, "List a container's published ports" },
  { "diff", cmd_diff, false, "List the files a container added, changed and deleted" },
  { "commit", cmd_commit, false, "Make an image of a container's changes" },
  { "build", cmd_build, true, "Build an image from a Containerfile" },
  { "history", cmd_history, false, "Show an image's layers and how each was made" },
  { "network", cmd_network, false, "Manage networks (create, ls, rm, inspect)" },
  { "volume", cmd_volume, false, "Manage volumes (create, ls, inspect, rm, prune)" },
  { "compose", cmd_compose, false, "Run an application of several containers from a compose file" },
  { "images", cmd_images, false, "List images" },
  { "image", cmd_image, false, "Manage images (ls, inspect, rm, prune, tag, pull, import, save, build)" },
  { "pull", cmd_image_tool, false, "Pull an image from a registry" },
  { "rmi", cmd_rmi, false, "Remove images" },
  { "tag", cmd_tag, false, "Give an image another name" },
  { "import", cmd_image_tool, false, "Import an image (same as `image import`)" },
  { "save", cmd_image_tool, false, "Write images to an OCI archive" },
  { "export", cmd_image_tool, false, "Write a container's root as an image to an OCI archive" },
  { "push", cmd_image_tool, false, "Push an image to a registry" },
  { "login", cmd_image_tool, false, "Store credentials for a registry" },
  { "logout", cmd_image_tool, false, "Remove stored credentials for a registry" },
  { "healthcheck", cmd_healthcheck, true, "Run a container's health check now (healthcheck run)" },
  { "doctor", cmd_doctor, false, "Check what this host can run: backends, kernel features, helper programs" },
  { "events", cmd_events, false, "Show container, image, volume and network events (follows)" },
  { "system", cmd_system, false, "Disk use (system df) and removing what is unused (system prune)" },
  { "container", cmd_container, false, "Manage containers (prune)" },
  { "pause", cmd_pause, false, "Freeze every process of containers" },
  { "unpause", cmd_unpause, false, "Thaw paused containers" },
  { "update", cmd_update, false, "Change running containers' resource limits and restart policy" },
  { "__monitor", cmd_monitor, true, NULL },
  { "__netdns", cmd_netdns, false, NULL },
  { NULL, NULL, false, NULL },
};

static void
usage (FILE *f)
{
  fprintf (f, "Usage: cella COMMAND [OPTIONS]\n\ncella runs Linux workloads isolated from the host.\n\nCommands:\n");
  for (const struct command *c = commands; c->name; c++)
    if (c->help)
      fprintf (f, "  %-10s %s\n", c->name, c->help);
  fprintf (f, "  %-10s %s\n", "version", "Print the version");
  fprintf (f, "  %-10s %s\n", "oci", "The OCI runtime command line (runc's: create, start, state, kill, delete ...)");
  fprintf (f, "\nRun `cella COMMAND --help` for a command's options.\n");
}

/* Whether to re-execute from a sealed copy first. `run --backend proot` does not need it (the
 * container runs as this user with no namespace at all: it can write whatever we can), nor
 * `run --backend vm` (the workload runs in a guest kernel and never sees this binary). Decided
 * from run's own parsed options, never from a scan of argv: the workload's arguments may read
 * like `--backend=vm` too. */
static bool
needs_seal (const struct command *c, int argc, char **argv)
{
  if (c->fn == cmd_image && argc > 2 && strcmp (argv[2], "build") == 0)
    {
      /* `image build` without --from runs a Containerfile's RUN steps in containers */
      for (int i = 3; i < argc; i++)
        if (strcmp (argv[i], "--from") == 0 || strncmp (argv[i], "--from=", 7) == 0 || strcmp (argv[i], "--help") == 0)
          return false;
      return true;
    }
  if (!c->starts_containers)
    return false;
  return c->fn != cmd_run || run_seal_mode (argc - 1, argv + 1) != RUN_SEAL_NONE;
}

/* The sealed re-exec, or for a foreground `run` of the ns backend the exec stub in its place
 * (cheaper by one exec of this whole binary: docs/benchmarks.md); -1 when neither could be made. */
static int
seal (const struct command *c, int argc, char **argv)
{
  if (c->fn == cmd_run && run_seal_mode (argc - 1, argv + 1) == RUN_SEAL_STUB && selfexec_defer_to_stub () == 0)
    return 0;
  return selfexec_sealed (argv);
}

/* Commands that keep or read state check their roots first (paths_check); doctor reports on a
 * host as it is, and a command's --help touches nothing. */
static bool
needs_roots (const struct command *c, int argc, char **argv)
{
  if (c->fn == cmd_doctor)
    return false;
  return !(argc > 2 && (strcmp (argv[2], "--help") == 0 || strcmp (argv[2], "-h") == 0));
}

/* The vm backend's guest init (cella-vminit) next to this binary, for the processes started from
 * a sealed copy (their /proc/self/exe is a memfd): $CELLA_VMINIT, as $CELLA_IMAGE_TOOL. */
static void
vminit_path_init (const char *self)
{
  char path[4096 + 16];
  const char *slash;
  if (getenv ("CELLA_VMINIT") || self == NULL)
    return;
  slash = strrchr (self, '/');
  if (slash == NULL || strncmp (self, "/memfd:", 7) == 0)
    return;
  snprintf (path, sizeof path, "%.*s/cella-vminit", (int) (slash - self), self);
  if (access (path, X_OK) == 0)
    setenv ("CELLA_VMINIT", path, 0);
}

/* The small monitor (build/cella-monitor, next to this binary) and this binary's own path, for
 * the monitor to exec one from the other (src/engine/monitor.c): $CELLA_MONITOR_BIN (set empty:
 * the full monitor stays) and $CELLA_FULL_BIN. Processes started from a sealed copy see the
 * values of the cella that started them. */
static void
monitor_path_init (const char *self)
{
  char small[4096 + 16];
  const char *slash;
  if (getenv ("CELLA_FULL_BIN") || self == NULL)
    return;
  slash = strrchr (self, '/');
  if (slash == NULL || self[0] != '/' || strncmp (self, "/memfd:", 7) == 0 || strstr (self, " (deleted)"))
    return;
  setenv ("CELLA_FULL_BIN", self, 0);
  snprintf (small, sizeof small, "%.*s/cella-monitor", (int) (slash - self), self);
  if (access (small, X_OK) == 0)
    setenv ("CELLA_MONITOR_BIN", small, 0);
}

/* This binary's path (NULL where /proc/self/exe cannot be read), read once for the three helpers
 * above: each readlink of /proc/self/exe builds a proc inode and a path, ~50 us on the reference
 * VM (docs/benchmarks.md, "proot's stand-ins"). */
static const char *
self_exe (void)
{
  static char self[4096];
  static int state; /* 0: not read yet, 1: read, -1: unreadable */
  if (state == 0)
    {
      ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
      state = n > 0 ? 1 : -1;
      if (n > 0)
        self[n] = '\0';
    }
  return state > 0 ? self : NULL;
}

/* The heap glibc's start-up already took (132 KB from brk) and the stack's next 64 KB, populated
 * with one madvise each: a command touches a handful of their pages for the first time, each
 * a page fault that traps to the hypervisor on a VM (15-30 us), where populating costs about 1 us
 * a page (docs/benchmarks.md). Best effort: a kernel before 5.14 (EINVAL) or a range past the
 * stack's mapping (ENOMEM: a small RLIMIT_STACK) leaves the faults as they were. */
static void
prefault_heap_and_stack (void)
{
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = 4096;
  char here;
  uintptr_t sp = (uintptr_t) &here & ~(page - 1);
  void *first = malloc (1);
  uintptr_t lo = (uintptr_t) first & ~(page - 1), hi = (uintptr_t) sbrk (0);

  madvise ((void *) (sp - 15 * page), 16 * page, MADV_POPULATE_WRITE);
  if (first != NULL && hi > lo + page && hi - lo <= 1024 * 1024)
    madvise ((void *) (lo + page), hi - lo - page, MADV_POPULATE_WRITE);
  free (first);
#endif
}

int
main (int argc, char **argv)
{
  cella_error_t err = NULL;
  prefault_heap_and_stack ();
  /* the OCI runtime command line (runc's): `cella oci ...`, or recognised (docs/oci.md) */
  if (argc >= 2 && strcmp (argv[1], "oci") == 0)
    return oci_main (argc - 1, argv + 1, argv);
  if (oci_cli_wanted (argc, argv))
    return oci_main (argc, argv, argv);
  if (argc < 2)
    {
      usage (stderr);
      return 125;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      usage (stdout);
      return 0;
    }
  if (strcmp (argv[1], "version") == 0 || strcmp (argv[1], "--version") == 0 || strcmp (argv[1], "-v") == 0)
    {
      oci_print_version (); /* "cella version X" first, then runc's spec line */
      return 0;
    }
  for (const struct command *c = commands; c->name; c++)
    if (strcmp (argv[1], c->name) == 0)
      {
        if (c->fn == cmd_run || c->fn == cmd_create || c->fn == cmd_image_tool || c->fn == cmd_image
            || c->fn == cmd_commit || c->fn == cmd_build)
          image_tool_path_init (self_exe ());
        vminit_path_init (self_exe ());
        if (c->starts_containers)
          monitor_path_init (self_exe ());
        if (needs_seal (c, argc, argv) && seal (c, argc, argv) < 0)
          {
            perror ("cella: re-execute from a sealed copy of the binary");
            return 125;
          }
        if (needs_roots (c, argc, argv) && paths_check (&err) < 0)
          return cella_error_print (&err);
        return c->fn (argc - 1, argv + 1);
      }
  fprintf (stderr, "cella: unknown command `%s` (see cella --help)\n", argv[1]);
  return 125;
}

#if defined(__x86_64__)
/* The entry point (the Makefile links cella with -e cella_entry), in front of glibc's _start: one
 * madvise(MADV_POPULATE_WRITE) over the writable segment (relocated data, GOT, .data, .bss, 22
 * pages) before the static-pie self-relocation writes them page by page. A page fault costs
 * 15-25 us in a VM that traps them, the populate about 1 us a page: about 19 faults and 0.3 ms
 * fewer on every start of cella (docs/benchmarks.md). It changes no protection: relro still
 * turns the relocated part read-only after the relocation. A kernel without MADV_POPULATE_WRITE
 * (before 5.14) says EINVAL, and the faults happen as before. Only rdx (the kernel's atexit
 * pointer for _start) must survive; the syscall clobbers rax, rcx, r11. */
__asm__(".text\n"
        ".globl cella_entry\n"
        ".type cella_entry,@function\n"
        "cella_entry:\n"
        "\tmov %rdx, %r12\n"
        "\tlea __init_array_start(%rip), %rdi\n"
        "\tand $-4096, %rdi\n"
        "\tlea _end(%rip), %rsi\n"
        "\tsub %rdi, %rsi\n"
        "\tmov $23, %edx\n" /* MADV_POPULATE_WRITE */
        "\tmov $28, %eax\n" /* SYS_madvise */
        "\tsyscall\n"
        "\tmov %r12, %rdx\n"
        "\tjmp _start\n"
        ".size cella_entry, .-cella_entry\n");
#endif
