#!/usr/bin/env bash
# Renders docs/dashboard.png: the panels of metrics/grafana/invacache.json,
# each query evaluated by a real Prometheus that scraped a real demo run
# (invacache demo --metrics-addr, scraped every second), drawn by render.mjs
# with uPlot in headless Chromium. Grafana itself is not used (it is not
# installable here); the picture shows the dashboard's queries, not
# Grafana's rendering of them.
#
# Needs Go, Node.js/npm, and Debian's prometheus and chromium packages
# (apt-get install prometheus chromium). Traffic stays on 127.0.0.1.
#
#   bash metrics/grafana/render/render.sh [OUT.png]      # default docs/dashboard.png
#   DEMO_ARGS="--duration 30s" bash metrics/grafana/render/render.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:-$root/docs/dashboard.png}
demo_args=${DEMO_ARGS:-"--duration 30s --fault --fault-at 12s --fault-for 6s --nodes 3"}
for cmd in go node npm prometheus chromium; do
	command -v "$cmd" >/dev/null || { echo "render.sh: $cmd not found (apt-get install prometheus chromium; Node.js and Go)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

(cd "$here" && { [ -d node_modules/uplot ] || npm ci --no-audit --no-fund >/dev/null; })
(cd "$root" && go build -o "$work/invacache" ./cmd/invacache)

mport=$(free_port)
pport=$(free_port)
cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: invacache-demo
    static_configs:
      - targets: ["127.0.0.1:$mport"]
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
	--web.listen-address="127.0.0.1:$pport" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$pport/-/ready" >/dev/null && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$pport/-/ready" >/dev/null || { cat "$work/prometheus.log" >&2; exit 1; }
# Prometheus applies its targets a few seconds after start: start the demo
# once the target is known, so the scrapes cover the run from its start.
for _ in $(seq 200); do
	curl -s "http://127.0.0.1:$pport/api/v1/targets" | grep -q "127.0.0.1:$mport" && break
	sleep 0.1
done

start=$(date +%s)
# shellcheck disable=SC2086
"$work/invacache" demo --metrics-addr "127.0.0.1:$mport" $demo_args >"$work/demo.txt" 2>&1 &
demo=$!
pids+=($demo)
wait "$demo" || { echo "render.sh: the demo failed:" >&2; cat "$work/demo.txt" >&2; exit 1; }
end=$(date +%s)
sleep 2 # the last scrape
up=$(curl -s "http://127.0.0.1:$pport/api/v1/query?query=count(count_over_time(up%7Bjob%3D%22invacache-demo%22%7D%5B5m%5D)%3D%3D1)" || true)
echo "render.sh: demo ran $((end - start))s; Prometheus: $up" >&2

node "$here/render.mjs" "http://127.0.0.1:$pport" "$start" "$end" 1 "$work/page.html" \
	"InvaCache-Go dashboard: invacache demo $demo_args"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$work/chrome" --hide-scrollbars --force-device-scale-factor=1 \
	--window-size=1580,1390 --virtual-time-budget=3000 \
	--screenshot="$out" "file://$work/page.html" >"$work/chromium.log" 2>&1 || { cat "$work/chromium.log" >&2; exit 1; }
cp "$work/demo.txt" "${out%.png}-demo.txt"
echo "render.sh: wrote $out and ${out%.png}-demo.txt (the demo's own report of the run)" >&2
