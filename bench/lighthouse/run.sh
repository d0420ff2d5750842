#!/usr/bin/env bash
# Lighthouse on a fresh demo county served on 127.0.0.1 (issue 18's yardstick): the cadre app
# at / on a throttled mobile, cold; /admin and /admin/manage on desktop, signed in as admin.
# Uses Debian's Chromium (/usr/bin/chromium); writes bench/results/lighthouse-*.json.
# Run from the repository root after `make install`: bash bench/lighthouse/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/bench/results"
work="$(mktemp -d)"
port=5077
mkdir -p "$out"
(cd "$here" && npm install --silent --no-audit --no-fund)
export ZOUFANG_DATABASE_URL="sqlite:///$work/z.db" ZOUFANG_SECRET_KEY=lighthouse
"$root/.venv/bin/zoufang" db upgrade >/dev/null
"$root/.venv/bin/zoufang" seed-demo >/dev/null
"$root/.venv/bin/zoufang" serve --port "$port" --no-scheduler >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
CHROME_PATH=/usr/bin/chromium "$here/node_modules/.bin/lighthouse" "http://127.0.0.1:$port/" \
  --quiet --only-categories=performance,accessibility,best-practices \
  --chrome-flags="--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run" \
  --output=json --output-path="$out/lighthouse-root-mobile.json"
python3 - "$out/lighthouse-root-mobile.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("/ (mobile, cold):", {k: v["score"] for k, v in r["categories"].items()},
      "CLS", round(r["audits"]["cumulative-layout-shift"]["numericValue"], 4),
      "LCP ms", round(r["audits"]["largest-contentful-paint"]["numericValue"]))
PY
node "$here/admin-flow.mjs" "http://127.0.0.1:$port" "$out/lighthouse-admin-desktop.json"
