/* The administration listener (admin.bind:admin.port, and admin.https_port with the server's
 * certificate): the REST API under /api/v1/, /metrics, and the first-run setup. What main.c
 * calls; the rest is internal to server/admin/. */
#ifndef HEARTH_ADMIN_H
#define HEARTH_ADMIN_H

#include "core/server.h"
#include "net/http.h"

/* At start-up, before the workers run: settings, the route table, the local API key
 * (<data-dir>/api.key) and, while no administrator exists, the setup token
 * (<data-dir>/setup.token). Nothing when neither admin port is on. */
int admin__init(server_t *srv) HEARTH_MUST_CHECK;
http_site_t *admin__site(void);
/* Per worker, before it runs: the timer that samples the console dashboard's history. */
int admin__worker_init(worker_t *w) HEARTH_MUST_CHECK;
/* Once listening: says where the console is, and the setup token when there is one. */
void admin__started(server_t *srv, int port, int https_port);
/* After the workers stopped: removes <data-dir>/api.key, frees the routes. */
void admin__free(server_t *srv);

#endif
