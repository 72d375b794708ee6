#!/bin/sh
# The registry's two database roles, made once when the db volume is first
# initialised (the postgis image runs /docker-entrypoint-initdb.d/* as the
# superuser; its own 10_postgis.sh has already added PostGIS):
#
# - registry: owns the database and its schema and runs migrations (the
#   `migrate` service); not a superuser.
# - registry_app: what web, worker and beat connect as. It owns nothing and has
#   no power of its own; `migrate` grants it its rights on the tables (the
#   journal, its head and the credit blocks are read-only to it: the ledger's
#   functions change them; see trading/db_guards.py).
#
# Passwords come from the environment (.env): DATABASE_OWNER_PASSWORD and
# DATABASE_APP_PASSWORD. Re-running it is harmless (existing roles are kept,
# their passwords and attributes reset).
set -e
: "${DATABASE_OWNER_PASSWORD:?set DATABASE_OWNER_PASSWORD in .env}"
: "${DATABASE_APP_PASSWORD:?set DATABASE_APP_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$POSTGRES_DB" \
  -v owner_password="$DATABASE_OWNER_PASSWORD" \
  -v app_password="$DATABASE_APP_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE registry LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'registry') \gexec
SELECT 'CREATE ROLE registry_app LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'registry_app') \gexec
ALTER ROLE registry NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'owner_password';
ALTER ROLE registry_app NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';

-- The owner: the database and its public schema (the migrations' tables,
-- functions and triggers are then its own).
ALTER DATABASE :"db" OWNER TO registry;
ALTER SCHEMA public OWNER TO registry;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- Extensions need the superuser: made here, so migrations find them.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- The application role may connect to this database and nothing more here.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO registry, registry_app;
SQL
