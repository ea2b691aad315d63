#!/bin/bash
# run-fuzz.sh SECONDS [TARGET...]: builds closewaitd-fuzz with libFuzzer (coverage +
# AddressSanitizer) and runs each target for SECONDS, starting from the committed seed corpus
# (Tests/fuzz/corpus/TARGET) plus what earlier runs found (.build-fuzz/corpus/TARGET).
# Crashes land in .build-fuzz/crashes/TARGET; the script fails if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: run-fuzz.sh SECONDS [TARGET...]}
shift
SWIFT=${SWIFT:-swift}
rt=$(dirname "$($SWIFT -print-target-info >/dev/null 2>&1; command -v swiftc)")/../lib/clang
nomain=$(ls "$rt"/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
# libFuzzer's own main would clash with the one SwiftPM gives every executable, so the
# instrumentation comes from -sanitize-coverage and the driver from the no-main runtime.
$SWIFT build -c release --product closewaitd-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
    -Xswiftc -DFUZZING -Xlinker "$nomain" -Xlinker -lstdc++ >/dev/null
bin=.build-fuzz/release/closewaitd-fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls Tests/fuzz/corpus))
failed=0
printf '%-16s %10s %12s %8s %s\n' target seconds executions corpus result
for target in "${targets[@]}"; do
    work=.build-fuzz/corpus/$target crashes=.build-fuzz/crashes/$target
    mkdir -p "$work" "$crashes"
    log=.build-fuzz/$target.log
    set +e
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 CLOSEWAITD_FUZZ_TARGET=$target timeout $((seconds + 60)) "$bin" \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "$work" "Tests/fuzz/corpus/$target" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    size=$(ls "$work" | wc -l)
    if [ $rc -eq 0 ]; then result=ok; else result="CRASH (rc $rc, see $log and $crashes)"; failed=1; fi
    printf '%-16s %10s %12s %8s %s\n' "$target" "$seconds" "$runs" "$size" "$result"
done
exit $failed
