#!/usr/bin/env bash
# The forwarder alone, per sink type, with release builds on private servers under .run/bench:
# the hydrate queue is pre-filled with realistic raw batches (fill_hydrate.py); hydration
# alone routes them to four sinks (webhook, segment, mixpanel, and statsd with event
# counters); then the forwarder alone drains one sink at a time against a local stand-in
# that answers at once (Tests/Fixtures/sink_server.py with SINK_FAST=1).
# Target: the webhook path at least as fast as hydration alone in the same run.
#
# Prints a table and writes .run/bench-forwarder.json.
#
#   deploy/bench/forwarder.sh [BATCHES]
set -euo pipefail
. "$(dirname "$0")/common.sh"
batches=${1:-3000}

make --no-print-directory venv geoip >/dev/null
echo "building (release)…"
for product in hydration forwarder collector; do swift build -c release --product $product >/dev/null 2>&1; done
bin=$(swift build -c release --show-bin-path)
http_port=18555
udp_port=18556

cleanup() {
  for pid in ${hydration_pid:-} ${forwarder_pid:-} ${sinks_pid:-}; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  bench_servers_stop
}
trap cleanup EXIT

bench_servers_start
mkdir -p "$dir/secrets"
export TRIBUTARY_LOG_LEVEL=warning TRIBUTARY_HYDRATION_ADMIN_PORT=19102 TRIBUTARY_FORWARDER_ADMIN_PORT=19104
export TRIBUTARY_HYDRATION_GEOIP_DATABASE="$root/.run/GeoLite2-City.mmdb"
for d in collector hydration forwarder; do "$bin/$d" migrate >/dev/null; done
"${psql_admin[@]}" -c "INSERT INTO collector.sites (name) SELECT 'bench-' || g FROM generate_series(1, 200) AS g"
echo "whsec_$(head -c 24 /dev/urandom | base64)" > "$dir/secrets/webhook"
echo "bench-write-key" > "$dir/secrets/segment"
echo "bench-project-secret" > "$dir/secrets/mixpanel"
SINK_FAST=1 .run/venv/bin/python Tests/Fixtures/sink_server.py $http_port $udp_port "$dir/secrets" >"$dir/sinks.log" 2>&1 &
sinks_pid=$!
declare -A sink_ids
for type in webhook segment mixpanel statsd; do
  url="http://127.0.0.1:$http_port/$type/$type"
  extra=(--secret-file "$dir/secrets/$type")
  if [ $type = statsd ]; then url="udp://127.0.0.1:$udp_port"; extra=(--event-counters); fi
  sink_ids[$type]=$("$bin/forwarder" sinks add "bench-$type" --type $type --url "$url" --allow-private-network "${extra[@]}" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["sinkId"])')
done

echo "1. hydration alone, routing to the four sinks: $batches batches"
events_in=$(.run/venv/bin/python deploy/bench/fill_hydrate.py $redis_port "$batches" 20)
redis_settle
"$bin/hydration" run >"$dir/hydration.log" 2>&1 &
hydration_pid=$!
while [ "$("${psql_admin[@]}" -c "SELECT count(*) FROM hydration.ledger")" -lt "$batches" ]; do
  kill -0 $hydration_pid 2>/dev/null || { tail -5 "$dir/hydration.log"; echo "hydration died" >&2; exit 1; }
  sleep 0.5
done
kill -TERM $hydration_pid; wait $hydration_pid 2>/dev/null || true; hydration_pid=
hydration_seconds=$("${psql_admin[@]}" -c "SELECT extract(epoch FROM max(applied_at) - min(applied_at)) FROM hydration.ledger")
redis_settle

results=()
for type in webhook segment mixpanel statsd; do
  id=${sink_ids[$type]}
  want=$("${psql_admin[@]}" -c "SELECT coalesce(sum((routed->>'forward:$id')::bigint), 0) FROM hydration.ledger")
  for other in webhook segment mixpanel statsd; do
    if [ $other = $type ]; then "$bin/forwarder" sinks enable "bench-$other" >/dev/null; else "$bin/forwarder" sinks disable "bench-$other" >/dev/null; fi
  done
  echo "2. the forwarder alone, $type sink: $want events"
  "$bin/forwarder" run >"$dir/forwarder-$type.log" 2>&1 &
  forwarder_pid=$!
  since=$SECONDS
  while true; do
    got=$("${psql_admin[@]}" -c "SELECT count(*) FROM forwarder.deliveries WHERE sink_id = $id")
    [ "$got" -ge "$want" ] && break
    kill -0 $forwarder_pid 2>/dev/null || { tail -5 "$dir/forwarder-$type.log"; echo "forwarder died" >&2; exit 1; }
    if [ $((SECONDS - since)) -ge 30 ]; then echo "  $type: $got of $want"; since=$SECONDS; fi
    sleep 0.5
  done
  kill -TERM $forwarder_pid; wait $forwarder_pid 2>/dev/null || true; forwarder_pid=
  seconds=$("${psql_admin[@]}" -c "SELECT extract(epoch FROM max(started_at + make_interval(secs => latency_ms / 1000.0)) - min(started_at)) FROM forwarder.attempts WHERE sink_id = $id")
  requests=$("${psql_admin[@]}" -c "SELECT count(DISTINCT request_id) FROM forwarder.attempts WHERE sink_id = $id")
  results+=("$type:$want:$seconds:$requests")
done

python3 - "$events_in" "$hydration_seconds" "${results[@]}" <<'PY'
import json, os, platform, sys
events_in, hydration_seconds = int(sys.argv[1]), float(sys.argv[2])
hydration_rate = events_in / hydration_seconds
result = {"machine": f"{os.cpu_count()} cores, {platform.machine()}", "hydrationEventsPerSecond": round(hydration_rate), "sinks": {}}
print()
print(f"{'forwarder alone, per sink type':<34}{'events':>10}{'requests':>10}{'events/s':>12}{'/ hydration':>13}")
print(f"{'hydration alone (same run)':<34}{events_in:>10,}{'':>10}{hydration_rate:>12,.0f}")
for item in sys.argv[3:]:
    kind, events, seconds, requests = item.split(":")
    rate = int(events) / max(float(seconds), 1e-6)
    result["sinks"][kind] = {"events": int(events), "requests": int(requests), "eventsPerSecond": round(rate),
                             "overHydration": round(rate / hydration_rate, 2)}
    print(f"{kind:<34}{int(events):>10,}{int(requests):>10,}{rate:>12,.0f}{rate / hydration_rate:>13.2f}")
print(f"target: webhook / hydration >= 1")
json.dump(result, open(".run/bench-forwarder.json", "w"), indent=2)
PY
echo "(written to .run/bench-forwarder.json)"
