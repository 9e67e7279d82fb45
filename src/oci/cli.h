/* The runc-compatible command line (src/oci/cli.c and the files it dispatches to). docs/oci.md. */
#ifndef CELLA_OCI_CLI_H
#define CELLA_OCI_CLI_H

#include <stdbool.h>
#include <sys/types.h>

#include "../plan/plan.h"
#include "state.h"

/* The global options, given before the command (runc's). */
struct oci_ctx {
  char *root;    /* --root: the state root */
  char *log;     /* --log FILE: errors (and --debug lines) also go there */
  bool log_json; /* --log-format json */
  bool debug;
  bool systemd_cgroup; /* accepted: cgroupfs is what cella drives */
  char *rootless;      /* auto | true | false */
};

/* The OCI runtime command line (src/oci/cli.c, docs/oci.md): whether this invocation is one
 * (runc global option first, a runc-like program name, an OCI-only command, create/run with
 * --bundle, ...), and its entry point (argv: [GLOBAL OPTIONS] COMMAND ...; full_argv: main's,
 * for the sealed re-exec). src/cli/main.c calls them. */
bool oci_cli_wanted (int argc, char **argv);
int oci_main (int argc, char **argv, char **full_argv);
void oci_print_version (void);

/* Every OCI command prints its error itself, once, and returns the exit status (1 on error). */
int oci_fail (const struct oci_ctx *c, cella_error_t *err);
/* A message at level "warning" or "debug" (debug only with --debug), to stderr and the log. */
void oci_log (const struct oci_ctx *c, const char *level, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

/* What the config loader left out with a warning (pr->warnings), logged and then freed. */
void oci_log_warnings (const struct oci_ctx *c, struct plan_process *pr);
/* A container without a user namespace of its own gets at most the capabilities cella holds: one
 * it asks for beyond them is an error naming it (create and exec fail, as with runc and crun). */
int oci_check_grantable_caps (const struct plan *p, const struct plan_process *pr, cella_error_t *err);

/* The container's state, with the error "container `ID` does not exist" filled. */
int oci_load (const struct oci_ctx *c, const char *id, struct oci_state *st, cella_error_t *err);
/* The plan a container was created with (ROOT/ID/plan.json). */
int oci_load_plan (const struct oci_ctx *c, const char *id, struct plan **p, cella_error_t *err);
/* A live container's init as a pidfd (checks its start time): -1 with *err when it is gone. */
int oci_pidfd (const struct oci_state *st, cella_error_t *err);
/* Write PID to FILE, crash-safely (runc writes it through a temp file and a rename too). */
int oci_write_pid_file (const char *file, pid_t pid, cella_error_t *err);
/* Before anything starts: FILE's directory exists (runc fails when it cannot write the pid file). */
int oci_pid_file_check (const char *file, cella_error_t *err);
/* The pids of a container: its cgroup's, else every process in its init's pid namespace. */
int oci_container_pids (const struct oci_ctx *c, const struct oci_state *st, pid_t **pids, size_t *n,
                        cella_error_t *err);
/* Parse an integer option value ("--preserve-fds 2"); -1 with *err. */
int oci_parse_count (const char *opt, const char *v, unsigned *out, cella_error_t *err);
/* The LISTEN_FDS protocol: when set in our environment, that many fds (from 3) pass into the
 * workload with LISTEN_FDS and LISTEN_PID=1 in its environment; adds them to *preserve. */
void oci_listen_fds (struct plan_process *pr, unsigned *preserve);
/* Connect to a console socket (runc's --console-socket). */
int oci_connect_console (const char *path, cella_error_t *err);
/* Fill holes in 3 .. 3+n-1 with /dev/null, so that fds cella opens itself never land there. */
void oci_plug_fds (unsigned n);

/* NOTIFY_SOCKET (notify.c), when set in our environment. create/run: make ROOT/ID/notify, bind
 * it read-only at /run/notify in p and point the workload's NOTIFY_SOCKET there. start/run:
 * bind the socket in it (*fd -1 when there is nothing to listen for), then relay: wait for the
 * container's READY=…, pass it on to the host's socket with MAINPID=pid (0 when pid exits
 * first). */
int oci_notify_prepare (const char *dir, struct plan *p, cella_error_t *err);
int oci_notify_listen (const char *dir, int *fd, cella_error_t *err);
int oci_notify_relay (int fd, pid_t pid, cella_error_t *err);

/* linux.seccomp.listenerPath (listener.c): fd, the listener of process pid's filter, to the
 * agent with the container's state (status, init_pid) as runtime-spec says. */
int oci_seccomp_listener_send (const struct plan *p, const char *status, pid_t init_pid, int fd, pid_t pid,
                               cella_error_t *err);

/* the commands, argv[0] is the command name */
int oci_cmd_exec (struct oci_ctx *c, int argc, char **argv);
int oci_cmd_ps (struct oci_ctx *c, int argc, char **argv);
int oci_cmd_pause (struct oci_ctx *c, int argc, char **argv);
int oci_cmd_resume (struct oci_ctx *c, int argc, char **argv);
int oci_cmd_update (struct oci_ctx *c, int argc, char **argv);
int oci_cmd_events (struct oci_ctx *c, int argc, char **argv);
int oci_cmd_spec (struct oci_ctx *c, int argc, char **argv);
int oci_cmd_features (struct oci_ctx *c, int argc, char **argv);

#endif
