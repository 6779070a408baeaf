#!/usr/bin/env bash
# Consuming at the tail while producing: starts a fresh one-shard `spindle serve` BIN (retention
# capped at 1 GiB), runs `spindle-bench kafka` with 2 producers (acks=1, 8 in flight) and 2
# consumers from the tail for 8 s after 1 s of warm-up, with the extra flags given (e.g.
# `--rate 400000`), and prints produce and consume rates, the end-to-end latency, and how much
# the server read from storage meanwhile (`read_bytes` of /proc/PID/io): none when every Fetch
# is served from the tail cache; and what its reads returned from the caches and from disk
# (`spindle_read_bytes_total`).
#
# Usage: benches/scripts/consume_at_tail.sh BIN [spindle-bench kafka flags...]
# Environment: BENCH (target/release/spindle-bench), WORK (/tmp/spindle-tail).
set -u
BIN=$1; shift
BENCH=${BENCH:-target/release/spindle-bench}; WORK=${WORK:-/tmp/spindle-tail}
rm -rf "$WORK"; mkdir -p "$WORK"; sync; sleep 2
"$BIN" serve --data-dir "$WORK/data" --kafka-listen 127.0.0.1:19092 --grpc-enabled false \
    --admin-listen 127.0.0.1:19094 --shards 1 --retention-bytes 1073741824 > "$WORK/server.log" 2>&1 &
pid=$!
sleep 1.5
read_before=$(awk '/^read_bytes/ {print $2}' /proc/$pid/io)
"$BENCH" kafka --bootstrap 127.0.0.1:19092 --topic t --json --duration-secs 8 --warmup-secs 1 \
    --acks 1 --producers 2 --in-flight 8 --consumers 2 --from tail "$@" 2> "$WORK/bench.err" |
    python3 -c '
import json, sys
j = json.load(sys.stdin); c = j["consume"]; e = c["e2e_latency_us"]
print("produce %.0f MB/s, p99 %s us; consume %.0f MB/s, end to end p50 %s us, p99 %s us"
      % (j["bytes_per_sec"] / 1e6, j["latency_us"]["p99"], c["bytes_per_sec"] / 1e6, e["p50"], e["p99"]))'
read_after=$(awk '/^read_bytes/ {print $2}' /proc/$pid/io)
written=$(awk '/^write_bytes/ {print $2}' /proc/$pid/io)
echo "server read $(( (read_after - read_before) >> 20 )) MiB from storage, wrote $(( written >> 20 )) MiB"
curl -s http://127.0.0.1:19094/metrics | awk '/^spindle_read_bytes_total/ {
    match($0, /source="[a-z]+"/); printf "reads returned %d MiB from the %s\n", $2 / 1048576, substr($0, RSTART + 8, RLENGTH - 9) }'
kill $pid; wait $pid 2>/dev/null
