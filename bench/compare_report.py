#!/usr/bin/python3
"""The tables, JSON and chart of bench/compare.sh: reads OUT/<set>/<server>/<step>.json (hearth-bench's
figures with the server's CPU and memory around the run), derives per scenario each server's
figures and hearthd's ratio to the best peer, and writes OUT/results.json, OUT/report.md (also
printed) and OUT/compare.png (gnuplot, when installed).

    compare_report.py OUT VERSIONS CHAT_SECONDS"""

import glob
import json
import os
import shutil
import subprocess
import sys

SERVERS = ('hearthd', 'prosody', 'ejabberd')
# the chart's bar colour per module set
SET_COLOURS = {'minimal': 0x4477aa, 'full': 0xcc6677, 'pgsql': 0x228833}


def load(out):
    runs = {}
    for path in glob.glob(os.path.join(out, '*', '*', '*.json')):
        set_, server, name = path[len(out):].strip('/').split('/')
        runs.setdefault(set_, {}).setdefault(server, {})[name[:-5]] = json.load(open(path))
    return runs


def per_login_cpu_ms(r):
    n = r.get('sessions_established') or 0
    return r['server_cpu_s'] * 1000 / n if n else None


def metrics(steps, chat_seconds, sustained_p99=1000):
    """One server's figures in one set: name -> (value, unit, better) with better 'low' or 'high'."""
    m = {}

    def put(name, value, unit, better):
        if value is not None:
            m[name] = (value, unit, better)

    login_cpu = None
    for name, r in sorted(steps.items()):
        if name == 'register' or name.startswith('login-'):
            what = 'registration storm' if name == 'register' else 'login storm ' + name[6:]
            put(what + ': logins/s', r.get('login_rate'), '/s', 'high')
            put(what + ': server CPU per login', per_login_cpu_ms(r), 'ms', 'low')
            if r.get('sessions_failed'):
                put(what + ': failed', r['sessions_failed'], '', 'low')
            if name.startswith('login-SCRAM'):
                login_cpu = per_login_cpu_ms(r)
    for name, r in steps.items():
        if name.startswith('idle-'):
            n = r.get('sessions_established') or 0
            rss = r['server_rss_kib']
            label = ('idle %s sessions%s' % (name.split('-')[-1], ', TLS' if '-tls-' in name else ''))
            if n and rss.get('held'):
                put(label + ': server memory per session, held', (rss['held'] - rss['before']) / n, 'KiB', 'low')
            if n:
                put(label + ': server memory per session, peak', (rss['peak'] - rss['before']) / n, 'KiB', 'low')
            put(label + ': server RSS', rss['peak'] / 1024, 'MiB', 'low')
            if r.get('sessions_failed') or r.get('sessions_dropped'):
                put(label + ': failed or dropped', r.get('sessions_failed', 0) + r.get('sessions_dropped', 0), '', 'low')
    chats = [(int(k[5:]), r) for k, r in steps.items() if k.startswith('chat-') and k[5:].isdigit()]
    if chats:
        ok = [rate for rate, r in sorted(chats)
              if r.get('exit') == 0 and r.get('messages_lost', 1) == 0 and r.get('messages_errors', 1) == 0
              and r.get('messages_delivered', 0) >= 0.95 * rate * chat_seconds
              and r.get('latency_ms', {}).get('p99', 1e9) <= sustained_p99]
        best = max(ok) if ok else 0
        put('one-to-one: highest rate sustained with zero loss (of those tried)', best, 'msg/s', 'high')
    half = steps.get('chat-half')
    if half and half.get('latency_ms'):
        lat = half['latency_ms']
        rate = half['args'].split('--rate ')[1].split()[0]
        put('one-to-one at %s msg/s: latency p50' % rate, lat['p50'], 'ms', 'low')
        put('one-to-one at %s msg/s: latency p99' % rate, lat['p99'], 'ms', 'low')
        put('one-to-one at %s msg/s: latency max' % rate, lat['max'], 'ms', 'low')
        put('one-to-one at %s msg/s: lost' % rate, half.get('messages_lost'), '', 'low')
        d = half.get('messages_delivered') or 0
        if d and login_cpu is not None:
            cpu = half['server_cpu_s'] - login_cpu / 1000 * (half.get('sessions_established') or 0)
            put('one-to-one at %s msg/s: server CPU per delivered message' % rate, cpu * 1e6 / d, 'µs', 'low')
    # the measured run, or the first when it left rosters incomplete (compare.sh then skips it)
    p = steps.get('presence') or steps.get('presence-setup')
    if p:
        n = p.get('sessions_established') or 0
        put('presence storm: rosters complete', p.get('setup_ready'), 'of %d' % n, 'high')
        if 'presence' in steps and n and p.get('setup_ready') == n and p.get('exit') != 124:
            put('presence storm: logins/s with full rosters', p.get('login_rate'), '/s', 'high')
            put('presence storm: server CPU per login (setup included)', per_login_cpu_ms(p), 'ms', 'low')
            put('presence storm: deliveries lost', p.get('messages_lost'), '', 'low')
            if p.get('latency_ms'):
                put('presence storm: latency p99', p['latency_ms']['p99'], 'ms', 'low')
    u = steps.get('muc')
    if u:
        n = u.get('sessions_established') or 0
        put('groupchat: occupants joined', u.get('setup_ready'), 'of %d' % n, 'high')
        if n and u.get('setup_ready') == n and u.get('exit') != 124:
            put('groupchat: deliveries lost', u.get('messages_lost'), '', 'low')
            if u.get('latency_ms'):
                put('groupchat: latency p50', u['latency_ms']['p50'], 'ms', 'low')
                put('groupchat: latency p99', u['latency_ms']['p99'], 'ms', 'low')
            d = u.get('messages_delivered') or 0
            if d and login_cpu is not None:
                cpu = u['server_cpu_s'] - login_cpu / 1000 * n
                put('groupchat: server CPU per delivery (joins included)', cpu * 1e6 / d, 'µs', 'low')
    return m


def fmt(v):
    if v is None:
        return '-'
    if isinstance(v, float) and abs(v) < 100:
        return '%.2f' % v if abs(v) < 10 else '%.1f' % v
    return '{:,.0f}'.format(v)


def main():
    out, versions, chat_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    runs = load(out)
    after = {}
    for path in glob.glob(os.path.join(out, '*', '*', 'after-burst.json')):
        set_, server = path[len(out):].strip('/').split('/')[:2]
        after.setdefault(set_, {})[server] = json.load(open(path))
    results = {'versions': versions.splitlines(), 'sets': {}}
    lines = ['Versions: ' + '; '.join(versions.splitlines()), '']
    chart = []
    for set_ in ('minimal', 'full', 'pgsql'):
        if set_ not in runs:
            continue
        servers = [s for s in SERVERS if s in runs[set_]]
        table = {s: metrics(runs[set_][s], chat_seconds) for s in servers}
        for s in servers:
            a = after.get(set_, {}).get(s)
            base = runs[set_][s].get('register', {}).get('server_rss_kib', {}).get('after')
            if a:
                table[s]['after the bursts (no session online): server RSS'] = (a['rss_kib'] / 1024, 'MiB', 'low')
                table[s]['after the bursts: server peak RSS (VmHWM)'] = (a['hwm_kib'] / 1024, 'MiB', 'low')
                if base:
                    table[s]['after the bursts: RSS growth since the registrations'] = (
                        (a['rss_kib'] - base) / 1024, 'MiB', 'low')
            db = os.path.join(out, set_, s, 'database.json')
            if os.path.exists(db):
                d = json.load(open(db))
                # evidence that the server stored there, not a figure of merit: the servers
                # stored different numbers of messages (no ratio)
                table[s]['database at the end: size'] = (d['db_bytes'] / 1048576, 'MiB', None)
        names = []
        for s in servers:
            names += [n for n in table[s] if n not in names]
        peers = [s for s in servers if s != 'hearthd']
        rows = []
        lines += ['### Module set: %s' % set_, '',
                  '| scenario: figure | unit | ' + ' | '.join(servers) +
                  (' | hearthd / best peer |' if 'hearthd' in servers and peers else ' |'),
                  '|---|---|' + '---|' * len(servers) + ('---|' if 'hearthd' in servers and peers else '')]
        for n in names:
            unit = next(table[s][n][1] for s in servers if n in table[s])
            better = next(table[s][n][2] for s in servers if n in table[s])
            vals = {s: table[s][n][0] for s in servers if n in table[s]}
            row = {'figure': n, 'unit': unit, 'better': better, 'values': vals}
            cells = [fmt(vals.get(s)) for s in servers]
            ratio = None
            pv = [vals[s] for s in peers if s in vals]
            if 'hearthd' in vals and pv and better is not None:
                best = min(pv) if better == 'low' else max(pv)
                if best:
                    ratio = vals['hearthd'] / best
                    row['best_peer'] = best
                    row['ratio_to_best_peer'] = ratio
                    if unit in ('ms', 'µs', 'KiB', 'MiB', '/s', 'msg/s') and ratio > 0:
                        chart.append((set_, n, ratio))
            if 'hearthd' in servers and peers:
                cells.append('%.2f' % ratio if ratio is not None else '-')
            rows.append(row)
            lines.append('| %s | %s | %s |' % (n, unit, ' | '.join(cells)))
        lines.append('')
        results['sets'][set_] = {'servers': servers, 'figures': rows}
    json.dump(results, open(os.path.join(out, 'results.json'), 'w'), indent=1, ensure_ascii=False)
    report = '\n'.join(lines)
    open(os.path.join(out, 'report.md'), 'w').write(report + '\n')
    print(report)
    if chart and shutil.which('gnuplot'):
        data = os.path.join(out, 'chart.dat')
        with open(data, 'w') as f:
            for i, (set_, n, ratio) in enumerate(chart):
                f.write('%d "%s: %s" %g %d\n' % (i, set_, n.replace('"', "'")[:70], ratio,
                                                  SET_COLOURS.get(set_, 0x888888)))
        script = '''set terminal pngcairo size 1400,%d font ",9"
set output "%s"
set title "hearthd / best peer (below 1: hearthd better for costs and latencies, above 1 better for rates)"
set logscale x 2
set xrange [0.01:100]
set ytics nomirror
set yrange [-1:%d] reverse
set grid xtics
set style fill solid 0.8
set key off
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2
# a bar from parity (1) to the ratio; blue the minimal set, red the full one, green on PostgreSQL
plot "%s" using (1):1:(($3 < 1) ? $3 : 1):(($3 < 1) ? 1 : $3):($1 - 0.4):($1 + 0.4):4:ytic(2) with boxxyerror fc rgb variable
''' % (200 + 22 * len(chart), os.path.join(out, 'compare.png'), len(chart), data)
        open(os.path.join(out, 'chart.gp'), 'w').write(script)
        r = subprocess.run(['gnuplot', os.path.join(out, 'chart.gp')], capture_output=True, text=True)
        if r.returncode:
            print('compare: gnuplot failed: %s' % r.stderr.strip(), file=sys.stderr)
        else:
            print('chart: %s' % os.path.join(out, 'compare.png'))
    print('figures: %s' % os.path.join(out, 'results.json'))


if __name__ == '__main__':
    main()
