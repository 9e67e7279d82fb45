/* Unit tests for the image tool's registry client: the WWW-Authenticate parser, sha256 helpers,
 * base64 and auth.json, progress lines; then the client itself against a scripted fake HTTP
 * server (retries, redirects, media types, bearer tokens, the http fallback) and against real
 * docker-registry instances (plain, htpasswd, token) when docker-registry is installed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "image/tool/auth.h"
#include "image/tool/digest.h"
#include "image/tool/progress.h"
#include "image/tool/registry.h"
#include "image/tool/tool.h"
#include "tap.h"

#define SHA_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char *tmpdir;

/* ---------------------------------------------------------------- helpers */

static bool
err_has (cella_error_t *err, const char *needle)
{
  bool r = err && *err && strstr ((*err)->msg, needle) != NULL;
  if (!r)
    printf ("#   error was: %s\n#   wanted: %s\n", err && *err ? (*err)->msg : "(none)", needle);
  else
    printf ("#   message: %s\n", (*err)->msg);
  cella_error_free (err);
  return r;
}

static void
no_err (int r, cella_error_t *err, const char *what)
{
  CHECK (r == 0, "%s", what);
  if (r != 0)
    printf ("#   error: %s\n", *err ? (*err)->msg : "(none)");
  cella_error_free (err);
}

static char *
slurp (const char *path)
{
  char *s = NULL;
  cella_error_t err = NULL;
  if (read_file (path, &s, NULL, &err) < 0)
    {
      cella_error_free (&err);
      return xstrdup ("");
    }
  return s;
}

static void
put_file (const char *path, const char *text)
{
  cella_error_t err = NULL;
  if (write_file_atomic (path, text, strlen (text), 0644, &err) < 0)
    abort ();
}

static char *
digest_of (const void *buf, size_t len)
{
  char d[72];
  struct sha256 *h = sha256_new ();
  sha256_update (h, buf, len);
  sha256_final (h, d);
  return xstrdup (d);
}

static int
free_port (void)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t l = sizeof a;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;
  if (fd < 0 || bind (fd, (struct sockaddr *) &a, sizeof a) < 0 || getsockname (fd, (struct sockaddr *) &a, &l) < 0)
    abort ();
  port = ntohs (a.sin_port);
  close (fd);
  return port;
}

static bool
find_in_path (const char *name)
{
  const char *path = getenv ("PATH");
  cleanup_free char *copy = xstrdup (path ? path : "/usr/bin:/bin");
  for (char *save = NULL, *dir = strtok_r (copy, ":", &save); dir; dir = strtok_r (NULL, ":", &save))
    {
      cleanup_free char *p = xasprintf ("%s/%s", dir, name);
      if (access (p, X_OK) == 0)
        return true;
    }
  return false;
}

/* ---------------------------------------------------------------- child processes */

static pid_t children[8];
static size_t n_children;

static void
kill_children (void)
{
  for (size_t i = 0; i < n_children; i++)
    if (children[i] > 0)
      {
        kill (children[i], SIGTERM);
        waitpid (children[i], NULL, 0);
        children[i] = 0;
      }
  n_children = 0;
}

/* argv run with its output to log; killed when we exit, and by the kernel if we die first. */
static pid_t
spawn (char *const argv[], const char *log)
{
  pid_t parent = getpid (), pid = fork ();
  if (pid < 0)
    abort ();
  if (pid == 0)
    {
      int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (getppid () != parent)
        _exit (1);
      if (fd >= 0)
        {
          dup2 (fd, 1);
          dup2 (fd, 2);
        }
      execvp (argv[0], argv);
      _exit (127);
    }
  if (n_children < sizeof children / sizeof children[0])
    children[n_children++] = pid;
  return pid;
}

static void
stop_child (pid_t pid)
{
  for (size_t i = 0; i < n_children; i++)
    if (children[i] == pid)
      {
        kill (pid, SIGTERM);
        waitpid (pid, NULL, 0);
        children[i] = 0;
      }
}

/* ---------------------------------------------------------------- a tiny HTTP client for setup */

struct resp {
  long status;
  char *body, *location;
  size_t len;
};

static size_t
resp_body (char *d, size_t s, size_t n, void *ud)
{
  struct resp *r = ud;
  r->body = xrealloc (r->body, r->len + s * n + 1);
  memcpy (r->body + r->len, d, s * n);
  r->len += s * n;
  r->body[r->len] = '\0';
  return s * n;
}

static size_t
resp_header (char *d, size_t s, size_t n, void *ud)
{
  struct resp *r = ud;
  if (s * n > 9 && strncasecmp (d, "location:", 9) == 0)
    {
      size_t k = s * n;
      while (k > 9 && (d[k - 1] == '\r' || d[k - 1] == '\n'))
        k--;
      free (r->location);
      r->location = xasprintf ("%.*s", (int) (k - 10), d + 10);
    }
  return s * n;
}

static void
resp_clear (struct resp *r)
{
  free (r->body);
  free (r->location);
  memset (r, 0, sizeof *r);
}

static long
http (const char *method, const char *url, const char *authz, const char *ctype, const void *body, size_t len,
      struct resp *out)
{
  CURL *e = curl_easy_init ();
  struct curl_slist *h = NULL;
  memset (out, 0, sizeof *out);
  if (authz)
    h = curl_slist_append (h, authz);
  if (ctype)
    h = curl_slist_append (h, ctype);
  curl_easy_setopt (e, CURLOPT_URL, url);
  curl_easy_setopt (e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt (e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt (e, CURLOPT_WRITEFUNCTION, resp_body);
  curl_easy_setopt (e, CURLOPT_WRITEDATA, out);
  curl_easy_setopt (e, CURLOPT_HEADERFUNCTION, resp_header);
  curl_easy_setopt (e, CURLOPT_HEADERDATA, out);
  curl_easy_setopt (e, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt (e, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt (e, CURLOPT_SSL_VERIFYHOST, 0L);
  if (body)
    {
      curl_easy_setopt (e, CURLOPT_POSTFIELDS, body);
      curl_easy_setopt (e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    }
  else if (strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0)
    curl_easy_setopt (e, CURLOPT_POSTFIELDSIZE, 0L);
  if (curl_easy_perform (e) == CURLE_OK)
    curl_easy_getinfo (e, CURLINFO_RESPONSE_CODE, &out->status);
  curl_slist_free_all (h);
  curl_easy_cleanup (e);
  return out->status;
}

/* Monolithic upload in two steps (POST, then PUT ?digest=), as the distribution spec describes. */
static bool
push_blob (const char *base, const char *repo, const void *data, size_t len, const char *authz)
{
  cleanup_free char *url = xasprintf ("%s/v2/%s/blobs/uploads/", base, repo), *d = digest_of (data, len);
  cleanup_free char *put = NULL;
  struct resp r;
  bool ok;
  if (http ("POST", url, authz, NULL, NULL, 0, &r) != 202 || r.location == NULL)
    {
      printf ("#   POST %s: %ld %s\n", url, r.status, r.body ? r.body : "");
      resp_clear (&r);
      return false;
    }
  put = xasprintf ("%s%s%sdigest=%s", r.location[0] == '/' ? base : "", r.location,
                   strchr (r.location, '?') ? "&" : "?", d);
  resp_clear (&r);
  ok = http ("PUT", put, authz, "Content-Type: application/octet-stream", data, len, &r) == 201;
  if (!ok)
    printf ("#   PUT blob: %ld %s\n", r.status, r.body ? r.body : "");
  resp_clear (&r);
  return ok;
}

static bool
push_manifest (const char *base, const char *repo, const char *tag, const char *body, const char *mt, const char *authz)
{
  cleanup_free char *url = xasprintf ("%s/v2/%s/manifests/%s", base, repo, tag);
  cleanup_free char *ct = xasprintf ("Content-Type: %s", mt);
  struct resp r;
  bool ok = http ("PUT", url, authz, ct, body, strlen (body), &r) == 201;
  if (!ok)
    printf ("#   PUT manifest: %ld %s\n", r.status, r.body ? r.body : "");
  resp_clear (&r);
  return ok;
}

/* ---------------------------------------------------------------- pure logic */

static void
test_challenge (void)
{
  struct reg_challenge c;
  int r;

  r = reg_challenge_parse ("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                           "scope=\"repository:library/busybox:pull\"",
                           &c);
  CHECK (r == 0 && c.scheme == REG_AUTH_BEARER, "challenge: Docker Hub's Bearer");
  CHECK_STR (c.realm, "https://auth.docker.io/token", "challenge: realm");
  CHECK_STR (c.service, "registry.docker.io", "challenge: service");
  CHECK_STR (c.scope, "repository:library/busybox:pull", "challenge: scope");
  reg_challenge_clear (&c);

  r = reg_challenge_parse ("Basic realm=\"Registry Realm\"", &c);
  CHECK (r == 0 && c.scheme == REG_AUTH_BASIC, "challenge: Basic");
  CHECK_STR (c.realm, "Registry Realm", "challenge: Basic realm with a space");
  reg_challenge_clear (&c);

  r = reg_challenge_parse ("bEaReR REALM=\"x\", Service=unquoted-value ,scope = \"a b\"", &c);
  CHECK (r == 0 && c.scheme == REG_AUTH_BEARER, "challenge: scheme and names are case-insensitive");
  CHECK_STR (c.service, "unquoted-value", "challenge: unquoted value");
  CHECK_STR (c.scope, "a b", "challenge: spaces around '='");
  reg_challenge_clear (&c);

  r = reg_challenge_parse ("Bearer realm=\"https://h/t?a=1,2\",scope=\"repository:a/b:pull,push\","
                           "error=\"say \\\"hi\\\", twice\\\\\"",
                           &c);
  CHECK_STR (c.realm, "https://h/t?a=1,2", "challenge: a comma inside quotes");
  CHECK_STR (c.scope, "repository:a/b:pull,push", "challenge: actions list inside quotes");
  CHECK_STR (c.error, "say \"hi\", twice\\", "challenge: escaped quotes and backslash");
  reg_challenge_clear (&c);

  r = reg_challenge_parse ("Basic realm=\"b\", Bearer realm=\"t\",service=\"s\"", &c);
  CHECK (r == 0 && c.scheme == REG_AUTH_BEARER, "challenge: Bearer wins over Basic");
  CHECK_STR (c.realm, "t", "challenge: the Bearer one's realm");
  reg_challenge_clear (&c);

  r = reg_challenge_parse ("Negotiate abc+/==, Basic realm=\"x\"", &c);
  CHECK (r == 0 && c.scheme == REG_AUTH_BASIC, "challenge: unknown scheme with token68 skipped");
  CHECK_STR (c.realm, "x", "challenge: realm after an unknown scheme");
  reg_challenge_clear (&c);

  r = reg_challenge_parse ("Digest realm=\"x\", nonce=\"y\"", &c);
  CHECK (r < 0 && c.scheme == REG_AUTH_NONE && c.realm == NULL, "challenge: only an unknown scheme → none");
  reg_challenge_clear (&c);

  r = reg_challenge_parse ("Bearer realm=\"unterminated", &c);
  CHECK (r == 0 && c.realm && strcmp (c.realm, "unterminated") == 0, "challenge: unterminated quote ends at the end");
  reg_challenge_clear (&c);

  {
    static const char *const junk[] = { "",
                                        "   ",
                                        ",,,",
                                        "=",
                                        "=\"x\"",
                                        "Bearer",
                                        "Bearer ,,, realm",
                                        "\"\"",
                                        "Bearer realm=",
                                        "Bearer realm=\"\\",
                                        "\x01\x02 Basic" };
    bool ok = true;
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
      {
        reg_challenge_parse (junk[i], &c);
        reg_challenge_clear (&c);
      }
    r = reg_challenge_parse (NULL, &c);
    ok &= r < 0;
    reg_challenge_clear (&c);
    CHECK (ok, "challenge: junk and NULL do not crash");
  }
  r = reg_challenge_parse ("Bearer", &c);
  CHECK (r == 0 && c.scheme == REG_AUTH_BEARER && c.realm == NULL, "challenge: Bearer without parameters");
  reg_challenge_clear (&c);
}

static void
test_digest (void)
{
  char d[72];
  struct sha256 *h;
  uint64_t size = 0;
  cella_error_t err = NULL;
  cleanup_free char *path = xasprintf ("%s/digest", tmpdir);
  int fd;

  h = sha256_new ();
  sha256_final (h, d);
  CHECK_STR (d, SHA_EMPTY, "sha256 of nothing");
  h = sha256_new ();
  sha256_update (h, "a", 1);
  sha256_update (h, "", 0);
  sha256_update (h, "bc", 2);
  sha256_final (h, d);
  CHECK_STR (d, SHA_ABC, "sha256 of abc, in pieces");
  h = sha256_new ();
  sha256_update (h, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56);
  sha256_final (h, d);
  CHECK_STR (d, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
             "sha256: FIPS 180-2 vector 2");
  sha256_free (sha256_new ()); /* ASan: no leak */
  sha256_free (NULL);

  put_file (path, "xxabc");
  fd = open (path, O_RDONLY | O_CLOEXEC);
  lseek (fd, 2, SEEK_SET);
  no_err (sha256_fd (fd, d, &size, &err), &err, "sha256_fd");
  CHECK_STR (d, SHA_ABC, "sha256_fd hashes from the current offset");
  CHECK (size == 3, "sha256_fd: size %llu", (unsigned long long) size);
  close (fd);
  CHECK (sha256_fd (-1, d, NULL, &err) < 0 && err_has (&err, "read"), "sha256_fd: a bad fd is an error");

  CHECK (digest_valid (SHA_ABC), "digest_valid: good");
  CHECK (!digest_valid ("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
         "digest_valid: uppercase refused");
  CHECK (!digest_valid ("sha256:ba7816bf"), "digest_valid: short refused");
  CHECK (!digest_valid (SHA_ABC "0"), "digest_valid: long refused");
  CHECK (!digest_valid ("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
         "digest_valid: other algorithm refused");
  CHECK (!digest_valid ("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a/"),
         "digest_valid: a slash refused");
  CHECK (!digest_valid (NULL) && !digest_valid (""), "digest_valid: NULL and empty refused");
}

static void
test_base64 (void)
{
  static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
  static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
  bool ok = true;
  size_t len;
  for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
    {
      cleanup_free char *e = base64_encode (plain[i], strlen (plain[i]));
      cleanup_free char *d = base64_decode (enc[i], &len);
      ok &= strcmp (e, enc[i]) == 0 && d && len == strlen (plain[i]) && strcmp (d, plain[i]) == 0;
    }
  CHECK (ok, "base64: RFC 4648 vectors both ways");
  {
    cleanup_free char *d = base64_decode ("dXNlcjpwYXNz", NULL), *nopad = base64_decode ("Zm9vYg", NULL);
    CHECK_STR (d, "user:pass", "base64: user:pass");
    CHECK_STR (nopad, "foob", "base64: padding may be left out");
  }
  {
    char *bad1 = base64_decode ("Zm9v!", NULL), *bad2 = base64_decode ("Z", NULL);
    char *bad3 = base64_decode ("Zg===", NULL);
    CHECK (!bad1 && !bad2 && !bad3, "base64: bad input refused");
    free (bad1), free (bad2), free (bad3);
  }
}

static void
test_auth (void)
{
  cleanup_free char *home = xasprintf ("%s/home", tmpdir), *xdg = xasprintf ("%s/xdg", tmpdir);
  cleanup_free char *file = xasprintf ("%s/cella/auth.json", xdg), *text = NULL, *path = NULL;
  cleanup_free char *dockerdir = xasprintf ("%s/.docker", home), *dockercfg = NULL;
  char *user = NULL, *pass = NULL;
  cella_error_t err = NULL;
  struct stat st;
  mode_t old;
  int r;

  mkdir (home, 0755);
  setenv ("HOME", home, 1);
  setenv ("XDG_CONFIG_HOME", xdg, 1);
  unsetenv ("REGISTRY_AUTH_FILE");
  unsetenv ("DOCKER_CONFIG");
  path = auth_file_path ();
  CHECK_STR (path, file, "auth: $XDG_CONFIG_HOME/cella/auth.json");
  unsetenv ("XDG_CONFIG_HOME");
  free (path);
  path = auth_file_path ();
  CHECK (has_prefix (path, home) && strstr (path, "/.config/cella/auth.json"), "auth: ~/.config/cella/auth.json");
  setenv ("XDG_CONFIG_HOME", xdg, 1);

  r = auth_get ("reg.example:5000", &user, &pass, &err);
  CHECK (r == 1 && user == NULL, "auth: nothing stored → 1");
  cella_error_free (&err);

  old = umask (0);
  no_err (auth_set ("reg.example:5000", "alice", "pa:ss wörd", &err), &err, "auth_set");
  umask (old);
  memset (&st, 0, sizeof st);
  r = stat (file, &st);
  CHECK (r == 0 && (st.st_mode & 07777) == 0600, "auth: file mode 0600 whatever the umask (%o)",
         (unsigned) (st.st_mode & 07777));
  {
    cleanup_free char *dir = xasprintf ("%s/cella", xdg);
    CHECK (stat (dir, &st) == 0 && (st.st_mode & 0777) == 0700, "auth: directory made 0700");
  }
  r = auth_get ("reg.example:5000", &user, &pass, &err);
  CHECK (r == 0 && user && pass && strcmp (user, "alice") == 0 && strcmp (pass, "pa:ss wörd") == 0,
         "auth: round trip (a ':' in the password)");
  free (user), free (pass);
  text = slurp (file);
  CHECK (strstr (text, "\"auth\": \"YWxpY2U6cGE6c3Mgd8O2cmQ=\"") != NULL, "auth: docker's base64(user:pass) form");
  free (text), text = NULL;

  /* another tool's entries and keys survive */
  put_file (file, "{\"auths\":{\"other.io\":{\"auth\":\"Ym9iOnNlY3JldA==\",\"email\":\"b@x\"}},"
                  "\"credHelpers\":{\"gcr.io\":\"gcloud\"}}");
  no_err (auth_set ("reg.example:5000", "alice", "new", &err), &err, "auth_set over another file");
  no_err (auth_set ("other.io", "bob", "secret2", &err), &err, "auth_set replaces an entry");
  text = slurp (file);
  CHECK (strstr (text, "credHelpers") && strstr (text, "gcloud") && strstr (text, "b@x"), "auth: unknown keys kept");
  free (text), text = NULL;
  r = auth_get ("other.io", &user, &pass, &err);
  CHECK (r == 0 && strcmp (user, "bob") == 0 && strcmp (pass, "secret2") == 0, "auth: other host's entry updated");
  free (user), free (pass);
  r = auth_get ("reg.example:5000", &user, &pass, &err);
  CHECK (r == 0 && strcmp (pass, "new") == 0, "auth: both hosts there");
  free (user), free (pass);

  CHECK (auth_set ("h", "a:b", "c", &err) < 0 && err_has (&err, "must not contain ':'"), "auth: ':' in a user refused");

  CHECK (auth_remove ("reg.example:5000", &err) == 0, "auth_remove: 0 when removed");
  CHECK (auth_remove ("reg.example:5000", &err) == 1, "auth_remove: 1 when not there");
  r = auth_get ("reg.example:5000", &user, &pass, &err);
  CHECK (r == 1, "auth: gone after remove");
  r = auth_get ("other.io", &user, &pass, &err);
  CHECK (r == 0, "auth: remove kept the other host");
  free (user), free (pass);

  /* docker's file, read only, as a fallback; Docker Hub under its historical key */
  mkdir (dockerdir, 0700);
  dockercfg = xasprintf ("%s/config.json", dockerdir);
  put_file (dockercfg, "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"ZG9jazpodWI=\"},"
                       "\"quay.io\":{\"auth\":\"cXU6YXk=\"}}}");
  r = auth_get ("docker.io", &user, &pass, &err);
  CHECK (r == 0 && strcmp (user, "dock") == 0 && strcmp (pass, "hub") == 0, "auth: docker's config.json for docker.io");
  free (user), free (pass);
  r = auth_get ("quay.io", &user, &pass, &err);
  CHECK (r == 0 && strcmp (user, "qu") == 0, "auth: docker's config.json for quay.io");
  free (user), free (pass);
  no_err (auth_set ("quay.io", "mine", "x", &err), &err, "auth_set quay.io");
  r = auth_get ("quay.io", &user, &pass, &err);
  CHECK (r == 0 && strcmp (user, "mine") == 0, "auth: ours wins over docker's");
  free (user), free (pass);
  text = slurp (dockercfg);
  CHECK (strstr (text, "mine") == NULL, "auth: docker's file is not written");
  free (text), text = NULL;

  /* REGISTRY_AUTH_FILE */
  free (path);
  path = xasprintf ("%s/custom/auth.json", tmpdir);
  setenv ("REGISTRY_AUTH_FILE", path, 1);
  no_err (auth_set ("x.io", "u", "p", &err), &err, "auth_set with REGISTRY_AUTH_FILE");
  CHECK (access (path, F_OK) == 0, "auth: $REGISTRY_AUTH_FILE is the file");
  put_file (path, "{not json");
  r = auth_get ("x.io", &user, &pass, &err);
  CHECK (r < 0 && err_has (&err, path), "auth: a broken file is an error that names it");
  unsetenv ("REGISTRY_AUTH_FILE");
  unlink (dockercfg);
}

static void
test_progress (void)
{
  char b[32];
  cleanup_free char *path = xasprintf ("%s/progress", tmpdir), *text = NULL;
  const char *names[] = { "sha256:1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b", "config" };
  int64_t totals[] = { 25 * 1024 * 1024, -1 };
  struct progress *p;
  FILE *f;

  progress_format_size (0, b, sizeof b);
  CHECK_STR (b, "0B", "size: 0B");
  progress_format_size (1023, b, sizeof b);
  CHECK_STR (b, "1023B", "size: bytes");
  progress_format_size (12897485, b, sizeof b);
  CHECK_STR (b, "12.3MiB", "size: MiB");
  progress_format_size (3LL << 30, b, sizeof b);
  CHECK_STR (b, "3.0GiB", "size: GiB");

  f = fopen (path, "w+");
  p = progress_new (2, names, totals, false);
  progress_set_output (p, f);
  progress_blob_cb (0, 1000, totals[0], p);
  progress_blob_cb (0, 2000, totals[0], p);
  progress_blob_cb (1, 10, -1, p);
  progress_blob_cb (1, 20, 20, p);
  progress_blob_cb (0, totals[0], totals[0], p);
  progress_finish (p);
  fclose (f);
  text = slurp (path);
  CHECK_STR (text,
             "Copying blob 1a2b3c4d5e6f (25.0 MiB)\nCopying blob config\nCopying blob config done\n"
             "Copying blob 1a2b3c4d5e6f done\n",
             "progress: plain lines at the start and end of each blob");
  free (text), text = NULL;

  f = fopen (path, "w+");
  p = progress_new (2, names, totals, true);
  progress_set_output (p, f);
  progress_update (p, 0, 12897485);
  progress_done (p, 1);
  progress_finish (p);
  fclose (f);
  text = slurp (path);
  CHECK (strstr (text, "Copying blob 1a2b3c4d5e6f  [") && strstr (text, "] 12.3MiB / 25.0MiB")
             && strstr (text, "\033[3A") && strstr (text, "Total"),
         "progress: tty lines redrawn in place");
}

/* ---------------------------------------------------------------- a scripted HTTP server */

struct canned {
  char *raw; /* the whole response, sent as is, then the connection closed */
};

struct fake {
  int fd, port;
  pthread_t th;
  pthread_mutex_t lock;
  struct canned script[8];
  size_t n, next;
  char *log; /* every request's head, in order */
};

static void *
fake_serve (void *ud)
{
  struct fake *f = ud;
  for (;;)
    {
      char req[16384];
      size_t got = 0;
      char *out;
      /* cppcheck-suppress nullPointer ; gnu.cfg wants accept4's addrlen, which may be NULL (accept4(2)) */
      int c = accept4 (f->fd, NULL, NULL, SOCK_CLOEXEC);
      struct timeval tv = { .tv_sec = 5 };
      if (c < 0)
        return NULL;
      setsockopt (c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      while (got < sizeof req - 1)
        {
          ssize_t r = read (c, req + got, sizeof req - 1 - got);
          if (r <= 0)
            break;
          got += r;
          req[got] = '\0';
          if (strstr (req, "\r\n\r\n") || req[0] == 0x16)
            break;
        }
      req[got] = '\0';
      if (got > 0 && req[0] == 0x16)
        {
          /* a TLS ClientHello: answer like a plain HTTP server does, without using the script */
          static const char bad[] = "HTTP/1.0 400 Bad Request\r\n\r\n";
          if (write_all (c, bad, sizeof bad - 1) < 0)
            {
              /* the client hung up */
            }
          close (c);
          continue;
        }
      pthread_mutex_lock (&f->lock);
      {
        char *nl = f->log ? xasprintf ("%s%s", f->log, req) : xstrdup (req);
        free (f->log);
        f->log = nl;
      }
      /* a copy: once the client has its answer, the test may reset the script under us */
      out = xstrdup (f->next < f->n ? f->script[f->next++].raw
                                    : "HTTP/1.1 500 Script Ended\r\nContent-Length: 0\r\n\r\n");
      pthread_mutex_unlock (&f->lock);
      if (write_all (c, out, strlen (out)) < 0)
        {
          /* the client hung up: fine */
        }
      shutdown (c, SHUT_WR);
      while (read (c, req, sizeof req) > 0)
        ;
      close (c);
      free (out);
    }
}

static void
fake_start (struct fake *f)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t l = sizeof a;
  memset (f, 0, sizeof *f);
  f->fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (f->fd < 0 || bind (f->fd, (struct sockaddr *) &a, sizeof a) < 0 || listen (f->fd, 16) < 0
      || getsockname (f->fd, (struct sockaddr *) &a, &l) < 0)
    abort ();
  f->port = ntohs (a.sin_port);
  pthread_mutex_init (&f->lock, NULL);
  pthread_create (&f->th, NULL, fake_serve, f);
}

/* Queue a response: status line, extra headers ("" or lines ending in \r\n), body. */
static void
fake_add (struct fake *f, const char *status, const char *headers, const char *body)
{
  pthread_mutex_lock (&f->lock);
  if (f->n < sizeof f->script / sizeof f->script[0])
    f->script[f->n++].raw = xasprintf ("HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s", status,
                                       strlen (body), headers, body);
  pthread_mutex_unlock (&f->lock);
}

static void
fake_add_raw (struct fake *f, const char *raw)
{
  pthread_mutex_lock (&f->lock);
  f->script[f->n++].raw = xstrdup (raw);
  pthread_mutex_unlock (&f->lock);
}

/* Forget the script and the log (between cases). */
static void
fake_reset (struct fake *f)
{
  pthread_mutex_lock (&f->lock);
  for (size_t i = 0; i < f->n; i++)
    free (f->script[i].raw);
  f->n = f->next = 0;
  free (f->log);
  f->log = NULL;
  pthread_mutex_unlock (&f->lock);
}

static char *
fake_log (struct fake *f)
{
  char *s;
  pthread_mutex_lock (&f->lock);
  s = xstrdup (f->log ? f->log : "");
  pthread_mutex_unlock (&f->lock);
  return s;
}

static size_t
count (const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr (p, needle)); p++)
    n++;
  return n;
}

static void
fake_stop (struct fake *f)
{
  shutdown (f->fd, SHUT_RDWR);
  close (f->fd);
  pthread_join (f->th, NULL);
  fake_reset (f);
}

static struct registry *
fake_registry (struct fake *f, const char *user, const char *pass, int retries)
{
  struct reg_opts o = REG_OPTS_INIT;
  cleanup_free char *host = xasprintf ("127.0.0.1:%d", f->port);
  o.plain_http = true;
  o.retries = retries;
  o.user = user;
  o.pass = pass;
  return registry_new (host, "test/repo", &o);
}

#define OCI_MANIFEST_BODY                                                                                              \
  "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{},\"layers\":[]}"

static void
test_fake_manifests (struct fake *f)
{
  struct registry *r;
  cella_error_t err = NULL;
  char *body = NULL, *mt = NULL, d[72];
  size_t len = 0;
  cleanup_free char *want = digest_of (OCI_MANIFEST_BODY, strlen (OCI_MANIFEST_BODY)), *log = NULL, *hdr = NULL;
  int rc;

  /* retries: 503 with Retry-After, then 500, then the manifest */
  fake_reset (f);
  fake_add (f, "503 Busy", "Retry-After: 0\r\n", "");
  fake_add (f, "500 Oops", "", "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"x\"}]}");
  fake_add (f, "200 OK", "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n", OCI_MANIFEST_BODY);
  r = fake_registry (f, NULL, NULL, 4);
  rc = registry_get_manifest (r, "latest", &body, &len, &mt, d, &err);
  no_err (rc, &err, "fake: a manifest after a 503 and a 500");
  CHECK (rc == 0 && strcmp (body, OCI_MANIFEST_BODY) == 0 && len == strlen (OCI_MANIFEST_BODY), "fake: the body");
  CHECK_STR (d, want, "fake: its digest");
  CHECK_STR (mt, MT_OCI_MANIFEST, "fake: its media type");
  log = fake_log (f);
  CHECK (count (log, "GET /v2/test/repo/manifests/latest HTTP/1.1") == 3, "fake: three attempts");
  CHECK (strstr (log, "User-Agent: cella/") != NULL, "fake: User-Agent cella/VERSION");
  CHECK (strstr (log, "Accept: " MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST) != NULL,
         "fake: Accept lists the four manifest types");
  free (body), free (mt), free (log);
  body = mt = log = NULL;
  registry_free (r);

  /* retries exhausted */
  fake_reset (f);
  fake_add (f, "503 Busy", "", "");
  fake_add (f, "503 Busy", "", "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"come back later\"}]}");
  r = fake_registry (f, NULL, NULL, 1);
  CHECK (registry_get_manifest (r, "latest", &body, &len, &mt, d, &err) < 0
             && err_has (&err, "test/repo:latest: registry 127.0.0.1:"),
         "fake: gives up after the retries, naming host, repo and tag");
  registry_free (r);

  /* media type from the body when Content-Type is generic */
  fake_reset (f);
  fake_add (f, "200 OK", "Content-Type: application/json; charset=utf-8\r\n", OCI_MANIFEST_BODY);
  r = fake_registry (f, NULL, NULL, 0);
  rc = registry_get_manifest (r, want, &body, &len, &mt, d, &err);
  no_err (rc, &err, "fake: by digest, generic Content-Type");
  CHECK_STR (mt, MT_OCI_MANIFEST, "fake: media type read from the body");
  free (body), free (mt);
  body = mt = NULL;

  fake_reset (f);
  fake_add (f, "200 OK", "Content-Type: application/vnd.foo.bar+json\r\n", "{\"schemaVersion\":2}");
  CHECK (registry_get_manifest (r, "v1", &body, &len, &mt, d, &err) < 0
             && err_has (&err, "unsupported manifest media type application/vnd.foo.bar+json"),
         "fake: unknown media type refused");
  fake_reset (f);
  fake_add (f, "200 OK", "Content-Type: application/vnd.docker.distribution.manifest.v1+prettyjws\r\n",
            "{\"schemaVersion\":1}");
  CHECK (registry_get_manifest (r, "v1", &body, &len, &mt, d, &err) < 0
             && err_has (&err, "unsupported manifest media type "
                               "application/vnd.docker.distribution.manifest.v1+prettyjws"),
         "fake: schema 1 refused");
  fake_reset (f);
  fake_add (f, "200 OK", "", "{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}");
  CHECK (registry_get_manifest (r, "v1", &body, &len, &mt, d, &err) < 0 && err_has (&err, "ambiguous manifest"),
         "fake: a document both index and manifest refused");
  fake_reset (f);
  fake_add (f, "200 OK", "Content-Type: " MT_OCI_MANIFEST "\r\n", OCI_MANIFEST_BODY " ");
  CHECK (registry_get_manifest (r, want, &body, &len, &mt, d, &err) < 0
             && err_has (&err, "digest mismatch (got sha256:"),
         "fake: by digest, other bytes → digest mismatch");
  CHECK (registry_get_manifest (r, "sha256:abc", &body, &len, &mt, d, &err) < 0 && err_has (&err, "invalid reference"),
         "fake: a malformed digest refused before any request");
  fake_reset (f);
  fake_add (f, "404 Not Found", "Content-Type: application/json\r\n",
            "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}");
  hdr = xasprintf ("manifest unknown: test/repo:nope not found on 127.0.0.1:%d", f->port);
  CHECK (registry_get_manifest (r, "nope", &body, &len, &mt, d, &err) < 0 && err_has (&err, hdr), "fake: 404 text");
  registry_free (r);
}

static void
test_fake_auth (struct fake *f)
{
  struct registry *r;
  cella_error_t err = NULL;
  char *body = NULL, *mt = NULL, d[72];
  size_t len = 0;
  cleanup_free char *chal = NULL, *log = NULL;
  int rc;

  /* Bearer, the token in access_token, cached for the next request */
  chal = xasprintf ("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"fake svc\","
                    "scope=\"repository:test/repo:pull\"\r\n",
                    f->port);
  fake_reset (f);
  fake_add (f, "401 Unauthorized", chal, "");
  fake_add (f, "200 OK", "Content-Type: application/json\r\n", "{\"access_token\":\"tok-123\",\"expires_in\":60}");
  fake_add (f, "200 OK", "Content-Type: " MT_OCI_MANIFEST "\r\n", OCI_MANIFEST_BODY);
  fake_add (f, "200 OK", "Content-Type: " MT_OCI_MANIFEST "\r\n", OCI_MANIFEST_BODY);
  r = fake_registry (f, NULL, NULL, 0);
  rc = registry_get_manifest (r, "latest", &body, &len, &mt, d, &err);
  no_err (rc, &err, "fake: Bearer challenge answered");
  free (body), free (mt);
  rc = registry_get_manifest (r, "latest", &body, &len, &mt, d, &err);
  no_err (rc, &err, "fake: a second request with the cached token");
  free (body), free (mt);
  log = fake_log (f);
  CHECK (strstr (log, "GET /token?service=fake%20svc&scope=repository%3Atest%2Frepo%3Apull HTTP") != NULL,
         "fake: token request with service and scope");
  CHECK (count (log, "Authorization: Bearer tok-123\r\n") == 2 && count (log, "/token?") == 1,
         "fake: token from access_token, fetched once");
  free (log), log = NULL;
  registry_free (r);

  /* an expired token: 401 again → a fresh token once; with credentials, Basic to the token server */
  fake_reset (f);
  fake_add (f, "401 Unauthorized", chal, "");
  fake_add (f, "200 OK", "", "{\"token\":\"t1\"}");
  fake_add (f, "200 OK", "Content-Type: " MT_OCI_MANIFEST "\r\n", OCI_MANIFEST_BODY);
  fake_add (f, "401 Unauthorized", chal, "");
  fake_add (f, "200 OK", "", "{\"token\":\"t2\"}");
  fake_add (f, "200 OK", "Content-Type: " MT_OCI_MANIFEST "\r\n", OCI_MANIFEST_BODY);
  r = fake_registry (f, "alice", "pw", 0);
  rc = registry_get_manifest (r, "latest", &body, &len, &mt, d, &err);
  free (body), free (mt);
  cella_error_free (&err);
  rc |= registry_get_manifest (r, "latest", &body, &len, &mt, d, &err);
  no_err (rc, &err, "fake: an expired token is refreshed");
  free (body), free (mt);
  log = fake_log (f);
  CHECK (strstr (log, "Authorization: Bearer t2") && count (log, "Authorization: Basic YWxpY2U6cHc=") == 2
             && strstr (log, "&account=alice"),
         "fake: token requests carry the basic credentials and the account");
  free (log), log = NULL;
  registry_free (r);

  /* the token server refuses the credentials */
  fake_reset (f);
  fake_add (f, "401 Unauthorized", chal, "");
  fake_add (f, "401 Unauthorized", "", "{\"details\":\"incorrect username or password\"}");
  r = fake_registry (f, "alice", "bad", 0);
  CHECK (registry_get_manifest (r, "latest", &body, &len, &mt, d, &err) < 0
             && err_has (&err, "unauthorized: wrong user name or password"),
         "fake: token server 401 with credentials → wrong user name or password");
  registry_free (r);

  /* Basic without credentials */
  fake_reset (f);
  fake_add (f, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"fake\"\r\n", "");
  r = fake_registry (f, NULL, NULL, 0);
  free (chal);
  chal = xasprintf ("requires a login: run `cella login 127.0.0.1:%d`", f->port);
  CHECK (registry_get_manifest (r, "latest", &body, &len, &mt, d, &err) < 0 && err_has (&err, chal),
         "fake: Basic challenge and no credentials → login hint");
  registry_free (r);
  fake_reset (f);
  fake_add (f, "401 Unauthorized", "WWW-Authenticate: Negotiate\r\n", "");
  r = fake_registry (f, NULL, NULL, 0);
  CHECK (registry_get_manifest (r, "latest", &body, &len, &mt, d, &err) < 0
             && err_has (&err, "without a challenge we know"),
         "fake: an unknown challenge is an error");
  registry_free (r);
}

static void
test_fake_blobs (struct fake *f)
{
  struct fake storage;
  struct registry *r;
  cella_error_t err = NULL;
  static const char content[] = "blob content for the redirect test";
  cleanup_free char *d = digest_of (content, strlen (content)), *loc = NULL, *log = NULL, *slog = NULL;
  cleanup_free char *path = xasprintf ("%s/blob", tmpdir), *got = NULL, *raw = NULL;
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  struct blob_req req = { .digest = d, .size = (int64_t) strlen (content), .fd = fd };
  int rc;

  /* Basic auth, then a redirect to another host: the Authorization header stays behind */
  fake_start (&storage);
  loc = xasprintf ("Location: http://localhost:%d/storage/blob?sig=1\r\n", storage.port);
  fake_reset (f);
  fake_add (f, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"fake\"\r\n", "");
  fake_add (f, "307 Temporary Redirect", loc, "");
  fake_add (&storage, "200 OK", "Content-Type: application/octet-stream\r\n", content);
  write_all (fd, "old junk that must go away, longer than the blob itself", 56);
  r = fake_registry (f, "alice", "pw", 0);
  rc = registry_get_blobs (r, &req, 1, 1, NULL, NULL, &err);
  no_err (rc, &err, "fake: blob through a redirect");
  got = slurp (path);
  CHECK_STR (got, content, "fake: blob file holds exactly the blob (truncated first)");
  CHECK (req.done == (int64_t) strlen (content), "fake: done = size");
  log = fake_log (f);
  slog = fake_log (&storage);
  CHECK (strstr (log, "Authorization: Basic YWxpY2U6cHc=") != NULL, "fake: the registry got the credentials");
  CHECK (strstr (slog, "GET /storage/blob?sig=1") && strcasestr (slog, "Authorization") == NULL,
         "fake: the storage host did not");
  registry_free (r);
  fake_stop (&storage);

  /* a connection cut mid-body is retried from 0 */
  fake_reset (f);
  raw = xasprintf ("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\nblob con", strlen (content));
  fake_add_raw (f, raw);
  fake_add (f, "200 OK", "", content);
  r = fake_registry (f, NULL, NULL, 2);
  rc = registry_get_blobs (r, &req, 1, 1, NULL, NULL, &err);
  no_err (rc, &err, "fake: blob retried after a cut");
  free (got);
  got = slurp (path);
  CHECK_STR (got, content, "fake: retried blob is whole");

  /* more bytes than the expected size: stopped, nothing claimed */
  fake_reset (f);
  fake_add (f, "200 OK", "", "blob content for the redirect test, and then some more");
  rc = registry_get_blobs (r, &req, 1, 1, NULL, NULL, &err);
  CHECK (rc < 0 && req.done == 0 && err_has (&err, "size mismatch"), "fake: too many bytes → size mismatch");
  CHECK (lseek (fd, 0, SEEK_END) == 0, "fake: the refused blob's file is emptied");
  fake_reset (f);
  fake_add (f, "200 OK", "", "blob content for the redirect tesT");
  rc = registry_get_blobs (r, &req, 1, 1, NULL, NULL, &err);
  CHECK (rc < 0 && req.done == 0 && err_has (&err, "digest mismatch (got sha256:"),
         "fake: other bytes → digest mismatch");
  registry_free (r);
  close (fd);
}

static void
test_fake_transport (struct fake *f)
{
  struct registry *r;
  struct reg_opts o = REG_OPTS_INIT;
  cella_error_t err = NULL;
  char *body = NULL, *mt = NULL, d[72];
  size_t len;
  cleanup_free char *host = xasprintf ("127.0.0.1:%d", f->port), *closed = xasprintf ("127.0.0.1:%d", free_port ());
  cleanup_free char *want = NULL;
  int rc;

  /* https against a plain http server, verifying: a TLS error with the hint */
  fake_reset (f);
  r = registry_new (host, "test/repo", &o);
  CHECK (registry_get_manifest (r, "latest", &body, &len, &mt, d, &err) < 0 && err_has (&err, "--tls-verify=false"),
         "fake: TLS failure suggests --tls-verify=false");
  registry_free (r);

  /* tls_verify off: https first, then http */
  fake_reset (f);
  fake_add (f, "200 OK", "Content-Type: " MT_OCI_MANIFEST "\r\n", OCI_MANIFEST_BODY);
  o.tls_verify = false;
  r = registry_new (host, "test/repo", &o);
  rc = registry_get_manifest (r, "latest", &body, &len, &mt, d, &err);
  no_err (rc, &err, "fake: tls_verify=false falls back to http");
  free (body), free (mt);
  registry_free (r);

  o.plain_http = true;
  r = registry_new (closed, "test/repo", &o);
  want = xasprintf ("cannot reach %s: ", closed);
  CHECK (registry_get_manifest (r, "latest", &body, &len, &mt, d, &err) < 0 && err_has (&err, want),
         "fake: connection refused → cannot reach HOST");
  CHECK (registry_check_login (r, &err) < 0 && err_has (&err, want), "fake: login check, connection refused");
  registry_free (r);

  CHECK (registry_host_is_local ("localhost") && registry_host_is_local ("localhost:5000")
             && registry_host_is_local ("127.0.0.1:5000") && registry_host_is_local ("[::1]:5000")
             && registry_host_is_local ("::1") && !registry_host_is_local ("127.0.0.10:5000")
             && !registry_host_is_local ("docker.io") && !registry_host_is_local ("localhost.example.com"),
         "registry_host_is_local");
}

/* ---------------------------------------------------------------- push */

static void
test_push_pure (void)
{
  cella_error_t err = NULL;
  char *u, *out = NULL, *mt = NULL;
  size_t olen = 0;
  static const char oci[]
      = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
        "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" SHA_ABC
        "\",\"size\":3},\"layers\":[{\"mediaType\":"
        "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" SHA_EMPTY "\",\"size\":0}],\"annotations\":{"
        "\"a\":\"b\"}}";
  static const char zstd[]
      = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
        "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" SHA_ABC
        "\",\"size\":3},\"layers\":[{\"mediaType\":"
        "\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" SHA_EMPTY "\",\"size\":0}]}";

  u = reg_location_url ("http", "h:5000", "/v2/r/blobs/uploads/", "/v2/r/blobs/uploads/abc?_state=x");
  CHECK_STR (u, "http://h:5000/v2/r/blobs/uploads/abc?_state=x", "location: absolute path on the registry");
  free (u);
  u = reg_location_url ("https", "h", "/v2/r/blobs/uploads/", "https://storage.example/up/1");
  CHECK_STR (u, "https://storage.example/up/1", "location: absolute URL kept");
  free (u);
  u = reg_location_url ("https", "h", "/v2/r/blobs/uploads/", "//other/x");
  CHECK_STR (u, "https://other/x", "location: scheme-relative");
  free (u);
  u = reg_location_url ("http", "h", "/v2/r/blobs/uploads/", "abc");
  CHECK_STR (u, "http://h/v2/r/blobs/uploads/abc", "location: relative to the request's directory");
  free (u);
  CHECK (reg_location_url ("http", "h", "/", NULL) == NULL, "location: none");
  u = reg_url_add_query ("http://h/u/1", "digest=d");
  CHECK_STR (u, "http://h/u/1?digest=d", "query: first parameter");
  free (u);
  u = reg_url_add_query ("http://h/u/1?_state=x", "digest=d");
  CHECK_STR (u, "http://h/u/1?_state=x&digest=d", "query: added to one");
  free (u);
  u = reg_url_add_query ("http://h/u/1?", "digest=d");
  CHECK_STR (u, "http://h/u/1?digest=d", "query: after a bare ?");
  free (u);

  CHECK_STR (push_layer_media_type ("application/vnd.oci.image.layer.v1.tar+gzip", true),
             "application/vnd.docker.image.rootfs.diff.tar.gzip", "layer type: OCI gzip → Docker");
  CHECK_STR (push_layer_media_type ("application/vnd.docker.image.rootfs.diff.tar.gzip", false),
             "application/vnd.oci.image.layer.v1.tar+gzip", "layer type: Docker gzip → OCI");
  CHECK (push_layer_media_type ("application/vnd.oci.image.layer.v1.tar+zstd", true) == NULL,
         "layer type: zstd has no Docker type");
  CHECK (push_layer_media_type ("application/vnd.oci.image.layer.v1.tar", true) == NULL,
         "layer type: uncompressed tar has no Docker schema2 type");
  CHECK (push_layer_media_type ("text/plain", false) == NULL, "layer type: unknown");

  no_err (push_convert_manifest (oci, strlen (oci), "oci", &out, &olen, &mt, &err), &err, "convert: OCI to OCI");
  CHECK (olen == strlen (oci) && memcmp (out, oci, olen) == 0, "convert: same format keeps the bytes (and the digest)");
  CHECK_STR (mt, "application/vnd.oci.image.manifest.v1+json", "convert: OCI type");
  free (out);
  free (mt);
  no_err (push_convert_manifest (oci, strlen (oci), "docker", &out, &olen, &mt, &err), &err, "convert: OCI to Docker");
  CHECK_STR (mt, "application/vnd.docker.distribution.manifest.v2+json", "convert: Docker type");
  CHECK (strstr (out, "\"application/vnd.docker.container.image.v1+json\"")
             && strstr (out, "\"application/vnd.docker.image.rootfs.diff.tar.gzip\"") && !strstr (out, "annotations")
             && strstr (out, SHA_ABC) && strstr (out, SHA_EMPTY),
         "convert: config and layer types, no annotations, same blobs");
  free (out);
  free (mt);
  out = mt = NULL;
  CHECK (push_convert_manifest (zstd, strlen (zstd), "docker", &out, &olen, &mt, &err) < 0 && out == NULL
             && err_has (&err, "layer 1 (" SHA_EMPTY ") is application/vnd.oci.image.layer.v1.tar+zstd"),
         "convert: a zstd layer cannot be Docker schema2");
}

static void
test_fake_push (struct fake *f)
{
  struct registry *r;
  cella_error_t err = NULL;
  static const char content[] = "0123456789";
  cleanup_free char *d = digest_of (content, strlen (content)), *log = NULL, *abs = NULL, *dcd = NULL;
  cleanup_free char *realm = NULL, *started = NULL;
  struct blob_upload up = { .digest = d, .mem = content, .fd = -1, .size = 10, .chunk = 4 };
  char md[72];
  int rc;

  /* chunked: POST, PATCH 0-3 (relative Location), PATCH 4-7 (absolute), PUT the last 2 ?digest= */
  abs = xasprintf ("Location: http://127.0.0.1:%d/v2/test/repo/blobs/uploads/u3?_state=c\r\n", f->port);
  dcd = xasprintf ("Docker-Content-Digest: %s\r\n", d);
  fake_reset (f);
  fake_add (f, "202 Accepted", "Location: /v2/test/repo/blobs/uploads/u1\r\n", "");
  fake_add (f, "202 Accepted", "Location: u2?_state=b\r\nRange: 0-3\r\n", "");
  fake_add (f, "202 Accepted", abs, "");
  fake_add (f, "201 Created", dcd, "");
  r = fake_registry (f, NULL, NULL, 0);
  registry_set_push (r, NULL);
  rc = registry_put_blob (r, &up, NULL, 0, NULL, NULL, &err);
  no_err (rc, &err, "fake push: a chunked upload");
  log = fake_log (f);
  CHECK (strstr (log, "POST /v2/test/repo/blobs/uploads/ HTTP") != NULL, "fake push: POST starts the upload");
  CHECK (strstr (log, "PATCH /v2/test/repo/blobs/uploads/u1 HTTP") && strstr (log, "Content-Range: 0-3"),
         "fake push: first chunk to the Location");
  CHECK (strstr (log, "PATCH /v2/test/repo/blobs/uploads/u2?_state=b HTTP") && strstr (log, "Content-Range: 4-7"),
         "fake push: second chunk to the relative Location");
  CHECK (strstr (log, "PUT /v2/test/repo/blobs/uploads/u3?_state=c&digest=sha256%3A") != NULL,
         "fake push: the closing PUT to the absolute Location, with the digest");
  CHECK (count (log, "Content-Length: 4") == 2 && count (log, "Content-Length: 2") == 1, "fake push: 4 + 4 + 2 bytes");

  /* the registry stores something else: refused */
  fake_reset (f);
  fake_add (f, "202 Accepted", "Location: /v2/test/repo/blobs/uploads/u1\r\n", "");
  fake_add (f, "201 Created", "Docker-Content-Digest: " SHA_ABC "\r\n", "");
  up.chunk = 0;
  rc = registry_put_blob (r, &up, NULL, 0, NULL, NULL, &err);
  CHECK (rc < 0 && err_has (&err, "stored it as " SHA_ABC), "fake push: another digest back is an error");

  /* the registry fails the PUT (a retry of the request too): the blob starts over with a new upload */
  registry_free (r);
  r = fake_registry (f, NULL, NULL, 1);
  registry_set_push (r, NULL);
  fake_reset (f);
  fake_add (f, "202 Accepted", "Location: /v2/test/repo/blobs/uploads/u1\r\n", "");
  fake_add (f, "500 Internal Server Error", "", "");
  fake_add (f, "500 Internal Server Error", "", "");
  fake_add (f, "202 Accepted", "Location: /v2/test/repo/blobs/uploads/u2\r\n", "");
  fake_add (f, "201 Created", dcd, "");
  rc = registry_put_blob (r, &up, NULL, 0, NULL, NULL, &err);
  no_err (rc, &err, "fake push: a blob whose upload the registry lost is sent again");
  free (log);
  log = fake_log (f);
  CHECK (count (log, "POST /v2/test/repo/blobs/uploads/ HTTP") == 2
             && strstr (log, "PUT /v2/test/repo/blobs/uploads/u2?"),
         "fake push: a second upload, to its own Location");
  /* a refusal (4xx) is not retried */
  fake_reset (f);
  fake_add (f, "202 Accepted", "Location: /v2/test/repo/blobs/uploads/u1\r\n", "");
  fake_add (f, "400 Bad Request", "Content-Type: application/json\r\n",
            "{\"errors\":[{\"code\":\"DIGEST_INVALID\",\"message\":\"provided digest did not match\"}]}");
  rc = registry_put_blob (r, &up, NULL, 0, NULL, NULL, &err);
  CHECK (rc < 0 && err_has (&err, "DIGEST_INVALID: provided digest did not match"), "fake push: a 400 is an error");
  free (log);
  log = fake_log (f);
  CHECK (count (log, "POST /v2/test/repo/blobs/uploads/ HTTP") == 1, "fake push: and not tried again");

  /* HEAD: 200 has it, 404 not; a 403 names the registry */
  fake_reset (f);
  fake_add (f, "200 OK", "", "");
  fake_add (f, "404 Not Found", "", "");
  fake_add (f, "403 Forbidden", "Content-Type: application/json\r\n",
            "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"no\"}]}");
  CHECK (registry_blob_exists (r, d, NULL, &err) == 1, "fake push: HEAD 200 → present");
  CHECK (registry_blob_exists (r, d, NULL, &err) == 0, "fake push: HEAD 404 → absent");
  CHECK (registry_blob_exists (r, d, NULL, &err) < 0 && err_has (&err, "registry 127.0.0.1:"),
         "fake push: HEAD 403 → an error naming the registry");
  registry_free (r);

  /* a Bearer challenge on push asks for pull,push (and pull on the mount source) */
  realm = xasprintf ("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"reg\"\r\n", f->port);
  fake_reset (f);
  fake_add (f, "401 Unauthorized", realm, "");
  fake_add (f, "200 OK", "Content-Type: application/json\r\n", "{\"token\":\"tok\"}");
  fake_add (f, "201 Created", "", "");
  r = fake_registry (f, NULL, NULL, 0);
  registry_set_push (r, "other/src");
  rc = registry_blob_mount (r, d, "other/src", &started, &err);
  CHECK (rc == 1 && started == NULL, "fake push: mount → 201 mounted");
  cella_error_free (&err);
  free (log);
  log = fake_log (f);
  CHECK (strstr (log, "scope=repository%3Atest%2Frepo%3Apull%2Cpush&scope=repository%3Aother%2Fsrc%3Apull") != NULL,
         "fake push: token scopes pull,push and the source's pull");
  CHECK (strstr (log, "POST /v2/test/repo/blobs/uploads/?mount=sha256%3A") && strstr (log, "&from=other%2Fsrc"),
         "fake push: the mount request");
  CHECK (strstr (log, "Authorization: Bearer tok") != NULL, "fake push: with the token");

  /* the manifest: its Content-Type, and the digest of its bytes */
  fake_reset (f);
  fake_add (f, "201 Created", "", "");
  rc = registry_put_manifest (r, "v1", OCI_MANIFEST_BODY, strlen (OCI_MANIFEST_BODY),
                              "application/vnd.oci.image.manifest.v1+json", md, &err);
  no_err (rc, &err, "fake push: manifest");
  free (log);
  log = fake_log (f);
  CHECK (strstr (log, "PUT /v2/test/repo/manifests/v1 HTTP")
             && strstr (log, "Content-Type: application/vnd.oci.image.manifest.v1+json"),
         "fake push: manifest PUT with its media type");
  {
    cleanup_free char *want = digest_of (OCI_MANIFEST_BODY, strlen (OCI_MANIFEST_BODY));
    CHECK_STR (md, want, "fake push: the manifest digest is the sha256 of the bytes sent");
  }
  registry_free (r);
}

/* ---------------------------------------------------------------- real registries */

struct live {
  pid_t pid;
  int port;
  char *dir, *base, *host;
};

/* auth: "" or an `auth:` YAML block, or a `  tls:` one (under http:). */
static bool
live_start (struct live *l, const char *name, const char *auth)
{
  cleanup_free char *cfg = NULL, *cfgpath = NULL, *log = NULL, *url = NULL;
  memset (l, 0, sizeof *l);
  l->dir = xasprintf ("%s/%s", tmpdir, name);
  mkdir (l->dir, 0755);
  cfgpath = xasprintf ("%s/config.yml", l->dir);
  log = xasprintf ("%s/registry.log", l->dir);
  for (int attempt = 0; attempt < 3; attempt++)
    {
      char *argv[] = { (char *) "docker-registry", (char *) "serve", cfgpath, NULL };
      l->port = free_port ();
      cfg = xasprintf ("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                       "storage:\n  filesystem:\n    rootdirectory: %s/storage\n  delete:\n    enabled: true\n"
                       "http:\n  addr: 127.0.0.1:%d\n%s",
                       l->dir, l->port, auth);
      put_file (cfgpath, cfg);
      free (cfg);
      cfg = NULL;
      l->pid = spawn (argv, log);
      free (l->base);
      l->base = xasprintf ("%s://127.0.0.1:%d", strstr (auth, "tls:") ? "https" : "http", l->port);
      free (url);
      url = xasprintf ("%s/v2/", l->base);
      for (int i = 0; i < 100; i++)
        {
          struct resp r;
          long st = http ("GET", url, NULL, NULL, NULL, 0, &r);
          resp_clear (&r);
          if (st == 200 || st == 401)
            {
              l->host = xasprintf ("127.0.0.1:%d", l->port);
              return true;
            }
          if (waitpid (l->pid, NULL, WNOHANG) == l->pid)
            break;
          usleep (100000);
        }
      stop_child (l->pid);
    }
  {
    cleanup_free char *text = slurp (log);
    printf ("# docker-registry did not start: %s\n", text);
  }
  return false;
}

static void
live_stop (struct live *l)
{
  if (l->pid > 0)
    stop_child (l->pid);
  free (l->dir);
  free (l->base);
  free (l->host);
  memset (l, 0, sizeof *l);
}

static struct registry *
live_registry (const struct live *l, const char *repo, const char *user, const char *pass)
{
  struct reg_opts o = REG_OPTS_INIT;
  o.plain_http = true;
  o.user = user;
  o.pass = pass;
  return registry_new (l->host, repo, &o);
}

/* The blob file a registry stores a digest in (distribution's filesystem layout). */
static char *
stored_blob (const struct live *l, const char *digest)
{
  return xasprintf ("%s/storage/docker/registry/v2/blobs/sha256/%.2s/%s/data", l->dir, digest + 7, digest + 7);
}

struct image {
  char *layer, *config, *manifest;
  size_t layer_len;
  char *layer_d, *config_d, *manifest_d;
};

static void
image_make (struct image *im)
{
  im->layer_len = 300000;
  im->layer = xmalloc (im->layer_len);
  for (size_t i = 0; i < im->layer_len; i++)
    im->layer[i] = (char) (i * 7 + i / 1000);
  im->layer_d = digest_of (im->layer, im->layer_len);
  im->config = xstrdup ("{\"architecture\":\"amd64\",\"os\":\"linux\","
                        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
  im->config_d = digest_of (im->config, strlen (im->config));
  im->manifest = xasprintf ("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":"
                            "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":"
                            "[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
                            "\"digest\":\"%s\",\"size\":%zu}]}",
                            im->config_d, strlen (im->config), im->layer_d, im->layer_len);
  im->manifest_d = digest_of (im->manifest, strlen (im->manifest));
}

static void
image_clear (struct image *im)
{
  free (im->layer), free (im->config), free (im->manifest);
  free (im->layer_d), free (im->config_d), free (im->manifest_d);
}

static bool
image_push (const struct live *l, const char *repo, const struct image *im, const char *authz)
{
  return push_blob (l->base, repo, im->layer, im->layer_len, authz)
         && push_blob (l->base, repo, im->config, strlen (im->config), authz)
         && push_manifest (l->base, repo, "v1", im->manifest, MT_OCI_MANIFEST, authz);
}

static bool
file_equals (int fd, const void *want, size_t len)
{
  cleanup_free char *buf = NULL;
  size_t n = 0;
  cella_error_t err = NULL;
  lseek (fd, 0, SEEK_SET);
  if (read_all_fd (fd, &buf, &n, &err) < 0)
    {
      cella_error_free (&err);
      return false;
    }
  return n == len && memcmp (buf, want, len) == 0;
}

struct prog_seen {
  size_t calls, finals;
};

static void
count_progress (size_t index, int64_t done, int64_t total, void *ud)
{
  struct prog_seen *s = ud;
  (void) index;
  s->calls++;
  s->finals += done == total;
}

static void
test_live_plain (const struct image *im)
{
  struct live l;
  struct registry *r;
  cella_error_t err = NULL;
  char *body = NULL, *mt = NULL, d[72];
  size_t len = 0;
  cleanup_free char *p1 = xasprintf ("%s/b1", tmpdir), *p2 = xasprintf ("%s/b2", tmpdir), *want = NULL;
  cleanup_free char *stored = NULL, *missing = NULL;
  int fd1, fd2, rc;
  struct prog_seen seen = { 0, 0 };

  if (!live_start (&l, "plain", ""))
    {
      CHECK (false, "live: docker-registry starts");
      return;
    }
  CHECK (image_push (&l, "test/img", im, NULL), "live: pushed a layer, a config and a manifest over the HTTP API");
  r = live_registry (&l, "test/img", NULL, NULL);

  rc = registry_get_manifest (r, "v1", &body, &len, &mt, d, &err);
  no_err (rc, &err, "live: manifest by tag");
  CHECK (rc == 0 && len == strlen (im->manifest) && strcmp (body, im->manifest) == 0,
         "live: manifest bytes round trip");
  CHECK_STR (d, im->manifest_d, "live: manifest digest");
  CHECK_STR (mt, MT_OCI_MANIFEST, "live: manifest media type");
  free (body), free (mt);
  rc = registry_get_manifest (r, im->manifest_d, &body, &len, &mt, d, &err);
  no_err (rc, &err, "live: manifest by digest");
  free (body), free (mt);
  want = xasprintf ("manifest unknown: test/img:nope not found on %s", l.host);
  CHECK (registry_get_manifest (r, "nope", &body, &len, &mt, d, &err) < 0 && err_has (&err, want),
         "live: unknown tag → manifest unknown");

  fd1 = open (p1, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  fd2 = open (p2, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  {
    struct blob_req reqs[] = {
      { .digest = im->layer_d, .size = (int64_t) im->layer_len, .fd = fd1 },
      { .digest = im->config_d, .size = -1, .fd = fd2 },
    };
    rc = registry_get_blobs (r, reqs, 2, 2, count_progress, &seen, &err);
    no_err (rc, &err, "live: two blobs in parallel");
    CHECK (reqs[0].done == (int64_t) im->layer_len && file_equals (fd1, im->layer, im->layer_len), "live: layer bytes");
    CHECK (reqs[1].done == (int64_t) strlen (im->config) && file_equals (fd2, im->config, strlen (im->config)),
           "live: config bytes (size unknown beforehand)");
    CHECK (seen.finals == 2, "live: a final progress call per blob (%zu calls, %zu final)", seen.calls, seen.finals);

    reqs[0].size = (int64_t) im->layer_len - 1;
    CHECK (registry_get_blobs (r, reqs, 1, 1, NULL, NULL, &err) < 0 && err_has (&err, "size mismatch")
               && reqs[0].done == 0,
           "live: a wrong expected size is refused");
    reqs[0].size = (int64_t) im->layer_len;

    /* the registry serves what its disk holds: flip a byte there */
    stored = stored_blob (&l, im->layer_d);
    {
      int sfd = open (stored, O_RDWR | O_CLOEXEC);
      char c;
      bool ok = sfd >= 0 && pread (sfd, &c, 1, 1000) == 1;
      c ^= 0x20;
      ok = ok && pwrite (sfd, &c, 1, 1000) == 1;
      if (sfd >= 0)
        close (sfd);
      CHECK (ok, "live: tampered with the stored layer (%s)", stored);
    }
    want = (free (want), xasprintf ("%s/test/img: blob %s: digest mismatch (got sha256:", l.host, im->layer_d));
    CHECK (registry_get_blobs (r, reqs, 2, 2, NULL, NULL, &err) < 0 && err_has (&err, want),
           "live: tampered blob → digest mismatch");
    CHECK (reqs[0].done == 0 && lseek (fd1, 0, SEEK_END) == 0, "live: nothing claimed for the tampered blob");

    missing = digest_of ("not pushed", 10);
    reqs[0].digest = missing;
    reqs[0].size = 10;
    want = (free (want), xasprintf ("blob %s not found in %s/test/img", missing, l.host));
    CHECK (registry_get_blobs (r, reqs, 1, 1, NULL, NULL, &err) < 0 && err_has (&err, want),
           "live: unknown blob → not found");
  }
  close (fd1);
  close (fd2);
  {
    /* more blobs than parallel slots */
    enum { N = 7 };
    char *data[N], *dg[N], *paths[N];
    struct blob_req reqs[N];
    int fds[N];
    bool pushed = true, same = true;
    for (int i = 0; i < N; i++)
      {
        data[i] = xasprintf ("small blob number %d %s", i, i % 2 ? "with a longer tail to vary the size" : "");
        dg[i] = digest_of (data[i], strlen (data[i]));
        pushed &= push_blob (l.base, "test/img", data[i], strlen (data[i]), NULL);
        paths[i] = xasprintf ("%s/many%d", tmpdir, i);
        fds[i] = open (paths[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        reqs[i] = (struct blob_req){ .digest = dg[i], .size = (int64_t) strlen (data[i]), .fd = fds[i] };
      }
    CHECK (pushed, "live: pushed %d small blobs", N);
    no_err (registry_get_blobs (r, reqs, N, 3, NULL, NULL, &err), &err, "live: 7 blobs, 3 at a time");
    for (int i = 0; i < N; i++)
      {
        same &= reqs[i].done == (int64_t) strlen (data[i]) && file_equals (fds[i], data[i], strlen (data[i]));
        close (fds[i]);
        free (data[i]), free (dg[i]), free (paths[i]);
      }
    CHECK (same, "live: each blob in its own file");
  }
  no_err (registry_check_login (r, &err), &err, "live: login check without auth");
  registry_free (r);

  r = live_registry (&l, "no/such", NULL, NULL);
  want = (free (want), xasprintf ("manifest unknown: no/such:latest not found on %s", l.host));
  CHECK (registry_get_manifest (r, "latest", &body, &len, &mt, d, &err) < 0 && err_has (&err, want),
         "live: unknown repository → manifest unknown");
  registry_free (r);
  live_stop (&l);
}

static void
test_live_htpasswd (const struct image *im)
{
  struct live l;
  struct registry *r;
  cella_error_t err = NULL;
  char *body = NULL, *mt = NULL, d[72];
  size_t len;
  cleanup_free char *htfile = xasprintf ("%s/htpasswd.users", tmpdir), *cmd = NULL, *auth = NULL, *want = NULL;
  cleanup_free char *authz = NULL, *b64 = base64_encode ("user:pass", 9);
  int rc;

  cmd = xasprintf ("htpasswd -Bbn user pass > '%s' 2>/dev/null", htfile);
  if (system (cmd) != 0)
    {
      CHECK (false, "live: htpasswd -Bbn");
      return;
    }
  auth = xasprintf ("auth:\n  htpasswd:\n    realm: cella-test\n    path: %s\n", htfile);
  if (!live_start (&l, "htpasswd", auth))
    {
      CHECK (false, "live: docker-registry with htpasswd starts");
      return;
    }
  authz = xasprintf ("Authorization: Basic %s", b64);
  CHECK (image_push (&l, "priv/img", im, authz), "live: pushed with basic auth");

  r = live_registry (&l, "priv/img", NULL, NULL);
  want = xasprintf ("registry %s requires a login: run `cella login %s`", l.host, l.host);
  CHECK (registry_get_manifest (r, "v1", &body, &len, &mt, d, &err) < 0 && err_has (&err, want),
         "live: anonymous → requires a login");
  CHECK (registry_check_login (r, &err) < 0 && err_has (&err, "requires a login"), "live: login check, anonymous");
  registry_free (r);

  r = live_registry (&l, "priv/img", "user", "wrong");
  CHECK (registry_get_manifest (r, "v1", &body, &len, &mt, d, &err) < 0
             && err_has (&err, "unauthorized: wrong user name or password"),
         "live: wrong password refused");
  CHECK (registry_check_login (r, &err) < 0 && err_has (&err, "unauthorized: wrong user name or password"),
         "live: login check, wrong password");
  registry_free (r);

  r = live_registry (&l, "priv/img", "user", "pass");
  no_err (registry_check_login (r, &err), &err, "live: login check, right password");
  rc = registry_get_manifest (r, "v1", &body, &len, &mt, d, &err);
  no_err (rc, &err, "live: manifest with the right password");
  CHECK (rc == 0 && strcmp (d, im->manifest_d) == 0, "live: the right manifest");
  free (body), free (mt);
  registry_free (r);

  /* credentials from auth.json (HOME and XDG_CONFIG_HOME point into tmpdir) */
  setenv ("XDG_CONFIG_HOME", tmpdir, 1);
  unsetenv ("REGISTRY_AUTH_FILE");
  no_err (auth_set (l.host, "user", "pass", &err), &err, "live: auth_set for the registry");
  r = live_registry (&l, "priv/img", NULL, NULL);
  {
    cleanup_free char *p = xasprintf ("%s/blob", tmpdir);
    int fd = open (p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct blob_req req = { .digest = im->layer_d, .size = (int64_t) im->layer_len, .fd = fd };
    rc = registry_get_blobs (r, &req, 1, 1, NULL, NULL, &err);
    no_err (rc, &err, "live: blob with the credentials from auth.json");
    CHECK (file_equals (fd, im->layer, im->layer_len), "live: blob bytes");
    close (fd);
  }
  registry_free (r);
  auth_remove (l.host, &err);
  live_stop (&l);
}

/* Real Bearer tokens: tests/integration/token_server.py signs them, the registry checks them. */
static void
test_live_token (const struct image *im)
{
  struct live l;
  struct registry *r;
  cella_error_t err = NULL;
  char *body = NULL, *mt = NULL, d[72];
  size_t len;
  cleanup_free char *key = xasprintf ("%s/token.key", tmpdir), *crt = xasprintf ("%s/token.crt", tmpdir);
  cleanup_free char *portf = xasprintf ("%s/token.port", tmpdir), *tlog = xasprintf ("%s/token.log", tmpdir);
  cleanup_free char *cmd = NULL, *auth = NULL, *port = NULL, *tokurl = NULL, *authz = NULL, *bas = NULL;
  cleanup_free char *b64 = base64_encode ("alice:s3cret", 12);
  const char *server = "tests/integration/token_server.py";
  pid_t tpid;
  struct resp resp;
  int rc;

  if (access (server, R_OK) != 0 || !find_in_path ("python3") || !find_in_path ("openssl"))
    {
      tap_skip ("python3, openssl or tests/integration/token_server.py missing (run from the repository root)",
                "live: bearer tokens");
      return;
    }
  cmd = xasprintf ("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cella-test -keyout '%s' -out '%s' "
                   ">/dev/null 2>&1",
                   key, crt);
  if (system (cmd) != 0)
    {
      CHECK (false, "live: openssl made a signing certificate");
      return;
    }
  {
    char *argv[] = { (char *) "python3",
                     (char *) server,
                     (char *) "--key",
                     key,
                     (char *) "--cert",
                     crt,
                     (char *) "--issuer",
                     (char *) "cella-test-issuer",
                     (char *) "--service",
                     (char *) "cella-test",
                     (char *) "--user",
                     (char *) "alice",
                     (char *) "--pass",
                     (char *) "s3cret",
                     (char *) "--field",
                     (char *) "access_token",
                     (char *) "--port-file",
                     portf,
                     NULL };
    tpid = spawn (argv, tlog);
  }
  for (int i = 0; i < 100 && access (portf, F_OK) != 0; i++)
    usleep (100000);
  port = slurp (portf);
  if (*port == '\0')
    {
      cleanup_free char *t = slurp (tlog);
      CHECK (false, "live: token server started: %s", t);
      stop_child (tpid);
      return;
    }
  port[strcspn (port, "\n")] = '\0';
  tokurl = xasprintf ("http://127.0.0.1:%s/token", port);
  auth = xasprintf ("auth:\n  token:\n    realm: %s\n    service: cella-test\n    issuer: cella-test-issuer\n"
                    "    rootcertbundle: %s\n",
                    tokurl, crt);
  if (!live_start (&l, "token", auth))
    {
      CHECK (false, "live: docker-registry with token auth starts");
      stop_child (tpid);
      return;
    }
  /* a push token for the setup, fetched by hand */
  bas = xasprintf ("Authorization: Basic %s", b64);
  free (cmd);
  cmd = xasprintf ("%s?service=cella-test&scope=repository:tok/img:pull,push", tokurl);
  if (http ("GET", cmd, bas, NULL, NULL, 0, &resp) == 200 && resp.body && strstr (resp.body, "\"access_token\": \""))
    {
      char *t = strstr (resp.body, "\"access_token\": \"") + 17;
      authz = xasprintf ("Authorization: Bearer %.*s", (int) strcspn (t, "\""), t);
    }
  resp_clear (&resp);
  CHECK (authz && image_push (&l, "tok/img", im, authz), "live: pushed with a bearer token");

  r = live_registry (&l, "tok/img", NULL, NULL);
  CHECK (registry_get_manifest (r, "v1", &body, &len, &mt, d, &err) < 0 && err_has (&err, "requires a login"),
         "live: token, anonymous → requires a login");
  registry_free (r);
  r = live_registry (&l, "tok/img", "alice", "nope");
  CHECK (registry_get_manifest (r, "v1", &body, &len, &mt, d, &err) < 0
             && err_has (&err, "unauthorized: wrong user name or password"),
         "live: token, wrong password refused");
  CHECK (registry_check_login (r, &err) < 0 && err_has (&err, "unauthorized: wrong user name or password"),
         "live: token, login check with a wrong password");
  registry_free (r);
  r = live_registry (&l, "tok/img", "alice", "s3cret");
  no_err (registry_check_login (r, &err), &err, "live: token, login check");
  registry_free (r);
  r = live_registry (&l, "tok/img", "alice", "s3cret");
  rc = registry_get_manifest (r, "v1", &body, &len, &mt, d, &err);
  no_err (rc, &err, "live: token, manifest");
  CHECK (rc == 0 && strcmp (d, im->manifest_d) == 0, "live: token, the right manifest");
  free (body), free (mt);
  {
    cleanup_free char *p = xasprintf ("%s/blob", tmpdir), *before = slurp (tlog), *after = NULL;
    int fd = open (p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct blob_req req = { .digest = im->layer_d, .size = (int64_t) im->layer_len, .fd = fd };
    rc = registry_get_blobs (r, &req, 1, 1, NULL, NULL, &err);
    no_err (rc, &err, "live: token, blob");
    CHECK (file_equals (fd, im->layer, im->layer_len), "live: token, blob bytes");
    after = slurp (tlog);
    CHECK (count (after, "GET /token") == count (before, "GET /token"), "live: token reused for the blob");
    close (fd);
  }
  registry_free (r);
  live_stop (&l);
  stop_child (tpid);
}

/* A registry over https with a self-signed certificate. */
static void
test_live_tls (const struct image *im)
{
  struct live l;
  struct registry *r;
  struct reg_opts o = REG_OPTS_INIT;
  cella_error_t err = NULL;
  char *body = NULL, *mt = NULL, d[72];
  size_t len;
  cleanup_free char *key = xasprintf ("%s/tls.key", tmpdir), *crt = xasprintf ("%s/tls.crt", tmpdir);
  cleanup_free char *cmd = NULL, *cfg = NULL;
  int rc;

  if (!find_in_path ("openssl"))
    {
      tap_skip ("openssl not installed", "live: https with a self-signed certificate");
      return;
    }
  cmd = xasprintf ("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext "
                   "subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' >/dev/null 2>&1",
                   key, crt);
  if (system (cmd) != 0)
    {
      CHECK (false, "live: openssl made a TLS certificate");
      return;
    }
  cfg = xasprintf ("  tls:\n    certificate: %s\n    key: %s\n", crt, key);
  if (!live_start (&l, "tls", cfg))
    {
      CHECK (false, "live: docker-registry over https starts");
      return;
    }
  CHECK (image_push (&l, "tls/img", im, NULL), "live: pushed over https");
  r = registry_new (l.host, "tls/img", &o);
  CHECK (registry_get_manifest (r, "v1", &body, &len, &mt, d, &err) < 0 && err_has (&err, "--tls-verify=false"),
         "live: self-signed certificate refused, with the hint");
  registry_free (r);
  o.tls_verify = false;
  r = registry_new (l.host, "tls/img", &o);
  rc = registry_get_manifest (r, "v1", &body, &len, &mt, d, &err);
  no_err (rc, &err, "live: tls_verify=false talks https");
  CHECK (rc == 0 && strcmp (d, im->manifest_d) == 0, "live: the manifest over https");
  free (body), free (mt);
  no_err (registry_check_login (r, &err), &err, "live: login check over https");
  registry_free (r);
  live_stop (&l);
}

static void
test_live (void)
{
  struct image im;
  if (!find_in_path ("docker-registry"))
    {
      tap_skip ("docker-registry not installed", "live registry tests");
      return;
    }
  image_make (&im);
  test_live_plain (&im);
  if (find_in_path ("htpasswd"))
    test_live_htpasswd (&im);
  else
    tap_skip ("htpasswd not installed (apache2-utils)", "live: basic auth");
  test_live_token (&im);
  test_live_tls (&im);
  image_clear (&im);
}

/* ---------------------------------------------------------------- main */

static void
cleanup_all (void)
{
  kill_children ();
  if (tmpdir)
    {
      cleanup_free char *cmd = xasprintf ("rm -rf '%s'", tmpdir);
      if (system (cmd) != 0)
        printf ("# could not remove %s\n", tmpdir);
      free (tmpdir);
      tmpdir = NULL;
    }
}

int
main (void)
{
  struct fake f;
  int ret;
  setvbuf (stdout, NULL, _IOLBF, 0);
  tmpdir = xstrdup ("/tmp/regtest-XXXXXX");
  if (mkdtemp (tmpdir) == NULL)
    abort ();
  atexit (cleanup_all);
  setenv ("HOME", tmpdir, 1);
  setenv ("XDG_CONFIG_HOME", tmpdir, 1);
  unsetenv ("REGISTRY_AUTH_FILE");
  unsetenv ("DOCKER_CONFIG");
  /* a proxy in the environment would stand between us and 127.0.0.1 */
  setenv ("no_proxy", "*", 1);
  setenv ("NO_PROXY", "*", 1);
  curl_global_init (CURL_GLOBAL_DEFAULT);

  test_challenge ();
  test_digest ();
  test_base64 ();
  test_auth ();
  setenv ("HOME", tmpdir, 1);
  setenv ("XDG_CONFIG_HOME", tmpdir, 1);
  test_progress ();

  fake_start (&f);
  test_fake_manifests (&f);
  test_fake_auth (&f);
  test_fake_blobs (&f);
  test_fake_transport (&f);
  test_push_pure ();
  test_fake_push (&f);
  fake_stop (&f);

  test_live ();
  ret = tap_done ();
  cleanup_all ();
  curl_global_cleanup ();
  return ret;
}
