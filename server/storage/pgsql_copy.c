/* hearthctl migrate: a whole SQLite store copied into an empty PostgreSQL database, in one
 * transaction, with each table's count checked before it commits. The tables and their columns
 * are read from PostgreSQL's catalog once both schemas are current, so a migration added to both
 * drivers is copied without a change here; a table or column that one side has and the other
 * lacks stops the copy rather than being left behind. */
#include "storage/storage.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on the schema read from the catalog: far above the 22 tables of schema 9. */
#define COPY_TABLES_MAX 64
#define COPY_COLUMNS_MAX 32
/* Rows per INSERT: fewer round trips than one a row; PostgreSQL takes at most 65,535
 * parameters in one statement (COPY_COLUMNS_MAX * 256 stays below). */
#define COPY_BATCH_ROWS 256
/* ...and fewer when they are large (archived stanzas, PEP payloads): a batch is held in memory
 * twice over (the copies here and libpq's message), so it stops at this many bytes. */
#define COPY_BATCH_BYTES (8u * 1024 * 1024)
/* How long the copy waits for a lock on the target's tables (a server using them) before it
 * gives up: a running hearthd holds none for long. */
#define COPY_LOCK_TIMEOUT "10s"

typedef struct column {
    char *name;
    bool bytea;    /* sent in binary; the rest as text, which PostgreSQL casts */
    bool identity; /* its sequence moves past the copied values afterwards */
} column_t;

typedef struct table {
    char *name;
    column_t cols[COPY_COLUMNS_MAX];
    int ncols;
    int deps[COPY_TABLES_MAX]; /* tables its foreign keys refer to (indexes) */
    int ndeps;
    bool copied;
    int64_t rows;
} table_t;

typedef struct copy {
    sqlite3 *lite;
    PGconn *pg;
    table_t tables[COPY_TABLES_MAX];
    int ntables;
    char *err; /* the first failure */
} copy_t;

static int failf(copy_t *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(copy_t *cp, const char *fmt, ...)
{
    if (cp->err != NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cp->err, fmt, ap) < 0)
        cp->err = NULL;
    va_end(ap);
    return -1;
}

/* libpq's message on one line, without its trailing newline. */
static const char *pg_why(copy_t *cp, const PGresult *res)
{
    static char line[512];
    const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
    if (*msg == '\0')
        msg = PQerrorMessage(cp->pg);
    snprintf(line, sizeof(line), "%s", msg);
    for (char *s = line; *s; s++)
        if (*s == '\n' || *s == '\t')
            *s = ' ';
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == ' ')
        line[--n] = '\0';
    return line;
}

/* A statement without parameters whose result is only checked. */
static int pg_command(copy_t *cp, const char *sql, const char *what)
{
    PGresult *res = PQexec(cp->pg, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        failf(cp, "PostgreSQL: %s: %s", what, pg_why(cp, res));
    PQclear(res);
    return ok ? 0 : -1;
}

/* Rows of a statement with text parameters; NULL after failf. */
static PGresult *pg_rows(copy_t *cp, const char *sql, int nparams, const char *const *params,
                         const char *what)
{
    PGresult *res = PQexecParams(cp->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        failf(cp, "PostgreSQL: %s: %s", what, pg_why(cp, res));
        PQclear(res);
        return NULL;
    }
    return res;
}

static int64_t pg_int(copy_t *cp, const char *sql, int nparams, const char *const *params,
                      const char *what)
{
    PGresult *res = pg_rows(cp, sql, nparams, params, what);
    if (res == NULL)
        return -1;
    int64_t v = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    if (v < 0)
        failf(cp, "PostgreSQL: %s: no answer", what);
    return v;
}

/* A table's name quoted for PostgreSQL (libpq's escaping, malloc'd), or NULL after failf. */
static char *pg_ident(copy_t *cp, const char *name)
{
    char *q = PQescapeIdentifier(cp->pg, name, strlen(name));
    char *out = q != NULL ? strdup(q) : NULL;
    PQfreemem(q);
    if (out == NULL)
        failf(cp, "out of memory");
    return out;
}

/* The same for SQLite ("name", quotes doubled), malloc'd. */
static char *lite_ident(copy_t *cp, const char *name)
{
    char *q = sqlite3_mprintf("\"%w\"", name);
    char *out = q != NULL ? strdup(q) : NULL;
    sqlite3_free(q);
    if (out == NULL)
        failf(cp, "out of memory");
    return out;
}

static int64_t lite_int(copy_t *cp, const char *sql, const char *text_param, const char *what)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(cp->lite, sql, -1, &st, NULL) != SQLITE_OK) {
        failf(cp, "SQLite: %s: %s", what, sqlite3_errmsg(cp->lite));
        return -1;
    }
    if (text_param != NULL)
        sqlite3_bind_text(st, 1, text_param, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        v = 0;
    else
        failf(cp, "SQLite: %s: %s", what, sqlite3_errmsg(cp->lite));
    sqlite3_finalize(st);
    return v;
}

/* ---- the schema ---- */

static int find_table(const copy_t *cp, const char *name)
{
    for (int i = 0; i < cp->ntables; i++)
        if (strcmp(cp->tables[i].name, name) == 0)
            return i;
    return -1;
}

static int load_columns(copy_t *cp, table_t *t)
{
    const char *params[] = {t->name};
    PGresult *res =
        pg_rows(cp,
                "SELECT a.attname, a.atttypid = 'bytea'::regtype, a.attidentity <> '' "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace "
                "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                1, params, "reading the columns");
    if (res == NULL)
        return -1;
    int n = PQntuples(res);
    if (n == 0 || n > COPY_COLUMNS_MAX) {
        PQclear(res);
        return failf(cp, "table %s has %d columns (at most %d are copied)", t->name, n,
                     COPY_COLUMNS_MAX);
    }
    for (int i = 0; i < n; i++) {
        column_t *c = &t->cols[t->ncols];
        if ((c->name = strdup(PQgetvalue(res, i, 0))) == NULL) {
            PQclear(res);
            return failf(cp, "out of memory");
        }
        c->bytea = PQgetvalue(res, i, 1)[0] == 't';
        c->identity = PQgetvalue(res, i, 2)[0] == 't';
        t->ncols++;
    }
    PQclear(res);
    return 0;
}

/* Every table of the target's schema but the version row, with its columns and the tables its
 * foreign keys need first. */
static int load_schema(copy_t *cp)
{
    PGresult *res = pg_rows(cp,
                            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = "
                            "current_schema()::regnamespace AND relname <> 'schema_version' "
                            "ORDER BY relname",
                            0, NULL, "reading the tables");
    if (res == NULL)
        return -1;
    int n = PQntuples(res);
    if (n > COPY_TABLES_MAX) {
        PQclear(res);
        return failf(cp, "the target has %d tables (at most %d are copied)", n, COPY_TABLES_MAX);
    }
    for (int i = 0; i < n; i++) {
        if ((cp->tables[i].name = strdup(PQgetvalue(res, i, 0))) == NULL) {
            PQclear(res);
            return failf(cp, "out of memory");
        }
        cp->ntables++;
    }
    PQclear(res);
    for (int i = 0; i < cp->ntables; i++)
        if (load_columns(cp, &cp->tables[i]) != 0)
            return -1;
    res = pg_rows(cp,
                  "SELECT DISTINCT c.relname, f.relname FROM pg_constraint k "
                  "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid "
                  "WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace",
                  0, NULL, "reading the foreign keys");
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        int from = find_table(cp, PQgetvalue(res, i, 0));
        int to = find_table(cp, PQgetvalue(res, i, 1));
        if (from >= 0 && to >= 0 && from != to)
            cp->tables[from].deps[cp->tables[from].ndeps++] = to;
    }
    PQclear(res);
    return 0;
}

/* The source must hold the same tables with the same columns: what it has beyond them would be
 * left behind, what it lacks means the two drivers' migrations differ. */
static int check_source(copy_t *cp)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(cp->lite,
                           "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE "
                           "'sqlite\\_%' ESCAPE '\\' AND name <> 'schema_version'",
                           -1, &st, NULL) != SQLITE_OK)
        return failf(cp, "SQLite: reading the tables: %s", sqlite3_errmsg(cp->lite));
    int rc, nlite = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (find_table(cp, name) < 0) {
            failf(cp, "the SQLite store has a table %s that the PostgreSQL schema lacks", name);
            break;
        }
        nlite++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        failf(cp, "SQLite: reading the tables: %s", sqlite3_errmsg(cp->lite));
    sqlite3_finalize(st);
    if (cp->err != NULL)
        return -1;
    for (int i = 0; i < cp->ntables && nlite != cp->ntables; i++)
        if (lite_int(cp, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                     cp->tables[i].name, "reading the tables") == 0)
            return failf(cp, "the SQLite store lacks the table %s", cp->tables[i].name);
    for (int i = 0; i < cp->ntables; i++) {
        table_t *t = &cp->tables[i];
        int64_t n = lite_int(cp, "SELECT count(*) FROM pragma_table_info(?1)", t->name,
                             "reading the columns");
        if (n < 0)
            return -1;
        if (n != t->ncols)
            return failf(cp,
                         "table %s has %" PRId64 " columns in the SQLite store and %d in "
                         "PostgreSQL",
                         t->name, n, t->ncols);
    }
    return 0;
}

static int schema_versions(copy_t *cp)
{
    int64_t lite = lite_int(cp, "SELECT version FROM schema_version", NULL, "schema version");
    int64_t pg = pg_int(cp, "SELECT version FROM schema_version", 0, NULL, "schema version");
    if (lite < 0 || pg < 0)
        return -1;
    if (lite != pg)
        return failf(cp, "schema versions differ (SQLite %" PRId64 ", PostgreSQL %" PRId64 ")",
                     lite, pg);
    return 0;
}

/* ---- the target ---- */

/* The one row a first start of hearthd writes on its own (main.c: the secret of upload slots and
 * tokens). A target that holds only it has been started once, not used: it is not counted as
 * data, and the copy takes the source's secret instead, so that what the source handed out
 * stays valid. */
static const char GENERATED_TABLE[] = "properties";
static const char GENERATED_ROWS[] =
    "SELECT count(*) FROM properties WHERE name <> 'server.secret'";
static const char GENERATED_DELETE[] = "DELETE FROM properties WHERE name = 'server.secret'";

/* Every table locked against writers for the copy, then found empty: a copy never mixes with or
 * overwrites what the target holds. */
static int lock_and_check_empty(copy_t *cp)
{
    if (pg_command(cp, "SET LOCAL lock_timeout = '" COPY_LOCK_TIMEOUT "'", "lock timeout") != 0)
        return -1;
    for (int i = 0; i < cp->ntables; i++) {
        table_t *t = &cp->tables[i];
        char *q = pg_ident(cp, t->name);
        char sql[256];
        if (q == NULL)
            return -1;
        snprintf(sql, sizeof(sql), "LOCK TABLE %s IN EXCLUSIVE MODE", q);
        int rc = pg_command(cp, sql, "locking the tables (is a server using them?)");
        if (rc == 0) {
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", q);
            bool generated = strcmp(t->name, GENERATED_TABLE) == 0;
            int64_t n = pg_int(cp, generated ? GENERATED_ROWS : sql, 0, NULL, "counting rows");
            if (n > 0)
                failf(cp,
                      "the target database is not empty (table %s has %" PRId64
                      " rows): migrate copies into an empty database only, so that nothing "
                      "there is overwritten or mixed; give it a new database",
                      t->name, n);
            rc = n == 0 ? 0 : -1;
        }
        free(q);
        if (rc != 0)
            return -1;
    }
    return pg_command(cp, GENERATED_DELETE, "replacing the target's generated secret");
}

/* ---- the rows ---- */

typedef struct batch {
    char **values; /* COPY_BATCH_ROWS * ncols, each malloc'd or NULL (SQL NULL) */
    int *lengths;
    int *formats;
    int rows;
    size_t bytes;
} batch_t;

/* "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ..." for rows rows. */
static char *insert_sql(copy_t *cp, const table_t *t, const char *qt, int rows)
{
    size_t cap = 64 + strlen(qt) + (size_t)t->ncols * 80 + (size_t)rows * t->ncols * 10;
    char *sql = malloc(cap);
    if (sql == NULL) {
        failf(cp, "out of memory");
        return NULL;
    }
    size_t len = (size_t)snprintf(sql, cap, "INSERT INTO %s (", qt);
    for (int c = 0; c < t->ncols; c++) {
        char *qc = pg_ident(cp, t->cols[c].name);
        if (qc == NULL) {
            free(sql);
            return NULL;
        }
        len += (size_t)snprintf(sql + len, cap - len, "%s%s", c ? ", " : "", qc);
        free(qc);
    }
    len += (size_t)snprintf(sql + len, cap - len, ") VALUES ");
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < t->ncols; c++)
            len += (size_t)snprintf(sql + len, cap - len, "%s$%d%s", c ? ", " : (r ? ", (" : "("),
                                    r * t->ncols + c + 1, c == t->ncols - 1 ? ")" : "");
    return sql;
}

/* One SQLite cell as a PostgreSQL parameter (malloc'd into b at index i). */
static int take_cell(copy_t *cp, const table_t *t, sqlite3_stmt *st, int c, batch_t *b, int i,
                     int64_t row)
{
    int type = sqlite3_column_type(st, c);
    b->values[i] = NULL;
    b->lengths[i] = 0;
    b->formats[i] = t->cols[c].bytea ? 1 : 0;
    if (type == SQLITE_NULL)
        return 0;
    const void *bytes =
        t->cols[c].bytea ? sqlite3_column_blob(st, c) : (const void *)sqlite3_column_text(st, c);
    int n = sqlite3_column_bytes(st, c);
    if (bytes == NULL && n > 0)
        return failf(cp, "out of memory");
    if (!t->cols[c].bytea && memchr(bytes, '\0', (size_t)n) != NULL)
        return failf(cp,
                     "table %s, row %" PRId64 ": column %s holds a NUL byte, which PostgreSQL "
                     "text cannot store",
                     t->name, row, t->cols[c].name);
    if ((b->values[i] = malloc((size_t)n + 1)) == NULL)
        return failf(cp, "out of memory");
    if (n > 0)
        memcpy(b->values[i], bytes, (size_t)n);
    b->values[i][n] = '\0';
    b->lengths[i] = n;
    b->bytes += (size_t)n;
    return 0;
}

static void batch_clear(batch_t *b, int ncols)
{
    for (int i = 0; i < b->rows * ncols; i++) {
        free(b->values[i]);
        b->values[i] = NULL;
    }
    b->rows = 0;
    b->bytes = 0;
}

static int flush_batch(copy_t *cp, const table_t *t, const char *qt, batch_t *b, int64_t first)
{
    if (b->rows == 0)
        return 0;
    char *sql = insert_sql(cp, t, qt, b->rows);
    if (sql == NULL)
        return -1;
    PGresult *res = PQexecParams(cp->pg, sql, b->rows * t->ncols, NULL,
                                 (const char *const *)b->values, b->lengths, b->formats, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        failf(cp, "table %s, rows %" PRId64 "-%" PRId64 ": PostgreSQL refused them: %s", t->name,
              first, first + b->rows - 1, pg_why(cp, res));
    PQclear(res);
    free(sql);
    return ok ? 0 : -1;
}

static int copy_rows(copy_t *cp, table_t *t)
{
    char *qt = pg_ident(cp, t->name), *lt = lite_ident(cp, t->name);
    size_t cap = 64 + (size_t)t->ncols * 80;
    char *select = malloc(cap);
    batch_t b = {0};
    size_t cells = (size_t)COPY_BATCH_ROWS * (size_t)t->ncols;
    b.values = calloc(cells, sizeof(*b.values));
    b.lengths = calloc(cells, sizeof(*b.lengths));
    b.formats = calloc(cells, sizeof(*b.formats));
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (qt == NULL || lt == NULL || select == NULL || b.values == NULL || b.lengths == NULL ||
        b.formats == NULL) {
        failf(cp, "out of memory");
        goto out;
    }
    size_t len = (size_t)snprintf(select, cap, "SELECT ");
    for (int c = 0; c < t->ncols; c++) {
        char *qc = lite_ident(cp, t->cols[c].name);
        if (qc == NULL)
            goto out;
        len += (size_t)snprintf(select + len, cap - len, "%s%s", c ? ", " : "", qc);
        free(qc);
    }
    snprintf(select + len, cap - len, " FROM %s", lt);
    if (sqlite3_prepare_v2(cp->lite, select, -1, &st, NULL) != SQLITE_OK) {
        failf(cp, "SQLite: table %s: %s", t->name, sqlite3_errmsg(cp->lite));
        goto out;
    }
    int step;
    int64_t first = 1;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        t->rows++;
        for (int c = 0; c < t->ncols; c++)
            if (take_cell(cp, t, st, c, &b, b.rows * t->ncols + c, t->rows) != 0) {
                b.rows++; /* its cells are freed with the batch */
                goto out;
            }
        if (++b.rows == COPY_BATCH_ROWS || b.bytes >= COPY_BATCH_BYTES) {
            if (flush_batch(cp, t, qt, &b, first) != 0)
                goto out;
            batch_clear(&b, t->ncols);
            first = t->rows + 1;
        }
    }
    if (step != SQLITE_DONE) {
        failf(cp, "SQLite: table %s: %s", t->name, sqlite3_errmsg(cp->lite));
        goto out;
    }
    rc = flush_batch(cp, t, qt, &b, first);
out:
    if (b.values != NULL)
        batch_clear(&b, t->ncols);
    sqlite3_finalize(st);
    free(b.values);
    free(b.lengths);
    free(b.formats);
    free(select);
    free(qt);
    free(lt);
    return rc;
}

/* An identity column's sequence continues after the highest value copied, and after any SQLite
 * handed out before (AUTOINCREMENT never reuses a deleted row's id, so neither may PostgreSQL). */
static int move_sequences(copy_t *cp, const table_t *t)
{
    for (int c = 0; c < t->ncols; c++) {
        if (!t->cols[c].identity)
            continue;
        char *qt = pg_ident(cp, t->name), *qc = pg_ident(cp, t->cols[c].name);
        char sql[256];
        int64_t max = -1, lite_seq = 0;
        if (qt != NULL && qc != NULL) {
            snprintf(sql, sizeof(sql), "SELECT coalesce(max(%s), 0) FROM %s", qc, qt);
            max = pg_int(cp, sql, 0, NULL, "reading an identity's highest value");
        }
        free(qt);
        free(qc);
        if (max < 0)
            return -1;
        if (lite_int(cp, "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'", NULL,
                     "reading sqlite_sequence") > 0)
            lite_seq =
                lite_int(cp, "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?1",
                         t->name, "reading sqlite_sequence");
        if (lite_seq < 0)
            return -1;
        char next[32];
        snprintf(next, sizeof(next), "%" PRId64, (max > lite_seq ? max : lite_seq) + 1);
        const char *params[] = {t->name, t->cols[c].name, next};
        PGresult *res = pg_rows(cp, "SELECT setval(pg_get_serial_sequence($1, $2), $3, false)", 3,
                                params, "moving an identity sequence");
        if (res == NULL)
            return -1;
        PQclear(res);
    }
    return 0;
}

/* Counted on both sides, inside the transaction, against what was read. */
static int verify_counts(copy_t *cp, const table_t *t, FILE *report)
{
    char *qt = pg_ident(cp, t->name), *lt = lite_ident(cp, t->name);
    char sql[256];
    int64_t pg = -1, lite = -1;
    if (qt != NULL && lt != NULL) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", qt);
        pg = pg_int(cp, sql, 0, NULL, "counting rows");
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", lt);
        lite = lite_int(cp, sql, NULL, "counting rows");
    }
    free(qt);
    free(lt);
    if (pg < 0 || lite < 0)
        return -1;
    if (pg != lite || pg != t->rows)
        return failf(
            cp, "table %s: %" PRId64 " rows in SQLite, %" PRId64 " read, %" PRId64 " in PostgreSQL",
            t->name, lite, t->rows, pg);
    if (report != NULL)
        fprintf(report, "  %-22s %10" PRId64 " rows, counts match\n", t->name, pg);
    return 0;
}

/* Tables in an order where every foreign key's target comes first. */
static int copy_all(copy_t *cp, FILE *report)
{
    for (int done = 0; done < cp->ntables;) {
        int progress = 0;
        for (int i = 0; i < cp->ntables; i++) {
            table_t *t = &cp->tables[i];
            bool ready = !t->copied;
            for (int d = 0; d < t->ndeps && ready; d++)
                ready = cp->tables[t->deps[d]].copied;
            if (!ready)
                continue;
            if (copy_rows(cp, t) != 0 || move_sequences(cp, t) != 0 ||
                verify_counts(cp, t, report) != 0)
                return -1;
            t->copied = true;
            done++;
            progress = 1;
        }
        if (!progress)
            return failf(cp, "the target's foreign keys form a cycle; no order copies them");
    }
    return 0;
}

/* ---- the whole ---- */

/* Both schemas brought to this build's version by the drivers themselves. */
static int migrate_both(const char *sqlite_path, const char *dsn, copy_t *cp)
{
    const char *drivers[] = {"sqlite", "pgsql"}, *dsns[] = {sqlite_path, dsn};
    for (int i = 0; i < 2; i++) {
        storage_t *st = NULL;
        char *why = NULL;
        if (storage_open(drivers[i], dsns[i], &st, &why) != 0) {
            failf(cp, "%s", why != NULL ? why : "cannot open the database");
            free(why);
            return -1;
        }
        storage_close(st);
    }
    return 0;
}

static int connect_both(const char *sqlite_path, const char *dsn, copy_t *cp)
{
    if (sqlite3_open_v2(sqlite_path, &cp->lite, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return failf(cp, "SQLite: %s: %s", sqlite_path,
                     cp->lite ? sqlite3_errmsg(cp->lite) : "out of memory");
    sqlite3_busy_timeout(cp->lite, 5000);
    /* One read transaction: the copy and the counts see the same snapshot. */
    if (sqlite3_exec(cp->lite, "BEGIN; SELECT count(*) FROM schema_version", NULL, NULL, NULL) !=
        SQLITE_OK)
        return failf(cp, "SQLite: %s: %s", sqlite_path, sqlite3_errmsg(cp->lite));
    const char *const keys[] = {"application_name", "dbname", NULL};
    const char *const vals[] = {"hearthctl migrate", dsn, NULL};
    cp->pg = PQconnectdbParams(keys, vals, 1);
    if (cp->pg == NULL || PQstatus(cp->pg) != CONNECTION_OK)
        return failf(cp, "PostgreSQL: cannot connect: %s", cp->pg ? pg_why(cp, NULL) : "?");
    if (pg_command(cp, "SET client_encoding = 'UTF8'", "client encoding") != 0 ||
        pg_command(cp, "BEGIN ISOLATION LEVEL SERIALIZABLE", "starting the transaction") != 0)
        return -1;
    return 0;
}

int storage_copy_to_pgsql(const char *sqlite_path, const char *dsn, FILE *report, char **errmsg)
{
    copy_t cp = {0};
    *errmsg = NULL;
    if (dsn[0] == '\0') {
        *errmsg = strdup("migrate needs a PostgreSQL connection string (e.g. "
                         "postgresql://hearth@127.0.0.1:5432/hearth)");
        return HEARTH_ECONFIG;
    }
    int rc = -1;
    if (migrate_both(sqlite_path, dsn, &cp) == 0 && connect_both(sqlite_path, dsn, &cp) == 0 &&
        schema_versions(&cp) == 0 && load_schema(&cp) == 0 && check_source(&cp) == 0 &&
        lock_and_check_empty(&cp) == 0 && copy_all(&cp, report) == 0)
        rc = pg_command(&cp, "COMMIT", "committing");
    if (rc != 0 && cp.pg != NULL && PQstatus(cp.pg) == CONNECTION_OK)
        PQclear(PQexec(cp.pg, "ROLLBACK"));
    if (cp.lite != NULL)
        sqlite3_close(cp.lite); /* ends the read transaction */
    PQfinish(cp.pg);
    for (int i = 0; i < cp.ntables; i++) {
        for (int c = 0; c < cp.tables[i].ncols; c++)
            free(cp.tables[i].cols[c].name);
        free(cp.tables[i].name);
    }
    if (rc != 0) {
        *errmsg = cp.err != NULL ? cp.err : strdup("out of memory");
        return HEARTH_ESTORAGE;
    }
    free(cp.err);
    return 0;
}
