/* Unit tests for the monitor's side of the attach protocol (attach_hub.c), which both monitors
 * use: output to the log and every client, a client that went away dropped, input and EOF to the
 * workload's stdin pipe, window size to its terminal, signals handed back, the client limit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "engine/attach_hub.h"
#include "tap.h"

/* A client: its end and the hub's end of a SOCK_SEQPACKET pair (as accept4 gives the monitor). */
static void
client_pair (int *mine, int *hubs)
{
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    abort ();
  *mine = sv[0];
  *hubs = sv[1];
}

/* The next packet on a client's end (type, payload in buf); -1 when none is waiting. */
static int
next_packet (int fd, char *buf, size_t *len)
{
  char pkt[1 + ATT_MAX_PAYLOAD];
  ssize_t n = recv (fd, pkt, sizeof pkt, MSG_DONTWAIT);
  if (n < 1)
    return -1;
  *len = (size_t) n - 1;
  memcpy (buf, pkt + 1, *len);
  return (unsigned char) pkt[0];
}

static void
send_packet (int fd, int type, const void *payload, size_t len)
{
  if (attach_send (fd, type, payload, len) < 0)
    abort ();
}

static char *
slurp (const char *path)
{
  FILE *f = fopen (path, "r");
  char *buf = calloc (1, 65536);
  if (f == NULL || buf == NULL)
    abort ();
  if (fread (buf, 1, 65535, f) == 0 && ferror (f))
    abort ();
  fclose (f);
  return buf;
}

static void
test_output_log_and_clients (void)
{
  char dir[] = "/tmp/cella-hub-XXXXXX", path[64], buf[ATT_MAX_PAYLOAD], *log;
  struct att_hub h = { .nclients = 0, .tty = -1, .in = -1 };
  int a, ha, b, hb, out[2], type;
  size_t len = 0;
  cella_error_t err = NULL;
  if (mkdtemp (dir) == NULL || pipe (out) < 0)
    abort ();
  snprintf (path, sizeof path, "%s/ctr.log", dir);
  h.log = log_writer_open (path, 0, &err);
  CHECK (h.log != NULL, "the log opens");
  client_pair (&a, &ha);
  client_pair (&b, &hb);
  att_hub_add (&h, ha);
  att_hub_add (&h, hb);
  att_hub_add (&h, -1);
  CHECK (h.nclients == 2, "two clients, a failed accept (-1) ignored");
  if (write (out[1], "hello\n", 6) != 6)
    abort ();
  CHECK (att_hub_pump (&h, out[0], LOG_STDOUT), "the pump goes on while the pipe is open");
  type = next_packet (a, buf, &len);
  CHECK (type == ATT_STDOUT && len == 6 && memcmp (buf, "hello\n", 6) == 0, "client a got the output as stdout");
  type = next_packet (b, buf, &len);
  CHECK (type == ATT_STDOUT && len == 6, "client b got it too");
  /* b goes away: the next output drops it, a still gets it, as stderr */
  close (b);
  if (write (out[1], "oops\n", 5) != 5)
    abort ();
  CHECK (att_hub_pump (&h, out[0], LOG_STDERR), "stderr pumped");
  CHECK (h.nclients == 1 && h.clients[0] == ha, "the client that went away is dropped");
  type = next_packet (a, buf, &len);
  CHECK (type == ATT_STDERR && len == 5, "client a got stderr as stderr");
  close (out[1]);
  CHECK (!att_hub_pump (&h, out[0], LOG_STDOUT), "the pump ends at the pipe's end");
  log_writer_close (h.log);
  log = slurp (path);
  CHECK (strstr (log, "hello") != NULL && strstr (log, "oops") != NULL, "both streams are in the log");
  free (log);
  att_hub_close_all (&h);
  CHECK (h.nclients == 0, "close_all leaves no client");
  close (a);
  close (out[0]);
  snprintf (buf, sizeof buf, "rm -rf '%s'", dir);
  if (system (buf) != 0)
    abort ();
}

static void
test_input_eof_signal (void)
{
  struct att_hub h = { .nclients = 0, .tty = -1, .in = -1 };
  int a, ha, in[2], sig = SIGTERM;
  char buf[16];
  if (pipe (in) < 0)
    abort ();
  h.in = in[1];
  client_pair (&a, &ha);
  att_hub_add (&h, ha);
  send_packet (a, ATT_STDIN, "abc", 3);
  CHECK (att_hub_client_packet (&h, 0) == 0, "stdin is no signal");
  CHECK (read (in[0], buf, sizeof buf) == 3 && memcmp (buf, "abc", 3) == 0, "the client's input reached stdin");
  send_packet (a, ATT_SIGNAL, &sig, sizeof sig);
  CHECK (att_hub_client_packet (&h, 0) == SIGTERM, "a signal packet hands the signal back to the caller");
  send_packet (a, ATT_SIGNAL, "x", 1);
  CHECK (att_hub_client_packet (&h, 0) == 0, "a short signal packet is ignored");
  CHECK (att_hub_client_packet (&h, 0) == 0 && h.nclients == 1, "nothing waiting: the client stays");
  send_packet (a, ATT_STDIN_EOF, NULL, 0);
  att_hub_client_packet (&h, 0);
  CHECK (h.in == -1 && read (in[0], buf, sizeof buf) == 0, "EOF closes the workload's stdin");
  close (a);
  CHECK (att_hub_client_packet (&h, 0) == 0 && h.nclients == 0, "a client that hung up is dropped");
  close (in[0]);
}

static void
test_tty_resize_and_eof (void)
{
  struct att_hub h = { .nclients = 0, .tty = -1, .in = -1 };
  int master, slave, a, ha;
  unsigned short rc[2] = { 33, 101 };
  struct winsize ws = { 0 };
  struct termios t;
  char buf[64];
  ssize_t n;
  if (openpty (&master, &slave, NULL, NULL, NULL) < 0)
    {
      tap_skip ("no pty on this machine", "terminal resize and EOF");
      return;
    }
  /* canonical mode: the EOF character ends a read() on the slave with what came before */
  if (tcgetattr (slave, &t) == 0)
    {
      t.c_lflag |= ICANON;
      t.c_lflag &= ~(tcflag_t) ECHO;
      tcsetattr (slave, TCSANOW, &t);
    }
  h.tty = master;
  client_pair (&a, &ha);
  att_hub_add (&h, ha);
  send_packet (a, ATT_RESIZE, rc, sizeof rc);
  att_hub_client_packet (&h, 0);
  CHECK (ioctl (slave, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 33 && ws.ws_col == 101, "resize reached the terminal");
  send_packet (a, ATT_STDIN, "hi", 2);
  att_hub_client_packet (&h, 0);
  send_packet (a, ATT_STDIN_EOF, NULL, 0);
  att_hub_client_packet (&h, 0);
  n = read (slave, buf, sizeof buf);
  CHECK (n == 2 && memcmp (buf, "hi", 2) == 0, "with a terminal, input goes to it and EOF ends the line");
  /* a second EOF on an empty line: the read of it returns 0, end of input */
  send_packet (a, ATT_STDIN_EOF, NULL, 0);
  att_hub_client_packet (&h, 0);
  n = read (slave, buf, sizeof buf);
  CHECK (n == 0, "the terminal's EOF character on an empty line reads as end of input");
  att_hub_close_all (&h);
  close (a);
  close (master);
  close (slave);
}

static void
test_client_limit (void)
{
  struct att_hub h = { .nclients = 0, .tty = -1, .in = -1 };
  int mine[ATT_MAX_CLIENTS + 1], hubs;
  char c;
  for (int i = 0; i <= ATT_MAX_CLIENTS; i++)
    {
      client_pair (&mine[i], &hubs);
      att_hub_add (&h, hubs);
    }
  CHECK (h.nclients == ATT_MAX_CLIENTS, "at most %d clients", ATT_MAX_CLIENTS);
  CHECK (recv (mine[ATT_MAX_CLIENTS], &c, 1, MSG_DONTWAIT) == 0, "one too many is closed at once");
  att_hub_close_all (&h);
  for (int i = 0; i <= ATT_MAX_CLIENTS; i++)
    close (mine[i]);
}

int
main (void)
{
  signal (SIGPIPE, SIG_IGN);
  test_output_log_and_clients ();
  test_input_eof_signal ();
  test_tty_resize_and_eof ();
  test_client_limit ();
  return tap_done ();
}
