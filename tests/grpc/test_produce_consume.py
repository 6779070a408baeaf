"""Produce and subscribe over gRPC, and interoperate with Kafka clients byte for byte."""

from __future__ import annotations

import time

import grpc
import pytest
from confluent_kafka import Consumer, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from gateway_harness import (
    RPC_TIMEOUT_S,
    admin_pb2,
    consumer_pb2,
    create_topic,
    producer_pb2,
    record_pb2,
)

BASE_TS = 1_700_000_000_000


def grpc_records(n: int) -> list:
    """Records with every field used: keys, null keys, binary values, a tombstone, headers."""
    records = []
    for i in range(n):
        record = record_pb2.Record(
            value=bytes([i % 256]) * (i + 1) + b"\x00\xff",
            headers=[
                record_pb2.Header(key="h1", value=f"v{i}".encode()),
                record_pb2.Header(key="null-header"),
            ],
            timestamp_ms=BASE_TS + i,
        )
        if i % 3 != 0:
            record.key = f"key-{i}".encode()
        if i == n - 1:
            record.ClearField("value")
        records.append(record)
    return records


def subscribe(clients, topic, n, **start):
    """The first `n` records of a subscription; the call is cancelled afterwards."""
    call = clients.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(topic=topic, max_wait_ms=200, **start),
        metadata=clients.metadata,
        timeout=RPC_TIMEOUT_S,
    )
    got = []
    try:
        for response in call:
            if response.HasField("assignment"):
                assert not response.records, "an assignment notice carries no records"
                continue
            assert response.records, "responses are never empty"
            got.extend(response.records)
            if len(got) >= n:
                break
    finally:
        call.cancel()
    return got


def kafka_consume(bootstrap, topic, n, group=None):
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"reader-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        got.append(message)
    consumer.close()
    return got


def test_produce_returns_offsets_in_order(grpc_clients, topic):
    create_topic(grpc_clients, topic)
    first = grpc_clients.call(
        grpc_clients.producer.Produce,
        producer_pb2.ProduceRequest(topic=topic, partition=0, records=grpc_records(5)),
    )
    assert [(o.partition, o.offset) for o in first.offsets] == [(0, i) for i in range(5)]
    second = grpc_clients.call(
        grpc_clients.producer.Produce,
        producer_pb2.ProduceRequest(topic=topic, records=grpc_records(2)),
    )
    assert [o.offset for o in second.offsets] == [5, 6]


def test_grpc_produce_is_read_by_kafka_byte_for_byte(spindle, grpc_clients, topic):
    create_topic(grpc_clients, topic)
    records = grpc_records(20)
    grpc_clients.call(
        grpc_clients.producer.Produce,
        producer_pb2.ProduceRequest(topic=topic, partition=0, records=records),
    )
    messages = kafka_consume(spindle.bootstrap, topic, len(records))
    assert len(messages) == len(records)
    for i, (sent, message) in enumerate(zip(records, messages)):
        assert message.offset() == i
        assert message.key() == (sent.key if sent.HasField("key") else None)
        assert message.value() == (sent.value if sent.HasField("value") else None)
        assert message.timestamp()[1] == sent.timestamp_ms
        assert message.headers() == [("h1", f"v{i}".encode()), ("null-header", None)]


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kafka_produce_is_read_by_grpc_byte_for_byte(spindle, grpc_clients, topic, compression):
    create_topic(grpc_clients, topic)
    producer = Producer(
        {"bootstrap.servers": spindle.bootstrap, "compression.type": compression, "linger.ms": 5}
    )
    sent = []
    for i in range(50):
        key = None if i % 5 == 0 else f"k{i}".encode()
        value = bytes(range(256)) * (i % 4) + f"value-{i}".encode()
        headers = [("trace", f"t{i}".encode())]
        producer.produce(topic, key=key, value=value, headers=headers, partition=0, timestamp=BASE_TS + i)
        sent.append((key, value, headers))
    assert producer.flush(20) == 0
    got = subscribe(grpc_clients, topic, len(sent), position=consumer_pb2.START_POSITION_EARLIEST)
    assert [r.offset for r in got] == list(range(len(sent)))
    for i, ((key, value, headers), record) in enumerate(zip(sent, got)):
        assert (record.key if record.HasField("key") else None) == key
        assert record.value == value
        assert [(h.key, h.value) for h in record.headers] == headers
        assert record.timestamp_ms == BASE_TS + i
        assert record.partition == 0


def test_a_batch_expanding_past_the_gateways_limit_fails_only_its_subscription(
    spindle, grpc_clients, topic
):
    """A few KiB of zstd that expand past the gateway's decompression limit (64 MiB): the
    subscriber is told which batch and where to resume; the gateway goes on serving."""
    create_topic(grpc_clients, topic)

    def produce_one(value: bytes) -> int:
        response = grpc_clients.call(
            grpc_clients.producer.Produce,
            producer_pb2.ProduceRequest(
                topic=topic, partition=0, records=[record_pb2.Record(value=value)]
            ),
        )
        return response.offsets[0].offset

    assert [produce_one(b"before-0"), produce_one(b"before-1")] == [0, 1]
    producer = Producer(
        {
            "bootstrap.servers": spindle.bootstrap,
            "compression.type": "zstd",
            "message.max.bytes": 200_000_000,
        }
    )
    producer.produce(topic, value=bytes(80 << 20), partition=0)
    assert producer.flush(30) == 0
    assert produce_one(b"after") == 3

    call = grpc_clients.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(
            topic=topic, position=consumer_pb2.START_POSITION_EARLIEST, max_wait_ms=200
        ),
        timeout=RPC_TIMEOUT_S,
    )
    got = []
    with pytest.raises(grpc.RpcError) as failure:
        for response in call:
            got.extend(response.records)
    assert [r.value for r in got] == [b"before-0", b"before-1"]
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, failure.value.details()
    details = failure.value.details()
    for part in (f'topic "{topic}" partition 0', "offsets 2..=2", "subscribe from offset 3"):
        assert part in details, details

    after = subscribe(grpc_clients, topic, 1, offset=3)
    assert [(r.offset, r.value) for r in after] == [(3, b"after")]


def test_subscribe_from_offset_and_latest(grpc_clients, topic):
    create_topic(grpc_clients, topic)
    grpc_clients.call(
        grpc_clients.producer.Produce,
        producer_pb2.ProduceRequest(topic=topic, partition=0, records=grpc_records(10)),
    )
    from_seven = subscribe(grpc_clients, topic, 3, offset=7)
    assert [r.offset for r in from_seven] == [7, 8, 9]

    # A subscription from latest sees only records produced after it started.
    call = grpc_clients.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(
            topic=topic, position=consumer_pb2.START_POSITION_LATEST, max_wait_ms=200
        ),
        timeout=RPC_TIMEOUT_S,
    )
    time.sleep(0.5)  # let the subscription resolve "latest" before producing
    grpc_clients.call(
        grpc_clients.producer.Produce,
        producer_pb2.ProduceRequest(topic=topic, partition=0, records=grpc_records(1)),
    )
    response = next(call)
    call.cancel()
    assert [r.offset for r in response.records] == [10]


def test_records_without_partition_follow_kafkas_key_hash(spindle, grpc_clients, topic):
    create_topic(grpc_clients, topic, partitions=4)
    keys = [f"user-{i}".encode() for i in range(12)]
    response = grpc_clients.call(
        grpc_clients.producer.Produce,
        producer_pb2.ProduceRequest(
            topic=topic, records=[record_pb2.Record(key=k, value=b"g") for k in keys]
        ),
    )
    grpc_partitions = [o.partition for o in response.offsets]
    # librdkafka's murmur2_random partitioner is Kafka's Java default.
    producer = Producer({"bootstrap.servers": spindle.bootstrap, "partitioner": "murmur2_random"})
    delivered = {}

    def on_delivery(err, message):
        assert err is None, err
        delivered[message.key()] = message.partition()

    for key in keys:
        producer.produce(topic, key=key, value=b"k", on_delivery=on_delivery)
    assert producer.flush(20) == 0
    assert grpc_partitions == [delivered[k] for k in keys]


def test_produce_stream_acknowledges_every_request_in_order(grpc_clients, topic):
    create_topic(grpc_clients, topic)
    count = 200

    def requests():
        for seq in range(count):
            yield producer_pb2.ProduceStreamRequest(
                sequence=seq,
                request=producer_pb2.ProduceRequest(
                    topic=topic if seq != 50 else "no-such-topic-for-stream",
                    partition=0,
                    records=[record_pb2.Record(value=f"r{seq}".encode())],
                ),
            )

    acks = list(grpc_clients.producer.ProduceStream(requests(), timeout=RPC_TIMEOUT_S * 2))
    assert [a.sequence for a in acks] == list(range(count))
    failed = [a for a in acks if a.code != 0]
    assert [(a.sequence, a.code) for a in failed] == [(50, grpc.StatusCode.NOT_FOUND.value[0])], [
        (a.sequence, a.message) for a in failed
    ]
    offsets = [a.offsets[0].offset for a in acks if a.code == 0]
    assert offsets == list(range(count - 1))


def test_subscribe_to_every_partition(grpc_clients, topic):
    create_topic(grpc_clients, topic, partitions=3)
    for partition in range(3):
        grpc_clients.call(
            grpc_clients.producer.Produce,
            producer_pb2.ProduceRequest(
                topic=topic,
                partition=partition,
                records=[record_pb2.Record(value=f"p{partition}-{i}".encode()) for i in range(4)],
            ),
        )
    got = subscribe(grpc_clients, topic, 12, position=consumer_pb2.START_POSITION_EARLIEST)
    by_partition = {}
    for record in got:
        by_partition.setdefault(record.partition, []).append((record.offset, record.value))
    assert by_partition == {
        p: [(i, f"p{p}-{i}".encode()) for i in range(4)] for p in range(3)
    }


def test_a_log_append_time_topic_gives_subscribers_the_append_time(grpc_clients, topic):
    """`message.timestamp.type=LogAppendTime`: the record's own timestamp is replaced by the
    time the node appended it, which a subscription reports, as Kafka consumers see it."""
    grpc_clients.call(
        grpc_clients.admin.CreateTopic,
        admin_pb2.CreateTopicRequest(
            name=topic,
            partitions=1,
            config=[admin_pb2.ConfigEntry(key="message.timestamp.type", value="LogAppendTime")],
        ),
    )
    before = int(time.time() * 1000)
    grpc_clients.call(
        grpc_clients.producer.Produce,
        producer_pb2.ProduceRequest(topic=topic, partition=0, records=grpc_records(3)),
    )
    after = int(time.time() * 1000)
    got = subscribe(grpc_clients, topic, 3, offset=0)
    stamps = {r.timestamp_ms for r in got}
    assert len(stamps) == 1, f"one append time for the batch: {stamps}"
    assert before <= stamps.pop() <= after


def test_a_topic_has_the_same_id_over_grpc_and_kafka(spindle, grpc_clients, topic):
    created = create_topic(grpc_clients, topic, partitions=2)
    assert len(created.topic_id) == 16 and any(created.topic_id), created.topic_id
    listed = grpc_clients.call(grpc_clients.admin.ListTopics, admin_pb2.ListTopicsRequest())
    [same] = [t for t in listed.topics if t.name == topic]
    assert same.topic_id == created.topic_id
    # The Kafka client's view of the same topic: its id's two halves, as signed 64-bit numbers.
    admin = AdminClient({"bootstrap.servers": spindle.bootstrap})
    [future] = admin.describe_topics(TopicCollection([topic]), request_timeout=10).values()
    kafka_id = future.result(10).topic_id
    assert kafka_id.get_most_significant_bits() == int.from_bytes(created.topic_id[:8], "big", signed=True)
    assert kafka_id.get_least_significant_bits() == int.from_bytes(created.topic_id[8:], "big", signed=True)
