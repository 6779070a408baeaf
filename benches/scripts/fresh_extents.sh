#!/usr/bin/env bash
# What writing into a file's fresh extents costs against writing over written blocks, on the
# disk under DIR (docs/BENCHMARKS.md, "Writing into preallocated extents costs" and "The same
# for throughput"). With fio's io_uring engine and O_DIRECT, each case on a file of its own:
#   unwritten: fallocated, so the file system converts each extent as a write completes;
#   written:   filled by dd first, so writes are plain overwrites;
#   extend:    empty, each write extends it (what `dd oflag=direct` measures).
# First 4 KiB and 64 KiB O_DSYNC writes at queue depth 1 (a durable round), then 1 MiB and
# 256 KiB writes at queue depth 4 without O_DSYNC (throughput). Prints MB/s and latency (us).
#
# Usage: benches/scripts/fresh_extents.sh [DIR]   (default /tmp/spindle-fresh-extents)
set -u
DIR=${1:-/tmp/spindle-fresh-extents}; F=$DIR/f
mkdir -p "$DIR"
prepare() {
    rm -f "$F"
    case $1 in
        unwritten) fallocate -l 1G "$F" ;;
        written) dd if=/dev/zero of="$F" bs=1M count=1024 oflag=direct status=none ;;
        extend) touch "$F" ;;
    esac
    sync; sleep 1
}
run() { # KIND BS DEPTH EXTRA...
    local kind=$1 bs=$2 depth=$3; shift 3
    prepare "$kind"
    fio --name=t --filename="$F" --rw=write --bs="$bs" --size=512M --offset=0 --direct=1 \
        --ioengine=io_uring --iodepth="$depth" "$@" --output-format=json 2>/dev/null |
        python3 -c "
import json, sys
w = json.load(sys.stdin)['jobs'][0]['write']; c = w['clat_ns']['percentile']
print('$kind $bs qd$depth $*', 'MB/s', int(w['bw'] / 1024), 'p50', c['50.000000'] // 1000, 'p99', c['99.000000'] // 1000)"
}
for kind in unwritten written extend; do
    run $kind 4k 1 --sync=dsync --runtime=4 --time_based
    run $kind 64k 1 --sync=dsync --runtime=4 --time_based
    run $kind 1m 4
    run $kind 256k 4
done
rm -rf "$DIR"
