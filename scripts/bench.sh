#!/usr/bin/env bash
# Every benchmark, each measured against a peer in the same run; results are
# written to docs/benchmarks.md. PostgreSQL benchmarks use the production-stack
# services (scripts/production_stack.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

for module in bench/*.py; do
  name=$(basename "$module" .py)
  case "$name" in __init__|report|ledger|certificates|market|split|_*) continue ;; esac
  echo "== bench.$name (embedded)"
  "$PY" -m "bench.$name"
done

# wrk (Debian's) loads the web server from a separate process.
if ! command -v wrk >/dev/null && [ "$(id -u)" -eq 0 ]; then
  EXTRA_DEBIAN_PACKAGES="wrk" bash scripts/bootstrap.sh
fi

if stack_env=$(bash scripts/production_stack.sh); then
  while IFS= read -r line; do export "${line?}"; done <<< "$stack_env"
  for name in overlap ledger certificates market split; do
    echo "== bench.$name (PostgreSQL/PostGIS)"
    "$PY" -m "bench.$name"
  done
else
  echo "bench: PostgreSQL benchmarks skipped (the production stack could not start)." >&2
fi
