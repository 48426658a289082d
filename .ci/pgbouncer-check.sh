#!/usr/bin/env bash
# Issue 11, "scaling proven on this machine": two `marque` processes whose market databases are
# reached through PgBouncer pass the two-instance session tests (tests/api/instances.rs).
#
# Starts a throwaway PgBouncer (Debian `pgbouncer`, installed with apt-get when missing) on a
# free port in front of the PostgreSQL of MARQUE_TEST_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), runs the instance tests with
# MARQUE_TEST_PGBOUNCER_URL pointing at it, checks that queries did go through it, and stops it.
#
# Pool mode: `session` (PGBOUNCER_POOL_MODE overrides it, to watch another mode fail). diesel's
# PgConnection prepares its statements by name (`__diesel_stmt_N`, cached per connection) and the
# migrations hold a session advisory lock; both live on one server connection, which only session
# pooling keeps for a client connection's life. Transaction pooling hands each transaction to any
# server connection, so a named statement is missing there ("prepared statement … does not
# exist") unless PgBouncer ≥ 1.21 tracks them (`max_prepared_statements`); Debian 12 ships 1.18.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${PGBOUNCER_POOL_MODE:-session}"
pg_url="${MARQUE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export MARQUE_TEST_POSTGRES_URL="$pg_url"

if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer
fi
bouncer="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
echo "pgbouncer-check: $("$bouncer" --version | sed -n 1p), pool_mode=$mode"

# postgres://user[:password]@host[:port]/db
re='^postgres(ql)?://([^:@/]+)(:([^@]*))?@([^:/?]+)(:([0-9]+))?/'
if [[ ! "$pg_url" =~ $re ]]; then
  echo "pgbouncer-check: cannot read user, host and port from MARQUE_TEST_POSTGRES_URL" >&2
  exit 1
fi
pg_user="${BASH_REMATCH[2]}"
pg_password="${BASH_REMATCH[4]}"
pg_host="${BASH_REMATCH[5]}"
pg_port="${BASH_REMATCH[7]:-5432}"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
dir="$(mktemp -d /tmp/marque-pgbouncer.XXXXXX)"
chmod 755 "$dir"

cat >"$dir/pgbouncer.ini" <<EOF
[databases]
; every database name, as the tests create their own
* = host=$pg_host port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
; only this machine's tests connect; the server side authenticates with userlist.txt
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = $pg_user
pool_mode = $mode
; 2 instances x 2 markets x DATABASE_POOL_SIZE=4, plus the tests' own connections
default_pool_size = 40
max_client_conn = 200
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
printf '"%s" "%s"\n' "$pg_user" "$pg_password" >"$dir/userlist.txt"

# PgBouncer refuses to run as root.
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$dir"
  runuser -u postgres -- "$bouncer" -d "$dir/pgbouncer.ini"
else
  "$bouncer" -d "$dir/pgbouncer.ini"
fi
stop() {
  if [ -f "$dir/pgbouncer.pid" ]; then kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true; fi
  sleep 0.2
  rm -rf "$dir"
}
trap stop EXIT
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

credentials="$pg_user${pg_password:+:$pg_password}"
export MARQUE_TEST_PGBOUNCER_URL="postgres://$credentials@127.0.0.1:$port/postgres"
status=0
cargo test -p marque --test api instances::two_processes -- --test-threads=2 || status=$?
if [ "$status" != 0 ]; then
  echo "pgbouncer-check: the instance tests failed through PgBouncer (pool_mode=$mode); its log:" >&2
  tail -n 40 "$dir/pgbouncer.log" >&2 || true
  exit "$status"
fi

# The queries went through PgBouncer: its statistics count them per database.
queries="$(PGPASSWORD="$pg_password" psql -h 127.0.0.1 -p "$port" -U "$pg_user" -At -F ' ' \
  -c 'SHOW STATS' pgbouncer | awk '$1 != "pgbouncer" { n += $3 } END { print n + 0 }')"
if [ "$queries" -le 0 ]; then
  echo "pgbouncer-check: PgBouncer saw no queries: the tests did not go through it" >&2
  exit 1
fi
echo "pgbouncer-check: ok ($queries queries through PgBouncer, pool_mode=$mode)"
