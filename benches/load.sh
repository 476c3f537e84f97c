#!/usr/bin/env bash
# Load test of the report server: `narvaro serve` on loopback over a bench lake, 32 concurrent
# clients for a bounded time (default 20 s) with wrk, rotating over the committee, county and
# school reports. Prints wrk's latency distribution (p50/p99) and the non-2xx count (errors).
#
#   benches/load.sh [county|national] [SECONDS]
#
# Needs wrk (`apt-get install -y wrk`) and a published lake: the bench lake
# (`cargo bench --bench reports` builds and publishes it under target/bench-data/), or any
# lake given as LAKE=DIR. Pages are read from the stored publication, so the first request
# after the start is timed on its own before the load. Figures go into docs/performance.md
# with the machine they ran on.
#
# With PAGES=all (the default for national) the clients rotate over every report page the
# index links to (on the national lake ~12,000 distinct pages, far more than the server keeps
# rendered), so most requests read a report from the publication, as on a day when many
# schools and committees look at their own page.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-county}"
secs="${2:-20}"
lake="${LAKE:-target/bench-data/$scale/lake}"
[ -d "$lake/publications" ] || { echo "no published lake at $lake: run cargo bench --bench reports first, or give LAKE=DIR" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 2; }
# NARVARO_BIN skips the build (e.g. the binary `cargo bench` just built in target/release).
bin="${NARVARO_BIN:-}"
if [ -z "$bin" ]; then cargo build --release --quiet; bin=target/release/narvaro; fi
port=18080
"$bin" serve --lake "$lake" --addr "127.0.0.1:$port" >/tmp/narvaro-load.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
paths=(/reports/committee/1880/VT2026 /reports/county/18/VT2026 /reports/school/18800101/VT2026)
# The first request of each page after the start: read from the stored publication.
for p in "${paths[@]}"; do
  curl -sf -o /dev/null -w "first request $p: %{time_total} s\n" "http://127.0.0.1:$port$p"
done
script=$(mktemp --suffix=.lua)
pages="${PAGES:-$([ "$scale" = national ] && echo all || echo four)}"
if [ "$pages" = all ]; then
  list=$(mktemp)
  curl -sf "http://127.0.0.1:$port/" | grep -o 'href="/reports/[^"]*"' | sed 's/href="//; s/"$//' \
    | sort -u | shuf --random-source=<(yes) > "$list"
  echo "rotating over $(wc -l < "$list") pages from the index"
  { echo "local paths = {"; sed 's/.*/  "&",/' "$list"; echo "}"; } > "$script"
else
  echo 'local paths = { "/reports/committee/1880/VT2026", "/reports/county/18/VT2026",
                "/reports/school/18800101/VT2026", "/reports/committee/1880/VT2026.csv" }' > "$script"
fi
cat >>"$script" <<'LUA'
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
LUA
wrk -t2 -c32 -d"${secs}s" --latency -s "$script" "http://127.0.0.1:$port"
echo "server RSS: $(ps -o rss= -p $server) KiB"
