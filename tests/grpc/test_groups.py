"""Consumer groups over gRPC: commit, resume, and the same offsets as Kafka consumers."""

from __future__ import annotations

import socket
import struct

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

    assert next(call).assignment.partitions == [0]
    time.sleep(0.3)
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


def assignments(call, count, timeout_s=30):
    """The next `count` assignment notices of a member's stream (records in between skipped)."""
    import time

    deadline = time.monotonic() + timeout_s
    got = []
    for response in call:
        if response.HasField("assignment"):
            got.append(list(response.assignment.partitions))
            if len(got) == count:
                return got
        assert time.monotonic() < deadline, f"only {got} after {timeout_s}s"
    return got


def member(clients, topic, group):
    return clients.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(topic=topic, group=group, max_wait_ms=200),
        timeout=60,
    )


def test_group_members_share_partitions_and_rebalance(grpc_clients, topic):
    create_topic(grpc_clients, topic, partitions=2)
    group = f"members-{topic}"
    first = member(grpc_clients, topic, group)
    assert assignments(first, 1) == [[0, 1]]
    second = member(grpc_clients, topic, group)
    # The first member is told to rejoin at its next heartbeat; both end up with one partition.
    [mine] = assignments(second, 1)
    [theirs] = assignments(first, 1)
    assert sorted(mine + theirs) == [0, 1] and len(mine) == 1
    # When the second leaves, the first takes both partitions again.
    second.cancel()
    assert assignments(first, 1) == [[0, 1]]
    first.cancel()


def test_kafka_consumer_and_grpc_subscriber_share_a_group(spindle, grpc_clients, topic):
    import threading
    import time

    create_topic(grpc_clients, topic, partitions=2)
    group = f"mixed-{topic}"
    kafka_assignments = []
    kafka = Consumer(
        {
            "bootstrap.servers": spindle.bootstrap,
            "group.id": group,
            "partition.assignment.strategy": "range",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
        }
    )
    # The Kafka consumer is driven from this thread only (its calls are not meant to be made
    # from two threads at once); the gRPC stream is read on another.
    kafka.subscribe(
        [topic], on_assign=lambda _, parts: kafka_assignments.append([p.partition for p in parts])
    )
    try:
        deadline = time.monotonic() + 20
        while not kafka_assignments and time.monotonic() < deadline:
            kafka.poll(0.1)
        assert kafka_assignments == [[0, 1]]

        call = member(grpc_clients, topic, group)
        grpc_assignments = []
        reader = threading.Thread(target=lambda: grpc_assignments.extend(assignments(call, 1)))
        reader.start()
        deadline = time.monotonic() + 20
        while (not grpc_assignments or len(kafka_assignments) < 2) and time.monotonic() < deadline:
            kafka.poll(0.1)
        reader.join(5)
        assert len(grpc_assignments) == 1 and len(grpc_assignments[0]) == 1
        assert sorted(grpc_assignments[0] + kafka_assignments[-1]) == [0, 1]
        call.cancel()
    finally:
        kafka.close()


def test_a_commit_outside_the_log_falls_back_to_reset(grpc_clients, topic):
    create_topic(grpc_clients, topic)
    produce(grpc_clients, topic, 3)
    group = f"stale-{topic}"
    commit(grpc_clients, group, topic, 1000)
    # As a member, and reading named partitions: both start at `reset` (earliest by default).
    assert [r.offset for r in subscribe(grpc_clients, topic, 3, group=group)] == [0, 1, 2]
    assert [r.offset for r in subscribe(grpc_clients, topic, 3, group=group, partitions=[0])] == [0, 1, 2]


def kafka_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def join_group_v0(bootstrap: str, group: str, metadata: bytes) -> socket.socket:
    """Sends a JoinGroup v0 (correlation id 1) offering `range` with this metadata on a raw
    Kafka connection, as any client can; the answer comes when the rebalance completes."""
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    body = (
        struct.pack(">hhi", 11, 0, 1)
        + kafka_string("raw-member")
        + kafka_string(group)
        + struct.pack(">i", 10_000)
        + kafka_string("")
        + kafka_string("consumer")
        + struct.pack(">i", 1)
        + kafka_string("range")
        + struct.pack(">i", len(metadata))
        + metadata
    )
    sock.sendall(struct.pack(">i", len(body)) + body)
    return sock


def read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


def test_a_member_whose_metadata_does_not_decode_gets_nothing_and_the_group_goes_on(
    grpc_clients, spindle, topic
):
    create_topic(grpc_clients, topic, partitions=2)
    group = f"malformed-{topic}"
    leader = member(grpc_clients, topic, group)
    assert assignments(leader, 1) == [[0, 1]]
    # Version 0, then a count of 2^31 - 1 topics followed by three bytes.
    hostile = join_group_v0(spindle.bootstrap, group, b"\x00\x00\x7f\xff\xff\xff\x00\x01a")
    try:
        # The gRPC member rejoins at its next heartbeat and, as the leader, assigns with the
        # other member's metadata: it cannot read it, so it keeps both partitions.
        answer = read_frame(hostile)
        correlation_id, error_code = struct.unpack(">ih", answer[:6])
        assert (correlation_id, error_code) == (1, 0)
        assert assignments(leader, 1) == [[0, 1]]
        produce(grpc_clients, topic, 2)
        records = []
        for response in leader:
            records.extend(response.records)
            if len(records) >= 2:
                break
        assert [r.offset for r in records] == [0, 1]
    finally:
        hostile.close()
        leader.cancel()
