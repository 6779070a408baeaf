#!/usr/bin/env python3
"""Tail latency of the gRPC gateway: how long after a record's acknowledgement a subscriber sees it.

The target being checked: "a subscriber at the tail sees a record within 1 ms (p99) of its
acknowledgement".

What is measured, on one machine with one clock (time.perf_counter_ns):

1. Stubs for spindle.v1 are generated from gateway/proto into a temp dir with grpc_tools.protoc
   (as tests/grpc does; nothing generated is checked in).
2. A topic with 1 partition is created (ALREADY_EXISTS is accepted).
3. A background thread opens Consumer.Subscribe at the partition's latest position, on a
   connection of its own, and stamps each response as it is taken off the stream; every record
   of the response is keyed by its offset with that stamp (the first sighting wins).
4. Warm-up records are produced until the stream delivers one, so the stream is known to be
   established and sitting at the tail.
5. COUNT records (VALUE_BYTES each) are produced one at a time with unary Producer.Produce,
   paced INTERVAL_MS apart (a latency test, not a throughput test). The moment Produce returns
   is the acknowledgement; its offset keys it.
6. After a bounded wait for the stream to deliver everything, it reports, in microseconds:
   - delivery latency = arrival at the subscriber - acknowledgement at the producer, as
     p50/p90/p99/p99.9/max. It can be NEGATIVE: the server may send the record to the
     subscriber before the producer's process has received and decoded its acknowledgement.
     Negative values are reported as they are, with their share.
   - produce round trip (request sent to response received), same percentiles.

Caveats:
- The Python client's own overhead is included on both sides: protobuf decoding, the grpcio
  completion-queue threads, and the GIL, which the producing thread and the subscribing thread
  share (a stamp can be late by however long the other thread held the GIL). Figures are an
  upper bound on what the server adds; a native client would see less.
- Producer and subscriber are on the same host as the server, so they compete with it for CPU;
  on a busy machine the tail widens.

Usage:
    python benches/scripts/grpc_tail_latency.py --endpoint 127.0.0.1:9093 --count 2000 [--json]

Exit status: 0 when every produced record was delivered, 1 when records are missing or the
run hit its overall timeout, 2 when setup failed (no server, topic not creatable, no stub).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "gateway" / "proto"
RPC_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
WARMUP_TIMEOUT_S = 10.0
# How long one warm-up record is given to show up before another is produced: a subscription at
# "latest" that resolved its position after the previous warm-up record would never see it.
WARMUP_RETRY_S = 0.2
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class SetupError(Exception):
    """The run could not start: reported with exit status 2."""


def generate_stubs() -> Path:
    """Compiles spindle.v1 into Python modules in a fresh temp dir and puts it on sys.path."""
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="spindle-tail-latency-stubs-"))
    well_known = Path(importlib.import_module("grpc_tools").__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ]
    )
    if code != 0:
        shutil.rmtree(out, ignore_errors=True)
        raise SetupError(f"protoc failed on {protos} with status {code}")
    for package in ("spindle", "spindle/v1"):
        (out / package).mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(out))
    return out


def percentile(sorted_values: list[int], pct: float) -> int:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil(n * pct / 100), at least 1
    return sorted_values[int(rank) - 1]


def summarize_us(values_ns: list[int]) -> dict:
    """Percentiles and max of nanosecond samples, in microseconds (one decimal)."""
    if not values_ns:
        return {"samples": 0}
    ordered = sorted(values_ns)
    summary = {"samples": len(ordered)}
    for pct in PERCENTILES:
        summary[f"p{pct:g}_us"] = round(percentile(ordered, pct) / 1000, 1)
    summary["min_us"] = round(ordered[0] / 1000, 1)
    summary["max_us"] = round(ordered[-1] / 1000, 1)
    return summary


class Subscriber(threading.Thread):
    """Reads one Subscribe stream and stamps the arrival of every offset."""

    def __init__(self, stub, request) -> None:
        super().__init__(name="subscriber", daemon=True)
        self.arrivals: dict[int, int] = {}
        self.error: grpc.RpcError | None = None
        self._call = stub.Subscribe(request)
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            for response in self._call:
                now = time.perf_counter_ns()
                for record in response.records:
                    self.arrivals.setdefault(record.offset, now)
        except grpc.RpcError as err:
            if not self._stopping.is_set():
                self.error = err

    def stop(self) -> None:
        self._stopping.set()
        self._call.cancel()
        self.join(timeout=5.0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="gRPC gateway host:port")
    parser.add_argument("--count", type=int, default=2000, help="records to measure")
    parser.add_argument("--interval-ms", type=float, default=1.0, help="pause between produces")
    parser.add_argument("--value-bytes", type=int, default=100, help="size of each record value")
    parser.add_argument("--topic", default=f"tail-latency-{os.getpid()}")
    parser.add_argument(
        "--max-wait-ms", type=int, default=0, help="Subscribe long-poll wait (0: server default)"
    )
    parser.add_argument("--drain-s", type=float, default=5.0, help="wait for the last records")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="bound on the whole run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.count < 1 or args.value_bytes < 0 or args.interval_ms < 0:
        parser.error("--count must be >= 1, --value-bytes and --interval-ms >= 0")
    return args


def connect(endpoint: str) -> grpc.Channel:
    # A pool of its own per channel, so producer and subscriber get separate connections.
    channel = grpc.insecure_channel(endpoint, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
    except grpc.FutureTimeoutError as err:
        channel.close()
        raise SetupError(f"no gRPC server at {endpoint} after {CONNECT_TIMEOUT_S}s") from err
    return channel


def create_topic(admin, admin_pb2, name: str) -> None:
    request = admin_pb2.CreateTopicRequest(name=name, partitions=1)
    try:
        admin.CreateTopic(request, timeout=RPC_TIMEOUT_S)
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise SetupError(f"CreateTopic {name}: {err.code().name} {err.details()}") from err


def produce_one(producer, request) -> tuple[int, int, int]:
    """Produces one request; returns (offset, sent_ns, acked_ns)."""
    sent = time.perf_counter_ns()
    response = producer.Produce(request, timeout=RPC_TIMEOUT_S)
    acked = time.perf_counter_ns()
    return response.offsets[0].offset, sent, acked


def warm_up(producer, request, subscriber: Subscriber, deadline: float) -> None:
    """Produces warm-up records until the stream delivers one: the stream is then at the tail."""
    while time.monotonic() < deadline:
        offset, _, _ = produce_one(producer, request)
        retry_at = time.monotonic() + WARMUP_RETRY_S
        while time.monotonic() < min(retry_at, deadline):
            if offset in subscriber.arrivals:
                return
            if subscriber.error is not None:
                raise SetupError(f"Subscribe failed: {subscriber.error}")
            time.sleep(0.005)
    raise SetupError(f"the Subscribe stream delivered nothing within {WARMUP_TIMEOUT_S}s")


def measure(args, producer, request, subscriber: Subscriber, run_deadline: float) -> list:
    """Produces the paced records; returns [(offset, sent_ns, acked_ns)] of those acknowledged."""
    acks = []
    interval_ns = int(args.interval_ms * 1_000_000)
    start = time.perf_counter_ns()
    for i in range(args.count):
        if time.monotonic() >= run_deadline:
            break
        wait_ns = start + i * interval_ns - time.perf_counter_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)
        acks.append(produce_one(producer, request))
    return acks


def drain(acks: list, subscriber: Subscriber, drain_s: float, run_deadline: float) -> None:
    deadline = min(time.monotonic() + drain_s, run_deadline)
    while time.monotonic() < deadline and subscriber.error is None:
        if all(offset in subscriber.arrivals for offset, _, _ in acks):
            return
        time.sleep(0.01)


def report(args, acks: list, arrivals: dict[int, int], timed_out: bool) -> dict:
    latencies = [arrivals[o] - acked for o, _, acked in acks if o in arrivals]
    negative = sum(1 for v in latencies if v < 0)
    delivery = summarize_us(latencies)
    return {
        "endpoint": args.endpoint,
        "topic": args.topic,
        "requested": args.count,
        "produced": len(acks),
        "delivered": len(latencies),
        "missing": len(acks) - len(latencies),
        "timed_out": timed_out,
        "interval_ms": args.interval_ms,
        "value_bytes": args.value_bytes,
        "delivery_after_ack": delivery,
        "negative_share": round(negative / len(latencies), 4) if latencies else None,
        "p99_within_1ms": delivery.get("p99_us", float("inf")) <= 1000.0,
        "produce_round_trip": summarize_us([acked - sent for _, sent, acked in acks]),
    }


def print_human(result: dict) -> None:
    print(
        f"topic {result['topic']}: produced {result['produced']}/{result['requested']}, "
        f"delivered {result['delivered']}, missing {result['missing']}"
        + (" (overall timeout hit)" if result["timed_out"] else "")
    )
    for title, key in (("delivery after ack", "delivery_after_ack"), ("produce round trip", "produce_round_trip")):
        s = result[key]
        if s["samples"] == 0:
            print(f"{title:>20}: no samples")
            continue
        cols = "  ".join(f"p{p:g} {s[f'p{p:g}_us']:>9.1f}" for p in PERCENTILES)
        print(f"{title:>20} (us): {cols}  max {s['max_us']:>9.1f}  min {s['min_us']:>9.1f}")
    if result["negative_share"] is not None:
        print(f"{'negative share':>20}: {result['negative_share'] * 100:.1f}% delivered before the ack returned")
    print(f"{'p99 within 1 ms':>20}: {result['p99_within_1ms']}")


def run(args) -> int:
    from spindle.v1 import (
        admin_pb2,
        admin_pb2_grpc,
        consumer_pb2,
        consumer_pb2_grpc,
        producer_pb2,
        producer_pb2_grpc,
        record_pb2,
    )

    run_deadline = time.monotonic() + args.timeout_s
    produce_channel = connect(args.endpoint)
    subscribe_channel = connect(args.endpoint)
    subscriber = None
    try:
        create_topic(admin_pb2_grpc.AdminStub(produce_channel), admin_pb2, args.topic)
        subscribe = consumer_pb2.SubscribeRequest(
            topic=args.topic, partitions=[0], position=consumer_pb2.START_POSITION_LATEST
        )
        if args.max_wait_ms > 0:
            subscribe.max_wait_ms = args.max_wait_ms
        subscriber = Subscriber(consumer_pb2_grpc.ConsumerStub(subscribe_channel), subscribe)
        subscriber.start()
        producer = producer_pb2_grpc.ProducerStub(produce_channel)
        request = producer_pb2.ProduceRequest(
            topic=args.topic, partition=0, records=[record_pb2.Record(value=b"x" * args.value_bytes)]
        )
        warm_up(producer, request, subscriber, min(time.monotonic() + WARMUP_TIMEOUT_S, run_deadline))
        acks = measure(args, producer, request, subscriber, run_deadline)
        drain(acks, subscriber, args.drain_s, run_deadline)
        arrivals = dict(subscriber.arrivals)
        if subscriber.error is not None:
            print(f"Subscribe stream failed: {subscriber.error}", file=sys.stderr)
        result = report(args, acks, arrivals, timed_out=len(acks) < args.count)
    except grpc.RpcError as err:
        raise SetupError(f"RPC failed: {err.code().name} {err.details()}") from err
    finally:
        if subscriber is not None:
            subscriber.stop()
        produce_channel.close()
        subscribe_channel.close()
    if args.json:
        print(json.dumps(result))
    else:
        print_human(result)
    return 0 if result["missing"] == 0 and not result["timed_out"] else 1


def main() -> int:
    args = parse_args()
    stub_dir = None
    try:
        stub_dir = generate_stubs()
        return run(args)
    except SetupError as err:
        print(f"grpc_tail_latency: {err}", file=sys.stderr)
        return 2
    finally:
        if stub_dir is not None:
            shutil.rmtree(stub_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
