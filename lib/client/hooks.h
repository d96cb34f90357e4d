/* Test hooks of the client library (not installed, not exported from libhearth.so): time moved
 * by hand, random numbers and SCRAM nonces fixed, so that scripted tests see exact bytes and
 * exact backoff delays without sleeping. */
#ifndef HEARTH_CLIENT_HOOKS_H
#define HEARTH_CLIENT_HOOKS_H

#include <stdint.h>

#include "hearth/client.h"

/* Stops the context's clock: from now on it moves only by hearth__ctx_advance, so that a test
 * decides exactly which deadlines have passed. */
void hearth__ctx_freeze(hearth_ctx_t *ctx);
/* Moves the context's clock forward by ms: every deadline that falls due fires on the next loop
 * iteration. */
void hearth__ctx_advance(hearth_ctx_t *ctx, uint64_t ms);
/* Seeds the generator behind reconnection jitter (otherwise seeded from OpenSSL). */
void hearth__ctx_seed(hearth_ctx_t *ctx, uint64_t seed);
/* DNS SRV queries of this context go to 127.0.0.1:port (a test's DNS server) instead of the
 * system's resolvers; 0: the system's again. */
void hearth__ctx_set_nameserver(hearth_ctx_t *ctx, int port);
/* Every SCRAM exchange of this context uses this client nonce (NULL: random again). */
void hearth__ctx_fix_nonce(hearth_ctx_t *ctx, const char *nonce);

#endif
