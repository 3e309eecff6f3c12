#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), two at a time (one per core), and prints each
# target's executions and findings. Crashes land in fuzz/artifacts/<target>/; a clean run finds none.
#
#   fuzz/run.sh            # 10 minutes per target
#   fuzz/run.sh 60         # a quick pass
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The stable toolchain builds it with RUSTC_BOOTSTRAP=1; no
# sanitizer is used (the code is safe Rust: what we look for is panics and broken invariants).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
# Targets to run (default: all four); e.g. `fuzz/run.sh 600 vql custom_sql`.
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ingest_csv vql custom_sql costs_params)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
mkdir -p fuzz/logs
run() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    cargo fuzz run -s none "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=4096 \
        -print_final_stats=1 >"fuzz/logs/$t.log" 2>&1 || true
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    run "${targets[$i]}" &
    [ $((i + 1)) -lt ${#targets[@]} ] && run "${targets[$((i + 1))]}" &
    wait
done
status=0
for t in "${targets[@]}"; do
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/logs/$t.log" | tail -1)
    found=$(find "fuzz/artifacts/$t" -type f | wc -l)
    printf '%-13s %12s executions in %ss, %s finding(s)\n' "$t" "${execs:-?}" "$seconds" "$found"
    if [ "$found" -ne 0 ] || ! grep -q 'Done [0-9]* runs' "fuzz/logs/$t.log"; then
        status=1
        tail -20 "fuzz/logs/$t.log"
    fi
done
exit $status
