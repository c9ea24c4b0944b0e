#!/usr/bin/env bash
# End to end: all five daemons (release builds) on private servers under .run/bench, with
# one webhook sink taking every site's events, driven through the real collector by
# tributary-load (realistic traffic: 20 sites, page views, custom events, identifies,
# metrics, 1 % resent, 1 % invalid). Finds the highest offered rate every stage keeps up
# with (the load client gets it acknowledged and no queue grows), then runs at half that
# rate and measures, per event, receipt → aggregated and receipt → delivered (p50/p99
# from HDR histograms), and each daemon's peak memory. Prints a table and writes
# .run/bench-pipeline.json.
#
#   deploy/bench/pipeline.sh [STEP_SECONDS] [START_RATE] [MAX_STEPS]
set -euo pipefail
. "$(dirname "$0")/common.sh"
step_seconds=${1:-10}
start_rate=${2:-1600}
max_steps=${3:-7}
sites=20
daemons=(collector hydration aggregator forwarder health-checker)

make --no-print-directory venv geoip >/dev/null
"$stack" bench-deps
echo "building (release)…"
for product in "${daemons[@]}" tributary-load; do swift build -c release --product "$product" >/dev/null; done
bin=$(swift build -c release --show-bin-path)

declare -A pids=()
cleanup() {
  for d in "${!pids[@]}"; do kill -TERM "${pids[$d]}" 2>/dev/null || true; done
  for d in "${!pids[@]}"; do wait "${pids[$d]}" 2>/dev/null || true; done
  [ -n "${sink_pid:-}" ] && kill "$sink_pid" 2>/dev/null || true
  bench_servers_stop
}
trap cleanup EXIT

bench_servers_start
rm -rf "$dir/spool" "$dir/pipeline"
mkdir -p "$dir/pipeline"
work="$dir/pipeline"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/admin-token"
# Limits that would refuse the load on purpose (the per-site rate limit) are raised;
# everything else is the shipped default.
cat >"$work/config.json" <<JSON
{
  "redis": { "url": "redis://127.0.0.1:$redis_port" },
  "postgres": { "host": "127.0.0.1", "port": $pg_port, "database": "tributary" },
  "log": { "level": "warning", "format": "json" },
  "collector": { "listen": { "port": 18080 }, "admin": { "port": 19101 }, "spool": { "directory": "$dir/spool" },
                 "rateLimit": { "requestsPerSecond": 1000000, "burst": 1000000 } },
  "hydration": { "admin": { "port": 19102 }, "geoip": { "database": "$root/.run/GeoLite2-City.mmdb" } },
  "aggregator": { "admin": { "port": 19103 }, "stats": { "port": 18090, "adminTokenFile": "$work/admin-token" } },
  "forwarder": { "admin": { "port": 19104 } },
  "healthChecker": { "admin": { "port": 19105 }, "adminTokenFile": "$work/admin-token", "status": { "port": 18095 } }
}
JSON
export TRIBUTARY_CONFIG="$work/config.json"
unset TRIBUTARY_POSTGRES_PORT TRIBUTARY_REDIS_URL
for d in "${daemons[@]}"; do "$bin/$d" migrate >/dev/null; done

# The webhook sink: nginx answering 204 to every delivery (it reads and drops the body),
# so the sink costs the machine next to nothing and never holds the forwarder back.
mkdir -p "$work/sink"
cat >"$work/sink/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/sink/nginx.pid;
error_log $work/sink/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/sink/body;
  client_max_body_size 16m;
  client_body_buffer_size 16m;
  server { listen 127.0.0.1:18602; location / { return 204; } }
}
NGINX
/usr/sbin/nginx -c "$work/sink/nginx.conf" -p "$work/sink" 2>"$work/sink/start.log" &
sink_pid=$!

echo "[" >"$work/sites.json"
site_args=()
for i in $(seq $sites); do
  line=$("$bin/collector" sites add "bench-$i" --json)
  [ "$i" -gt 1 ] && echo "," >>"$work/sites.json"
  echo "$line" >>"$work/sites.json"
  site_args+=(--site "$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["siteId"])')")
done
echo "]" >>"$work/sites.json"
echo "whsec_$(head -c 24 /dev/urandom | base64)" >"$work/webhook-secret"
sink_id=$("$bin/forwarder" sinks add bench --type webhook --url "http://127.0.0.1:18602/hook" \
  --secret-file "$work/webhook-secret" --allow-private-network "${site_args[@]}" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["sinkId"])')

declare -A admin=([collector]=19101 [hydration]=19102 [aggregator]=19103 [forwarder]=19104 [health-checker]=19105)
for d in "${daemons[@]}"; do
  "$bin/$d" run >"$work/$d.log" 2>&1 &
  pids[$d]=$!
done
for d in "${daemons[@]}"; do
  for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:${admin[$d]}/healthz" >/dev/null && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:${admin[$d]}/healthz" >/dev/null || { tail -5 "$work/$d.log"; echo "$d did not start" >&2; exit 1; }
done
sleep 3   # hydration and the forwarder read the new sink within hydration.sinks.refreshSeconds

queues=(hydrate aggregate "forward:$sink_id")
# Items waiting in each queue, in the order of `queues` (each item is one batch of
# about 20 events).
depths() {
  local out=() q n
  for q in "${queues[@]}"; do
    n=$(redis-cli -p $redis_port get "{$q}:depth")
    out+=("${n:-0}")
  done
  echo "${out[*]}"
}
# Items waiting in every queue.
backlog() {
  local line
  line=$(depths)
  echo $(( ${line// / + } ))
}
# Waits (up to $1 s) until every queue is empty; prints the seconds it took.
drain() {
  local limit=$1 t0=$SECONDS
  while [ "$(backlog)" -gt 0 ] && [ $((SECONDS - t0)) -lt "$limit" ]; do sleep 0.5; done
  echo $((SECONDS - t0))
}

# CPU ticks (1/100 s) used so far by each part: the daemons, PostgreSQL (every backend),
# Redis and the sink (the load client's comes from its shell's `times`).  cpu_ticks → "name ticks" lines
cpu_ticks() {
  local d p t f
  for d in "${daemons[@]}"; do
    read -r -a f <"/proc/${pids[$d]}/stat"; echo "$d $((f[13] + f[14]))"
  done
  for pair in "postgres:postgres" "redis:redis-server" "sink:nginx"; do
    t=0
    for p in $(pgrep -f "${pair#*:}"); do
      read -r -a f <"/proc/$p/stat" 2>/dev/null || continue
      t=$((t + f[13] + f[14]))
    done
    echo "${pair%%:*} $t"
  done
}

# One step: offer `rate` events/s for step_seconds, sampling the backlog every second.
# Sustained when the load client got at least 95 % of it acknowledged and the backlog did
# not grow: its least-squares slope over the step's last two thirds absorbs at most 3 % of
# the offered batches (a standing backlog, whose size the stages' turn sizes set, is fine;
# a stage that falls behind grows it by its whole deficit, second after second).
step_result=
run_step() {
  local rate=$1 seconds=$2 tag=$3 events samples=() out
  events=$(python3 -c "print(int($rate * $seconds))")
  ( "$bin/tributary-load" run --collector http://127.0.0.1:18080 --sites-file "$work/sites.json" --events "$events" \
      --rate "$rate" --seconds "$((seconds * 3))" --concurrency 32 --seed "$RANDOM" \
      --record "$work/record-$tag.jsonl" --json >"$work/load-$tag.json" 2>"$work/load-$tag.log"
    status=$?; times >"$work/times-$tag.txt"; exit $status ) &
  local load=$!
  local line
  : >"$work/depths-$tag.txt"
  while kill -0 $load 2>/dev/null; do
    line=$(depths)
    echo "$line" >>"$work/depths-$tag.txt"
    samples+=("$(( ${line// / + } ))")  # the backlog, from the same sample
    sleep 1
  done
  wait $load || true
  out=$(python3 - "$rate" "$work/load-$tag.json" "${samples[*]:-0}" "$work/depths-$tag.txt" <<'PY'
import json, sys
rate = float(sys.argv[1])
try:
    run = json.load(open(sys.argv[2]))
except Exception:
    run = {"eventsPerSecond": 0, "acknowledged": 0, "batches": 1}
samples = [int(s) for s in sys.argv[3].split()] or [0]
tail = samples[len(samples) // 3:]
n = len(tail)
if n >= 3:
    mx, my = (n - 1) / 2, sum(tail) / n
    slope = sum((x - mx) * (y - my) for x, y in enumerate(tail)) / sum((x - mx) ** 2 for x in range(n))
else:
    slope = 0.0
limit = 0.03 * rate / 20  # items (batches of about 20 events) per second
achieved = run.get("eventsPerSecond", 0)
ok = achieved >= 0.95 * rate and run.get("acknowledged", 0) == run.get("batches", -1) and slope <= limit
# Each queue's own growth: which stage fell behind.
names = ["hydrate", "aggregate", "forward"]
rows = [[int(v) for v in line.split()] for line in open(sys.argv[4]) if line.strip()]
rows = rows[len(rows) // 3:]
growth = {}
for i, name in enumerate(names):
    ys = [r[i] for r in rows if len(r) > i]
    k = len(ys)
    if k >= 3:
        mx, my = (k - 1) / 2, sum(ys) / k
        growth[name] = round(sum((x - mx) * (y - my) for x, y in enumerate(ys)) / sum((x - mx) ** 2 for x in range(k)), 1)
print(json.dumps({"offered": rate, "achieved": achieved, "backlogEnd": samples[-1], "backlogMax": max(samples),
                  "backlogGrowthPerSecond": round(slope, 1), "growthLimit": round(limit, 1), "queueGrowthPerSecond": growth,
                  "sustained": ok}))
PY
)
  step_result=$out
}

echo "searching for the highest sustained rate ($step_seconds s steps)"
: >"$work/steps.jsonl"
good=0 bad=0 rate=$start_rate n=0
while [ $n -lt "$max_steps" ]; do
  n=$((n + 1))
  run_step "$rate" "$step_seconds" "step$n"
  echo "$step_result" >>"$work/steps.jsonl"
  drained=$(drain 120)
  echo "  $step_result (queues empty ${drained} s later)"
  if echo "$step_result" | grep -q '"sustained": true'; then good=$rate; else bad=$rate; fi
  if [ "$bad" = 0 ]; then rate=$(python3 -c "print(int($rate * 1.6))")
  else
    # Bisect between the best sustained and the lowest not sustained, to within 10 %.
    [ "$(python3 -c "print(int($bad <= max($good, 1) * 1.1))")" = 1 ] && break
    rate=$(python3 -c "print(int(($good + $bad) / 2))")
  fi
done
[ "$good" = 0 ] && { echo "no step was sustained, not even $start_rate events/s" >&2; exit 1; }

half=$((good / 2))
echo "latency at half the highest sustained rate: $half events/s for $((step_seconds * 2)) s"
t0=$("${psql_admin[@]}" -c "SELECT now()")
cpu_ticks >"$work/cpu-before.txt"
# BENCH_PG_STATS=1 (with pg_stat_statements preloaded on the bench server): the latency
# step's statements by total time, into .run/bench/pipeline/statements.txt.
[ "${BENCH_PG_STATS:-0}" = 1 ] && "${psql_admin[@]}" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
run_step "$half" "$((step_seconds * 2))" latency
drain 120 >/dev/null
cpu_ticks >"$work/cpu-after.txt"
[ "${BENCH_PG_STATS:-0}" = 1 ] && "${pg_bin}/psql" -h 127.0.0.1 -p $pg_port -U tributary_admin -d tributary -c "
  SELECT calls, round(total_exec_time) AS ms, round((total_exec_time / calls)::numeric, 2) AS per_call, rows,
         left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS statement
  FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 40" >"$work/statements.txt"
t1=$("${psql_admin[@]}" -c "SELECT now()")
sleep 2
# Receipt (the collector's receivedAt, which every later stage carries) to the commit of
# the aggregator's ledger row / the forwarder's delivery mark; one value per event.
"${psql_admin[@]}" -c "COPY (SELECT (extract(epoch FROM l.applied_at - r.received_at) * 1e6)::bigint, l.events_received
  FROM aggregator.ledger l JOIN collector.raw_batches r USING (site_id, batch_id)
  WHERE r.received_at BETWEEN '$t0' AND '$t1') TO STDOUT" >"$work/aggregated.tsv"
"${psql_admin[@]}" -c "COPY (SELECT (extract(epoch FROM d.delivered_at - e.received_at) * 1e6)::bigint, 1
  FROM forwarder.deliveries d JOIN hydration.events e ON e.site_id = d.site_id AND e.event_id = d.event_id
  WHERE d.sink_id = $sink_id AND e.received_at BETWEEN '$t0' AND '$t1') TO STDOUT" >"$work/delivered.tsv"
peak=""
for d in "${daemons[@]}"; do
  kib=$(awk '/^VmHWM:/ {print $2}' "/proc/${pids[$d]}/status")
  peak="$peak${peak:+,}\"$d\": $kib"
done

.run/venv/bin/python - "$work/steps.jsonl" "$good" "$half" "$step_result" "$work" "{$peak}" <<'PY'
import json, os, platform, sys
from hdrh.histogram import HdrHistogram
steps, good, half, latency_step, work, peak = ([json.loads(l) for l in open(sys.argv[1])], int(sys.argv[2]), int(sys.argv[3]),
                                              json.loads(sys.argv[4]), sys.argv[5], json.loads(sys.argv[6]))
def histogram(path):
    h = HdrHistogram(1, 3_600_000_000, 3)  # microseconds, up to an hour, 3 significant digits
    for line in open(path):
        us, weight = line.split()
        h.record_value(max(1, int(us)), int(weight))
    n = h.get_total_count()
    return {"events": n, "p50Ms": round(h.get_value_at_percentile(50) / 1000, 1) if n else None,
            "p99Ms": round(h.get_value_at_percentile(99) / 1000, 1) if n else None,
            "maxMs": round(h.get_max_value() / 1000, 1) if n else None}
aggregated, delivered = histogram(f"{work}/aggregated.tsv"), histogram(f"{work}/delivered.tsv")
# CPU per acknowledged event during the latency step (load, then until the queues were empty).
def ticks(path):
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in open(path) if line.strip()}
before, after = ticks(f"{work}/cpu-before.txt"), ticks(f"{work}/cpu-after.txt")
load = json.load(open(f"{work}/load-latency.json"))
events = max(1, load.get("events", 0))
cpu = {k: round((after[k] - before.get(k, 0)) * 10_000 / events, 1) for k in after}
def seconds(text):  # bash `times`: "1m2.345s"
    m, s = text.rstrip("s").split("m")
    return int(m) * 60 + float(s)
children = open(f"{work}/times-latency.txt").read().split("\n")[1].split()
cpu["load client"] = round((seconds(children[0]) + seconds(children[1])) * 1e6 / events, 1)
result = {"machine": f"{os.cpu_count()} cores, {platform.machine()}", "sites": 20, "sinks": 1,
          "maxSustainedEventsPerSecond": good, "steps": steps, "latencyRate": half, "latencyStep": latency_step,
          "receiptToAggregated": aggregated, "receiptToDelivered": delivered, "peakMemoryKiB": peak,
          "cpuMicrosecondsPerEvent": cpu}
print()
print(f"{'end to end (5 daemons, 1 webhook sink)':<48}{'value':>14}")
for s in steps:
    print(f"  offered {s['offered']:>7,.0f}/s: acknowledged {s['achieved']:>7,}/s, backlog {s['backlogEnd']:>5} items,"
          f" growing {s['backlogGrowthPerSecond']:>6.1f}/s -> {'kept up' if s['sustained'] else 'fell behind'}"
          + ("" if s["sustained"] else " (" + ", ".join(f"{q} {g:+.1f}/s" for q, g in s.get("queueGrowthPerSecond", {}).items()) + ")"))
print(f"{'highest sustained events/s':<48}{good:>14,}")
print(f"{'at %d events/s: receipt -> aggregated p50/p99 (ms)' % half:<48}{aggregated['p50Ms']!s:>7}/{aggregated['p99Ms']!s}")
print(f"{'at %d events/s: receipt -> delivered p50/p99 (ms)' % half:<48}{delivered['p50Ms']!s:>7}/{delivered['p99Ms']!s}")
print(f"CPU per event at {half} events/s (µs):  " + ", ".join(f"{k} {v:,.0f}" for k, v in cpu.items())
      + f"; total {sum(cpu.values()):,.0f}")
for d, kib in peak.items():
    print(f"{'peak memory, ' + d + ' (MiB)':<48}{kib / 1024:>14.1f}")
json.dump(result, open(".run/bench-pipeline.json", "w"), indent=2)
PY
echo "(written to .run/bench-pipeline.json)"
