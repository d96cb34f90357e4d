/* Placeholder for the IM core's per-user state. */
#include "modules/module.h"

void user__account_deleted(worker_t *w, const char *bare) {}
