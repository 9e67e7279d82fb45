/* Registry credentials in docker's auth.json format: {"auths": {"HOST": {"auth": "base64(user:pass)"}}}.
 * Ours is $REGISTRY_AUTH_FILE, else $XDG_CONFIG_HOME/cella/auth.json (default ~/.config/cella/auth.json);
 * docker's $DOCKER_CONFIG/config.json (default ~/.docker/config.json) is read, never written, as a
 * fallback for auth_get. Credential helpers (credsStore, credHelpers) are not supported. */
#ifndef CELLA_IMAGE_AUTH_H
#define CELLA_IMAGE_AUTH_H

#include "util/util.h"

/* The file auth_set writes (malloc'd). */
char *auth_file_path (void);
/* 0 and *user, *pass (malloc'd) when credentials for host are stored; 1 when none; < 0 on an error
 * (our file exists but cannot be read or parsed). */
int auth_get (const char *host, char **user, char **pass, cella_error_t *err);
/* Store credentials for host: the file is replaced atomically with mode 0600 (its directories are
 * made 0700), keeping the other hosts' entries and any keys we do not know. */
int auth_set (const char *host, const char *user, const char *pass, cella_error_t *err);
/* 0 when host's entry was removed, 1 when there was none. */
int auth_remove (const char *host, cella_error_t *err);

/* RFC 4648 base64 with padding (malloc'd); decode returns NULL on bad input and NUL-terminates. */
char *base64_encode (const void *buf, size_t len);
char *base64_decode (const char *s, size_t *len);

#endif
