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

# The PostgreSQL ceiling for a table's rows (issue 12): the same rows, dumped, then
# loaded again into a table of the same columns, lz4 TOAST compression and primary key
# (no other index): by binary COPY in one stream and in two parallel streams (each half
# of the rows), the fastest this machine allows; and by one stream of COPY text, for
# reference. Each is the best of three runs, each into the emptied table after a checkpoint
# (one COPY of ~60k rows takes about a second: a single run is at the mercy of the VM).
# LOADS picks some of binary1, binary2 and text1 (default all three); TRIES sets how many
# runs each takes the best of (default 3).
#   copy_ceilings SOURCE_TABLE "PK COLUMNS" NAME [MAX_ROWS [LOADS [TRIES]]]  → one line of JSON
copy_ceilings() {
  local source=$1 key=$2 name=$3 limit=${4:-100000} loads=${5:-binary1 binary2 text1} tries=${6:-3}
  local table="public.ceiling_$name" rows
  # A bounded, reproducible slice: the first MAX_ROWS rows by primary key.
  PGOPTIONS="-c client_min_messages=warning" "${psql_admin[@]}" -c "DROP TABLE IF EXISTS $table; CREATE UNLOGGED TABLE public.ceiling_src_$name AS SELECT * FROM $source ORDER BY $key LIMIT $limit" >/dev/null
  rows=$("${psql_admin[@]}" -c "SELECT count(*) FROM public.ceiling_src_$name")
  # Only the dumps the chosen loads read.
  case " $loads " in *" binary1 "*)
    "${psql_admin[@]}" -c "\copy public.ceiling_src_$name TO '$dir/$name.bin' WITH (FORMAT binary)" ;;
  esac
  case " $loads " in *" binary2 "*)
    "${psql_admin[@]}" -c "\copy (SELECT * FROM public.ceiling_src_$name WHERE (hashint8(batch_id) & 1) = 0) TO '$dir/$name-0.bin' WITH (FORMAT binary)"
    "${psql_admin[@]}" -c "\copy (SELECT * FROM public.ceiling_src_$name WHERE (hashint8(batch_id) & 1) = 1) TO '$dir/$name-1.bin' WITH (FORMAT binary)" ;;
  esac
  case " $loads " in *" text1 "*)
    "${psql_admin[@]}" -c "\copy public.ceiling_src_$name TO '$dir/$name.txt'" ;;
  esac
  "${psql_admin[@]}" -c "CREATE TABLE $table (LIKE $source INCLUDING DEFAULTS INCLUDING COMPRESSION); ALTER TABLE $table ADD PRIMARY KEY ($key); DROP TABLE public.ceiling_src_$name"
  for col in $("${psql_admin[@]}" -c "SELECT attname FROM pg_attribute WHERE attrelid = '$table'::regclass AND attnum > 0 AND attlen = -1"); do
    "${psql_admin[@]}" -c "ALTER TABLE $table ALTER COLUMN $col SET COMPRESSION lz4"
  done
  load_binary1() { "${psql_admin[@]}" -c "\copy $table FROM '$dir/$name.bin' WITH (FORMAT binary)"; }
  load_binary2() {
    local p0 p1
    "${psql_admin[@]}" -c "\copy $table FROM '$dir/$name-0.bin' WITH (FORMAT binary)" & p0=$!
    "${psql_admin[@]}" -c "\copy $table FROM '$dir/$name-1.bin' WITH (FORMAT binary)" & p1=$!
    wait $p0; wait $p1
  }
  load_text1() { "${psql_admin[@]}" -c "\copy $table FROM '$dir/$name.txt'"; }
  local how best t0 t1 json="{\"rows\": $rows"
  for how in $loads; do
    best=
    for _ in $(seq "$tries"); do
      "${psql_admin[@]}" -c "TRUNCATE $table; CHECKPOINT"
      t0=$(date +%s.%N)
      "load_$how"
      t1=$(date +%s.%N)
      best=$(python3 -c "t = $t1 - $t0; p = '$best'; print(min(t, float(p)) if p else t)")
    done
    json="$json, \"${how}RowsPerSecond\": $(python3 -c "print(round($rows / $best))")"
  done
  "${psql_admin[@]}" -c "DROP TABLE $table"
  rm -f "$dir/$name.bin" "$dir/$name-0.bin" "$dir/$name-1.bin" "$dir/$name.txt"
  echo "$json}"
}

# The Redis ceiling for one message size: redis-benchmark's LPUSH then RPOP (50 clients,
# no pipelining, as the daemons send them), ops/s.  redis_ceiling BYTES → one line of JSON
redis_ceiling() {
  local size=$1 out
  redis-cli -p $redis_port del mylist >/dev/null
  out=$(redis-benchmark -p $redis_port -t lpush,rpop -d "$size" -n 50000 -c 50 -q --csv)
  redis-cli -p $redis_port del mylist >/dev/null
  python3 - "$size" "$out" <<'PY'
import csv, io, json, sys
rows = {r[0]: float(r[1]) for r in csv.reader(io.StringIO(sys.argv[2])) if r and r[0] in ("LPUSH", "RPOP")}
print(json.dumps({"bytes": int(sys.argv[1]), "lpushPerSecond": round(rows.get("LPUSH", 0)), "rpopPerSecond": round(rows.get("RPOP", 0))}))
PY
}

# The idle-HTTP ceiling: nginx from Debian, one worker, answering 204 to everything
# (request bodies read and dropped), under the same load client as the collector.
#   nginx_ceiling CONNECTIONS SECONDS  → requests/s
nginx_ceiling() {
  local connections=$1 seconds=$2 conf="$dir/nginx" out
  mkdir -p "$conf"
  cat >"$conf/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $conf/nginx.pid;
error_log $conf/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $conf/body;
  client_max_body_size 2m;
  client_body_buffer_size 1m;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:18088;
    location / { return 204; }
  }
}
NGINX
  /usr/sbin/nginx -c "$conf/nginx.conf" -p "$conf" 2>"$conf/start.log" &
  local nginx_pid=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:18088/ && break; sleep 0.1; done
  TRIBUTARY_BENCH_KEY=nginx wrk -t2 -c"$connections" -d2s -s deploy/bench/batch.lua http://127.0.0.1:18088 >/dev/null
  out=$(TRIBUTARY_BENCH_KEY=nginx wrk -t2 -c"$connections" -d"${seconds}s" -s deploy/bench/batch.lua http://127.0.0.1:18088)
  kill $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null || true
  echo "$out" | sed -nE 's/^Requests\/sec:\s+([0-9.]+)/\1/p'
}

# Empties every queue (between a phase and a ceiling measured on the same server).
redis_flush_queues() {
  redis-cli -p $redis_port flushall >/dev/null
  redis_settle
}
