/* Health checks of engine containers (docs/engine.md "Health checks").
 *
 * The monitor owns them: it forks one short-lived probe per check, which enters the container the
 * way `cella exec` does (the backend's exec) with its stdout and stderr on a pipe the monitor
 * reads; a probe past its timeout is killed with the command's whole process group. Each result
 * goes into state.json under the container's lock (store.c): the status (starting, healthy,
 * unhealthy), the failing streak and the last HEALTH_LOG_MAX results. No thread, no resident
 * process: between checks the monitor only has a timer. */
#ifndef CELLA_ENGINE_HEALTH_H
#define CELLA_ENGINE_HEALTH_H

#include <stdbool.h>
#include <sys/types.h>

#include "container.h"

/* docker's defaults */
#define HEALTH_DEFAULT_INTERVAL_NS (30 * 1000000000LL)
#define HEALTH_DEFAULT_TIMEOUT_NS (30 * 1000000000LL)
#define HEALTH_DEFAULT_RETRIES 3

/* The command line's health options, as given (NULL: not given). */
struct health_options {
  const char *cmd; /* --health-cmd: a shell line */
  const char *interval, *timeout, *retries, *start_period, *on_failure;
  bool none; /* --no-healthcheck */
};

const char *ctr_health_name (enum ctr_health h); /* "none", "starting", "healthy", "unhealthy" */
const char *health_action_name (enum health_action a);
int health_action_parse (const char *s, enum health_action *a);
void ctr_healthcheck_clear (struct ctr_healthcheck *hc);
void ctr_health_result_clear (struct ctr_health_result *r);

/* A docker duration: 500ms, 2s, 1m30s, 1.5h (units ns us ms s m h; "0" alone). -1 when s is not one. */
long long health_parse_duration (const char *s);
/* ns as a short docker-like duration ("30s", "1.5s", "500ms") into buf. */
void health_format_duration (long long ns, char *buf, size_t len);

/* The container's health check: the image's (image: NULL or its Healthcheck, a test of {"NONE"}
 * included) with the command line's options over it. out->test is NULL when there is none. The
 * error names the bad option. */
int health_config (const struct health_options *o, const struct ctr_healthcheck *image, struct ctr_healthcheck *out,
                   cella_error_t *err);

/* One check at work (the monitor keeps one of these while a probe runs). */
struct health_probe {
  pid_t pid;      /* the probe (a fork of the caller), -1 when none */
  int pidfd, out; /* its pidfd; the read end of its output */
  long long start_ns, deadline_ns;
  bool out_open;
  size_t len;
  char *buf; /* HEALTH_OUTPUT_MAX bytes, output beyond it is read and dropped */
};

/* Start a check of hc in the running container id whose workload is target (p: its plan, which
 * the probe changes in its own copy only). 0, or -1 with *err. */
int health_probe_start (struct health_probe *h, struct plan *p, const char *id, pid_t target,
                        const struct ctr_healthcheck *hc, cella_error_t *err);
/* The output pipe is readable: take what is there. */
void health_probe_read (struct health_probe *h);
/* The probe ended (its pidfd is readable), or with timed_out its deadline passed (it is killed
 * first): reap it and fill r (r->output malloc'd). */
void health_probe_finish (struct health_probe *h, bool timed_out, long long timeout_ns, struct ctr_health_result *r);
/* Kill and reap a probe whose result nobody wants (the container stopped). */
void health_probe_cancel (struct health_probe *h);

/* Record r for container id (under its lock): the log, the streak, the status, with the start
 * period counted from run_started_ns. *turned_unhealthy: this result made it unhealthy. With
 * on_failure kill, that also marks the stop as asked for (no restart by the policy). */
int health_record (const char *id, const struct ctr_health_result *r, long long run_started_ns, bool *turned_unhealthy,
                   cella_error_t *err);

/* `cella healthcheck run`: one check now, recorded like the monitor's; *healthy its verdict. */
int ctr_health_run (const char *id, bool *healthy, cella_error_t *err);

/* `cella wait --condition healthy|unhealthy`: until the running container's health is want; an
 * error when it stops first or has no health check. */
int ctr_wait_health (const char *id, enum ctr_health want, cella_error_t *err);

#endif
