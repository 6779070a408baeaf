"""Consumer groups seen and managed by admin clients: what `kafka-consumer-groups.sh`, Kafka UIs
and AdminClient users do (ListGroups, DescribeGroups, OffsetFetch, OffsetCommit from outside the
group, DeleteGroups, LeaveGroup of a static member by its instance id)."""

from __future__ import annotations

import time

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError
from confluent_kafka import TopicPartition as CTP

import clients

PARTITIONS = 3
PER_PARTITION = 10


def produce(bootstrap: str, topic: str) -> None:
    clients.produce_sync(
        clients.producer(bootstrap),
        topic,
        [{"value": f"p{p}-{i}".encode(), "partition": p} for p in range(PARTITIONS) for i in range(PER_PARTITION)],
    )


def committed(admin, group: str) -> dict[int, int]:
    [future] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
    return {tp.partition: tp.offset for tp in future.result().topic_partitions}


def alter(admin, group: str, topic: str, partition: int, offset: int):
    request = ConsumerGroupTopicPartitions(group, [CTP(topic, partition, offset)])
    [future] = admin.alter_consumer_group_offsets([request]).values()
    [result] = future.result().topic_partitions
    return result


def test_confluent_admin_lists_describes_resets_and_deletes_a_group(spindle, topic_name):
    bootstrap = spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    produce(bootstrap, topic_name)
    group = f"admin-{topic_name}"
    admin = clients.admin(bootstrap)
    consumer = clients.consumer(bootstrap, group, {"client.id": "admin-test-member"})
    consumer.subscribe([topic_name])
    clients.consume(consumer, PARTITIONS * PER_PARTITION)
    consumer.commit(asynchronous=False)

    listed = admin.list_consumer_groups().result()
    assert (group, ConsumerGroupState.STABLE) in [(g.group_id, g.state) for g in listed.valid]
    [future] = admin.describe_consumer_groups([group]).values()
    described = future.result()
    assert described.state == ConsumerGroupState.STABLE
    assert described.partition_assignor == "range"
    [member] = described.members
    assert member.client_id == "admin-test-member"
    assert sorted(tp.partition for tp in member.assignment.topic_partitions) == list(range(PARTITIONS))
    assert committed(admin, group) == {p: PER_PARTITION for p in range(PARTITIONS)}

    # While the group has a member, a commit from outside it is refused, as Kafka refuses it:
    # the member's own commits would overwrite it.
    refused = alter(admin, group, topic_name, 0, 2)
    assert refused.error is not None and refused.error.code() == KafkaError.UNKNOWN_MEMBER_ID
    assert committed(admin, group)[0] == PER_PARTITION
    [future] = admin.delete_consumer_groups([group]).values()
    try:
        future.result()
        raise AssertionError("a group with a member was deleted")
    except Exception as e:  # noqa: BLE001  (confluent raises KafkaException)
        assert e.args[0].code() == KafkaError.NON_EMPTY_GROUP

    # Once the member has left, the offsets can be reset, and the next member starts there.
    consumer.close()
    accepted = alter(admin, group, topic_name, 0, 2)
    assert accepted.error is None and accepted.offset == 2
    assert committed(admin, group) == {0: 2, 1: PER_PARTITION, 2: PER_PARTITION}
    again = clients.consumer(bootstrap, group)
    again.subscribe([topic_name])
    replayed = clients.consume(again, PER_PARTITION - 2)
    clients.assert_no_more(again)
    again.close()
    assert sorted((m.partition(), m.offset()) for m in replayed) == [(0, o) for o in range(2, PER_PARTITION)]

    # An empty group can be deleted: it is no longer listed and its offsets are gone.
    [future] = admin.delete_consumer_groups([group]).values()
    future.result()
    assert group not in [g.group_id for g in admin.list_consumer_groups().result().valid]
    assert all(offset < 0 for offset in committed(admin, group).values())


def test_kafka_python_admin_removes_a_static_member_by_instance_id(spindle, topic_name):
    """A static member that closed stays in the group until its session times out; an admin
    removes it at once by its group.instance.id (LeaveGroup v3+), and the group is empty."""
    from kafka import KafkaAdminClient
    from kafka.admin import MemberToRemove

    bootstrap = spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    produce(bootstrap, topic_name)
    group = f"static-admin-{topic_name}"
    consumer = clients.consumer(bootstrap, group, {"group.instance.id": "the-only-one", "session.timeout.ms": 30_000})
    consumer.subscribe([topic_name])
    clients.consume(consumer, PARTITIONS * PER_PARTITION)
    consumer.close()

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        description = admin.describe_groups([group])[group]
        assert description["group_state"] == "Stable", f"a closed static member stays: {description}"
        [member] = description["members"]
        assert member["group_instance_id"] == "the-only-one"
        outcome = admin.remove_group_members(group, [MemberToRemove(group_instance_id="the-only-one")])
        assert [error.__name__ for error in outcome.values()] == ["NoError"], outcome
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            description = admin.describe_groups([group])[group]
            if description["group_state"] == "Empty":
                break
            time.sleep(0.2)
        assert description["group_state"] == "Empty", description
        assert description["members"] == []
    finally:
        admin.close()


def test_kafka_python_deletes_offsets_except_of_subscribed_topics(spindle, topic_name):
    """OffsetDelete (`kafka-consumer-groups.sh --delete-offsets`): an inactive group's offset
    goes for good; while a member subscribes to the topic, its offsets stay."""
    import kafka
    from kafka import KafkaAdminClient

    bootstrap = spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    produce(bootstrap, topic_name)
    group = f"offset-delete-{topic_name}"
    consumer = clients.consumer(bootstrap, group)
    consumer.subscribe([topic_name])
    clients.consume(consumer, PARTITIONS * PER_PARTITION)
    consumer.commit(asynchronous=False)
    consumer.close()

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        outcome = admin.delete_group_offsets(group, [kafka.TopicPartition(topic_name, 0)])
        assert [error.__name__ for error in outcome.values()] == ["NoError"], outcome
        assert committed(clients.admin(bootstrap), group) == {1: PER_PARTITION, 2: PER_PARTITION}

        # A member subscribed to the topic again: its offsets are the group's to keep.
        member = clients.consumer(bootstrap, group)
        member.subscribe([topic_name])
        clients.consume(member, PER_PARTITION)  # partition 0, from the start
        outcome = admin.delete_group_offsets(group, [kafka.TopicPartition(topic_name, 1)])
        assert [error.__name__ for error in outcome.values()] == ["GroupSubscribedToTopicError"], outcome
        member.close()
        assert committed(clients.admin(bootstrap), group)[1] == PER_PARTITION
    finally:
        admin.close()
