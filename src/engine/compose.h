/* cella compose: the project model. Compose files (YAML, merged in order, interpolated from the
 * environment and .env) become one normalized JSON document, docker compose's `config` form:
 * { "name", "services": { SVC: {...} }, "networks": {...}, "volumes": {...} }. The CLI
 * (src/cli/compose.c) acts on it. docs/compose.md lists the keys. */
#ifndef CELLA_ENGINE_COMPOSE_H
#define CELLA_ENGINE_COMPOSE_H

#include <jansson.h>
#include <stdbool.h>

#include "../util/util.h"

struct compose_project {
  char *name;    /* -p, COMPOSE_PROJECT_NAME, else the project directory's name (normalized) */
  char *dir;     /* the project directory: the first file's */
  json_t *model; /* the normalized document */
  char **order;  /* service names, dependencies first */
};

struct compose_load_opts {
  char **files;         /* -f FILE...; NULL: compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml */
  const char *project;  /* -p */
  char **profiles;      /* --profile; also COMPOSE_PROFILES */
  const char *env_file; /* --env-file; default DIR/.env */
};

/* Load, merge, interpolate and normalize; warnings (unknown keys) go to stderr. */
int compose_load (const struct compose_load_opts *o, struct compose_project *p, cella_error_t *err);
void compose_project_free (struct compose_project *p);

/* A service's normalized object, or NULL. */
json_t *compose_service (const struct compose_project *p, const char *name);

/* A short hash of a service's normalized config (what `up` compares to decide on recreating). */
char *compose_service_hash (const struct compose_project *p, const char *name);

/* Replicas: `scale`, else `deploy.replicas`, else 1. */
#define COMPOSE_MAX_REPLICAS 1000
int compose_service_replicas (const struct compose_project *p, const char *name);

/* `--scale SERVICE=N` split (svc malloc'd); the service is not checked. */
int compose_scale_parse (const char *spec, char **svc, int *n, cella_error_t *err);

/* Set a service's replica count (what --scale does); an unknown service is an error. */
int compose_set_replicas (struct compose_project *p, const char *name, int n, cella_error_t *err);

/* Whether the service can run its replica count: more than one with container_name or a fixed
 * published host port is an error naming them. */
int compose_check_replicas (const struct compose_project *p, const char *name, cella_error_t *err);

/* Interpolate ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, $VAR and $$ in `in`
 * from env (an object of strings). */
int compose_interpolate (const char *in, json_t *env, char **out, cella_error_t *err);

/* A YAML document (its top level a mapping) as JSON, every scalar value interpolated. */
int compose_yaml_parse (const char *file, const char *text, size_t len, json_t *env, json_t **out, cella_error_t *err);

/* Read a KEY=VALUE file (# comments, blank lines, optional quotes) into obj. */
int compose_env_file_read (const char *path, json_t *obj, cella_error_t *err);

/* Split a command string like a POSIX shell's words (quotes and backslashes; no expansion). */
int compose_shell_split (const char *s, json_t **out, cella_error_t *err);

#endif
