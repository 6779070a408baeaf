"""The idempotent producer: a retried batch is stored once, and a sequence gap is refused.

librdkafka with enable.idempotence=true shows the happy path (InitProducerId, sequences, no
duplicates). A real client retries only when a response is lost, which a test cannot arrange
reliably, so the duplicate and the gap are sent by hand (wire.py) with the producer id and epoch
the broker handed out: Kafka answers a duplicate of one of the producer's last five batches with
its original offset, and a batch whose sequence skips ahead with OUT_OF_ORDER_SEQUENCE_NUMBER.
"""

from __future__ import annotations

import os
import random
import signal
import time

from confluent_kafka import TopicPartition as CTP

import clients
import wire


def read_values(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes]]:
    cons = clients.consumer(bootstrap)
    cons.assign([CTP(topic, 0, 0)])
    got = clients.consume(cons, count)
    clients.assert_no_more(cons, quiet_s=0.5)
    cons.close()
    return [(m.offset(), m.value()) for m in got]


def high_watermark(bootstrap: str, topic: str) -> int:
    cons = clients.consumer(bootstrap)
    low, high = cons.get_watermark_offsets(CTP(topic, 0), timeout=10)
    cons.close()
    return high


def test_confluent_idempotent_producer(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name)
    prod = clients.producer(spindle.bootstrap, {"enable.idempotence": True, "acks": "all"})
    values = [f"idem-{i}".encode() for i in range(100)]

    delivered = clients.produce_sync(prod, topic_name, [{"value": v, "partition": 0} for v in values])

    assert [m.offset() for m in delivered] == list(range(100))
    assert read_values(spindle.bootstrap, topic_name, 100) == list(enumerate(values))
    assert high_watermark(spindle.bootstrap, topic_name) == 100


def batch(producer_id: int, epoch: int, sequence: int, values: list[bytes]) -> bytes:
    return wire.record_batch(
        [wire.Record(value=v, timestamp_delta=i) for i, v in enumerate(values)],
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=sequence,
    )


def test_duplicate_batch_is_stored_once_and_gap_is_refused(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name)
    with wire.Connection(spindle.bootstrap) as conn:
        error, pid, epoch = conn.init_producer_id()
        assert error == wire.NONE
        assert pid >= 0 and epoch >= 0
        first = batch(pid, epoch, 0, [b"a0", b"a1", b"a2"])
        second = batch(pid, epoch, 3, [b"b3", b"b4"])

        assert conn.produce(topic_name, {0: first}) == {0: (wire.NONE, 0)}
        # The same batch again (a retry after a lost response) gets the original offset back.
        assert conn.produce(topic_name, {0: first}) == {0: (wire.NONE, 0)}
        assert conn.produce(topic_name, {0: second}) == {0: (wire.NONE, 3)}
        # An older duplicate, still among the producer's last five batches, is found too.
        assert conn.produce(topic_name, {0: first}) == {0: (wire.NONE, 0)}
        # A batch that skips sequences 5..9 is refused and not stored.
        gap = batch(pid, epoch, 10, [b"gap"])
        [(error, _)] = conn.produce(topic_name, {0: gap}).values()
        assert error == wire.OUT_OF_ORDER_SEQUENCE_NUMBER
        # The producer carries on at the sequence the broker expects.
        third = batch(pid, epoch, 5, [b"c5"])
        assert conn.produce(topic_name, {0: third}) == {0: (wire.NONE, 5)}

    expected = [b"a0", b"a1", b"a2", b"b3", b"b4", b"c5"]
    assert high_watermark(spindle.bootstrap, topic_name) == len(expected)
    assert read_values(spindle.bootstrap, topic_name, len(expected)) == list(enumerate(expected))


def test_plain_batches_without_producer_id_are_not_deduplicated(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name)
    plain = wire.record_batch([wire.Record(value=b"same")])
    with wire.Connection(spindle.bootstrap) as conn:
        assert conn.produce(topic_name, {0: plain}) == {0: (wire.NONE, 0)}
        assert conn.produce(topic_name, {0: plain}) == {0: (wire.NONE, 1)}
    assert read_values(spindle.bootstrap, topic_name, 2) == [(0, b"same"), (1, b"same")]


def test_kafka_python_idempotent_producer(spindle, topic_name):
    from kafka import KafkaProducer

    clients.create_topic(spindle.bootstrap, topic_name)
    values = [f"kp-idem-{i}".encode() for i in range(50)]
    prod = KafkaProducer(
        bootstrap_servers=spindle.bootstrap, enable_idempotence=True, acks="all", request_timeout_ms=10_000
    )
    try:
        futures = [prod.send(topic_name, value=v, partition=0) for v in values]
        assert [f.get(timeout=15).offset for f in futures] == list(range(50))
    finally:
        prod.close(timeout=5)

    assert read_values(spindle.bootstrap, topic_name, 50) == list(enumerate(values))


def test_an_idempotent_producer_streaming_through_sigkills_stores_each_record_once(fresh_spindle, topic_name):
    """One idempotent producer (acks=all) streams numbered records while the server is killed
    with SIGKILL three times at random moments and restarted; the producer lives on and retries
    what was in flight. Small segments make rolls frequent, so retries also meet originals that
    went into the segment before a roll. Afterwards every acknowledged record is there, no record
    is there twice, and the offsets have no hole."""
    seed = int(os.environ.get("SPINDLE_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    clients.create_topic(fresh_spindle.bootstrap, topic_name, config={"segment.bytes": "65536"})
    acked: set[bytes] = set()
    errors: list = []

    def on_delivery(err, msg):
        if err is None:
            acked.add(msg.value())
        else:
            errors.append(err)

    prod = clients.producer(
        fresh_spindle.bootstrap,
        {"enable.idempotence": True, "acks": "all", "linger.ms": 2, "message.timeout.ms": 30000},
    )
    sent = 0
    for _ in range(3):
        streaming_until = time.monotonic() + rng.uniform(0.3, 1.0)
        while time.monotonic() < streaming_until:
            try:
                prod.produce(topic_name, value=b"r%07d" % sent + b"." * 200, on_delivery=on_delivery)
            except BufferError:  # the producer's queue is full: let it drain
                prod.poll(0.05)
                continue
            sent += 1
            prod.poll(0)
        assert fresh_spindle.restart(signal.SIGKILL) == -signal.SIGKILL, f"seed {seed}"
    assert prod.flush(60) == 0, f"seed {seed}: records still in flight"
    assert not errors, f"seed {seed}: {errors[:3]}"

    count = high_watermark(fresh_spindle.bootstrap, topic_name)
    stored = read_values(fresh_spindle.bootstrap, topic_name, count)
    values = [v for _, v in stored]
    assert [o for o, _ in stored] == list(range(count)), f"seed {seed}: offsets with a hole"
    assert len(set(values)) == len(values), (
        f"seed {seed}: {len(values) - len(set(values))} records stored twice"
    )
    assert acked <= set(values), f"seed {seed}: {len(acked - set(values))} acknowledged records lost"
    assert len(acked) == sent, f"seed {seed}: {sent - len(acked)} of {sent} never acknowledged"
