/* Multi-user chat (XEP-0045) inside hearthd: the service at the MUC domain and its rooms. Every
 * room lives on its home worker (hash of its bare JID) and is touched only there; occupants are
 * reached through the router (their sessions live on their users' home workers). Files:
 * muc.c (entry, service, room table, loading), muc_room.c (presence, messages, invitations),
 * muc_admin.c (roles, affiliations, configuration, destroy), muc_store.c (persistence, logs). */
#ifndef HEARTH_MUC_H
#define HEARTH_MUC_H

#include <stdint.h>

#include "hearth/form.h"

#include "modules/im.h"

/* Limits, each with its policy when hit. */
#define MUC_HISTORY_MAX 100             /* messages kept per room; the oldest is dropped */
#define MUC_HISTORY_BYTES (1024 * 1024) /* and bytes: large messages cannot pin 25 MiB */
#define MUC_HISTORY_DEFAULT 20          /* muc#maxhistoryfetch of a new room */
#define MUC_SUBJECT_MAX 1024            /* longer subjects: not-acceptable */
#define MUC_NICK_MAX 128                /* longer nicks: jid-malformed (bytes, prepared) */
#define MUC_TEXT_MAX 1024               /* config text fields: longer is not-acceptable */
#define MUC_JOIN_BURST 200              /* join attempts per room in a burst ... */
#define MUC_JOIN_PER_SEC 100    /* ... refilled at this rate; past it: resource-constraint */
#define MUC_PENDING_MAX 1000    /* stanzas waiting for a room to load; more: resource-constraint */
#define MUC_FORM_FIELDS_MAX 200 /* elements in a config form's <x/>; more: not-acceptable */
/* Invitations and declines in one message to a room: each becomes a message of its own (with
 * the room's password twice when it has one), all for the same write when they name the same
 * address. More: not-acceptable, and none is sent. */
#define MUC_INVITES_MAX 20
#define MUC_AFF_MAX 10000 /* affiliations per room; more: resource-constraint */
/* ... and their bytes as the lists that show them hold them (JID, reserved nick, reason and
 * markup each): the admin lists (§9.5, §10.5), the configuration form's owner and admin fields
 * and disco#info's contact JIDs always fit in the output bound (CONN_MAX_OUTQ). A change past it
 * gets resource-constraint and changes nothing; a change that shrinks them is always taken. */
#define MUC_AFF_BYTES (1024 * 1024)
#define MUC_VOICE_GAP_MS 10000 /* ms between one's voice requests; sooner: resource-constraint */
/* What an occupant's presence carries (show, status, caps ...: up to the stanza limit) is kept
 * and repeated up to this many bytes; past it, show, priority and the first status (its text cut
 * to MUC_STATUS_KEEP) go first, then the other children in their order while they fit. */
#define MUC_PRESENCE_KEEP 4096
#define MUC_STATUS_KEEP 1024
/* Every occupant is counted for at least this much payload: past muc.max_join_size, a presence
 * update keeps only show, priority and a status cut to fit here, and so never needs refusing. */
#define MUC_PRESENCE_MIN 256
/* The occupants' presences as a newcomer gets them in its join sequence (§7.2.3), its address
 * included on each, are bounded by muc.max_join_size (at most 1.875 MiB): a join past it gets
 * service-unavailable (the room is full, §7.2.10), but an admin's or owner's, which may take a
 * sixteenth more (MUC_JOIN_RESERVE). With the history (at most MUC_HISTORY_SEND_BYTES) and the
 * subject, a join sequence stays near 3 MiB, inside the output bound (CONN_MAX_OUTQ). The
 * room's disco#items and role lists hold less than the same. */
#define MUC_JOIN_RESERVE(max) ((max) / 16)
/* The history a newcomer gets, as sent ('to' and delay added): the oldest that would pass it
 * are left out. */
#define MUC_HISTORY_SEND_BYTES (MUC_HISTORY_BYTES + 64 * 1024)
/* The service's room list (disco#items) goes out in pages (XEP-0059, as XEP-0045 §6.3 allows):
 * at most this many rooms in one, whatever <max/> the client asks for (without <set/>, the
 * first page and a <set/> saying how many there are) ... */
#define MUC_ITEMS_PAGE_MAX 1000
/* ... and at most this many bytes of <item/>s: the page ends before the room that would pass
 * it (holding one at least), well inside the output bound (CONN_MAX_OUTQ). */
#define MUC_ITEMS_PAGE_BYTES (1024 * 1024)

/* The room archive (XEP-0313 on the room's JID), answered from the room's log: a page holds at
 * most MUC_MAM_MAX messages (a larger <max/> is served as this many), MUC_MAM_DEFAULT when the
 * client names none, and at most MUC_MAM_PAGE_BYTES of stored messages (the page ends early,
 * holding one at least, and is then not complete): inside the output bound (CONN_MAX_OUTQ). */
#define MUC_MAM_MAX 250
#define MUC_MAM_DEFAULT 50
#define MUC_MAM_PAGE_BYTES (1024u * 1024)
/* A moderation's reason (XEP-0425): longer is not-acceptable. */
#define MUC_REASON_MAX 1024

/* The storage log of a room's messages: its history and its archive (muc_store.c). */
#define MUC_KIND_LOG "muc.log"
/* The storage documents of persistent rooms, by room JID (muc_store.c). */
#define MUC_KIND_ROOM "muc.room"

/* Namespaces only rooms use. */
#define MUC_NS_OCCUPANT_ID "urn:xmpp:occupant-id:0" /* XEP-0421 */
#define MUC_NS_MODERATE "urn:xmpp:message-moderate:1"
#define MUC_NS_RETRACT "urn:xmpp:message-retract:1"
/* XEP-0425 before 0.3 (slixmpp 1.8 asks so): a moderation fastened to the message. */
#define MUC_NS_MODERATE0 "urn:xmpp:message-moderate:0"
#define MUC_NS_RETRACT0 "urn:xmpp:message-retract:0"
#define MUC_NS_FASTEN "urn:xmpp:fasten:0"
/* An occupant id: hex of the first bytes of an HMAC-SHA-256 (muc__occupant_id). */
#define MUC_OCCID_BYTES 16
#define MUC_OCCID_LEN (2 * MUC_OCCID_BYTES)

typedef enum { ROLE_NONE, ROLE_VISITOR, ROLE_PARTICIPANT, ROLE_MODERATOR } muc_role_t;
typedef enum { AFF_OUTCAST, AFF_NONE, AFF_MEMBER, AFF_ADMIN, AFF_OWNER } muc_aff_t;
typedef enum { PM_ANYONE, PM_PARTICIPANTS, PM_MODERATORS, PM_NONE } muc_pm_t;

/* Role bit masks for presencebroadcast and getmemberlist. */
#define ROLEMASK(r) (1u << (r))
#define ROLEMASK_ALL                                                                               \
    (ROLEMASK(ROLE_VISITOR) | ROLEMASK(ROLE_PARTICIPANT) | ROLEMASK(ROLE_MODERATOR))

/* XEP-0059 paging asked of a list. Rooms are paged in the order of their JIDs, and <after/> or
 * <before/> name a place in that order: a room gone between two pages does not break paging. */
typedef struct muc_rsm {
    int given;    /* the query carried <set/>: the answer carries one too */
    size_t max;   /* rooms in the page, <= MUC_ITEMS_PAGE_MAX */
    char *after;  /* the page starts after this JID; NULL: at the first room */
    char *before; /* the page ends before this JID, "" at the end; NULL: paging forwards */
} muc_rsm_t;

typedef struct muc_config {
    char *name, *desc, *lang, *secret, *pubsub;
    int logging, changesubject, allowinvites, publicroom, persistent, moderated, membersonly;
    int passwordprotected, whois_anyone;
    int mam; /* muc#roomconfig_enablearchiving: a persistent room keeps an archive (default) */
    muc_pm_t allowpm;
    unsigned maxusers;                         /* 0 = no limit */
    unsigned presencebroadcast, getmemberlist; /* ROLEMASK bits */
    unsigned maxhistory;
    int reservednick, canchangenick, registration; /* Openfire's x-muc#roomconfig_* */
} muc_config_t;

typedef struct muc_affiliation {
    muc_aff_t aff;
    char *nick;   /* reserved nickname, or NULL */
    char *reason; /* or NULL */
} muc_affiliation_t;

typedef struct muc_occupant {
    struct muc_occupant *next;
    char *jid;   /* real full JID */
    char *bare;  /* real bare JID */
    char *nick;  /* prepared nickname */
    char *ojid;  /* occupant JID: room/nick */
    char *inner; /* the children of its last presence (show, status, caps ...), serialised,
                  * at most MUC_PRESENCE_KEEP bytes */
    size_t cost; /* its presence as a newcomer gets it, counted in the room's occ_bytes */
    muc_role_t role;
    int64_t voice_req_ms;          /* when it last asked for voice (§7.13), 0: never */
    char occid[MUC_OCCID_LEN + 1]; /* XEP-0421: stable per room and real bare JID */
} muc_occupant_t;

typedef struct muc_hist {
    char *xml; /* the groupchat message as broadcast (from the occupant JID, no 'to') */
    size_t len;
    char *sid;  /* its stanza-id (the archive's id), or NULL (read from an older document) */
    int logged; /* it is in the room's log: the document need not keep it */
    int64_t stamp_ms;
} muc_hist_t;

typedef struct muc_pending {
    struct muc_pending *next;
    inbox_msg_t m; /* a copy: strings and bytes owned here */
} muc_pending_t;

typedef enum { ROOM_LOADING, ROOM_READY } muc_room_state_t;

typedef struct muc_room {
    char *jid; /* bare room JID, the key */
    muc_room_state_t state;
    int exists; /* 0: nothing stored nor created (a shell while stanzas are handled) */
    int locked; /* created, not yet configured (status 201) */
    muc_config_t cfg;
    strmap_t affs;    /* bare JID -> muc_affiliation_t * */
    size_t aff_bytes; /* their size as listed (muc__aff_set keeps it), <= MUC_AFF_BYTES unless
                       * stored under older limits */
    muc_occupant_t *occupants;
    unsigned noccupants;
    size_t occ_bytes;   /* their costs: <= muc.max_join_size and its MUC_JOIN_RESERVE */
    strmap_t by_nick;   /* nick -> muc_occupant_t * */
    strmap_t by_jid;    /* real full JID -> muc_occupant_t * */
    char *subject;      /* NULL: none set */
    char *subject_nick; /* who set it, NULL: the room */
    muc_hist_t hist[MUC_HISTORY_MAX];
    unsigned hist_start, hist_len;
    size_t hist_bytes; /* bounded by MUC_HISTORY_BYTES: the oldest go first */
    int hist_dirty;    /* history added since the stored document was written */
    /* The creator of a room not stored (yet): counted in its muc.max_rooms_per_user until the
     * room is stored (then storage counts its owners) or freed. NULL: not counted. */
    char *creator;
    char *cap_ok_for;            /* the bare JID whose room count was just checked (creation) */
    int cap_full;                /* ... and whether it was at muc.max_rooms_per_user */
    const inbox_msg_t *handling; /* the routed stanza being handled (muc.c) */
    double join_tokens;
    int64_t join_stamp_ms;
    muc_pending_t *pending_head, *pending_tail;
    unsigned npending;
    int64_t next_sid;
    char *avatar; /* XEP-0486: the SHA-1s of its vCard's photos, space-separated, or NULL */
    char *vcard;  /* a temporary room's vCard, serialised (a persistent room's is stored) */
} muc_room_t;

/* muc.c */
/* Rooms nobody is in leave memory: a stored room is read back whole (configuration,
 * affiliations, subject, history) before the stanza that needs it is handled. */
muc_room_t *muc__room_get(worker_t *w, const char *jid);
muc_room_t *muc__room_new(worker_t *w, const char *jid); /* a shell: exists = 0, READY */
/* Runs fn(w, r, arg) on room jid's home worker w (the caller is there) once the room is ready:
 * now, or after it is read from storage (r->exists 0: there is no such room; fn may create it).
 * fail(w, arg) instead when it cannot be (memory, the room failed to load, shutdown). What the
 * room sends in fn leaves as one unit per worker. The admin API's way into a room. */
typedef void (*muc_room_fn)(worker_t *w, muc_room_t *r, void *arg);
void muc__room_call(worker_t *w, const char *jid, muc_room_fn fn,
                    void (*fail)(worker_t *w, void *arg), void *arg);
/* fn(w, r, arg) for every room in w's memory that exists and is ready (fn changes nothing). */
void muc__rooms_foreach(worker_t *w, muc_room_fn fn, void *arg);
/* Frees r (occupants are not told: callers have done that) and forgets it. */
void muc__room_free(worker_t *w, muc_room_t *r);
/* Frees r when it has no reason to stay in memory (no occupant, not stored, not loading). */
void muc__room_maybe_free(worker_t *w, muc_room_t *r);
/* Public rooms as seen by disco#items of the service (a short mutex-guarded directory). */
void muc__directory_set(muc_room_t *r); /* after any change of name, publicroom, existence */
void muc__directory_remove(const char *jid);
void muc__config_defaults(muc_config_t *c);
/* What a room created now starts with: the defaults and the muc.default_* settings. */
void muc__config_new_room(worker_t *w, muc_config_t *c);
/* Loading failed: queued stanzas get internal-server-error, the room is forgotten. */
void muc__room_failed(worker_t *w, muc_room_t *r);
/* Replies to a disco#items of the service: the page rsm asks for of the directory merged with
 * n stored public rooms. */
void muc__service_items_reply(worker_t *w, const char *to, const char *id, const muc_rsm_t *rsm,
                              const char **jids, const char **names, size_t n);
void muc__config_free(muc_config_t *c);
const char *muc__domain(worker_t *w);
/* Room creation under muc.max_rooms_per_user: 0 when creator may create r now (the join goes
 * on); 1 when the join was queued while storage counts creator's rooms (it runs again then);
 * -1 when creator is at the limit. */
int muc__create_check(worker_t *w, muc_room_t *r, const char *creator);
void muc__creator_set(muc_room_t *r, const char *bare); /* counts r for bare (NULL: stop) */
/* An account is gone (INBOX_MUC_FORGET on every worker): its JID loses every affiliation in
 * the rooms loaded here (stored rooms lost their rows with the account). */
void muc__forget_jid(worker_t *w, const char *bare);
/* A room without an owner: its admins become owners; with none, the room is destroyed. */
void muc__ownerless(worker_t *w, muc_room_t *r);

/* muc_room.c: stanzas for a ready room (r->exists may be 0). st was routed from `from` (a real
 * full JID) to `to` (the prepared occupant or room JID; nick is NULL for the room). */
void muc__room_presence(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                        const char *from, const char *nick, int nick_modified);
void muc__room_message(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                       const char *from, const char *nick);
void muc__room_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                  const char *from, const char *nick);
/* Removes o and tells everyone (unavailable with codes; extra is XML inside <item/>, e.g. an
 * <actor/> and <reason/>; inner: children of the unavailable presence). Frees o. */
void muc__occupant_remove(worker_t *w, muc_room_t *r, muc_occupant_t *o, const int *codes,
                          int ncodes, const char *item_extra, const char *inner);
/* Broadcasts o's current presence (role or affiliation changed), with codes and item extra. */
void muc__occupant_broadcast(worker_t *w, muc_room_t *r, muc_occupant_t *o, const int *codes,
                             int ncodes, const char *item_extra);
muc_aff_t muc__aff_of(const muc_room_t *r, const char *bare);
muc_role_t muc__default_role(const muc_room_t *r, muc_aff_t aff);
const char *muc__role_name(muc_role_t r);
const char *muc__aff_name(muc_aff_t a);
int muc__role_parse(const char *s, muc_role_t *out);
int muc__aff_parse(const char *s, muc_aff_t *out);
muc_occupant_t *muc__occupant_by_jid(const muc_room_t *r, const char *jid);
/* Sends a message from the room to every occupant: <message from=room type=groupchat> with a
 * muc#user <x/> holding status codes (configuration changes). */
void muc__room_notice(worker_t *w, muc_room_t *r, const int *codes, int ncodes);
/* The service shuts down: every occupant gets its own unavailable presence (110, 332) and is
 * freed; the others are not told one by one (they all leave together). */
void muc__room_shutdown(worker_t *w, muc_room_t *r);

/* Replies and errors. st is modified in place: 'from' = from, routed to `to`. */
void muc__reply_error(worker_t *w, hearth_xml_node_t *st, hearth_arena_t *a, const char *from,
                      const char *to, hearth_stanza_error_t cond, const char *text);
/* An IQ result (payload may be NULL) for iq from `to`'s point of view. */
void muc__iq_result(worker_t *w, hearth_xml_node_t *iq, hearth_arena_t *a, const char *from,
                    const char *to, hearth_xml_node_t *payload);
/* Routes a stanza node to `to`: presence without 'to' in its bytes (the recipient's worker
 * writes it), messages and IQs with it. */
void muc__send_node(worker_t *w, const char *to, hearth_xml_node_t *st);
/* Routes ready bytes (stanza kind, type) to one real JID. */
/* The JID is in the MUC domain (rooms never send to rooms). */
int muc__is_muc_jid(worker_t *w, const char *to);
void muc__send_bytes(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                     const char *type, hearth_bytes_t *bytes);

/* muc_admin.c */
void muc__admin_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                   const char *from, int set);
void muc__owner_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                   const char *from, int set);
void muc__register_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                      const char *from, int set);
/* Applies a submitted muc#roomconfig form (validated first: nothing changes on error).
 * Returns 0, or the stanza error. changed: status codes to notify (104, 170-173), *nchanged. */
hearth_stanza_error_t muc__config_apply(muc_room_t *r, const hearth_xml_node_t *x,
                                        hearth_arena_t *a, const char *actor_bare,
                                        const char **text, int *changed, int *nchanged);
/* What an owner's submitted form does (§10.2): applied (nothing changes on error: the error,
 * *text naming the field), the room unlocked, occupants' roles and status codes, storage and
 * the directory brought up to date. */
hearth_stanza_error_t muc__config_set(worker_t *w, muc_room_t *r, const hearth_xml_node_t *x,
                                      hearth_arena_t *a, const char *actor_bare, const char **text);
/* A service administrator's affiliation change (§9, §10 without an actor): the last owner
 * kept (conflict), the lists' bounds (resource-constraint), occupants told, storage updated. */
hearth_stanza_error_t muc__aff_change(worker_t *w, muc_room_t *r, const char *bare, muc_aff_t aff,
                                      const char *reason, const char **text);
/* The configuration form (type='form') with the room's current values. */
hearth_xml_node_t *muc__config_form(const muc_room_t *r, hearth_arena_t *a);
/* Sets bare's affiliation (AFF_NONE removes it) keeping nick/reason when given NULL ("" clears
 * them). Only MUC_AFF_MAX is checked here: callers that grow the lists check MUC_AFF_BYTES first
 * (a room read back from storage takes what was stored). */
int muc__aff_set(muc_room_t *r, const char *bare, muc_aff_t aff, const char *nick,
                 const char *reason);
/* What the same muc__aff_set would change: *dbytes in r->aff_bytes, *dcount in affiliations. */
void muc__aff_delta(const muc_room_t *r, const char *bare, muc_aff_t aff, const char *nick,
                    const char *reason, long long *dbytes, long *dcount);
/* Whether r's affiliations may grow by dbytes and dcount (shrinking always may). */
int muc__aff_fits(const muc_room_t *r, long long dbytes, long dcount);
/* Destroys r: every occupant gets unavailable with <destroy/>; storage forgotten; r freed. */
void muc__destroy(worker_t *w, muc_room_t *r, const char *alt, const char *reason,
                  const char *alt_password);
/* A muc#request form (parsed from the message st to the room from `from`): a visitor's
 * voice request (§7.13), forwarded to every moderator as an approval form, or a moderator's
 * submitted approval (§8.6), which grants voice when muc#request_allow is true. */
void muc__voice_form(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                     const char *from, const hearth_form_t *form);
/* Applies an affiliation change to occupants of that bare JID (roles, removal 301/321). */
void muc__aff_effects(worker_t *w, muc_room_t *r, const char *bare, const char *actor_nick,
                      const char *reason);

/* muc_store.c */
/* Starts loading jid from storage into the LOADING room r; muc__room_loaded runs when done. */
void muc__store_load(worker_t *w, muc_room_t *r);
void muc__room_loaded(worker_t *w, muc_room_t *r);
void muc__store_save(worker_t *w, muc_room_t *r);   /* when persistent: insert or replace */
void muc__store_delete(worker_t *w, muc_room_t *r); /* the doc and its log */
/* Appends a message to r's log (the archive) under its stanza-id sid, by author (the occupant
 * JID, NULL for the room) whose real bare JID is origin (or NULL). */
void muc__store_log(worker_t *w, muc_room_t *r, const char *xml, int64_t stamp_ms, const char *sid,
                    const char *author, const char *origin);
/* Whether r writes its messages to its log: when it logs (muc#roomconfig_enablelogging) or
 * keeps an archive. Else its history lives in its document. */
int muc__room_logs(const muc_room_t *r);
/* Whether r keeps an archive that may be queried: archiving on and the room persistent. */
int muc__archiving(const muc_room_t *r);
/* disco#items of the service: stored rooms (async), merged with the directory; replies to iq
 * with the page rsm asks for (copied). */
void muc__store_list_public(worker_t *w, const char *from, const char *id, const muc_rsm_t *rsm);
/* A stored room document's configuration (out: muc__config_free), for lists of rooms not in
 * memory; HEARTH_EINVAL when it does not parse. */
int muc__room_doc_config(const char *jid, const char *xml, muc_config_t *out);
/* Room documents: serialise and parse (shared by load/save). */
char *muc__room_doc(const muc_room_t *r); /* malloc'd XML */
int muc__room_doc_parse(muc_room_t *r, const char *xml);
/* Adds a history entry (bytes as broadcast, its stanza-id sid or NULL) and, when log is set,
 * logs it when the room logs (author, origin: as muc__store_log); logged: it was read from the
 * log. The archive holds only what was said while the room logged; the history holds all. */
void muc__history_add(worker_t *w, muc_room_t *r, const char *xml, size_t len, int64_t stamp_ms,
                      const char *sid, int log, const char *author, const char *origin, int logged);
/* Puts the history in time order (read from the document, then the log). */
void muc__history_sort(muc_room_t *r);

/* muc_vcard.c: a room's vCard and avatar (XEP-0486). */
void muc__vcard_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                   const char *from, int set);
void muc__vcard_forget(muc_room_t *r);              /* frees the vCard and hashes in memory */
void muc__vcard_save(worker_t *w, muc_room_t *r);   /* made persistent: the vCard to storage */
void muc__vcard_delete(worker_t *w, muc_room_t *r); /* from storage and memory */

/* muc_mam.c: the room archive (XEP-0313), moderation (XEP-0425), occupant ids (XEP-0421). */
/* A MAM query (iq get: its form; set: a page) to the room's bare JID. */
void muc__mam_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                 const char *from, int set);
/* A moderator's retraction of a message by its stanza-id (iq set, either version). */
void muc__moderate_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                      const char *from, hearth_xml_node_t *q);
/* r's occupant id of the real bare JID bare into out (MUC_OCCID_LEN + 1 bytes). */
void muc__occupant_id(worker_t *w, const char *room, const char *bare, char *out);

#endif
