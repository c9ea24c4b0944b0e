#!/usr/bin/env bash
# make bench: every benchmark in turn on this machine, each on fresh private servers under
# .run/bench with release builds, then one table of every figure next to the same-run
# ceiling it is bounded by (deploy/bench/table.py), also written as .run/bench.json.
#
#   deploy/bench/all.sh CONNECTIONS SECONDS BATCHES SITE_EVENTS QUERY_RUNS STEP_SECONDS
#
# The phases (each can run alone; each writes .run/bench-<phase>.json):
#   collector.sh   the collector alone (wrk), with the raw-batch COPY, Redis and nginx ceilings
#   hydration.sh   hydration alone on a pre-filled queue, with the hydrated-row COPY ceilings
#   aggregator.sh  the aggregator alone on hydration's output, and Stats API query latency
#   forwarder.sh   the forwarder alone, per sink type
#   pipeline.sh    end to end: the highest sustained rate, latency at half of it, memory
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
connections=${1:-64} seconds=${2:-10} batches=${3:-3000} site_events=${4:-300000} runs=${5:-200} step=${6:-10}
started=$SECONDS

deploy/dev/stack.sh deps
deploy/dev/stack.sh bench-deps
make --no-print-directory venv geoip >/dev/null
echo "building every product (release)…"
swift build -c release >.run/bench-build.log 2>&1 \
  || { tail -n 20 .run/bench-build.log >&2; echo "make bench: the release build failed (.run/bench-build.log)" >&2; exit 1; }
rm -f .run/bench-collector.json .run/bench-hydration.json .run/bench-aggregator.json .run/bench-forwarder.json \
  .run/bench-pipeline.json .run/bench.json

phase() {
  local name=$1; shift
  echo
  echo "=== $name ($(( (SECONDS - started) / 60 )) min in)"
  "deploy/bench/$name.sh" "$@" || echo "make bench: the $name phase failed (its table row will be missing)" >&2
}
phase collector "$connections" "$seconds"
phase hydration "$batches"
phase aggregator "$batches" "$site_events" "$runs"
phase forwarder "$batches"
phase pipeline "$step"

.run/venv/bin/python deploy/bench/table.py "$((SECONDS - started))"
