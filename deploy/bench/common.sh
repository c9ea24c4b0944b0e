# Shared by the bench scripts (sourced): the private servers under .run/bench, fresh
# for each run, and the environment that points the daemons at them.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
dir="$root/.run/bench"
pg_port=55452
redis_port=56399
stack=deploy/dev/stack.sh
# The server's own psql, not Debian's Perl wrapper: the scripts poll while daemons are
# timed, and the wrapper's start-up (~50 ms of Perl a call) took a tenth of the machine.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
psql_admin=("${pg_bin:-/usr/bin}/psql" -h 127.0.0.1 -p $pg_port -U tributary_admin -d tributary -v ON_ERROR_STOP=1 -qtA)

bench_servers_start() {
  $stack pg-start "$dir/pg" $pg_port
  $stack pg-reset "$dir/pg" $pg_port
  $stack redis-start "$dir/redis" $redis_port
  redis-cli -p $redis_port flushall >/dev/null
  # Append-only file rewrites happen between phases (redis_settle), not while a daemon is
  # timed: a pre-filled backlog and an undrained output queue make each one compress tens
  # of megabytes, which a steady-state queue of a few items never costs. Every write is
  # still appended and fsynced each second, as deployed.
  redis-cli -p $redis_port config set auto-aof-rewrite-percentage 0 >/dev/null
  export TRIBUTARY_CONFIG= TRIBUTARY_POSTGRES_PORT=$pg_port TRIBUTARY_REDIS_URL=redis://127.0.0.1:$redis_port
}

bench_servers_stop() {
  $stack redis-stop "$dir/redis" $redis_port || true
  $stack pg-stop "$dir/pg" || true
}

# Between phases: rewrite Redis's append-only file now and wait for it (automatic
# rewrites are off in the bench, see bench_servers_start), so the file stays bounded.
redis_settle() {
  redis-cli -p $redis_port bgrewriteaof >/dev/null 2>&1 || true
  while redis-cli -p $redis_port info persistence | grep -qE "aof_rewrite_in_progress:1|aof_rewrite_scheduled:1"; do
    sleep 0.2
  done
}
