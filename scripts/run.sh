#!/usr/bin/env bash
# The README's run command: installs dependencies, builds, starts the bundled demo legacy API
# on 127.0.0.1:9000 and problemgate in front of it on its default config (config/problemgate.yaml).
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target problemgate problemgate-demo-api

./build/problemgate-demo-api --listen 127.0.0.1:9000 >/dev/null &
demo_pid=$!
trap 'kill "$demo_pid" 2>/dev/null || true' EXIT

cat <<'TRY'

problemgate is starting on 127.0.0.1:8080 in front of the demo legacy API (127.0.0.1:9000).
Try, from another terminal:
  curl -i http://127.0.0.1:8080/ok                      # 2xx passes through, with X-Request-Id
  curl -s http://127.0.0.1:8080/flat/not-found          # {"error": ..., "details": ...} -> problem+json
  curl -s http://127.0.0.1:8080/nested/channel-not-found
  curl -s http://127.0.0.1:8080/detail/fields           # field errors -> errors[]
  curl -s http://127.0.0.1:8080/html/502                # nginx HTML page -> problem+json, no leak
  curl -s http://127.0.0.1:8080/text/stacktrace         # stack trace hidden, kept on the log line
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -D - http://127.0.0.1:8080/api/limited/ok | grep -i -E '^(HTTP|x-ratelimit)'; done
  curl -s http://127.0.0.1:9901/metrics | head           # admin: /healthz /readyz /metrics /config
Access log lines (JSON) follow below.

TRY
./build/problemgate --config config/problemgate.yaml
