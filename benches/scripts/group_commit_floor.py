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

With IN_FLIGHT above 1 the rounds overlap: a round starts as soon as a batch is queued and
fewer than IN_FLIGHT rounds are on the device, and a batch is acknowledged once its round and
every round before it have completed (the log's order). Take the latency log from fio run with
`--iodepth=IN_FLIGHT`, so that its writes met as many others on the device as the rounds would.
This bounds what rounds that overlap (which Spindle's do not: log/src/segment/appender.rs)
could gain on the disk.

Usage: group_commit_floor.py LAT_LOG RATE_BYTES_PER_SEC BATCH_BYTES [IN_FLIGHT]
Prints one JSON object: bytes_per_sec, in_flight, batches, rounds, latency_us {p50, p90, p99,
p999, max}, and the disk's own write latencies write_us {p50, p99, p999, max}.
"""
import json
import sys


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def replay(writes_us, gap_us, in_flight):
    """Each batch's latency, replaying `writes_us` as rounds with at most `in_flight` on the
    device at once."""
    latencies, rounds, arrival, next_write = [], 0, 0.0, 0
    # When the rounds on the device complete, and when the last round was acknowledged.
    on_device, last_end = [], 0.0
    while next_write < len(writes_us):
        # The next round starts when a batch is queued and a slot is free.
        free_at = sorted(on_device)[len(on_device) - in_flight] if len(on_device) >= in_flight else 0.0
        start = max(free_at, arrival)
        on_device = [end for end in on_device if end > start]
        written = start + writes_us[next_write]
        next_write += 1
        rounds += 1
        # Acknowledged in the log's order: not before every earlier round has completed.
        end = max(written, last_end)
        while arrival <= start:
            latencies.append(end - arrival)
            arrival += gap_us
        on_device.append(written)
        last_end = end
    return latencies, rounds


def main():
    log, rate, batch = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    in_flight = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    with open(log) as f:
        writes_us = [int(line.split(",")[1]) / 1000 for line in f if line.strip()]
    gap_us = batch / rate * 1e6
    latencies, rounds = replay(writes_us, gap_us, in_flight)
    latencies.sort()
    writes = sorted(writes_us)
    print(json.dumps({
        "bytes_per_sec": rate,
        "in_flight": in_flight,
        "batches": len(latencies),
        "rounds": rounds,
        "latency_us": {k: round(percentile(latencies, q)) for k, q in
                       [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)]},
        "write_us": {k: round(percentile(writes, q)) for k, q in
                     [("p50", 0.5), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)]},
    }))


if __name__ == "__main__":
    main()
