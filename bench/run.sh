#!/usr/bin/env bash
# Load benchmark of `marque` against PostgreSQL with wrk. See bench/README.md.
#
#   bash bench/run.sh                       # build, run the scenarios, write bench/results.md
#   WORKERS=2 DATABASE_POOL_SIZE=16 BLOCKING_THREADS=8 bash bench/run.sh     # try server settings
#
# Knobs (environment): BENCH_THREADS (2), BENCH_CONNECTIONS (64), BENCH_DURATION (10 s),
# BENCH_WARMUP (3 s), BENCH_NUMBERS (2000 test numbers), BENCH_SCENARIOS ("profile verify-token
# send-code login-flow health markets grown-send-code grown-login-flow"; also addresses and
# notifications, not in the default list), BENCH_GROW_ROWS
# (1000000 rows per table and market for the grown-* scenarios), BENCH_RESULTS (bench/results.md),
# BENCH_SKIP_BUILD (0), BENCH_DB_PREFIX (marque_bench), BENCH_PG_PARAMS (query string added to
# the server's database URLs, e.g. sslmode=disable), BENCH_LOCK_WAIT (900 s), PGHOST/PGPORT/PGUSER
# (127.0.0.1/5432/postgres). The server inherits the environment (so WORKERS, DATABASE_POOL_SIZE,
# BLOCKING_THREADS… reach it); the script sets HOST, PORT, SECRET_KEY, both database URLs,
# TEST_PHONE_NUMBERS, RUST_LOG and ALLOWED_ORIGINS itself.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"

THREADS="${BENCH_THREADS:-2}"
CONNS="${BENCH_CONNECTIONS:-64}"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-3}"
NUMBERS="${BENCH_NUMBERS:-2000}"
SCENARIOS="${BENCH_SCENARIOS:-profile verify-token send-code login-flow health markets grown-send-code grown-login-flow}"
GROW_ROWS="${BENCH_GROW_ROWS:-1000000}"
RESULTS="${BENCH_RESULTS:-$BENCH_DIR/results.md}"
SKIP_BUILD="${BENCH_SKIP_BUILD:-0}"
DB_PREFIX="${BENCH_DB_PREFIX:-marque_bench}"
PG_PARAMS="${BENCH_PG_PARAMS:-}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"

PHONE_PREFIX="+996555"         # KG mobile: +996 555 xxx xxx (9 national digits)
TEST_CODE="123456"
TOKEN_INDEX=900001             # the number used for the bearer token, outside the flow range
DB_KG="${DB_PREFIX}_kg"
DB_US="${DB_PREFIX}_us"
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/marque}"

SERVER_PID=""
DBS_CREATED=0
TMP="$(mktemp -d "${TMPDIR:-/tmp}/marque-bench.XXXXXX")"
SERVER_LOG="$TMP/server.log"
# The console SMS provider's output (one line per delivered message, on the server's stdout).
CONSOLE_LOG="$TMP/console.log"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CLK_TCK="$(getconf CLK_TCK)"
# CPU ticks: the server process; all postgres processes; the whole machine (busy, total).
ticks_of_pid() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_of_comm() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v c="($1)" '$2 == c {s += $14 + $15} END {print s + 0}'
}
# All processes of the PostgreSQL cluster the bench uses (its postmaster and the postmaster's
# children), not every `postgres` process on the machine: another cluster (another port) may be
# busy with someone else's tests.
PG_POSTMASTER=""
ticks_of_pg() {
    [[ -n "$PG_POSTMASTER" ]] || { ticks_of_comm postgres; return; }
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
        awk -v p="$PG_POSTMASTER" '$1 == p || $4 == p {s += $14 + $15} END {print s + 0}'
}
# busy, total and steal (time the hypervisor gave our vCPUs to someone else) of the whole machine.
ticks_machine() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat; }
# Per cent of one core used over $4 seconds by a counter going from $1 to $2 ticks of $3 a second.
pct_of_core() { awk -v a="$1" -v b="$2" -v t="$3" -v s="$4" 'BEGIN {printf "%.0f", (b - a) / t / s * 100}'; }
# Per cent of one core: the share ($1 → $2) of all machine ticks ($3 → $4), times the cores.
pct_of_machine() {
    awk -v a="$1" -v b="$2" -v ta="$3" -v tb="$4" -v n="$(nproc)" \
        'BEGIN {printf "%.0f", (tb > ta) ? (b - a) / (tb - ta) * 100 * n : 0}'
}
# CPU seconds used by this shell's finished children (wrk): `times` must run in this shell (not
# in a $(…) subshell, where it starts from zero), so it writes to a file that this parses.
children_cpu() {
    awk 'NR == 2 {
        n = split($0, f, " "); s = 0
        for (i = 1; i <= n; i++) { split(f[i], ms, "m"); sub(/s$/, "", ms[2]); s += ms[1] * 60 + ms[2] }
        print s }' "$1"
}
# Busy share of the machine over 1 s, in % of one core (before the server starts: other users).
machine_busy_pct() {
    local b0 t0 b1 t1 x
    read -r b0 t0 x < <(ticks_machine)
    sleep 1
    read -r b1 t1 x < <(ticks_machine)
    pct_of_machine "$b0" "$b1" "$t0" "$t1"
}
rss_mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

drop_dbs() {
    psql_admin -c "DROP DATABASE IF EXISTS \"$DB_KG\" WITH (FORCE)" \
               -c "DROP DATABASE IF EXISTS \"$DB_US\" WITH (FORCE)"
}

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server $SERVER_PID ignored SIGTERM for 10 s: SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$SERVER_PID" ]]; then
        log "stopping server (pid $SERVER_PID)"
        stop_server
    fi
    if [[ $rc -ne 0 && -s "$SERVER_LOG" ]]; then
        log "last server log lines:"
        tail -n 30 "$SERVER_LOG" >&2 || true
    fi
    if [[ $DBS_CREATED -eq 1 ]]; then
        log "dropping $DB_KG and $DB_US"
        drop_dbs || log "could not drop the bench databases"
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One run at a time on this machine (they would share the cores, and the database names): wait
# for a run in progress, including its clean-up, to finish.
LOCK_FILE="${TMPDIR:-/tmp}/marque-bench.lock"
exec 9>"$LOCK_FILE"
if ! flock -n 9; then
    log "another bench run holds $LOCK_FILE: waiting up to ${BENCH_LOCK_WAIT:-900} s"
    flock -w "${BENCH_LOCK_WAIT:-900}" 9 || die "another bench run is still in progress"
fi

# --- 1. tools, build, databases, server ---------------------------------------------------------

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
for tool in wrk curl psql pg_isready; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

if [[ "$SKIP_BUILD" != 1 && -z "${BENCH_BIN:-}" ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release)
fi
[[ -x "$BIN" ]] || die "no binary at $BIN (build first)"

if ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        log "PostgreSQL is down: starting cluster 15/main"
        pg_ctlcluster --skip-systemctl-redirect 15 main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
    pg_isready -q -h "$PGHOST" -p "$PGPORT" || die "PostgreSQL at $PGHOST:$PGPORT is not ready"
fi

PG_DATA_DIR="$(psql -X -Atq -d postgres -c 'SHOW data_directory' 2>/dev/null || true)"
if [[ -n "$PG_DATA_DIR" && -r "$PG_DATA_DIR/postmaster.pid" ]]; then
    PG_POSTMASTER="$(head -n 1 "$PG_DATA_DIR/postmaster.pid")"
else
    log "cannot read the postmaster's pid: PostgreSQL CPU counts every postgres process on the machine"
fi
# Statement statistics when the cluster preloads pg_stat_statements (the shared cluster does not;
# see bench/README.md for a bench cluster that does): reset before each measured run, read after.
PGSS=0
if [[ "$(psql -X -Atq -d postgres -c 'SHOW shared_preload_libraries' 2>/dev/null)" == *pg_stat_statements* ]]; then
    psql_admin -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' && PGSS=1
fi

IDLE_BUSY="$(machine_busy_pct)"
if (( IDLE_BUSY > 20 )); then
    log "WARNING: the machine is already ${IDLE_BUSY}% busy (of one core) before the benchmark: results will be noisy"
fi

log "creating databases $DB_KG, $DB_US"
DBS_CREATED=1
drop_dbs
psql_admin -c "CREATE DATABASE \"$DB_KG\"" -c "CREATE DATABASE \"$DB_US\""

# A port below the kernel's ephemeral range (client sockets — wrk's, libpq's — take ports from
# that range, and a port held by one of them cannot be bound even though nothing listens on it),
# that nothing uses right now. The server's own bind error is retried with another port below.
free_port() {
    local lo p
    lo="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
    (( lo > 11000 )) || lo=32768
    for _ in $(seq 1 200); do
        p=$((10000 + RANDOM % (lo - 10000)))
        if command -v ss >/dev/null 2>&1; then
            [[ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]] || continue
        fi
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

test_numbers() {
    local i
    for ((i = 1; i <= NUMBERS; i++)); do
        printf '%s%06d=%s,' "$PHONE_PREFIX" "$i" "$TEST_CODE"
    done
    printf '%s%06d=%s' "$PHONE_PREFIX" "$TOKEN_INDEX" "$TEST_CODE"
}
TEST_PHONE_NUMBERS_VALUE="$(test_numbers)"
SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PG_BASE="postgres://$PGUSER@$PGHOST:$PGPORT"

server_env=(
    HOST=127.0.0.1
    SECRET_KEY="$SECRET"
    DATABASE_URL_MARQUE_KG="$PG_BASE/$DB_KG${PG_PARAMS:+?$PG_PARAMS}"
    DATABASE_URL_MARQUE_US="$PG_BASE/$DB_US${PG_PARAMS:+?$PG_PARAMS}"
    TEST_PHONE_NUMBERS="$TEST_PHONE_NUMBERS_VALUE"
    RUST_LOG="${BENCH_RUST_LOG:-warn}"
    # CORS echoes the Origin header: flow.lua uses it to attribute answers to numbers.
    ALLOWED_ORIGINS='*'
    # send-code with fresh numbers takes the full path (limits, SMS guards, outbox) without
    # being refused: every limit is raised far above what one run can send, through the
    # service's own settings. The outbox worker runs as in production, delivering to the console
    # provider (one line per message on stdout, which goes to its own file).
    SMS_PROVIDER=console
    # All of wrk's connections come from 127.0.0.1: no per-IP connection cap (default 64, and a
    # connection refused with 429 is closed, so wrk's reconnects cascade).
    MAX_CONNECTIONS_PER_IP=0
    MAX_CODES_PER_WINDOW=1000000000
    RESEND_COOLDOWN_SECONDS=0
    IP_SEND_LIMIT=1000000000
    IPV6_48_SEND_LIMIT=1000000000
    IP_VERIFY_LIMIT=1000000000
    SMS_DAILY_LIMIT=1000000000
    SMS_DAILY_LIMIT_KG=1000000000
    SMS_DAILY_LIMIT_US=1000000000
    SMS_PREFIX_HOURLY_LIMIT=1000000000
    SMS_PREFIX_ALARM_MULTIPLE=1000000000
)
[[ -n "${WORKERS:-}" ]] && server_env+=(WORKERS="$WORKERS")
[[ -n "${DATABASE_POOL_SIZE:-}" ]] && server_env+=(DATABASE_POOL_SIZE="$DATABASE_POOL_SIZE")
[[ -n "${BLOCKING_THREADS:-}" ]] && server_env+=(BLOCKING_THREADS="$BLOCKING_THREADS")

start_server() {
    PORT="$(free_port)" || die "no free port found"
    BASE="http://127.0.0.1:$PORT"
    log "starting $BIN on $BASE (WORKERS=${WORKERS:-default} DATABASE_POOL_SIZE=${DATABASE_POOL_SIZE:-default} BLOCKING_THREADS=${BLOCKING_THREADS:-default})"
    env "${server_env[@]}" PORT="$PORT" "$BIN" serve >"$CONSOLE_LOG" 2>"$SERVER_LOG" 9>&- &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            return 1
        fi
        curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && return 0
        sleep 0.1
    done
    die "server not healthy after 30 s"
}
for attempt in 1 2 3; do
    start_server && break
    if [[ $attempt -lt 3 ]] && grep -q 'binding 127.0.0.1' "$SERVER_LOG"; then
        log "port $PORT was taken: retrying"
        continue
    fi
    die "server exited during start-up"
done
log "server up (pid $SERVER_PID)"

# --- 2. token -------------------------------------------------------------------------------------

post_json() { curl -sS -o "$TMP/body" -w '%{http_code}' -H 'content-type: application/json' -d "$2" "$BASE$1"; }
TOKEN_PHONE="$(printf '%s%06d' "$PHONE_PREFIX" "$TOKEN_INDEX")"
status="$(post_json /api/v1/auth/send-code "{\"phone_number\":\"$TOKEN_PHONE\"}")"
[[ "$status" == 200 ]] || die "send-code for $TOKEN_PHONE: HTTP $status $(cat "$TMP/body")"
status="$(post_json /api/v1/auth/verify-code \
    "{\"phone_number\":\"$TOKEN_PHONE\",\"verification_code\":\"$TEST_CODE\"}")"
[[ "$status" == 200 ]] || die "verify-code for $TOKEN_PHONE: HTTP $status $(cat "$TMP/body")"
TOKEN="$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' "$TMP/body")"
[[ -n "$TOKEN" ]] || die "no access_token in $(cat "$TMP/body")"
for path in /api/v1/auth/profile /api/v1/auth/verify-token; do
    status="$(curl -sS -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE$path")"
    [[ "$status" == 200 ]] || die "GET $path with the token: HTTP $status $(cat "$TMP/body")"
done
log "token for $TOKEN_PHONE works"

# The fresh numbers of lua/send.lua must be valid to phonenumber: one of each market through the
# API (outside the ranges the script uses) before any run.
for phone in +996709999999 +12019999999; do
    status="$(post_json /api/v1/auth/send-code "{\"phone_number\":\"$phone\"}")"
    [[ "$status" == 200 ]] || die "send-code for the fresh number $phone: HTTP $status $(cat "$TMP/body")"
done
log "fresh KG and US numbers are accepted"

# --- 3. scenarios ---------------------------------------------------------------------------------

declare -A R   # results: R[scenario,key]
WRK_COMMON=(-t"$THREADS" -c"$CONNS" --latency)

# Reads the CPU counters into the variables named by the arguments: wrk's seconds (children of
# this shell), the server's and postgres's ticks, the machine's busy, total and steal ticks.
# Called as a function, never in a subshell: `times` must report this shell's children.
cpu_counters() {
    times >"$TMP/times"
    local wrk_cpu
    wrk_cpu="$(children_cpu "$TMP/times")"
    read -r "$@" <<<"$wrk_cpu $(ticks_of_pid "$SERVER_PID") $(ticks_of_pg) $(ticks_machine)"
}

# Runs wrk for $2 seconds with run_scenario's `script` and `extra`; output in $TMP/$name.$1,
# failure reported as "$name $3 failed". BENCH_SEQ numbers the wrk runs (send.lua takes a fresh
# block of numbers for each).
WRK_SEQ=0
run_wrk() {
    local out="$TMP/$name.$1"
    WRK_SEQ=$((WRK_SEQ + 1))
    BENCH_SEQ="$WRK_SEQ" wrk "${WRK_COMMON[@]}" -d"${2}s" -s "$script" "${extra[@]}" >"$out" 2>&1 \
        || die "$name $3 failed: $(cat "$out")"
}

# The statements of the bench databases since the last reset, per request of scenario $1
# ($2 requests): calls per request, mean execution time and rows, most called first.
pgss_report() {
    local name=$1 requests=$2
    psql -X -Atq -F $'\t' -d postgres -c "
        SELECT sum(calls), round(sum(total_exec_time)::numeric, 1), sum(rows), toplevel,
               regexp_replace(query, '\s+', ' ', 'g')
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname IN ('$DB_KG', '$DB_US') AND calls > 0
        GROUP BY toplevel, query
        ORDER BY toplevel DESC, sum(calls) DESC, sum(total_exec_time) DESC" 2>/dev/null |
        awk -F '\t' -v n="$requests" -v sc="$name" '
            { per = $1 / n; if ($4 == "t") { tot += per; ms += $2 }
              if (per >= 0.01) printf "| %s | %.2f | %.1f | %.2f | %s`%s` |\n", sc, per, $2 * 1000 / $1, $3 / $1, ($4 == "t") ? "" : "(nested) ", substr($5, 1, 160) }
            END { printf "| %s | **%.2f** | | | **round trips (top-level statements) per request; %.0f µs of execution per request** |\n", sc, tot, ms * 1000 / n }'
}
PGSS_TABLE="$TMP/pgss.md"
: >"$PGSS_TABLE"

run_scenario() {
    local name=$1 script=$2
    shift 2
    local -a extra=("$@")   # wrk options, then the URL and any "--" script arguments
    log "$name: warm-up ${WARMUP}s"
    run_wrk warmup "$WARMUP" warm-up
    local s0 p0 w0 m0_busy m0_total m0_steal
    if [[ $PGSS == 1 ]]; then psql -X -Atq -d postgres -c 'SELECT pg_stat_statements_reset()' >/dev/null; fi
    local sent0
    sent0="$(wc -l <"$CONSOLE_LOG")"
    cpu_counters w0 s0 p0 m0_busy m0_total m0_steal
    log "$name: wrk ${WRK_COMMON[*]} -d${DURATION}s"
    run_wrk out "$DURATION" run
    local s1 p1 w1 m1_busy m1_total m1_steal
    cpu_counters w1 s1 p1 m1_busy m1_total m1_steal
    kill -0 "$SERVER_PID" 2>/dev/null || die "server died during $name"
    R[$name,delivered]=$(($(wc -l <"$CONSOLE_LOG") - sent0))

    local line kv k v
    line="$(grep '^BENCH ' "$TMP/$name.out" | tail -n 1)" || die "$name: no BENCH line in wrk output"
    for kv in $line; do
        [[ "$kv" == *=* ]] || continue
        k="${kv%%=*}" v="${kv#*=}"
        R[$name,$k]="$v"
    done
    # CPU in % of one core over the run (the machine has $(nproc) cores = $(nproc)00 %).
    local secs="${R[$name,duration_s]}"
    R[$name,cpu_server]="$(pct_of_core "$s0" "$s1" "$CLK_TCK" "$secs")"
    R[$name,cpu_pg]="$(pct_of_core "$p0" "$p1" "$CLK_TCK" "$secs")"
    R[$name,cpu_all]="$(pct_of_machine "$m0_busy" "$m1_busy" "$m0_total" "$m1_total")"
    R[$name,cpu_steal]="$(pct_of_machine "$m0_steal" "$m1_steal" "$m0_total" "$m1_total")"
    # wrk's counter is in seconds already: one "tick" a second.
    R[$name,cpu_wrk]="$(pct_of_core "$w0" "$w1" 1 "$secs")"
    local all="${R[$name,cpu_all]}" srv="${R[$name,cpu_server]}" pg="${R[$name,cpu_pg]}" wr="${R[$name,cpu_wrk]}"
    R[$name,cpu_other]="$((all - srv - pg - wr))"
    # CPU time per request (µs): the clearest figure on a shared machine, where req/s and latency
    # move with other users' load but the work one request costs does not (much).
    R[$name,us_server]="$(awk -v a="$s0" -v b="$s1" -v t="$CLK_TCK" -v n="${R[$name,requests]}" 'BEGIN {printf "%.0f", (b - a) / t * 1e6 / n}')"
    R[$name,us_pg]="$(awk -v a="$p0" -v b="$p1" -v t="$CLK_TCK" -v n="${R[$name,requests]}" 'BEGIN {printf "%.0f", (b - a) / t * 1e6 / n}')"
    if [[ -n "${R[$name,flows]:-}" ]]; then
        R[$name,us_pg_flow]="$(awk -v a="$p0" -v b="$p1" -v t="$CLK_TCK" -v n="${R[$name,flows]}" 'BEGIN {printf "%.0f", (n > 0) ? (b - a) / t * 1e6 / n : 0}')"
    fi
    R[$name,pending]="$(psql -X -Atq -d "$DB_KG" -c "SELECT count(*) FROM outbox WHERE status = 'pending'" 2>/dev/null || echo '?')+$(psql -X -Atq -d "$DB_US" -c "SELECT count(*) FROM outbox WHERE status = 'pending'" 2>/dev/null || echo '?')"
    if [[ $PGSS == 1 ]]; then pgss_report "$name" "${R[$name,requests]}" >>"$PGSS_TABLE"; fi
    R[$name,rss_after]="$(rss_mib "$SERVER_PID" VmRSS)"
    # Idle blocking-pool threads live 10 s, so this is about the number the run needed.
    R[$name,threads]="$(awk '$1 == "Threads:" {print $2}' "/proc/$SERVER_PID/status")"
    # The human-readable wrk output, for the log.
    sed -e '/^BENCH /d' "$TMP/$name.out" >&2
}

STATS_LUA="$BENCH_DIR/lua/stats.lua"
FLOW_LUA="$BENCH_DIR/lua/flow.lua"
SEND_LUA="$BENCH_DIR/lua/send.lua"
# Before the first grown-* scenario: GROW_ROWS rows in each market's challenge, outbox and
# rate-limit tables (bench/grow.sql), both markets at once; once per run.
GROWN=0
grow_tables() {
    [[ $GROWN == 0 ]] || return 0
    GROWN=1
    log "growing the challenge, outbox and rate-limit tables of both markets by $GROW_ROWS rows each"
    local t0=$SECONDS
    psql -X -q -v rows="$GROW_ROWS" -v cc=996 -d "$DB_KG" -f "$BENCH_DIR/grow.sql" &
    local kg=$!
    psql -X -q -v rows="$GROW_ROWS" -v cc=1 -d "$DB_US" -f "$BENCH_DIR/grow.sql" || die "growing $DB_US failed"
    wait "$kg" || die "growing $DB_KG failed"
    GROW_SECONDS=$((SECONDS - t0))
    log "tables grown in ${GROW_SECONDS} s"
}
AUTH=(-H "Authorization: Bearer $TOKEN")
RUN=()
for sc in $SCENARIOS; do
    case "$sc" in
        profile)      run_scenario profile "$STATS_LUA" "${AUTH[@]}" "$BASE/api/v1/auth/profile" ;;
        verify-token) run_scenario verify-token "$STATS_LUA" "${AUTH[@]}" "$BASE/api/v1/auth/verify-token" ;;
        addresses)    run_scenario addresses "$STATS_LUA" "${AUTH[@]}" "$BASE/api/v1/profile/addresses" ;;
        notifications) run_scenario notifications "$STATS_LUA" "${AUTH[@]}" "$BASE/api/v1/profile/notifications" ;;
        login-flow)   run_scenario login-flow "$FLOW_LUA" "$BASE" -- "$PHONE_PREFIX" 1 "$NUMBERS" "$TEST_CODE" "$THREADS" ;;
        send-code)    run_scenario send-code "$SEND_LUA" "$BASE" -- "$THREADS" ;;
        grown-send-code) grow_tables; run_scenario grown-send-code "$SEND_LUA" "$BASE" -- "$THREADS" ;;
        grown-login-flow) grow_tables; run_scenario grown-login-flow "$FLOW_LUA" "$BASE" -- "$PHONE_PREFIX" 1 "$NUMBERS" "$TEST_CODE" "$THREADS" ;;
        health)       run_scenario health "$STATS_LUA" "$BASE/health" ;;
        markets)      run_scenario markets "$STATS_LUA" "$BASE/api/v1/auth/markets" ;;
        *) die "unknown scenario $sc (profile verify-token send-code login-flow health markets grown-send-code grown-login-flow; also addresses notifications)" ;;
    esac
    RUN+=("$sc")
done

# --- 4. peak RSS ----------------------------------------------------------------------------------

# VmHWM is the kernel's high-water mark of the resident set; its counters are approximate (per-CPU
# batches), so take the largest of it and the VmRSS read after each scenario.
PEAK_RSS="$(rss_mib "$SERVER_PID" VmHWM)"
for n in "${RUN[@]}"; do
    PEAK_RSS="$(awk -v a="$PEAK_RSS" -v b="${R[$n,rss_after]}" 'BEGIN {printf "%.1f", (b > a) ? b : a}')"
done
SERVER_THREADS="$(awk '$1 == "Threads:" {print $2}' "/proc/$SERVER_PID/status")"
PG_BACKENDS="$(psql -X -Atq -d postgres -c \
    "SELECT count(*) FROM pg_stat_activity WHERE datname IN ('$DB_KG', '$DB_US')" 2>/dev/null || echo '?')"
WARNINGS="$(grep -ciE 'warn|error' "$SERVER_LOG" || true)"

# --- 5. summary -----------------------------------------------------------------------------------

ms() { awk -v u="$1" 'BEGIN {printf "%.2f ms", u / 1000}'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a >= b)}'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a <= b)}'; }
verdict() { if "$@"; then echo "✅"; else echo "❌"; fi; }

# Issue 13's targets. grown-* must stay within 20 % of the fresh database's figures (req/s and
# PostgreSQL CPU per request), when the fresh scenario ran too.
target_of() {
    case "$1" in
        profile|verify-token) echo "≥ 15,000 req/s, p99 ≤ 10 ms, server ≤ 60 µs/req" ;;
        send-code)    echo "≥ 3,000 req/s, p99 ≤ 50 ms, pg ≤ 300 µs/req" ;;
        login-flow)   echo "≥ 1,500 flows/s, pg ≤ 1 ms/flow" ;;
        grown-*)      echo "within 20 % of ${1#grown-} (req/s, pg µs/req)" ;;
        health)       echo "(pings both DBs; no target)" ;;
        markets)      echo "(no DB: HTTP ceiling; no target)" ;;
    esac
}
within_20() {
    local g=$1 f=${1#grown-}
    [[ -n "${R[$f,rps]:-}" ]] || return 1
    awk -v gr="${R[$g,rps]}" -v fr="${R[$f,rps]}" -v gp="${R[$g,us_pg]}" -v fp="${R[$f,us_pg]}" \
        'BEGIN {exit !(gr >= 0.8 * fr && gp <= 1.2 * fp)}'
}
met_of() {
    local n=$1
    case "$n" in
        profile|verify-token)
            verdict eval 'ge "${R[$n,rps]}" 15000 && le "${R[$n,p99_us]}" 10000 && le "${R[$n,us_server]}" 60' ;;
        send-code)
            verdict eval 'ge "${R[$n,rps]}" 3000 && le "${R[$n,p99_us]}" 50000 && le "${R[$n,us_pg]}" 300' ;;
        login-flow)   verdict eval 'ge "${R[$n,flows_per_s]}" 1500 && le "${R[$n,us_pg_flow]}" 1000' ;;
        grown-*)      verdict within_20 "$n" ;;
        health|markets) echo "–" ;;
    esac
}

CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
MEM_GIB="$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
PG_VERSION="$( (psql -X -Atq -d postgres -c 'SHOW server_version' 2>/dev/null || echo '?') | awk '{print $1}')"

{
    echo "# Marque Auth load benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: $(nproc) cores ($CPU_MODEL), ${MEM_GIB} GiB RAM, $(uname -sr); wrk, server and PostgreSQL $PG_VERSION share the cores; PostgreSQL at $PGHOST:$PGPORT${PG_POSTMASTER:+ (postmaster $PG_POSTMASTER; pg CPU counts its processes only)}, pg_stat_statements: $([[ $PGSS == 1 ]] && echo on || echo off)"
    echo "- server: \`$BIN\`, WORKERS=${WORKERS:-default (cores)}, DATABASE_POOL_SIZE=${DATABASE_POOL_SIZE:-default (16)} per market, BLOCKING_THREADS=${BLOCKING_THREADS:-default (= pool size)} per worker, RUST_LOG=${BENCH_RUST_LOG:-warn}, ALLOWED_ORIGINS=*, database URL parameters: ${PG_PARAMS:-none (libpq default sslmode=prefer)}, $NUMBERS KG test numbers"
    echo "- load: \`wrk -t$THREADS -c$CONNS -d${DURATION}s --latency\` after a ${WARMUP} s warm-up per scenario, 127.0.0.1"
    echo "- machine busy before the run (other processes): ${IDLE_BUSY}% of one core; the \"other\" CPU is everything but server, PostgreSQL and wrk (interrupt/softirq time not charged to a process, other users' processes, and steal: time the hypervisor took)"
    echo
    echo "| scenario | req/s | p50 | p99 | non-2xx | socket errors | flows/s | server µs/req | pg µs/req | pg µs/flow | CPU server / pg / wrk / other (steal) in % of 1 core | RSS / threads after | target | met |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|:-:|"
    for n in "${RUN[@]}"; do
        flows="–" per_flow="–"
        [[ -n "${R[$n,flows_per_s]:-}" ]] && flows="${R[$n,flows_per_s]}"
        [[ -n "${R[$n,us_pg_flow]:-}" ]] && per_flow="${R[$n,us_pg_flow]}"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s / %s (%s) | %s MiB / %s | %s | %s |\n' \
            "$n" "${R[$n,rps]}" "$(ms "${R[$n,p50_us]}")" "$(ms "${R[$n,p99_us]}")" \
            "${R[$n,non2xx]}" "${R[$n,sockerr]}" "$flows" "${R[$n,us_server]}" "${R[$n,us_pg]}" "$per_flow" \
            "${R[$n,cpu_server]}" "${R[$n,cpu_pg]}" "${R[$n,cpu_wrk]}" "${R[$n,cpu_other]}" "${R[$n,cpu_steal]}" "${R[$n,rss_after]}" "${R[$n,threads]}" \
            "$(target_of "$n")" "$(met_of "$n")"
    done
    echo
    echo "µs/req is CPU time ÷ requests during the measured run (for login flows, pg µs/flow ÷ flows: both steps). Outbox: messages delivered by the console provider during each run / messages still pending at its end (KG+US): $(for n in "${RUN[@]}"; do printf '%s %s / %s; ' "$n" "${R[$n,delivered]}" "${R[$n,pending]}"; done)"
    if [[ -n "${GROW_SECONDS:-}" ]]; then
        echo
        echo "grown-*: before them, bench/grow.sql added $GROW_ROWS rows to each of the challenge, outbox and rate-limit tables of both market databases (${GROW_SECONDS} s)."
    fi
    echo
    echo "Peak RSS of the server over the whole run (VmHWM): **$PEAK_RSS MiB** (target ≤ 64 MiB: $(verdict le "$PEAK_RSS" 64))"
    echo
    echo "Server at the end: $SERVER_THREADS threads, $PG_BACKENDS PostgreSQL connections to the bench databases, $WARNINGS warning/error lines in its log."
    if [[ -s "$PGSS_TABLE" ]]; then
        echo
        echo "Statements per request (pg_stat_statements over the measured run; both market databases summed; BEGIN/COMMIT included; \"(nested)\" are statements run inside another, e.g. foreign-key checks, not round trips; statements under 0.01 per request left out; the outbox worker's statements are included):"
        echo
        echo "| scenario | calls/req | mean µs | rows/call | statement |"
        echo "|---|---:|---:|---:|---|"
        cat "$PGSS_TABLE"
    fi
    if [[ -n "${R[login-flow,flows]:-}" ]]; then
        echo
        echo "login-flow: ${R[login-flow,flows]} flows (verify-code 200) and ${R[login-flow,send_ok]} send-code 200 in ${R[login-flow,duration_s]} s;" \
             "non-200: send-code ${R[login-flow,send_bad]}, verify-code ${R[login-flow,verify_bad]} (${R[login-flow,errs]});" \
             "unattributed answers ${R[login-flow,unattributed]}, filler requests ${R[login-flow,filler]}." \
             "req/s and latencies count both steps."
    fi
    echo
    echo "Latency p90 / max: $(for n in "${RUN[@]}"; do printf '%s %s / %s; ' "$n" "$(ms "${R[$n,p90_us]}")" "$(ms "${R[$n,max_us]}")"; done)"
} >"$TMP/results.md"

if [[ "$WARNINGS" != 0 ]]; then
    log "server log warnings/errors (first 10):"
    grep -iE 'warn|error' "$SERVER_LOG" | head -n 10 >&2 || true
fi
cp "$TMP/results.md" "$RESULTS"
echo
cat "$RESULTS"
echo
log "written to $RESULTS"

# --- 6. stop + drop (the EXIT trap) ------------------------------------------------------------------
