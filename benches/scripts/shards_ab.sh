#!/usr/bin/env bash
# One run of `spindle serve --shards $1` under Kafka acks=1 load at a fixed rate (--rate $RATE
# messages/s of 1 KiB, default 400000) over two partitions, so that with two shards each owns
# one: prints throughput, client latency and the server's CPU ticks (1/100 s) over the run.
# Run from the repository root after `cargo build --release --bin spindle --bin spindle-bench`;
# alternate the shard counts, e.g. `for i in 1 2 3; do shards_ab.sh 1; shards_ab.sh 2; shards_ab.sh 2; shards_ab.sh 1; done`.
set -u
B=${BIN:-target/release}
. "$(dirname "$0")/common.sh"
S=$1; W=${WORK:-/tmp/spindle-shards}; rm -rf $W; mkdir -p $W; sync; sleep 4
start_spindle $W/log --data-dir $W/data --kafka-listen 127.0.0.1:19092 --grpc-enabled false --admin-listen 127.0.0.1:19094 --shards $S --retention-bytes 1073741824
pid=$SERVER
c0=$(awk '{print $14+$15}' /proc/$pid/stat)
out=$($B/spindle-bench kafka --bootstrap 127.0.0.1:19092 --topic sh --partitions 2 --duration-secs 8 --warmup-secs 2 --acks 1 --producers 2 --in-flight 8 --rate ${RATE:-400000} --json 2>/dev/null)
c1=$(awk '{print $14+$15}' /proc/$pid/stat)
kill $pid; wait $pid 2>/dev/null
echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); l=d['latency_us']; print('shards $S', round(d['bytes_per_sec']/1e6), 'MB/s p50', l['p50'], 'p99', l['p99'], 'p999', l['p999'], 'cpu_ticks $((c1-c0))')"
