/* A plain driver for the fuzz targets: runs LLVMFuzzerTestOneInput once on every file named on
 * the command line (a directory: every file in it, in name order). `make check` links it with
 * each target, built by gcc with ASan+UBSan, so the corpora replay without clang; a crash, a
 * sanitizer report or a failed FUZZ_CHECK stops it with the file's name on stderr. */
#define _GNU_SOURCE
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t replayed;

static int
replay_file (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  uint8_t *buf;
  size_t got = 0;
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
      return -1;
    }
  /* libFuzzer hands over a buffer of exactly the input's size: so does this, for ASan to see */
  buf = malloc (st.st_size ? (size_t) st.st_size : 1);
  if (buf == NULL)
    abort ();
  while (got < (size_t) st.st_size)
    {
      ssize_t n = read (fd, buf + got, (size_t) st.st_size - got);
      if (n <= 0)
        {
          fprintf (stderr, "replay: %s: short read\n", path);
          close (fd);
          free (buf);
          return -1;
        }
      got += (size_t) n;
    }
  close (fd);
  fprintf (stderr, "replay: %s\n", path);
  LLVMFuzzerTestOneInput (buf, got);
  free (buf);
  replayed++;
  return 0;
}

static int
by_name (const struct dirent **a, const struct dirent **b)
{
  return strcmp ((*a)->d_name, (*b)->d_name);
}

static int
replay_path (const char *path)
{
  struct stat st;
  struct dirent **names;
  int n, r = 0;
  if (stat (path, &st) < 0)
    {
      fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
      return -1;
    }
  if (!S_ISDIR (st.st_mode))
    return replay_file (path);
  n = scandir (path, &names, NULL, by_name);
  if (n < 0)
    {
      fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
      return -1;
    }
  for (int i = 0; i < n; i++)
    {
      if (names[i]->d_name[0] != '.')
        {
          char *p = NULL;
          if (asprintf (&p, "%s/%s", path, names[i]->d_name) < 0)
            abort ();
          if (replay_path (p) < 0)
            r = -1;
          free (p);
        }
      free (names[i]);
    }
  free (names);
  return r;
}

int
main (int argc, char **argv)
{
  int r = 0;
  if (argc < 2)
    {
      fprintf (stderr, "usage: %s FILE|DIR...\n", argv[0]);
      return 2;
    }
  for (int i = 1; i < argc; i++)
    if (replay_path (argv[i]) < 0)
      r = 1;
  printf ("replayed %zu inputs\n", replayed);
  return r;
}
