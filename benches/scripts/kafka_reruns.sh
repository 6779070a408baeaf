#!/usr/bin/env bash
# The sitting's Kafka acks=1 x 8 configuration (benches/scripts/sitting.sh) alone, for one or
# more server builds in turn: for each BIN a fresh one-shard `spindle serve` (retention 2 GiB)
# and three runs of `spindle-bench kafka` (2 producers x 8 in flight, 2 s warm-up, 8 s), each
# on a topic of its own, as the sitting runs them. Prints MB/s and p99 (us) of each run.
#
# Usage: benches/scripts/kafka_reruns.sh BIN [BIN...]   (e.g. old, new, old, new)
# Environment: BENCH (target/release/spindle-bench), WORK (/tmp/spindle-kafka-reruns).
set -u
BENCH=${BENCH:-target/release/spindle-bench}; WORK=${WORK:-/tmp/spindle-kafka-reruns}
for BIN in "$@"; do
    rm -rf "$WORK"; mkdir -p "$WORK"; sync; sleep 3
    "$BIN" serve --data-dir "$WORK/data" --kafka-listen 127.0.0.1:19092 --grpc-enabled false \
        --admin-listen 127.0.0.1:19094 --shards 1 --retention-bytes 2147483648 > "$WORK/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q "spindle ready" "$WORK/server.log" && break; sleep 0.1; done
    runs=""
    for i in 1 2 3; do
        runs="$runs $("$BENCH" kafka --bootstrap 127.0.0.1:19092 --topic t-$i --json --duration-secs 8 \
            --warmup-secs 2 --acks 1 --producers 2 --in-flight 8 2> /dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("%d/%d" % (r["bytes_per_sec"] / 1e6, r["latency_us"]["p99"]))')"
    done
    echo "$(basename "$BIN"): MB/s / p99 us:$runs"
    kill -TERM $pid; wait $pid
done
rm -rf "$WORK"
