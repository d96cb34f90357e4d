/* libFuzzer target: JID parsing and preparation never crash, and what parses re-parses equal. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/jid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hearth_jid_t j = HEARTH_JID_INIT, k = HEARTH_JID_INIT;
    const char *reason = NULL;
    if (hearth_jid_parse((const char *)data, size, &j, &reason) == 0) {
        if (hearth_jid_parse(j.full, strlen(j.full), &k, &reason) != 0 || !hearth_jid_equal(&j, &k))
            abort(); /* preparation must be idempotent */
        hearth_jid_clear(&k);
        hearth_jid_clear(&j);
    }
    return 0;
}
