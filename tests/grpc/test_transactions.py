"""Subscriptions and Kafka transactions: a subscription reads committed records by default
(Kafka's read_committed): an aborted transaction's records are never delivered, and an open
transaction holds the partition at its first offset until it commits. ISOLATION_READ_UNCOMMITTED
delivers every record as written. The transactions come from a librdkafka producer."""

from __future__ import annotations

from confluent_kafka import Producer

from gateway_harness import RPC_TIMEOUT_S, consumer_pb2, create_topic

READ_COMMITTED = consumer_pb2.ISOLATION_READ_COMMITTED
READ_UNCOMMITTED = consumer_pb2.ISOLATION_READ_UNCOMMITTED


def transactional_producer(bootstrap: str, transactional_id: str) -> Producer:
    prod = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 0})
    prod.init_transactions(RPC_TIMEOUT_S)
    return prod


def produce(prod: Producer, topic: str, values: list[bytes]) -> None:
    errors = []
    for value in values:
        prod.produce(topic, value=value, partition=0, on_delivery=lambda err, _msg: errors.append(err))
    assert prod.flush(RPC_TIMEOUT_S) == 0
    assert errors == [None] * len(values), errors


def read(clients, topic: str, quiet_ms: int = 1500, **request) -> list[tuple[int, bytes]]:
    """(offset, value) of every record a subscription from offset 0 delivers before it has been
    quiet for `quiet_ms` (the call's deadline ends it)."""
    call = clients.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(topic=topic, offset=0, max_wait_ms=200, **request),
        metadata=clients.metadata,
        timeout=quiet_ms / 1000,
    )
    got = []
    try:
        for response in call:
            got.extend((r.offset, r.value) for r in response.records)
    except Exception as e:  # the deadline ends the stream
        assert "DEADLINE_EXCEEDED" in str(e), e
    return got


def test_a_subscription_reads_committed_transactions_only_unless_asked(spindle, grpc_clients, topic):
    create_topic(grpc_clients, topic)
    prod = transactional_producer(spindle.bootstrap, f"{topic}-txn")
    prod.begin_transaction()
    produce(prod, topic, [b"aborted-0", b"aborted-1"])
    prod.abort_transaction(RPC_TIMEOUT_S)
    prod.begin_transaction()
    produce(prod, topic, [b"committed-0", b"committed-1"])
    prod.commit_transaction(RPC_TIMEOUT_S)
    prod.begin_transaction()
    produce(prod, topic, [b"open-0"])

    # Offsets: 0-1 aborted, 2 abort marker, 3-4 committed, 5 commit marker, 6 open.
    committed = [(3, b"committed-0"), (4, b"committed-1")]
    assert read(grpc_clients, topic) == committed, "the default is read committed"
    assert read(grpc_clients, topic, isolation=READ_COMMITTED) == committed
    everything = [(0, b"aborted-0"), (1, b"aborted-1"), *committed, (6, b"open-0")]
    assert read(grpc_clients, topic, isolation=READ_UNCOMMITTED) == everything

    prod.commit_transaction(RPC_TIMEOUT_S)
    assert read(grpc_clients, topic) == [*committed, (6, b"open-0")], "the open transaction committed"
