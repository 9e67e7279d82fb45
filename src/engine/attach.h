/* The attach protocol between a container's monitor and the CLIs attached to it (the
 * foreground `run --name`, `start -a`, `attach`). A SOCK_SEQPACKET socket; each packet is one
 * type byte and its payload. Output goes monitor → client, the rest client → monitor, except
 * ATT_EXIT. */
#ifndef CELLA_ATTACH_H
#define CELLA_ATTACH_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/util.h"

enum attach_msg {
  ATT_STDOUT = 1, /* bytes the workload wrote (the terminal's output with -t) */
  ATT_STDERR = 2,
  ATT_STDIN = 3,     /* bytes for the workload's stdin */
  ATT_STDIN_EOF = 4, /* the client's input ended */
  ATT_RESIZE = 5,    /* unsigned short rows, cols */
  ATT_EXIT = 6,      /* int: the exit status (docker's: code, or 128+signal) */
  ATT_SIGNAL = 7,    /* int: a signal for the workload (sig-proxy) */
};

#define ATT_MAX_PAYLOAD 16384

/* Send one packet; -1 with errno on failure. */
int attach_send (int sock, int type, const void *buf, size_t len);

/* The client side: pump sock to stdout/stderr and stdin to sock (when stdin_open), pass the
 * terminal's size and, without a terminal, the signals we get. Returns the exit status from
 * ATT_EXIT, or -1 if the monitor went away without one. */
int attach_client (int sock, bool tty, bool stdin_open);

/* Connect to a container's attach socket (its monitor's). */
int attach_connect (const char *id, cella_error_t *err);

#endif
