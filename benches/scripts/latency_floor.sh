#!/usr/bin/env bash
# The Kafka produce latency at half the peak, against its floor on this machine. After finding
# the peak (`spindle-bench kafka --acks 1`, $RUNS runs against a fresh one-shard `spindle
# serve`, median messages/s), each round offers half of it, $IN_FLIGHT in flight per producer, to
#   kafka: a fresh `spindle serve` (one shard, pinned to CPU 0, as in sitting.sh);
#   sink:  `spindle-bench sink` pinned to CPU 0, which acknowledges every Produce at once and
#          stores nothing: the load generator, loopback TCP and the machine's scheduling alone;
#   emb:   the embedded engine at the same load (no network);
#   disk:  fio writing the same bytes per second in writes of one batch (BATCH_BYTES), one at a
#          time, O_DIRECT through io_uring over a file written before; group_commit_floor.py
#          replays its write latencies as the rounds of a log that costs nothing itself: the
#          share of the latency that the disk alone sets (needs fio; skipped without it);
# in an order that rotates from round to round. Run from the repository root after
# `cargo build --release --bin spindle --bin spindle-bench`; JSON per run in $OUT, a table of
# medians at the end. Data goes under $WORK (on the disk being measured).
set -u
B=${BIN:-target/release}; OUT=${OUT:-bench-floor}; WORK=${WORK:-/tmp/spindle-floor}
SECS=${SECS:-8}; WARMUP=${WARMUP:-2}; RUNS=${RUNS:-3}; IN_FLIGHT=${IN_FLIGHT:-8}
D=$WORK/data; E=$WORK/emb; PORT=19092; SINK_PORT=19093
rm -rf $OUT; mkdir -p $OUT $WORK
clean() { rm -rf "$@"; sync; sleep ${SETTLE:-5}; }
# Record and batch sizes of every load, and of the disk's writes.
MESSAGE_BYTES=1024; BATCH_BYTES=65536
LOAD="--acks 1 --producers 2 --in-flight $IN_FLIGHT --message-bytes $MESSAGE_BYTES --batch-bytes $BATCH_BYTES --json --duration-secs $SECS --warmup-secs $WARMUP"
. "$(dirname "$0")/common.sh"
serve() {
  clean $D
  start_spindle $OUT/server.log --data-dir $D --kafka-listen 127.0.0.1:$PORT --grpc-enabled false \
    --admin-listen 127.0.0.1:19094 --shards 1 --retention-bytes 2147483648
}
unserve() { kill -TERM $SERVER; wait $SERVER; rm -rf $D; }
kafka() { serve; $B/spindle-bench kafka --bootstrap 127.0.0.1:$PORT --topic $1 $LOAD "${@:2}" > $OUT/$1.json; unserve; }
sink() {
  taskset -c 0 $B/spindle-bench sink --listen 127.0.0.1:$SINK_PORT > $OUT/sink.log 2>&1 &
  local pid=$!; wait_for $OUT/sink.log "sink ready"
  $B/spindle-bench kafka --bootstrap 127.0.0.1:$SINK_PORT --topic $1 $LOAD "${@:2}" > $OUT/$1.json
  kill $pid; wait $pid 2>/dev/null
}
emb() {
  clean $E
  $B/spindle-bench embedded --dir $E --shards 1 --partitions 1 --producers 2 --in-flight $IN_FLIGHT \
    --message-bytes $MESSAGE_BYTES --batch-bytes $BATCH_BYTES \
    --fsync never --json --duration-secs $SECS --warmup-secs $WARMUP \
    --topic-config retention.bytes=2147483648 "${@:2}" > $OUT/$1.json; rm -rf $E
}
disk() {
  command -v fio > /dev/null || return 0
  local bytes_per_sec=$(( ${2#--rate=} * MESSAGE_BYTES ))
  [ -f $WORK/fio.dat ] || fio --name=prepare --filename=$WORK/fio.dat --size=2g --rw=write --bs=1m \
    --direct=1 --ioengine=io_uring --output=/dev/null
  fio --name=$1 --filename=$WORK/fio.dat --size=2g --rw=write --bs=$BATCH_BYTES --direct=1 \
    --ioengine=io_uring --iodepth=1 --rate=$bytes_per_sec --runtime=$SECS --time_based \
    --write_lat_log=$WORK/fio --output=/dev/null
  python3 "$(dirname "$0")/group_commit_floor.py" $WORK/fio_clat.1.log $bytes_per_sec $BATCH_BYTES \
    > $OUT/$1.floor; rm -f $WORK/fio_*.log
}
for i in $(seq $RUNS); do kafka peak.$i; done
half=$(python3 -c "import json,statistics,sys;print(int(statistics.median(json.load(open(f))['messages_per_sec'] for f in sys.argv[1:])/2))" $OUT/peak.*.json)
echo "half the peak: $half msgs/s" | tee $OUT/half.txt
for i in $(seq $RUNS); do
  case $((i % 3)) in
    1) order="kafka sink emb disk" ;; 2) order="sink emb disk kafka" ;; 0) order="emb disk kafka sink" ;;
  esac
  for kind in $order; do $kind $kind.$i --rate=$half; done
done
rm -f $WORK/fio.dat
python3 - $OUT <<'PY'
import json,glob,statistics,sys,os,collections
out=sys.argv[1]; runs=collections.defaultdict(list)
for f in sorted(glob.glob(out+'/*.json')+glob.glob(out+'/*.floor')):
    r=json.load(open(f)); r.setdefault('errors',0)
    runs[os.path.basename(f).split('.')[0]].append(r)
for name,rs in runs.items():
    l=lambda k: statistics.median(r['latency_us'][k] for r in rs)
    print(f"{name:6s} MB/s {statistics.median(r['bytes_per_sec'] for r in rs)/1e6:6.0f}  p50 {l('p50'):6.0f}  p99 {l('p99'):7.0f} [{', '.join(str(r['latency_us']['p99']) for r in rs)}]  p99.9 {l('p999'):7.0f}  errors {sum(r['errors'] for r in rs)}")
PY
