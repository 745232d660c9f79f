#!/bin/sh
# Creates the sidecar's own role and database beside Chatwoot's, in the same PostgreSQL.
#
# stack.yml mounts this into /docker-entrypoint-initdb.d/, so the postgres image runs it once, when it
# initialises an empty data volume. On a volume that already exists, run it by hand (README, "Deploy"):
#   docker exec "$(docker ps -q -f name=chat_postgres)" /docker-entrypoint-initdb.d/10-sidecar.sh
# It is safe to run twice: it only creates what is missing.
#
# The password comes from the Docker secret sidecar_db_password; the sidecar's DATABASE_URL secret
# must carry the same password (postgresql://sidecar:<password>@postgres:5432/sidecar).
set -eu

password_file="${SIDECAR_DB_PASSWORD_FILE:-/run/secrets/sidecar_db_password}"
if [ ! -s "$password_file" ]; then
    echo "postgres-init-sidecar: $password_file is missing or empty; create the sidecar_db_password secret" >&2
    exit 1
fi

# psql's :'pw' quotes the value as a literal, so any character in the password is safe.
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=pw="$(cat "$password_file")" <<'SQL'
SELECT format('CREATE ROLE sidecar LOGIN PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sidecar') \gexec
SELECT 'CREATE DATABASE sidecar OWNER sidecar'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'sidecar') \gexec
SQL
