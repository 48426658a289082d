#!/usr/bin/env bash
# Debian package check (issue 11): builds the .deb with `cargo deb` (metadata in Cargo.toml,
# files in debian/), installs it with `dpkg -i`, verifies the systemd unit with
# `systemd-analyze verify`, starts the installed `/usr/bin/marque serve --config
# /etc/marque/marque.toml` as the package's `marque` user with the unit's environment file
# (systemd does not run as PID 1 here, so not through systemctl), waits for `/health/ready`
# (`marque healthcheck`, then the HTTP status), stops it and purges the package.
#
# Needs root (dpkg); runs in .ci/run (~15 s once the debug build exists). It installs cargo-deb (pinned) with `cargo install --locked` when missing.
# The package is built from the dev profile (`cargo deb --profile dev`), reusing the debug build
# of `cargo test`: a release build takes ~7 min on the CI machine. cargo-deb warns that dev
# profiles are unsupported; the pinned version builds them fine. Releases: `cargo deb`.
#
# It refuses to run where a `marque` package, user or /var/lib/marque already exists, so it
# never touches a real installation; it removes the user and /var/lib/marque it created.
set -euo pipefail

CARGO_DEB=3.8.0

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=
installed=false
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $installed == true ]]; then
        if dpkg -s marque >/dev/null 2>&1; then dpkg -P marque >/dev/null || true; fi
        if getent passwd marque >/dev/null; then userdel marque || true; fi
        if getent group marque >/dev/null; then groupdel marque || true; fi
        rm -rf /var/lib/marque
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ $(id -u) -ne 0 ]]; then
    echo "deb-check: needs root (dpkg -i)" >&2
    exit 1
fi
# One run at a time on a machine (CI runs of several branches share it): the package, its user
# and /var/lib/marque are machine-wide.
exec 9>/var/lock/marque-deb-check.lock
flock 9
if dpkg -s marque >/dev/null 2>&1 || getent passwd marque >/dev/null || [[ -e /var/lib/marque ]]; then
    echo "deb-check: a marque package, user or /var/lib/marque exists already; not touching it" >&2
    exit 1
fi

if [[ $(cargo deb --version 2>/dev/null || true) != *"$CARGO_DEB"* ]]; then
    cargo install --locked "cargo-deb@$CARGO_DEB"
fi
cd "$root"
cargo deb --profile dev --fast --output "$work/marque.deb"

dpkg -i "$work/marque.deb"
installed=true
# Listed to a file first: `grep -q` stopping early would kill dpkg-deb with SIGPIPE (pipefail).
dpkg-deb -c "$work/marque.deb" >"$work/contents"
grep -q ' \./usr/lib/systemd/system/marque\.service$' "$work/contents"

# The unit as installed: directives, the ExecStart binary, the user. Without systemd as PID 1
# `systemd-analyze verify` still parses and checks the unit offline; it only warns about an
# unknown value ("…, ignoring"), so anything it prints fails the check.
if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify /usr/lib/systemd/system/marque.service 2>&1) \
        || { echo "$out" >&2; exit 1; }
    if [[ -n $out ]]; then
        echo "deb-check: systemd-analyze verify: $out" >&2
        exit 1
    fi
else
    echo "deb-check: systemd-analyze is missing; the unit is not verified" >&2
fi

# What the unit runs, as the unit runs it: user marque, /etc/marque/marque.env, the config file,
# working directory /var/lib/marque. PORT overrides the file's 8000 (taken on a shared machine).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secret=$(sed -n 's/^SECRET_KEY=//p' /etc/marque/marque.env)
[[ -n $secret ]] || { echo "deb-check: /etc/marque/marque.env has no SECRET_KEY" >&2; exit 1; }
run_as_marque=(setpriv --reuid=marque --regid=marque --init-groups
    env -i PATH=/usr/bin:/bin SECRET_KEY="$secret" PORT="$port")
(cd /var/lib/marque && exec "${run_as_marque[@]}" /usr/bin/marque serve \
    --config /etc/marque/marque.toml) >"$work/server.log" 2>&1 &
server_pid=$!

ready=false
for _ in $(seq 1 60); do
    kill -0 "$server_pid" 2>/dev/null || break
    if "${run_as_marque[@]}" /usr/bin/marque --config /etc/marque/marque.toml healthcheck \
        2>/dev/null; then
        ready=true
        break
    fi
    sleep 0.5
done
if [[ $ready != true ]]; then
    echo "deb-check: the installed marque did not become ready within 30 s:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/ready")
if [[ $status != 200 ]]; then
    echo "deb-check: /health/ready answered $status" >&2
    exit 1
fi
# The databases are where the shipped config says, owned by the service user.
[[ $(stat -c %U /var/lib/marque/marque-kg.db) == marque ]]

kill "$server_pid"
wait "$server_pid" || true
server_pid=
dpkg -r marque >/dev/null
dpkg -P marque >/dev/null
[[ ! -e /usr/bin/marque && ! -e /etc/marque && ! -e /etc/systemd/system/multi-user.target.wants/marque.service ]]

echo "deb-check: the .deb installed, its marque answered /health/ready on port $port, and it was removed"
