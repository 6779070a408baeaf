"""The standard grpc.health.v1 service reports SERVING for the server and each service."""

from __future__ import annotations

from gateway_harness import health_pb2


def test_health_reports_serving(grpc_clients):
    for service in ["", "spindle.v1.Producer", "spindle.v1.Consumer", "spindle.v1.Admin"]:
        response = grpc_clients.call(
            grpc_clients.health.Check, health_pb2.HealthCheckRequest(service=service)
        )
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service
