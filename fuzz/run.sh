#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and exits non-zero if
# any of them crashed, hung (> 10 s on one input) or failed to build.
#
#   fuzz/run.sh 60
#
# Works on the stable toolchain: with `-s none` (no sanitizer) cargo-fuzz
# passes rustc no `-Z` flag and libfuzzer-sys needs no nightly feature, so
# neither nightly nor RUSTC_BOOTSTRAP is needed. Installs cargo-fuzz (pinned)
# when it is missing (about 2 minutes on 2 cores).
#
# FUZZ_ARGS adds libFuzzer flags, e.g. FUZZ_ARGS="-fork=2 -ignore_crashes=1"
# to keep going after a crash and collect every distinct one.
#
# Inputs: the checked-in seeds in fuzz/seeds/<target>/ (read only) plus the
# working corpus fuzz/corpus/<target>/ (git-ignored; new inputs land there).
# A crash is written to fuzz/artifacts/<target>/; reproduce it with
#   cargo fuzz run -s none <target> fuzz/artifacts/<target>/crash-...
# shrink it with `cargo fuzz tmin -s none <target> <file>`, and add the bytes
# as a test to crates/sip-bench/tests/fuzz_regressions.rs.
set -uo pipefail

cd "$(dirname "$0")"
secs="${1:-60}"
targets=(parse endpoint)
cargo_fuzz_version=0.13.2

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "+ cargo install cargo-fuzz --version $cargo_fuzz_version --locked"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked || exit 1
fi

# Its own target dir (git-ignored), away from the workspace's shared one.
export CARGO_TARGET_DIR="$PWD/target"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "==> fuzz target '$t' for ${secs}s"
    cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -max_len=8192 -print_final_stats=1 ${FUZZ_ARGS:-}
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "!! fuzz target '$t' failed with status $status; artifacts:" >&2
        ls -l "artifacts/$t" >&2 || true
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzzing failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing passed: ${targets[*]} (${secs}s each)"
