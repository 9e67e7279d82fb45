/* Rootless private networks: a user-mode network stack joins the container's namespace.
 * pasta (package passt) by default, slirp4netns where pasta is missing; CELLA_ROOTLESS_NET=
 * pasta|slirp4netns picks one. The helper's pid is kept in $run/net/<id>.pid to stop it. Neither
 * may give the container the host's loopback: pasta without its gateway mapping, and an nft
 * guard on the container's interface for frames addressed to loopback (nat.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../util/proc.h"
#include "../util/paths.h"
#include "internal.h"

/* The container's interface that each helper makes (the loopback guard is on it). */
#define ROOTLESS_PASTA_DEV "eth0"
#define ROOTLESS_SLIRP_DEV "tap0"

const char *
net_rootless_tool (char **path)
{
  static const char *const tools[] = { "pasta", "slirp4netns" };
  const char *want = getenv ("CELLA_ROOTLESS_NET");
  for (size_t i = 0; i < 2; i++)
    {
      char *p;
      if (want && *want && strcmp (want, tools[i]) != 0)
        continue;
      p = net_find_program (tools[i]);
      if (p == NULL)
        continue;
      if (path)
        *path = p;
      else
        free (p);
      return tools[i];
    }
  if (path)
    *path = NULL;
  return NULL;
}

static char *
state_path (const char *id, const char *ext)
{
  return xasprintf ("%s/net/%.64s.%s", paths_run_root (), id, ext);
}

/* slirp4netns's API socket: the id's first 12 characters, as a socket's path must fit in
 * sun_path (108 bytes) and a run root under a test's temp directory is long already. */
static char *
sock_path (const char *id)
{
  return xasprintf ("%s/net/%.12s.sock", paths_run_root (), id);
}

static int
record_helper (const char *id, pid_t pid, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/net", paths_run_root ()), *path = state_path (id, "pid");
  cleanup_free char *text = xasprintf ("%d %llu\n", (int) pid, proc_start_time (pid));
  if (mkdir_p (dir, 0700, err) < 0)
    return -1;
  return write_file_atomic (path, text, strlen (text), 0600, err);
}

int
rootless_ports_save (const char *id, const char *ports, cella_error_t *err)
{
  cleanup_free char *dir = xasprintf ("%s/net", paths_run_root ()), *path = state_path (id, "ports");
  cleanup_free char *text = xasprintf ("%d %llu\n%s\n", (int) getpid (), proc_start_time (getpid ()), ports);
  if (mkdir_p (dir, 0700, err) < 0)
    return -1;
  return write_file_atomic (path, text, strlen (text), 0600, err);
}

char *
rootless_ports_load (const char *id)
{
  cleanup_free char *path = state_path (id, "ports"), *text = NULL;
  char *nl;
  int pid = 0;
  unsigned long long start = 0;
  if (read_file (path, &text, NULL, NULL) < 0 || sscanf (text, "%d %llu", &pid, &start) != 2 || !proc_alive (pid, start)
      || (nl = strchr (text, '\n')) == NULL)
    return NULL;
  nl++;
  nl[strcspn (nl, "\n")] = '\0';
  return xstrdup (nl);
}

/* The ports net_prepare resolved for this start (random host ports chosen). */
static size_t
resolved_ports (const struct plan *p, struct net_port **out)
{
  cleanup_free char *ps = rootless_ports_load (p->id);
  char *save = NULL;
  size_t n = 0;
  *out = NULL;
  for (char *t = ps ? strtok_r (ps, ",", &save) : NULL; t; t = strtok_r (NULL, ",", &save))
    {
      struct net_port pt;
      if (net_port_item_parse (t, &pt) < 0 || pt.host == 0)
        continue;
      *out = xrealloc (*out, (n + 1) * sizeof **out);
      (*out)[n++] = pt;
    }
  return n;
}

static char *
port_spec (const struct net_port *v, size_t n, const char *proto)
{
  char *out = NULL;
  for (size_t i = 0; i < n; i++)
    {
      char *next;
      if (strcmp (v[i].proto, proto) != 0)
        continue;
      next = xasprintf ("%s%s%s%s%u:%u", out ? out : "", out ? "," : "", v[i].ip, *v[i].ip ? "/" : "", v[i].host,
                        v[i].ctr);
      free (out);
      out = next;
    }
  return out;
}

/* pasta gets the namespaces as fds this process opened (its path to them is /proc/self/fd/N):
 * as root of a user namespace (unshare -r) pasta would switch to nobody and could not open the
 * container's /proc/PID/ns files itself. It runs in the foreground (-f) as our child with
 * PDEATHSIG: it ends with the cella process that runs the container, like the workload, even when
 * that one is killed (a daemonized pasta would outlive it: with a namespace given as a path of
 * ours it cannot watch it go). Ready when it has written its pid file. */
static int
pasta_attach (struct plan *p, const char *prog, pid_t pid, const struct net_port *ports, size_t nports,
              cella_error_t *err)
{
  cleanup_free char *tcp = port_spec (ports, nports, "tcp"), *udp = port_spec (ports, nports, "udp");
  cleanup_free char *pidfile = state_path (p->id, "pasta"), *dir = xasprintf ("%s/net", paths_run_root ());
  cleanup_free char *runas = xasprintf ("%u:%u", (unsigned) geteuid (), (unsigned) getegid ());
  cleanup_free char *netp = xasprintf ("/proc/%d/ns/net", (int) pid),
                    *userp = xasprintf ("/proc/%d/ns/user", (int) pid);
  cleanup_free char *netns = NULL, *userns = NULL;
  cleanup_close int netfd = open (netp, O_RDONLY), userfd = open (userp, O_RDONLY);
  cleanup_close int errfd = memfd_create ("cella-pasta-stderr", MFD_CLOEXEC);
  pid_t parent = getpid (), helper;
  if (netfd < 0 || userfd < 0 || errfd < 0)
    return cella_error (err, errno, "open the namespaces of the container's process %d", (int) pid);
  netns = xasprintf ("/proc/self/fd/%d", netfd);
  userns = xasprintf ("/proc/self/fd/%d", userfd);
  if (mkdir_p (dir, 0700, err) < 0)
    return -1;
  unlink (pidfile);
  helper = fork ();
  if (helper < 0)
    return cella_error (err, errno, "fork pasta");
  if (helper == 0)
    {
      char *argv[] = { (char *) prog, (char *) "-f", (char *) "--config-net", (char *) "--quiet", (char *) "--runas",
                       runas, (char *) "--pid", pidfile, (char *) "--no-netns-quit", (char *) "--netns", netns,
                       /* the gateway is not the host's loopback (docs/network.md); the guard's device */
                       (char *) "--no-map-gw", (char *) "-I", (char *) ROOTLESS_PASTA_DEV, (char *) "-t",
                       tcp ? tcp : (char *) "none", (char *) "-u", udp ? udp : (char *) "none", (char *) "-T",
                       (char *) "none", (char *) "-U", (char *) "none",
                       /* the container's own user namespace; without one (unshare -r) it is ours already */
                       (p->ns & PLAN_NS_USER) ? (char *) "--userns" : NULL, userns, NULL };
      int null = open ("/dev/null", O_RDWR);
      sigset_t none;
      prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      if (getppid () != parent)
        _exit (1);
      setsid (); /* no terminal signals: a ^C is for the workload */
      /* the monitor ignores some signals and blocks others: pasta installs its own handlers */
      for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
          signal (sig, SIG_DFL);
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      dup2 (null, 0);
      dup2 (null, 1);
      dup2 (errfd, 2);
      execv (prog, argv);
      _exit (127);
    }
  for (int i = 0; i < 10000; i++)
    {
      struct timespec ts = { 0, 2 * 1000000L };
      char msg[512] = "";
      ssize_t len;
      if (access (pidfile, F_OK) == 0)
        {
          unlink (pidfile);
          return record_helper (p->id, helper, err);
        }
      if (waitpid (helper, NULL, WNOHANG) == helper)
        {
          len = pread (errfd, msg, sizeof msg - 1, 0);
          msg[len > 0 ? len : 0] = '\0';
          while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
            msg[--len] = '\0';
          return cella_error (err, 0, "start pasta for the container's network: pasta exited%s%s", *msg ? ": " : "",
                              msg);
        }
      nanosleep (&ts, NULL);
    }
  kill (helper, SIGKILL);
  waitpid (helper, NULL, 0);
  return cella_error (err, ETIMEDOUT, "start pasta for the container's network: not ready after 20 s");
}

/* One request on slirp4netns's API socket (a JSON object each way); the answer must be an object
 * with "return" (an "error" one is refused, with what it said). */
static int
slirp_api (const char *sock, json_t *req, cella_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cleanup_free char *text = json_dumps (req, JSON_COMPACT);
  char buf[1024];
  json_t *reply;
  bool ok;
  ssize_t n;
  if (text == NULL)
    return cella_error (err, ENOMEM, "slirp4netns request");
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", sock);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || write_all (fd, text, strlen (text)) < 0)
    return cella_error (err, errno, "slirp4netns API socket `%s`", sock);
  shutdown (fd, SHUT_WR);
  n = read (fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = '\0';
  reply = n > 0 ? json_loads (buf, 0, NULL) : NULL;
  ok = json_object_get (reply, "return") != NULL;
  json_decref (reply);
  if (!ok)
    return cella_error (err, 0, "slirp4netns refused `%s`: %s", text, buf);
  return 0;
}

static int
slirp_attach (struct plan *p, const char *prog, pid_t pid, const struct net_port *ports, size_t nports,
              cella_error_t *err)
{
  cleanup_free char *sock = sock_path (p->id), *dir = xasprintf ("%s/net", paths_run_root ());
  cleanup_free char *target = xasprintf ("%d", (int) pid),
                    *userns = xasprintf ("--userns-path=/proc/%d/ns/user", (int) pid);
  cleanup_free char *api = NULL, *rfd = NULL;
  int ready[2];
  char c;
  pid_t helper, parent = getpid ();
  if (strlen (sock) >= sizeof ((struct sockaddr_un *) 0)->sun_path)
    return cella_error (err, ENAMETOOLONG, "slirp4netns API socket `%s`: the path is too long for a socket", sock);
  if (mkdir_p (dir, 0700, err) < 0 || pipe2 (ready, O_CLOEXEC) < 0)
    return cella_error (err, errno, "pipe");
  unlink (sock);
  api = xasprintf ("--api-socket=%s", sock);
  rfd = xasprintf ("--ready-fd=%d", ready[1]);
  helper = fork ();
  if (helper < 0)
    {
      close (ready[0]);
      close (ready[1]);
      return cella_error (err, errno, "fork slirp4netns");
    }
  if (helper == 0)
    {
      char *argv[10];
      size_t k = 0;
      int null = open ("/dev/null", O_RDWR);
      argv[k++] = (char *) prog;
      argv[k++] = (char *) "--configure";
      argv[k++] = (char *) "--mtu=65520";
      argv[k++] = (char *) "--disable-host-loopback";
      argv[k++] = api;
      argv[k++] = rfd;
      if (p->ns & PLAN_NS_USER)
        argv[k++] = userns;
      argv[k++] = target;
      argv[k++] = (char *) ROOTLESS_SLIRP_DEV;
      argv[k] = NULL;
      /* The helper lives as long as this process, across its execve: the monitor becomes the small
       * monitor (monitor/main.c) and, at the workload's end, the full one again. So no --exit-fd
       * (a close-on-exec pipe ended slirp4netns at the first of those execs): the parent-death
       * signal, which an execve of the parent keeps, ends it with the process that started it. */
      prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      if (getppid () != parent)
        _exit (127);
      fcntl (ready[1], F_SETFD, 0);
      dup2 (null, 0);
      dup2 (null, 1);
      dup2 (null, 2);
      setsid ();
      execv (prog, argv);
      _exit (127);
    }
  close (ready[1]);
  if (read (ready[0], &c, 1) != 1)
    {
      close (ready[0]);
      waitpid (helper, NULL, 0);
      return cella_error (err, 0, "slirp4netns did not start for the container's network");
    }
  close (ready[0]);
  if (record_helper (p->id, helper, err) < 0)
    return -1;
  for (size_t i = 0; i < nports; i++)
    {
      const struct net_port pt = ports[i];
      json_t *req = json_pack ("{s:s, s:{s:s, s:s, s:I, s:I}}", "execute", "add_hostfwd", "arguments", "proto",
                               pt.proto, "host_addr", *pt.ip ? pt.ip : "0.0.0.0", "host_port", (json_int_t) pt.host,
                               "guest_port", (json_int_t) pt.ctr);
      int r = req ? slirp_api (sock, req, err) : cella_error (err, EINVAL, "slirp4netns request for port %u", pt.host);
      json_decref (req);
      if (r < 0)
        return -1;
    }
  return 0;
}

/* The egress guard on the helper's device (nat.c): nothing the container sends to a loopback address
 * may reach pasta or slirp4netns. Needed without any capability too: an ordinary UDP socket sends
 * to 127.0.0.1 out of the helper's device when IP_UNICAST_IF or IP_PKTINFO names it. */
static int
guard_loopback (const struct plan *p, pid_t pid, const char *dev, cella_error_t *err)
{
  cleanup_free char *userp = xasprintf ("/proc/%d/ns/user", (int) pid),
                    *netp = xasprintf ("/proc/%d/ns/net", (int) pid);
  cleanup_close int userfd = -1, netfd = -1;
  /* without a user namespace of its own (unshare -r) the container's network namespace is ours */
  if (((p->ns & PLAN_NS_USER) && (userfd = open (userp, O_RDONLY | O_CLOEXEC)) < 0)
      || (netfd = open (netp, O_RDONLY | O_CLOEXEC)) < 0)
    return cella_error (err, errno, "open the namespaces of the container's process %d", (int) pid);
  return nat_guard_apply (userfd, netfd, dev, err);
}

int
rootless_attach (struct plan *p, pid_t pid, cella_error_t *err)
{
  cleanup_free char *prog = NULL;
  cleanup_free struct net_port *ports = NULL;
  const char *tool = net_rootless_tool (&prog);
  bool pasta;
  size_t n;
  if (tool == NULL)
    return cella_error (err, 0,
                        "a private network without root needs pasta (package passt) or slirp4netns; "
                        "install one, or use --network host|none");
  n = resolved_ports (p, &ports);
  if (n < strv_len (p->ports))
    return cella_error (err, 0, "the container's published ports were not prepared (net_prepare was not called)");
  pasta = strcmp (tool, "pasta") == 0;
  if ((pasta ? pasta_attach (p, prog, pid, ports, n, err) : slirp_attach (p, prog, pid, ports, n, err)) < 0)
    return -1;
  return guard_loopback (p, pid, pasta ? ROOTLESS_PASTA_DEV : ROOTLESS_SLIRP_DEV, err);
}

void
rootless_detach (const char *id)
{
  cleanup_free char *path = state_path (id, "pid"), *sock = sock_path (id), *text = NULL;
  cleanup_free char *ports = state_path (id, "ports");
  int pid = 0;
  unsigned long long start = 0;
  if (read_file (path, &text, NULL, NULL) == 0 && sscanf (text, "%d %llu", &pid, &start) == 2
      && proc_alive (pid, start))
    {
      /* a user-mode network stack has nothing to save: KILL (slirp4netns does not end on TERM) */
      kill (pid, SIGKILL);
      if (waitpid (pid, NULL, 0) < 0) /* slirp4netns is our child; pasta (daemonized) is not */
        for (int i = 0; i < 100 && proc_alive (pid, start); i++)
          {
            struct timespec ts = { 0, 10 * 1000000L };
            nanosleep (&ts, NULL);
          }
    }
  unlink (path);
  unlink (sock);
  unlink (ports);
}
