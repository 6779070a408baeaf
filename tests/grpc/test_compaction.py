"""A compacted topic (`cleanup.policy=compact`) over gRPC: a subscription from the start reads
the cleaned partition to its end across the holes compaction left (batches with fewer records
than offsets, batches with none), each key ending on its latest value; a record without a key
is refused with INVALID_ARGUMENT, as Kafka refuses it with INVALID_RECORD."""

from __future__ import annotations

import time

import grpc
import pytest

from gateway_harness import RPC_TIMEOUT_S, admin_pb2, consumer_pb2, producer_pb2, record_pb2

KEYS = 10
ROUNDS = 40
# The cleaner checks each partition about every 2 s.
COMPACTION_TIMEOUT_S = 30.0


def create_compacted(clients, topic: str) -> None:
    config = {"cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"}
    clients.call(
        clients.admin.CreateTopic,
        admin_pb2.CreateTopicRequest(
            name=topic,
            partitions=1,
            config=[admin_pb2.ConfigEntry(key=k, value=v) for k, v in config.items()],
        ),
    )


def produce_rounds(clients, topic: str) -> None:
    """ROUNDS requests of one record per key, 100-byte values naming the round."""
    for round_ in range(ROUNDS):
        records = [
            record_pb2.Record(key=f"key-{k}".encode(), value=f"{k}:{round_}:".encode().ljust(100, b"."))
            for k in range(KEYS)
        ]
        clients.call(
            clients.producer.Produce,
            producer_pb2.ProduceRequest(topic=topic, partition=0, records=records),
        )


def read_to_end(clients, topic: str, last_offset: int) -> list:
    """Every record a subscription from offset 0 delivers up to `last_offset`."""
    call = clients.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(topic=topic, offset=0, max_wait_ms=200),
        metadata=clients.metadata,
        timeout=RPC_TIMEOUT_S,
    )
    got = []
    try:
        for response in call:
            got.extend(response.records)
            if got and got[-1].offset >= last_offset:
                break
    finally:
        call.cancel()
    return got


def test_a_subscription_reads_a_compacted_partition_to_its_end(grpc_clients, topic):
    create_compacted(grpc_clients, topic)
    produce_rounds(grpc_clients, topic)
    last = KEYS * ROUNDS - 1
    deadline = time.monotonic() + COMPACTION_TIMEOUT_S
    while True:
        got = read_to_end(grpc_clients, topic, last)
        if len(got) < KEYS * ROUNDS // 2:
            break
        assert time.monotonic() < deadline, f"not compacted: {len(got)} records read"
        time.sleep(0.5)
    offsets = [r.offset for r in got]
    assert offsets == sorted(set(offsets)), "offsets rise, each once"
    assert offsets[-1] == last, "the last record keeps its offset"
    latest = {r.key: r.value for r in got}
    assert latest == {
        f"key-{k}".encode(): f"{k}:{ROUNDS - 1}:".encode().ljust(100, b".") for k in range(KEYS)
    }
    for r in got:
        k, round_ = r.value.split(b":")[:2]
        assert r.offset == int(round_) * KEYS + int(k), "a record read is the one produced there"


def test_a_record_without_a_key_is_refused(grpc_clients, topic):
    create_compacted(grpc_clients, topic)
    with pytest.raises(grpc.RpcError) as refused:
        grpc_clients.call(
            grpc_clients.producer.Produce,
            producer_pb2.ProduceRequest(topic=topic, partition=0, records=[record_pb2.Record(value=b"anonymous")]),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs a key" in refused.value.details()
    response = grpc_clients.call(
        grpc_clients.producer.Produce,
        producer_pb2.ProduceRequest(topic=topic, partition=0, records=[record_pb2.Record(key=b"k", value=b"v")]),
    )
    assert response.offsets[0].offset == 0, "the refused record took no offset"
