"""TLS: a client that trusts the CA talks to the gateway; one that does not, or that speaks
plaintext, is refused. Certificates are made at test time with the openssl CLI."""

from __future__ import annotations

import grpc
import pytest

from gateway_harness import admin_pb2, health_pb2, start_server  # also puts tests/ on the path

from certificates import HAVE_OPENSSL, make_ca_and_cert  # noqa: E402

pytestmark = pytest.mark.skipif(not HAVE_OPENSSL, reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def tls_server(request, tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs")
    ca, cert, key = make_ca_and_cert(certs)
    config = f'[grpc.tls]\ncert_path = "{cert}"\nkey_path = "{key}"\n'
    server = start_server(request, tmp_path_factory.mktemp("spindle-tls"), config)
    return server, ca


def test_a_client_trusting_the_ca_is_served(tls_server):
    server, ca = tls_server
    clients = server.clients(credentials=grpc.ssl_channel_credentials(root_certificates=ca.read_bytes()))
    health = clients.call(clients.health.Check, health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    clients.call(clients.admin.ListTopics, admin_pb2.ListTopicsRequest())
    clients.close()


def test_a_client_without_the_ca_is_refused(tls_server):
    server, _ = tls_server
    clients = server.clients(credentials=grpc.ssl_channel_credentials())
    with pytest.raises(grpc.RpcError) as raised:
        clients.call(clients.health.Check, health_pb2.HealthCheckRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    clients.close()


def test_a_plaintext_client_is_refused(tls_server):
    server, _ = tls_server
    clients = server.clients()
    with pytest.raises(grpc.RpcError) as raised:
        clients.call(clients.health.Check, health_pb2.HealthCheckRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    clients.close()
