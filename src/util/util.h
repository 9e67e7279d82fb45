/* Small helpers shared by every module: cleanup attributes, errors, strings, files. */
#ifndef CELLA_UTIL_H
#define CELLA_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

/* Exit codes, docker's convention (docs/errors.md lists them). */
enum {
  EXIT_CELLA_ERROR = 125, /* cella itself failed: bad input, setup error */
  EXIT_CANNOT_EXEC = 126, /* the command exists but cannot be executed */
  EXIT_NOT_FOUND = 127,   /* the command was not found */
};

/* Error contract (docs/error-handling.md): a library function returns 0 on success or
 * a negative value on failure and fills *err; the CLI prints it once at the top. */
struct cella_error {
  int errno_; /* errno that caused it, 0 for none */
  int status; /* exit status the CLI should use (125 unless set otherwise) */
  char *msg;  /* "<object>: <action/why>" */
};
typedef struct cella_error *cella_error_t;

int cella_error (cella_error_t *err, int errno_, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
int cella_error_status (cella_error_t *err, int status, int errno_, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
/* Prefix an existing error with more context: "<context>: <old message>". */
int cella_error_wrap (cella_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void cella_error_free (cella_error_t *err);
/* Print "cella: <msg>[: <strerror>]" to stderr and return the status to exit with. */
int cella_error_print (cella_error_t *err);

void *xmalloc (size_t n);
void *xzalloc (size_t n);
void *xrealloc (void *p, size_t n);
char *xstrdup (const char *s);
char *xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static inline void
cleanup_freep (void *p)
{
  free (*(void **) p);
}
void cleanup_closep (int *fd);
void cleanup_fclosep (void *f);
void cleanup_strvp (char ***v);
#define cleanup_free __attribute__ ((cleanup (cleanup_freep)))
#define cleanup_close __attribute__ ((cleanup (cleanup_closep)))
#define cleanup_fclose __attribute__ ((cleanup (cleanup_fclosep)))
#define cleanup_strv __attribute__ ((cleanup (cleanup_strvp)))

static inline void *
steal_ptr_ (void **pp)
{
  void *p = *pp;
  *pp = NULL;
  return p;
}
#define steal_pointer(pp) steal_ptr_ ((void **) (pp))
static inline int
steal_fd (int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

/* NULL-terminated string vectors. */
size_t strv_len (char *const *v);
/* The index of s among names[0..n) (NULL entries skipped), or -1. */
int str_index (const char *const *names, size_t n, const char *s);
void strv_push (char ***v, const char *s); /* copies s */
void strv_free (char **v);
char **strv_dup (char *const *v);
/* An empty vector with room for n strings: fill v[0..n), it stays NULL-terminated. */
char **strv_new (size_t n);
/* Copies of more's strings appended to *v in one step. strv_push walks the vector for its length
 * on every call: a loop of n pushes is O(n²) (200,000 arguments took minutes). */
void strv_append_all (char ***v, char *const *more);

/* Files. */
int read_all_fd (int fd, char **out, size_t *len, cella_error_t *err);
int read_file (const char *path, char **out, size_t *len, cella_error_t *err);
/* Write a whole buffer, retrying on EINTR/short writes. */
int write_all (int fd, const void *buf, size_t len);
/* Write a file crash-safely: temp file, fsync, rename. */
int write_file_atomic (const char *path, const void *buf, size_t len, mode_t mode, cella_error_t *err);
/* The same without fsync: readers see the old or the new file whole, but a power loss may lose
 * it. For state a reboot clears anyway (the OCI runtime's, under /run), where fsync is most of
 * a container start's cost on a busy disk. */
int write_file_volatile (const char *path, const void *buf, size_t len, mode_t mode, cella_error_t *err);
/* fsync the directory that holds path (after a rename or an unlink in it). */
void fsync_parent (const char *path);
int mkdir_p (const char *path, mode_t mode, cella_error_t *err);
/* An absolute path without empty or `.` components nor a trailing slash: "/a//b/./c/" → "/a/b/c"
 * (`..` is kept: the caller decides). Caller frees. */
char *path_clean (const char *path);
/* A directory cella keeps state in (the data and run roots, the OCI root): made with mode 0700
 * when missing, then checked through a descriptor (O_NOFOLLOW|O_DIRECTORY, fstat): it must be a
 * directory, not a symlink, owned by the caller, and writable by nobody else (one others may only
 * read or enter is made 0700). Anything else is an error naming it: another local user who created /tmp/cella-run-UID
 * first must not get a say in what cella reads from it (docs/security.md). */
int state_dir_ensure (const char *path, cella_error_t *err);
/* A signal by name (TERM, SIGTERM, any case) or number; -1 if unknown. */
int signal_parse (const char *s);
/* Every signal back to its default disposition and an empty mask, before a workload's execve. */
void signals_default (void);
/* From the text of /proc/PID/status: the signals whose disposition is not SIG_DFL (SigIgn | SigCgt; bit
 * sig - 1), or every one when either field is missing or malformed. */
uint64_t signals_not_default_in (const char *status);
bool has_prefix (const char *s, const char *prefix);
/* Parse a non-negative decimal integer that fits in `max`; -1 on error. */
long long parse_uint (const char *s, unsigned long long max);
/* Parse a size like 64m, 1g, 512k, 4096 into bytes; -1 on error. */
long long parse_size (const char *s);

/* The wall clock (CLOCK_REALTIME) in nanoseconds since the epoch. */
long long now_ns (void);

/* A name as docker takes them: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most max characters. */
bool name_token_valid (const char *name, size_t max);
/* Names of containers and networks: name_token_valid, at most 128 characters. */
bool ctr_name_valid (const char *name);
/* Now, UTC, to the second: "2026-12-02T15:04:05Z", malloc'd. */
char *utc_now_rfc3339 (void);

/* Colon-separated databases (passwd, group, subuid): split `text` in place, line by line, and
 * call fn with each line's fields (at most 8); fn returns > 0 to stop. */
void colon_db_each (char *text, int (*fn) (char **f, size_t n, void *ud), void *ud);

/* Field `field` (0 name … 5 home, 6 shell) of uid's line in the host's /etc/passwd, read
 * directly: cella is linked statically, where glibc's NSS would need shared libraries. */
char *host_passwd_field (uid_t uid, int field);

/* rm -rf of path (or of name under dfd) without following symlinks or entering a mount below it;
 * -1 if something stayed. */
int remove_tree (const char *path);
int remove_tree_at (int dfd, const char *name);
/* What directory fd holds (not fd itself), removed relative to fd: no symlink followed, no mount
 * below entered (it stays, with its parents). -1 if something stayed. */
int remove_dir_contents (int fd);

/* Is this process in the initial user namespace (uid_map "0 0 4294967295")? Overlay's trusted.*
 * xattrs need it; elsewhere layers use user.overlay.* and mounts take `userxattr`. */
bool in_initial_userns (void);

/* Do two paths name one file (device and inode)? For namespace files: /proc/PID/ns/net and
 * /proc/self/ns/net name the same namespace. 1 yes, 0 no, -1 when either cannot be read. */
int same_file (const char *a, const char *b);

/* A forked child's error, sent to its parent over a SEQPACKET socket as "<errno>\n<message>";
 * error_recv: 1 when nothing came (the child had no error to report), 0 with *err rebuilt. */
void error_send (int sock, const cella_error_t e);
int error_recv (int sock, cella_error_t *err);

#endif
