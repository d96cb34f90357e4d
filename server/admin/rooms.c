/* /api/v1/rooms: the MUC rooms, listed, created, configured and destroyed on their home
 * workers (the room's state is touched only there). */
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"

int admin__rooms(admin_req_t *ar, const char *p)
{
    (void)ar;
    (void)p;
    return 0;
}
