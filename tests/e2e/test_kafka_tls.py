"""TLS on the Kafka listener (`[kafka.tls]`), with real clients: librdkafka (confluent-kafka and
kcat), kafka-python and, in tests/node, kafkajs speak `SSL`, and `SASL_SSL` where SASL/PLAIN is
on too; a plaintext client is refused and the server goes on serving. With `client_ca_path`
clients must show a certificate, whose common name is their principal. Certificates are made at
test time with the openssl CLI (tests/certificates.py)."""

from __future__ import annotations

import socket
import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

import clients
from conftest import _run
from certificates import HAVE_OPENSSL, make_ca_and_cert, make_client_cert
from spindle_process import Spindle

pytestmark = pytest.mark.skipif(not HAVE_OPENSSL, reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_ca_and_cert(tmp_path_factory.mktemp("certs"))


def tls_table(certs, client_certs: bool = False) -> str:
    """The `[kafka.tls]` table serving `certs`, asking clients for certificates the CA signed."""
    ca, cert, key = certs
    table = f'[kafka.tls]\ncert_path = "{cert}"\nkey_path = "{key}"\n'
    return table + (f'client_ca_path = "{ca}"\n' if client_certs else "")


def app_principal(topics: str) -> str:
    return ('[[grpc.auth.tokens]]\nprincipal = "app"\ntoken = "app-secret"\n'
            f'permissions = [{{ topic = "{topics}", ops = ["admin", "read", "write"] }}]\n')


@pytest.fixture(scope="module")
def tls_spindle(request, tmp_path_factory, certs):
    config = tls_table(certs)
    yield from _run(request, Spindle(base=tmp_path_factory.mktemp("kafka-tls"), config_toml=config))


@pytest.fixture(scope="module")
def sasl_ssl_spindle(request, tmp_path_factory, certs):
    config = '[kafka]\nsasl_mechanisms = ["PLAIN"]\n' + tls_table(certs) + app_principal("*")
    yield from _run(request, Spindle(base=tmp_path_factory.mktemp("kafka-sasl-ssl"), config_toml=config))


def ssl(ca) -> dict:
    return {"security.protocol": "SSL", "ssl.ca.location": str(ca)}


def round_trip(bootstrap: str, topic: str, extra: dict, count: int = 50) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **clients.COMMON, **extra})
    [future] = admin.create_topics([NewTopic(topic, 1)], operation_timeout=10).values()
    future.result(timeout=clients.OP_TIMEOUT_S)
    values = [f"v{i}".encode() * 100 for i in range(count)]
    clients.produce_sync(clients.producer(bootstrap, extra), topic, [{"value": v, "partition": 0} for v in values])
    cons = clients.consumer(bootstrap, f"g-{topic}", extra)
    try:
        cons.subscribe([topic])
        assert [m.value() for m in clients.consume(cons, count)] == values
    finally:
        cons.close()


def test_librdkafka_produces_and_consumes_over_tls(tls_spindle, certs, topic_name):
    ca, _, _ = certs
    round_trip(tls_spindle.bootstrap, topic_name, ssl(ca))


def test_a_plaintext_client_or_one_that_does_not_trust_the_ca_is_refused(tls_spindle, certs, topic_name):
    ca, _, _ = certs
    with pytest.raises(KafkaException):
        clients.admin(tls_spindle.bootstrap).list_topics(timeout=3)
    errors = []
    untrusting = AdminClient({"bootstrap.servers": tls_spindle.bootstrap, **clients.COMMON,
                              "security.protocol": "SSL", "error_cb": errors.append})
    with pytest.raises(KafkaException):
        untrusting.list_topics(timeout=3)
    untrusting.poll(1)  # serves the error callbacks
    assert any(e.code() == KafkaError._SSL for e in errors), errors
    # The server still serves a client that trusts it.
    trusting = AdminClient({"bootstrap.servers": tls_spindle.bootstrap, **clients.COMMON, **ssl(ca)})
    assert trusting.list_topics(timeout=10).brokers
    assert "TLS handshake failed" in tls_spindle.log_tail()


def test_kcat_and_kafka_python_speak_tls(tls_spindle, certs, topic_name):
    ca, _, _ = certs
    bootstrap = tls_spindle.bootstrap
    tls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={ca}"]
    clients.kcat(bootstrap, *tls, "-P", "-t", topic_name, "-p", "0", stdin=b"one\ntwo\n")
    out = clients.kcat(bootstrap, *tls, "-C", "-t", topic_name, "-p", "0", "-o", "beginning", "-c", "2", "-e")
    assert out.split() == [b"one", b"two"]
    got = clients.kafka_python_consume(bootstrap, topic_name, 2, security_protocol="SSL", ssl_cafile=str(ca))
    assert [r.value for r in got] == [b"one", b"two"]


def test_sasl_ssl_authenticates_inside_tls(sasl_ssl_spindle, certs, topic_name):
    ca, _, _ = certs
    creds = {**ssl(ca), "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
             "sasl.username": "app", "sasl.password": "app-secret"}
    round_trip(sasl_ssl_spindle.bootstrap, topic_name, creds, count=10)


def test_a_client_that_never_starts_its_handshake_is_closed_after_ten_seconds(tls_spindle):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", tls_spindle.kafka_port), timeout=20) as sock:
        assert sock.recv(1) == b""
    waited = time.monotonic() - started
    assert 9 <= waited <= 15, waited
    assert "TLS handshake too slow" in tls_spindle.log_tail()


@pytest.fixture(scope="module")
def mtls_spindle(request, tmp_path_factory, certs):
    config = tls_table(certs, client_certs=True) + app_principal("app.*")
    yield from _run(request, Spindle(base=tmp_path_factory.mktemp("kafka-mtls"), config_toml=config))


def client_cert(certs, name: str) -> dict:
    ca, _, _ = certs
    cert, key = make_client_cert(ca.parent, name)
    return {**ssl(ca), "ssl.certificate.location": str(cert), "ssl.key.location": str(key)}


def test_a_client_certificate_names_the_principal_and_its_grants_apply(mtls_spindle, certs, topic_name):
    app = client_cert(certs, "app")
    round_trip(mtls_spindle.bootstrap, f"app.{topic_name}", app, count=10)
    # The same principal may not create a topic outside its grants.
    admin = AdminClient({"bootstrap.servers": mtls_spindle.bootstrap, **clients.COMMON, **app})
    [future] = admin.create_topics([NewTopic(f"other.{topic_name}", 1)], operation_timeout=10).values()
    with pytest.raises(KafkaException) as refused:
        future.result(timeout=clients.OP_TIMEOUT_S)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # kcat shows the same certificate.
    tls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={app['ssl.ca.location']}",
           "-X", f"ssl.certificate.location={app['ssl.certificate.location']}",
           "-X", f"ssl.key.location={app['ssl.key.location']}"]
    clients.kcat(mtls_spindle.bootstrap, *tls, "-P", "-t", f"app.{topic_name}", "-p", "0", stdin=b"kcat\n")
    out = clients.kcat(mtls_spindle.bootstrap, *tls, "-C", "-t", f"app.{topic_name}", "-p", "0",
                       "-o", "-1", "-c", "1", "-e")
    assert out.split() == [b"kcat"]


def test_no_certificate_or_one_naming_no_principal_is_refused(mtls_spindle, certs):
    ca, _, _ = certs
    for extra in (ssl(ca), client_cert(certs, "stranger")):
        refused = AdminClient({"bootstrap.servers": mtls_spindle.bootstrap, **clients.COMMON, **extra})
        with pytest.raises(KafkaException):
            refused.list_topics(timeout=3)
    log = mtls_spindle.log_tail()
    assert "CN=stranger names no principal" in log, log
    # The server still serves a client whose certificate names a principal.
    app = AdminClient({"bootstrap.servers": mtls_spindle.bootstrap, **clients.COMMON, **client_cert(certs, "app")})
    assert app.list_topics(timeout=10).brokers
