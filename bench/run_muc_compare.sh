#!/bin/bash
# Side-by-side groupchat load run: hearthd, Debian's Prosody and (if installed) Debian's
# ejabberd, one after another in the same session, with the same client parameters
# (bench/muc_load.py). Loopback only; every server is started here from a temporary
# configuration on loopback ports, fresh for every run, and stopped after it.
#
# Installs nothing. Needs: a built hearthd (HEARTHD=...), /usr/bin/prosody (apt-get install
# prosody) and optionally /usr/sbin/ejabberdctl (apt-get install ejabberd). Debian starts
# both as system services on install: stop them first (service prosody stop; service ejabberd
# stop); this script refuses to run while anything listens on its ports.
#
#   HEARTHD=build-bench/hearthd bench/run_muc_compare.sh
#   USERS=1000 RATES="20 100" SECONDS_PER_RUN=10 REPS=3 SERVERS="hearthd prosody ejabberd" \
#       OUT=/tmp/muc-compare bench/run_muc_compare.sh
#
# A second hearthd build (an older commit, say) runs in the same session under the label
# hearthd-before when HEARTHD_BEFORE names it; SERVERS then defaults to
# "hearthd-before hearthd prosody ejabberd" (each repetition runs every server at every rate):
#
#   HEARTHD_BEFORE=/tmp/hearth-before/build/hearthd HEARTHD=build-bench/hearthd bench/run_muc_compare.sh
#
# Prints one RESULT line per run (JSON from muc_load.py) into $OUT/results.txt, then a summary
# table with medians and the ratios hearthd/hearthd-before, hearthd/Prosody, hearthd/ejabberd,
# hearthd-before/Prosody and hearthd-before/ejabberd (bench/muc_summary.py).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
HEARTHD=${HEARTHD:-$HERE/../build/hearthd}
HEARTHD_BEFORE=${HEARTHD_BEFORE:-}       # optional second build, run as "hearthd-before"
USERS=${USERS:-1000}
RATES=${RATES:-"20 100"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}   # messages = rate * SECONDS_PER_RUN
REPS=${REPS:-3}
if [ -n "$HEARTHD_BEFORE" ]; then
    SERVERS=${SERVERS:-"hearthd-before hearthd prosody ejabberd"}
else
    SERVERS=${SERVERS:-"hearthd prosody ejabberd"}
fi
OUT=${OUT:-$(mktemp -d /tmp/muc-compare-XXXXXX)}
PROSODY_PORT=${PROSODY_PORT:-15222}
EJABBERD_PORT=${EJABBERD_PORT:-25222}
EJABBERD_DIST_PORT=${EJABBERD_DIST_PORT:-25370}
RUN_TIMEOUT=${RUN_TIMEOUT:-400}          # hard bound on one muc_load.py run, seconds
mkdir -p "$OUT"
RESULTS=$OUT/results.txt

die() { echo "run_muc_compare: $*" >&2; exit 2; }
# shared server configuration, start and stop, cleanup (port_busy, wait_port, write_*_config, launch_*)
# shellcheck source=servers.sh source-path=SCRIPTDIR
source "$HERE/servers.sh"

for s in $SERVERS; do
    case $s in
    hearthd) [ -x "$HEARTHD" ] || die "no hearthd at $HEARTHD (build it; set HEARTHD=)";;
    hearthd-before) [ -x "$HEARTHD_BEFORE" ] || die "hearthd-before needs HEARTHD_BEFORE (now '$HEARTHD_BEFORE')";;
    prosody) [ -x /usr/bin/prosody ] || die "prosody not installed: apt-get install prosody (then stop its service)";;
    ejabberd) [ -x /usr/sbin/ejabberdctl ] || die "ejabberd not installed: apt-get install ejabberd (then stop its service), or leave it out of SERVERS";;
    *) die "unknown server $s";;
    esac
    check_port_free "$s"
done

install_cleanup

start_prosody() {
    local d=$1
    mkdir -p "$d/data"
    write_prosody_config "$d" "run_muc_compare.sh: loopback-only load test server" \
        '"roster", "saslauth", "disco", "register", "ping", "dialback"'
    cat >> "$d/prosody.cfg.lua" <<EOF
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
authentication = "internal_hashed"
storage = "internal"
VirtualHost "localhost"
Component "conference.localhost" "muc"
    muc_room_locking = true
    max_history_messages = 20
EOF
    launch_prosody "$d"
}

start_ejabberd() {
    local d=$1
    mkdir -p "$d/spool" "$d/logs"
    write_ejabberd_config "$d" "run_muc_compare.sh: loopback-only load test server" \
        "certfiles: []" "    starttls_required: false" "auth_password_format: plain"
    cat >> "$d/ejabberd.yml" <<EOF
  mod_muc:
    host: conference.localhost
    access: all
    access_create: all
    access_persistent: all
    access_admin: none
    max_users: 5000
    max_users_presence: 5000
    max_user_conferences: 10
    history_size: 20
    default_room_options:
      max_users: 5000
      mam: false
EOF
    launch_ejabberd "$d"
}

run_one() {  # server rate rep
    local s=$1 rate=$2 rep=$3
    local msgs=$(python3 -c "print(int($rate * $SECONDS_PER_RUN))")
    local d
    d=$(mktemp -d /tmp/muc-$s-XXXXXX)
    local common=(--users "$USERS" --messages "$msgs" --rate "$rate" --login-timeout 180
                  --join-timeout 180 --drain-timeout 90 --settle-timeout 60)
    local log=$OUT/$s-r$rate-$rep.log rc
    echo "== $s rate=$rate rep=$rep ($(date +%T))"
    case $s in
    hearthd|hearthd-before)
        local bin=$HEARTHD
        [ "$s" = hearthd-before ] && bin=$HEARTHD_BEFORE
        timeout -k 5 $RUN_TIMEOUT python3 "$HERE/muc_load.py" --hearthd "$bin" "${common[@]}" > "$log" 2>&1
        rc=$?;;
    prosody|ejabberd)
        if ! start_$s "$d"; then echo "   $s did not start (see $d)"; cleanup; return; fi
        timeout -k 5 $RUN_TIMEOUT python3 "$HERE/muc_load.py" --port "$PORT" --domain localhost \
            --muc conference.localhost --register --server-pid "$SERVER_PID" "${common[@]}" > "$log" 2>&1
        rc=$?
        cleanup;;
    esac
    echo "   rc=$rc $(grep -E '^(delivered|latency|server pid)' "$log" | tr '\n' ' ')"
    echo "   ($(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
    local r
    r=$(grep '^RESULT ' "$log" | sed 's/^RESULT //')
    [ -n "$r" ] && echo "{\"server\": \"$s\", \"rep\": $rep, \"result\": $r}" >> "$RESULTS"
    [ "$rc" = 0 ] && [ -z "${KEEP:-}" ] && rm -rf "$d"
}

echo "run_muc_compare: users=$USERS rates=[$RATES] ${SECONDS_PER_RUN}s per run, $REPS reps, servers=[$SERVERS], logs in $OUT"
[ -n "$HEARTHD_BEFORE" ] && echo "hearthd-before: $HEARTHD_BEFORE; hearthd: $HEARTHD"
nproc; uptime
for rep in $(seq "$REPS"); do
    for rate in $RATES; do
        for s in $SERVERS; do
            run_one "$s" "$rate" "$rep"
        done
    done
done
uptime
python3 "$HERE/muc_summary.py" "$RESULTS"
