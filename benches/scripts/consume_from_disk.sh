#!/usr/bin/env bash
# Reading old data through Kafka: starts a fresh one-shard `spindle serve` BIN (retention capped
# at 1 GiB), fills a topic for 2 s with `spindle-bench kafka` (acks=1), waits 3 s, then has
# CONSUMERS (2) consumers read it from the log start for at most 4 s, and prints what they read,
# their rate and the server's CPU ticks (1/100 s) over the reading.
#
# Usage: benches/scripts/consume_from_disk.sh BIN
# Environment: CONSUMERS (2), BENCH (target/release/spindle-bench), WORK (/tmp/spindle-consume).
set -u
BIN=$1; BENCH=${BENCH:-target/release/spindle-bench}; WORK=${WORK:-/tmp/spindle-consume}
rm -rf "$WORK"; mkdir -p "$WORK"; sync; sleep 1
"$BIN" serve --data-dir "$WORK/data" --kafka-listen 127.0.0.1:19092 --grpc-enabled false \
    --admin-listen 127.0.0.1:19094 --shards 1 --retention-bytes 1073741824 > "$WORK/server.log" 2>&1 &
pid=$!
sleep 1.5
"$BENCH" kafka --bootstrap 127.0.0.1:19092 --topic c --json --duration-secs 2 --acks 1 \
    --producers 2 --in-flight 8 > /dev/null 2>&1
sleep 3
before=$(awk '{print $14 + $15}' /proc/$pid/stat)
"$BENCH" kafka --bootstrap 127.0.0.1:19092 --topic c --json --duration-secs 4 --producers 0 \
    --consumers "${CONSUMERS:-2}" --from start 2> "$WORK/bench.err" | python3 -c '
import json, sys
c = json.load(sys.stdin)["consume"]
print("consumed %d MB at %.0f MB/s in %.2f s" % (c["bytes"] / 1e6, c["bytes_per_sec"] / 1e6, c["elapsed_secs"]))'
after=$(awk '{print $14 + $15}' /proc/$pid/stat)
echo "server CPU over the reading: $((after - before)) ticks"
kill $pid; wait $pid 2>/dev/null
