/* Wire names of the XMPP error conditions and the writer of a stanza's <error/>
 * (include/hearth/xmpp_error.h). */
#include <string.h>

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

int hearth_stanza_error_write(hearth_buf_t *out, hearth_stanza_error_t cond, const char *text)
{
    if (!out)
        return HEARTH_EINVAL;
    size_t start = out->len;
    int rc = hearth_buf_printf(out, "<error type='%s'><%s xmlns='" HEARTH_NS_STANZA_ERRORS "'/>",
                               hearth_stanza_error_type(cond), hearth_stanza_error_name(cond));
    if (text) {
        rc = rc ?: hearth_buf_append_str(out, "<text xmlns='" HEARTH_NS_STANZA_ERRORS "'>");
        /* As the serialiser writes text, so that both forms of an error are the same bytes. */
        rc = rc ?: hearth_buf_append_text_escaped(out, text, strlen(text));
        rc = rc ?: hearth_buf_append_str(out, "</text>");
    }
    rc = rc ?: hearth_buf_append_str(out, "</error>");
    if (rc && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}
