#!/usr/bin/env bash
# A/B of two `spindle` server builds under kafkajs's load (kafkajs_produce.mjs: MIB MiB of 1 KiB
# messages over PARTITIONS partitions, acks=1, each Produce request carrying every partition),
# runs alternating in order. Each run starts a fresh one-shard server and prints the producer's
# MB/s, the server's CPU seconds per GB produced (utime + stime of the process over the run)
# and what the server counted as copied (spindle_bytes_copied_total).
#
# Usage: benches/scripts/kafkajs_ab.sh BIN_A BIN_B
# Environment: RUNS (3), MIB (1024), PARTITIONS (8), WORK (/tmp/spindle-kafkajs-ab, on the disk
# being measured). kafkajs comes from tests/node (scripts/test-deps installs it).
set -u
BIN_A=$1; BIN_B=$2
RUNS=${RUNS:-3}; MIB=${MIB:-1024}; PARTITIONS=${PARTITIONS:-8}
WORK=${WORK:-/tmp/spindle-kafkajs-ab}; KAFKA=127.0.0.1:19092; ADMIN=127.0.0.1:19094
HERE=$(dirname "$0")
. "$HERE/common.sh"

run_one() {
    local bin=$1
    rm -rf "$WORK"; mkdir -p "$WORK"; sync; sleep 4
    SPINDLE=$bin start_spindle "$WORK/server.log" --data-dir "$WORK/data" \
        --kafka-listen $KAFKA --grpc-enabled false --admin-listen $ADMIN --shards 1 \
        --retention-bytes 1073741824
    local before after out copied
    before=$(awk '{print $14 + $15}' /proc/$SERVER/stat)
    out=$(node "$HERE/kafkajs_produce.mjs" $KAFKA ab "$MIB" "$PARTITIONS")
    after=$(awk '{print $14 + $15}' /proc/$SERVER/stat)
    copied=$(curl -s "http://$ADMIN/metrics" | awk '/^spindle_bytes_copied_total/ {s += $2} END {print s + 0}')
    kill $SERVER; wait $SERVER 2>/dev/null
    echo "$out" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
ticks, label, copied = float(sys.argv[1]), sys.argv[2], float(sys.argv[3])
gb = j["bytes"] / 1e9
print("%s: %.0f MB/s, server CPU %.3f s/GB, copied %.0f %% of the bytes"
      % (label, j["mb_per_sec"], ticks / 100 / gb, 100 * copied / j["bytes"]))
' "$((after - before))" "$bin" "$copied"
}

for i in $(seq "$RUNS"); do
    if [ $((i % 2)) -eq 1 ]; then run_one "$BIN_A"; run_one "$BIN_B"; else run_one "$BIN_B"; run_one "$BIN_A"; fi
done
rm -rf "$WORK"
