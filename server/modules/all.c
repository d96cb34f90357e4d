/* The modules hearthd runs, in the order they register their hooks and IQ routes. Adding a
 * capability is adding its file and a line here; the core names none of them. */
#include "modules/im.h"

extern const module_t module_upload; /* upload.c */

const module_t *const modules__all[] = {
    &module_core,   &module_roster,    &module_presence, &module_message, &module_blocking,
    &module_last,   &module_register,  &module_misc,     &module_vcard,   &module_private,
    &module_mam,    &module_muc,       &module_carbons,  &module_caps,    &module_pep,
    &module_avatar, &module_bookmarks, &module_upload,   &module_adhoc,   &module_pubsub_svc,
    NULL,
};
