"""TLS: a client that trusts the CA talks to the gateway; one that does not, or that speaks
plaintext, is refused. With `client_ca_path` a client's certificate names its principal.
Certificates are made at test time with the openssl CLI."""

from __future__ import annotations

import grpc
import pytest

from gateway_harness import admin_pb2, health_pb2, start_server  # also puts tests/ on the path

from certificates import HAVE_OPENSSL, make_ca_and_cert, make_client_cert  # noqa: E402

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


@pytest.fixture(scope="module")
def mtls_server(request, tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs")
    ca, cert, key = make_ca_and_cert(certs)
    config = (
        f'[grpc.tls]\ncert_path = "{cert}"\nkey_path = "{key}"\nclient_ca_path = "{ca}"\n'
        '[[grpc.auth.tokens]]\nprincipal = "app"\ntoken = "app-token"\n'
        'permissions = [{ topic = "app.*", ops = ["admin", "read", "write"] }]\n'
    )
    server = start_server(request, tmp_path_factory.mktemp("spindle-mtls"), config)
    return server, certs


def test_a_client_certificate_names_the_principal(mtls_server):
    server, certs = mtls_server
    app_cert, app_key = make_client_cert(certs, "app")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca.pem").read_bytes(),
        private_key=app_key.read_bytes(),
        certificate_chain=app_cert.read_bytes(),
    )
    clients = server.clients(credentials=credentials)
    clients.call(clients.admin.CreateTopic, admin_pb2.CreateTopicRequest(name="app.orders", partitions=1))
    with pytest.raises(grpc.RpcError) as refused:
        clients.call(clients.admin.CreateTopic, admin_pb2.CreateTopicRequest(name="billing", partitions=1))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    clients.close()
    # A certificate whose common name is no principal is refused too.
    stranger_cert, stranger_key = make_client_cert(certs, "stranger")
    stranger = server.clients(credentials=grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca.pem").read_bytes(),
        private_key=stranger_key.read_bytes(),
        certificate_chain=stranger_cert.read_bytes(),
    ))
    with pytest.raises(grpc.RpcError) as unknown:
        stranger.call(stranger.admin.ListTopics, admin_pb2.ListTopicsRequest())
    assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
    stranger.close()


def test_a_client_without_a_certificate_is_refused_when_one_is_required(mtls_server):
    server, certs = mtls_server
    clients = server.clients(credentials=grpc.ssl_channel_credentials(root_certificates=(certs / "ca.pem").read_bytes()))
    with pytest.raises(grpc.RpcError) as raised:
        clients.call(clients.health.Check, health_pb2.HealthCheckRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    clients.close()
