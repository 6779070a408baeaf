#!/usr/bin/env bash
# Restart after a crash: starts a fresh one-shard `spindle serve` BIN, produces 880,000 records
# of 1 KiB into one partition (one active segment of about 870 MiB), kills the server with
# SIGKILL, starts it again on the same data and prints how long it took to print its ready line,
# with the server's own recovery log lines.
#
# Usage: benches/scripts/recovery_time.sh BIN
# Environment: BENCH (target/release/spindle-bench), WORK (/tmp/spindle-recovery).
set -u
BIN=$1; BENCH=${BENCH:-target/release/spindle-bench}; WORK=${WORK:-/tmp/spindle-recovery}
rm -rf "$WORK"; mkdir -p "$WORK"; sync; sleep 1
serve() {
    "$BIN" serve --data-dir "$WORK/data" --kafka-listen 127.0.0.1:19092 --grpc-enabled false \
        --admin-listen 127.0.0.1:19094 --shards 1 > "$WORK/$1" 2>&1 &
    pid=$!
}
serve first.log
sleep 1.5
"$BENCH" kafka --bootstrap 127.0.0.1:19092 --topic r --json --count 880000 --acks 1 \
    --producers 2 --in-flight 8 > /dev/null 2>&1
sleep 1
kill -9 $pid; wait $pid 2>/dev/null
started=$(date +%s.%N)
serve second.log
until grep -q "spindle ready" "$WORK/second.log"; do
    kill -0 $pid 2>/dev/null || { echo "the server exited:"; tail -3 "$WORK/second.log"; exit 1; }
    sleep 0.02
done
ready=$(date +%s.%N)
echo "ready $(echo "$ready - $started" | bc) s after the restart"
grep -E "recovering|segment scanned|partitions recovered" "$WORK/second.log" | sed 's/.*INFO //'
kill $pid; wait $pid 2>/dev/null
