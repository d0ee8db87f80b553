#!/bin/sh
# Restore a dump made by scripts/backup.sh into a PostgreSQL database with
# pg_restore --clean: objects in the dump are dropped and recreated, in one
# transaction (all or nothing).
#
#   scripts/restore.sh backups/genhub-20260101T020000Z.dump postgresql://genhub:pw@db:5432/genhub
#   DATABASE_URL=... scripts/restore.sh backups/genhub-20260101T020000Z.dump
#
# With docker compose (the dump is streamed into the container):
#   PG_RESTORE="docker compose exec -T postgres pg_restore" \
#     scripts/restore.sh backups/genhub-....dump postgresql://genhub:genhub@localhost:5432/genhub
#
# It overwrites data, so it asks for confirmation; pass --yes (or set
# RESTORE_CONFIRM=yes) to run it unattended. Stop the api, worker and scheduler
# first (docker compose stop api worker scheduler) so nothing writes meanwhile,
# and start them again afterwards; the dump holds the alembic_version table, so
# the schema revision comes back with the data.
set -eu

usage() {
    echo "usage: $0 [--yes] DUMP_FILE [DATABASE_URL]" >&2
    exit 2
}

assume_yes="${RESTORE_CONFIRM:-no}"
if [ "${1:-}" = "--yes" ]; then
    assume_yes=yes
    shift
fi
[ "$#" -ge 1 ] || usage
dump="$1"
url="${2:-${DATABASE_URL:-}}"
[ -n "$url" ] || usage
[ -f "$dump" ] || {
    echo "restore.sh: no such file: $dump" >&2
    exit 2
}

libpq_url=$(printf '%s' "$url" | sed -e 's#^postgresql+[a-z0-9]*://#postgresql://#' \
    -e 's#^postgres://#postgresql://#' -e 's#\([?&]\)ssl=#\1sslmode=#')
case "$libpq_url" in
    postgresql://*) ;;
    *)
        echo "restore.sh: not a PostgreSQL URL" >&2
        exit 2
        ;;
esac

if [ "$assume_yes" != "yes" ]; then
    # Show where it goes without the password.
    shown=$(printf '%s' "$libpq_url" | sed -e 's#//\([^:/@]*\):[^@]*@#//\1:***@#')
    printf 'Restore %s into %s, replacing its data? Type "yes": ' "$dump" "$shown" >&2
    read -r answer || answer=""
    [ "$answer" = "yes" ] || {
        echo "restore.sh: not confirmed, nothing done" >&2
        exit 1
    }
fi

pg_restore_cmd="${PG_RESTORE:-pg_restore}"
# The dump comes on stdin so that PG_RESTORE may run in another container.
# shellcheck disable=SC2086 # PG_RESTORE is a command with arguments, split on purpose
$pg_restore_cmd --clean --if-exists --no-owner --no-privileges --single-transaction \
    --exit-on-error --dbname="$libpq_url" <"$dump"
echo "restore.sh: restored $dump" >&2
