"""Topic administration through confluent-kafka's AdminClient and kafka-python's
KafkaAdminClient: create (with Spindle's topic configs), describe and alter configs, add
partitions, delete; and the errors a wrong request must get."""

from __future__ import annotations

import signal
import time

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from kafka.admin import ConfigResource as KPConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient
from kafka.admin import NewPartitions as KPNewPartitions
from kafka.admin import NewTopic as KPNewTopic

import clients
import wire

T = clients.OP_TIMEOUT_S
INCREMENTAL_ALTER_CONFIGS = 44

TOPIC_CONFIGS = {
    "retention.ms": "3600000",
    "retention.bytes": "104857600",
    "segment.bytes": "1048576",
    "segment.ms": "600000",
    "fsync.policy": "interval:100",
    "max.message.bytes": "2097152",
}


def partition_count(bootstrap: str, topic: str) -> int | None:
    md = clients.admin(bootstrap).list_topics(timeout=10)
    t = md.topics.get(topic)
    return None if t is None or t.error is not None else len(t.partitions)


def wait_until(predicate, what: str, timeout_s: float = T) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s}s: {what}")


def test_create_topic_with_configs_and_describe(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, partitions=3, config=TOPIC_CONFIGS)

    configs = clients.describe_topic(spindle.bootstrap, topic_name)

    for key, value in TOPIC_CONFIGS.items():
        assert configs.get(key) == value, f"{key}: {configs.get(key)!r}"
    assert partition_count(spindle.bootstrap, topic_name) == 3


# What Kafka Streams sets on its changelog topics, and provisioning tools on any topic: some
# Spindle acts on, others it keeps without acting on them (a single node has no replicas;
# batches are stored as produced).
STREAMS_CHANGELOG_CONFIGS = {
    "cleanup.policy": "compact",
    "message.timestamp.type": "CreateTime",
    "min.insync.replicas": "2",
    "compression.type": "lz4",
    "min.compaction.lag.ms": "60000",
}


def test_kafka_keys_spindle_keeps_are_accepted_and_described(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, config=STREAMS_CHANGELOG_CONFIGS)
    configs = clients.describe_topic(spindle.bootstrap, topic_name)
    for key, value in STREAMS_CHANGELOG_CONFIGS.items():
        assert configs.get(key) == value, f"{key}: {configs.get(key)!r}"
    assert configs.get("preallocate") == "false", "a kept key not set shows Kafka's default"
    produced = clients.produce_sync(
        clients.producer(spindle.bootstrap), topic_name, [{"key": b"k", "value": b"v", "partition": 0}]
    )
    assert produced[0].offset() == 0, "the topic takes records"



def test_log_append_time_replaces_the_producers_timestamps(spindle, topic_name):
    """`message.timestamp.type=LogAppendTime`: the delivery report and the consumer both see
    the time the node appended the record, marked as such, not the producer's."""
    clients.create_topic(spindle.bootstrap, topic_name, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    [delivered] = clients.produce_sync(
        clients.producer(spindle.bootstrap),
        topic_name,
        [{"key": b"k", "value": b"v", "partition": 0, "timestamp": 1_000_000}],
    )
    after = int(time.time() * 1000)
    kind, stamp = delivered.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME and before <= stamp <= after, (kind, stamp)

    consumer = clients.consumer(spindle.bootstrap, f"{topic_name}-reader")
    consumer.assign([TopicPartition(topic_name, 0, 0)])
    [record] = clients.consume(consumer, 1)
    consumer.close()
    assert record.timestamp() == (TIMESTAMP_LOG_APPEND_TIME, stamp)


def test_records_outside_the_topics_timestamp_window_are_refused(spindle, topic_name):
    """`message.timestamp.before.max.ms` (and `.after.max.ms`): a record whose create time is
    further from the node's clock is refused INVALID_TIMESTAMP, as Kafka refuses it, in a
    compressed batch too; records within the window are stored."""
    hour_ms = 3_600_000
    clients.create_topic(
        spindle.bootstrap,
        topic_name,
        config={"message.timestamp.before.max.ms": str(hour_ms), "message.timestamp.after.max.ms": str(hour_ms)},
    )
    assert clients.describe_topic(spindle.bootstrap, topic_name)["message.timestamp.before.max.ms"] == str(hour_ms)
    now = int(time.time() * 1000)
    for codec in ("none", "zstd"):
        prod = clients.producer(spindle.bootstrap, {"compression.type": codec})
        reports = clients.deliver(
            prod,
            topic_name,
            [
                {"value": b"old", "partition": 0, "timestamp": now - 2 * hour_ms},
                {"value": b"ahead", "partition": 0, "timestamp": now + 2 * hour_ms},
            ],
        )
        codes = [err.code() if err else None for err, _ in reports]
        assert codes == [KafkaError.INVALID_TIMESTAMP] * 2, (codec, reports)
        clients.produce_sync(prod, topic_name, [{"value": codec.encode(), "partition": 0, "timestamp": now - 60_000}])

    consumer = clients.consumer(spindle.bootstrap, f"{topic_name}-reader")
    consumer.assign([TopicPartition(topic_name, 0, 0)])
    stored = [m.value() for m in clients.consume(consumer, 2)]
    consumer.close()
    assert stored == [b"none", b"zstd"]


def test_alter_configs_sets_retention_ms(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, config={"retention.ms": "3600000"})
    resource = ConfigResource(ResourceType.TOPIC, topic_name, set_config={"retention.ms": "1000"})

    clients.admin(spindle.bootstrap).alter_configs([resource], request_timeout=T)[resource].result(timeout=T)

    assert clients.describe_topic(spindle.bootstrap, topic_name)["retention.ms"] == "1000"


def test_incremental_alter_configs(spindle, topic_name):
    with wire.Connection(spindle.bootstrap) as conn:
        _, versions = conn.api_versions()
    if INCREMENTAL_ALTER_CONFIGS not in versions:
        pytest.skip("the server does not advertise IncrementalAlterConfigs (API 44)")
    clients.create_topic(spindle.bootstrap, topic_name, config={"segment.bytes": "1048576"})
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic_name,
        incremental_configs=[
            ConfigEntry("retention.ms", "5000", incremental_operation=AlterConfigOpType.SET)
        ],
    )

    clients.admin(spindle.bootstrap).incremental_alter_configs([resource])[resource].result(timeout=T)

    configs = clients.describe_topic(spindle.bootstrap, topic_name)
    assert configs["retention.ms"] == "5000"
    assert configs["segment.bytes"] == "1048576", "an incremental change must keep the other settings"


def test_create_partitions_then_produce_to_new_one(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, partitions=2)

    clients.admin(spindle.bootstrap).create_partitions([NewPartitions(topic_name, 4)], request_timeout=T)[
        topic_name
    ].result(timeout=T)

    clients.wait_for_topic(spindle.bootstrap, topic_name, 4)
    [msg] = clients.produce_sync(
        clients.producer(spindle.bootstrap), topic_name, [{"value": b"p3", "partition": 3}]
    )
    assert (msg.partition(), msg.offset()) == (3, 0)


def test_delete_topic(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, partitions=2)
    clients.produce_sync(clients.producer(spindle.bootstrap), topic_name, [{"value": b"x", "partition": 1}])

    clients.admin(spindle.bootstrap).delete_topics([topic_name], request_timeout=T)[topic_name].result(
        timeout=T
    )

    wait_until(
        lambda: partition_count(spindle.bootstrap, topic_name) is None, f"{topic_name} gone from metadata"
    )


def test_admin_errors(spindle, topic_name):
    admin = clients.admin(spindle.bootstrap)
    clients.create_topic(spindle.bootstrap, topic_name)

    def create_error(topic: NewTopic) -> int:
        with pytest.raises(KafkaException) as failure:
            admin.create_topics([topic], request_timeout=T)[topic.topic].result(timeout=T)
        return failure.value.args[0].code()

    assert create_error(NewTopic(topic_name, 1, 1)) == KafkaError.TOPIC_ALREADY_EXISTS
    assert (
        create_error(NewTopic(topic_name + "-cfg", 1, 1, config={"retention.ms": "soon"}))
        == KafkaError.INVALID_CONFIG
    )
    assert (
        create_error(NewTopic(topic_name + "-fsync", 1, 1, config={"fsync.policy": "sometimes"}))
        == KafkaError.INVALID_CONFIG
    )
    assert create_error(NewTopic(topic_name + "-parts", 0, 1)) == KafkaError.INVALID_PARTITIONS
    assert partition_count(spindle.bootstrap, topic_name + "-cfg") is None

    missing = topic_name + "-missing"
    with pytest.raises(KafkaException) as failure:
        admin.delete_topics([missing], request_timeout=T)[missing].result(timeout=T)
    assert failure.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    with pytest.raises(KafkaException) as failure:
        admin.create_partitions([NewPartitions(topic_name, 1)], request_timeout=T)[topic_name].result(
            timeout=T
        )
    assert failure.value.args[0].code() == KafkaError.INVALID_PARTITIONS, "shrinking must be refused"


def test_kafka_python_admin_lifecycle(spindle, topic_name):
    admin = KafkaAdminClient(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([KPNewTopic(topic_name, 2, 1, topic_configs={"retention.ms": "7200000"})])
        clients.wait_for_topic(spindle.bootstrap, topic_name, 2)

        resource = KPConfigResource(ConfigResourceType.TOPIC, topic_name)
        [described] = admin.describe_configs([resource], config_filter="all").values()
        assert described[topic_name]["retention.ms"]["value"] == "7200000"

        admin.alter_configs(
            [KPConfigResource(ConfigResourceType.TOPIC, topic_name, configs={"retention.ms": "1000"})],
            raise_on_unknown=False,
        )
        assert clients.describe_topic(spindle.bootstrap, topic_name)["retention.ms"] == "1000"

        admin.create_partitions({topic_name: KPNewPartitions(total_count=3)})
        clients.wait_for_topic(spindle.bootstrap, topic_name, 3)

        admin.delete_topics([topic_name])
        wait_until(lambda: partition_count(spindle.bootstrap, topic_name) is None, f"{topic_name} gone")
    finally:
        admin.close()


def test_delete_records_moves_the_log_start(spindle, topic_name):
    """AdminClient.delete_records (DeleteRecords): the low watermark moves to the offset given,
    consumers from the beginning start there, an offset past the end is refused, and -1 deletes
    everything written."""
    from confluent_kafka import OFFSET_END
    from confluent_kafka import TopicPartition as CTP

    clients.create_topic(spindle.bootstrap, topic_name)
    prod = clients.producer(spindle.bootstrap)
    clients.produce_sync(prod, topic_name, [{"value": f"r{i}".encode(), "partition": 0} for i in range(20)])
    admin = clients.admin(spindle.bootstrap)

    deleted = admin.delete_records([CTP(topic_name, 0, 8)])
    assert [f.result(30).low_watermark for f in deleted.values()] == [8]
    cons = clients.consumer(spindle.bootstrap, extra={"auto.offset.reset": "earliest"})
    assert cons.get_watermark_offsets(CTP(topic_name, 0), timeout=10) == (8, 20)
    cons.assign([CTP(topic_name, 0, 0)])  # below the start: reset to the earliest, 8
    got = clients.consume(cons, 12)
    assert [(m.offset(), m.value()) for m in got] == [(i, f"r{i}".encode()) for i in range(8, 20)]
    cons.close()

    past_end = admin.delete_records([CTP(topic_name, 0, 25)])
    with pytest.raises(KafkaException) as refused:
        list(past_end.values())[0].result(30)
    assert refused.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE

    everything = admin.delete_records([CTP(topic_name, 0, OFFSET_END)])
    assert [f.result(30).low_watermark for f in everything.values()] == [20]


def test_kafka_python_describe_log_dirs_shows_partition_sizes(spindle, topic_name):
    """DescribeLogDirs (kafka-log-dirs.sh, the topic sizes of Kafka UIs): the data directory,
    each asked partition's size on disk, and the file system's total and usable bytes."""
    clients.create_topic(spindle.bootstrap, topic_name, partitions=2)
    prod = clients.producer(spindle.bootstrap)
    clients.produce_sync(prod, topic_name, [{"value": b"x" * 1000, "partition": 0} for _ in range(50)])
    admin = KafkaAdminClient(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    try:
        [broker] = admin.describe_log_dirs()
        [log_dir] = broker["log_dirs"]
        assert log_dir["error_code"] == 0
        assert log_dir["total_bytes"] > 0 and 0 <= log_dir["usable_bytes"] <= log_dir["total_bytes"]
        sizes = {
            p["partition_index"]: p["partition_size"]
            for t in log_dir["topics"]
            if t["name"] == topic_name
            for p in t["partitions"]
        }
        assert sizes.keys() == {0, 1}
        assert sizes[0] >= 50 * 1000 > sizes[1], sizes
        [only] = admin.describe_log_dirs(topic_partitions={topic_name: [1]})
        [asked] = only["log_dirs"][0]["topics"]
        assert (asked["name"], [p["partition_index"] for p in asked["partitions"]]) == (topic_name, [1])
    finally:
        admin.close()


def test_kafka_python_lists_the_config_resources_and_describes_each(spindle, topic_name):
    """ListConfigResources (KIP-1142, Kafka 4.1+ admin clients): every topic and this
    broker, each of which DescribeConfigs then describes; no group, client-metrics or
    broker-logger resources, which have no configs here."""
    clients.create_topic(spindle.bootstrap, topic_name, config={"retention.ms": "3600000"})
    admin = KafkaAdminClient(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    try:
        listed = admin.list_config_resources()
        assert set(listed) == {"topic", "broker"}, listed
        assert topic_name in listed["topic"] and listed["topic"] == sorted(listed["topic"])
        [broker] = listed["broker"]
        assert admin.list_config_resources(["BROKER"]) == {"broker": [broker]}
        assert admin.list_config_resources(["GROUP", "CLIENT_METRICS", "BROKER_LOGGER"]) == {}
        described = admin.describe_configs(
            [KPConfigResource(ConfigResourceType.TOPIC, topic_name), KPConfigResource(ConfigResourceType.BROKER, broker)],
            config_filter="all",
        )
        assert described["topic"][topic_name]["retention.ms"]["value"] == "3600000"
        assert described["broker"][broker]["broker.id"]["value"] == broker
    finally:
        admin.close()


def topic_id(bootstrap: str, topic: str) -> str:
    [description] = [
        f.result(timeout=T)
        for f in clients.admin(bootstrap).describe_topics(TopicCollection([topic]), request_timeout=T).values()
    ]
    return str(description.topic_id)


def test_topic_ids_are_kept_across_a_restart_and_new_for_a_topic_created_again(fresh_spindle, topic_name):
    """Kafka's topic ids (KIP-516): Metadata reports one per topic, the same after a restart (also
    a SIGKILL), and a topic deleted and created again under its name gets a new one, by which
    clients that fetch by id (Fetch v13+) tell the two apart."""
    clients.create_topic(fresh_spindle.bootstrap, topic_name)
    first = topic_id(fresh_spindle.bootstrap, topic_name)
    assert first not in ("", "AAAAAAAAAAAAAAAAAAAAAA"), f"a topic id, not the nil one: {first!r}"
    other = f"{topic_name}-other"
    clients.create_topic(fresh_spindle.bootstrap, other)
    assert topic_id(fresh_spindle.bootstrap, other) != first, "each topic its own id"

    fresh_spindle.restart(signal.SIGKILL)
    assert topic_id(fresh_spindle.bootstrap, topic_name) == first, "kept across a restart"

    clients.admin(fresh_spindle.bootstrap).delete_topics([topic_name], request_timeout=T)[topic_name].result(timeout=T)
    wait_until(lambda: partition_count(fresh_spindle.bootstrap, topic_name) is None, f"{topic_name} deleted")
    clients.create_topic(fresh_spindle.bootstrap, topic_name)
    assert topic_id(fresh_spindle.bootstrap, topic_name) != first, "a topic created again gets a new id"
    # Consumers still read the new topic (librdkafka fetches by id where the broker serves v13+).
    clients.produce_sync(clients.producer(fresh_spindle.bootstrap), topic_name, [{"value": b"again"}])
    cons = clients.consumer(fresh_spindle.bootstrap)
    cons.assign([TopicPartition(topic_name, 0, 0)])
    assert [m.value() for m in clients.consume(cons, 1)] == [b"again"]
    cons.close()


def test_acls_are_security_disabled_without_principals(spindle):
    """Without principals configured every client may do everything, and the ACL APIs say so
    as a Kafka broker without an authorizer does: SECURITY_DISABLED."""
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType
    from kafka.admin import ResourcePatternFilter, ResourceType as KPResourceType
    from kafka.errors import SecurityDisabledError

    admin = KafkaAdminClient(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    anything = ACLFilter(
        principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(KPResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    try:
        with pytest.raises(SecurityDisabledError):
            admin.describe_acls(anything)
    finally:
        admin.close()


def test_replica_administration_answers_as_a_one_node_cluster(spindle, topic_name):
    """The node is every partition's only replica and its leader: a leader election is not
    needed (confluent-kafka and kafka-python), no reassignment is in progress, a reassignment to
    this node alone is accepted and one to another broker refused."""
    from confluent_kafka import ElectionType
    from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError
    from kafka.structs import TopicPartition as KTP

    clients.create_topic(spindle.bootstrap, topic_name, partitions=2)
    tps = [TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)]
    elected = clients.admin(spindle.bootstrap).elect_leaders(ElectionType.PREFERRED, tps).result(timeout=10)
    assert {tp.partition: err.code() for tp, err in elected.items()} == {
        0: KafkaError.ELECTION_NOT_NEEDED,
        1: KafkaError.ELECTION_NOT_NEEDED,
    }
    everything = clients.admin(spindle.bootstrap).elect_leaders(ElectionType.PREFERRED, None).result(timeout=10)
    assert everything == {}, "asked for all partitions, none needs an election"

    admin = KafkaAdminClient(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    try:
        assert admin.list_partition_reassignments() == {}
        assert admin.list_partition_reassignments({topic_name: [0, 1]}) == {}
        answered = admin.alter_partition_reassignments(
            {KTP(topic_name, 0): [0], KTP(topic_name, 1): [0, 1], KTP(topic_name, 5): [0]}
        )
        assert answered[KTP(topic_name, 0)] is None, "to this node alone: nothing moves"
        assert answered[KTP(topic_name, 1)] is InvalidReplicationAssignmentError
        assert answered[KTP(topic_name, 5)].errno == KafkaError.UNKNOWN_TOPIC_OR_PART
        cancelled = admin.alter_partition_reassignments({KTP(topic_name, 0): None})
        assert cancelled[KTP(topic_name, 0)] is NoReassignmentInProgressError
    finally:
        admin.close()
