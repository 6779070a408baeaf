"""The standard services: grpc.health.v1 reports SERVING, and server reflection describes
spindle.v1 to clients that have no protos (grpcurl, Postman)."""

from __future__ import annotations

from gateway_harness import RPC_TIMEOUT_S, health_pb2, reflection_pb2

SERVICES = ["spindle.v1.Producer", "spindle.v1.Consumer", "spindle.v1.Admin"]


def test_health_reports_serving(grpc_clients):
    for service in ["", *SERVICES]:
        response = grpc_clients.call(
            grpc_clients.health.Check, health_pb2.HealthCheckRequest(service=service)
        )
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service


def test_reflection_lists_and_describes_the_services(grpc_clients):
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="spindle.v1.Producer"),
    ]
    listed, described = list(
        grpc_clients.reflection.ServerReflectionInfo(iter(requests), timeout=RPC_TIMEOUT_S)
    )
    names = {s.name for s in listed.list_services_response.service}
    assert set(SERVICES) | {"grpc.health.v1.Health"} <= names
    protos = described.file_descriptor_response.file_descriptor_proto
    assert protos and any(b"spindle/v1/producer.proto" in p for p in protos)
