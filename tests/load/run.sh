#!/usr/bin/env bash
# Media load benchmark (not a test: CI never runs it). Builds the release binary, then runs
# tests/load/run.py: sipp as N concurrent callers on this machine, over loopback, each
# hearing the prompts, choosing Quechua and leaving a SECONDS-long message (default 60).
#
#   sudo tests/load/run.sh N [SECONDS] [run.py options]     e.g. tests/load/run.sh 500 60
#   python3 tests/load/run.py --help                        every option
#   HOTLINE_LOAD_NO_BUILD=1 tests/load/run.sh ...            use target/release/hotline as is
#
# Needs root (sipp's play_pcap_audio sends from a raw socket), sipp with pcap support
# (Debian sip-tester 3.6.1), python3 >= 3.11. Prints a one-line summary and a markdown
# table row (see docs/performance.md, "Media load"). Exit status: 0 when every call
# succeeded, 1 otherwise, 2 on bad arguments.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi

if [[ ${HOTLINE_LOAD_NO_BUILD:-0} != 1 ]]; then
    cargo build --release -p hotline >&2
fi
exec python3 "$root/tests/load/run.py" --binary "$root/target/release/hotline" "$@"
