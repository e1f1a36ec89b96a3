#!/usr/bin/env bash
# Makes the Python venv the operator peer runs in (idempotent): a venv at
# ${PJSUA2_VENV:-$PWD/target/pjsua2-venv} with pjsua2-python from PyPI, installed
# only when the venv cannot import it yet. The last line printed is the venv's
# python (what the Rust tests find as PJSUA2_PYTHON or target/pjsua2-venv/bin/python).
#
# Needs python3 >= 3.11 (the wheel is cp311, manylinux x86_64) with the venv
# module: on Debian/Ubuntu that is the apt package python3-venv.
set -euo pipefail

PJSUA2_PIN="pjsua2-python==2.15.1.post1"
VENV=${PJSUA2_VENV:-$PWD/target/pjsua2-venv}
PY3=${PYTHON3:-python3}

log() { printf 'peers/setup.sh: %s\n' "$*" >&2; }

# -I: isolated, so that no operator.py in the working directory shadows the
# standard library's `operator` module while pjsua2 imports.
importable() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -I -c 'import pjsua2' >/dev/null 2>&1; }

if importable; then
    log "pjsua2 already importable in $VENV"
    echo "$VENV/bin/python"
    exit 0
fi

command -v "$PY3" >/dev/null 2>&1 || { log "no $PY3 on PATH"; exit 1; }
"$PY3" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' ||
    log "warning: $("$PY3" -V 2>&1) is not 3.11; $PJSUA2_PIN ships a cp311 wheel only, pip may fail"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -I -m pip --version >/dev/null 2>&1; then
    log "creating the venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    rm -rf "$VENV"
    if ! "$PY3" -m venv "$VENV" >"$VENV.log" 2>&1; then
        cat "$VENV.log" >&2
        rm -rf "$VENV"
        if grep -qi 'ensurepip' "$VENV.log"; then
            log "python3 -m venv failed: ensurepip is missing; install the apt package python3-venv" \
                "(apt-get install -y python3-venv) and run this again"
        else
            log "python3 -m venv failed (see above)"
        fi
        rm -f "$VENV.log"
        exit 1
    fi
    rm -f "$VENV.log"
fi

log "installing $PJSUA2_PIN into $VENV"
"$VENV/bin/python" -I -m pip install --disable-pip-version-check --quiet "$PJSUA2_PIN" >&2
importable || { log "pjsua2 still does not import in $VENV"; exit 1; }
echo "$VENV/bin/python"
