"""SASL on the Kafka listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), with real clients:
librdkafka (confluent-kafka and kcat) and kafka-python authenticate as the principals of
`[[grpc.auth.tokens]]` (user name = principal, password = token), and each principal's grants
decide what it may do per topic."""

from __future__ import annotations

import functools
import json
import subprocess
import time

import kafka
import kafka.errors
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as CTP
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

import clients
from conftest import _run
from spindle_process import Spindle

CONFIG = """
[kafka]
sasl_mechanisms = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]

[[grpc.auth.tokens]]
principal = "ops"
token = "ops-secret"
permissions = [{ topic = "*", ops = ["admin", "read"] }]

[[grpc.auth.tokens]]
principal = "orders-app"
token = "orders-secret"
permissions = [{ topic = "orders*", ops = ["read", "write"] }]
transactional_ids = ["orders-tx-*"]
groups = ["orders-*"]

[[grpc.auth.tokens]]
principal = "auditor"
token = "auditor-secret"
permissions = [{ topic = "*", ops = ["read"] }]
"""

PASSWORDS = {"ops": "ops-secret", "orders-app": "orders-secret", "auditor": "auditor-secret"}


@pytest.fixture(scope="module")
def secured(request, tmp_path_factory):
    yield from _run(request, Spindle(base=tmp_path_factory.mktemp("sasl"), config_toml=CONFIG))


def sasl(user: str, password: str | None = None) -> dict:
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": user,
        "sasl.password": password if password is not None else PASSWORDS[user],
    }


@functools.cache
def admin_as(bootstrap: str, user: str) -> AdminClient:
    """Kept alive, like `clients.admin`: a collected AdminClient fails its futures."""
    return AdminClient({"bootstrap.servers": bootstrap, **clients.COMMON, **sasl(user)})


def create(bootstrap: str, user: str, topic: str) -> None:
    [future] = admin_as(bootstrap, user).create_topics([NewTopic(topic, 2)], operation_timeout=10).values()
    future.result(timeout=clients.OP_TIMEOUT_S)


def delivery_errors(bootstrap: str, user: str, topic: str, count: int) -> list:
    """Produces `count` records as `user`; the error of each delivery (None when delivered)."""
    prod = clients.producer(bootstrap, {**sasl(user), "message.timeout.ms": 8_000})
    errors = []
    for i in range(count):
        prod.produce(topic, value=f"{user}-{i}".encode(), key=b"k", on_delivery=lambda err, _msg: errors.append(err))
    assert prod.flush(15) == 0
    return errors


def test_confluent_clients_authenticate_and_each_grant_decides(secured, topic_name):
    bootstrap = secured.bootstrap
    orders = f"orders-{topic_name}"
    create(bootstrap, "ops", orders)
    # A principal without admin on the topic may not create it.
    with pytest.raises(KafkaException) as refused:
        create(bootstrap, "orders-app", f"orders-other-{topic_name}")
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    assert delivery_errors(bootstrap, "orders-app", orders, 20) == [None] * 20
    denied = delivery_errors(bootstrap, "auditor", orders, 3)
    assert [e.code() for e in denied] == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3

    cons = clients.consumer(bootstrap, f"group-{topic_name}", sasl("auditor"))
    try:
        cons.subscribe([orders])
        got = clients.consume(cons, 20)
        assert sorted(m.value() for m in got) == sorted(f"orders-app-{i}".encode() for i in range(20))
        cons.commit(asynchronous=False)
        committed = cons.committed(cons.assignment(), timeout=10)
        # One key: every record is in one partition, and the other has no commit.
        assert sorted(tp.offset for tp in committed) == [-1001, 20]
    finally:
        cons.close()


def test_authorized_operations_are_what_each_principals_grants_allow(secured, topic_name):
    """KIP-430: librdkafka's describe_topics and describe_cluster with
    include_authorized_operations report the asking principal's own operations."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation as Op

    bootstrap = secured.bootstrap
    orders = f"orders-{topic_name}"
    create(bootstrap, "ops", orders)
    admin_ops = {Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}
    expected = {
        "ops": (admin_ops | {Op.READ}, {Op.IDEMPOTENT_WRITE, Op.CLUSTER_ACTION}),
        "orders-app": ({Op.READ, Op.WRITE, Op.DESCRIBE}, {Op.IDEMPOTENT_WRITE}),
        "auditor": ({Op.READ, Op.DESCRIBE}, {Op.IDEMPOTENT_WRITE}),
    }
    for user, (on_topic, on_cluster) in expected.items():
        admin = admin_as(bootstrap, user)
        [future] = admin.describe_topics(
            TopicCollection([orders]), include_authorized_operations=True, request_timeout=10
        ).values()
        described = future.result(timeout=clients.OP_TIMEOUT_S)
        assert set(described.authorized_operations) == on_topic, user
        cluster = admin.describe_cluster(include_authorized_operations=True, request_timeout=10)
        assert set(cluster.result(timeout=clients.OP_TIMEOUT_S).authorized_operations) == on_cluster, user


def test_a_wrong_password_is_refused_and_the_server_serves_the_others(secured, topic_name):
    bootstrap = secured.bootstrap
    errors = []
    prod = clients.producer(
        bootstrap,
        {**sasl("orders-app", "not-the-token"), "message.timeout.ms": 3_000, "error_cb": errors.append},
    )
    prod.produce(f"orders-{topic_name}", value=b"x")
    prod.flush(5)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    # A client without SASL at all gets nothing but the closed connection.
    with pytest.raises(KafkaException):
        clients.admin(bootstrap).list_topics(timeout=3)
    # Everyone else is still served.
    topics = admin_as(bootstrap, "auditor").list_topics(timeout=10).topics
    assert isinstance(topics, dict)
    assert "SASL authentication failed" in secured.log_tail()


def test_kcat_lists_only_the_topics_its_principal_has_a_grant_on(secured, topic_name):
    bootstrap = secured.bootstrap
    mine, theirs = f"orders-kcat-{topic_name}", f"billing-{topic_name}"
    create(bootstrap, "ops", mine)
    create(bootstrap, "ops", theirs)
    auth = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN"]

    def listed(user: str) -> set[str]:
        creds = ["-X", f"sasl.username={user}", "-X", f"sasl.password={PASSWORDS[user]}"]
        meta = json.loads(clients.kcat(bootstrap, *auth, *creds, "-L", "-J"))
        return {t["topic"] for t in meta["topics"]}

    assert mine in listed("orders-app") and theirs not in listed("orders-app")
    assert {mine, theirs} <= listed("auditor")
    creds = ["-X", "sasl.username=orders-app", "-X", "sasl.password=orders-secret"]
    clients.kcat(bootstrap, *auth, *creds, "-P", "-t", mine, "-p", "0", stdin=b"one\ntwo\n")
    out = clients.kcat(bootstrap, *auth, *creds, "-C", "-t", mine, "-p", "0", "-o", "beginning", "-c", "2", "-e")
    assert out.split() == [b"one", b"two"]
    # Producing where the grant does not reach fails.
    cmd = ["kcat", "-b", bootstrap, *auth, *creds, "-P", "-t", theirs, "-p", "0"]
    done = subprocess.run(cmd, input=b"x\n", capture_output=True, timeout=30)
    assert b"authoriz" in done.stderr.lower(), done.stderr


def test_kafka_python_authenticates_with_plain(secured, topic_name):
    bootstrap = secured.bootstrap
    topic = f"orders-py-{topic_name}"
    create(bootstrap, "ops", topic)
    common = {
        "bootstrap_servers": bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "request_timeout_ms": 10_000,
    }
    prod = kafka.KafkaProducer(**common, sasl_plain_username="orders-app", sasl_plain_password="orders-secret")
    try:
        for i in range(5):
            prod.send(topic, value=f"py-{i}".encode(), partition=0).get(timeout=10)
    finally:
        prod.close()
    got = clients.kafka_python_consume(
        bootstrap, topic, 5, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_plain_username="auditor", sasl_plain_password="auditor-secret",
    )
    assert [r.value for r in got] == [f"py-{i}".encode() for i in range(5)]
    # A wrong password: the client cannot bootstrap (it retries until its bootstrap timeout).
    with pytest.raises(kafka.errors.KafkaError):
        bad = kafka.KafkaProducer(
            **common, sasl_plain_username="auditor", sasl_plain_password="wrong", bootstrap_timeout_ms=2_000
        )
        bad.close()


def test_only_a_principal_with_admin_everywhere_may_write_transaction_markers(secured, topic_name):
    """kafka-python's abort_transaction (WriteTxnMarkers) is refused CLUSTER_AUTHORIZATION_FAILED
    for a principal without `admin` on every topic, and writes the marker for one with it;
    describe_producers needs `read` on the topic."""
    from kafka.admin._transactions import AbortTransactionSpec
    from kafka.structs import TopicPartition as KTP

    bootstrap = secured.bootstrap
    topic = f"orders-markers-{topic_name}"
    create(bootstrap, "ops", topic)

    def admin(user: str):
        return kafka.KafkaAdminClient(
            bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
            sasl_plain_username=user, sasl_plain_password=PASSWORDS[user], request_timeout_ms=10_000,
        )

    def end_offset() -> int:
        cons = clients.consumer(bootstrap, extra=sasl("auditor"))
        try:
            return cons.get_watermark_offsets(CTP(topic, 0), timeout=10)[1]
        finally:
            cons.close()

    spec = AbortTransactionSpec(KTP(topic, 0), producer_id=4242, producer_epoch=0)
    app, ops = admin("orders-app"), admin("ops")
    try:
        with pytest.raises(kafka.errors.ClusterAuthorizationFailedError):
            app.abort_transaction(spec)
        assert end_offset() == 0, "a refused marker must not be written"
        ops.abort_transaction(spec)
        assert end_offset() == 1, "the marker takes one offset"
        [known] = ops.describe_producers([KTP(topic, 0)])[KTP(topic, 0)].active_producers
        assert (known.producer_id, known.last_sequence) == (4242, -1)
        with pytest.raises(kafka.errors.TopicAuthorizationFailedError):
            # Sent to the node itself: the client would otherwise stop at the metadata, which
            # hides the topic from this principal.
            [node] = app.describe_cluster()["brokers"]
            app.describe_producers([KTP(f"payments-{topic_name}", 0)], broker_id=node["broker_id"])
    finally:
        app.close()
        ops.close()


def test_a_principal_uses_only_the_transactional_ids_it_is_given(secured, topic_name):
    """orders-app may use the transactional ids `orders-tx-*` only: librdkafka's
    init_transactions with another id fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (at
    FindCoordinator, then InitProducerId), one it may use commits. A principal configured
    without `transactional_ids` (auditor) may use any id."""
    bootstrap = secured.bootstrap
    topic = f"orders-txn-{topic_name}"
    create(bootstrap, "ops", topic)

    def transactional(user: str, transactional_id: str):
        return clients.producer(bootstrap, {**sasl(user), "transactional.id": transactional_id})

    refused = transactional("orders-app", f"payments-tx-{topic_name}")
    with pytest.raises(KafkaException) as failed:
        refused.init_transactions(10)
    assert failed.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, failed.value

    allowed = transactional("orders-app", f"orders-tx-{topic_name}")
    allowed.init_transactions(10)
    allowed.begin_transaction()
    allowed.produce(topic, value=b"in a transaction", partition=0)
    allowed.commit_transaction(10)

    anyone = transactional("auditor", f"payments-tx-{topic_name}")
    anyone.init_transactions(10)
    anyone.begin_transaction()
    anyone.abort_transaction(10)

    cons = clients.consumer(bootstrap, extra={**sasl("auditor"), "isolation.level": "read_committed"})
    cons.assign([CTP(topic, 0, 0)])
    [record] = clients.consume(cons, 1)
    cons.close()
    assert record.value() == b"in a transaction"


def test_a_principal_uses_only_the_groups_it_is_given(secured, topic_name):
    """orders-app may use the groups `orders-*` only: a librdkafka consumer in another group
    gets GROUP_AUTHORIZATION_FAILED (at FindCoordinator) and consumes nothing, one in its own
    group consumes and commits; librdkafka's admin reports each principal's operations on the
    group; kafka-python's admin lists only the groups orders-app may use and refuses to describe
    another. A principal configured without `groups` (auditor) may use
    any group."""
    bootstrap = secured.bootstrap
    topic = f"orders-groups-{topic_name}"
    create(bootstrap, "ops", topic)
    clients.produce_sync(clients.producer(bootstrap, sasl("orders-app")), topic, [{"value": b"g1", "partition": 0}])

    refused = clients.consumer(bootstrap, f"payments-{topic_name}", sasl("orders-app"))
    refused.subscribe([topic])
    errors, records = [], []
    deadline = time.monotonic() + clients.OP_TIMEOUT_S
    while not errors and time.monotonic() < deadline:
        msg = refused.poll(0.2)
        if msg is not None:
            (errors if msg.error() else records).append(msg)
    refused.close()
    assert [m.error().code() for m in errors] == [KafkaError.GROUP_AUTHORIZATION_FAILED], errors
    assert records == []

    own, anyones = f"orders-g-{topic_name}", f"payments-{topic_name}"
    for user, group in [("orders-app", own), ("auditor", anyones)]:
        cons = clients.consumer(bootstrap, group, sasl(user))
        try:
            cons.subscribe([topic])
            assert [m.value() for m in clients.consume(cons, 1)] == [b"g1"], (user, group)
            cons.commit(asynchronous=False)
        finally:
            cons.close()

    # KIP-430: what each principal may do to the group, as librdkafka's admin asks for it.
    from confluent_kafka.admin import AclOperation as Op

    for user, operations in [("orders-app", {Op.READ, Op.DESCRIBE}), ("ops", {Op.READ, Op.DESCRIBE, Op.DELETE})]:
        [future] = admin_as(bootstrap, user).describe_consumer_groups(
            [own], include_authorized_operations=True, request_timeout=10
        ).values()
        assert set(future.result(timeout=clients.OP_TIMEOUT_S).authorized_operations) == operations, user

    app = kafka.KafkaAdminClient(
        bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_plain_username="orders-app", sasl_plain_password=PASSWORDS["orders-app"], request_timeout_ms=10_000,
    )
    try:
        listed = {group["group_id"] for group in app.list_groups()}
        assert own in listed and anyones not in listed, listed
        with pytest.raises(kafka.errors.GroupAuthorizationFailedError):
            app.describe_groups([anyones])
    finally:
        app.close()


def test_acls_show_the_configured_grants_and_cannot_be_changed_over_kafka(secured, topic_name):
    """describe_acls lists each principal's grants as Kafka ACL bindings (a `prefix*` grant as a
    PREFIXED resource, `*` as a LITERAL `*`), a MATCH filter finds those that apply to a topic,
    describing needs admin everywhere, and create_acls is refused with a message naming the
    configuration file."""
    from confluent_kafka.admin import (
        AclBinding, AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType,
    )

    bootstrap = secured.bootstrap
    ops = admin_as(bootstrap, "ops")
    every = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    seen = {
        (b.restype, b.name, b.resource_pattern_type, b.principal, b.operation)
        for b in ops.describe_acls(every).result(timeout=10)
    }
    topic = ResourceType.TOPIC
    assert (topic, "orders", ResourcePatternType.PREFIXED, "User:orders-app", AclOperation.WRITE) in seen
    txn = ResourceType.TRANSACTIONAL_ID
    assert (txn, "orders-tx-", ResourcePatternType.PREFIXED, "User:orders-app", AclOperation.WRITE) in seen
    assert (txn, "*", ResourcePatternType.LITERAL, "User:auditor", AclOperation.WRITE) in seen
    group = ResourceType.GROUP
    assert (group, "orders-", ResourcePatternType.PREFIXED, "User:orders-app", AclOperation.READ) in seen
    assert (group, "*", ResourcePatternType.LITERAL, "User:auditor", AclOperation.READ) in seen
    assert (group, "*", ResourcePatternType.LITERAL, "User:ops", AclOperation.DELETE) in seen
    assert not any(b[0] == group and b[1] == "*" and b[3] == "User:orders-app" for b in seen)
    assert not any(b[0] == txn and b[1] == "*" and b[3] == "User:orders-app" for b in seen)
    assert (topic, "*", ResourcePatternType.LITERAL, "User:auditor", AclOperation.READ) in seen
    assert (topic, "*", ResourcePatternType.LITERAL, "User:ops", AclOperation.CREATE) in seen
    assert not any(b[0] == topic and b[3] == "User:auditor" and b[4] == AclOperation.WRITE for b in seen)

    applies = AclBindingFilter(
        topic, "orders-eu", ResourcePatternType.MATCH, "User:orders-app", None, AclOperation.ANY, AclPermissionType.ANY
    )
    granted = {b.operation for b in ops.describe_acls(applies).result(timeout=10)}
    assert granted == {AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE}

    # librdkafka (2.16) hands back an empty list for a refused DescribeAcls; kafka-python raises.
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType
    from kafka.admin import ResourcePatternFilter, ResourceType as KPResourceType

    app = kafka.KafkaAdminClient(
        bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_plain_username="orders-app", sasl_plain_password=PASSWORDS["orders-app"], request_timeout_ms=10_000,
    )
    anything = ACLFilter(
        principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(KPResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    try:
        with pytest.raises(kafka.errors.ClusterAuthorizationFailedError):
            app.describe_acls(anything)
    finally:
        app.close()
    wanted = AclBinding(
        topic, topic_name, ResourcePatternType.LITERAL, "User:auditor", "*", AclOperation.WRITE, AclPermissionType.ALLOW
    )
    [created] = ops.create_acls([wanted]).values()
    with pytest.raises(KafkaException, match="configuration file"):
        created.result(timeout=10)


def test_scram_credentials_are_described_and_cannot_be_changed_over_kafka(secured):
    """describe_user_scram_credentials lists every principal with one credential per SCRAM
    mechanism the listener offers, a user without one is RESOURCE_NOT_FOUND, describing needs
    admin everywhere, and altering is refused with a message naming the configuration file."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion
    from confluent_kafka.admin import UserScramCredentialUpsertion

    ops = admin_as(secured.bootstrap, "ops")
    described = ops.describe_user_scram_credentials().result(timeout=10)
    assert set(described) == set(PASSWORDS)
    for user, description in described.items():
        assert description.user == user
        assert {(c.mechanism, c.iterations) for c in description.scram_credential_infos} == {
            (ScramMechanism.SCRAM_SHA_256, 4096),
            (ScramMechanism.SCRAM_SHA_512, 4096),
        }
    named = ops.describe_user_scram_credentials(["auditor", "nobody"])
    assert named["auditor"].result(timeout=10).user == "auditor"
    with pytest.raises(KafkaException) as missing:
        named["nobody"].result(timeout=10)
    assert missing.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND

    change = [
        UserScramCredentialUpsertion("auditor", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"new"),
        UserScramCredentialDeletion("orders-app", ScramMechanism.SCRAM_SHA_512),
    ]
    for user, future in ops.alter_user_scram_credentials(change).items():
        with pytest.raises(KafkaException, match="configuration file"):
            future.result(timeout=10)
        # Nothing changed: the user still logs in with its token.
        assert ops.describe_user_scram_credentials([user])[user].result(timeout=10).user == user

    # librdkafka hands back an empty answer for a refused describe; kafka-python raises.
    app = kafka.KafkaAdminClient(
        bootstrap_servers=secured.bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_plain_username="auditor", sasl_plain_password=PASSWORDS["auditor"], request_timeout_ms=10_000,
    )
    try:
        with pytest.raises(kafka.errors.ClusterAuthorizationFailedError):
            app.describe_user_scram_credentials()
    finally:
        app.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_librdkafka_authenticates_with_scram(secured, topic_name, mechanism):
    bootstrap = secured.bootstrap
    topic = f"orders-scram-{topic_name}"
    create(bootstrap, "ops", topic)
    scram = {**sasl("orders-app"), "sasl.mechanisms": mechanism}
    clients.produce_sync(clients.producer(bootstrap, scram), topic, [{"value": b"s1", "partition": 0}])
    cons = clients.consumer(bootstrap, topic, scram)
    try:
        cons.subscribe([topic])
        assert [m.value() for m in clients.consume(cons, 1)] == [b"s1"]
    finally:
        cons.close()
    # A wrong password fails the proof; the password itself never crossed the wire.
    errors = []
    bad = AdminClient({"bootstrap.servers": bootstrap, **clients.COMMON, **scram,
                       "sasl.password": "not-the-token", "error_cb": errors.append})
    with pytest.raises(KafkaException):
        bad.list_topics(timeout=3)
    bad.poll(1)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


def test_kafka_python_authenticates_with_scram(secured, topic_name):
    bootstrap = secured.bootstrap
    topic = f"orders-pyscram-{topic_name}"
    create(bootstrap, "ops", topic)
    prod = kafka.KafkaProducer(
        bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="orders-app", sasl_plain_password="orders-secret", request_timeout_ms=10_000,
    )
    try:
        meta = prod.send(topic, value=b"py-scram", partition=0).get(timeout=10)
        assert meta.offset == 0
    finally:
        prod.close()


def test_advertised_listeners_name_the_sasl_protocol(secured):
    [future] = admin_as(secured.bootstrap, "ops").describe_configs(
        [ConfigResource(ResourceType.BROKER, "0")], request_timeout=10
    ).values()
    listeners = future.result(10)["advertised.listeners"].value
    assert listeners == f"SASL_PLAINTEXT://{secured.bootstrap}"
