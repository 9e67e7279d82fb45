/* cella login / logout: credentials checked against the registry, kept in auth.json (auth.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "registry.h"
#include "tool.h"

struct login_opts {
  bool password_stdin;
  char *user, *pass, *tls_verify;
};

#define O(f) offsetof (struct login_opts, f)
static const struct cli_option login_table[] = {
  { "username", 'u', OPT_STRING, O (user), "USER", "User name (asked on the terminal when missing)" },
  { "password", 'p', OPT_STRING, O (pass), "PASS", "Password (prefer --password-stdin: arguments are visible in ps)" },
  { "password-stdin", 0, OPT_FLAG, O (password_stdin), NULL, "Read the password from standard input" },
  { "tls-verify", 0, OPT_STRING, O (tls_verify), "BOOL", "Verify the registry's TLS certificate (default true)" },
  { NULL, 0, 0, 0, NULL, NULL },
};
static const struct cli_option logout_table[] = { { NULL, 0, 0, 0, NULL, NULL } };
#undef O

static char *
read_line (FILE *f)
{
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline (&line, &cap, f);
  if (n < 0)
    {
      free (line);
      return NULL;
    }
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  return line;
}

int
cmd_login (int argc, char **argv)
{
  struct login_opts o = { 0 };
  cella_error_t err = NULL;
  struct reg_opts ro = REG_OPTS_INIT;
  struct registry *reg = NULL;
  cleanup_free char *user = NULL, *pass = NULL, *path = NULL;
  int status, first = cli_parse_command (login_table, &o, argc, argv, "cella login [OPTIONS] REGISTRY",
                                         "Check credentials with a registry and store them (docker's auth.json format, "
                                         "mode 0600) for pull.",
                                         1, "a registry is required", &status);
  if (first <= 0)
    goto out;
  user = o.user ? xstrdup (o.user) : NULL;
  if (user == NULL)
    {
      if (!isatty (0) || o.password_stdin)
        {
          cella_error (&err, 0, "login: no user name: give -u USER");
          goto fail;
        }
      fprintf (stderr, "Username: ");
      user = read_line (stdin);
    }
  if (o.password_stdin)
    pass = read_line (stdin);
  else if (o.pass)
    pass = xstrdup (o.pass);
  else if (isatty (0))
    pass = xstrdup (getpass ("Password: "));
  if (user == NULL || *user == '\0' || pass == NULL)
    {
      cella_error (&err, 0, "login: a user name and a password are required (-u USER, --password-stdin)");
      goto fail;
    }
  if (registry_opts_tls (argv[first], o.tls_verify, &ro, &err) < 0)
    goto fail;
  ro.user = user;
  ro.pass = pass;
  reg = registry_new (argv[first], "", &ro);
  if (registry_check_login (reg, &err) < 0 || auth_set (argv[first], user, pass, &err) < 0)
    goto fail;
  path = auth_file_path ();
  fprintf (stderr, "Login Succeeded (credentials in %s)\n", path);
  status = 0;
  goto out;
fail:
  status = cella_error_print (&err);
out:
  registry_free (reg);
  free (o.user);
  free (o.pass);
  free (o.tls_verify);
  return status;
}

int
cmd_logout (int argc, char **argv)
{
  cella_error_t err = NULL;
  int status,
      first = cli_parse_command (logout_table, NULL, argc, argv, "cella logout REGISTRY",
                                 "Remove the stored credentials for a registry.", 1, "a registry is required", &status);
  int r;
  if (first <= 0)
    return status;
  r = auth_remove (argv[first], &err);
  if (r < 0)
    return cella_error_print (&err);
  if (r > 0)
    {
      cella_error (&err, 0, "logout: not logged in to %s", argv[first]);
      return cella_error_print (&err);
    }
  fprintf (stderr, "Removed login credentials for %s\n", argv[first]);
  return 0;
}
