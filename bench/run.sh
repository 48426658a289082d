#!/usr/bin/env bash
# Load benchmark of `marque` against PostgreSQL with wrk. See bench/README.md.
#
#   bash bench/run.sh                       # build, run the five scenarios, write bench/results.md
#   WORKERS=2 DATABASE_POOL_SIZE=16 BLOCKING_THREADS=8 bash bench/run.sh     # try server settings
#
# Knobs (environment): BENCH_THREADS (2), BENCH_CONNECTIONS (64), BENCH_DURATION (10 s),
# BENCH_WARMUP (3 s), BENCH_NUMBERS (2000 test numbers), BENCH_SCENARIOS
# ("profile verify-token login-flow health markets"), BENCH_RESULTS (bench/results.md),
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
SCENARIOS="${BENCH_SCENARIOS:-profile verify-token login-flow health markets}"
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
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/marque"

SERVER_PID=""
DBS_CREATED=0
TMP="$(mktemp -d "${TMPDIR:-/tmp}/marque-bench.XXXXXX")"
SERVER_LOG="$TMP/server.log"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CLK_TCK="$(getconf CLK_TCK)"
# CPU ticks: the server process; all postgres processes; the whole machine (busy, total).
ticks_of_pid() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_of_comm() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v c="($1)" '$2 == c {s += $14 + $15} END {print s + 0}'
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

if [[ "$SKIP_BUILD" != 1 ]]; then
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
)
[[ -n "${WORKERS:-}" ]] && server_env+=(WORKERS="$WORKERS")
[[ -n "${DATABASE_POOL_SIZE:-}" ]] && server_env+=(DATABASE_POOL_SIZE="$DATABASE_POOL_SIZE")
[[ -n "${BLOCKING_THREADS:-}" ]] && server_env+=(BLOCKING_THREADS="$BLOCKING_THREADS")

start_server() {
    PORT="$(free_port)" || die "no free port found"
    BASE="http://127.0.0.1:$PORT"
    log "starting $BIN on $BASE (WORKERS=${WORKERS:-default} DATABASE_POOL_SIZE=${DATABASE_POOL_SIZE:-default} BLOCKING_THREADS=${BLOCKING_THREADS:-default})"
    env "${server_env[@]}" PORT="$PORT" "$BIN" serve >"$SERVER_LOG" 2>&1 9>&- &
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
    read -r "$@" <<<"$wrk_cpu $(ticks_of_pid "$SERVER_PID") $(ticks_of_comm postgres) $(ticks_machine)"
}

# Runs wrk for $2 seconds with run_scenario's `script` and `extra`; output in $TMP/$name.$1,
# failure reported as "$name $3 failed".
run_wrk() {
    local out="$TMP/$name.$1"
    wrk "${WRK_COMMON[@]}" -d"${2}s" -s "$script" "${extra[@]}" >"$out" 2>&1 \
        || die "$name $3 failed: $(cat "$out")"
}

run_scenario() {
    local name=$1 script=$2
    shift 2
    local -a extra=("$@")   # wrk options, then the URL and any "--" script arguments
    log "$name: warm-up ${WARMUP}s"
    run_wrk warmup "$WARMUP" warm-up
    local s0 p0 w0 m0_busy m0_total m0_steal
    cpu_counters w0 s0 p0 m0_busy m0_total m0_steal
    log "$name: wrk ${WRK_COMMON[*]} -d${DURATION}s"
    run_wrk out "$DURATION" run
    local s1 p1 w1 m1_busy m1_total m1_steal
    cpu_counters w1 s1 p1 m1_busy m1_total m1_steal
    kill -0 "$SERVER_PID" 2>/dev/null || die "server died during $name"

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
    R[$name,rss_after]="$(rss_mib "$SERVER_PID" VmRSS)"
    # Idle blocking-pool threads live 10 s, so this is about the number the run needed.
    R[$name,threads]="$(awk '$1 == "Threads:" {print $2}' "/proc/$SERVER_PID/status")"
    # The human-readable wrk output, for the log.
    sed -e '/^BENCH /d' "$TMP/$name.out" >&2
}

STATS_LUA="$BENCH_DIR/lua/stats.lua"
FLOW_LUA="$BENCH_DIR/lua/flow.lua"
AUTH=(-H "Authorization: Bearer $TOKEN")
RUN=()
for sc in $SCENARIOS; do
    case "$sc" in
        profile)      run_scenario profile "$STATS_LUA" "${AUTH[@]}" "$BASE/api/v1/auth/profile" ;;
        verify-token) run_scenario verify-token "$STATS_LUA" "${AUTH[@]}" "$BASE/api/v1/auth/verify-token" ;;
        login-flow)   run_scenario login-flow "$FLOW_LUA" "$BASE" -- "$PHONE_PREFIX" 1 "$NUMBERS" "$TEST_CODE" "$THREADS" ;;
        health)       run_scenario health "$STATS_LUA" "$BASE/health" ;;
        markets)      run_scenario markets "$STATS_LUA" "$BASE/api/v1/auth/markets" ;;
        *) die "unknown scenario $sc (profile verify-token login-flow health markets)" ;;
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

target_of() {
    case "$1" in
        profile)      echo "≥ 10,000 req/s, p99 ≤ 20 ms" ;;
        verify-token) echo "≥ 15,000 req/s" ;;
        login-flow)   echo "≥ 1,500 flows/s" ;;
        health)       echo "(pings both DBs; no target)" ;;
        markets)      echo "(no DB: HTTP ceiling; no target)" ;;
    esac
}
met_of() {
    local n=$1
    case "$n" in
        profile)      verdict eval 'ge "${R[profile,rps]}" 10000 && le "${R[profile,p99_us]}" 20000' ;;
        verify-token) verdict ge "${R[$n,rps]}" 15000 ;;
        login-flow)   verdict ge "${R[$n,flows_per_s]}" 1500 ;;
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
    echo "- machine: $(nproc) cores ($CPU_MODEL), ${MEM_GIB} GiB RAM, $(uname -sr); wrk, server and PostgreSQL $PG_VERSION share the cores"
    echo "- server: \`target/release/marque\`, WORKERS=${WORKERS:-default (cores)}, DATABASE_POOL_SIZE=${DATABASE_POOL_SIZE:-default (16)} per market, BLOCKING_THREADS=${BLOCKING_THREADS:-default (= pool size)} per worker, RUST_LOG=${BENCH_RUST_LOG:-warn}, ALLOWED_ORIGINS=*, database URL parameters: ${PG_PARAMS:-none (libpq default sslmode=prefer)}, $NUMBERS KG test numbers"
    echo "- load: \`wrk -t$THREADS -c$CONNS -d${DURATION}s --latency\` after a ${WARMUP} s warm-up per scenario, 127.0.0.1"
    echo "- machine busy before the run (other processes): ${IDLE_BUSY}% of one core; the \"other\" CPU is everything but server, PostgreSQL and wrk (interrupt/softirq time not charged to a process, other users' processes, and steal: time the hypervisor took)"
    echo
    echo "| scenario | req/s | p50 | p99 | non-2xx | socket errors | flows/s | CPU server / pg / wrk / other (steal) in % of 1 core | RSS / threads after | target | met |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---|:-:|"
    for n in "${RUN[@]}"; do
        flows="–"
        [[ -n "${R[$n,flows_per_s]:-}" ]] && flows="${R[$n,flows_per_s]}"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s / %s / %s / %s (%s) | %s MiB / %s | %s | %s |\n' \
            "$n" "${R[$n,rps]}" "$(ms "${R[$n,p50_us]}")" "$(ms "${R[$n,p99_us]}")" \
            "${R[$n,non2xx]}" "${R[$n,sockerr]}" "$flows" \
            "${R[$n,cpu_server]}" "${R[$n,cpu_pg]}" "${R[$n,cpu_wrk]}" "${R[$n,cpu_other]}" "${R[$n,cpu_steal]}" "${R[$n,rss_after]}" "${R[$n,threads]}" \
            "$(target_of "$n")" "$(met_of "$n")"
    done
    echo
    echo "Peak RSS of the server over the whole run (VmHWM): **$PEAK_RSS MiB** (target ≤ 64 MiB: $(verdict le "$PEAK_RSS" 64))"
    echo
    echo "Server at the end: $SERVER_THREADS threads, $PG_BACKENDS PostgreSQL connections to the bench databases, $WARNINGS warning/error lines in its log."
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
