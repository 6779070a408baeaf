#!/usr/bin/env python3
"""Prints the shares of a run's Produce latencies within 0.5, 1 and 2.5 ms, and the bucket that
holds their 99th percentile: the client's (from `spindle-bench --json`, with how late it sent
its requests), and the server's
request handling and log append (from two /metrics scrapes, the difference between them), with
the write rounds' mean and 99th percentile. See latency_shares.sh."""
import json
import re
import signal
import sys

BOUNDS_S = (0.0005, 0.001, 0.0025)


def samples(path):
    """{(name, labels): value} of a Prometheus text exposition."""
    out = {}
    for line in open(path):
        m = re.match(r'^(\w+)(\{[^}]*\})? (\S+)$', line.strip())
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def histogram(before, after, name, must):
    """{le: count} of the histogram `name` (series whose labels contain `must`), summed over
    shards, after minus before."""
    counts = {}
    for (n, labels), value in after.items():
        if n != name + "_bucket" or must not in labels:
            continue
        le = re.search(r'le="([^"]+)"', labels).group(1)
        le = float("inf") if le == "+Inf" else float(le)
        counts[le] = counts.get(le, 0) + value - before.get((n, labels), 0)
    return counts


def shares(counts):
    total = counts.get(float("inf"), 0)
    return total, [counts.get(b, 0) / total if total else 0 for b in BOUNDS_S]


def p99_bucket(counts):
    """`(lower, upper]` bounds in µs of the bucket holding the 99th percentile."""
    total = counts.get(float("inf"), 0)
    lower = 0
    for le in sorted(counts):
        if counts[le] >= 0.99 * total:
            return f"({lower * 1e6:.0f}, {le * 1e6:.0f}] us"
        lower = le
    return "none"


def total(before, after, name):
    return sum(v - before.get(k, 0) for k, v in after.items() if k[0] == name)


def print_client(client):
    lat = client["latency_us"]
    # The client's histogram has power-of-two buckets (le_us 256, 512, 1024, 2048, ...).
    seen, within = 0, {}
    for bucket in client["latency_histogram"]:
        seen += bucket["count"]
        within[bucket["le_us"]] = seen
    n = seen or 1
    print(f"client: {seen} batches, p50 {lat['p50']} us, p99 {lat['p99']} us; "
          f"within 0.512 / 1.024 / 2.048 ms: "
          + " / ".join(f"{100 * within.get(le, seen) / n:.2f} %" for le in (512, 1024, 2048)))
    if "send_delay_us" in client:
        d = client["send_delay_us"]
        print(f"client sent late: p50 {d['p50']} us, p99 {d['p99']} us, p99.9 {d['p999']} us")


def main():
    """Arguments: CLIENT_JSON (or - for none) BEFORE AFTER; BEFORE may be /dev/null, for
    everything the node counted since it started."""
    before, after = samples(sys.argv[2]), samples(sys.argv[3])
    if sys.argv[1] != "-":
        print_client(json.load(open(sys.argv[1])))
    rows = [
        ("server Produce", "spindle_kafka_request_duration_seconds", 'api="Produce"'),
        ("log append", "spindle_append_duration_seconds", ""),
    ]
    for label, name, must in rows:
        counts = histogram(before, after, name, must)
        count, parts = shares(counts)
        print(f"{label}: {int(count)}, p99 in {p99_bucket(counts)}; within 0.5 / 1 / 2.5 ms: "
              + " / ".join(f"{100 * p:.2f} %" for p in parts))
    rounds = histogram(before, after, "spindle_log_write_duration_seconds", "")
    seconds = total(before, after, "spindle_log_write_duration_seconds_sum")
    count = rounds.get(float("inf"), 0)
    if count:
        print(f"write rounds: {int(count)}, mean {1e6 * seconds / count:.0f} us, "
              f"p99 in {p99_bucket(rounds)}")

# Piped into `head`, stop quietly.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
main()
