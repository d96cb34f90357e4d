/* The hook bus (core/hooks.h): per event a short array of handlers sorted by priority, filled
 * at start-up and only read afterwards, so every worker runs it without a lock. */
#include "core/hooks.h"

#include "hearth/error.h"

typedef struct hook_entry {
    int priority;
    hook_fn fn;
} hook_entry_t;

static hook_entry_t chains[HOOK__COUNT][HOOKS_MAX];
static unsigned counts[HOOK__COUNT];

int hooks__add(hook_id_t id, int priority, hook_fn fn)
{
    if ((unsigned)id >= HOOK__COUNT || !fn)
        return HEARTH_EINVAL;
    if (counts[id] == HOOKS_MAX)
        return HEARTH_ELIMIT;
    /* Insertion keeps the array sorted, higher priority first; equal ones in the order added. */
    unsigned i = counts[id]++;
    while (i > 0 && chains[id][i - 1].priority < priority) {
        chains[id][i] = chains[id][i - 1];
        i--;
    }
    chains[id][i] = (hook_entry_t){priority, fn};
    return 0;
}

int hooks__run(hook_id_t id, hook_args_t *a)
{
    for (unsigned i = 0; i < counts[id]; i++)
        if (chains[id][i].fn(a) == HOOK_STOP)
            return HOOK_STOP;
    return HOOK_CONTINUE;
}

void hooks__clear(void)
{
    for (unsigned i = 0; i < HOOK__COUNT; i++)
        counts[i] = 0;
}
