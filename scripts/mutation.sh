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
"$PY" scripts/mutation_score.py
