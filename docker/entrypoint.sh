#!/bin/sh
# genhub container entrypoint: one image runs `serve`, `worker`, `scheduler`,
# `migrate` and the other CLI commands.
#
#   serve              wait for the database, migrate (see below), then exec
#                      `genhub serve --host $HOST --port $PORT` (0.0.0.0 / 8000)
#   worker, scheduler  wait for the database, migrate only if RUN_MIGRATIONS=1,
#                      then exec `genhub worker` / `genhub scheduler`
#   migrate            wait for the database, then exec `genhub migrate ...`
#   all                serve + worker + scheduler in this one container, for a
#                      single-instance deployment whose local storage disk only
#                      one container can mount (Render disk variant, small VPS).
#                      Ends, and so gets restarted, when any of the three ends.
#                      Never run more than one: it includes THE scheduler.
#   other genhub commands (export-schema, create-admin, grant-credits,
#   seed-demo, wait-for-db) are exec'd as `genhub <command> ...`
#   genhub <command>   the same as `<command>` (so `genhub migrate`, as Fly's
#                      release_command and process lines say it, works too)
#   anything else      exec'd as given (`sh`, `python -c ...`)
#
# Environment:
#   GENHUB_BIN         the genhub executable (default: genhub, found on PATH)
#   HOST, PORT         where `serve` listens (default 0.0.0.0 and 8000); PORT is
#                      what Render and Koyeb set, and deploy/fly.toml sets
#   SKIP_MIGRATIONS=1  never migrate before starting (a release step did it)
#   RUN_MIGRATIONS=1   migrate before worker/scheduler too
#   DB_WAIT_TIMEOUT    seconds `genhub wait-for-db` waits (default 60)
#   LOCAL_STORAGE_PATH with STORAGE_BACKEND=local, checked to be writable
#                      before serve/worker/scheduler start
#
# `genhub migrate` takes a PostgreSQL advisory lock itself, so replicas that
# start together run the migrations once, one after the other.
set -eu

GENHUB_BIN="${GENHUB_BIN:-genhub}"

# JSON lines when genhub itself writes them (LOG_FORMAT=json, or auto in production or
# when stderr is not a terminal), so a container's whole output parses line by line.
json_logs() {
    case "${LOG_FORMAT:-auto}" in
        json) return 0 ;;
        console) return 1 ;;
    esac
    [ "${ENVIRONMENT:-development}" = "production" ] || [ ! -t 2 ]
}

# log_at LEVEL TEXT...: one line on stderr. In JSON, TEXT's backslashes and quotes are
# escaped and its control characters dropped: a value in it cannot start a line or a field.
log_at() {
    level="$1"
    shift
    if json_logs; then
        text=$(printf '%s' "$*" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\000-\037')
        printf '{"ts": "%s", "level": "%s", "logger": "entrypoint", "msg": "%s"}\n' \
            "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$level" "$text" >&2
    else
        printf 'entrypoint: %s\n' "$*" >&2
    fi
}

log() {
    log_at info "$@"
}

wait_for_db() {
    log "waiting for the database (timeout ${DB_WAIT_TIMEOUT:-60}s)"
    "$GENHUB_BIN" wait-for-db --timeout "${DB_WAIT_TIMEOUT:-60}"
}

# migrate_before COMMAND: migrate unless SKIP_MIGRATIONS=1; by default only
# before `serve`, before any other command only with RUN_MIGRATIONS=1.
migrate_before() {
    if [ "${SKIP_MIGRATIONS:-0}" = "1" ]; then
        log "SKIP_MIGRATIONS=1: not migrating"
        return 0
    fi
    if [ "$1" = "serve" ] || [ "${RUN_MIGRATIONS:-0}" = "1" ]; then
        log "migrating the database"
        "$GENHUB_BIN" migrate
    fi
}

# With the local storage backend on a mounted disk, fail early and by name when
# the mount is not writable by this (non-root) user, instead of on the first upload.
check_local_storage() {
    if [ "${STORAGE_BACKEND:-local}" != "local" ] || [ -z "${LOCAL_STORAGE_PATH:-}" ]; then
        return 0
    fi
    if ! mkdir -p "$LOCAL_STORAGE_PATH" 2>/dev/null || [ ! -w "$LOCAL_STORAGE_PATH" ]; then
        log_at error "LOCAL_STORAGE_PATH=$LOCAL_STORAGE_PATH is not writable by uid $(id -u);" \
            "make the mounted disk writable for that uid or use STORAGE_BACKEND=s3"
        exit 1
    fi
}

# has_option NAME ARGS...: true when ARGS hold `NAME` or `NAME=...`.
has_option() {
    name="$1"
    shift
    for arg in "$@"; do
        case "$arg" in
            "$name" | "$name"=*) return 0 ;;
        esac
    done
    return 1
}

# exec_serve ARGS...: exec `genhub serve`, with --host/--port from HOST/PORT
# unless ARGS already name them (command-line options win).
exec_serve() {
    if ! has_option --port "$@"; then
        set -- --port "${PORT:-8000}" "$@"
    fi
    if ! has_option --host "$@"; then
        set -- --host "${HOST:-0.0.0.0}" "$@"
    fi
    log "starting: genhub serve $*"
    exec "$GENHUB_BIN" serve "$@"
}

# run_all: the three long-running processes side by side; SIGTERM/SIGINT stop
# all three; if one exits on its own, stop the others and fail.
run_all() {
    stopping=0
    server_pid=""
    worker_pid=""
    scheduler_pid=""
    trap 'stopping=1; kill -TERM "$server_pid" "$worker_pid" "$scheduler_pid" 2>/dev/null || true' TERM INT
    "$GENHUB_BIN" worker &
    worker_pid=$!
    "$GENHUB_BIN" scheduler &
    scheduler_pid=$!
    exec_serve "$@" &
    server_pid=$!
    while kill -0 "$server_pid" 2>/dev/null && kill -0 "$worker_pid" 2>/dev/null \
        && kill -0 "$scheduler_pid" 2>/dev/null; do
        sleep 1
    done
    if [ "$stopping" = "0" ]; then
        log_at error "a process of 'all' exited on its own: stopping the others"
    fi
    kill -TERM "$server_pid" "$worker_pid" "$scheduler_pid" 2>/dev/null || true
    wait
    if [ "$stopping" = "1" ]; then
        exit 0
    fi
    exit 1
}

if [ "$#" -eq 0 ]; then
    set -- serve
fi
if [ "$1" = "genhub" ] || [ "$1" = "$GENHUB_BIN" ]; then
    shift
    if [ "$#" -eq 0 ]; then
        exec "$GENHUB_BIN"
    fi
fi

command="$1"
case "$command" in
    serve)
        shift
        check_local_storage
        wait_for_db
        migrate_before serve
        exec_serve "$@"
        ;;
    all)
        shift
        check_local_storage
        wait_for_db
        migrate_before serve
        run_all "$@"
        ;;
    worker | scheduler)
        shift
        check_local_storage
        wait_for_db
        migrate_before "$command"
        log "starting: genhub $command $*"
        exec "$GENHUB_BIN" "$command" "$@"
        ;;
    migrate)
        wait_for_db
        exec "$GENHUB_BIN" "$@"
        ;;
    wait-for-db | export-schema | create-admin | grant-credits | seed-demo | --help | -h)
        exec "$GENHUB_BIN" "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
