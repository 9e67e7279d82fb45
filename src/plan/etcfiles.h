/* The container's /etc/hosts and /etc/resolv.conf (src/plan/etcfiles.c). */
#ifndef CELLA_PLAN_ETCFILES_H
#define CELLA_PLAN_ETCFILES_H

#include "../util/util.h"

/* The default network's name (--network cella, private or bridge). */
#define NET_DEFAULT_NAME "cella"

/* /etc/resolv.conf for a container of its own network: `dns` when given, else the host's name
 * servers without loopback ones (they answer only in the host's namespace), else docker's public
 * fallback. host_text: the host's resolv.conf (NULL: none). */
char *net_resolv_conf (const char *host_text, char *const *dns);
/* /etc/hosts: localhost, `addr hostname [aliases]`, then --add-host NAME:IP lines. */
char *net_hosts (const char *addr, const char *hostname, const char *alias, char *const *add_hosts);
/* --add-host NAME:IP check. */
int net_add_host_check (const char *spec, cella_error_t *err);

#endif
