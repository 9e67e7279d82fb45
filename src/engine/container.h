/* Named containers: the on-disk record (store.c), the lifecycle (lifecycle.c) and the monitor
 * that owns a running container (monitor.c). DESIGN.md "On disk" and "Processes".
 *
 *   $data/containers/<id>/plan.json   the plan, written once at create
 *                         state.json  everything that changes (status, pids, times, name)
 *                         upper/ work/  the root overlay's writable layer
 *                         ctr.log (+ ctr.log.1)
 *   $data/names/<name>    symlink → <id>: made with symlink(2), so a name is claimed atomically
 *
 * Every state.json write is temp file + fsync + rename + fsync of the directory; transitions
 * hold flock() on the container's directory. A running container cannot outlive its monitor
 * (the workload has PDEATHSIG from it), so "running" means "the monitor is alive", checked by
 * pid and process start time, which also catches a reused pid. */
#ifndef CELLA_CONTAINER_H
#define CELLA_CONTAINER_H

#include <stdbool.h>
#include <sys/types.h>

#include "../plan/plan.h"
#include "../util/proc.h"

enum ctr_status { CTR_CREATED, CTR_RUNNING, CTR_RESTARTING, CTR_EXITED, CTR_REMOVING };

/* One volume a container mounts (volume.h), as kept in its record: rm refuses to remove a volume
 * a record names, rm -v removes the anonymous ones. */
struct ctr_volume {
  char *name, *target;
  bool readonly, anonymous;
  bool nocopy; /* the run asked for no copy-up (nocopy, volume-nocopy); not kept in the record */
};
void ctr_volumes_free (struct ctr_volume *v, size_t n);

enum restart_policy { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS, RESTART_UNLESS_STOPPED };

/* Health checks (health.c; docs/engine.md "Health checks"): the monitor runs the check the way
 * `cella exec` runs a command and keeps the verdict and the last results in state.json. */
enum ctr_health { HEALTH_NONE, HEALTH_STARTING, HEALTH_HEALTHY, HEALTH_UNHEALTHY };
enum health_action { HEALTH_ACT_NONE, HEALTH_ACT_KILL, HEALTH_ACT_RESTART };
#define HEALTH_LOG_MAX 5
#define HEALTH_OUTPUT_MAX 4096 /* docker's limit on a result's kept output */

struct ctr_healthcheck {
  char **test; /* docker's form: {"CMD", argv...} or {"CMD-SHELL", line}; NULL: no health check */
  long long interval_ns, timeout_ns, start_period_ns;
  int retries;
  enum health_action on_failure;
};

struct ctr_health_result {
  long long start_ns, end_ns;
  int exit_code; /* the check's; -1: it timed out or could not start */
  char *output;  /* stdout and stderr, at most HEALTH_OUTPUT_MAX bytes */
};

struct ctr_state {
  char *id, *name;
  char *image;      /* image name or root directory as given */
  char *command;    /* the command line, for ps */
  char *entrypoint; /* set when the command was detected, not given */
  enum ctr_status status;
  pid_t pid; /* the workload (host pid) while running */
  unsigned long long pid_start;
  pid_t monitor_pid;
  unsigned long long monitor_start;
  int exit_code;   /* -1: never exited */
  bool oom_killed; /* the OOM killer struck in its cgroup during the last run */
  char *error;     /* why the last start failed, or why the exit code is unknown */
  long long created_ns, started_ns, finished_ns;
  int restart_count;
  bool stop_requested; /* stop/kill/rm asked for it: no restart */
  bool paused;         /* running, its cgroup frozen (pause.c); kept only while running */
  enum restart_policy restart;
  int restart_max;  /* on-failure:N, 0 = no limit */
  bool auto_remove; /* --rm */
  bool tty;
  long long log_max_size;
  struct ctr_healthcheck hc;
  enum ctr_health health; /* HEALTH_NONE without a health check */
  int failing_streak;
  struct ctr_health_result health_log[HEALTH_LOG_MAX]; /* oldest first */
  int health_nlog;
  struct ctr_volume *volumes; /* the volumes it mounts */
  size_t nvolumes;
};

void ctr_state_clear (struct ctr_state *s);
const char *ctr_status_name (enum ctr_status s);
int restart_policy_parse (const char *s, enum restart_policy *p, int *max, cella_error_t *err);
const char *restart_policy_name (enum restart_policy p);

/* Directory of a container, of its log, of the names. Caller frees. */
char *ctr_dir (const char *id);
char *ctr_log_path (const char *id);
char *ctr_run_dir (const char *id); /* $run/containers/<id>: sockets */

/* A new name (ctr_name_valid, util.h, says which names are valid). */
char *ctr_name_generate (void);

/* A container by name, full id or unique id prefix; *id is malloc'd. The error says which
 * (no such container, ambiguous prefix) and exits 125. */
int ctr_lookup (const char *ref, char **id, cella_error_t *err);

/* Serialise transitions: flock on the container's directory; returns the fd to close. */
int ctr_lock (const char *id, cella_error_t *err);

/* Read state.json and reconcile it with the processes it names (a dead monitor means the
 * container exited). With lockfd >= 0 (held by the caller) a reconciled state is written back. */
int ctr_state_read (const char *id, struct ctr_state *st, int lockfd, cella_error_t *err);
int ctr_state_write (const struct ctr_state *st, cella_error_t *err);
/* state.json's text (len bytes) into *st, without reconciling; -1 (and *st cleared) when it is
 * not a state record. fuzz/fuzz_state.c calls it. */
int ctr_state_parse (const char *text, size_t len, struct ctr_state *st);

/* Every container, reconciled, newest first. */
int ctr_list (struct ctr_state **out, size_t *n, cella_error_t *err);
void ctr_list_free (struct ctr_state *v, size_t n);

/* The saved plan. */
int ctr_plan_load (const char *id, struct plan **p, cella_error_t *err);

struct ctr_create_opts {
  const char *name;       /* NULL: generate */
  const char *image;      /* for ps/inspect */
  const char *entrypoint; /* detected command, or NULL */
  enum restart_policy restart;
  int restart_max;
  bool auto_remove;
  long long log_max_size;
  const struct ctr_healthcheck *health; /* NULL: none */
  const struct ctr_volume *volumes;     /* named and anonymous volumes it mounts */
  size_t nvolumes;
};

/* Create the record: claims the name, writes plan.json and state.json (status created), makes
 * the overlay dirs when the plan's root is an image. p->id and p->root_upper/work are set. */
int ctr_create (struct plan *p, const struct ctr_create_opts *o, char **id, cella_error_t *err);

/* Remove the record and everything under it (the caller has stopped it). */
int ctr_remove_files (const char *id, const char *name, cella_error_t *err);

/* Clean what crashed creates/removes left: containers/.tmp-* and .rm-* nobody holds. */
void ctr_gc (void);

/* lifecycle.c */
struct ctr_start_opts {
  int attach_fd; /* a SOCK_SEQPACKET end that gets the output (attach.h), or -1 */
};
int ctr_start (const char *id, const struct ctr_start_opts *o, cella_error_t *err);
int ctr_stop (const char *id, int timeout_s, cella_error_t *err);
int ctr_kill (const char *id, int sig, cella_error_t *err);
/* volumes: also remove its anonymous volumes (rm -v). */
int ctr_rm (const char *id, bool force, bool volumes, cella_error_t *err);
/* Wait until the container is not running; returns its exit code (or -1 with *err). */
int ctr_wait (const char *id, cella_error_t *err);
int ctr_rename (const char *id, const char *new_name, cella_error_t *err);

/* What the monitor tells the starting CLI over the ready socket. */
struct monitor_ready {
  int status; /* 0: the workload runs; else the exit status for the CLI (125/126/127) */
  int errno_;
  char msg[1024];
};

/* Remove the cgroups left behind (recorded by a removal that found them busy, and those of containers this
 * data root does not know, under cella's own directory, empty and a minute old); how many directories went. */
size_t ctr_sweep_cgroups (void);

/* pause.c: freeze (pause) or thaw a running container's cgroup; an error names the container when
 * it is not running, already so, or has no cgroup here. */
int ctr_pause (const char *id, bool pause, cella_error_t *err);
/* Thaw st's container if it is paused, before a signal must reach it (stop, kill, rm -f); its
 * state is left for the caller to write (st->paused false). */
void ctr_thaw_for_signal (struct ctr_state *st);
/* Whether the container's state says paused (false when it cannot be read). */
bool ctr_is_paused (const char *id);

/* What `cella update` changes; unset: 0 / NULL. */
struct ctr_update {
  long long memory, memory_swap, memory_reservation; /* bytes; -1: unlimited */
  long long nano_cpus;
  unsigned long long cpu_shares;
  long long pids_limit; /* -1: unlimited */
  const char *restart;  /* a restart policy */
};
/* Apply u to the container: its cgroup now when it runs, and its plan and state, so that the next
 * start keeps them. */
int ctr_update (const char *id, const struct ctr_update *u, cella_error_t *err);

/* ctr_copy.c: `cella cp` with one side in the container (into: host_path → ctr_path). */
int ctr_copy (const char *id, bool into, const char *ctr_path, const char *host_path, cella_error_t *err);
/* ctr_copy_vm.c: the same for a vm container (through its running guest; a stopped one is
 * refused). */
int ctr_copy_vm (const struct plan *p, const char *id, bool running, bool into, const char *ctr_path,
                 const char *host_path, cella_error_t *err);

/* monitor.c: the body of `cella __monitor` */
/* What the small monitor (monitor/main.c) hands back when its workload ended: `cella __monitor
 * ID --resume STATUS LISTEN-FD STARTED-NS DELAY-MS [CLIENT-FD...]`. */
struct monitor_resume {
  int status, listen;
  long long started_ns, delay_ms;
  int clients[16];
  size_t nclients;
};
int monitor_main (const char *id, int ready_fd, int attach_fd, int lock_fd, const struct monitor_resume *resume);

#endif
