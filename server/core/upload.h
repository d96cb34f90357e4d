/* The file store behind HTTP File Upload (XEP-0363): slots given to users, the files they
 * uploaded, each user's bytes against the quota, and the layout under <data-dir>/upload/. The
 * upload service (modules/upload.c) gives slots; the HTTP handlers (net/upload.c) take PUTs and
 * serve GETs. The index is shared by every worker behind one lock held for a lookup or an update,
 * never across I/O; the disk is touched by the callers, off the worker loops (libuv's pool). */
#ifndef HEARTH_UPLOAD_H
#define HEARTH_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#define UPLOAD_ID_LEN 32         /* hex digits of a slot's id: 128 random bits, the URL's secret */
#define UPLOAD_TOKEN_LEN 64      /* hex digits of the PUT's Authorization token (HMAC-SHA-256) */
#define UPLOAD_NAME_MAX 255      /* bytes of a file name: longer gets bad-request */
#define UPLOAD_TYPE_MAX 127      /* bytes of a content type: longer gets bad-request */
#define UPLOAD_OWNER_MAX 3071    /* a bare JID */
#define UPLOAD_FILES_MAX 1000000 /* files and slots in the index: past it, slots are refused */

typedef enum { UPLOAD_PENDING, UPLOAD_WRITING, UPLOAD_STORED } upload_state_t;

/* A copy of one record, for the caller. */
typedef struct upload_info {
    char id[UPLOAD_ID_LEN + 1];
    char owner[UPLOAD_OWNER_MAX + 1];
    char name[UPLOAD_NAME_MAX + 1];
    char ctype[UPLOAD_TYPE_MAX + 1]; /* "" when the slot named none */
    uint64_t size;
    int64_t created; /* unix seconds: the slot given, then the file stored */
    upload_state_t state;
} upload_info_t;

typedef struct upload_limits {
    uint64_t max_file_size;
    uint64_t quota;       /* bytes per user, stored files and open slots; 0 = none */
    unsigned expire_days; /* 0 = kept until the owner's account goes */
    unsigned slot_ttl;    /* seconds a slot's PUT may take to begin */
} upload_limits_t;

/* At start-up, on the main thread (blocking I/O allowed): creates <data_dir>/upload, reads
 * every stored file's record (dropping unfinished uploads and files past expiry) and keeps
 * the secret that signs PUT tokens. */
int upload__init(const char *data_dir, const unsigned char *secret, size_t secret_len,
                 const upload_limits_t *limits);
void upload__free(void);
const upload_limits_t *upload__limits(void);
/* <data-dir>/upload/<id><suffix> into buf: 0, or HEARTH_ELIMIT when it does not fit. */
int upload__path(const char *id, const char *suffix, char *buf, size_t len);
/* Whether s is a well-formed id (UPLOAD_ID_LEN lowercase hex digits). */
int upload__id_ok(const char *s, size_t len);
/* The token a PUT to id must carry (Authorization: Bearer <token>), NUL-terminated. */
void upload__token(const char *id, char out[UPLOAD_TOKEN_LEN + 1]);

/* A new slot for owner: 0 and id_out; HEARTH_ELIMIT when owner's quota would be passed (or
 * the index is full); HEARTH_ENOMEM; HEARTH_EIO when no random bytes could be had. */
int upload__slot_new(const char *owner, const char *name, const char *ctype, uint64_t size,
                     int64_t now, char id_out[UPLOAD_ID_LEN + 1]);
/* A PUT begins: a pending slot within its time becomes WRITING and is copied to out.
 * HEARTH_ENOTFOUND (no such slot), HEARTH_EXISTS (stored, or a PUT already under way),
 * HEARTH_TIMEOUT (the slot expired). */
int upload__claim(const char *id, int64_t now, upload_info_t *out);
/* The PUT ended: stored (its file and record are on disk), or failed (the slot is pending
 * again, for a retry within its time). */
void upload__claim_end(const char *id, int stored, int64_t now);
/* A stored file, for a GET: 0 or HEARTH_ENOTFOUND (no such file, not yet stored, expired). */
int upload__get(const char *id, int64_t now, upload_info_t *out);
/* Removes from the index what is to go: slots past their time, files past expiry (now > 0),
 * or every record of owner (owner not NULL). Ids of the files to delete from disk go to
 * ids[0..max) and their number is returned; *more is set when some were left for a later call
 * (they stay in the index). */
size_t upload__take(const char *owner, int64_t now, char (*ids)[UPLOAD_ID_LEN + 1], size_t max,
                    int *more);
/* The owners of stored files, each once (malloc'd strings in a malloc'd array; the caller frees
 * both); NULL with *n 0 when there are none or memory ran out. */
char **upload__owners(size_t *n);
/* Bytes owner holds (stored files and open slots). */
uint64_t upload__used(const char *owner);

/* Record files: "<id>.meta" beside "<id>" (the bytes) and "<id>.part" (an upload under way).
 * Writes info's record to path (atomically: a temporary file renamed); 0 or HEARTH_EIO. */
int upload__write_meta(const char *path, const upload_info_t *info);

#endif
