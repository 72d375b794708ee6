#!/usr/bin/env bash
# The whole suite: stage 1 on the embedded default (SpatiaLite, eager Celery),
# stage 2 on the production stack (PostgreSQL/PostGIS, Redis, a real Celery
# worker). REQUIRE_PRODUCTION_STACK=1 turns a skipped stage 2 into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTEST=(.venv/bin/python -m pytest)

# Browser tests need Debian's Chromium and a CJK font; as root, install them.
# Without them the browser tests skip (or fail under REQUIRE_PRODUCTION_STACK=1).
if [ "$(id -u)" -eq 0 ]; then
  EXTRA_DEBIAN_PACKAGES="chromium fonts-wqy-microhei" bash scripts/bootstrap.sh
fi

run_pytest() {
  # pytest exits 5 when a selection holds no test: that is not a pass.
  local status=0
  "${PYTEST[@]}" "$@" || status=$?
  if [ "$status" -eq 5 ]; then
    echo "test: no tests were collected" >&2
    return 1
  fi
  return "$status"
}

echo "== stage 1: embedded default (SpatiaLite, eager Celery)"
run_pytest -m "not production_stack" "$@"

echo "== stage 2: production stack (PostgreSQL/PostGIS, Redis, Celery worker)"
if stack_env=$(bash scripts/production_stack.sh); then
  while IFS= read -r line; do export "${line?}"; done <<< "$stack_env"
  run_pytest "$@"
else
  if [ "${REQUIRE_PRODUCTION_STACK:-0}" = "1" ]; then
    echo "test: the production-stack stage could not start and REQUIRE_PRODUCTION_STACK=1: failing." >&2
    exit 1
  fi
  echo "test: production-stack stage SKIPPED (see the reason above)." >&2
fi
