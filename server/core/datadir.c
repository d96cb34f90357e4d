/* The data directory: mkdir -p, the single-owner lock file and atomic file replacement.
 * Touches only paths under the directory it is given. */
#include "core/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char **err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    free(*err);
    *err = s;
}

char *datadir_path(const char *dir, const char *name)
{
    char *p = NULL;
    size_t n = strlen(dir);
    int slash = n > 0 && dir[n - 1] == '/';
    if (asprintf(&p, "%s%s%s", dir, slash ? "" : "/", name) < 0)
        return NULL;
    return p;
}

char *datadir_storage_dsn(const char *dir, const char *driver, const char *dsn)
{
    if (!*dsn && strcmp(driver, "sqlite") == 0)
        return datadir_path(dir, "hearth.db");
    return strdup(dsn);
}

int datadir_prepare(const char *dir, char **err)
{
    if (!dir || !*dir) {
        set_err(err, "empty data directory path");
        return HEARTH_EINVAL;
    }
    char *p = strdup(dir);
    if (!p) {
        set_err(err, "out of memory");
        return HEARTH_ENOMEM;
    }
    int rc = 0;
    /* Create each component in turn; the ones that exist already are left as they are. */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            set_err(err, "cannot create data directory %s: %s", p, strerror(errno));
            rc = HEARTH_EIO;
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    if (rc == 0 && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
        set_err(err, "data directory %s is not a directory", dir);
        rc = HEARTH_EIO;
    }
    if (rc == 0 && access(dir, W_OK | X_OK) < 0) {
        set_err(err, "data directory %s is not writable: %s", dir, strerror(errno));
        rc = HEARTH_EIO;
    }
    free(p);
    return rc;
}

int datadir_lock(const char *dir, int *fd_out, char **err)
{
    *fd_out = -1;
    char *path = datadir_path(dir, "hearthd.lock");
    if (!path) {
        set_err(err, "out of memory");
        return HEARTH_ENOMEM;
    }
    int rc = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, "cannot open %s: %s", path, strerror(errno));
        rc = HEARTH_EIO;
        goto out;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK) {
            char buf[32] = {0};
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
            if (pid > 0)
                set_err(err, "data directory %s is in use by a running hearthd (pid %ld)", dir,
                        pid);
            else
                set_err(err, "data directory %s is in use by a running hearthd (pid unknown)", dir);
            rc = HEARTH_EBUSY;
        } else {
            set_err(err, "cannot lock %s: %s", path, strerror(errno));
            rc = HEARTH_EIO;
        }
        goto out;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        set_err(err, "cannot write %s: %s", path, strerror(errno));
        rc = HEARTH_EIO;
        goto out;
    }
    *fd_out = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd); /* also drops a lock we took */
    free(path);
    return rc;
}

void datadir_unlock(int fd)
{
    if (fd < 0)
        return;
    /* Leave the file: unlinking it would race with a process that just opened it. */
    if (ftruncate(fd, 0) < 0) {
        /* nothing useful to do; the lock goes with the close */
    }
    close(fd);
}

int datadir_write_file_atomic(const char *path, const char *data, size_t len, char **err)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
        set_err(err, "out of memory");
        return HEARTH_ENOMEM;
    }
    int rc = 0;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        set_err(err, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return HEARTH_EIO;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            set_err(err, "cannot write %s: %s", tmp, strerror(errno));
            rc = HEARTH_EIO;
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) < 0) {
        set_err(err, "cannot write %s: %s", tmp, strerror(errno));
        rc = HEARTH_EIO;
    }
    if (close(fd) < 0 && rc == 0) {
        set_err(err, "cannot write %s: %s", tmp, strerror(errno));
        rc = HEARTH_EIO;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        set_err(err, "cannot replace %s: %s", path, strerror(errno));
        rc = HEARTH_EIO;
    }
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    return rc;
}
