"""Stopping the server with open gRPC streams: subscribers are told UNAVAILABLE, and the
process exits cleanly and promptly (the gateway never holds the shutdown up)."""

from __future__ import annotations

import time

import grpc

from gateway_harness import consumer_pb2, create_topic, health_pb2, start_server


def test_sigterm_ends_subscriptions_and_the_server_exits(request, tmp_path):
    server = start_server(request, tmp_path / "spindle")
    clients = server.clients()
    create_topic(clients, "shutdown-topic", partitions=2)
    calls = [
        clients.consumer.Subscribe(
            consumer_pb2.SubscribeRequest(topic="shutdown-topic", max_wait_ms=10_000), timeout=30
        )
        for _ in range(3)
    ]
    health = clients.call(clients.health.Check, health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    time.sleep(0.3)  # the subscriptions are parked in their long polls
    started = time.monotonic()
    proc = server.proc
    server.stop()
    assert proc.returncode == 0, server.log_tail()
    assert time.monotonic() - started < 8, "shutdown waited on open streams"
    for call in calls:
        try:
            for _ in call:
                pass
            raise AssertionError("the stream ended without a status")
        except grpc.RpcError as err:
            assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), err
    assert "stopped cleanly" in server.log_text()
    clients.close()
