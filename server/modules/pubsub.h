/* The publish-subscribe engine (XEP-0060) that PEP (pep.c, XEP-0163) runs on every account and a
 * pubsub service would run on its domain: node configurations and their data forms, publish
 * options as preconditions, nodes in memory (item ids in publication order, the newest payload
 * when small, affiliations), access models, and the bytes of items, events and errors. It keeps
 * no state of its own and touches neither sessions nor storage: its callers do. */
#ifndef HEARTH_PUBSUB_H
#define HEARTH_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include "hearth/buf.h"
#include "hearth/form.h"
#include "hearth/xml.h"
#include "hearth/xmpp_error.h"
#include "core/strmap.h"
#include "storage/storage.h"

/* Bounds of names a request may carry; past them <not-acceptable/> (with a text). A node name
 * and an item id are keys in storage (STORAGE_NAME_MAX, STORAGE_JID_MAX): an item id may be a
 * JID (XEP-0402 bookmarks use the room's). */
#define PUBSUB_NODE_MAX STORAGE_NAME_MAX
#define PUBSUB_ITEM_ID_MAX STORAGE_JID_MAX
#define PUBSUB_TEXT_MAX 1024  /* pubsub#title, pubsub#type */
#define PUBSUB_GROUPS_MAX 100 /* pubsub#roster_groups_allowed (a roster item's own bound) */

typedef enum {
    PUBSUB_ACCESS_OPEN,
    PUBSUB_ACCESS_PRESENCE,
    PUBSUB_ACCESS_ROSTER,
    PUBSUB_ACCESS_WHITELIST,
    PUBSUB_ACCESS_AUTHORIZE, /* a pubsub service's nodes: the owner approves each subscriber */
} pubsub_access_t;

/* Who may publish to a node (pubsub#publish_model). */
typedef enum {
    PUBSUB_PUBLISH_PUBLISHERS, /* owners and publishers */
    PUBSUB_PUBLISH_SUBSCRIBERS,
    PUBSUB_PUBLISH_OPEN,
} pubsub_publish_model_t;

typedef enum {
    PUBSUB_LAST_NEVER,
    PUBSUB_LAST_ON_SUB,
    PUBSUB_LAST_ON_SUB_AND_PRESENCE,
} pubsub_send_last_t;

/* A node's configuration (the pubsub#node_config fields it supports). */
typedef struct pubsub_config {
    pubsub_access_t access;
    size_t max_items;  /* 1..the service's most; with max_is_max the most itself */
    int max_is_max;    /* configured as 'max': follows the service's most */
    int persist_items; /* items kept in storage (else only the newest, in memory) */
    int deliver_payloads;
    int deliver_notifications;
    int notify_retract; /* also: a purge notifies */
    int notify_delete;
    int notify_config;
    pubsub_send_last_t send_last;
    pubsub_publish_model_t publish_model;
    char *title;   /* malloc'd, NULL when none */
    char *type;    /* pubsub#type, malloc'd, NULL when none */
    char **groups; /* pubsub#roster_groups_allowed, malloc'd */
    size_t ngroups;
} pubsub_config_t;

/* What the service is: its defaults and bounds. */
typedef struct pubsub_service {
    size_t max_items; /* the most items a node keeps ('max') */
    pubsub_config_t defaults;
    /* The access and publish models a node may take, as masks of 1 << the enum's value; 0 is
     * what PEP offers (XEP-0163 §2.2: four access models, one publisher). */
    unsigned access_models, publish_models;
} pubsub_service_t;

/* An error reply: the stanza condition, the XEP's application condition (in
 * HEARTH_NS_PUBSUB_ERRORS, NULL when none; for "unsupported" the feature), and a text. */
typedef struct pubsub_err {
    hearth_stanza_error_t cond;
    const char *app;
    const char *feature;
    const char *text;
} pubsub_err_t;

/* Sets *e and returns -1, so that a check reads "return pubsub_fail(e, ...)". */
int pubsub_fail(pubsub_err_t *e, hearth_stanza_error_t cond, const char *app, const char *text);
/* What an error says, for a log line or another error's text: its text, else its
 * application-specific condition, else the stanza error's name. */
const char *pubsub_err_text(const pubsub_err_t *e);
int pubsub_unsupported(pubsub_err_t *e, const char *feature);
/* The <error/> of an error reply, as RFC 6120 §8.3.2 orders it: condition, text, application
 * condition. */
int pubsub_error_write(hearth_buf_t *out, const pubsub_err_t *e) HEARTH_MUST_CHECK;

/* ---- configurations ---- */

/* A deep copy (dst's old contents are not freed); 0 or HEARTH_ENOMEM (dst then empty). */
int pubsub_config_copy(pubsub_config_t *dst, const pubsub_config_t *src) HEARTH_MUST_CHECK;
void pubsub_config_clear(pubsub_config_t *c);
/* The items a node keeps under c. */
size_t pubsub_config_max_items(const pubsub_config_t *c, const pubsub_service_t *svc);

/* Which FORM_TYPE a submitted form must carry: a node configuration (create, configure) or
 * publish options. */
typedef enum { PUBSUB_FORM_CONFIG, PUBSUB_FORM_PUBLISH_OPTIONS } pubsub_form_kind_t;

/* Applies the submitted data form x onto c (which holds the configuration it starts from). A
 * form that is no data form, is not of type submit or has another FORM_TYPE (none is taken as
 * the one expected) is a bad request; a value the service does not take (an access model it
 * lacks, a max_items past its most) is not acceptable. Fields it does not know are ignored in a
 * configuration (a client may send back fields of another service's form) and refused in publish
 * options (§7.1.5: conflict, precondition-not-met). On failure c may be half changed: apply to a
 * copy. */
int pubsub_config_apply(pubsub_config_t *c, const pubsub_service_t *svc, hearth_arena_t *a,
                        const hearth_xml_node_t *x, pubsub_form_kind_t kind, pubsub_err_t *e);
/* §7.1.5: whether node configuration c meets every precondition of publish options x (already
 * accepted by pubsub_config_apply): 0, or -1 with conflict / precondition-not-met in *e. */
int pubsub_config_check(const pubsub_config_t *c, const pubsub_service_t *svc, hearth_arena_t *a,
                        const hearth_xml_node_t *x, pubsub_err_t *e);
/* c as a data form of type t (HEARTH_FORM_FORM for the owner, HEARTH_FORM_RESULT in a
 * configuration event, HEARTH_FORM_SUBMIT to store it), the last child of parent. A form to fill
 * in offers the models svc has (pubsub_config_form: PEP's). */
hearth_xml_node_t *pubsub_config_form(hearth_arena_t *a, hearth_xml_node_t *parent,
                                      const pubsub_config_t *c, hearth_form_type_t t);
hearth_xml_node_t *pubsub_config_form_of(hearth_arena_t *a, hearth_xml_node_t *parent,
                                         const pubsub_config_t *c, const pubsub_service_t *svc,
                                         hearth_form_type_t t);
const char *pubsub_access_name(pubsub_access_t m);
/* c as stored (a submit form, serialised, malloc'd) and back (from svc's defaults). */
char *pubsub_config_store(const pubsub_config_t *c);
int pubsub_config_load(pubsub_config_t *c, const pubsub_service_t *svc, const char *stored);

/* ---- nodes in memory ---- */

typedef enum {
    PUBSUB_AFF_NONE,
    PUBSUB_AFF_OWNER,
    PUBSUB_AFF_MEMBER,
    PUBSUB_AFF_OUTCAST,
    PUBSUB_AFF_PUBLISHER,    /* a pubsub service's nodes only */
    PUBSUB_AFF_PUBLISH_ONLY, /* publishes and retracts, never sees the items */
} pubsub_aff_t;
pubsub_aff_t pubsub_aff_parse(const char *s); /* PUBSUB_AFF_NONE for what is unknown */
const char *pubsub_aff_name(pubsub_aff_t a);

typedef struct pubsub_item_meta {
    char *id;
    size_t size; /* payload bytes */
    int64_t stamp_ms;
} pubsub_item_meta_t;

typedef struct pubsub_node {
    char *name;
    pubsub_config_t config;
    pubsub_item_meta_t *items; /* publication order, oldest first */
    size_t nitems, cap;
    size_t bytes;       /* payload bytes of its items */
    char *last_payload; /* the newest item's payload when at hand (malloc'd), else NULL */
    strmap_t affs;      /* bare JID -> (void *)(uintptr_t)pubsub_aff_t: members and outcasts */
} pubsub_node_t;

/* A node named name with configuration c (taken over; c is emptied). NULL on ENOMEM. */
pubsub_node_t *pubsub_node_new(const char *name, pubsub_config_t *c);
void pubsub_node_free(pubsub_node_t *n);
/* The index of item id in n->items, or -1. */
long pubsub_node_find(const pubsub_node_t *n, const char *id);
/* Appends an item as the newest (one with its id is removed first); payload (copied, NULL when
 * not at hand) becomes last_payload. 0 or HEARTH_ENOMEM (n unchanged). */
int pubsub_node_push(pubsub_node_t *n, const char *id, size_t size, int64_t stamp_ms,
                     const char *payload);
/* Removes item i (last_payload goes when it was the newest). */
void pubsub_node_remove(pubsub_node_t *n, size_t i);
/* Keeps the newest keep items. */
void pubsub_node_trim(pubsub_node_t *n, size_t keep);
/* The payload bytes of the oldest items a push of id would drop under keep (the item id itself
 * not counted: it is replaced, not dropped). */
size_t pubsub_node_dropped_bytes(const pubsub_node_t *n, const char *id, size_t keep);
pubsub_aff_t pubsub_node_aff(const pubsub_node_t *n, const char *bare);

/* Who asks, as the access models see it. */
typedef struct pubsub_who {
    int owner;           /* the node's owner (PEP: the account itself) */
    int presence_sub;    /* the owner's roster gives it a subscription from or both */
    char *const *groups; /* the roster groups the owner put it in */
    size_t ngroups;
    pubsub_aff_t aff;
    int subscribed; /* holds an approved subscription (access model authorize) */
} pubsub_who_t;

/* Whether who may retrieve n's items (and so get its notifications): 0, or -1 with the error
 * of §6.5.9 in *e. */
int pubsub_access(const pubsub_node_t *n, const pubsub_who_t *who, pubsub_err_t *e);

/* ---- bytes ---- */

/* <item id='id'>payload</item> (payload NULL: without it). */
int pubsub_write_item(hearth_buf_t *b, const char *id, const char *payload) HEARTH_MUST_CHECK;
/* The start of a notification <message from type='headline' id><event xmlns=#event>; the caller
 * writes the event's child and ends it with pubsub_write_event_end. stamp_ms > 0 adds a delay
 * (XEP-0203) after the event: the last published item sent later. */
int pubsub_write_event_start(hearth_buf_t *b, const char *from, const char *id) HEARTH_MUST_CHECK;
int pubsub_write_event_end(hearth_buf_t *b, int64_t stamp_ms,
                           const char *delay_from) HEARTH_MUST_CHECK;
/* The one payload element of item, serialised with its namespace (so it stands anywhere) into
 * *out (malloc'd) and its bytes into *size: 0, or -1 with payload-required, invalid-payload or
 * (past max bytes) payload-too-big in *e. */
int pubsub_item_payload(const hearth_xml_node_t *item, size_t max, char **out, size_t *size,
                        pubsub_err_t *e);
/* Whether s is a usable node name or item id (1..max bytes). */
int pubsub_name_ok(const char *s, size_t max);

#endif
