#!/usr/bin/python3
"""Summarises bench/run_muc_compare.sh results (one JSON object a line): medians per server and
offered rate with p99 and server CPU per delivery of each run, and the ratios of those medians:
hearthd/hearthd-before (a second build in the same session), hearthd/Prosody, hearthd/ejabberd,
hearthd-before/Prosody and hearthd-before/ejabberd, those whose servers ran."""
import json
import statistics
import sys
from collections import defaultdict

KEYS = [('deliveries_per_s', 'deliv/s', '%.0f'), ('p50_ms', 'p50 ms', '%.1f'), ('p99_ms', 'p99 ms', '%.1f'),
        ('server_rss_kib', 'RSS KiB', '%.0f'), ('server_us_per_delivery', 'srv CPU us/deliv', '%.1f'),
        ('server_cpu_s', 'srv CPU s', '%.2f'),
        ('client_cpu_s', 'cli CPU s', '%.2f'), ('login_s', 'login s', '%.1f'), ('join_s', 'join s', '%.1f')]

# (numerator, denominator) of the ratios printed, when both ran
PAIRS = [('hearthd', 'hearthd-before'), ('hearthd', 'prosody'), ('hearthd', 'ejabberd'),
         ('hearthd-before', 'prosody'), ('hearthd-before', 'ejabberd')]


def main():
    runs = defaultdict(list)
    for line in open(sys.argv[1]):
        if line.strip():
            r = json.loads(line)
            res = r['result']
            if res.get('server_cpu_s') is not None and res.get('delivered'):
                res['server_us_per_delivery'] = 1e6 * res['server_cpu_s'] / res['delivered']
            runs[(r['server'], r['result']['rate_offered'])].append(r['result'])
    med = {}
    print('| server | offered msg/s | runs | delivered | ' + ' | '.join(k[1] for k in KEYS) + ' |')
    print('|' + '---|' * (4 + len(KEYS)))
    for (srv, rate), rs in sorted(runs.items(), key=lambda x: (x[0][1], x[0][0])):
        m = {}
        for k, _, _ in KEYS:
            vals = [r[k] for r in rs if r.get(k) is not None]
            m[k] = statistics.median(vals) if vals else None
        med[(srv, rate)] = m
        full = sum(1 for r in rs if r['delivered'] == r['expected'])
        cells = [(f % m[k]) if m[k] is not None else '-' for k, _, f in KEYS]
        each = ' / '.join('%.0f' % r['p99_ms'] for r in rs)
        cpu_each = ' / '.join('%.1f' % r['server_us_per_delivery'] for r in rs if 'server_us_per_delivery' in r)
        print('| %s | %g | %d (p99 each: %s; srv us/deliv each: %s) | %d/%d complete | %s |'
              % (srv, rate, len(rs), each, cpu_each, full, len(rs), ' | '.join(cells)))
    print()
    for num, den in PAIRS:
        for rate in sorted({rate for _, rate in med}):
            if (num, rate) not in med or (den, rate) not in med:
                continue
            a, b = med[(num, rate)], med[(den, rate)]
            parts = []
            for k, label, _ in KEYS[:6]:
                if a.get(k) is not None and b.get(k):
                    parts.append('%s %.3g' % (label, a[k] / b[k]))
            print('%s/%s at %g msg/s: %s' % (num, den, rate, ', '.join(parts)))


if __name__ == '__main__':
    main()
