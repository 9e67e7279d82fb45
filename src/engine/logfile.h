/* Container logs, one file per container in the CRI log format that podman's k8s-file driver
 * and kubelet use: "<RFC3339Nano UTC time> <stdout|stderr> <F|P> <text>\n" (F: the line ends
 * here; P: a partial line, continued by the next record of the same stream). The monitor
 * writes; `cella logs` reads. Rotation: when the file would pass max_size it is renamed to
 * PATH.1 (replacing an older PATH.1) and a new PATH is started. */
#ifndef CELLA_LOGFILE_H
#define CELLA_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/util.h"

enum { LOG_STDOUT = 1, LOG_STDERR = 2 };

struct log_writer;

/* Open (append to) PATH; max_size <= 0 means the default (10 MiB). */
struct log_writer *log_writer_open (const char *path, long long max_size, cella_error_t *err);
/* Add output of one stream: complete lines become F records now; an unfinished last line is
 * kept (per stream) until its newline comes, or written as a P record once 16 KiB pile up. */
int log_writer_write (struct log_writer *w, int stream, const char *buf, size_t len);
/* Write any kept partial lines as P records (the workload exited). */
void log_writer_flush (struct log_writer *w);
void log_writer_close (struct log_writer *w); /* flushes; NULL is fine */

struct log_read_opts {
  long long tail;                    /* only the last N lines (across PATH.1 and PATH); < 0: all */
  long long since_ns;                /* only records at or after this time (ns since the epoch); 0: all */
  long long until_ns;                /* only records before this time; 0: no limit */
  bool timestamps;                   /* prefix each line with its RFC3339Nano time and a space */
  bool follow;                       /* after the end, wait for more (following a rotation) ... */
  bool (*keep_following) (void *ud); /* ... while this says true (checked about every 100 ms) */
  void *ud;
};

/* Print the log at PATH (and PATH.1 before it) to out_fd (stdout records) and err_fd (stderr
 * records), joining P records back into lines. A missing PATH is an empty log. */
int log_read (const char *path, const struct log_read_opts *o, int out_fd, int err_fd, cella_error_t *err);

/* docker's --since/--until values: RFC3339 (2026-11-23T10:00:00Z, with fraction or offset),
 * a date (2026-11-23), unix seconds with optional fraction (1700000000.5), or a duration
 * before now (10m, 1h30m, 45s, 500ms). Returns 0 and *ns, or -1 with *err naming the value. */
int log_parse_time (const char *s, long long now_ns, long long *ns, cella_error_t *err);

/* The current time as an RFC3339Nano UTC string into buf (>= 40 bytes). */
void log_format_time (long long ns, char *buf, size_t len);

#endif
