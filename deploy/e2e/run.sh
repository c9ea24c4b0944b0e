#!/usr/bin/env bash
# The end-to-end proof on the running stack (make e2e EVENTS=N [SITES=S] [RATE=R]), the
# same under chaos (make chaos ROUNDS=N), and the soak (make soak SOAK_SECONDS=3600 RATE=R):
#   run.sh BIN_DIR EVENTS SITES RATE [CHAOS_ROUNDS] [SOAK_SECONDS]
# Creates SITES fresh sites, a webhook sink (all of them) pointed at a local counting
# server, sends EVENTS events through the real collector with tributary-load, then
# verifies every stage against what was acknowledged. Exits non-zero if anything was
# lost, duplicated or mis-counted. Everything it writes goes under .run/e2e/<stamp>/.
# With CHAOS_ROUNDS > 0, the traffic runs at RATE (1000 events/s if 0) while, round after
# round, a random daemon is killed with SIGKILL and restarted, or Redis or PostgreSQL is
# restarted, at random moments; the verifier runs at the end.
# With SOAK_SECONDS > 0, the traffic runs at RATE (500 events/s if 0) for that long while
# each daemon's resident memory is sampled every 10 s (memory.csv); at the end the
# verifier runs and deploy/e2e/memory.py says whether each daemon's memory stayed flat.
set -euo pipefail
bin=$1 events=${2:-100000} sites=${3:-20} rate=${4:-0} rounds=${5:-0} soak=${6:-0}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. .run/env
stamp=$(date -u +%Y%m%d%H%M%S)
dir=.run/e2e/$stamp
mkdir -p "$dir"
port=${E2E_SINK_PORT:-18601}

SINK_FAST=1 SINK_IDS=1 .run/venv/bin/python Tests/Fixtures/sink_server.py "$port" "$((port + 1))" "$dir" \
    >"$dir/counter.out" 2>"$dir/counter.log" &
counter=$!
sink=e2e$stamp
cleanup() {
    "$bin/forwarder" sinks disable "$sink" >/dev/null 2>&1 || true
    kill "$counter" 2>/dev/null || true
    [ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q ready "$dir/counter.out" 2>/dev/null && break; sleep 0.1; done

echo "creating $sites sites"
echo "[" >"$dir/sites.json"
site_args=()
for i in $(seq "$sites"); do
    line=$("$bin/collector" sites add "e2e-$stamp-$i" --json)
    [ "$i" -gt 1 ] && echo "," >>"$dir/sites.json"
    echo "$line" >>"$dir/sites.json"
    site_args+=(--site "$(echo "$line" | sed -E 's/.*"siteId" *: *([0-9]+).*/\1/')")
done
echo "]" >>"$dir/sites.json"

echo "whsec_$(head -c 24 /dev/urandom | base64)" >"$dir/$sink"
sink_id=$("$bin/forwarder" sinks add "$sink" --type webhook --url "http://127.0.0.1:$port/webhook/$sink" \
    --secret-file "$root/$dir/$sink" --allow-private-network "${site_args[@]}" --json |
    sed -E 's/.*"sinkId" *: *([0-9]+).*/\1/')
sleep 3   # hydration and the forwarder read sink changes within hydration.sinks.refreshSeconds

if [ "$soak" -gt 0 ]; then
    [ "$rate" = 0 ] && rate=500
    events=$((rate * soak))
    echo "soak: $events events at $rate/s for $soak s; memory sampled every 10 s into $dir/memory.csv"
    (
        echo "seconds,daemon,rss_kib"
        start=$(date +%s)
        while true; do
            now=$(($(date +%s) - start))
            for d in collector hydration aggregator forwarder health-checker; do
                pid=$(cat ".run/pids/$d.pid" 2>/dev/null || true)
                rss=$([ -n "$pid" ] && awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
                [ -n "$rss" ] && echo "$now,$d,$rss"
            done
            sleep 10
        done
    ) >"$dir/memory.csv" &
    sampler=$!
    "$bin/tributary-load" run --sites-file "$dir/sites.json" --events "$events" --rate "$rate" --seconds "$((soak + 60))" \
        --record "$dir/record.jsonl" --json | tee "$dir/run.json"
    kill "$sampler" 2>/dev/null || true; sampler=
    echo "verifying"
    status=0
    "$bin/tributary-load" verify "$dir/record.jsonl" --sink-ids "http://127.0.0.1:$port/_received/$sink/ids" \
        --sink-id "$sink_id" --wait 1800 || status=$?
    python3 deploy/e2e/memory.py "$dir/memory.csv" || status=$?
    exit $status
elif [ "$rounds" -gt 0 ]; then
    [ "$rate" = 0 ] && rate=1000
    events=$((rate * (rounds * 8 + 10)))
    echo "sending $events events at $rate/s through $rounds rounds of chaos"
    "$bin/tributary-load" run --sites-file "$dir/sites.json" --events "$events" --rate "$rate" --retry-seconds 600 \
        --record "$dir/record.jsonl" --json >"$dir/run.json" 2>"$dir/load.log" &
    load=$!
    for round in $(seq "$rounds"); do
        sleep "$((RANDOM % 6 + 2))"
        case $((RANDOM % 6)) in
            0|1|2|3)
                daemons=(collector hydration aggregator forwarder)
                d=${daemons[$((RANDOM % 4))]}
                echo "round $round: kill -9 $d"
                kill -9 "$(cat .run/pids/$d.pid)" 2>/dev/null || true
                # Dead (a zombie until reaped still answers kill -0): forget its pid so start runs it again.
                rm -f ".run/pids/$d.pid"
                sleep "$((RANDOM % 3 + 1))"
                deploy/dev/daemons.sh start "$bin" >/dev/null ;;
            4)
                echo "round $round: restart Redis"
                deploy/dev/stack.sh redis-restart .run/redis "${REDIS_PORT:-26379}" ;;
            5)
                echo "round $round: restart PostgreSQL"
                deploy/dev/stack.sh pg-restart .run/pg ;;
        esac
    done
    wait "$load" || true
    cat "$dir/run.json"
else
    echo "sending $events events"
    "$bin/tributary-load" run --sites-file "$dir/sites.json" --events "$events" --rate "$rate" \
        --record "$dir/record.jsonl" --json | tee "$dir/run.json"
fi

echo "verifying"
"$bin/tributary-load" verify "$dir/record.jsonl" --sink-ids "http://127.0.0.1:$port/_received/$sink/ids" \
    --sink-id "$sink_id" --wait 1800
