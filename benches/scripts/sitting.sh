#!/usr/bin/env bash
# One sitting of the docs/BENCHMARKS.md figures, run from the repository root after
# `cargo build --release --bin spindle --bin spindle-bench`. Each configuration runs $RUNS times
# for $SECS s; JSON per run in $OUT, the server's /metrics after each Kafka configuration, and a
# table of medians at the end. Data goes under $WORK (on the disk being measured, not tmpfs).
# Every run first offers its load for $WARMUP s unmeasured (`--warmup-secs`): a fresh topic's
# first writes go into new extents of a new file and are slower for a few hundred ms.
# Every topic is capped by retention.bytes: at 1-2 GB/s the default retention fills a disk in
# a minute. The CPU time of each load-generator run, and of the server over each Kafka
# configuration, goes to $OUT/cpu.txt: on a small machine the two share the CPUs.
set -u
B=${BIN:-target/release}; OUT=${OUT:-bench-sitting}; WORK=${WORK:-/tmp/spindle-sitting}
DISK_REF=${DISK_REF:-../shared/bench/disk-reference.sh}
D=$WORK/data; E=$WORK/emb
rm -rf $OUT; mkdir -p $OUT $WORK
# The four-partition runs keep three topics of four 2 GiB-retention partitions on one server.
free_gb=$(df -P -BG "$WORK" | awk 'NR == 2 { sub("G", "", $4); print $4 }')
if [ "${free_gb:-0}" -lt 40 ]; then
    echo "warning: $WORK has ${free_gb} GB free; a whole sitting needs about 40 GB" >&2
fi
SECS=${SECS:-8}; RUNS=${RUNS:-3}; WARMUP=${WARMUP:-2}
# Removing gigabytes of an earlier run's data makes the file system discard them in its next
# journal commit, which stalls the disk for a while: let that pass before measuring.
clean() { rm -rf "$@"; sync; sleep ${SETTLE:-5}; }
ref() { $DISK_REF $WORK/ref 1024; }
{ date -u +%FT%TZ; nproc; lscpu | grep "Model name"; uname -r; uptime; } > $OUT/machine.txt
echo "ref-before $(ref)" > $OUT/ref.txt
# `time` (the shell keyword) prints user and system CPU seconds of the run to cpu.txt.
timed() { local TIMEFORMAT="$1 cpu user %U s sys %S s"; shift; { time "$@" 2>/dev/null; } 2>> $OUT/cpu.txt; }
emb() { local name=$1; shift; for i in $(seq $RUNS); do clean $E; timed $name.$i $B/spindle-bench embedded --dir $E --json --duration-secs $SECS --warmup-secs $WARMUP --shards 1 --partitions 1 "$@" > $OUT/$name.$i.json; done; rm -rf $E; }
emb emb-never-if8 --producers 2 --in-flight 8 --fsync never --topic-config retention.bytes=2147483648
emb emb-never-if32 --producers 2 --in-flight 32 --fsync never --topic-config retention.bytes=2147483648
SMALL="--topic-config segment.bytes=134217728 --topic-config retention.bytes=268435456"
emb emb-batch-p1-64k --producers 1 --in-flight 1 --fsync batch $SMALL
emb emb-batch-p16-64k --producers 16 --in-flight 1 --fsync batch $SMALL
emb emb-batch-p1-4k --producers 1 --in-flight 1 --fsync batch --batch-bytes 4096 $SMALL
emb emb-batch-p16-4k --producers 16 --in-flight 1 --fsync batch --batch-bytes 4096 $SMALL
echo "ref-middle $(ref)" >> $OUT/ref.txt
. "$(dirname "$0")/common.sh"
serve() { clean $D; start_spindle $OUT/server.log --data-dir $D --kafka-listen 127.0.0.1:19092 --grpc-enabled false --admin-listen 127.0.0.1:19094 --shards 1 --retention-bytes 2147483648; }
unserve() { curl -s 127.0.0.1:19094/metrics > $OUT/metrics-$1.txt; awk -v n="$1" -v hz="$(getconf CLK_TCK)" '{printf "%s server cpu user %.2f s sys %.2f s\n", n, $14 / hz, $15 / hz}' /proc/$SERVER/stat >> $OUT/cpu.txt; kill -TERM $SERVER; wait $SERVER; rm -rf $D; }
kaf() { local name=$1; shift; serve; for i in $(seq $RUNS); do timed $name.$i $B/spindle-bench kafka --bootstrap 127.0.0.1:19092 --topic $name-$i --json --duration-secs $SECS --warmup-secs $WARMUP "$@" > $OUT/$name.$i.json; done; unserve $name; }
# The floor under both: the same load against `spindle-bench sink` (pinned to CPU 0 as the
# server's shard is), which acknowledges every Produce at once and stores nothing.
sink() { local name=$1; shift; taskset -c 0 $B/spindle-bench sink --listen 127.0.0.1:19093 > $OUT/sink.log 2>&1 & local pid=$!; wait_for $OUT/sink.log "sink ready"; for i in $(seq $RUNS); do timed $name.$i $B/spindle-bench kafka --bootstrap 127.0.0.1:19093 --topic $name-$i --json --duration-secs $SECS --warmup-secs $WARMUP "$@" > $OUT/$name.$i.json; done; kill $pid; wait $pid 2>/dev/null; }
med() { python3 -c "import json,statistics,sys;print(int(statistics.median(json.load(open(f))['messages_per_sec'] for f in sys.argv[1:])))" "$@"; }
for inf in 8 32; do
  kaf kafka-acks1-if$inf --acks 1 --producers 2 --in-flight $inf
  half=$(( $(med $OUT/kafka-acks1-if$inf.[0-9].json) / 2 ))
  echo "if$inf half $half" >> $OUT/half.txt
  kaf kafka-half-if$inf --acks 1 --producers 2 --in-flight $inf --rate $half
  # The engine alone at the same offered load: what of the Kafka latency is the engine's.
  emb emb-half-if$inf --producers 2 --in-flight $inf --fsync never --rate $half --topic-config retention.bytes=2147483648
  sink sink-half-if$inf --acks 1 --producers 2 --in-flight $inf --rate $half
done
# Requests carrying four partitions each, as the Java client, kafka-python and kafkajs send
# them (librdkafka, and every run above, one partition per request).
kaf kafka-acks1-if8-4pr --acks 1 --producers 2 --in-flight 8 --partitions 4 --partitions-per-request 4
kaf kafka-batch-p2 --acks 1 --producers 2 --in-flight 8 --topic-config fsync.policy=batch
kaf kafka-batch-p16-4k --acks 1 --producers 16 --in-flight 1 --batch-bytes 4096 --topic-config fsync.policy=batch --topic-config segment.bytes=134217728 --topic-config retention.bytes=268435456
echo "ref-after $(ref)" >> $OUT/ref.txt
uptime >> $OUT/machine.txt
python3 - $OUT <<'PY'  # the table of medians
import json,glob,statistics,sys,os,collections
out=sys.argv[1]; runs=collections.defaultdict(list)
for f in sorted(glob.glob(out+'/*.json')):
    name=os.path.basename(f).rsplit('.',2)[0]; runs[name].append(json.load(open(f)))
for name,rs in runs.items():
    m=lambda k: statistics.median(r[k] for r in rs)
    l=lambda k: statistics.median(r['latency_us'][k] for r in rs)
    print(f"{name:24s} MB/s {m('bytes_per_sec')/1e6:7.0f} [{', '.join(str(round(r['bytes_per_sec']/1e6)) for r in rs)}]  p50 {l('p50'):6.0f} p99 {l('p99'):7.0f} [{', '.join(str(r['latency_us']['p99']) for r in rs)}] p999 {l('p999'):7.0f} max {l('max'):7.0f} errors {sum(r['errors'] for r in rs)}")
PY
cat $OUT/ref.txt
# The server's own view of each Kafka configuration (its runs and warm-ups together): the share
# of Produce requests it answered within 1 ms, the log's part, the mean write round.
for m in $OUT/metrics-*.txt; do
    echo "$(basename "$m" .txt):"
    python3 "$(dirname "$0")/latency_shares.py" - /dev/null "$m" | sed 's/^/  /'
done
cat $OUT/cpu.txt
