/* Placeholder: the message archive (XEP-0313) is filled in by its own work. */
#include "modules/im.h"

void mam__incoming(worker_t *w, user_t *u, const inbox_msg_t *m) {}

void mam__outgoing(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena, const char *to) {}

void mam__user_free(user_t *u) {}

const module_t module_mam = {.name = "mam"};
