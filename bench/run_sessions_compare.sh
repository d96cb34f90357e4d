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
# Writes one JSON line per run to $OUT/results.txt, then prints a table of medians and the
# hearthd/Prosody and hearthd/ejabberd ratios.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
HEARTHD=${HEARTHD:-$HERE/../build/hearthd}
HEARTHCTL=${HEARTHCTL:-$HERE/../build/hearthctl}
N=${N:-1000}
REPS=${REPS:-2}
SERVERS=${SERVERS:-"hearthd prosody ejabberd"}
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
    prosody) [ -x /usr/bin/prosody ] || die "prosody not installed";;
    ejabberd) [ -x /usr/sbin/ejabberdctl ] || die "ejabberd not installed";;
    *) die "unknown server $s";;
    esac
    check_port_free "$s"
done

install_cleanup

make_cert() {  # dir: self-signed P-256 certificate for "localhost", valid two days
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        -keyout "$1/localhost.key" -out "$1/localhost.crt" 2>/dev/null
}

start_prosody() {
    local d=$1
    mkdir -p "$d/data"
    make_cert "$d" || return 1
    write_prosody_config "$d" "run_sessions_compare.sh: loopback-only memory test server" \
        '"roster", "saslauth", "tls", "disco", "register", "ping"'
    cat >> "$d/prosody.cfg.lua" <<EOF
ssl = { certificate = "$d/localhost.crt", key = "$d/localhost.key" }
c2s_require_encryption = true
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
        "    starttls: true
    starttls_required: true" \
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
            python3 "$HERE/c2s_sessions.py" "$N" > "$log" 2>&1
        rc=$?;;
    prosody|ejabberd)
        if ! start_$s "$d"; then echo "   $s did not start (see $d)"; cleanup; return; fi
        timeout -k 5 $RUN_TIMEOUT python3 "$HERE/c2s_sessions.py" "$N" --port "$PORT" \
            --pid "$SERVER_PID" --domain localhost > "$log" 2>&1
        rc=$?
        cleanup;;
    esac
    echo "   rc=$rc $(grep -E '^(negotiated|sessions|.*RSS|marginal)' "$log" | tr '\n' ' ')"
    local r
    r=$(grep '^RESULT ' "$log" | sed 's/^RESULT //')
    [ -n "$r" ] && [ "$rc" = 0 ] && echo "{\"server\": \"$s\", \"rep\": $rep, \"result\": $r}" >> "$RESULTS"
    [ "$rc" = 0 ] && [ -z "${KEEP:-}" ] && rm -rf "$d"
}

echo "run_sessions_compare: N=$N, $REPS reps, servers=[$SERVERS], logs in $OUT"
nproc; uptime
for rep in $(seq "$REPS"); do
    for s in $SERVERS; do
        run_one "$s" "$rep"
    done
done
python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs.setdefault(r['server'], []).append(r['result'])
def med(s, k):
    return statistics.median(x[k] for x in runs[s])
print('| server | runs | RSS idle (MiB) | RSS with N (MiB) | per session (KiB) | marginal (KiB) | TLS | SASL |')
print('|---|---|---|---|---|---|---|---|')
for s, rs in runs.items():
    print('| %s | %d | %.1f | %.1f | %.1f (%s) | %.1f | %s | %s |' % (
        s, len(rs), med(s, 'rss_idle_kib') / 1024, med(s, 'rss_sessions_kib') / 1024,
        med(s, 'per_session_kib'), ', '.join('%.1f' % x['per_session_kib'] for x in rs),
        med(s, 'marginal_kib'), rs[0]['tls'], rs[0]['sasl']))
if 'hearthd' in runs:
    for o in ('prosody', 'ejabberd'):
        if o in runs:
            print('hearthd/%s: per session %.2f, RSS with N %.2f, RSS idle %.2f' % (
                o, med('hearthd', 'per_session_kib') / med(o, 'per_session_kib'),
                med('hearthd', 'rss_sessions_kib') / med(o, 'rss_sessions_kib'),
                med('hearthd', 'rss_idle_kib') / med(o, 'rss_idle_kib')))
EOF
