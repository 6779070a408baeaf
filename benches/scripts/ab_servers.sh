#!/usr/bin/env bash
# A/B of two `spindle` server builds under the same Kafka load, runs interleaved (in alternating
# order) so that the disk's and the machine's swings fall on both alike. Each run starts a fresh one-shard server,
# drives it with `spindle-bench kafka` (2 s warm-up, then SECS measured) and prints one line:
# throughput, client latency, the share of Produce requests the server answered within 1 ms
# (its own histogram) and the server's CPU seconds per GB produced (utime + stime of the whole
# process over the run, warm-up included).
#
# Usage: benches/scripts/ab_servers.sh BIN_A BIN_B [spindle-bench kafka flags...]
#   e.g. ab_servers.sh /tmp/spindle-old target/release/spindle --rate 300000
# Environment: RUNS (3), SECS (8), PRODUCERS (2), IN_FLIGHT (8), SETTLE (5 s after removing the
# last run's data), BENCH
# (target/release/spindle-bench), WORK (/tmp/spindle-ab, on the disk being measured). Every
# topic is capped at 1 GiB of retention.
set -u
A=$1; B=$2; shift 2
RUNS=${RUNS:-3}; SECS=${SECS:-8}; BENCH=${BENCH:-target/release/spindle-bench}
PRODUCERS=${PRODUCERS:-2}; IN_FLIGHT=${IN_FLIGHT:-8}
WORK=${WORK:-/tmp/spindle-ab}; KAFKA=127.0.0.1:19092; ADMIN=127.0.0.1:19094

run_one() {
    local bin=$1; shift
    rm -rf "$WORK"; mkdir -p "$WORK"; sync; sleep "${SETTLE:-5}"
    "$bin" serve --data-dir "$WORK/data" --kafka-listen $KAFKA --grpc-enabled false \
        --admin-listen $ADMIN --shards 1 --retention-bytes 1073741824 > "$WORK/server.log" 2>&1 &
    local pid=$!
    sleep 1.5
    if ! kill -0 $pid 2>/dev/null; then
        echo "$bin did not start:"; tail -3 "$WORK/server.log"; return 1
    fi
    local before after out within
    before=$(awk '{print $14 + $15}' /proc/$pid/stat)
    out=$("$BENCH" kafka --bootstrap $KAFKA --topic ab --json --duration-secs "$SECS" \
        --warmup-secs 2 --acks 1 --producers "$PRODUCERS" --in-flight "$IN_FLIGHT" "$@" 2>/dev/null)
    after=$(awk '{print $14 + $15}' /proc/$pid/stat)
    within=$(curl -s "http://$ADMIN/metrics" | python3 -c '
import re, sys
b = {}
for line in sys.stdin:
    m = re.match(r"spindle_kafka_request_duration_seconds_bucket\{.*api=\"Produce\",le=\"([^\"]+)\"\} (\S+)", line)
    if m: b[m.group(1)] = float(m.group(2))
print(round(100 * b["0.001"] / b["+Inf"], 1) if b.get("+Inf") else "n/a")')
    kill $pid; wait $pid 2>/dev/null
    echo "$out" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read()); l = j["latency_us"]; rate = j["bytes_per_sec"]
ticks, secs, label, within = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
gb = rate * (secs + 2) / 1e9
print("%s: %.0f MB/s, p50 %s us, p99 %s us, server within 1 ms %s %%, server CPU %.3f s/GB"
      % (label, rate / 1e6, l["p50"], l["p99"], within, ticks / 100 / gb))
' "$((after - before))" "$SECS" "$bin" "$within"
}

# The order alternates (A B, B A, A B, ...): run against itself, the second run of a pair came
# out slower and dearer in CPU per GB in each of three pairs, so a fixed order favours A.
for i in $(seq "$RUNS"); do
    if [ $((i % 2)) -eq 1 ]; then
        run_one "$A" "$@"; run_one "$B" "$@"
    else
        run_one "$B" "$@"; run_one "$A" "$@"
    fi
done
rm -rf "$WORK"
