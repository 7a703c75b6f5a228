#!/usr/bin/env bash
# Run a command (the browser suite) with Debian's Chromium at hand.
#
#   bash infra/browser/run-tests.sh .venv/bin/python -m pytest -q tests/browser
#
# 1. Finds Chromium: $CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH; installs Debian's package with apt-get
#    when none is found (as root, or with sudo -n), as infra/postgres/run-tests.sh does for PostgreSQL. Playwright's
#    own browser download is never used: the suite drives the distribution's Chromium (executable_path), which needs
#    nothing from outside the apt mirror.
# 2. Exports SIFUND_CHROMIUM (the binary) and SIFUND_BROWSER=1 (tests/conftest.py collects tests/browser only then:
#    make test does not run it), runs "$@", exits with its status.
#
# The tests start Chromium with --headless --no-sandbox --disable-gpu --disable-background-networking
# --disable-component-update --disable-sync --no-first-run and a fresh --user-data-dir (tests/browser/conftest.py).
set -euo pipefail

log() { printf 'run-tests.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

[ $# -gt 0 ] || die "usage: $0 COMMAND [ARG...]"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root to run: $*"
    fi
}

find_chromium() {
    if [ -n "${CHROMIUM:-}" ]; then
        [ -x "$CHROMIUM" ] || die "CHROMIUM=$CHROMIUM is not an executable"
        echo "$CHROMIUM"; return 0
    fi
    [ -x /usr/bin/chromium ] && { echo /usr/bin/chromium; return 0; }
    command -v chromium 2>/dev/null && return 0
    return 1
}

if ! BINARY=$(find_chromium); then
    command -v apt-get >/dev/null 2>&1 || die "Chromium not found and apt-get is not available; install Chromium or set CHROMIUM"
    log "Chromium not found; installing Debian's chromium with apt-get"
    # .ci/run starts the PostgreSQL and browser suites side by side: one apt-get at a time (a shared lock file,
    # and dpkg's own lock waited on rather than failed).
    {
        if command -v flock >/dev/null 2>&1; then flock 9; fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium
    } 9>"${TMPDIR:-/tmp}/sifund-apt.lock"
    BINARY=$(find_chromium) || die "apt-get installed chromium but no chromium binary is found"
fi
log "using $("$BINARY" --version 2>/dev/null || echo "$BINARY")"

export SIFUND_CHROMIUM="$BINARY" SIFUND_BROWSER=1
"$@"
