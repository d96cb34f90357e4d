/* Names and messages for the library error codes (include/hearth/error.h). */
#include "hearth/error.h"

const char *hearth_strerror(int err)
{
    switch (err) {
    case HEARTH_OK:
        return "success";
#define HEARTH_ERRNO_MSG(name, num, msg)                                                           \
    case HEARTH_E##name:                                                                           \
        return msg;
        HEARTH_ERRNO_MAP(HEARTH_ERRNO_MSG)
#undef HEARTH_ERRNO_MSG
    }
    return "unknown error";
}

const char *hearth_err_name(int err)
{
    switch (err) {
    case HEARTH_OK:
        return "OK";
#define HEARTH_ERRNO_NAME(name, num, msg)                                                          \
    case HEARTH_E##name:                                                                           \
        return "E" #name;
        HEARTH_ERRNO_MAP(HEARTH_ERRNO_NAME)
#undef HEARTH_ERRNO_NAME
    }
    return "EUNKNOWN";
}
