/* Finding the `proot` program (the proot backend's engine) on this host: a host probe. */
#ifndef CELLA_HOST_PROOT_FIND_H
#define CELLA_HOST_PROOT_FIND_H

/* Where proot is: `override` (the --proot-path value) when given, else $CELLA_PROOT when set
 * (each an error when not an executable file: the user asked for that one), else `proot` on
 * PATH, else /data/local/tmp/proot, /data/data/com.termux/files/usr/bin/proot, $HOME/proot.
 * Returns 0 with *path (malloc'd) and *version (the first line of `proot --version` that has a
 * digit, shortened to the version when it is ASCII art; NULL when it prints none or takes more
 * than 2 s); *why is NULL then. Returns -1 with *why (malloc'd): what is missing and the fix.
 * version may be NULL: proot is then not run at all. */
int proot_find (const char *override, char **path, char **version, char **why);

#endif
