#!/usr/bin/env bash
# Runs the non-CI rows of the reliability battery and prints a table (see run.py --help).
# Needs: a built tree (build/problemgate, build/problemgate-demo-api), wrk, slowhttptest and
# python3-h11 (scripts/install-deps.sh installs them), and nginx (the rows' fast upstream,
# installed here when missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../../scripts/install-deps.sh"
if ! command -v nginx >/dev/null && ! [ -x /usr/sbin/nginx ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null ||
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null; }
  # Debian starts the packaged service on :80; the battery starts its own instances.
  command -v systemctl >/dev/null && $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
  $SUDO pkill -x nginx 2>/dev/null || true
fi
export PATH="$PATH:/usr/sbin"
build="${PROBLEMGATE_BUILD_DIR:-$here/../../build}"
export PROBLEMGATE_BIN="${PROBLEMGATE_BIN:-$build/problemgate}"
export PROBLEMGATE_DEMO_BIN="${PROBLEMGATE_DEMO_BIN:-$build/problemgate-demo-api}"
export PYTHONDONTWRITEBYTECODE=1
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" "$here/run.py" "$@"
