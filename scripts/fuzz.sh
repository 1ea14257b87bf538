#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time from the committed
# seed corpora (new inputs go to a temporary directory; the committed corpus is not modified).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bash scripts/install-deps.sh
# Our libraries get coverage instrumentation too (fuzzer-no-link), so the fuzzer is guided by
# the code under test, not only by the harness.
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPROBLEMGATE_BUILD_FUZZ=ON -DPROBLEMGATE_BUILD_TESTS=OFF \
  "-DPROBLEMGATE_SANITIZERS=fuzzer-no-link;address;undefined" >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target problemgate_normalize_fuzz head_scanner_fuzz problemgate_config_fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
  local target=$1 seeds=$2
  mkdir -p "$work/$target"
  echo "fuzz: $target for ${seconds}s"
  "./build-fuzz/tests/fuzz/$target" "$work/$target" "$seeds" -max_total_time="$seconds" \
    -print_final_stats=1 -artifact_prefix="$work/" 2>&1 | tail -n 12
}
run problemgate_normalize_fuzz tests/fuzz/corpus/normalize
run head_scanner_fuzz tests/fuzz/corpus/head_scanner
run problemgate_config_fuzz tests/fuzz/corpus/config
echo "fuzz: no crashes"
