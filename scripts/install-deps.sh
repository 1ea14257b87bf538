#!/usr/bin/env bash
# Installs every build and test dependency of problemgate from Debian's packages, plus any
# package named as an argument (tools of one script only, e.g. tests/reliability/run.sh's nginx).
# Idempotent: does nothing when all packages are present.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git curl python3 python3-yaml
  libboost1.81-dev libsimdjson-dev libspdlog-dev libfmt-dev nlohmann-json3-dev doctest-dev
  libyaml-cpp-dev zlib1g-dev libpugixml-dev libcli11-dev libbenchmark-dev libre2-dev
  clang clang-format libclang-rt-14-dev
  libhiredis-dev redis-server
  libssl-dev openssl
  python3-h11 python3-hypothesis python3-jsonschema python3-websockets slowhttptest wrk prometheus valgrind
  "$@"
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
