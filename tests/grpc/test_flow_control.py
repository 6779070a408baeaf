"""A subscriber that leaves mid-stream leaves nothing behind, and a slow one never makes the
server buffer without bound (gauges from Admin/GetGatewayStatus)."""

from __future__ import annotations

import time

from gateway_harness import (
    RPC_TIMEOUT_S,
    admin_pb2,
    consumer_pb2,
    create_topic,
    producer_pb2,
    record_pb2,
    wait_until,
)

# The gateway queues at most 8 responses of about 1 MiB per subscription (gateway/src/limits.rs),
# plus what HTTP/2 windows hold.
QUEUED_BYTES_BOUND = 16 << 20


def status(clients):
    return clients.call(clients.admin.GetGatewayStatus, admin_pb2.GetGatewayStatusRequest())


def fill(clients, topic, batches, records_per_batch=100, value_bytes=10_000):
    value = b"v" * value_bytes
    for _ in range(batches):
        clients.call(
            clients.producer.Produce,
            producer_pb2.ProduceRequest(
                topic=topic,
                partition=0,
                records=[record_pb2.Record(value=value)] * records_per_batch,
            ),
        )


def test_disconnected_subscribers_leave_no_task_behind(grpc_clients, topic):
    create_topic(grpc_clients, topic)
    fill(grpc_clients, topic, batches=2)
    assert wait_until(lambda: status(grpc_clients).active_subscriptions == 0)
    calls = []
    for _ in range(5):
        call = grpc_clients.consumer.Subscribe(
            consumer_pb2.SubscribeRequest(
                topic=topic, position=consumer_pb2.START_POSITION_EARLIEST, max_wait_ms=5000
            ),
            timeout=RPC_TIMEOUT_S,
        )
        assert next(call).records
        calls.append(call)
    assert status(grpc_clients).active_subscriptions == 5
    for call in calls:
        call.cancel()
    # Each task notices the cancellation at once, even while parked in a 5 s long poll.
    gone = wait_until(lambda: status(grpc_clients).active_subscriptions == 0, timeout_s=3)
    assert gone, status(grpc_clients)
    assert status(grpc_clients).queued_subscriber_bytes == 0


def test_closed_channel_ends_the_subscription(spindle, grpc_clients, topic):
    create_topic(grpc_clients, topic)
    fill(grpc_clients, topic, batches=1)
    other = spindle.clients()
    call = other.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(topic=topic, position=consumer_pb2.START_POSITION_EARLIEST),
        timeout=RPC_TIMEOUT_S,
    )
    assert next(call).records
    assert status(grpc_clients).active_subscriptions >= 1
    other.close()  # the connection goes away without a cancel of the call
    assert wait_until(lambda: status(grpc_clients).active_subscriptions == 0, timeout_s=5)


def test_slow_subscriber_is_held_back_not_buffered(grpc_clients, topic):
    create_topic(grpc_clients, topic)
    fill(grpc_clients, topic, batches=60)  # 60 MB of records
    call = grpc_clients.consumer.Subscribe(
        consumer_pb2.SubscribeRequest(topic=topic, position=consumer_pb2.START_POSITION_EARLIEST),
        timeout=60,
    )
    first = next(call)
    assert first.records
    # Read nothing for a while: the server must stop reading the log instead of queueing it all.
    peak = 0
    for _ in range(20):
        time.sleep(0.1)
        peak = max(peak, status(grpc_clients).queued_subscriber_bytes)
    assert peak <= QUEUED_BYTES_BOUND, peak
    # Then drain everything: nothing was lost while the reader was slow.
    received = len(first.records)
    expected = first.records[0].offset
    for record in first.records:
        assert record.offset == expected
        expected += 1
    for response in call:
        for record in response.records:
            assert record.offset == expected
            expected += 1
        received += len(response.records)
        if received >= 6000:
            break
    call.cancel()
    assert received == 6000
    assert wait_until(lambda: status(grpc_clients).active_subscriptions == 0, timeout_s=5)
