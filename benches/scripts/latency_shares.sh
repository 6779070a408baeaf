#!/usr/bin/env bash
# Where a Produce's time goes at a fixed rate: a fresh one-shard `spindle serve`, each run of
# `spindle-bench kafka --acks 1 --producers 2 --in-flight 8 --rate RATE` after a warm-up (or
# another load, see LOAD below), and
# the server's /metrics read before and after the measured part. Prints the client's latency
# and how late it sent its requests, then the server's Produce handling
# (`spindle_kafka_request_duration_seconds`), the log's part of it
# (`spindle_append_duration_seconds`) and the write rounds (`spindle_log_write_duration_seconds`):
# the share of each within 0.5, 1 and 2.5 ms and the bucket that holds its 99th percentile, and
# the rounds' mean.
#
# Usage: benches/scripts/latency_shares.sh RATE [RUNS]   (RATE `max`: no target rate)
# Environment: BIN (target/release), WORK (/tmp/spindle-shares), SECS (8), WARMUP (2);
# SEGMENT_BYTES (1 GiB) and RETENTION_BYTES (2 GiB), the node's defaults for the topic;
# LOAD, the load generator's flags besides the rate (`--acks 1 --producers 2 --in-flight 8`;
# the durable runs of docs/BENCHMARKS.md: `--acks 1 --producers 16 --in-flight 1 --batch-bytes
# 4096 --topic-config fsync.policy=batch`); GEN_NICE, a niceness for the load generator (say
# -10, as root), so that on a machine whose CPUs it shares with the server its own waits for a
# CPU weigh less on what it measures.
set -u
RATE=$1; RUNS=${2:-1}
B=${BIN:-target/release}; WORK=${WORK:-/tmp/spindle-shares}; SECS=${SECS:-8}; WARMUP=${WARMUP:-2}
LOAD=${LOAD:---acks 1 --producers 2 --in-flight 8}
if [ "$RATE" = max ]; then PACE=(); else PACE=(--rate "$RATE"); fi
HERE=$(dirname "$0")
source "$HERE/common.sh"
for run in $(seq "$RUNS"); do
    rm -rf "$WORK"; mkdir -p "$WORK"; sync; sleep 3
    start_spindle "$WORK/server.log" --data-dir "$WORK/data" --shards 1 \
        --kafka-listen 127.0.0.1:19092 --grpc-enabled false --admin-listen 127.0.0.1:19094 \
        --segment-bytes "${SEGMENT_BYTES:-1073741824}" \
        --retention-bytes "${RETENTION_BYTES:-2147483648}"
    # shellcheck disable=SC2086 # LOAD is a list of flags
    ${GEN_NICE:+nice -n "$GEN_NICE"} "$B/spindle-bench" kafka --bootstrap 127.0.0.1:19092 \
        --topic shares --json $LOAD "${PACE[@]}" --duration-secs "$SECS" \
        --warmup-secs "$WARMUP" > "$WORK/client.json" 2> /dev/null &
    bench=$!
    # The scrapes bracket the measured seconds (the generator warms up for $WARMUP s first).
    sleep "$WARMUP"; sleep 0.5
    curl -s http://127.0.0.1:19094/metrics > "$WORK/before.txt"
    sleep $((SECS - 1))
    curl -s http://127.0.0.1:19094/metrics > "$WORK/after.txt"
    wait $bench
    kill -INT "$SERVER"; wait "$SERVER"
    python3 "$HERE/latency_shares.py" "$WORK/client.json" "$WORK/before.txt" "$WORK/after.txt"
done
