#!/usr/bin/env bash
# Mutation testing: mutmut (configured under [tool.mutmut] in pyproject.toml)
# mutates the ledger, verification, serial, carbon-arithmetic and issuance
# modules in a copy under ./mutants/ and runs the tests that reach each mutant.
# Then prints the score per module (recorded in docs/quality.md).
# MUTATION_CHILDREN sets the parallel workers (default 1: it is a long run);
# extra arguments are mutant names or globs, e.g. "trading.serials*".
# mutmut keeps results in ./mutants/ and re-runs only what changed; delete
# that directory for a clean run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

# The copy runs the i18n tests too: it needs the compiled catalogue.
"$PY" manage.py compilemessages -l zh_Hans >/dev/null
# The mutants run on the embedded default, never a configured server.
unset DATABASE_URL REDIS_URL
# One migrated test database, copied by each mutant's run (tests/conftest.py)
# instead of migrating for every mutant.
template="$PWD/mutants-test-database.sqlite3"
rm -f "$template" "$template-wal" "$template-shm"
DATABASE_URL="spatialite:///$template" DJANGO_SETTINGS_MODULE=config.settings.test \
    "$PY" manage.py migrate --no-input >/dev/null
export MUTATION_DB_TEMPLATE="$template"
.venv/bin/mutmut run --max-children "${MUTATION_CHILDREN:-1}" "$@"

# Second pass, on PostgreSQL: there the ledger's steps run as PL/pgSQL functions
# called from trading/services.py, a path SQLite never takes. Its survivors of
# the first pass run again against a migrated PostgreSQL template (each mutant
# on its own copy); a mutant either stage's tests kill is killed, as with
# `make test`. MUTATION_POSTGRES=0 skips it.
if [ "${MUTATION_POSTGRES:-1}" = "1" ]; then
  if stack_env=$(bash scripts/production_stack.sh); then
    (
      while IFS= read -r line; do export "${line?}"; done <<< "$stack_env"
      # Tests connect as the owner, with Celery eager and the cache in memory.
      unset REDIS_URL DATABASE_APP_ROLE DATABASE_APP_PASSWORD
      template=mutation_template
      DATABASE_URL="${DATABASE_URL%/*}/$template"
      export DATABASE_URL MUTATION_DB_TEMPLATE="$template"
      "$PY" - "$template" <<'PYTHON'
import os
import sys

import environ
import psycopg

settings = environ.Env.db_url_config(os.environ["DATABASE_URL"])
with psycopg.connect(
    host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
    password=settings["PASSWORD"], dbname="postgres", autocommit=True,
) as maintenance:
    maintenance.execute(f'DROP DATABASE IF EXISTS "{sys.argv[1]}" WITH (FORCE)')
    maintenance.execute(f'CREATE DATABASE "{sys.argv[1]}"')
PYTHON
      DJANGO_SETTINGS_MODULE=config.settings.test "$PY" manage.py migrate --no-input >/dev/null
      mapfile -t survivors < <("$PY" scripts/mutation_score.py --survivors trading.services)
      if [ "${#survivors[@]}" -gt 0 ]; then
        echo "== PostgreSQL pass: ${#survivors[@]} trading.services mutants"
        .venv/bin/mutmut run --max-children "${MUTATION_CHILDREN:-1}" "${survivors[@]}"
      fi
    )
  else
    echo "mutation: the PostgreSQL pass is skipped (the production stack did not start)." >&2
  fi
fi
"$PY" scripts/mutation_score.py
