/* Wire names of the XMPP error conditions (include/hearth/xmpp_error.h). */
#include "hearth/xmpp_error.h"

const char *hearth_stream_error_name(hearth_stream_error_t e)
{
    switch (e) {
    case HEARTH_STREAM_ERR_NONE:
        break;
#define HEARTH_SE_NAME(id, str)                                                                    \
    case HEARTH_STREAM_ERR_##id:                                                                   \
        return str;
        HEARTH_STREAM_ERROR_MAP(HEARTH_SE_NAME)
#undef HEARTH_SE_NAME
    }
    return "undefined-condition";
}

const char *hearth_stanza_error_name(hearth_stanza_error_t e)
{
    switch (e) {
    case HEARTH_STANZA_ERR_NONE:
        break;
#define HEARTH_STE_NAME(id, str, type)                                                             \
    case HEARTH_STANZA_ERR_##id:                                                                   \
        return str;
        HEARTH_STANZA_ERROR_MAP(HEARTH_STE_NAME)
#undef HEARTH_STE_NAME
    }
    return "undefined-condition";
}

const char *hearth_stanza_error_type(hearth_stanza_error_t e)
{
    switch (e) {
    case HEARTH_STANZA_ERR_NONE:
        break;
#define HEARTH_STE_TYPE(id, str, type)                                                             \
    case HEARTH_STANZA_ERR_##id:                                                                   \
        return type;
        HEARTH_STANZA_ERROR_MAP(HEARTH_STE_TYPE)
#undef HEARTH_STE_TYPE
    }
    return "cancel";
}
