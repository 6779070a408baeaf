"""Client quotas (`[[kafka.quotas]]`) with librdkafka: a client over its byte rate is slowed to
it, and told so (KIP-219: each answer over the rate carries the time the client is to hold
back, which librdkafka reports through `throttle_cb`, and the server does not read that
connection again until it has passed); a client without a quota is neither; producers sharing a
client id share its rate, on whichever shards their connections land; a quota set at run time
(AlterClientQuotas, here through `spindle cluster quotas alter`) slows a client at once, and
removing it frees the client. The quotas read back as Kafka quota entities
(DescribeClientQuotas, in tests/node)."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request

import pytest

import clients
from conftest import _run
from spindle_process import Spindle, free_port, spindle_binary

RATE = 256 * 1024
CONFIG = f"""
[[kafka.quotas]]
client_id = "throttled"
producer_byte_rate = {RATE}
consumer_byte_rate = {RATE}
"""
# One MiB at 256 KiB/s, the first second's worth free: at least three seconds.
TOTAL = 1024 * 1024
AT_LEAST_S = 2.0
VALUE = b"q" * 1024


@pytest.fixture(scope="module")
def quoted(request, tmp_path_factory):
    yield from _run(request, Spindle(base=tmp_path_factory.mktemp("quotas"), config_toml=CONFIG))


def produce_timed(bootstrap: str, topic: str, client_id: str) -> tuple[float, list[float]]:
    """Produces TOTAL bytes as `client_id`; the seconds it took and the throttle times reported."""
    throttles: list[float] = []
    prod = clients.producer(
        bootstrap,
        {
            "client.id": client_id,
            "linger.ms": 5,
            # Many requests of 16 KiB rather than one of a MiB: a quota slows the requests
            # after the one that went over.
            "batch.size": 16 * 1024,
            "throttle_cb": lambda event: throttles.append(event.throttle_time),
        },
    )
    started = time.monotonic()
    for _ in range(TOTAL // len(VALUE)):
        while True:
            try:
                prod.produce(topic, value=VALUE, partition=0)
                break
            except BufferError:
                prod.poll(0.05)
        prod.poll(0)
    assert prod.flush(60) == 0
    elapsed = time.monotonic() - started
    prod.poll(0.2)
    return elapsed, throttles


def consume_timed(bootstrap: str, topic: str, client_id: str) -> tuple[float, list[float]]:
    """Reads TOTAL bytes of partition 0 as `client_id`, 64 KiB per fetch."""
    throttles: list[float] = []
    cons = clients.consumer(
        bootstrap,
        None,
        {
            "client.id": client_id,
            "max.partition.fetch.bytes": 64 * 1024,
            "fetch.max.bytes": 64 * 1024,
            "message.max.bytes": 64 * 1024,  # librdkafka wants fetch.max.bytes at least this
            "throttle_cb": lambda event: throttles.append(event.throttle_time),
        },
    )
    try:
        from confluent_kafka import TopicPartition as CTP

        cons.assign([CTP(topic, 0, 0)])
        started = time.monotonic()
        got = clients.consume(cons, TOTAL // len(VALUE), timeout_s=60)
        elapsed = time.monotonic() - started
        assert all(m.value() == VALUE for m in got)
        cons.poll(0.2)
        return elapsed, throttles
    finally:
        cons.close()


def assert_only_the_quoted_client_was_slowed(free, slow):
    """`free` and `slow` are (seconds, throttle times) of a client without a quota and of one
    with a 256 KiB/s quota moving the same MiB."""
    free_s, free_throttles = free
    slow_s, slow_throttles = slow
    assert slow_s >= AT_LEAST_S, f"1 MiB at 256 KiB/s took {slow_s:.2f}s"
    assert slow_throttles and max(slow_throttles) > 0, "no throttle time reported"
    assert not free_throttles, f"a client without a quota was throttled: {free_throttles}"
    assert free_s < slow_s, (free_s, slow_s)


def test_a_producer_over_its_quota_is_slowed_to_it_and_others_are_not(quoted, topic_name):
    clients.create_topic(quoted.bootstrap, topic_name, partitions=1)
    assert_only_the_quoted_client_was_slowed(
        produce_timed(quoted.bootstrap, topic_name, "unlimited"),
        produce_timed(quoted.bootstrap, topic_name, "throttled"),
    )


def test_a_consumer_over_its_quota_is_slowed_to_it_and_others_are_not(quoted, topic_name):
    clients.create_topic(quoted.bootstrap, topic_name, partitions=1)
    produce_timed(quoted.bootstrap, topic_name, "loader")
    assert_only_the_quoted_client_was_slowed(
        consume_timed(quoted.bootstrap, topic_name, "reader"),
        consume_timed(quoted.bootstrap, topic_name, "throttled"),
    )


def alter_quota(bootstrap: str, *args: str) -> None:
    """`spindle cluster quotas alter ARGS` against `bootstrap`, which must succeed."""
    subprocess.run(
        [str(spindle_binary()), "cluster", "quotas", "alter", *args, "--bootstrap", bootstrap],
        check=True,
        capture_output=True,
        timeout=30,
    )


def test_a_quota_set_at_run_time_slows_a_producer_at_once_and_removing_it_frees_it(fresh_spindle, topic_name):
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=1)
    free_before = produce_timed(bootstrap, topic_name, "late")
    alter_quota(bootstrap, "--name", "client-id=late", "--add", f"producer_byte_rate={RATE}")
    assert_only_the_quoted_client_was_slowed(free_before, produce_timed(bootstrap, topic_name, "late"))
    alter_quota(bootstrap, "--name", "client-id=late", "--delete", "producer_byte_rate")
    _, throttles = produce_timed(bootstrap, topic_name, "late")
    assert not throttles, f"throttled after its quota was removed: {throttles}"


SHARED_RATE = 128 * 1024
WINDOW_S = 3.0


@pytest.fixture
def two_shards(request, tmp_path):
    """A server of two shards with /metrics on a known port and a quota for client id `shared`."""
    port = free_port()
    config = (
        f'[admin]\nlisten = "127.0.0.1:{port}"\n\n'
        f'[[kafka.quotas]]\nclient_id = "shared"\nproducer_byte_rate = {SHARED_RATE}\n'
    )
    server = Spindle(base=tmp_path / "spindle", config_toml=config, shards=2)
    server.admin_port = port
    yield from _run(request, server)


def received_by_shard(port: int) -> list[float]:
    """Kafka bytes each shard has read off its connections."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    name = "spindle_kafka_bytes_received_total{"
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]


def delivered_within(bootstrap: str, topic: str, seconds: float) -> int:
    """Produces 1 KiB records as client id `shared` for `seconds`; the bytes acknowledged by then."""
    delivered = [0]

    def on_delivery(err, msg):
        if err is None:
            delivered[0] += len(msg.value())

    prod = clients.producer(bootstrap, {"client.id": "shared", "batch.size": 16 * 1024})
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            prod.produce(topic, value=VALUE, partition=0, on_delivery=on_delivery)
        except BufferError:
            prod.poll(0.05)
        prod.poll(0)
    counted = delivered[0]
    prod.purge()
    prod.flush(5)
    return counted


def test_producers_sharing_a_client_id_share_its_rate_on_every_shard(two_shards, topic_name):
    """Six librdkafka producers with one client id, each on a connection of its own, which the
    kernel deals to the two shards: together they get the client's rate once (each shard takes
    what the others charged), not once per shard. A run whose connections all landed on one
    shard proves nothing and is repeated."""
    bootstrap, port = two_shards.bootstrap, two_shards.admin_port
    clients.create_topic(bootstrap, topic_name)
    for _ in range(4):
        before = received_by_shard(port)
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(delivered_within(bootstrap, topic_name, WINDOW_S)))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        received = [after - was for after, was in zip(received_by_shard(port), before)]
        if len(received) == 2 and min(received) > 64 * 1024:
            break
    else:
        pytest.fail(f"the producers' connections never reached both shards: {received}")
    total = sum(results)
    # The first second's worth taken on each shard before the first exchange, the rate over the
    # window, and some slack for requests admitted before their charges arrive. Each shard on its
    # own would let through about twice as much.
    shared_at_most = 2 * SHARED_RATE + SHARED_RATE * WINDOW_S + SHARED_RATE / 2
    assert total <= shared_at_most, (total, received)
    assert total >= SHARED_RATE * WINDOW_S / 2, (total, received)
