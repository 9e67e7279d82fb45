/* What `cella pull` shows while blobs download, on stderr. On a terminal: one line per blob
 * ("Copying blob 1a2b3c4d5e6f  [=====>     ] 12.3MiB / 25.0MiB") and a total line, redrawn in
 * place at most ten times a second. Elsewhere (a log, a pipe): a line when a blob starts
 * ("Copying blob 1a2b3c4d5e6f (25.0 MiB)") and one when it ends ("Copying blob 1a2b3c4d5e6f done").
 * Every call takes a lock: blobs may be reported from several threads. */
#ifndef CELLA_IMAGE_PROGRESS_H
#define CELLA_IMAGE_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct progress;

/* names: digests ("sha256:…" is shown as its first 12 hex digits) or any label; totals: sizes in
 * bytes, -1 when unknown. Both are copied. tty: render for a terminal (callers pass isatty (2)). */
struct progress *progress_new (size_t n_items, const char *const names[], const int64_t totals[], bool tty);
void progress_update (struct progress *p, size_t i, int64_t done);
void progress_done (struct progress *p, size_t i);
/* Draw the final state and free p; NULL is fine. */
void progress_finish (struct progress *p);

/* A reg_progress_fn (registry.h) for ud = a struct progress: updates item i, learning its total
 * when it was unknown, and marks it done on the final call. */
void progress_blob_cb (size_t index, int64_t done, int64_t total, void *ud);

/* "12.3MiB" (1024-based: B, KiB, MiB, GiB, TiB) into buf. */
void progress_format_size (int64_t bytes, char *buf, size_t len);
/* Where the lines go: stderr unless set (tests). */
void progress_set_output (struct progress *p, FILE *f);

#endif
