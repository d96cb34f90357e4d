/* hearthctl's XEP-0227 (portable import/export) files: an export of every account of a storage,
 * and an import that reads and checks whole files before it writes anything. Used by
 * tools/hearthctl.c on a storage it holds alone (hearthd stopped). */
#ifndef HEARTH_PIE_H
#define HEARTH_PIE_H

#include <stddef.h>
#include <stdio.h>

#include "storage/storage.h"

/* Default bound on one import file, bytes (--max-bytes): far above the export of a server of some
 * thousands of accounts; the whole of a <host> is held in memory while it is read. */
#define PIE_FILE_MAX_DEFAULT (1024u * 1024 * 1024)

typedef struct pie_import_opts {
    const char *domain;  /* prepared server.domain: the only <host jid='...'> accepted */
    unsigned iterations; /* auth.scram_iterations, for passwords given in clear */
    int skip_existing;   /* an account that exists is left as it is (else the import fails) */
    size_t max_bytes;    /* per file */
    FILE *report;        /* one line per account imported or skipped, and the totals */
} pie_import_opts_t;

/* Every account of st in one <server-data> for domain, to out. 0, else 1 with *errmsg
 * (malloc'd). */
int pie__export(storage_t *st, const char *domain, FILE *out, char **errmsg);
/* Reads and checks every file first; then creates the accounts with their data. On a failure
 * while writing, the accounts this import created are deleted again. 0, else 1 with *errmsg
 * (malloc'd) naming the file and the element. */
int pie__import(storage_t *st, const char *const *paths, size_t npaths,
                const pie_import_opts_t *opts, char **errmsg);

#endif
