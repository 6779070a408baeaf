"""Consumer groups over gRPC: commit, resume, and the same offsets as Kafka consumers."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from gateway_harness import consumer_pb2, create_topic, producer_pb2, record_pb2
from test_produce_consume import subscribe


def produce(clients, topic, n):
    clients.call(
        clients.producer.Produce,
        producer_pb2.ProduceRequest(
            topic=topic,
            partition=0,
            records=[record_pb2.Record(value=f"m{i}".encode()) for i in range(n)],
        ),
    )


def commit(clients, group, topic, offset, partition=0):
    clients.call(
        clients.consumer.Commit,
        consumer_pb2.CommitRequest(
            group=group,
            topic=topic,
            offsets=[consumer_pb2.PartitionOffset(partition=partition, offset=offset)],
        ),
    )


def test_group_subscriber_resumes_after_its_commit(grpc_clients, topic):
    create_topic(grpc_clients, topic)
    produce(grpc_clients, topic, 10)
    group = f"g-{topic}"

    # No commit yet: the group starts at `reset` (earliest by default).
    first = subscribe(grpc_clients, topic, 4, group=group)
    assert [r.offset for r in first[:4]] == [0, 1, 2, 3]
    commit(grpc_clients, group, topic, first[3].offset + 1)

    committed = grpc_clients.call(
        grpc_clients.consumer.FetchCommitted,
        consumer_pb2.FetchCommittedRequest(group=group, topic=topic),
    )
    assert [(o.partition, o.offset) for o in committed.offsets] == [(0, 4)]

    resumed = subscribe(grpc_clients, topic, 6, group=group)
    assert [r.offset for r in resumed] == [4, 5, 6, 7, 8, 9]


def test_group_without_commit_can_start_at_latest(grpc_clients, topic):
    create_topic(grpc_clients, topic)
    produce(grpc_clients, topic, 3)
    call = grpc_clients.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(
            topic=topic,
            group=f"g-{topic}",
            reset=consumer_pb2.START_POSITION_LATEST,
            max_wait_ms=200,
        ),
        timeout=15,
    )
    import time

    time.sleep(0.5)
    produce(grpc_clients, topic, 1)
    response = next(call)
    call.cancel()
    assert [r.offset for r in response.records] == [3]


def test_grpc_commits_are_the_kafka_groups_offsets(spindle, grpc_clients, topic):
    create_topic(grpc_clients, topic)
    produce(grpc_clients, topic, 10)
    group = f"shared-{topic}"
    commit(grpc_clients, group, topic, 7)

    consumer = Consumer(
        {"bootstrap.servers": spindle.bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=15)
        assert committed.offset == 7
        # And the reverse: a Kafka consumer's commit is where a gRPC group subscriber resumes.
        consumer.commit(offsets=[TopicPartition(topic, 0, 9)], asynchronous=False)
    finally:
        consumer.close()
    resumed = subscribe(grpc_clients, topic, 1, group=group)
    assert resumed[0].offset == 9
