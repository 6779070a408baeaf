#!/usr/bin/env python3
"""The produce latency a group-committing log with no cost of its own would see on this disk.

Reads a per-write latency log from fio (`--write_lat_log`, one line per write: time in ms,
latency in ns, ...) taken at the load's byte rate, and replays it as the service times of write
rounds: batches arrive open-loop, one every BATCH_BYTES / RATE; a round starts when the one
before it has completed and carries every batch that arrived by then; each round takes the next
latency of the log, however many batches it carries. A batch's latency is its round's end
minus its arrival. Every cost of the engine (waking, copying, answering) is zero and a round of
many batches costs no more than one, so this is a lower bound on what a log that acknowledges
after its write has completed (as Spindle does) can reach on the disk: what the disk alone
sets under the load.

Usage: group_commit_floor.py LAT_LOG RATE_BYTES_PER_SEC BATCH_BYTES
Prints one JSON object: bytes_per_sec, batches, rounds, latency_us {p50, p90, p99, p999, max}, and the disk's
own write latencies write_us {p50, p99, p999, max}.
"""
import json
import sys


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def main():
    log, rate, batch = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    with open(log) as f:
        writes_us = [int(line.split(",")[1]) / 1000 for line in f if line.strip()]
    gap_us = batch / rate * 1e6
    latencies, rounds, free_at, arrival, next_write = [], 0, 0.0, 0.0, 0
    while next_write < len(writes_us):
        start = max(free_at, arrival)
        end = start + writes_us[next_write]
        next_write += 1
        rounds += 1
        while arrival <= start:
            latencies.append(end - arrival)
            arrival += gap_us
        free_at = end
    latencies.sort()
    writes = sorted(writes_us)
    print(json.dumps({
        "bytes_per_sec": rate,
        "batches": len(latencies),
        "rounds": rounds,
        "latency_us": {k: round(percentile(latencies, q)) for k, q in
                       [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)]},
        "write_us": {k: round(percentile(writes, q)) for k, q in
                     [("p50", 0.5), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)]},
    }))


if __name__ == "__main__":
    main()
