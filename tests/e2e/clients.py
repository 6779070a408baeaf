"""Client set-up shared by the suites: short timeouts everywhere, and bounded consume loops.

Every wait here has a deadline, so a broker that stops answering fails a test in seconds
instead of hanging the run.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import time

import kafka

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

OP_TIMEOUT_S = 15.0

# librdkafka's own log goes through Python logging, so pytest shows it with a failed test only.
RDKAFKA_LOG = logging.getLogger("librdkafka")

COMMON = {
    "logger": RDKAFKA_LOG,
    "socket.timeout.ms": 10_000,
    "reconnect.backoff.ms": 100,
    "reconnect.backoff.max.ms": 1_000,
    "topic.metadata.refresh.interval.ms": 5_000,
}


@functools.cache
def admin(bootstrap: str) -> AdminClient:
    """One AdminClient per server, kept alive: a client that is garbage-collected while a request
    is in flight fails its futures with _DESTROY."""
    return AdminClient({"bootstrap.servers": bootstrap, **COMMON})


def producer(bootstrap: str, extra: dict | None = None) -> Producer:
    conf = {
        "bootstrap.servers": bootstrap,
        "message.timeout.ms": 15_000,
        "linger.ms": 5,
        **COMMON,
    }
    conf.update(extra or {})
    return Producer(conf)


def consumer(bootstrap: str, group: str | None = None, extra: dict | None = None) -> Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group or "spindle-e2e-unused-group",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6_000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
        **COMMON,
    }
    conf.update(extra or {})
    if conf.get("group.protocol") == "consumer":
        # KIP-848: the coordinator sets the session and heartbeat timing; librdkafka refuses
        # the classic protocol's settings.
        for key in ("session.timeout.ms", "heartbeat.interval.ms"):
            conf.pop(key)
    return Consumer(conf)


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None) -> None:
    futures = admin(bootstrap).create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=OP_TIMEOUT_S,
        request_timeout=OP_TIMEOUT_S,
    )
    futures[name].result(timeout=OP_TIMEOUT_S)
    wait_for_topic(bootstrap, name, partitions)


def describe_topic(bootstrap: str, topic: str) -> dict[str, str]:
    """A topic's configs as DescribeConfigs reports them: {name: value}."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    futures = admin(bootstrap).describe_configs([resource], request_timeout=OP_TIMEOUT_S)
    entries = futures[resource].result(timeout=OP_TIMEOUT_S)
    return {name: entry.value for name, entry in entries.items()}


def wait_for_topic(bootstrap: str, name: str, partitions: int, timeout_s: float = OP_TIMEOUT_S):
    """Waits until Metadata shows `name` with `partitions` partitions, all with a leader."""
    client = admin(bootstrap)
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        md = client.list_topics(topic=name, timeout=5)
        last = md.topics.get(name)
        if (
            last is not None
            and last.error is None
            and len(last.partitions) == partitions
            and all(p.leader >= 0 for p in last.partitions.values())
        ):
            return last
        time.sleep(0.1)
    raise AssertionError(f"topic {name} not ready with {partitions} partitions: {last}")


def deliver(prod: Producer, topic: str, messages: list[dict]) -> list[tuple]:
    """Produces `messages` (keywords for Producer.produce) and waits for every delivery report.

    Returns (error or None, message) per message, in produce order.
    """
    reports: list = [None] * len(messages)

    def on_delivery(index):
        def callback(err, msg):
            reports[index] = (err, msg)

        return callback

    for index, message in enumerate(messages):
        prod.produce(topic, on_delivery=on_delivery(index), **message)
        prod.poll(0)
    left = prod.flush(OP_TIMEOUT_S)
    assert left == 0, f"{left} messages still in flight after {OP_TIMEOUT_S}s"
    return reports


def produce_sync(prod: Producer, topic: str, messages: list[dict]) -> list:
    """Like `deliver`, but fails the test on any delivery error; returns the messages."""
    reports = deliver(prod, topic, messages)
    errors = [(i, err) for i, (err, _) in enumerate(reports) if err is not None]
    assert not errors, f"delivery failed: {errors[:5]}"
    return [msg for _, msg in reports]


def consume(cons: Consumer, count: int, timeout_s: float = OP_TIMEOUT_S) -> list:
    """Polls until `count` messages arrived (or fails at the deadline); errors fail the test."""
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        msg = cons.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError(f"consume error: {msg.error()}")
        got.append(msg)
    assert len(got) == count, f"consumed {len(got)} of {count} messages in {timeout_s}s"
    return got


def assert_no_more(cons: Consumer, quiet_s: float = 1.0) -> None:
    """Asserts that nothing more arrives for `quiet_s`."""
    deadline = time.monotonic() + quiet_s
    while time.monotonic() < deadline:
        msg = cons.poll(0.2)
        if msg is not None and not msg.error():
            raise AssertionError(
                f"unexpected extra message at {msg.partition()}/{msg.offset()}: {msg.value()!r}"
            )


def kafka_python_consume(
    bootstrap: str, topic: str, count: int, timeout_s: float = OP_TIMEOUT_S, **security
) -> list:
    """Reads `count` records of partition 0 from the beginning with kafka-python (bounded);
    `security` adds the consumer's security settings (`security_protocol`, `ssl_cafile`, ...)."""
    cons = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=10_000,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **security,
    )
    try:
        tp = kafka.TopicPartition(topic, 0)
        cons.assign([tp])
        cons.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count and time.monotonic() < deadline:
            for batch in cons.poll(timeout_ms=200).values():
                got.extend(batch)
        assert len(got) == count, f"kafka-python consumed {len(got)} of {count}"
        return got
    finally:
        cons.close()


def kcat(bootstrap: str, *args: str, stdin: bytes | None = None, timeout_s: float = 30.0) -> bytes:
    """Runs kcat against `bootstrap`; fails the test on a non-zero exit."""
    cmd = ["kcat", "-b", bootstrap, "-m", "10", "-X", "socket.timeout.ms=10000", *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout_s)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode(errors='replace')}"
    )
    return done.stdout


def kcat_consume(bootstrap: str, topic: str, count: int, fmt: str, *args: str) -> bytes:
    """The first `count` records of partition 0 of `topic`, each printed with kcat's `-f fmt`;
    `args` are more kcat flags."""
    consume = ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", str(count), "-e"]
    return kcat(bootstrap, *consume, "-f", fmt, *args)


def kcat_metadata(bootstrap: str) -> dict:
    return json.loads(kcat(bootstrap, "-L", "-J"))
