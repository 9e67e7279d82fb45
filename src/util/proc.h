/* Processes by /proc: the one reader of /proc/PID/stat (engine records, the OCI runtime's state,
 * network helpers' records and `ps` all name a process by its pid and start time). */
#ifndef CELLA_UTIL_PROC_H
#define CELLA_UTIL_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

/* The fields of /proc/PID/stat that cella reads. */
struct proc_stat {
  char state; /* R, S, D, Z (zombie), X (dead), ... */
  pid_t ppid;
  unsigned long long start_time; /* clock ticks since boot (field 22) */
};

/* 0 with *st filled, -1 when the process is gone or its stat cannot be read or parsed. */
int proc_stat_read (pid_t pid, struct proc_stat *st);

/* Process identity: start time (clock ticks since boot, /proc/PID/stat field 22); with the pid it
 * names one process for good. 0 if gone or a zombie (it has finished). */
unsigned long long proc_start_time (pid_t pid);
/* pid is the process that started at `start` and it has not finished. */
bool proc_alive (pid_t pid, unsigned long long start);
/* No process has this pid at all (kill(pid, 0) fails with ESRCH): a test costing one system call
 * where proc_alive reads /proc. It never calls a live owner gone; a dead one whose pid was taken
 * again reads as not gone (proc_alive tells those apart). */
bool proc_surely_gone (pid_t pid);

/* Fork a daemon: a grandchild in a session of its own with stdin, stdout and stderr on /dev/null,
 * which the caller does not wait for (init, or the nearest subreaper, reaps it). Other descriptors
 * are inherited as they are. Returns 0 in the daemon; in the caller 1 once the intermediate child
 * has exited, or -1 with *err when /dev/null, a fork or setsid failed (no daemon runs then). */
int proc_daemonize (cella_error_t *err);

#endif
