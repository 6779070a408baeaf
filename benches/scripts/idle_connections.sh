#!/usr/bin/env bash
# Kafka produce throughput with and without 10,000 idle client connections held open on the same
# node (one shard unless SHARDS says otherwise): three runs before the connections are opened,
# three while hold_connections.py holds them, three after they are closed. Prints MB/s and
# latency per run, the server's resident memory at each stage, and its CPU ticks over 3 s with
# the connections idle. Run from the repository root after
# `cargo build --release --bin spindle --bin spindle-bench`.
# Environment: B (target/release), WORK (/tmp/spindle-idle-connections), CONNECTIONS (10000),
# SHARDS (1), SECS (6 s a run).
set -u
B=${B:-target/release}; WORK=${WORK:-/tmp/spindle-idle-connections}
CONNECTIONS=${CONNECTIONS:-10000}; SECS=${SECS:-6}; SHARDS=${SHARDS:-1}
. "$(dirname "$0")/common.sh"
# hold_connections.py raises its own descriptor limit to 20,000.
ulimit -n $(( CONNECTIONS + 10000 > 20000 ? CONNECTIONS + 10000 : 20000 ))
rm -rf "$WORK"; mkdir -p "$WORK"
start_spindle "$WORK/server.log" --data-dir "$WORK/data" --kafka-listen 127.0.0.1:19092 \
    --grpc-enabled false --admin-listen 127.0.0.1:19094 --shards "$SHARDS" \
    --retention-bytes 1073741824
run() {
    "$B/spindle-bench" kafka --bootstrap 127.0.0.1:19092 --topic "idle-$1" --json \
        --duration-secs "$SECS" --warmup-secs 2 --acks 1 --producers 2 --in-flight 8 2>/dev/null |
        python3 -c "import json, sys; j = json.load(sys.stdin); l = j['latency_us']; print('$2', round(j['bytes_per_sec'] / 1e6), 'MB/s, p50', l['p50'], 'us, p99', l['p99'], 'us')"
}
rss() { echo "$1: server resident $(awk '/VmRSS/ {print $2, $3}' /proc/$SERVER/status)"; }
rss idle
for i in 1 2 3; do run $i without; done
hold_secs=$((SECS * 3 + 40))
python3 "$(dirname "$0")/hold_connections.py" 127.0.0.1:19092 "$CONNECTIONS" "$hold_secs" > "$WORK/hold.log" 2>&1 &
hold=$!
wait_for "$WORK/hold.log" holding 60
if ! grep -q holding "$WORK/hold.log"; then
    cat "$WORK/hold.log"; kill -TERM $SERVER; wait $SERVER; exit 1
fi
cat "$WORK/hold.log"; rss "with $CONNECTIONS held"
t0=$(awk '{print $14 + $15}' /proc/$SERVER/stat); sleep 3; t1=$(awk '{print $14 + $15}' /proc/$SERVER/stat)
echo "server CPU ticks over 3 s with the connections idle: $((t1 - t0))"
for i in 4 5 6; do run $i "with $CONNECTIONS held"; done
wait $hold; tail -1 "$WORK/hold.log"
for i in 7 8 9; do run $i without; done
rss "after"
kill -TERM $SERVER; wait $SERVER; rm -rf "$WORK"
