/* The monitor's side of the attach protocol: attach_hub.h. */
#define _GNU_SOURCE
#include "attach_hub.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

int
attach_send (int sock, int type, const void *buf, size_t len)
{
  char pkt[1 + ATT_MAX_PAYLOAD];
  if (len > ATT_MAX_PAYLOAD)
    len = ATT_MAX_PAYLOAD;
  pkt[0] = (char) type;
  if (len)
    memcpy (pkt + 1, buf, len);
  for (;;)
    {
      if (send (sock, pkt, len + 1, MSG_NOSIGNAL) >= 0)
        return 0;
      if (errno != EINTR)
        return -1;
    }
}

static void
att_hub_drop (struct att_hub *h, size_t i)
{
  close (h->clients[i]);
  h->clients[i] = h->clients[--h->nclients];
}

void
att_hub_add (struct att_hub *h, int fd)
{
  if (fd < 0)
    return;
  if (h->nclients == ATT_MAX_CLIENTS)
    {
      close (fd);
      return;
    }
  h->clients[h->nclients++] = fd;
}

void
att_hub_broadcast (struct att_hub *h, int type, const void *buf, size_t len)
{
  for (size_t i = 0; i < h->nclients;)
    if (attach_send (h->clients[i], type, buf, len) < 0)
      att_hub_drop (h, i);
    else
      i++;
}

bool
att_hub_pump (struct att_hub *h, int fd, int stream)
{
  char buf[ATT_MAX_PAYLOAD];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  if (h->log)
    log_writer_write (h->log, stream, buf, (size_t) n);
  att_hub_broadcast (h, stream == LOG_STDERR ? ATT_STDERR : ATT_STDOUT, buf, (size_t) n);
  return true;
}

void
att_hub_close_stdin (struct att_hub *h)
{
  if (h->tty >= 0)
    {
      struct termios t;
      char eof = tcgetattr (h->tty, &t) == 0 ? (char) t.c_cc[VEOF] : 4;
      write_all (h->tty, &eof, 1);
    }
  if (h->in >= 0)
    close (h->in);
  h->in = -1;
}

int
att_hub_client_packet (struct att_hub *h, size_t i)
{
  char pkt[1 + ATT_MAX_PAYLOAD];
  ssize_t n = recv (h->clients[i], pkt, sizeof pkt, MSG_DONTWAIT);
  int in = h->tty >= 0 ? h->tty : h->in, sig = 0;
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return 0;
  if (n <= 0)
    {
      att_hub_drop (h, i);
      return 0;
    }
  if (pkt[0] == ATT_STDIN && in >= 0)
    write_all (in, pkt + 1, (size_t) n - 1);
  else if (pkt[0] == ATT_STDIN_EOF)
    att_hub_close_stdin (h);
  else if (pkt[0] == ATT_RESIZE && n >= 5 && h->tty >= 0)
    {
      unsigned short rc[2];
      struct winsize ws = { 0 };
      memcpy (rc, pkt + 1, sizeof rc);
      ws.ws_row = rc[0];
      ws.ws_col = rc[1];
      ioctl (h->tty, TIOCSWINSZ, &ws);
    }
  else if (pkt[0] == ATT_SIGNAL && n >= 1 + (ssize_t) sizeof (int))
    memcpy (&sig, pkt + 1, sizeof sig);
  return sig > 0 ? sig : 0;
}

void
att_hub_close_all (struct att_hub *h)
{
  for (size_t i = 0; i < h->nclients; i++)
    close (h->clients[i]);
  h->nclients = 0;
}
