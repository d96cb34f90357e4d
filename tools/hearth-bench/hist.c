/* Latency histograms for hearth-bench: fixed memory (HIST_BUCKETS counters), constant-time
 * adds, quantiles within 3 %, the maximum exact. One per worker and kind, merged at the end. */
#include "bench.h"

static unsigned index_of(uint64_t v)
{
    if (v < 64)
        return (unsigned)v;
    unsigned shift = 63u - (unsigned)__builtin_clzll(v) - 5u; /* v >> shift in [32, 64) */
    unsigned idx = 64u + (shift - 1u) * 32u + (unsigned)((v >> shift) - 32u);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The middle of bucket idx. */
static uint64_t value_of(unsigned idx)
{
    if (idx < 64)
        return idx;
    unsigned shift = (idx - 64u) / 32u + 1u;
    uint64_t m = (idx - 64u) % 32u + 32u;
    return (m << shift) + ((uint64_t)1 << shift) / 2;
}

void hist_add(hist_t *h, uint64_t us)
{
    h->count++;
    h->sum += us;
    if (us > h->max)
        h->max = us;
    h->bucket[index_of(us)]++;
}

void hist_merge(hist_t *into, const hist_t *from)
{
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
}

uint64_t hist_quantile(const hist_t *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
