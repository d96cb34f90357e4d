/* The plain TCP transport: bytes as read, bytes as written. TLS, when the protocol above uses
 * it (STARTTLS, direct TLS), is done above, in the stream. */
#include "net/connection.h"

static void tcp_read(connection_t *c, const char *data, size_t len)
{
    connection__deliver(c, data, len);
}

static int tcp_write(connection_t *c, const char *data, size_t len)
{
    return connection__queue_raw(c, data, len);
}

const transport_t transport_tcp = {
    .name = "tcp",
    .read = tcp_read,
    .write = tcp_write,
    .can_move = 1,
};
