/* The data directory: creation, the hearthd.lock that keeps two processes from writing under
 * one directory, and atomic file replacement (hearthd.ports, generated files). */
#ifndef HEARTH_CORE_DATADIR_H
#define HEARTH_CORE_DATADIR_H

#include <stddef.h>

#include "hearth/error.h"

/* mkdir -p; directories created here get mode 0700. *err malloc'd on failure (HEARTH_EIO). */
int datadir_prepare(const char *dir, char **err) HEARTH_MUST_CHECK;

/* Take <dir>/hearthd.lock (flock LOCK_EX|LOCK_NB) and write our pid into it. HEARTH_EBUSY with
 * "data directory DIR is in use by a running hearthd (pid N)" when another holder has it. */
int datadir_lock(const char *dir, int *fd_out, char **err) HEARTH_MUST_CHECK;
void datadir_unlock(int fd); /* fd < 0: nothing */

/* Write a temporary file beside path (mode 0600), fsync, rename over path. */
int datadir_write_file_atomic(const char *path, const char *data, size_t len,
                              char **err) HEARTH_MUST_CHECK;

/* "<dir>/<name>", malloc'd; NULL on ENOMEM. */
char *datadir_path(const char *dir, const char *name);
/* The storage DSN to open: dsn as configured, or for the sqlite driver with none the data
 * directory's hearth.db (the only driver with a default). malloc'd; NULL on ENOMEM. */
char *datadir_storage_dsn(const char *dir, const char *driver, const char *dsn);

#endif
