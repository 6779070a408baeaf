"""Metadata as three different clients see it: one broker at the advertised address, topics with
their partitions and leaders, and topics created on first use (auto-creation is on by default)."""

from __future__ import annotations

import signal

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from confluent_kafka.admin import ConfigResource, ResourceType

import clients
from spindle_process import Spindle


def test_confluent_list_topics_shows_broker_and_topic(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, partitions=3)

    md = clients.admin(spindle.bootstrap).list_topics(timeout=10)

    assert len(md.brokers) == 1, md.brokers
    broker = next(iter(md.brokers.values()))
    assert (broker.host, broker.port) == ("127.0.0.1", spindle.kafka_port)
    assert md.controller_id == broker.id
    topic = md.topics[topic_name]
    assert topic.error is None
    assert sorted(topic.partitions) == [0, 1, 2]
    for partition in topic.partitions.values():
        assert partition.error is None
        assert partition.leader == broker.id
        assert partition.replicas == [broker.id]
        assert partition.isrs == [broker.id]


def test_confluent_unknown_topic_is_auto_created_by_producer(spindle, topic_name):
    assert topic_name not in clients.admin(spindle.bootstrap).list_topics(timeout=10).topics

    prod = clients.producer(spindle.bootstrap)
    [msg] = clients.produce_sync(prod, topic_name, [{"value": b"first"}])

    assert msg.offset() == 0
    md = clients.admin(spindle.bootstrap).list_topics(timeout=10)
    assert topic_name in md.topics
    assert md.topics[topic_name].error is None


def test_kafka_python_sees_topics_and_partitions(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, partitions=2)

    admin = KafkaAdminClient(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    try:
        assert topic_name in admin.list_topics()
        cluster = admin.describe_cluster()
        [broker] = cluster["brokers"]
        assert (broker["host"], broker["port"]) == ("127.0.0.1", spindle.kafka_port)
        [described] = admin.describe_topics([topic_name])
        assert described["error_code"] == 0
        assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1]
    finally:
        admin.close()

    consumer = KafkaConsumer(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    try:
        assert topic_name in consumer.topics()
        assert consumer.partitions_for_topic(topic_name) == {0, 1}
    finally:
        consumer.close()


def test_kcat_lists_metadata_as_json(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, partitions=4)

    md = clients.kcat_metadata(spindle.bootstrap)

    [broker] = md["brokers"]
    assert broker["name"] == spindle.bootstrap
    [topic] = [t for t in md["topics"] if t["topic"] == topic_name]
    assert "error" not in topic, topic
    assert sorted(p["partition"] for p in topic["partitions"]) == [0, 1, 2, 3]
    assert all(p["leader"] == broker["id"] for p in topic["partitions"])


def cluster_id(bootstrap: str) -> str:
    return clients.admin(bootstrap).describe_cluster(request_timeout=10).result(10).cluster_id


def test_the_cluster_id_is_made_once_per_data_directory_unless_configured(fresh_spindle, tmp_path):
    """As Kafka keeps cluster.id in meta.properties: an id of Kafka's form (22 characters of
    URL-safe base64) made at the first start, the same after a restart (a SIGKILL too), another
    for another data directory, and a configured one reported as given."""
    first = cluster_id(fresh_spindle.bootstrap)
    assert len(first) == 22 and all(c.isalnum() or c in "-_" for c in first), first
    assert (fresh_spindle.data_dir / "cluster.id").read_text().strip() == first
    fresh_spindle.restart(signal.SIGKILL)
    assert cluster_id(fresh_spindle.bootstrap) == first, "kept across a restart"

    other = Spindle(base=tmp_path / "other")
    other.start()
    try:
        assert cluster_id(other.bootstrap) not in ("", first), "each data directory its own id"
    finally:
        other.stop()

    configured = Spindle(base=tmp_path / "configured", config_toml='cluster_id = "orders-eu"\n')
    configured.start()
    try:
        assert cluster_id(configured.bootstrap) == "orders-eu"
    finally:
        configured.stop()


def broker_configs(admin) -> dict[str, str]:
    [future] = admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")], request_timeout=10).values()
    return {name: entry.value for name, entry in future.result(10).items()}


def test_broker_configs_show_the_defaults_topics_get_under_kafkas_names(fresh_spindle, topic_name):
    """What kafka-configs --entity-type brokers and UIs show: the node's identity, and the
    defaults a topic without overrides gets, under Kafka's broker names."""
    configs = broker_configs(clients.admin(fresh_spindle.bootstrap))
    assert configs["broker.id"] == "0"
    assert configs["advertised.listeners"] == f"PLAINTEXT://{fresh_spindle.bootstrap}"
    assert configs["default.replication.factor"] == "1"
    clients.create_topic(fresh_spindle.bootstrap, topic_name)
    topic = clients.describe_topic(fresh_spindle.bootstrap, topic_name)
    for topic_key, broker_key in [
        ("retention.ms", "log.retention.ms"),
        ("retention.bytes", "log.retention.bytes"),
        ("segment.bytes", "log.segment.bytes"),
        ("segment.ms", "log.roll.ms"),
        ("max.message.bytes", "message.max.bytes"),
        ("cleanup.policy", "log.cleanup.policy"),
    ]:
        assert configs[broker_key] == topic[topic_key], broker_key


def test_kafka_python_pages_through_partitions_with_describe_topic_partitions(spindle, topic_name):
    """DescribeTopicPartitions (KIP-966, what Kafka 3.7+ admin clients describe topics with):
    topics in name order, at most `response_partition_limit` partitions per answer, and a cursor
    to the next page; an unknown topic is answered UNKNOWN_TOPIC_OR_PARTITION."""
    first, second, missing = f"{topic_name}-a", f"{topic_name}-b", f"{topic_name}-missing"
    clients.create_topic(spindle.bootstrap, first, partitions=3)
    clients.create_topic(spindle.bootstrap, second, partitions=2)

    admin = KafkaAdminClient(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    try:
        def page(cursor=None):
            answer = admin.describe_topic_partitions([second, missing, first], response_partition_limit=4, cursor=cursor)
            seen = [(t["name"], [p["partition_index"] for p in t["partitions"]], t["error_code"]) for t in answer["topics"]]
            return seen, answer["next_cursor"]

        seen, cursor = page()
        assert seen == [(first, [0, 1, 2], 0), (second, [0], 0)]
        assert cursor == {"topic_name": second, "partition_index": 1}
        seen, cursor = page(cursor)
        assert seen == [(second, [1], 0), (missing, [], 3)]
        assert cursor is None

        [whole] = admin.describe_topic_partitions([first])["topics"]
        assert whole["topic_id"] is not None and not whole["is_internal"]
        assert [p["leader_id"] for p in whole["partitions"]] == [0, 0, 0]
    finally:
        admin.close()
