#!/bin/bash
# hearthd, Debian's Prosody and Debian's ejabberd side by side under the same hearth-bench load
# (issue 11), one server at a time, each fresh on loopback from a configuration written here, in
# three module sets:
#   minimal: roster, presence, messages, ping (+ registration and MUC, which the scenarios need;
#            hearthd with archive.enabled=false);
#   full:    the same plus the message archive (XEP-0313) for every message, carbons (XEP-0280)
#            and offline storage, each server on its embedded database (hearthd SQLite, Prosody
#            SQLite through mod_storage_sql, ejabberd Mnesia);
#   pgsql:   full, with every server's storage on one PostgreSQL cluster the script starts on
#            loopback (durable settings: fsync and synchronous commit on), a database each
#            (hearthd storage.driver=pgsql with a connection per worker, Prosody
#            mod_storage_sql's PostgreSQL driver, ejabberd sql for everything, auth included).
# Same domain (localhost), accounts (userN, registered in band), TLS setting (STARTTLS offered,
# not required) and certificate (self-signed P-256), SCRAM credentials stored by all
# (SCRAM_HASH, 4,096 iterations), no rate limits. Scenarios, in this order for each server:
#   login-<MECH>  login storm of N_LOGIN sessions for each of LOGIN_MECHS: server CPU per login
#   idle-N, idle-tls-N  N sessions (each of N_IDLE) held HOLD s, each hold on the server restarted:
#                 server memory per session
#   chat-R        one-to-one messages among N_CHAT sessions at R msg/s for CHAT_SECONDS, R
#                 stepped through CHAT_RATES until a message is lost or the rate is not reached:
#                 the maximum sustained delivered rate with zero loss
#   chat-half     the same at half of hearthd's maximum: latency p50/p99/max, CPU per message
#   after-burst   server memory once the chat runs have ended (no session online)
#   presence      N_PRES users with ROSTER-contact rosters logging in (rosters made by a first,
#                 unmeasured run), then PRES_RATE presence changes/s
#   muc           N_MUC occupants in rooms of ROOM, MUC_RATE groupchat messages/s
# Memory is VmRSS/VmHWM from /proc summed over the server's processes (ejabberd: every process
# of the ejabberd user: beam.smp, epmd, erl_child_setup), CPU utime+stime from /proc.
#
#   bench/compare.sh                              # full sizes (issue 11), all three, every set
#   SETS=pgsql bench/compare.sh                   # the full set on PostgreSQL only
#   SMALL=1 bench/compare.sh                      # quick: a few hundred sessions, short runs
#   SERVERS=hearthd SETS=minimal SMALL=1 NO_INSTALL=1 OUT=/tmp/c bench/compare.sh
#   SCRAM_HASH=sha1 LOGIN_MECHS=SCRAM-SHA-1 STEPS=login bench/compare.sh
#
# Peers store one SCRAM hash (Prosody's password_hash, ejabberd's auth_scram_hash): SCRAM-SHA-1
# logins need a run with SCRAM_HASH=sha1 (the line above). Needs root for Prosody and ejabberd
# (run_as_root, ejabberd's user switch); installs prosody, ejabberd, lua-dbi-sqlite3 and
# gnuplot-nox with apt-get when missing (for the pgsql set also postgresql, lua-dbi-postgresql and
# erlang-p1-pgsql; not with NO_INSTALL=1) and stops their system services.
# Needs a built hearthd and hearth-bench (HEARTHD=..., BENCH=...). Writes $OUT/results.json,
# $OUT/compare.png and $OUT/report.md (the tables, also printed); each run's hearth-bench JSON
# with the server figures is under $OUT/<set>/<server>/.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
HEARTHD=${HEARTHD:-$HERE/../build/hearthd}
BENCH=${BENCH:-$HERE/../build/hearth-bench}
SERVERS=${SERVERS:-"hearthd prosody ejabberd"}
SETS=${SETS:-"minimal full pgsql"}
STEPS=${STEPS:-"login idle chat presence muc"}
SCRAM_HASH=${SCRAM_HASH:-sha256}
if [ "${SMALL:-0}" = 1 ]; then
    N_LOGIN=${N_LOGIN:-300} N_IDLE=${N_IDLE:-"300 600"} HOLD=${HOLD:-3}
    N_CHAT=${N_CHAT:-100} CHAT_RATES=${CHAT_RATES:-"200 400 800"} CHAT_SECONDS=${CHAT_SECONDS:-3}
    N_PRES=${N_PRES:-200} ROSTER=${ROSTER:-10} PRES_RATE=${PRES_RATE:-50}
    N_MUC=${N_MUC:-100} ROOM=${ROOM:-100} MUC_RATE=${MUC_RATE:-10} SECONDS_TRAFFIC=${SECONDS_TRAFFIC:-3}
fi
N_LOGIN=${N_LOGIN:-10000}
N_IDLE=${N_IDLE:-"10000 19000"}
HOLD=${HOLD:-20}
N_CHAT=${N_CHAT:-1000}
CHAT_RATES=${CHAT_RATES:-"1000 2000 4000 8000 16000 32000"}
CHAT_SECONDS=${CHAT_SECONDS:-10}
N_PRES=${N_PRES:-5000}
ROSTER=${ROSTER:-50}
PRES_RATE=${PRES_RATE:-100}
N_MUC=${N_MUC:-1000}
ROOM=${ROOM:-1000}
MUC_RATE=${MUC_RATE:-10}
SECONDS_TRAFFIC=${SECONDS_TRAFFIC:-10}
LOGIN_MECHS=${LOGIN_MECHS:-"SCRAM-SHA-256 PLAIN"}
case $SCRAM_HASH in
sha256) MECH=SCRAM-SHA-256;;
sha1) MECH=SCRAM-SHA-1;;
*) echo "compare: SCRAM_HASH is sha1 or sha256" >&2; exit 2;;
esac
CONCURRENCY=${CONCURRENCY:-50}  # logins negotiating at once: Prosody is one thread
WORKERS=${WORKERS:-2}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
# how long hearth-bench waits for rosters and room joins before it measures (and reports how
# many were ready): within RUN_TIMEOUT, so that a server too slow for it still gets a figure
SETUP_TIMEOUT=${SETUP_TIMEOUT:-$(( RUN_TIMEOUT * 2 / 3 ))}
DRAIN=${DRAIN:-5}              # seconds hearth-bench waits for messages in flight (--drain)
SUSTAINED_P99_MS=${SUSTAINED_P99_MS:-1000}  # a chat step with a p99 above it is not sustained
PROSODY_PORT=${PROSODY_PORT:-15222}
EJABBERD_PORT=${EJABBERD_PORT:-25222}
EJABBERD_DIST_PORT=${EJABBERD_DIST_PORT:-25370}
OUT=${OUT:-$(mktemp -d /tmp/compare-XXXXXX)}
mkdir -p "$OUT"
TICK=$(getconf CLK_TCK)

die() { echo "compare: $*" >&2; exit 2; }
# shellcheck source=servers.sh source-path=SCRIPTDIR
source "$HERE/servers.sh"

# ---- what this needs, installed when missing ----
need=()
has_set() { case " $SETS " in *" $1 "*) return 0;; esac; return 1; }
for set in $SETS; do
    case $set in minimal|full|pgsql) ;; *) die "unknown module set $set (minimal, full, pgsql)";; esac
done
for s in $SERVERS; do
    case $s in
    hearthd) [ -x "$HEARTHD" ] || die "no hearthd at $HEARTHD (make build)";;
    prosody) [ -x /usr/bin/prosody ] || need+=(prosody)
             has_set full && { [ -e /usr/share/doc/lua-dbi-sqlite3 ] || need+=(lua-dbi-sqlite3); }
             has_set pgsql && { [ -e /usr/share/doc/lua-dbi-postgresql ] || need+=(lua-dbi-postgresql); };;
    ejabberd) [ -x /usr/sbin/ejabberdctl ] || need+=(ejabberd)
              has_set pgsql && { [ -e /usr/share/doc/erlang-p1-pgsql ] || need+=(erlang-p1-pgsql); };;
    *) die "unknown server $s (hearthd, prosody, ejabberd)";;
    esac
done
if has_set pgsql; then
    ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || need+=(postgresql)
    command -v psql > /dev/null || need+=(postgresql-client)
fi
[ -x "$BENCH" ] || die "no hearth-bench at $BENCH (make build)"
command -v gnuplot > /dev/null || need+=(gnuplot-nox)
if [ ${#need[@]} -gt 0 ]; then
    if [ "${NO_INSTALL:-0}" = 1 ]; then
        echo "compare: not installing ${need[*]} (NO_INSTALL=1)" >&2
    else
        echo "compare: installing ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" \
            > "$OUT/apt.log" 2>&1 || die "apt-get install ${need[*]} failed (see $OUT/apt.log)"
    fi
fi
for s in $SERVERS; do
    case $s in
    prosody|ejabberd)
        [ "$(id -u)" = 0 ] || die "$s needs root (run_as_root, ejabberd's user switch)"
        # Debian starts them at installation: their service would hold the ports and the user
        service "$s" stop > /dev/null 2>&1
        [ "$s" = prosody ] && [ ! -x /usr/bin/prosody ] && die "prosody is not installed"
        [ "$s" = ejabberd ] && [ ! -x /usr/sbin/ejabberdctl ] && die "ejabberd is not installed";;
    esac
    check_port_free "$s"
done
ulimit -n "$(ulimit -Hn)" || die "cannot raise the open-file limit"
install_cleanup

# ---- the pgsql set: one PostgreSQL cluster on loopback for the whole run ----
PG_DIR= PG_PORT=
pg_stop() { [ -n "$PG_DIR" ] && "$HERE/../scripts/pg-test-cluster.sh" stop "$PG_DIR"; PG_DIR=; }
pg() { psql -h 127.0.0.1 -p "$PG_PORT" -U hearth "$@"; }  # psql on the run's cluster
if has_set pgsql; then
    pg_out=$(PG_DURABLE=1 "$HERE/../scripts/pg-test-cluster.sh" start) || die "PostgreSQL did not start"
    PG_DIR=$(echo "$pg_out" | sed -n 1p)
    PG_PORT=$(cat "$PG_DIR/port")
    trap 'cleanup; pg_stop; exit 130' INT TERM
    trap 'cleanup; pg_stop' EXIT
    echo "compare: PostgreSQL $(pg -d postgres -Atqc 'SHOW server_version') on port $PG_PORT ($PG_DIR)"
fi
pg_fresh_db() {  # name: an empty database of that name on the run's cluster
    pg -d postgres -q -v ON_ERROR_STOP=1 \
        -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" > /dev/null
}

# The most sessions any step holds at once: the accounts registered first.
N_ACCOUNTS=$N_LOGIN
for n in $N_IDLE $N_CHAT $N_PRES $N_MUC; do [ "$n" -gt "$N_ACCOUNTS" ] && N_ACCOUNTS=$n; done

# ---- the servers, per module set ----
start_hearthd() {  # dir set
    local archive=true db=()
    [ "$2" = minimal ] && archive=false
    [ "$2" = pgsql ] && db=(--set storage.driver=pgsql --set storage.pool_size="${WORKERS:-2}"
        --set "storage.dsn=postgresql://hearth@127.0.0.1:$PG_PORT/bench_hearthd")
    launch_hearthd "$1" --set c2s.tls=optional --set c2s.plain_without_tls=true \
        --set archive.enabled=$archive "${db[@]}"
}

start_prosody() {  # dir set
    local d=$1 mods='"roster", "saslauth", "tls", "disco", "register", "ping"' storage
    mkdir -p "$d/data"
    make_cert "$d" || return 1
    if [ "$2" = full ] || [ "$2" = pgsql ]; then
        mods="$mods, \"mam\", \"carbons\", \"offline\""
        if [ "$2" = pgsql ]; then
            storage="storage = \"sql\"
sql = { driver = \"PostgreSQL\", database = \"bench_prosody\", host = \"127.0.0.1\", port = $PG_PORT, username = \"hearth\", password = \"\" }"
        else
            storage='storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }'
        fi
        storage="$storage
archive_expires_after = \"never\"
default_archive_policy = true"
    else
        storage='storage = "internal"'
    fi
    write_prosody_config "$d" "compare.sh ($2): loopback-only load test server" "$mods" \
        "$([ "$2" = minimal ] && echo '"s2s", "s2s_auth_certs", "offline"' || echo '"s2s", "s2s_auth_certs"')"
    cat >> "$d/prosody.cfg.lua" <<EOF
ssl = { certificate = "$d/localhost.crt", key = "$d/localhost.key" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
min_seconds_between_registrations = 0
authentication = "internal_hashed"
password_hash = "$([ "$SCRAM_HASH" = sha1 ] && echo SHA-1 || echo SHA-256)"
default_iteration_count = 4096
$storage
VirtualHost "localhost"
Component "conference.localhost" "muc"
max_history_messages = 0
muc_room_default_history_length = 0
muc_max_occupants = 100000
EOF
    launch_prosody "$d"
}

start_ejabberd() {  # dir set
    local d=$1
    mkdir -p "$d/spool" "$d/logs"
    make_cert "$d" || return 1
    local certs="certfiles:
  - \"$d/localhost.crt\"
  - \"$d/localhost.key\"" auth=internal db=mnesia
    if [ "$2" = pgsql ]; then
        # ejabberd 23.01 does not create its tables: its PostgreSQL schema, loaded first (not
        # again when the server is restarted on its data)
        if [ -z "$(pg -d bench_ejabberd -Atqc "SELECT to_regclass('users')")" ]; then
            pg -d bench_ejabberd -q -v ON_ERROR_STOP=1 \
                -f /usr/share/ejabberd/sql/pg.sql > "$d/schema.log" 2>&1 || { cat "$d/schema.log"; return 1; }
        fi
        certs="$certs
sql_type: pgsql
sql_server: \"127.0.0.1\"
sql_port: $PG_PORT
sql_database: \"bench_ejabberd\"
sql_username: \"hearth\"
sql_password: \"\"
default_db: sql"
        auth=sql db=sql
    fi
    write_ejabberd_config "$d" "compare.sh ($2): loopback-only load test server" "$certs" \
        "    starttls: true" \
        "auth_password_format: scram
auth_scram_hash: $SCRAM_HASH" "$auth"
    cat >> "$d/ejabberd.yml" <<EOF
  mod_muc:
    host: "conference.localhost"
    access_create: all
    max_users: 100000
    max_users_presence: 100000
    history_size: 0
    default_room_options:
      mam: false
      max_users: 100000
EOF
    [ "$2" != minimal ] && cat >> "$d/ejabberd.yml" <<EOF
  mod_mam:
    db_type: $db
    default: always
  mod_carboncopy: {}
  mod_offline: {}
EOF
    launch_ejabberd "$d"
}

# ---- one hearth-bench run with the server's figures around it ----
jget() {  # file key...: a number from a JSON file (nested keys), empty when absent
    python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2:]: v = v[k]
    print(v)
except Exception: pass' "$@"
}

run_bench() {  # set server name sessions args...: writes $OUT/set/server/name.json
    local set=$1 s=$2 name=$3 n=$4 dir=$OUT/$1/$2
    shift 4
    mkdir -p "$dir"
    local rss0 cpu0 peak=0 r t0 t1 cpu1 rc
    rss0=$(server_mem_kib VmRSS)
    cpu0=$(server_cpu_ticks)
    t0=$(date +%s.%N)
    echo "== $set $s $name: $n sessions ($(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
    timeout -k 5 "$RUN_TIMEOUT" "$BENCH" --host 127.0.0.1 --port "$PORT" --domain localhost \
        --sessions "$n" --password bench-password --scram-cache "$OUT/$s-$SCRAM_HASH.scram-cache" \
        --concurrency "$CONCURRENCY" --drain "$DRAIN" --json --quiet "$@" > "$dir/$name.raw" 2> "$dir/$name.log" &
    local bench=$!
    # every sample, so that an idle hold's steady figure can be read apart from its peak (the
    # peak holds the logins' transient: parsers and SASL state a session frees once idle)
    : > "$dir/$name.rss"
    while kill -0 $bench 2>/dev/null; do
        r=$(server_mem_kib VmRSS)
        [ "$r" -gt "$peak" ] && peak=$r
        echo "$(date +%s.%N) $r" >> "$dir/$name.rss"
        sleep 0.5
    done
    wait $bench
    rc=$?
    t1=$(date +%s.%N)
    cpu1=$(server_cpu_ticks)
    sed 's/^/   /' "$dir/$name.log" | tail -5
    python3 - "$dir/$name.raw" "$dir/$name.json" "$set" "$s" "$name" "$rc" "$rss0" "$peak" \
        "$(server_mem_kib VmRSS)" "$(server_mem_kib VmHWM)" "$(( cpu1 - cpu0 ))" "$TICK" \
        "$t0" "$t1" "$*" "$dir/$name.rss" <<'EOF'
import json, sys
raw, out, set_, server, name, rc, rss0, peak, rss1, hwm, ticks, tick, t0, t1, args, samples = sys.argv[1:]
# held: the last sample taken 1.5 s or more before the generator ended (an idle hold's steady
# state: every session established and idle, none closing yet)
held = None
for line in open(samples):
    t, r = line.split()
    if float(t) <= float(t1) - 1.5:
        held = int(r)
try:
    r = json.load(open(raw))
except ValueError:
    r = {}
    print('   no JSON from hearth-bench (exit %s)' % rc)
r.update(set=set_, server=server, step=name, exit=int(rc), args=args,
         server_rss_kib={'before': int(rss0), 'peak': int(peak), 'after': int(rss1), 'held': held},
         server_hwm_kib=int(hwm), server_cpu_s=int(ticks) / int(tick),
         wall_s=float(t1) - float(t0))
json.dump(r, open(out, 'w'), indent=1)
EOF
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "   $s is gone after $name"; return 1; }
}

# ---- the scenarios ----
restart_server() {  # dir set: the same server stopped and started again on its data
    local kind=$SERVER_KIND
    cleanup
    "start_$kind" "$1" "$2" || { echo "   $kind did not start again (see $1)"; return 1; }
}

settle() {  # wait (60 s at most) until the server is idle: a backlog of the last run is gone
    # (a server busy for longer is measured as it is, and says so)
    local a b
    for _ in $(seq 60); do
        a=$(server_cpu_ticks)
        sleep 1
        b=$(server_cpu_ticks)
        [ $((b - a)) -le $((TICK / 20)) ] && return 0
    done
    echo "   $SERVER_KIND still busy after 60 s: the next step starts anyway"
}

run_server() {  # set server
    local set=$1 s=$2 d n m f rate best=0 half
    d=$(mktemp -d "/tmp/compare-$s-XXXXXX")
    rm -f "$OUT/$s-$SCRAM_HASH.scram-cache"
    if [ "$set" = pgsql ] && ! pg_fresh_db "bench_$s"; then echo "   no database for $s"; return 1; fi
    if ! "start_$s" "$d" "$set"; then echo "   $s did not start (see $d)"; cleanup; return 1; fi
    echo "compare: $s ($set) on port $PORT, pids $(server_pids)"
    run_bench "$set" "$s" register "$N_ACCOUNTS" --scenario login --register --mech "$MECH" || return 1
    for step in $STEPS; do
        case $step in
        login)
            for m in $LOGIN_MECHS; do
                run_bench "$set" "$s" "login-$m" "$N_LOGIN" --scenario login --mech "$m" || return 1
            done;;
        idle)
            # each hold on a server started afresh (same data): memory per session is then the
            # peak during the hold less the RSS of a server that has held no session, not less
            # what an earlier run left in its heap
            for n in $N_IDLE; do
                for tls in "" tls; do
                    restart_server "$d" "$set" || return 1
                    run_bench "$set" "$s" "idle${tls:+-$tls}-$n" "$n" --scenario idle --duration "$HOLD" \
                        --mech "$MECH" ${tls:+--tls --no-verify} || return 1
                done
            done;;
        chat)
            best=0
            for rate in $CHAT_RATES; do
                run_bench "$set" "$s" "chat-$rate" "$N_CHAT" --scenario chat --rate "$rate" \
                    --duration "$CHAT_SECONDS" --mech "$MECH" || return 1
                f=$OUT/$set/$s/chat-$rate.json
                # sustained: nothing lost, at least 95 % of the asked rate delivered, and no
                # backlog (p99 within SUSTAINED_P99_MS: a queue drained after the run is not)
                python3 - "$f" "$rate" "$CHAT_SECONDS" "$SUSTAINED_P99_MS" <<'EOF' || break
import json, sys
r = json.load(open(sys.argv[1])); rate, secs, p99 = map(float, sys.argv[2:5])
ok = (r.get('exit') == 0 and r.get('messages_lost', 1) == 0 and r.get('messages_errors', 1) == 0
      and r.get('messages_delivered', 0) >= 0.95 * rate * secs
      and r.get('latency_ms', {}).get('p99', 1e9) <= p99)
sys.exit(0 if ok else 1)
EOF
                best=$rate
            done
            echo "$best" > "$OUT/$set/$s/chat-max"
            half=$(cat "$OUT/$set/hearthd/chat-max" 2>/dev/null || echo "$best")
            half=$(( half / 2 ))
            [ "$half" -gt 0 ] || half=$(( ${CHAT_RATES%% *} / 2 ))
            settle
            run_bench "$set" "$s" chat-half "$N_CHAT" --scenario chat --rate "$half" \
                --duration "$CHAT_SECONDS" --mech "$MECH" || return 1
            sleep 2
            echo "{\"rss_kib\": $(server_mem_kib VmRSS), \"hwm_kib\": $(server_mem_kib VmHWM)}" \
                > "$OUT/$set/$s/after-burst.json";;
        presence)
            settle  # a backlog of the runs before (a peer's queue) is not this step's
            run_bench "$set" "$s" presence-setup "$N_PRES" --scenario presence --roster-size "$ROSTER" \
                --rate 1 --duration 1 --setup-timeout "$SETUP_TIMEOUT" --mech "$MECH" || return 1
            # rosters the first run could not complete would be made again, under the measure
            f=$(jget "$OUT/$set/$s/presence-setup.json" setup_ready)
            if [ "${f:-0}" != "$N_PRES" ]; then
                echo "   rosters complete after the first run: ${f:-0} of $N_PRES; the measured run is skipped"
                continue
            fi
            run_bench "$set" "$s" presence "$N_PRES" --scenario presence --roster-size "$ROSTER" \
                --rate "$PRES_RATE" --duration "$SECONDS_TRAFFIC" --setup-timeout "$SETUP_TIMEOUT" --mech "$MECH" || return 1;;
        muc)
            settle
            run_bench "$set" "$s" muc "$N_MUC" --scenario muc --room-size "$ROOM" --rate "$MUC_RATE" \
                --duration "$SECONDS_TRAFFIC" --setup-timeout "$SETUP_TIMEOUT" --mech "$MECH" || return 1;;
        *) die "unknown step $step (login idle chat presence muc)";;
        esac
    done
    cleanup
    if [ "$set" = pgsql ]; then  # what the server stored, as evidence that it used PostgreSQL
        pg -d "bench_$s" -Atq -c "SELECT json_build_object(
            'db_bytes', pg_database_size(current_database()),
            'tables', (SELECT count(*) FROM pg_stat_user_tables),
            'rows', (SELECT sum(n_live_tup) FROM pg_stat_user_tables))" > "$OUT/$set/$s/database.json"
        echo "   $s's database: $(cat "$OUT/$set/$s/database.json")"
    fi
    [ -z "${KEEP:-}" ] && rm -rf "$d"
    return 0
}

for set in $SETS; do
    for s in $SERVERS; do
        run_server "$set" "$s" || { echo "   $s ($set) stopped early: see $OUT/$set/$s"; cleanup; }
    done
done

versions=$(
    echo "hearthd $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null)"
    for s in $SERVERS; do
        case $s in
        prosody|ejabberd) echo "$s $(dpkg-query -W -f '${Version}' "$s" 2>/dev/null)";;
        esac
    done
    [ -n "$PG_PORT" ] && echo "postgresql $(pg -d postgres -Atqc 'SHOW server_version')"
    echo "machine $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
)
python3 "$HERE/compare_report.py" "$OUT" "$versions" "$CHAT_SECONDS"
