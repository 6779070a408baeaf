#!/usr/bin/env bash
# Reading old data through Kafka, one or more server builds in turn: for each BIN, a fresh
# one-shard `spindle serve` (retention 4 GiB, so nothing is deleted while it is read) is filled
# for 1 s (2 producers x 8 in flight, acks=1, 2 partitions), then `spindle-bench kafka
# --producers 0 --consumers C --from start` reads it all, C = 1, 2, 1, 2, 1, 2. Each pass prints
# what it read, its rate and the server's CPU ticks (1/100 s) over it. Every Fetch asks for 4 MiB
# per partition, so the answers come from the segment files, not the tail cache.
#
# Usage: benches/scripts/read_old_data.sh BIN [BIN...]
# Environment: BENCH (target/release/spindle-bench), WORK (/tmp/spindle-read-old).
set -u
BENCH=${BENCH:-target/release/spindle-bench}; WORK=${WORK:-/tmp/spindle-read-old}
for BIN in "$@"; do
    rm -rf "$WORK"; mkdir -p "$WORK"; sync
    "$BIN" serve --data-dir "$WORK/data" --kafka-listen 127.0.0.1:19092 --grpc-enabled false \
        --admin-listen 127.0.0.1:19094 --shards 1 --retention-bytes 4294967296 > "$WORK/server.log" 2>&1 &
    pid=$!
    sleep 1.5
    "$BENCH" kafka --bootstrap 127.0.0.1:19092 --topic c --partitions 2 --json --duration-secs 1 \
        --acks 1 --producers 2 --in-flight 8 > /dev/null 2>&1
    sleep 2
    for c in 1 2 1 2 1 2; do
        before=$(awk '{print $14 + $15}' /proc/$pid/stat)
        read=$("$BENCH" kafka --bootstrap 127.0.0.1:19092 --topic c --json --duration-secs 3 \
            --producers 0 --consumers $c --from start 2> /dev/null | python3 -c '
import json, sys
c = json.load(sys.stdin)["consume"]
print("%d MB at %.0f MB/s" % (c["bytes"] / 1e6, c["bytes_per_sec"] / 1e6))')
        after=$(awk '{print $14 + $15}' /proc/$pid/stat)
        echo "$(basename "$BIN") consumers=$c: $read, server CPU $((after - before)) ticks"
    done
    kill $pid; wait $pid 2> /dev/null
done
rm -rf "$WORK"
