#!/usr/bin/env bash
# Starts a local PostgreSQL 15 + PostGIS 3 and Redis for the production-stack test
# stage, installing them first when run as root. On success prints the
# DATABASE_URL and REDIS_URL lines to export; on failure prints one sentence on
# stderr and exits 1.
#
# Two database roles, as in docker compose: the suite runs as the owner
# (registry_test, a superuser here because pytest creates test databases and
# extensions), and the application role (registry_app, which owns nothing)
# is what tests/trading/test_database_roles.py connects as; the DATABASE_APP_*
# lines tell the suite its name and password.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_VERSION=15
PG_PORT=${TEST_PG_PORT:-5432}
REDIS_PORT=${TEST_REDIS_PORT:-6390}
DB_USER=registry_test
DB_PASSWORD=registry_test
APP_DB_USER=registry_app
APP_DB_PASSWORD=registry_app

fail() { printf '%s\n' "$*" >&2; exit 1; }

if [ -n "${TEST_DATABASE_URL:-}" ] && [ -n "${TEST_REDIS_URL:-}" ]; then
  printf 'DATABASE_URL=%s\nREDIS_URL=%s\n' "$TEST_DATABASE_URL" "$TEST_REDIS_URL"
  # Servers of your own: name their application role to test it too.
  if [ -n "${TEST_DATABASE_APP_ROLE:-}" ]; then
    printf 'DATABASE_APP_ROLE=%s\nDATABASE_APP_PASSWORD=%s\n' \
      "$TEST_DATABASE_APP_ROLE" "${TEST_DATABASE_APP_PASSWORD:-}"
  fi
  exit 0
fi

[ "$(id -u)" -eq 0 ] || fail "the production-stack stage needs root to install and start PostgreSQL/PostGIS and Redis (or set TEST_DATABASE_URL and TEST_REDIS_URL)"

EXTRA_DEBIAN_PACKAGES="postgresql-$PG_VERSION postgresql-$PG_VERSION-postgis-3 redis-server" \
  bash scripts/bootstrap.sh >&2 || fail "could not install PostgreSQL/PostGIS and Redis"

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$PG_VERSION main$"; then
  pg_createcluster "$PG_VERSION" main >&2 || fail "could not create the PostgreSQL $PG_VERSION cluster"
fi
if ! pg_lsclusters -h | awk -v v="$PG_VERSION" '$1==v && $2=="main" {print $4}' | grep -q online; then
  pg_ctlcluster "$PG_VERSION" main start >&2 || fail "could not start PostgreSQL $PG_VERSION (pg_ctlcluster $PG_VERSION main start)"
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
  sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || fail "PostgreSQL did not accept connections on 127.0.0.1:$PG_PORT"

# The test role creates its own test databases and the postgis/btree_gist
# extensions in them, which needs a superuser on a stock cluster.
runuser -u postgres -- psql -q -p "$PG_PORT" -v ON_ERROR_STOP=1 >&2 <<SQL || fail "could not create the PostgreSQL test role"
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_DB_USER') THEN
    CREATE ROLE $APP_DB_USER LOGIN PASSWORD '$APP_DB_PASSWORD';
  END IF;
  -- Whatever it was before: the application role has no power of its own.
  ALTER ROLE $APP_DB_USER NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
END
\$\$;
SQL
if ! runuser -u postgres -- psql -p "$PG_PORT" -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_USER'" | grep -q 1; then
  runuser -u postgres -- createdb -p "$PG_PORT" -O "$DB_USER" "$DB_USER" >&2
fi

if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  mkdir -p var/redis
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' \
    --appendonly no --dir "$PWD/var/redis" --pidfile "$PWD/var/redis/redis.pid" \
    --logfile "$PWD/var/redis/redis.log" >&2 || fail "could not start redis-server on port $REDIS_PORT"
  for _ in $(seq 1 20); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || fail "Redis did not answer on 127.0.0.1:$REDIS_PORT"

printf 'DATABASE_URL=postgis://%s:%s@127.0.0.1:%s/%s\n' "$DB_USER" "$DB_PASSWORD" "$PG_PORT" "$DB_USER"
printf 'REDIS_URL=redis://127.0.0.1:%s/0\n' "$REDIS_PORT"
printf 'DATABASE_APP_ROLE=%s\nDATABASE_APP_PASSWORD=%s\n' "$APP_DB_USER" "$APP_DB_PASSWORD"
