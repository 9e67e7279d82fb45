#ifndef CELLA_SELFEXEC_H
#define CELLA_SELFEXEC_H
/* Re-execute cella from a sealed, anonymous copy of its own binary, so that a container that
 * reaches /proc/self/exe of a cella process (the CVE-2019-5736 class) finds a memfd it cannot
 * write, never the binary on the host. Returns only when already running from such a copy, or
 * with -1 when the copy could not be made (errno set). */
int selfexec_sealed (char **argv);
#endif
