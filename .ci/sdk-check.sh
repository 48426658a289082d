#!/usr/bin/env bash
# SDK check (issue 7): generates the Python client (openapi-python-client 0.29) and the
# TypeScript types (openapi-typescript 7) from the OpenAPI document, and fails on any warning or
# error either generator prints, or if their output does not compile. Installs both generators
# into a temporary directory, so it runs on a fresh machine (needs python3, node/npm; installs
# python3-venv with apt-get if venv is missing).
#
# Usage: .ci/sdk-check.sh [SPEC.json]   (default: dumps it with `cargo run -q -- openapi`)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 npm_config_fund=false npm_config_audit=false

if [[ $# -ge 1 ]]; then
    cp "$1" "$work/spec.json"
else
    (cd "$root" && cargo run -q -- openapi) >"$work/spec.json"
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
"$work/venv/bin/pip" install -q 'openapi-python-client==0.29.*' ruff
out=$(cd "$work" && PATH="$work/venv/bin:$PATH" openapi-python-client generate \
    --path spec.json --output-path python 2>&1) || { echo "$out" >&2; exit 1; }
check python '^Generating python$' "$out"
"$work/venv/bin/python" -m compileall -q "$work/python" >/dev/null

# TypeScript: openapi-typescript (with its peer typescript, used to check the output).
if ! command -v npm >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir "$work/ts"
(cd "$work/ts" && npm init -y >/dev/null && npm install -s openapi-typescript@7 typescript@5 >/dev/null)
out=$(cd "$work" && ts/node_modules/.bin/openapi-typescript spec.json -o ts/api.ts 2>&1) \
    || { echo "$out" >&2; exit 1; }
check typescript '^✨ openapi-typescript [0-9.]+$|^🚀 spec\.json → ts/api\.ts \[[0-9.]+m?s\]$' "$out"
(cd "$work/ts" && node_modules/.bin/tsc --noEmit --strict api.ts)

echo "sdk-check: Python and TypeScript clients generated without warnings"
