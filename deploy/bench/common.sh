# Shared by the bench scripts (sourced): the private servers under .run/bench, fresh
# for each run, and the environment that points the daemons at them.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
dir="$root/.run/bench"
pg_port=55452
redis_port=56399
stack=deploy/dev/stack.sh

bench_servers_start() {
  $stack pg-start "$dir/pg" $pg_port
  $stack pg-reset "$dir/pg" $pg_port
  $stack redis-start "$dir/redis" $redis_port
  redis-cli -p $redis_port flushall >/dev/null
  export TRIBUTARY_CONFIG= TRIBUTARY_POSTGRES_PORT=$pg_port TRIBUTARY_REDIS_URL=redis://127.0.0.1:$redis_port
}

bench_servers_stop() {
  $stack redis-stop "$dir/redis" $redis_port || true
  $stack pg-stop "$dir/pg" || true
}
