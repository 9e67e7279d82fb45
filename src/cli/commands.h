#ifndef CELLA_CLI_COMMANDS_H
#define CELLA_CLI_COMMANDS_H
#include "../util/util.h"
/* Each returns the process exit status. argv[0] is the command name. */
int cmd_run (int argc, char **argv);
int cmd_create (int argc, char **argv);
/* How `run`, by its own options (argv as for cmd_run), protects this binary from its containers
 * (CVE-2019-5736, docs/security.md): not at all for a backend whose workload never sees it
 * (proot, vm); through the exec stub for a foreground run of the ns backend, whose only process
 * in the container runs this binary until its exec (no --init; the engine's runs go through a
 * monitor that re-executes itself); else by the sealed re-exec. Unparsable options: re-exec. */
enum run_seal { RUN_SEAL_NONE, RUN_SEAL_REEXEC, RUN_SEAL_STUB };
enum run_seal run_seal_mode (int argc, char **argv);
int cmd_start (int argc, char **argv);
int cmd_stop (int argc, char **argv);
int cmd_restart (int argc, char **argv);
int cmd_kill (int argc, char **argv);
int cmd_rm (int argc, char **argv);
int cmd_wait (int argc, char **argv);
int cmd_rename (int argc, char **argv);
int cmd_monitor (int argc, char **argv);
int cmd_ps (int argc, char **argv);
int cmd_inspect (int argc, char **argv);
int cmd_logs (int argc, char **argv);
int cmd_top (int argc, char **argv);
int cmd_stats (int argc, char **argv);
int cmd_port (int argc, char **argv);
int cmd_exec (int argc, char **argv);
int cmd_cp (int argc, char **argv);
int cmd_attach (int argc, char **argv);
int cmd_images (int argc, char **argv);
int cmd_image (int argc, char **argv);
int cmd_rmi (int argc, char **argv);
int cmd_tag (int argc, char **argv);
int cmd_doctor (int argc, char **argv);
int cmd_diff (int argc, char **argv);
int cmd_commit (int argc, char **argv);
/* cella build, and `cella image build` without --from (src/cli/build.c) */
int cmd_build (int argc, char **argv);
int cmd_image_build (int argc, char **argv);
int cmd_history (int argc, char **argv);
int cmd_healthcheck (int argc, char **argv);
int cmd_network (int argc, char **argv);
int cmd_volume (int argc, char **argv);
int cmd_events (int argc, char **argv);
int cmd_system (int argc, char **argv);
int cmd_container (int argc, char **argv);
int cmd_pause (int argc, char **argv);
int cmd_unpause (int argc, char **argv);
int cmd_update (int argc, char **argv);
int cmd_compose (int argc, char **argv);
/* __netdns NET: the embedded name server of a user-defined network (src/net/dns.c). */
int cmd_netdns (int argc, char **argv);
/* pull, import, save, export, login, logout, build: carried out by the image tool. */
int cmd_image_tool (int argc, char **argv);
/* Run the image tool with argv (argv[0] is its command); its exit status, or -1 with *err. */
int image_tool_run (char *const *argv, cella_error_t *err);
void image_tool_path_init (const char *self);
/* The device rules a container of plan p gets here, as JSON strings ("deny a *:* rwm", "allow c 1:3 rwm" ...,
 * later ones win; --privileged: "allow a *:* rwm"); null where none are applied (rootless: the user namespace
 * keeps host devices out). For run --dry-run and inspect. */
struct plan;
struct json_t;
/* The lower layers (top-most first, NULL-terminated) of a container whose root is an overlay with
 * a kept upper dir (p->root_upper); else an error naming ref. */
int ctr_overlay_lowers (const char *ref, const struct plan *p, char ***lowers, cella_error_t *err);
struct json_t *cli_device_rules_json (const struct plan *p);
/* RFC 3339 ("2024-01-02T03:04:05.678Z", "…+02:00") to unix seconds; -1 if it is not one. */
long long rfc3339_seconds (const char *s);
#endif
