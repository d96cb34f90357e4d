#!/bin/bash
# bench/compare.sh still works: hearthd alone, every module set, every scenario at a few sessions
# (ctest bench/compare-smoke). Checks the script's exit, that every run got its sessions, and the
# shape of results.json and the chart; no figure is compared with a bound (nothing timed).
# Exit 77 (skipped) when a program the script needs is missing; it installs nothing here.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
for p in openssl python3 ss; do
    command -v $p > /dev/null || { echo "skipped: $p is not installed"; exit 77; }
done
[ -x "${HEARTHD:-}" ] && [ -x "${HEARTH_BENCH:-}" ] || { echo "skipped: HEARTHD, HEARTH_BENCH unset (run through ctest)"; exit 77; }
OUT=$(mktemp -d /tmp/compare-smoke-XXXXXX)
# HOLD=3: an idle hold's "held" figure is the last RSS sample taken 1.5 s or more before the
# generator ended; a 1 s hold often ended with none (the figure was missing under load).
trap 'rm -rf "$OUT"' EXIT
# the pgsql set too when PostgreSQL is installed (the script starts its own cluster)
SETS="minimal full"
ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 && command -v psql > /dev/null && SETS="$SETS pgsql"
SETS=$SETS SERVERS=hearthd NO_INSTALL=1 HEARTHD=$HEARTHD BENCH=$HEARTH_BENCH OUT=$OUT SMALL=1 \
    N_LOGIN=20 N_IDLE=20 HOLD=3 N_CHAT=10 CHAT_RATES="20 40" CHAT_SECONDS=1 N_PRES=12 ROSTER=4 \
    PRES_RATE=10 N_MUC=10 ROOM=5 MUC_RATE=5 SECONDS_TRAFFIC=1 DRAIN=1 \
    bash "$HERE/../../bench/compare.sh" > "$OUT/log" 2>&1
rc=$?
[ $rc = 0 ] || { cat "$OUT/log"; echo "compare.sh exited with $rc"; exit 1; }
python3 - "$OUT" $SETS <<'PY' || { cat "$OUT/log"; exit 1; }
import glob, json, os, shutil, sys
out, sets = sys.argv[1], sys.argv[2:]
steps = {'register', 'login-SCRAM-SHA-256', 'login-PLAIN', 'idle-20', 'idle-tls-20', 'chat-20',
         'chat-half', 'presence-setup', 'presence', 'muc'}
for set_ in sets:
    got = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(out, set_, 'hearthd', '*.json'))}
    missing = steps - got
    assert not missing, '%s: no run %s' % (set_, sorted(missing))
    for name in steps:
        r = json.load(open(os.path.join(out, set_, 'hearthd', name + '.json')))
        assert r['exit'] == 0 and r['sessions_failed'] == 0, (set_, name, r)
        assert r['server_rss_kib']['peak'] > 0 and r['server_cpu_s'] >= 0, (set_, name, r)
res = json.load(open(os.path.join(out, 'results.json')))
if 'pgsql' in sets:
    db = json.load(open(os.path.join(out, 'pgsql', 'hearthd', 'database.json')))
    assert db['tables'] > 10 and db['rows'] > 0, ('pgsql: hearthd stored nothing in PostgreSQL', db)
for set_ in sets:
    figs = {f['figure']: f for f in res['sets'][set_]['figures']}
    for want in ('login storm SCRAM-SHA-256: server CPU per login',
                 'idle 20 sessions: server memory per session, held',
                 'idle 20 sessions: server memory per session, peak',
                 'idle 20 sessions, TLS: server memory per session, held',
                 'one-to-one: highest rate sustained with zero loss (of those tried)',
                 'presence storm: logins/s with full rosters', 'groupchat: occupants joined',
                 'after the bursts (no session online): server RSS'):
        assert want in figs, '%s: no figure %r in %s' % (set_, want, sorted(figs))
        assert isinstance(figs[want]['values']['hearthd'], (int, float)), figs[want]
print('compare.sh: sets %s, every scenario, results.json complete' % ' '.join(sets))
PY
# The ratios and the chart need a peer: hearthd's runs copied as a peer's give ratios of 1.
for set_ in $SETS; do cp -r "$OUT/$set_/hearthd" "$OUT/$set_/prosody"; done
python3 "$HERE/../../bench/compare_report.py" "$OUT" "smoke" 1 > "$OUT/report2" 2>&1 \
    || { cat "$OUT/report2"; exit 1; }
python3 - "$OUT" <<'PY' || { cat "$OUT/report2"; exit 1; }
import json, os, shutil, sys
out = sys.argv[1]
res = json.load(open(os.path.join(out, 'results.json')))
ratios = [f.get('ratio_to_best_peer') for s in res['sets'].values() for f in s['figures']
          if f['values'].get('hearthd') and f['better'] is not None]
assert ratios and all(r is not None and abs(r - 1) < 1e-9 for r in ratios), ratios
if shutil.which('gnuplot'):
    png = os.path.join(out, 'compare.png')
    assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n', 'no PNG chart'
print('ratios to a peer and the chart: made')
PY
