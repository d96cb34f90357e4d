/* The pgsql storage driver of a build without libpq: the name is known, so that a configuration
 * asking for it is refused at start with the reason rather than as an unknown driver. */
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>

static int stub_open(const char *dsn, void **conn, char **errmsg)
{
    (void)dsn;
    *conn = NULL;
    *errmsg = strdup("storage: this hearthd was built without PostgreSQL support (libpq was "
                     "missing at build time: install libpq-dev and rebuild); use "
                     "storage.driver = sqlite");
    return HEARTH_ECONFIG;
}

static void stub_run(void *conn, storage_req_t *first)
{
    (void)conn;
    for (storage_req_t *r = first; r != NULL; r = r->next)
        r->err = HEARTH_ESTORAGE;
}

static void stub_close(void *conn)
{
    (void)conn;
}

static uint64_t stub_commits(void *conn)
{
    (void)conn;
    return 0;
}

int storage_copy_to_pgsql(const char *sqlite_path, const char *dsn, FILE *report, char **errmsg)
{
    (void)sqlite_path;
    (void)dsn;
    (void)report;
    *errmsg = strdup("this hearthctl was built without PostgreSQL support (libpq was missing at "
                     "build time: install libpq-dev and rebuild)");
    return HEARTH_ECONFIG;
}

const storage_driver_t storage__pgsql_driver = {
    .name = "pgsql",
    .open = stub_open,
    .run = stub_run,
    .close = stub_close,
    .commits = stub_commits,
};
