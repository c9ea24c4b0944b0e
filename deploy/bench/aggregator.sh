#!/usr/bin/env bash
# The aggregator alone, twice, with release builds on private servers under .run/bench:
#
# 1. on the same events as hydration alone in the same run: the hydrate queue is
#    pre-filled with realistic raw batches (fill_hydrate.py), hydration alone turns them
#    into the aggregate queue, then the aggregator alone drains that queue. Target: the
#    aggregator at least as fast as hydration, so it never holds the pipeline back.
# 2. on one large site (BENCH_SITE_EVENTS events, default 10 million, over 30 days,
#    fill_aggregate.py), then the p50/p99 latency of the Stats API's main queries on it.
#    Target: p99 < 50 ms each.
#
# Prints a table and writes .run/bench-aggregator.json.
#
#   deploy/bench/aggregator.sh [BATCHES] [SITE_EVENTS] [QUERY_RUNS]
set -euo pipefail
. "$(dirname "$0")/common.sh"
batches=${1:-3000}
site_events=${2:-10000000}
runs=${3:-200}

make --no-print-directory venv geoip >/dev/null
echo "building (release)…"
for product in hydration aggregator collector; do swift build -c release --product $product >/dev/null 2>&1; done
bin=$(swift build -c release --show-bin-path)

cleanup() {
  for pid in ${hydration_pid:-} ${aggregator_pid:-}; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  bench_servers_stop
}
trap cleanup EXIT

# Runs a daemon until `$2` (SQL) returns at least `$3`; prints nothing, fails if it dies.
run_until() {
  local name=$1 sql=$2 want=$3
  "$bin/$name" run >"$dir/$name.log" 2>&1 &
  local pid=$!
  eval "${name}_pid=$pid"
  local last=-1 since=$SECONDS
  while true; do
    local got
    got=$("${psql_admin[@]}" -c "$sql" 2>/dev/null || echo 0)
    [ "${got:-0}" -ge "$want" ] && break
    kill -0 $pid 2>/dev/null || { tail -5 "$dir/$name.log"; echo "$name died" >&2; exit 1; }
    if [ $((SECONDS - since)) -ge 30 ]; then echo "  $name: $got of $want"; since=$SECONDS; fi
    sleep 0.5
  done
  kill -TERM $pid; wait $pid 2>/dev/null || true
  eval "${name}_pid="
}

bench_servers_start
export TRIBUTARY_LOG_LEVEL=warning TRIBUTARY_HYDRATION_ADMIN_PORT=19102 TRIBUTARY_AGGREGATOR_ADMIN_PORT=19103
export TRIBUTARY_AGGREGATOR_STATS_PORT=18090 TRIBUTARY_HYDRATION_GEOIP_DATABASE="$root/.run/GeoLite2-City.mmdb"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/admin-token"
export TRIBUTARY_AGGREGATOR_STATS_ADMIN_TOKEN_FILE="$dir/admin-token"
for d in collector hydration aggregator; do "$bin/$d" migrate >/dev/null; done
"${psql_admin[@]}" -c "INSERT INTO collector.sites (name) SELECT 'bench-' || g FROM generate_series(1, 200) AS g"

echo "1. hydration alone, then the aggregator alone on hydration's output: $batches batches"
events_in=$(.run/venv/bin/python deploy/bench/fill_hydrate.py $redis_port "$batches" 20)
redis_settle
run_until hydration "SELECT count(*) FROM hydration.ledger" "$batches"
hydration_seconds=$("${psql_admin[@]}" -c "SELECT extract(epoch FROM max(applied_at) - min(applied_at)) FROM hydration.ledger")
messages=$(redis-cli -p $redis_port get '{aggregate}:depth')
redis_settle
run_until aggregator "SELECT count(*) FROM aggregator.ledger" "$messages"
read -r aggregated aggregator_seconds < <("${psql_admin[@]}" -F ' ' -c \
  "SELECT sum(events_received), extract(epoch FROM max(applied_at) - min(applied_at)) FROM aggregator.ledger")

echo "2. one site with $site_events events over 30 days"
site=$("${psql_admin[@]}" -c "INSERT INTO collector.sites (name) VALUES ('bench-large') RETURNING site_id")
# Batches of 500 events: the site's history is loaded, not timed as a stage (part 1 times
# the aggregator on realistic batches), and at 50 events a batch one site's ten million
# took the aggregator most of an hour.
read -r site_events site_batches < <(.run/venv/bin/python deploy/bench/fill_aggregate.py $redis_port "$site" "$site_events" 30 500)
redis_settle
export TRIBUTARY_AGGREGATOR_LATE_EVENT_DAYS=60
"$bin/aggregator" run >"$dir/aggregator-large.log" 2>&1 &
aggregator_pid=$!
since=$SECONDS
while true; do
  got=$("${psql_admin[@]}" -c "SELECT count(*) FROM aggregator.ledger WHERE site_id = $site" 2>/dev/null || echo 0)
  [ "${got:-0}" -ge "$site_batches" ] && break
  kill -0 $aggregator_pid 2>/dev/null || { tail -5 "$dir/aggregator-large.log"; echo "aggregator died" >&2; exit 1; }
  if [ $((SECONDS - since)) -ge 30 ]; then echo "  aggregator: $got of $site_batches batches"; since=$SECONDS; fi
  sleep 1
done
large_seconds=$("${psql_admin[@]}" -c "SELECT extract(epoch FROM max(applied_at) - min(applied_at)) FROM aggregator.ledger WHERE site_id = $site")
# The spans (sums of closed days that long-range breakdowns read; docs/aggregator.md) the
# janitor would build at its next pass, built now.
"$bin/aggregator" build-spans --site "$site" --json >/dev/null
# All of the site's spans (the janitor may have built some while the history loaded).
spans=$("${psql_admin[@]}" -c "SELECT json_build_object('spans', count(*), 'rows', coalesce(sum(rows), 0))
  FROM aggregator.span_index WHERE site_id = $site")
"${psql_admin[@]}" -c "VACUUM ANALYZE aggregator.daily"
"${psql_admin[@]}" -c "VACUUM ANALYZE aggregator.hourly"
"${psql_admin[@]}" -c "VACUUM ANALYZE aggregator.spans"
rows=$("${psql_admin[@]}" -c "SELECT count(*) FROM aggregator.daily WHERE site_id = $site")
echo "timing queries ($runs runs each)"
latency=$(.run/venv/bin/python deploy/bench/time_queries.py http://127.0.0.1:18090 "$(cat "$dir/admin-token")" "$site" "$runs")
kill -TERM $aggregator_pid; wait $aggregator_pid 2>/dev/null || true; aggregator_pid=

python3 - "$events_in" "$hydration_seconds" "$aggregated" "$aggregator_seconds" "$site_events" "$large_seconds" "$rows" "$latency" "$spans" <<'PY'
import json, os, platform, sys
events_in, hydration_seconds = int(sys.argv[1]), float(sys.argv[2])
aggregated, aggregator_seconds = int(sys.argv[3]), float(sys.argv[4])
site_events, large_seconds, rows = int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
latency, spans = json.loads(sys.argv[8]), json.loads(sys.argv[9])
hydration_rate, aggregator_rate = events_in / hydration_seconds, aggregated / aggregator_seconds
large_rate = site_events / large_seconds
result = {"machine": f"{os.cpu_count()} cores, {platform.machine()}", "hydrationEventsPerSecond": round(hydration_rate),
          "aggregatorEventsPerSecond": round(aggregator_rate), "aggregatorOverHydration": round(aggregator_rate / hydration_rate, 2),
          "largeSiteEvents": site_events, "largeSiteAggregatorEventsPerSecond": round(large_rate),
          "largeSiteDailyRows": rows, "largeSiteSpans": spans["spans"], "largeSiteSpanRows": spans["rows"],
          "queries": latency}
print()
print(f"{'aggregator alone':<44}{'value':>14}")
print(f"{'hydration alone, events/s (same run)':<44}{hydration_rate:>14,.0f}")
print(f"{'aggregator alone, same events, events/s':<44}{aggregator_rate:>14,.0f}")
print(f"{'aggregator / hydration (target >= 1)':<44}{aggregator_rate / hydration_rate:>14.2f}")
print(f"{'large site: events':<44}{site_events:>14,}")
print(f"{'large site: aggregator events/s (500 a batch)':<44}{large_rate:>14,.0f}")
print(f"{'large site: daily rows':<44}{rows:>14,}")
print(f"{'large site: spans (their rows)':<44}{spans['spans']:>6,} ({spans['rows']:,})")
print()
print(f"{'query (30 days, large site)':<30}{'p50 ms':>10}{'p99 ms':>10}   target p99 < 50 ms")
for name, figures in latency.items():
    print(f"{name:<30}{figures['p50Ms']:>10.2f}{figures['p99Ms']:>10.2f}")
json.dump(result, open(".run/bench-aggregator.json", "w"), indent=2)
PY
echo "(written to .run/bench-aggregator.json)"
