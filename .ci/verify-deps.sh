#!/usr/bin/env bash
# marque-verify stands alone (issue 7 item 8): other services link it, so it depends on
# jsonwebtoken, serde, serde_json and thiserror only, and nothing of marque-markets (phonenumber,
# regex, nom…). Reads Cargo.lock only; builds nothing. Exit 1 with the offending crates otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

allowed_direct="jsonwebtoken serde serde_json thiserror"
forbidden="marque-markets marque-domain phonenumber regex nom"

direct=$(cargo tree --offline -p marque-verify -e normal --depth 1 --prefix none --format '{p}' \
  | tail -n +2 | awk '{print $1}' | sort -u)
all=$(cargo tree --offline -p marque-verify -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)

status=0
for dep in $direct; do
  case " $allowed_direct " in
    *" $dep "*) ;;
    *) echo "marque-verify: direct dependency \`$dep\` is not allowed (only: $allowed_direct)" >&2; status=1 ;;
  esac
done
for bad in $forbidden; do
  if grep -qx "$bad" <<<"$all"; then
    echo "marque-verify: \`$bad\` is in its dependency tree" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "marque-verify dependencies: ok ($(wc -l <<<"$all") crates)"
exit "$status"
