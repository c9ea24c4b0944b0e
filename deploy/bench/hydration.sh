#!/usr/bin/env bash
# Hydration alone, on a pre-filled hydrate queue (realistic batches: 200 sites with a
# Zipf-like size distribution, 300 distinct user agents), against the same-run
# PostgreSQL COPY rate of the same hydrated rows (binary COPY of the rows hydration
# stored, into a table of the same shape), and Redis at the raw and aggregate message
# sizes. Hydration runs five times (fresh database, the same batches); right after each
# run, the rows it stored are loaded once by one stream of binary COPY, so each run has
# its own ceiling, measured within seconds of it and as often (one run each): the VM's
# speed drifts by a third over minutes, and a ratio of figures taken minutes apart moved
# with it. The figure for issue 5 is the median of the five paired ratios. The best-of-
# three ceilings (one and two streams of binary COPY, one of text) are measured after
# the last run, for reference. Release build; private servers under .run/bench. Prints a
# table and writes .run/bench-hydration.json.
#
#   deploy/bench/hydration.sh [BATCHES] [EVENTS_PER_BATCH]
set -euo pipefail
. "$(dirname "$0")/common.sh"
batches=${1:-3000}
per_batch=${2:-20}

make --no-print-directory venv geoip >/dev/null
echo "building (release)…"
swift build -c release --product hydration >/dev/null
bin=$(swift build -c release --show-bin-path)

cleanup() {
  [ -n "${hydration_pid:-}" ] && kill -TERM "$hydration_pid" 2>/dev/null && wait "$hydration_pid" 2>/dev/null || true
  bench_servers_stop
}
trap cleanup EXIT

bench_servers_start
export TRIBUTARY_LOG_LEVEL=warning TRIBUTARY_HYDRATION_ADMIN_PORT=19102
export TRIBUTARY_HYDRATION_GEOIP_DATABASE="$root/.run/GeoLite2-City.mmdb"
# Five runs, each on a fresh database and a freshly filled queue (the same batches), each
# followed at once by its own COPY ceiling.
runs=5
rates=() copies=()
for run in $(seq $runs); do
  if [ "$run" -gt 1 ]; then
    $stack pg-reset "$dir/pg" $pg_port >/dev/null
    redis-cli -p $redis_port flushall >/dev/null
  fi
  "$bin/hydration" migrate >/dev/null
  echo "run $run of $runs: filling the hydrate queue with $batches batches of $per_batch events"
  events=$(.run/venv/bin/python deploy/bench/fill_hydrate.py $redis_port "$batches" "$per_batch")
  redis_settle
  if [ "$run" = 1 ]; then
    # The mean size of a queued raw batch message (for the Redis ceiling).
    raw_bytes=$(redis-cli -p $redis_port eval "local n, b = 0, 0
      for _, k in ipairs(redis.call('KEYS', '{hydrate}:site:*')) do
        for _, v in ipairs(redis.call('LRANGE', k, 0, 99)) do n = n + 1; b = b + #v end
      end
      return n > 0 and math.floor(b / n) or 0" 0)
  fi
  "${psql_admin[@]}" -c "CHECKPOINT"
  # Progress is read over one session opened before the run: a psql started for each
  # look cost the machine about 2 % of the run (the client's and a new backend's start-up).
  coproc POLL { "${psql_admin[@]}"; }
  start=$(date +%s.%N)
  "$bin/hydration" run >"$dir/hydration.log" 2>&1 &
  hydration_pid=$!
  while true; do
    echo "SELECT count(*) FROM hydration.ledger;" >&"${POLL[1]}"
    read -r -t 30 done_batches <&"${POLL[0]}" || { echo "the progress query did not answer" >&2; exit 1; }
    [ "$done_batches" -ge "$batches" ] && break
    kill -0 $hydration_pid 2>/dev/null || { tail -5 "$dir/hydration.log"; echo "hydration died" >&2; exit 1; }
    sleep 0.5
  done
  end=$(date +%s.%N)
  exec {POLL[1]}>&-
  wait "$POLL_PID" 2>/dev/null || true
  # Processing time: from the first batch's transaction to the last's (start-up excluded).
  busy=$("${psql_admin[@]}" -c "SELECT extract(epoch FROM max(applied_at) - min(applied_at)) FROM hydration.ledger")
  kill -TERM $hydration_pid; wait $hydration_pid 2>/dev/null || true; hydration_pid=
  rates+=("$(python3 -c "print(round($events / $busy))")")
  # The times of the best run so far go into the JSON with its rate.
  if [ "${rates[-1]}" = "$(printf '%s\n' "${rates[@]}" | sort -n | tail -1)" ]; then
    best_start=$start; best_end=$end; best_busy=$busy
  fi
  copies+=("$(copy_ceilings hydration.events "site_id, event_id, received_at" hydrated_rows 100000 binary1 1 \
    | python3 -c "import json, sys; print(json.load(sys.stdin)['binary1RowsPerSecond'])")")
  python3 -c "print(f'  {${rates[-1]}:,} events/s; the same rows by COPY: {${copies[-1]}:,} rows/s ({${rates[-1]} / ${copies[-1]}:.1%})')"
done
stored=$("${psql_admin[@]}" -c "SELECT count(*) FROM hydration.events")

# The mean size of an aggregate message hydration wrote (for the Redis ceiling).
aggregate_bytes=$(redis-cli -p $redis_port eval "local n, b = 0, 0
  for _, k in ipairs(redis.call('KEYS', '{aggregate}:site:*')) do
    for _, v in ipairs(redis.call('LRANGE', k, 0, 99)) do n = n + 1; b = b + #v end
  end
  return n > 0 and math.floor(b / n) or 0" 0)

# The reference ceilings, on the last run's rows, each the best of three: PostgreSQL taking
# them by binary COPY in one stream and in two parallel streams (the fastest, issue 12),
# and by text COPY; Redis at the raw and aggregate message sizes. With Redis quiet
# (hydration's pushes can start an AOF rewrite).
redis_settle
copy=$(copy_ceilings hydration.events "site_id, event_id, received_at" hydrated_rows 100000)
redis_flush_queues
redis_raw=$(redis_ceiling "$raw_bytes")
redis_aggregate=$(redis_ceiling "$aggregate_bytes")

python3 - "$events" "$stored" "$best_start" "$best_end" "$best_busy" "$copy" "$redis_raw" "$redis_aggregate" "${rates[*]}" \
  "${copies[*]}" <<'PY'
import json, sys, os, platform
events, stored = int(sys.argv[1]), int(sys.argv[2])
copy, redis_raw, redis_aggregate = json.loads(sys.argv[6]), json.loads(sys.argv[7]), json.loads(sys.argv[8])
wall = float(sys.argv[4]) - float(sys.argv[3])
seconds = float(sys.argv[5])
runs = [int(r) for r in sys.argv[9].split()]
copies = [int(c) for c in sys.argv[10].split()]
pairs = [{"eventsPerSecond": r, "copyRowsPerSecond": c, "ratio": round(r / c, 3)} for r, c in zip(runs, copies)]
median = sorted(pairs, key=lambda p: p["ratio"])[len(pairs) // 2]
rate, copy_rate = max(runs), copy["binary1RowsPerSecond"]
result = {"machine": f"{os.cpu_count()} cores, {platform.machine()}", "eventsIn": events, "eventsStored": stored,
          "hydrationSeconds": round(seconds, 2), "wallSecondsWithStartup": round(wall, 2), "hydrationEventsPerSecond": rate,
          "hydrationRunsEventsPerSecond": runs, "pairedRuns": pairs, "ratio": median["ratio"],
          "ratioMedianPair": median["ratio"], "ratioBestOverBest": round(rate / copy_rate, 3),
          "copyRowsPerSecond": copy_rate,
          "ceilings": {"copyHydratedRows": copy,
                       "redisRaw": redis_raw, "redisAggregate": redis_aggregate},
          "ratioOverCopyBinary2": round(rate / copy["binary2RowsPerSecond"], 3),
          "batchesOverRedisRpop": round(rate / 20 / redis_raw["rpopPerSecond"], 3) if redis_raw["rpopPerSecond"] else None}
print()
print(f"{'hydration alone':<52}{'value':>14}")
print(f"{'events in (raw)':<52}{events:>14,}")
print(f"{'events stored':<52}{stored:>14,}")
for n, p in enumerate(pairs, 1):
    print(f"{'run %d: events/s / its COPY rows/s / ratio' % n:<40}{p['eventsPerSecond']:>8,} / {p['copyRowsPerSecond']:>7,} / {p['ratio']:>5.1%}")
print(f"{'ratio, median of the %d paired runs (issue 5: >= 30%%)' % len(pairs):<52}{median['ratio']:>14.1%}")
print(f"{'hydration events/s (best run)':<52}{rate:>14,.0f}")
print(f"{'PostgreSQL binary COPY rows/s (best of 3, last rows)':<52}{copy_rate:>14,.0f}")
print(f"{'  best run over that COPY':<52}{rate / copy_rate:>14.1%}")
print(f"{'PostgreSQL binary COPY x2 rows/s (fastest ceiling)':<52}{copy['binary2RowsPerSecond']:>14,}")
print(f"{'PostgreSQL text COPY x1 rows/s (reference)':<52}{copy['text1RowsPerSecond']:>14,}")
print(f"{'ratio to the fastest ceiling':<52}{rate / copy['binary2RowsPerSecond']:>14.1%}")
for name, r in (("raw batch", redis_raw), ("aggregate", redis_aggregate)):
    print(f"{'Redis LPUSH/RPOP ops/s, %s message (%d B)' % (name, r['bytes']):<52}{r['lpushPerSecond']:>7,}/{r['rpopPerSecond']:,}")
json.dump(result, open(".run/bench-hydration.json", "w"), indent=2)
PY
echo "(written to .run/bench-hydration.json)"
