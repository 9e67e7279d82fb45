/* The container's /etc/hosts and /etc/resolv.conf text, and the --add-host check: pure, for the
 * plan builder and the network code that rewrites them with a leased address. */
#define _GNU_SOURCE
#include "etcfiles.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

char *
net_resolv_conf (const char *host_text, char *const *dns)
{
  char *out = xstrdup ("");
  size_t servers = 0;
#define APPEND(...)                                                                                                    \
  do                                                                                                                   \
    {                                                                                                                  \
      char *n_ = xasprintf (__VA_ARGS__);                                                                              \
      char *j_ = xasprintf ("%s%s", out, n_);                                                                          \
      free (n_);                                                                                                       \
      free (out);                                                                                                      \
      out = j_;                                                                                                        \
    }                                                                                                                  \
  while (0)
  for (size_t i = 0; dns && dns[i]; i++, servers++)
    APPEND ("nameserver %s\n", dns[i]);
  if (host_text)
    {
      cleanup_free char *copy = xstrdup (host_text);
      char *save = NULL;
      for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
        {
          char word[32], val[256];
          if (sscanf (line, "%31s %255s", word, val) != 2)
            continue;
          if (strcmp (word, "nameserver") == 0)
            {
              if (dns || has_prefix (val, "127.") || strcmp (val, "::1") == 0)
                continue;
              servers++;
            }
          else if (strcmp (word, "search") != 0 && strcmp (word, "options") != 0 && strcmp (word, "domain") != 0)
            continue;
          APPEND ("%s\n", line);
        }
    }
  if (servers == 0)
    APPEND ("# the host has only loopback name servers, which do not answer in the container's network\n"
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
#undef APPEND
  return out;
}

char *
net_hosts (const char *addr, const char *hostname, const char *alias, char *const *add_hosts)
{
  char *out = xasprintf ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s%s%s\n", addr,
                         hostname, alias && strcmp (alias, hostname) != 0 ? " " : "",
                         alias && strcmp (alias, hostname) != 0 ? alias : "");
  for (size_t i = 0; add_hosts && add_hosts[i]; i++)
    {
      const char *colon = strchr (add_hosts[i], ':');
      char *n;
      if (colon == NULL)
        continue;
      n = xasprintf ("%s%s\t%.*s\n", out, colon + 1, (int) (colon - add_hosts[i]), add_hosts[i]);
      free (out);
      out = n;
    }
  return out;
}

int
net_add_host_check (const char *spec, cella_error_t *err)
{
  const char *colon = strchr (spec, ':');
  unsigned char buf[16];
  if (colon == NULL || colon == spec)
    return cella_error (err, 0, "--add-host `%s`: expected NAME:IP", spec);
  if (inet_pton (AF_INET, colon + 1, buf) != 1 && inet_pton (AF_INET6, colon + 1, buf) != 1)
    return cella_error (err, 0, "--add-host `%s`: `%s` is not an IP address", spec, colon + 1);
  for (const char *c = spec; c < colon; c++)
    if (*c == ' ' || *c == '\t' || *c == '\n')
      return cella_error (err, 0, "--add-host `%s`: the name has blanks", spec);
  return 0;
}
