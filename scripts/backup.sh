#!/bin/sh
# Back up genhub's PostgreSQL database with pg_dump in custom format (-Fc):
# compressed, and restorable table by table with scripts/restore.sh.
#
#   DATABASE_URL=postgresql+asyncpg://genhub:pw@db:5432/genhub scripts/backup.sh
#   scripts/backup.sh postgresql://genhub:pw@db:5432/genhub
#
# With docker compose (no pg_dump needed on the host; the dump is streamed out):
#   PG_DUMP="docker compose exec -T postgres pg_dump" \
#     DATABASE_URL=postgresql://genhub:genhub@localhost:5432/genhub scripts/backup.sh
#
# Writes $BACKUP_DIR/genhub-YYYYmmddTHHMMSSZ.dump (UTC; BACKUP_DIR defaults to
# ./backups), prints its path, and deletes dumps older than BACKUP_KEEP_DAYS
# (default 14; 0 keeps everything). The dump goes to a .partial file first, so a
# failed run never leaves a truncated file that looks like a backup.
#
# The URL may be the application's own (postgresql+asyncpg://, postgres://);
# it is turned into the libpq form pg_dump wants, `ssl=` included. pg_dump must
# be at least the server's major version.
#
# Object storage (S3/R2/MinIO) is not part of this dump: see docs/deploy.md,
# "Backups", for bucket versioning and lifecycle rules.
set -eu

usage() {
    echo "usage: DATABASE_URL=... $0 [DATABASE_URL]" >&2
    exit 2
}

url="${1:-${DATABASE_URL:-}}"
[ -n "$url" ] || usage

# postgresql+asyncpg:// and postgres:// -> postgresql://; asyncpg's ssl= -> sslmode=
libpq_url=$(printf '%s' "$url" | sed -e 's#^postgresql+[a-z0-9]*://#postgresql://#' \
    -e 's#^postgres://#postgresql://#' -e 's#\([?&]\)ssl=#\1sslmode=#')
case "$libpq_url" in
    postgresql://*) ;;
    *)
        echo "backup.sh: not a PostgreSQL URL (only PostgreSQL is backed up this way)" >&2
        exit 2
        ;;
esac

backup_dir="${BACKUP_DIR:-./backups}"
keep_days="${BACKUP_KEEP_DAYS:-14}"
pg_dump_cmd="${PG_DUMP:-pg_dump}"

mkdir -p "$backup_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
target="$backup_dir/genhub-$stamp.dump"
partial="$target.partial"

# No --file: the dump is written to stdout so that PG_DUMP may be a command run
# in another container (docker compose exec -T ...).
# shellcheck disable=SC2086 # PG_DUMP is a command with arguments, split on purpose
if ! $pg_dump_cmd --format=custom --compress=6 --no-owner --no-privileges --dbname="$libpq_url" >"$partial"; then
    rm -f "$partial"
    echo "backup.sh: pg_dump failed" >&2
    exit 1
fi
mv "$partial" "$target"
echo "$target"

if [ "$keep_days" -gt 0 ] 2>/dev/null; then
    find "$backup_dir" -maxdepth 1 -type f -name 'genhub-*.dump' -mtime +"$keep_days" -print -exec rm -f {} \; >&2
fi
