#!/usr/bin/env bash
# The one test command (README, .ci/run): installs dependencies, builds, runs every test.
#   scripts/test.sh               Release build in build/, all tests (with the instruction budget)
#   scripts/test.sh --sanitize    ASan+UBSan build in build-asan/, all tests but the budget
#   scripts/test.sh --tsan        TSan build in build-tsan/, the cross-thread tests (label tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_dir=build
extra=()
ctest_args=()
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DPROBLEMGATE_SANITIZERS=address;undefined")
elif [ "${1:-}" = "--tsan" ]; then
  build_dir=build-tsan
  extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROBLEMGATE_SANITIZERS=thread)
  ctest_args=(-L tsan)
else
  extra=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S . -B "$build_dir" -G Ninja "${extra[@]}" >/dev/null
if [ ${#ctest_args[@]} -gt 0 ]; then
  cmake --build "$build_dir" -j "$(nproc)" --target problemgate_ratelimit_tests problemgate_obs_tests problemgate problemgate-demo-api
else
  cmake --build "$build_dir" -j "$(nproc)"
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1}
report="$build_dir/tests/budget/ir_report.txt"  # the instruction budget's table (Release only)
rm -f "$report"
ctest --test-dir "$build_dir" --output-on-failure -j 2 "${ctest_args[@]}"
if [ -f "$report" ]; then cat "$report"; fi
