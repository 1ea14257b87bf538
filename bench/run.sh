#!/usr/bin/env bash
# problemgate comparative benchmark — the one command.
#
# Usage:
#   bench/run.sh [--quick] [--duration 10s] [--rounds 3] [--connections 50] [harness options...]
#
#   --quick            ~3 minutes: 2 s runs, no warm-up, scenarios 2xx,
#                      err-nested, 1mib, 2xx-idle1k, 2xx-ratelimit
#   (default)          ~15 minutes: 3 runs of 3 s per contender, medians
#                      reported, every scenario
#   --duration 10s     length of each measured wrk run (whole seconds)
#   --rounds 3         measured runs per contender (figures are medians)
#   --connections 50   wrk connections
#   Other options go to the harness, `python3 -m pgbench` (bench/pgbench/; see
#   `bench/run.sh --help`, which prints its options and does nothing else), e.g.
#   --only nginx,problemgate   --scenarios 2xx,1mib   --workers 1
#   --problemgate PATH         --no-callgrind --no-micro --no-idle-memory --no-syscalls
#   --no-append (print only; do not write bench/RESULTS.md)
#
# What it does:
#   1. installs wrk nginx haproxy libnginx-mod-http-lua lua-cjson gnuplot-nox
#      valgrind linux-perf with apt-get, only those missing;
#   2. builds problemgate (build/, Release) unless PG_BENCH_NO_BUILD=1; if the
#      build fails or the target does not exist yet, that contender is
#      skipped with a message;
#   3. builds the Google Benchmark micro-benchmarks into build-bench/
#      (-DPROBLEMGATE_BUILD_BENCH=ON) when bench/CMakeLists.txt exists;
#   4. runs the harness (`python3 -m pgbench`, bench/ on PYTHONPATH) in a
#      `mktemp -d` directory: origin + contenders on 127.0.0.1 only, free ports,
#      results printed and written to bench/RESULTS.md (the run replaces the
#      latest run; one line added to its history table), plot in
#      bench/results/latency-<date>.png (the previous plot is removed).
# On exit, Ctrl-C or TERM the trap stops exactly the processes the harness
# started (their PIDs are listed in $TMP/pids) and removes the temp dir.
# No CPU pinning (taskset): wrk, the origin and the proxy share the cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

log() { echo "[run.sh] $*" >&2; }

# The harness: bench/pgbench, a package run with bench/ on the module path. `exec`, so that
# `harness ... &` leaves $! the harness's own PID (the trap below signals it).
harness() { PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec /usr/bin/python3 -m pgbench "$@"; }

# --help: the harness's options, without installing or building anything.
for a in "$@"; do
  case "$a" in -h|--help) harness --help ;; esac
done

# ---- 1. packages -----------------------------------------------------------
need=()
for p in wrk nginx haproxy libnginx-mod-http-lua lua-cjson gnuplot-nox valgrind linux-perf curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
# any gnuplot flavour will do
if command -v gnuplot >/dev/null 2>&1; then
  need=("${need[@]/gnuplot-nox}")
fi
need=($(printf '%s\n' "${need[@]}" | grep -v '^$' || true))
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's nginx package may start the system service on :80; we never use
  # it and do not touch it (it is not ours to stop).
fi

# ---- 2. problemgate --------------------------------------------------------
pg_args=()
if [ "${PG_BENCH_NO_BUILD:-0}" != 1 ]; then
  [ -x scripts/install-deps.sh ] && scripts/install-deps.sh >/dev/null 2>&1 || true
  log "building problemgate (build/, Release)"
  if cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >build-bench-configure.log 2>&1 \
     && cmake --build build --target problemgate >>build-bench-configure.log 2>&1; then
    log "problemgate built"
  else
    log "SKIP problemgate: build failed or no 'problemgate' target yet ($(tail -n 1 build-bench-configure.log))"
  fi
  rm -f build-bench-configure.log
fi

# ---- 3. micro-benchmarks ---------------------------------------------------
micro=1
for a in "$@"; do [ "$a" = --no-micro ] && micro=0; done
if [ "$micro" = 1 ] && [ "${PG_BENCH_NO_BUILD:-0}" != 1 ]; then
  if [ -f bench/CMakeLists.txt ]; then
    log "building micro-benchmarks (build-bench/)"
    if ! { cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DPROBLEMGATE_BUILD_BENCH=ON \
           && cmake --build build-bench; } >/dev/null 2>&1; then
      log "micro-benchmark build failed; running whatever binaries exist"
    fi
  else
    log "no bench/CMakeLists.txt yet: no micro-benchmarks to build"
  fi
fi

# ---- 4. harness ------------------------------------------------------------
# 10,000 idle connections need fds on both ends: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP="$(mktemp -d -t pgbench.XXXXXX)"
chmod 755 "$TMP"   # nginx workers (www-data) read files in it
harness_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
    kill -TERM "$harness_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$harness_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # anything the harness started and did not stop: by PID, TERM then KILL
  if [ -s "$TMP/pids" ]; then
    pids=$(cat "$TMP/pids")
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 1
    for p in $pids; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true; done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

harness --tmp "$TMP" "$@" &
harness_pid=$!
wait "$harness_pid"
