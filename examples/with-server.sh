#!/usr/bin/env bash
# Runs a command against a live `crm` server on a fresh, throw-away database, then stops
# the server and removes the database, whatever the command's outcome.
#
#   examples/with-server.sh sqlite|postgres COMMAND [ARG...]
#
# The server is target/debug/crm (build it first), listening on the first free port of
# 127.0.0.1:18180-18199. The command gets CRM_URL (e.g. http://127.0.0.1:18180).
# `postgres` creates a uniquely named database on PG_ADMIN_URL
# (default postgres://postgres@127.0.0.1:5432/postgres) and drops it afterwards; when
# PostgreSQL is not reachable it skips the command with a notice, or fails when CI=true.
set -euo pipefail

backend="${1:?usage: $0 sqlite|postgres COMMAND [ARG...]}"
shift
[ $# -gt 0 ] || { echo "usage: $0 sqlite|postgres COMMAND [ARG...]" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
crm="${CRM_BIN:-$root/target/debug/crm}"
[ -x "$crm" ] || { echo "error: $crm not found; run 'cargo build -p crm-server --bin crm'" >&2; exit 2; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for p in $(seq 18180 18199); do
    if port_free "$p"; then port="$p"; break; fi
done
[ -n "$port" ] || { echo "error: no free port in 127.0.0.1:18180-18199" >&2; exit 1; }

tmp="$(mktemp -d)"
server_pid=""
pg_db=""
pg_admin="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

cleanup() {
    local status=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -s "$tmp/server.log" ]; then
        echo "---- last lines of the server log" >&2
        tail -n 40 "$tmp/server.log" >&2
    fi
    if [ -n "$pg_db" ]; then
        psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" >/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case "$backend" in
    sqlite)
        database_url="sqlite://$tmp/crm.db"
        ;;
    postgres)
        if ! PGCONNECT_TIMEOUT=3 psql -q "$pg_admin" -c 'SELECT 1' >/dev/null 2>&1; then
            if [ "${CI:-}" = "true" ]; then
                echo "error: PostgreSQL is not reachable at $pg_admin; it is required when CI=true" >&2
                exit 1
            fi
            echo "notice: PostgreSQL not reachable at $pg_admin; skipped: $*"
            exit 0
        fi
        pg_db="crm_example_$(date +%s)_$$"
        psql -q -v ON_ERROR_STOP=1 "$pg_admin" -c "CREATE DATABASE \"$pg_db\"" >/dev/null
        database_url="${pg_admin%/*}/$pg_db"
        ;;
    *)
        echo "error: unknown backend '$backend' (sqlite or postgres)" >&2
        exit 2
        ;;
esac

DATABASE_URL="$database_url" \
CRM_BIND="127.0.0.1:$port" \
CRM_JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n')" \
CRM_OPEN_SIGNUP=false \
CRM_ENV=production \
CRM_LOG="${CRM_LOG:-warn}" \
    "$crm" serve >"$tmp/server.log" 2>&1 &
server_pid=$!

url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$url/readyz" 2>/dev/null; then break; fi
    kill -0 "$server_pid" 2>/dev/null || { echo "error: the server exited at start" >&2; exit 1; }
    sleep 0.1
done
curl -fsS -o /dev/null "$url/readyz" || { echo "error: $url/readyz did not answer within 10 s" >&2; exit 1; }
echo "==> crm on $url ($backend)"

CRM_URL="$url" "$@"
