/* The foreground session every backend runs while `cella run` / `cella exec` waits for a
 * workload: one poll loop that relays the caller's input to the workload and its output back, keeps
 * the caller's terminal in raw mode (restored on every way out) with the window size passed on,
 * takes over the signals the backend forwards, and ends with the process behind a pidfd (the
 * workload itself, or QEMU for the vm backend) as an exit status: its code, or 128 + the signal.
 *
 * What differs between backends goes through the ops (a cookie each): how a signal reaches the
 * workload (pidfd_send_signal for ns; a "signal N" line on the VM's control channel), how the end of
 * input is told (the pty's EOF character; an "eof" line), and a backend's own fd to watch (the VM's
 * control line reader) with a timer (the VM's graceful shutdown, then its end). */
#ifndef CELLA_BACKEND_SESSION_H
#define CELLA_BACKEND_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <termios.h>

struct session_ops {
  /* deliver sig to the workload. NULL: pidfd_send_signal to the session's pidfd */
  void (*signal) (void *cookie, int sig);
  /* the caller's input ended (EOF or a read error). NULL: the EOF character of the terminal at
   * in_to (a pty: what typing ^D does) */
  void (*input_end) (void *cookie);
  /* the session's extra fd is readable (or hung up): false once the backend is done with it */
  bool (*extra) (void *cookie, int fd);
  /* after each round of the loop: the timeout of the next poll in ms (-1: none) */
  int (*tick) (void *cookie);
  /* SIGWINCH when there is no winsize_to: the caller's terminal changed its size (the vm's guest
   * has the workload's terminal). NULL: nothing */
  void (*resize) (void *cookie);
};

struct session {
  const struct session_ops *ops; /* NULL: all defaults */
  void *cookie;
  int pidfd;         /* whose end ends the session */
  int in, in_to;     /* the caller's input (-1: none; set to -1 at its end) and where it goes */
  int out_from, out; /* the workload's output (-1: none, it writes to our stdio itself) and where it goes */
  int err_from, err; /* a second output stream (the vm's stderr port; -1: none) and where it goes */
  int extra;         /* the backend's own fd to watch (-1: none), see ops->extra */
  int winsize_to;    /* a pty that gets the caller's window size at the start and on SIGWINCH (-1: none) */
  bool raw;          /* put `in` in raw mode when it is a terminal (the workload has a terminal of its own) */
  bool hold_input;   /* do not read `in` yet; the backend clears it from a callback */
  int drain_ms;      /* after the end: how long to wait for each further piece of output */
  sigset_t signals;  /* taken over while it runs: SIGWINCH resizes, SIGCHLD is dropped, the rest go to
                        ops->signal. Block them (session_block) before the workload starts. */
  const int *ignore; /* 0-terminated (at most SESSION_MAX_IGNORE): SIG_IGN while it runs, for signals
                        the workload gets from the terminal itself */
  siginfo_t si;      /* out: how the pidfd's process ended */
  unsigned long long out_bytes, err_bytes; /* out: read so far from out_from, err_from (also what was
                                              dropped once writes failed) */

  /* the session's own */
  int sigfd;
  bool is_raw;
  struct termios saved;
};

#define SESSION_MAX_IGNORE 4

/* The caller's terminal's size (stdout's when it is a terminal, else stdin's): 0, or -1 when
 * neither is one. */
int session_caller_winsize (struct winsize *ws);

/* A session with nothing to relay: every fd -1, no signals. */
void session_init (struct session *s);

/* Add n signals of list to s->signals. */
void session_add_signals (struct session *s, const int *list, size_t n);

/* Block s->signals (old: the mask before, for the workload and session_unblock). */
void session_block (const struct session *s, sigset_t *old);

void session_unblock (const sigset_t *old);

/* Run the session to the end of the pidfd's process: its exit status (code, or 128 + the signal
 * that killed it; see s->si), or -1 with errno when it could not be waited for. The caller's
 * terminal is as it was on return. The fds stay the caller's. */
int session_run (struct session *s);

/* The status of an ended child as a shell gives it: the code, or 128 + the signal. */
int session_exit_status (const siginfo_t *si);

#endif
