"""Bearer tokens, per-topic permissions and per-principal quotas, from a --config file."""

from __future__ import annotations

import time

import grpc
import pytest

from gateway_harness import (
    admin_pb2,
    consumer_pb2,
    health_pb2,
    producer_pb2,
    record_pb2,
    start_server,
)

CONFIG = """
[grpc.quota]
records_per_sec = 100000

[[grpc.auth.tokens]]
principal = "admin"
token = "admin-token"
permissions = [{ topic = "*", ops = ["admin", "read", "write"] }]

[[grpc.auth.tokens]]
principal = "reader"
token = "reader-token"
permissions = [{ topic = "orders", ops = ["read"] }, { topic = "logs.*", ops = ["read"] }]

[[grpc.auth.tokens]]
principal = "writer"
token = "writer-token"
permissions = [{ topic = "orders", ops = ["read", "write"] }]
groups = ["orders-*"]

[[grpc.auth.tokens]]
principal = "throttled"
token = "throttled-token"
permissions = [{ topic = "orders", ops = ["write"] }]
quota = { records_per_sec = 20 }
"""


@pytest.fixture(scope="module")
def secured(request, tmp_path_factory):
    server = start_server(request, tmp_path_factory.mktemp("spindle-auth"), CONFIG)
    admin = server.clients("admin-token")
    admin.call(admin.admin.CreateTopic, admin_pb2.CreateTopicRequest(name="orders", partitions=1))
    admin.call(admin.admin.CreateTopic, admin_pb2.CreateTopicRequest(name="payments", partitions=1))
    admin.close()
    return server


def produce_request(n=1, topic="orders"):
    return producer_pb2.ProduceRequest(
        topic=topic, partition=0, records=[record_pb2.Record(value=b"x")] * n
    )


def rpc_error(fn, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        fn(*args, **kwargs)
    return raised.value


def test_no_token_or_a_wrong_one_is_unauthenticated(secured):
    for token in [None, "nope"]:
        clients = secured.clients(token)
        err = rpc_error(clients.call, clients.producer.Produce, produce_request())
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        err = rpc_error(clients.call, clients.admin.ListTopics, admin_pb2.ListTopicsRequest())
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        # Health checks need no token.
        health = clients.call(clients.health.Check, health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        clients.close()


def test_a_token_without_write_permission_is_refused(secured):
    reader = secured.clients("reader-token")
    err = rpc_error(reader.call, reader.producer.Produce, produce_request())
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "reader" in err.details() and "orders" in err.details()
    err = rpc_error(
        reader.call, reader.admin.CreateTopic, admin_pb2.CreateTopicRequest(name="orders2", partitions=1)
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # Reading is allowed, on the topics granted only.
    reader.call(reader.admin.DescribeTopic, admin_pb2.DescribeTopicRequest(name="orders"))
    err = rpc_error(reader.call, reader.admin.DescribeTopic, admin_pb2.DescribeTopicRequest(name="payments"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = reader.call(reader.admin.ListTopics, admin_pb2.ListTopicsRequest())
    assert [t.name for t in listed.topics] == ["orders"]
    reader.close()


def test_a_writer_produces_and_reads_its_topic_only(secured):
    writer = secured.clients("writer-token")
    response = writer.call(writer.producer.Produce, produce_request(3))
    assert len(response.offsets) == 3
    err = rpc_error(writer.call, writer.producer.Produce, produce_request(topic="payments"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    call = writer.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(topic="orders", offset=0, max_wait_ms=100),
        metadata=writer.metadata,
        timeout=10,
    )
    assert next(call).records
    call.cancel()
    writer.close()


def test_a_principal_uses_only_the_groups_it_is_given(secured):
    """writer may use the groups `orders-*` only: committing, reading commits and subscribing as
    any other group is PERMISSION_DENIED naming the group; reader, configured without `groups`,
    may use any group."""
    writer = secured.clients("writer-token")
    commit = consumer_pb2.CommitRequest(
        group="payments-g", topic="orders", offsets=[consumer_pb2.PartitionOffset(partition=0, offset=1)]
    )
    err = rpc_error(writer.call, writer.consumer.Commit, commit)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert '"payments-g"' in err.details() and "writer" in err.details()
    fetch = consumer_pb2.FetchCommittedRequest(group="payments-g", topic="orders")
    assert rpc_error(writer.call, writer.consumer.FetchCommitted, fetch).code() == grpc.StatusCode.PERMISSION_DENIED
    for partitions in [[], [0]]:
        call = writer.consumer.Subscribe(
            consumer_pb2.SubscribeRequest(topic="orders", group="payments-g", partitions=partitions, max_wait_ms=100),
            metadata=writer.metadata,
            timeout=10,
        )
        assert rpc_error(next, call).code() == grpc.StatusCode.PERMISSION_DENIED, partitions

    commit.group = "orders-g"
    writer.call(writer.consumer.Commit, commit)
    fetch.group = "orders-g"
    committed = writer.call(writer.consumer.FetchCommitted, fetch)
    assert [(o.partition, o.offset) for o in committed.offsets] == [(0, 1)]
    writer.close()

    reader = secured.clients("reader-token")
    commit.group = "payments-g"
    reader.call(reader.consumer.Commit, commit)
    reader.close()


def test_quota_is_enforced_and_recovers(secured):
    throttled = secured.clients("throttled-token")
    throttled.call(throttled.producer.Produce, produce_request(20))
    err = rpc_error(throttled.call, throttled.producer.Produce, produce_request(5))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "throttled" in err.details()
    # Another principal is not affected.
    writer = secured.clients("writer-token")
    writer.call(writer.producer.Produce, produce_request(50))
    writer.close()
    # One second refills the bucket.
    time.sleep(1.1)
    throttled.call(throttled.producer.Produce, produce_request(5))
    throttled.close()
