#!/usr/bin/env bash
# Starts, stops and shows the five daemons of the local stack (make up / down / run / status).
#
#   daemons.sh start BIN_DIR      start all five in the background (pid files in .run/pids)
#   daemons.sh foreground BIN_DIR run all five in the foreground; Ctrl-C stops everything
#   daemons.sh stop               stop them (SIGTERM, then SIGKILL after the grace period)
#   daemons.sh status             show what runs and where
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
run="$root/.run"
daemons=(collector hydration aggregator forwarder health-checker)
declare -A admin_port=([collector]=9101 [hydration]=9102 [aggregator]=9103 [forwarder]=9104 [health-checker]=9105)

die() { echo "daemons.sh: $*" >&2; exit 1; }

wait_healthy() {
    local name=$1 port=${admin_port[$1]}
    for _ in $(seq 1 150); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        if [ -f "$run/pids/$name.pid" ] && ! kill -0 "$(cat "$run/pids/$name.pid")" 2>/dev/null; then
            tail -n 5 "$run/logs/$name.log" >&2 || true
            die "$name exited during start-up (log: .run/logs/$name.log)"
        fi
        sleep 0.2
    done
    die "$name did not answer /healthz on port $port within 30 s (log: .run/logs/$name.log)"
}

start() {
    local bin=$1
    mkdir -p "$run/pids" "$run/logs"
    for name in "${daemons[@]}"; do
        local pidfile="$run/pids/$name.pid"
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then continue; fi
        # Its own session: a Ctrl-C at the terminal reaches this script, which stops the
        # daemons gracefully, instead of killing them behind its back.
        TRIBUTARY_CONFIG="$run/config.json" setsid nohup "$bin/$name" run >>"$run/logs/$name.log" 2>&1 &
        echo $! >"$pidfile"
    done
    for name in "${daemons[@]}"; do wait_healthy "$name"; done
}

stop() {
    local pids=()
    for name in "${daemons[@]}"; do
        local pidfile="$run/pids/$name.pid"
        [ -f "$pidfile" ] || continue
        local pid
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
        rm -f "$pidfile"
    done
    for _ in $(seq 1 300); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

foreground() {
    local bin=$1
    trap 'stop; exit 0' INT TERM
    start "$bin"
    echo "all five daemons are up; logs in .run/logs; Ctrl-C stops everything"
    tail -q -n 0 -F "$run"/logs/*.log &
    local tailer=$!
    trap 'kill $tailer 2>/dev/null; stop; exit 0' INT TERM
    while true; do
        for name in "${daemons[@]}"; do
            if ! kill -0 "$(cat "$run/pids/$name.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
                kill $tailer 2>/dev/null || true
                stop
                die "$name stopped unexpectedly (log: .run/logs/$name.log)"
            fi
        done
        sleep 1
    done
}

status() {
    for name in "${daemons[@]}"; do
        local pidfile="$run/pids/$name.pid" state="stopped" pid="-"
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            pid=$(cat "$pidfile")
            if curl -fsS "http://127.0.0.1:${admin_port[$name]}/readyz" >/dev/null 2>&1; then state="ready"
            elif curl -fsS "http://127.0.0.1:${admin_port[$name]}/healthz" >/dev/null 2>&1; then state="running, not ready"
            else state="starting"; fi
        fi
        printf '%-15s %-20s pid %-8s admin http://127.0.0.1:%s\n' "$name" "$state" "$pid" "${admin_port[$name]}"
    done
}

cmd=${1:-}
shift || true
case "$cmd" in
    start) start "$@" ;;
    foreground) foreground "$@" ;;
    stop) stop ;;
    status) status ;;
    *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
