#!/usr/bin/env bash
# Private Redis and PostgreSQL servers for development and tests, under a data folder
# of the checkout. Never touches system services. PostgreSQL refuses to run as root,
# so as root its data folder belongs to, and its server runs as, the `postgres` user.
#
#   stack.sh deps                         install missing Debian packages
#   stack.sh test-deps                    the same, and what only the tests need (chromium)
#   stack.sh bench-deps                   the same, and what only make bench needs (wrk, nginx)
#   stack.sh pg-start DIR PORT            initdb (first time) and start PostgreSQL
#   stack.sh pg-stop DIR                  stop it (fast shutdown)
#   stack.sh pg-restart DIR               restart it
#   stack.sh pg-setup DIR PORT            create the database, roles and schemas (idempotent)
#   stack.sh pg-reset DIR PORT            drop the database and set it up afresh (tests)
#   stack.sh redis-start DIR PORT         start Redis (append-only file in DIR)
#   stack.sh redis-stop DIR PORT          stop it
#   stack.sh redis-restart DIR PORT       restart it
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
admin=tributary_admin
database=tributary
packages=(pkg-config libhiredis-dev libpq-dev libcurl4-openssl-dev libmaxminddb-dev libjemalloc-dev uap-core zlib1g-dev redis-server redis-tools
          postgresql postgresql-contrib curl python3 python3-venv gzip systemd)
# Only for the tests: a real browser for the tracker's tests (docs/tracker.md).
test_packages=(chromium)
# make bench: wrk is the load client; nginx (one worker answering 204) the idle-HTTP ceiling.
bench_packages=(wrk nginx-light)

die() { echo "stack.sh: $*" >&2; exit 1; }

pg_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || die "PostgreSQL server binaries not found; run: make deps"
    echo "$d"
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

deps() {
    local missing=()
    for p in "${packages[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pg_start() {
    local dir=$1 port=$2 bin
    bin=$(pg_bin)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir/data" "$dir/socket"
        [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
        as_pg "$bin/initdb" -D "$dir/data" -U "$admin" --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; die "initdb failed in $dir"; }
        cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
default_toast_compression = lz4
log_min_messages = warning
CONF
    fi
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then return 0; fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start on port $port"; }
}

pg_stop() {
    local dir=$1 bin
    bin=$(pg_bin)
    [ -f "$dir/data/PG_VERSION" ] || return 0
    as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 || return 0
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
}

pg_restart() {
    local dir=$1 bin
    bin=$(pg_bin)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart >/dev/null
}

pg_setup() {
    local dir=$1 port=$2
    if ! psql -h 127.0.0.1 -p "$port" -U "$admin" -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
        psql -h 127.0.0.1 -p "$port" -U "$admin" -d postgres -qc "CREATE DATABASE $database" >/dev/null
    fi
    PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -p "$port" -U "$admin" -d "$database" \
        -v ON_ERROR_STOP=1 -q -f "$here/../config/roles.sql" >/dev/null
}

pg_reset() {
    local dir=$1 port=$2
    PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -p "$port" -U "$admin" -d postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null
    pg_setup "$dir" "$port"
}

redis_start() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
        --logfile "$dir/redis.log" --save "" --appendonly yes --appendfsync everysec --databases 32 >/dev/null
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    die "Redis did not start on port $port (see $dir/redis.log)"
}

redis_stop() {
    local dir=$1 port=$2
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 || return 0
        sleep 0.1
    done
    [ -f "$dir/redis.pid" ] && kill -9 "$(cat "$dir/redis.pid")" 2>/dev/null || true
}

cmd=${1:-}
shift || true
case "$cmd" in
    deps) deps ;;
    test-deps) deps "${test_packages[@]}" ;;
    bench-deps) deps "${bench_packages[@]}" ;;
    pg-start) pg_start "$@" ;;
    pg-stop) pg_stop "$@" ;;
    pg-restart) pg_restart "$@" ;;
    pg-setup) pg_setup "$@" ;;
    pg-reset) pg_reset "$@" ;;
    redis-start) redis_start "$@" ;;
    redis-stop) redis_stop "$@" ;;
    redis-restart) redis_stop "$@"; redis_start "$@" ;;
    *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
