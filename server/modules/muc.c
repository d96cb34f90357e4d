/* Placeholder: multi-user chat (XEP-0045) is filled in by its own work. */
#include "modules/im.h"

void muc__deliver(worker_t *w, inbox_msg_t *m)
{
    router__bounce(w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, "group chat is not available yet");
}

const module_t module_muc = {.name = "muc"};
