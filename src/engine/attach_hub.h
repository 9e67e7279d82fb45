/* The monitor's side of the attach protocol (attach.h), shared by the full monitor (monitor.c)
 * and the small one (monitor/main.c, a static libc-only binary: nothing here may need more than
 * libc and logfile.c): the attached clients, the workload's output to the log and to them, their
 * input, window size and signals to the workload. */
#ifndef CELLA_ATTACH_HUB_H
#define CELLA_ATTACH_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include "attach.h"
#include "logfile.h"

#define ATT_MAX_CLIENTS 16

struct att_hub {
  int clients[ATT_MAX_CLIENTS];
  size_t nclients;
  struct log_writer *log; /* NULL: output goes to the clients only */
  int tty;                /* the workload's terminal (pty master), -1 without one */
  int in;                 /* the write end of its stdin pipe, -1 when none */
};

/* A new client (fd < 0 is ignored; one too many is closed). */
void att_hub_add (struct att_hub *h, int fd);

/* One packet to every client; a client that cannot take it is dropped. */
void att_hub_broadcast (struct att_hub *h, int type, const void *buf, size_t len);

/* Read the workload's output on fd (stream LOG_STDOUT or LOG_STDERR) into the log and the
 * clients; false once fd is at its end. */
bool att_hub_pump (struct att_hub *h, int fd, int stream);

/* The clients' input ended: EOF to the terminal, or the stdin pipe closed. */
void att_hub_close_stdin (struct att_hub *h);

/* One packet from client i (dropped when it went away). Returns a signal the client asks to be
 * sent to the workload (the caller sends it), else 0. */
int att_hub_client_packet (struct att_hub *h, size_t i);

/* Close every client. */
void att_hub_close_all (struct att_hub *h);

#endif
