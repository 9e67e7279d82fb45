/* The event log (docs/engine.md "Events"): one JSON line per event, appended with O_APPEND in
 * one write(2) under PIPE_BUF, so that lines from several processes never interleave.
 *
 *   $data/events.log (+ events.log.1)   rotated when it passes EVENTS_LOG_MAX bytes
 *
 * A line is docker's event JSON: {"Type","Action","Actor":{"ID","Attributes":{...}},"time",
 * "timeNano","scope":"local"} (plus docker's old "status","id","from" for containers). Writing an
 * event never fails the operation that caused it: a log that cannot be written is skipped. */
#ifndef CELLA_ENGINE_EVENTS_H
#define CELLA_ENGINE_EVENTS_H

#include <stdbool.h>

#include "../util/util.h"

#define EVENTS_LOG_MAX (1024 * 1024)

struct ctr_state;

/* Append an event. attrs: key, value pairs ending in NULL (NULL for none; a NULL value skips
 * its key); name, when not NULL, is the "name" attribute. */
void event_emit (const char *type, const char *action, const char *id, const char *name, const char *const *attrs);
/* A container's event with its name and image; "die" adds exitCode (and an "oom" event before it
 * when the OOM killer struck), "health_status" becomes "health_status: <health>". */
void event_ctr (const char *action, const struct ctr_state *st);

/* The log's path (malloc'd) and that of its rotated part. */
char *events_log_path (void);
char *events_log_old_path (void);

/* Print the events of the log from since_ns to until_ns (0: no bound) that keep(line's JSON, ud)
 * says to keep, through print(JSON, ud); with follow, then the new ones as they come (inotify on
 * the data root) until until_ns passes, or for ever. */
struct json_t;
int events_read (long long since_ns, long long until_ns, bool follow, bool (*keep) (struct json_t *ev, void *ud),
                 void (*print) (struct json_t *ev, void *ud), void *ud, cella_error_t *err);

#endif
