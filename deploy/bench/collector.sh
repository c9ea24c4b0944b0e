#!/usr/bin/env bash
# The collector alone: acknowledged requests/s, events/s (20 events per request) and
# p50/p99 latency at a fixed concurrency, against private Redis + PostgreSQL servers
# under .run/bench, with a release build; then, with the collector stopped, the ceilings
# beside it: PostgreSQL COPY of the same raw batches (two binary streams; one text),
# Redis LPUSH/RPOP at their message size, and nginx answering 204 to the same requests.
# Prints a table and writes .run/bench-collector.json.
#
#   deploy/bench/collector.sh [CONNECTIONS] [SECONDS]
set -euo pipefail
. "$(dirname "$0")/common.sh"
connections=${1:-64}
seconds=${2:-20}

"$stack" bench-deps
echo "building (release)…"
swift build -c release --product collector >/dev/null
bin=$(swift build -c release --show-bin-path)

cleanup() {
  [ -n "${collector_pid:-}" ] && kill -TERM "$collector_pid" 2>/dev/null && wait "$collector_pid" 2>/dev/null || true
  [ -n "${drain_pid:-}" ] && kill "$drain_pid" 2>/dev/null || true
  bench_servers_stop
}
trap cleanup EXIT

bench_servers_start
rm -rf "$dir/spool"
export TRIBUTARY_COLLECTOR_SPOOL_DIRECTORY="$dir/spool" TRIBUTARY_LOG_LEVEL=warning
export TRIBUTARY_COLLECTOR_RATE_LIMIT_REQUESTS_PER_SECOND=1000000 TRIBUTARY_COLLECTOR_RATE_LIMIT_BURST=1000000
export TRIBUTARY_COLLECTOR_BACKPRESSURE_MAX_QUEUE_DEPTH=1000000000 TRIBUTARY_COLLECTOR_LISTEN_PORT=18080
export TRIBUTARY_COLLECTOR_ADMIN_PORT=19101
"$bin/collector" migrate >/dev/null
key=$("$bin/collector" sites add bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["writeKey"])')
"$bin/collector" run >"$dir/collector.log" 2>&1 &
collector_pid=$!
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.2; done
sleep 2.5  # the site directory refresh

# Nothing consumes the hydrate queue in this benchmark: empty it every second so Redis
# memory stays bounded (the collector's work is the same).
( while true; do
    redis-cli -p $redis_port eval "redis.call('DEL', KEYS[1]) redis.call('SET', KEYS[2], 0)" 2 '{hydrate}:site:1' '{hydrate}:depth' >/dev/null
    sleep 1
  done ) &
drain_pid=$!

echo "warming up…"
TRIBUTARY_BENCH_KEY=$key wrk -t2 -c"$connections" -d3s -s deploy/bench/batch.lua http://127.0.0.1:18080 >/dev/null
echo "measuring: $connections connections, $seconds s, 20 events per request"
TRIBUTARY_BENCH_KEY=$key wrk -t2 -c"$connections" -d"${seconds}s" --latency -s deploy/bench/batch.lua http://127.0.0.1:18080 \
  >"$dir/wrk.txt" &
wrk_pid=$!
# The size of one queued raw batch message, for the Redis ceiling (the drain empties the
# list every second; one is there most of the time).
message_bytes=0
for _ in $(seq 1 100); do
  message_bytes=$(redis-cli -p $redis_port --raw lindex '{hydrate}:site:1' 0 | head -c -1 | wc -c)
  [ "$message_bytes" -gt 0 ] && break
  sleep 0.1
done
wait $wrk_pid
out=$(cat "$dir/wrk.txt")
saved=$("${psql_admin[@]}" -c "SELECT count(*) FROM collector.raw_batches")
kill -TERM "$collector_pid"; wait "$collector_pid" 2>/dev/null || true; collector_pid=
kill "$drain_pid" 2>/dev/null || true; drain_pid=
redis-cli -p $redis_port eval "redis.call('DEL', KEYS[1]) redis.call('SET', KEYS[2], 0)" 2 '{hydrate}:site:1' '{hydrate}:depth' >/dev/null
redis_settle

echo "ceilings: PostgreSQL COPY of the same raw batches, Redis at their size, nginx answering 204"
copy=$(copy_ceilings collector.raw_batches "site_id, batch_id, received_at" raw_batches 20000)
redis=$(redis_ceiling "$message_bytes")
nginx=$(nginx_ceiling "$connections" 10)
python3 - "$out" "$connections" "$seconds" "$saved" "$copy" "$redis" "$nginx" <<'PY'
import json, re, sys, platform, os
out, connections, seconds, saved = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
copy, redis, nginx = json.loads(sys.argv[5]), json.loads(sys.argv[6]), float(sys.argv[7] or 0)
def unit(v, u):
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
lat = dict((p, unit(v, u)) for p, v, u in re.findall(r"\s(50|75|90|99)%\s+([\d.]+)(us|ms|s)", out))
non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
errors = re.search(r"Socket errors:.*", out)
result = {
    "machine": f"{os.cpu_count()} cores, {platform.machine()}",
    "connections": connections, "seconds": seconds, "eventsPerRequest": 20,
    "requestsPerSecond": round(rps, 1), "eventsPerSecond": round(rps * 20, 1),
    "latencyMs": {"p50": lat.get("50"), "p99": lat.get("99")},
    "non2xx": non2xx, "socketErrors": errors.group(0) if errors else None, "batchesSaved": saved,
    "ceilings": {
        # Rows are raw batches of 20 events each (batch.lua).
        "copyRawBatches": {**copy, "binary2EventsPerSecond": copy["binary2RowsPerSecond"] * 20,
                           "text1EventsPerSecond": copy["text1RowsPerSecond"] * 20},
        "redis": redis, "nginxRequestsPerSecond": round(nginx),
    },
}
result["ratios"] = {
    "eventsOverCopyBinary2": round(rps * 20 / result["ceilings"]["copyRawBatches"]["binary2EventsPerSecond"], 3),
    "requestsOverNginx": round(rps / nginx, 3) if nginx else None,
    "requestsOverRedisLpush": round(rps / redis["lpushPerSecond"], 3) if redis["lpushPerSecond"] else None,
}
print()
print(f"{'collector alone':<28}{'value':>14}")
print(f"{'requests/s (acknowledged)':<28}{rps:>14,.0f}")
print(f"{'events/s':<28}{rps*20:>14,.0f}")
print(f"{'latency p50 (ms)':<28}{lat.get('50', float('nan')):>14.2f}")
print(f"{'latency p99 (ms)':<28}{lat.get('99', float('nan')):>14.2f}")
print(f"{'non-2xx answers':<28}{non2xx:>14}")
print(f"{'batches in raw table':<28}{saved:>14,}")
c = result["ceilings"]
print(f"{'ceiling: COPY binary x2 (events/s)':<40}{c['copyRawBatches']['binary2EventsPerSecond']:>14,}")
print(f"{'ceiling: COPY text x1 (events/s)':<40}{c['copyRawBatches']['text1EventsPerSecond']:>14,}")
print(f"{'ceiling: Redis LPUSH/RPOP at %d B (ops/s)' % redis['bytes']:<40}{redis['lpushPerSecond']:>7,}/{redis['rpopPerSecond']:,}")
print(f"{'ceiling: nginx 204, one worker (req/s)':<40}{nginx:>14,.0f}")
print(f"{'collector / COPY x2 (target >= 40%)':<40}{result['ratios']['eventsOverCopyBinary2']:>14.1%}")
if nginx: print(f"{'collector / nginx (requests)':<40}{result['ratios']['requestsOverNginx']:>14.1%}")
json.dump(result, open(".run/bench-collector.json", "w"), indent=2)
PY
echo "(written to .run/bench-collector.json; wrk's output in .run/bench/wrk.txt)"
