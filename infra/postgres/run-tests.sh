#!/usr/bin/env bash
# Run a command (the test suite) against a throwaway PostgreSQL cluster.
#
#   bash infra/postgres/run-tests.sh .venv/bin/python -m pytest -q
#
# 1. Finds the PostgreSQL server binaries (initdb, pg_ctl, postgres) in $PG_BINDIR, PATH or
#    /usr/lib/postgresql/*/bin (newest first); installs them with apt-get if they are missing.
# 2. Creates a cluster in a fresh temporary directory, as an unprivileged user when run as root (PostgreSQL refuses
#    to run as root): trust authentication on 127.0.0.1 only, a free TCP port, the unix socket inside the temporary
#    directory, the platform's server settings (infra/postgres/sifund.conf: pg_stat_statements, the buffers and WAL of a
#    write-heavy month), then fsync off (the data is thrown away; PG_DURABLE=1 keeps it on), max_connections=300.
# 3. Exports SIFUND_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:<port>/postgres (tests/conftest.py
#    creates and drops a database per service per test), runs "$@", then always stops the cluster and deletes the
#    directory, and exits with the command's status.
#
# Environment: PG_BINDIR (use these binaries), PG_RUN_AS (the unprivileged user when root; default postgres),
# PG_KEEP=1 (keep the directory for post-mortem), PG_DURABLE=1 (leave fsync, synchronous_commit and full_page_writes
# on, as in production: for benchmarks), PYTHON (used to pick a free port; default python3).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'run-tests.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

[ $# -gt 0 ] || die "usage: $0 COMMAND [ARG...]"

# ---------------------------------------------------------------------------------------------------- binaries
has_server_bins() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]; }

find_bindir() {
    local initdb dir
    if initdb=$(command -v initdb 2>/dev/null); then
        # pg_ctl starts the postgres next to itself, so all three must come from one directory.
        dir=$(dirname "$(readlink -f "$initdb")")
        has_server_bins "$dir" && { echo "$dir"; return 0; }
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        has_server_bins "$dir" && { echo "$dir"; return 0; }
    done
    return 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root to run: $*"
    fi
}

install_postgres() {
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL server binaries not found and apt-get is not available; install PostgreSQL or set PG_BINDIR"
    log "PostgreSQL server binaries not found; installing them with apt-get"
    # .ci/run starts the PostgreSQL and browser suites side by side: one apt-get at a time (a shared lock file,
    # and dpkg's own lock waited on rather than failed).
    {
        if command -v flock >/dev/null 2>&1; then flock 9; fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends postgresql
    } 9>"${TMPDIR:-/tmp}/sifund-apt.lock"
}

if [ -n "${PG_BINDIR:-}" ]; then
    has_server_bins "$PG_BINDIR" || die "PG_BINDIR=$PG_BINDIR does not contain initdb, pg_ctl and postgres"
    BINDIR=$PG_BINDIR
elif ! BINDIR=$(find_bindir); then
    install_postgres
    BINDIR=$(find_bindir) || die "apt-get installed postgresql but initdb/pg_ctl/postgres are still not found"
fi
log "using $("$BINDIR/postgres" --version) from $BINDIR"

# ---------------------------------------------------------------------------------------------------- user
if [ "$(id -u)" -eq 0 ]; then
    PG_USER=${PG_RUN_AS:-postgres}
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
        log "creating system user $PG_USER"
        useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /bin/sh "$PG_USER"
    fi
else
    PG_USER=$(id -un)
fi

# Run a command as $PG_USER from inside the cluster directory (the caller's cwd may not be readable by that user).
as_pg() {
    if [ "$(id -u)" -ne 0 ]; then
        (cd "$WORK" && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd "$WORK" && runuser -u "$PG_USER" -- "$@")
    else
        (cd "$WORK" && su -s "$BASH" "$PG_USER" -c "$(printf '%q ' "$@")")
    fi
}

# ---------------------------------------------------------------------------------------------------- cluster
# As root, /tmp rather than $TMPDIR: the unprivileged user must be able to reach the directory.
if [ "$(id -u)" -eq 0 ]; then TMP_PARENT=/tmp; else TMP_PARENT=${TMPDIR:-/tmp}; fi
WORK=$(mktemp -d "$TMP_PARENT/sifund-pg.XXXXXX")
DATA=$WORK/data
STARTED=0

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Also after a failed start: pg_ctl -w may give up while a postmaster is still coming up.
    if [ "$STARTED" -eq 1 ] || [ -f "$DATA/postmaster.pid" ]; then
        as_pg "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 \
            || log "pg_ctl stop failed (server already gone?)"
    fi
    if [ "${PG_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" -eq 0 ]; then chown "$PG_USER:" "$WORK"; fi
chmod 700 "$WORK"
as_pg mkdir "$WORK/run"

as_pg "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }

# Only the unix socket (in $WORK/run, mode 0700) and 127.0.0.1 are accepted.
as_pg sh -c "cat > '$DATA/pg_hba.conf'" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
EOF

# Our settings live in their own files, included at the end of postgresql.conf (later settings win): the platform's
# server settings (sifund.conf, next to this script), then the test cluster's own.
as_pg sh -c "cat > '$DATA/sifund.conf'" < "$HERE/sifund.conf"
printf "include 'sifund.conf'\ninclude 'sifund-test.conf'\n" | as_pg sh -c "cat >> '$DATA/postgresql.conf'"

# Any Python will do: $PYTHON, python3, python, or the command itself when it is a Python (make passes the venv's).
PYTHON_FOR_PORT=
COMMAND_PYTHON=
case "${1##*/}" in python*) COMMAND_PYTHON=$1 ;; esac
for candidate in "${PYTHON:-}" python3 python "$COMMAND_PYTHON"; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import socket' >/dev/null 2>&1; then PYTHON_FOR_PORT=$candidate; break; fi
done
[ -n "$PYTHON_FOR_PORT" ] || die "no Python found to pick a free port (set PYTHON)"
free_port() {
    "$PYTHON_FOR_PORT" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Throwaway test data: durability is not needed — unless PG_DURABLE=1 (a benchmark measuring the server as
# production runs it: sifund.conf's settings over PostgreSQL's defaults, every commit flushed).
if [ "${PG_DURABLE:-0}" = 1 ]; then
    DURABILITY="# PG_DURABLE=1: fsync, synchronous_commit and full_page_writes as in production"
else
    DURABILITY=$'fsync = off\nsynchronous_commit = off\nfull_page_writes = off'
fi

# The port is free when picked but another process may take it before the server binds it: retry a few times.
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    as_pg sh -c "cat > '$DATA/sifund-test.conf'" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$WORK/run'
max_connections = 300
$DURABILITY
EOF
    if as_pg "$BINDIR/pg_ctl" -D "$DATA" -l "$WORK/postgres.log" -w -t 60 start >/dev/null; then
        STARTED=1
        break
    fi
    log "server did not start on port $PORT (attempt $attempt):"
    tail -n 20 "$WORK/postgres.log" >&2 || true
done
[ "$STARTED" -eq 1 ] || die "could not start PostgreSQL (server log above; PG_KEEP=1 keeps $WORK)"

export SIFUND_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
log "PostgreSQL on 127.0.0.1:$PORT (data in $WORK); SIFUND_TEST_POSTGRES_URL=$SIFUND_TEST_POSTGRES_URL"

# ---------------------------------------------------------------------------------------------------- command
set +e
"$@"
STATUS=$?
set -e
log "command exited with status $STATUS"
exit "$STATUS"
