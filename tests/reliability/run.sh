#!/usr/bin/env bash
# Runs the non-CI rows of the reliability battery and prints a table (see run.py --help).
# Needs: a built tree (build/problemgate, build/problemgate-demo-api), wrk, slowhttptest and
# python3-h11 (scripts/install-deps.sh installs them), and nginx (the rows' fast upstream,
# which this script asks install-deps.sh for).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
# run.py imports the integration suite's helpers (battery, harness) by their own names.
export PYTHONPATH="$here/../integration${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
# --help: the options only, without installing anything.
for a in "$@"; do
  case "$a" in -h|--help) exec "$py" "$here/run.py" --help ;; esac
done
# Debian's nginx package may start its system service on :80; the rows never use it and do not
# touch it (not ours to stop), as bench/run.sh.
bash "$here/../../scripts/install-deps.sh" nginx
export PATH="$PATH:/usr/sbin"
build="${PROBLEMGATE_BUILD_DIR:-$here/../../build}"
export PROBLEMGATE_BIN="${PROBLEMGATE_BIN:-$build/problemgate}"
export PROBLEMGATE_DEMO_BIN="${PROBLEMGATE_DEMO_BIN:-$build/problemgate-demo-api}"
exec "$py" "$here/run.py" "$@"
