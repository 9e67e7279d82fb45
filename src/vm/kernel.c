/* The guest kernel (vm.h): --kernel, else the tuned kernel `make vm-kernel` cached under the data
 * root (vm/kernels/current/bzImage), else the host's newest readable /boot/vmlinuz-*. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/paths.h"
#include "vm.h"

/* The x86 boot protocol: "HdrS" at 0x202, the version string's offset (minus 0x200) at 0x20e. */
char *
vm_kernel_release_of (const char *path)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  unsigned char hdr[0x210];
  char buf[128];
  unsigned off;
  ssize_t n;
  size_t len = 0;
  if (fd < 0 || pread (fd, hdr, sizeof hdr, 0) != (ssize_t) sizeof hdr || memcmp (hdr + 0x202, "HdrS", 4) != 0)
    return NULL;
  off = (unsigned) hdr[0x20e] | (unsigned) hdr[0x20f] << 8;
  if (off == 0 || (n = pread (fd, buf, sizeof buf - 1, (off_t) off + 0x200)) <= 0)
    return NULL;
  buf[n] = '\0';
  while (buf[len] && buf[len] != ' ' && (unsigned char) buf[len] > ' ' && (unsigned char) buf[len] < 127)
    len++;
  return len ? strndup (buf, len) : NULL;
}

/* Compare two releases like sort -V would for the parts that matter (6.1.0-56 < 6.1.0-100). */
static int
release_cmp (const char *a, const char *b)
{
  while (*a && *b)
    {
      if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9')
        {
          char *ea, *eb;
          unsigned long long x = strtoull (a, &ea, 10), y = strtoull (b, &eb, 10);
          if (x != y)
            return x < y ? -1 : 1;
          a = ea;
          b = eb;
          continue;
        }
      if (*a != *b)
        return (unsigned char) *a - (unsigned char) *b;
      a++;
      b++;
    }
  return (unsigned char) *a - (unsigned char) *b;
}

/* A kernel scripts/vm-kernel.sh built: its config beside it, without ACPI and modules. */
static bool
built_by_us (const char *kernel_path)
{
  cleanup_free char *copy = xstrdup (kernel_path);
  char *slash = strrchr (copy, '/');
  cleanup_free char *config_path = NULL, *config = NULL;
  cella_error_t ignored = NULL;
  if (slash == NULL)
    return false;
  *slash = '\0';
  config_path = xasprintf ("%s/config", *copy ? copy : "/");
  if (read_file (config_path, &config, NULL, &ignored) < 0)
    {
      cella_error_free (&ignored);
      return false;
    }
  return strstr (config, "\n# CONFIG_ACPI is not set\n") && strstr (config, "\n# CONFIG_MODULES is not set\n")
         && strstr (config, "\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n");
}

int
vm_kernel_tuned (const char *dir, char **path, char **release)
{
  cleanup_free char *img = xasprintf ("%s/current/bzImage", dir);
  cleanup_free char *rel_path = xasprintf ("%s/current/release", dir);
  char *rel = NULL;
  struct stat st;
  cella_error_t ignored = NULL;
  if (stat (img, &st) < 0 || !S_ISREG (st.st_mode) || access (img, R_OK) < 0)
    return -1;
  *path = realpath (img, NULL);
  if (*path == NULL)
    return -1;
  if (read_file (rel_path, &rel, NULL, &ignored) < 0)
    cella_error_free (&ignored);
  if (rel)
    rel[strcspn (rel, "\n")] = '\0';
  if (rel == NULL || rel[0] == '\0')
    {
      free (rel);
      rel = vm_kernel_release_of (*path);
    }
  *release = rel;
  return 0;
}

char *
vm_kernel_tuned_dir (void)
{
  return xasprintf ("%s/vm/kernels", paths_data_root ());
}

int
vm_kernel_find (const char *override, char **path, char **release, const char **kind, cella_error_t *err)
{
  cleanup_free char *best = NULL, *tuned = NULL;
  DIR *d;
  struct dirent *e;
  *kind = VM_KERNEL_GIVEN;
  if (override)
    {
      struct stat st;
      if (stat (override, &st) < 0 || access (override, R_OK) < 0)
        return cella_error (err, errno, "--kernel `%s`", override);
      if (!S_ISREG (st.st_mode))
        return cella_error (err, 0, "--kernel `%s`: not a regular file", override);
      *path = realpath (override, NULL);
      if (*path == NULL)
        return cella_error (err, errno, "--kernel `%s`", override);
      *release = vm_kernel_release_of (*path);
      if (built_by_us (*path))
        *kind = VM_KERNEL_TUNED;
      return 0;
    }
  tuned = vm_kernel_tuned_dir ();
  if (vm_kernel_tuned (tuned, path, release) == 0)
    {
      *kind = VM_KERNEL_TUNED;
      return 0;
    }
  *kind = VM_KERNEL_DISTRO;
  d = opendir ("/boot");
  while (d && (e = readdir (d)))
    {
      cleanup_free char *full = NULL;
      if (!has_prefix (e->d_name, "vmlinuz-"))
        continue;
      full = xasprintf ("/boot/%s", e->d_name);
      if (access (full, R_OK) != 0)
        continue;
      if (best == NULL || release_cmp (e->d_name + 8, best + 8) > 0)
        {
          free (best);
          best = xstrdup (e->d_name);
        }
    }
  if (d)
    closedir (d);
  if (best == NULL)
    return cella_error (err, 0,
                        "no guest kernel: no readable /boot/vmlinuz-* on this host; install one (apt-get install "
                        "linux-image-amd64) or give --kernel PATH");
  *path = xasprintf ("/boot/%s", best);
  *release = xstrdup (best + 8);
  return 0;
}
