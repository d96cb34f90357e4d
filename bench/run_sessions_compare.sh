#!/bin/bash
# Side-by-side memory per session (bench/c2s_sessions.py): hearthd, Debian's Prosody and Debian's
# ejabberd, one after another in the same session, same client, same N. Every server is started here
# from a temporary loopback-only configuration (server starts as in bench/run_muc_compare.sh, plus a
# throwaway self-signed certificate for STARTTLS and SCRAM-SHA-256 with 4,096 iterations everywhere),
# fresh for every run, and stopped after it.
#
# Installs nothing. Needs: a built hearthd and hearthctl (HEARTHD=..., HEARTHCTL=...), /usr/bin/prosody,
# /usr/sbin/ejabberdctl, openssl; their system services stopped. Run as root (Prosody's run_as_root,
# ejabberd's user switch).
#
#   HEARTHD=build/hearthd HEARTHCTL=build/hearthctl bench/run_sessions_compare.sh
#   N=1000 REPS=2 SERVERS="hearthd prosody ejabberd" OUT=/tmp/sessions-compare bench/run_sessions_compare.sh
#
# A second hearthd build (an older commit, say) runs in the same session under the label
# hearthd-before when HEARTHD_BEFORE and HEARTHCTL_BEFORE name it; SERVERS then defaults to
# "hearthd-before hearthd prosody ejabberd" (each repetition runs every server once, in that order):
#
#   HEARTHD_BEFORE=/tmp/hearth-before/build/hearthd HEARTHCTL_BEFORE=/tmp/hearth-before/build/hearthctl \
#       HEARTHD=build/hearthd HEARTHCTL=build/hearthctl bench/run_sessions_compare.sh
#
# MODE=plain runs without TLS (no server requires it and the client does not start it; SCRAM over
# plain TCP) instead of STARTTLS (MODE=tls, the default). BURST=R adds c2s_sessions.py's --burst R
# (each client sends R messages to the next, then RSS again: memory kept after traffic). SETTLE
# (seconds before each RSS reading, default 2) is the same for every server; hearthd gives an
# idle stream's parser back after c2s.idle_release (1 s) and trims its heap at most every 5 s, so
# SETTLE=12 reads it idle. HEARTHD_ENV,
# HEARTHD_PRELOAD and HEARTHD_SET pass through to c2s_sessions.py (allocator runs).
#
# Writes one JSON line per run to $OUT/results.txt, then prints a table of medians with the
# per-run figures and the ratios hearthd/hearthd-before, hearthd/Prosody, hearthd/ejabberd,
# hearthd-before/Prosody and hearthd-before/ejabberd (those whose servers ran).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
HEARTHD=${HEARTHD:-$HERE/../build/hearthd}
HEARTHCTL=${HEARTHCTL:-$HERE/../build/hearthctl}
HEARTHD_BEFORE=${HEARTHD_BEFORE:-}       # optional second build, run as "hearthd-before"
HEARTHCTL_BEFORE=${HEARTHCTL_BEFORE:-}
N=${N:-1000}
REPS=${REPS:-2}
MODE=${MODE:-tls}
BURST=${BURST:-0}
SETTLE=${SETTLE:-2}
CLIENT_ARGS="--settle $SETTLE --burst $BURST"
[ "$MODE" = plain ] && CLIENT_ARGS="$CLIENT_ARGS --no-tls"
[ "$MODE" = plain ] || [ "$MODE" = tls ] || { echo "run_sessions_compare: MODE is tls or plain" >&2; exit 2; }
if [ -n "$HEARTHD_BEFORE" ]; then
    SERVERS=${SERVERS:-"hearthd-before hearthd prosody ejabberd"}
else
    SERVERS=${SERVERS:-"hearthd prosody ejabberd"}
fi
OUT=${OUT:-$(mktemp -d /tmp/sessions-compare-XXXXXX)}
PROSODY_PORT=${PROSODY_PORT:-15222}
EJABBERD_PORT=${EJABBERD_PORT:-25222}
EJABBERD_DIST_PORT=${EJABBERD_DIST_PORT:-25370}
RUN_TIMEOUT=${RUN_TIMEOUT:-400}          # hard bound on one c2s_sessions.py run, seconds
mkdir -p "$OUT"
RESULTS=$OUT/results.txt

die() { echo "run_sessions_compare: $*" >&2; exit 2; }
# shared server configuration, start and stop, cleanup (port_busy, wait_port, write_*_config, launch_*)
# shellcheck source=servers.sh source-path=SCRIPTDIR
source "$HERE/servers.sh"

for s in $SERVERS; do
    case $s in
    hearthd) [ -x "$HEARTHD" ] && [ -x "$HEARTHCTL" ] || die "no hearthd/hearthctl at $HEARTHD, $HEARTHCTL";;
    hearthd-before) [ -x "$HEARTHD_BEFORE" ] && [ -x "$HEARTHCTL_BEFORE" ] ||
        die "hearthd-before needs HEARTHD_BEFORE and HEARTHCTL_BEFORE (now '$HEARTHD_BEFORE', '$HEARTHCTL_BEFORE')";;
    prosody) [ -x /usr/bin/prosody ] || die "prosody not installed";;
    ejabberd) [ -x /usr/sbin/ejabberdctl ] || die "ejabberd not installed";;
    *) die "unknown server $s";;
    esac
    check_port_free "$s"
done

install_cleanup

start_prosody() {
    local d=$1
    mkdir -p "$d/data"
    make_cert "$d" || return 1
    write_prosody_config "$d" "run_sessions_compare.sh: loopback-only memory test server" \
        '"roster", "saslauth", "tls", "disco", "register", "ping"'
    cat >> "$d/prosody.cfg.lua" <<EOF
ssl = { certificate = "$d/localhost.crt", key = "$d/localhost.key" }
c2s_require_encryption = $([ "$MODE" = plain ] && echo false || echo true)
allow_registration = true
authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = 4096
storage = "internal"
VirtualHost "localhost"
EOF
    launch_prosody "$d"
}

start_ejabberd() {
    local d=$1
    mkdir -p "$d/spool" "$d/logs"
    make_cert "$d" || return 1
    write_ejabberd_config "$d" "run_sessions_compare.sh: loopback-only memory test server" \
        "certfiles:
  - \"$d/localhost.crt\"
  - \"$d/localhost.key\"" \
        "$([ "$MODE" = plain ] && echo "    starttls: false" || echo "    starttls: true
    starttls_required: true")" \
        "auth_password_format: scram
auth_scram_hash: sha256"
    launch_ejabberd "$d"
}

run_one() {  # server rep
    local s=$1 rep=$2 d rc
    d=$(mktemp -d /tmp/sessions-$s-XXXXXX)
    local log=$OUT/$s-$rep.log
    echo "== $s rep=$rep ($(date +%T))"
    case $s in
    hearthd)
        HEARTHD=$HEARTHD HEARTHCTL=$HEARTHCTL timeout -k 5 $RUN_TIMEOUT \
            python3 "$HERE/c2s_sessions.py" "$N" $CLIENT_ARGS > "$log" 2>&1
        rc=$?;;
    hearthd-before)
        HEARTHD=$HEARTHD_BEFORE HEARTHCTL=$HEARTHCTL_BEFORE timeout -k 5 $RUN_TIMEOUT \
            python3 "$HERE/c2s_sessions.py" "$N" $CLIENT_ARGS > "$log" 2>&1
        rc=$?;;
    prosody|ejabberd)
        if ! start_$s "$d"; then echo "   $s did not start (see $d)"; cleanup; return; fi
        timeout -k 5 $RUN_TIMEOUT python3 "$HERE/c2s_sessions.py" "$N" $CLIENT_ARGS --port "$PORT" \
            --pid "$SERVER_PID" --domain localhost > "$log" 2>&1
        rc=$?
        cleanup;;
    esac
    echo "   rc=$rc $(grep -E '^(negotiated|sessions|.*RSS|marginal|after burst)' "$log" | tr '\n' ' ')"
    echo "   ($(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
    local r
    r=$(grep '^RESULT ' "$log" | sed 's/^RESULT //')
    [ -n "$r" ] && [ "$rc" = 0 ] && echo "{\"server\": \"$s\", \"rep\": $rep, \"result\": $r}" >> "$RESULTS"
    [ "$rc" = 0 ] && [ -z "${KEEP:-}" ] && rm -rf "$d"
}

echo "run_sessions_compare: N=$N, $REPS reps, MODE=$MODE, BURST=$BURST, SETTLE=$SETTLE, servers=[$SERVERS], logs in $OUT"
[ -n "$HEARTHD_BEFORE" ] && echo "hearthd-before: $HEARTHD_BEFORE; hearthd: $HEARTHD"
nproc; uptime
for rep in $(seq "$REPS"); do
    for s in $SERVERS; do
        run_one "$s" "$rep"
    done
done
uptime
python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs.setdefault(r['server'], []).append(r['result'])
def med(s, k):
    return statistics.median(x[k] for x in runs[s])
print('| server | runs | RSS idle MiB (each run) | RSS with N MiB (each) | per session KiB (each) | marginal KiB (each) | after burst KiB/session (each) | TLS | SASL |')
print('|---|---|---|---|---|---|---|---|---|')
def burst(s, rs):
    v = [x.get('per_session_after_burst_kib') for x in rs]
    if None in v:
        return '-'
    return '%.1f (%s)' % (statistics.median(v), ', '.join('%.1f' % x for x in v))
def each(rs, k, scale=1):
    return ', '.join('%.1f' % (x[k] / scale) for x in rs)
for s, rs in runs.items():
    print('| %s | %d | %.1f (%s) | %.1f (%s) | %.1f (%s) | %.1f (%s) | %s | %s | %s |' % (
        s, len(rs), med(s, 'rss_idle_kib') / 1024, each(rs, 'rss_idle_kib', 1024),
        med(s, 'rss_sessions_kib') / 1024, each(rs, 'rss_sessions_kib', 1024),
        med(s, 'per_session_kib'), each(rs, 'per_session_kib'),
        med(s, 'marginal_kib'), each(rs, 'marginal_kib'), burst(s, rs), rs[0]['tls'], rs[0]['sasl']))
for a, b in (('hearthd', 'hearthd-before'), ('hearthd', 'prosody'), ('hearthd', 'ejabberd'),
             ('hearthd-before', 'prosody'), ('hearthd-before', 'ejabberd')):
    if a in runs and b in runs:
        print('%s/%s: per session %.3f, marginal %.3f, RSS with N %.3f, RSS idle %.3f' % (
            a, b, med(a, 'per_session_kib') / med(b, 'per_session_kib'),
            med(a, 'marginal_kib') / med(b, 'marginal_kib'),
            med(a, 'rss_sessions_kib') / med(b, 'rss_sessions_kib'),
            med(a, 'rss_idle_kib') / med(b, 'rss_idle_kib')))
        if burst(a, runs[a]) != '-' and burst(b, runs[b]) != '-':
            print('%s/%s: per session after burst %.3f' % (a, b, med(a, 'per_session_after_burst_kib')
                                                           / med(b, 'per_session_after_burst_kib')))
EOF
