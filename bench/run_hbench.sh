#!/bin/bash
# hearth-bench against a server started here on loopback: N sessions from one process. For each
# server in SERVERS (hearthd, prosody), fresh from a temporary configuration: the accounts are
# registered in band (a login storm with --register), then a login storm of existing accounts,
# then N sessions held for HOLD seconds, then N sessions with one-to-one messages at CHAT_RATE
# for CHAT_SECONDS. The server's RSS is sampled every 0.5 s during each run; hearth-bench's own
# RSS per session and CPU per login are in its JSON (client.*).
#
#   bench/run_hbench.sh                                 # N=10000, hearthd
#   N=2000 SERVERS="hearthd prosody" OUT=/tmp/hb bench/run_hbench.sh
#   HEARTHD=build-bench/hearthd BENCH=build-bench/hearth-bench TLS=1 bench/run_hbench.sh
#   N=10000 SERVERS=prosody CONCURRENCY=50 bench/run_hbench.sh   # one-threaded: fewer at once
#
# Installs nothing. Needs a built hearthd and hearth-bench (HEARTHD=..., BENCH=...); for prosody
# /usr/bin/prosody, its service stopped, and root (run_as_root). The open-file limit is raised to
# its hard bound here for both sides (hearth-bench raises its own too): 10,000 sessions need
# 10,000 descriptors in each process. Writes $OUT/<server>-<step>.json (hearth-bench's figures
# plus "server_rss_kib" {before, peak}) and prints a table.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
HEARTHD=${HEARTHD:-$HERE/../build/hearthd}
BENCH=${BENCH:-$HERE/../build/hearth-bench}
N=${N:-10000}
HOLD=${HOLD:-30}
CHAT_RATE=${CHAT_RATE:-1000}
CHAT_SECONDS=${CHAT_SECONDS:-20}
STEPS=${STEPS:-"register login idle chat"}
SERVERS=${SERVERS:-hearthd}
TLS=${TLS:-0}                  # 1: STARTTLS (certificate not verified: a throwaway one)
WORKERS=${WORKERS:-2}          # hearthd's server.workers
CONCURRENCY=${CONCURRENCY:-500} # logins negotiating at once (hearth-bench --concurrency)
RAMP=${RAMP:-0}                # logins started per second, 0: no pacing (--ramp)
RUN_TIMEOUT=${RUN_TIMEOUT:-1800}
PROSODY_PORT=${PROSODY_PORT:-15222}
EJABBERD_PORT=${EJABBERD_PORT:-25222}
EJABBERD_DIST_PORT=${EJABBERD_DIST_PORT:-25370}
OUT=${OUT:-$(mktemp -d /tmp/hbench-XXXXXX)}
mkdir -p "$OUT"

die() { echo "run_hbench: $*" >&2; exit 2; }
# shellcheck source=servers.sh source-path=SCRIPTDIR
source "$HERE/servers.sh"

[ -x "$BENCH" ] || die "no hearth-bench at $BENCH"
for s in $SERVERS; do
    case $s in
    hearthd) [ -x "$HEARTHD" ] || die "no hearthd at $HEARTHD";;
    prosody) [ -x /usr/bin/prosody ] || die "prosody not installed";;
    *) die "unknown server $s (hearthd, prosody)";;
    esac
    check_port_free "$s"
done
ulimit -n "$(ulimit -Hn)" || die "cannot raise the open-file limit"
[ "$(ulimit -n)" -gt $((N + 200)) ] || echo "run_hbench: open-file limit $(ulimit -n) is low for N=$N" >&2
install_cleanup

start_hearthd() {  # dir
    launch_hearthd "$1" --set c2s.tls="$([ "$TLS" = 1 ] && echo required || echo optional)"
}

start_prosody() {  # dir
    local d=$1
    mkdir -p "$d/data"
    make_cert "$d" || return 1
    write_prosody_config "$d" "run_hbench.sh: loopback-only load test server" \
        '"roster", "saslauth", "tls", "disco", "register", "ping"'
    cat >> "$d/prosody.cfg.lua" <<EOF
ssl = { certificate = "$d/localhost.crt", key = "$d/localhost.key" }
c2s_require_encryption = $([ "$TLS" = 1 ] && echo true || echo false)
allow_registration = true
min_seconds_between_registrations = 0
authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = 4096
storage = "internal"
VirtualHost "localhost"
EOF
    launch_prosody "$d"
}

rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

run_step() {  # server step dir
    local s=$1 step=$2 d=$3 args rc
    case $step in
    register) args=(--scenario login --register);;
    login) args=(--scenario login);;
    idle) args=(--scenario idle --duration "$HOLD");;
    chat) args=(--scenario chat --rate "$CHAT_RATE" --duration "$CHAT_SECONDS");;
    *) die "unknown step $step";;
    esac
    [ "$TLS" = 1 ] && args+=(--tls --no-verify)
    local before peak=0 r
    before=$(rss_of "$SERVER_PID")
    echo "== $s $step ($(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
    timeout -k 5 "$RUN_TIMEOUT" "$BENCH" --host 127.0.0.1 --port "$PORT" --domain localhost \
        --sessions "$N" --password bench-password --scram-cache "$OUT/$s.scram-cache" \
        --concurrency "$CONCURRENCY" --ramp "$RAMP" --json --quiet "${args[@]}" > "$OUT/$s-$step.raw" 2> "$OUT/$s-$step.log" &
    local bench=$!
    while kill -0 $bench 2>/dev/null; do
        r=$(rss_of "$SERVER_PID")
        [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.5
    done
    wait $bench
    rc=$?
    sed 's/^/   /' "$OUT/$s-$step.log"
    python3 - "$OUT/$s-$step.raw" "$OUT/$s-$step.json" "$s" "$step" "$rc" "$before" "$peak" <<'EOF'
import json, sys
raw, out, server, step, rc, before, peak = sys.argv[1:]
try:
    r = json.load(open(raw))
except ValueError:
    print('   no JSON (exit %s)' % rc); sys.exit(0)
r.update(server=server, step=step, exit=int(rc),
         server_rss_kib={'before': int(before), 'peak': int(peak)})
json.dump(r, open(out, 'w'))
EOF
}

for s in $SERVERS; do
    d=$(mktemp -d /tmp/hbench-$s-XXXXXX)
    rm -f "$OUT/$s.scram-cache"
    if ! start_$s "$d"; then echo "   $s did not start (see $d)"; cleanup; continue; fi
    echo "run_hbench: $s on port $PORT (pid $SERVER_PID), N=$N, TLS=$TLS, logs in $OUT"
    died=
    for step in $STEPS; do
        run_step "$s" "$step" "$d"
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            died=1
            echo "   $s exited during $step: its directory $d is kept"
            tail -20 "$d"/*.out "$d"/*.log 2>/dev/null | sed 's/^/   /'
            break
        fi
    done
    cleanup
    [ -z "${KEEP:-}" ] && [ -z "$died" ] && rm -rf "$d"
done

nproc; uptime
python3 - "$OUT" <<'EOF'
import glob, json, os, sys
rows = [json.load(open(p)) for p in glob.glob(os.path.join(sys.argv[1], '*-*.json'))]
rows.sort(key=lambda r: (os.path.getmtime(os.path.join(sys.argv[1], '%s-%s.json' % (r['server'], r['step']))),))
print('| server | step | sessions ok/failed | login/s | login p50/p99 ms | msgs sent/delivered/lost | '
      'latency p50/p99/max ms | server RSS peak MiB | bench RSS/session KiB | bench CPU ms/login |')
print('|---|---|---|---|---|---|---|---|---|---|')
for r in rows:
    lat, ll, c = r['latency_ms'], r['login_latency_ms'], r['client']
    msgs = ('%d/%d/%d' % (r['messages_sent'], r['messages_delivered'], r['messages_lost'])
            if r['scenario'] == 'chat' else '-')
    lats = '%.1f/%.1f/%.1f' % (lat['p50'], lat['p99'], lat['max']) if r['scenario'] == 'chat' else '-'
    print('| %s | %s | %d/%d | %.0f | %.0f/%.0f | %s | %s | %.1f | %s | %.3f |' % (
        r['server'], r['step'], r['sessions_established'], r['sessions_failed'], r['login_rate'],
        ll['p50'], ll['p99'], msgs, lats, r['server_rss_kib']['peak'] / 1024,
        '%.2f' % c['rss_per_session_kib'] if r['scenario'] != 'login' else '-',
        c['cpu_ms_per_login']))
EOF
