#!/bin/sh
# Entrypoint of the stand-in for postgres:16 that deploy/docker-check.sh builds (Docker
# Hub is out of its reach): like the real image's, it creates the cluster in $PGDATA on
# the first start, with POSTGRES_USER (superuser), POSTGRES_PASSWORD and POSTGRES_DB,
# and password authentication over TCP; then runs the server in the foreground.
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set}"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    [ "$db" = postgres ] || createdb --username="$user" "$db"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "database cluster initialised: user $user, database $db"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
