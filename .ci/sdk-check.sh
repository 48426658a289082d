#!/usr/bin/env bash
# SDK check (issues 7 and 11): generates the Python client (openapi-python-client) and the
# TypeScript types (openapi-typescript, used with openapi-fetch) from `marque openapi`, fails on
# any warning or error either generator prints or if their output does not compile, then signs in
# with each against a running `marque` (sdk/python/signin.py, sdk/typescript/signin.ts:
# send-code with a test number, verify-code, profile, refresh, logout, 401 after).
#
# The document's server URL is the service's (`marque openapi` prints `http://HOST:PORT` when
# PUBLIC_BASE_URL is unset), and the sign-in scripts take their base URL from it.
#
# Everything is installed, at pinned versions, into a temporary directory, so it runs on a fresh
# machine (needs python3, node/npm and cargo; installs python3-venv or nodejs/npm with apt-get
# if missing). The server runs from the debug build on a free port with SQLite in that
# directory, and is stopped on exit.
#
# Usage: .ci/sdk-check.sh [SPEC.json]   (with a SPEC: only the generators' check, no sign-in)
set -euo pipefail

# Pinned versions.
PY_CLIENT_GEN=0.29.1   # openapi-python-client
RUFF=0.17.6            # run by openapi-python-client on its output
HTTPX=0.28.1           # the generated client's dependencies
ATTRS=26.1.0
OPENAPI_TYPESCRIPT=7.13.0
OPENAPI_FETCH=0.17.0
TYPESCRIPT=5.9.3
TYPES_NODE=20.19.43

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 npm_config_fund=false npm_config_audit=false


if [[ $# -ge 1 ]]; then
    cp "$1" "$work/spec.json"
    e2e=false
else
    (cd "$root" && cargo build -q --bin marque)
    bin=$root/target/debug/marque
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # `marque` with only the settings given here: nothing from the caller's environment (a
    # MARQUE_CONFIG or PUBLIC_BASE_URL there) changes the document or the server. `env` execs
    # marque, so a background `$!` is marque's own PID.
    marque_env=(env -i PATH="$PATH" HOST=127.0.0.1 PORT="$port" RUST_LOG=warn)
    "${marque_env[@]}" "$bin" openapi >"$work/spec.json"
    e2e=true
fi

# Everything a generator prints beyond its expected lines fails the check.
check() {
    local name=$1 expected=$2 output=$3
    printf '%s\n' "$output" | sed "s/^/[$name] /"
    local rest
    rest=$(printf '%s\n' "$output" | grep -Ev "$expected" | grep -v '^[[:space:]]*$' || true)
    if [[ -n $rest ]]; then
        echo "sdk-check: $name printed warnings or errors:" >&2
        printf '%s\n' "$rest" >&2
        exit 1
    fi
}

# Python: openapi-python-client in a venv, with ruff (which it runs on the generated code; without
# it, it warns "ruff is not in PATH").
if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install -q "openapi-python-client==$PY_CLIENT_GEN" "ruff==$RUFF" \
    "httpx==$HTTPX" "attrs==$ATTRS"
out=$(cd "$work" && PATH="$work/venv/bin:$PATH" openapi-python-client generate \
    --path spec.json --output-path python 2>&1) || { echo "$out" >&2; exit 1; }
check python '^Generating python$' "$out"
"$work/venv/bin/python" -m compileall -q "$work/python" >/dev/null

# TypeScript: openapi-typescript's types, compiled with the sign-in script (strict) for
# openapi-fetch; the script is type-checked against the document too.
if ! command -v npm >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir "$work/ts"
cat >"$work/ts/package.json" <<'JSON'
{ "name": "marque-sdk-check", "private": true, "type": "module" }
JSON
cat >"$work/ts/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext",
    "strict": true, "noUncheckedIndexedAccess": true, "skipLibCheck": false,
    "types": ["node"], "outDir": "out"
  },
  "files": ["api.ts", "signin.ts"]
}
JSON
(cd "$work/ts" && npm install -s --no-package-lock "openapi-typescript@$OPENAPI_TYPESCRIPT" \
    "openapi-fetch@$OPENAPI_FETCH" "typescript@$TYPESCRIPT" "@types/node@$TYPES_NODE" >/dev/null)
out=$(cd "$work" && ts/node_modules/.bin/openapi-typescript spec.json -o ts/api.ts 2>&1) \
    || { echo "$out" >&2; exit 1; }
check typescript '^✨ openapi-typescript [0-9.]+$|^🚀 spec\.json → ts/api\.ts \[[0-9.]+m?s\]$' "$out"
cp "$root/sdk/typescript/signin.ts" "$work/ts/"
(cd "$work/ts" && node_modules/.bin/tsc -p .)

echo "sdk-check: Python and TypeScript clients generated without warnings"
[[ $e2e == true ]] || exit 0

# A running service: SQLite in the temporary directory, one test number with a fixed code.
base_url=$("$work/venv/bin/python" -c \
    'import json, sys; print(json.load(open(sys.argv[1]))["servers"][0]["url"])' "$work/spec.json")
serve_env=(DATABASE_URL_MARQUE_KG="sqlite://$work/kg.db" DATABASE_URL_MARQUE_US="sqlite://$work/us.db"
    TEST_PHONE_NUMBERS=+996555000001=123456)
"${marque_env[@]}" "${serve_env[@]}" "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
ready=false
for _ in $(seq 1 60); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if "${marque_env[@]}" "${serve_env[@]}" "$bin" healthcheck 2>/dev/null; then ready=true; break; fi
    sleep 0.5
done
if [[ $ready != true ]]; then
    echo "sdk-check: marque did not become ready at $base_url within 30 s:" >&2
    cat "$work/server.log" >&2
    exit 1
fi

fail() { echo "sdk-check: $1 failed to sign in; server log:" >&2; cat "$work/server.log" >&2; exit 1; }
MARQUE_BASE_URL=$base_url PYTHONPATH="$work/python" \
    "$work/venv/bin/python" "$root/sdk/python/signin.py" || fail signin.py
MARQUE_BASE_URL=$base_url node "$work/ts/out/signin.js" || fail signin.ts

echo "sdk-check: both clients signed in, refreshed and logged out against marque at $base_url"
