"""A consumer group of two librdkafka members shares a 4-partition topic; when one member leaves,
the other takes over its partitions from the committed offsets. Every record is consumed, and
none twice: commits are explicit and synchronous after each record, so a record consumed twice
would mean the broker lost or misreported a commit, or handed a partition to both members.
The same holds for groups of the classic protocol and of KIP-848's consumer protocol
(`group.protocol=consumer`, partitions assigned by the coordinator), for a group's membership
across a server restart, and for a group that moves between the two protocols a member at a
time (as far as the migration policy lets it)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import ConsumerGroupType
from confluent_kafka import TopicPartition as CTP

import clients
import conftest
from spindle_process import spindle_binary

# Members not yet closed. A test that fails leaves its members open; they are closed after it
# (librdkafka's destroy of a consumer that was never closed can hang, at garbage collection).
OPEN: list["Member"] = []


@pytest.fixture(autouse=True)
def close_members():
    yield
    while OPEN:
        OPEN[-1].close()

PARTITIONS = 4
PER_PARTITION = 10


class Member:
    """One group member that records what it consumed and commits each record explicitly."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str, extra: dict | None = None):
        self.name = name
        # What librdkafka reports through its error callback (a fatal error's cause, above all):
        # shown when a commit fails, since the commit itself then says only "Fatal error".
        self.errors: list[str] = []
        self.consumer = clients.consumer(
            bootstrap,
            group,
            {"client.id": name, "error_cb": lambda e: self.errors.append(str(e)), **(extra or {})},
        )
        # KIP-848 rebalances are incremental too.
        self.cooperative = (extra or {}).get("partition.assignment.strategy") == "cooperative-sticky" or (
            extra or {}
        ).get("group.protocol") == "consumer"
        self.assignment: set[int] = set()
        self.revoked: list[set[int]] = []
        self.seen: list[tuple[int, int, bytes]] = []
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        OPEN.append(self)

    def close(self) -> None:
        """Leaves the group (a static member only stops: its slot waits for it)."""
        if self in OPEN:
            OPEN.remove(self)
            self.consumer.close()

    def _on_assign(self, consumer, partitions):
        # An eager rebalance hands over the whole assignment, a cooperative one what is added.
        if self.cooperative:
            consumer.incremental_assign(partitions)
            self.assignment |= {tp.partition for tp in partitions}
        else:
            self.assignment = {tp.partition for tp in partitions}

    def _on_revoke(self, consumer, partitions):
        if self.cooperative:
            consumer.incremental_unassign(partitions)
        self.revoked.append({tp.partition for tp in partitions})
        self.assignment -= {tp.partition for tp in partitions}

    def poll_once(self, timeout_s: float = 0.1) -> None:
        msg = self.consumer.poll(timeout_s)
        if msg is None:
            return
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF, f"{self.name}: {msg.error()}"
            return
        self.seen.append((msg.partition(), msg.offset(), msg.value()))
        self.commit(msg)

    def commit(self, msg) -> None:
        """Commits `msg` synchronously. A cooperative member keeps consuming while the group
        rebalances, so, as against Kafka, a commit may meet the rebalance: sent with the
        generation that just ended it is ILLEGAL_GENERATION, between the join and the sync
        REBALANCE_IN_PROGRESS; a KIP-848 member's, at an epoch the coordinator moved past,
        STALE_MEMBER_EPOCH. It is retried, with the new generation, once the group is stable."""
        retried = (KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.STALE_MEMBER_EPOCH)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.consumer.commit(message=msg, asynchronous=False)
                return
            except KafkaException as e:
                if e.args[0].code() not in retried or time.monotonic() > deadline:
                    # What says why (a fatal error's cause) reaches the log and the callbacks at a poll.
                    self.consumer.poll(0.5)
                    raise AssertionError(f"{self.name}: commit failed: {e}; client errors: {self.errors}") from e
                time.sleep(0.05)


def poll_until(members: list[Member], done, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for member in members:
            member.poll_once()
        if done():
            return
    state = {m.name: (sorted(m.assignment), len(m.seen)) for m in members}
    raise AssertionError(f"not within {timeout_s}s: {what}; members (assignment, consumed): {state}")


def produce_round(bootstrap: str, topic: str, round_no: int, partitions: int = PARTITIONS) -> set[bytes]:
    values = [f"r{round_no}-p{p}-{i}".encode() for p in range(partitions) for i in range(PER_PARTITION)]
    clients.produce_sync(
        clients.producer(bootstrap),
        topic,
        [{"value": v, "partition": int(v.split(b"-")[1][1:])} for v in values],
    )
    return set(values)


# The group protocols a librdkafka consumer may use: the classic one and KIP-848's.
PROTOCOLS = {"classic": {}, "consumer": {"group.protocol": "consumer"}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_group_member_leaves_and_other_takes_over(spindle, topic_name, protocol):
    clients.create_topic(spindle.bootstrap, topic_name, partitions=PARTITIONS)
    group = f"group-{topic_name}"
    first = produce_round(spindle.bootstrap, topic_name, 1)
    a = Member(spindle.bootstrap, group, topic_name, "member-a", PROTOCOLS[protocol])
    b = Member(spindle.bootstrap, group, topic_name, "member-b", PROTOCOLS[protocol])

    # Both members join, split the four partitions between them, and drain the first round.
    poll_until(
        [a, b],
        lambda: len(a.assignment) == 2 and len(b.assignment) == 2 and len(a.seen) + len(b.seen) == len(first),
        "both members hold two partitions each and the first round is consumed",
    )
    assert a.assignment.isdisjoint(b.assignment)
    b_partitions = set(b.assignment)
    assert {v for _, _, v in a.seen + b.seen} == first

    # b leaves the group; a must take over b's partitions and read only what b did not commit.
    b.close()
    second = produce_round(spindle.bootstrap, topic_name, 2)
    seen_before = len(a.seen)
    poll_until(
        [a],
        lambda: a.assignment == set(range(PARTITIONS)) and len(a.seen) - seen_before >= len(second),
        "member-a owns all four partitions and consumed the second round",
    )
    clients.assert_no_more(a.consumer, quiet_s=1.0)
    taken_over = [(p, o) for p, o, _ in a.seen[seen_before:] if p in b_partitions]
    a.close()

    consumed = a.seen + b.seen
    positions = [(p, o) for p, o, _ in consumed]
    duplicates = {pos for pos in positions if positions.count(pos) > 1}
    assert not duplicates, f"consumed twice: {sorted(duplicates)}"
    assert {v for _, _, v in consumed} == first | second
    assert taken_over, "member-a consumed nothing from the partitions member-b left"
    for partition in b_partitions:
        offsets = sorted(o for p, o in taken_over if p == partition)
        assert offsets == list(range(PER_PARTITION, 2 * PER_PARTITION)), (
            f"partition {partition}: member-a resumed at {offsets[:1]}, expected b's commit {PER_PARTITION}"
        )

    # The group's committed offsets are the end of each partition.
    check = clients.consumer(spindle.bootstrap, group)
    committed = check.committed([CTP(topic_name, p) for p in range(PARTITIONS)], timeout=10)
    check.close()
    assert {tp.partition: tp.offset for tp in committed} == {p: 2 * PER_PARTITION for p in range(PARTITIONS)}


def assert_each_once(members: list[Member], expected: set[bytes]) -> None:
    positions = [(p, o) for m in members for p, o, _ in m.seen]
    duplicates = {pos for pos in positions if positions.count(pos) > 1}
    assert not duplicates, f"consumed twice: {sorted(duplicates)}"
    assert {v for m in members for _, _, v in m.seen} == expected


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_static_member_restarts_without_a_rebalance(spindle, topic_name, protocol):
    """A member with a group.instance.id that restarts within its session timeout gets its
    partitions back and the other member is not disturbed (KIP-345): no revocation, no pause.
    Under the consumer protocol the closing member leaves "for now" (epoch -2) and the
    restarted one joins under a new member id."""
    clients.create_topic(spindle.bootstrap, topic_name, partitions=PARTITIONS)
    group = f"static-{topic_name}"
    first = produce_round(spindle.bootstrap, topic_name, 1)
    static = {"session.timeout.ms": 10_000, **PROTOCOLS[protocol]}
    a = Member(spindle.bootstrap, group, topic_name, "static-a", {**static, "group.instance.id": "a"})
    b = Member(spindle.bootstrap, group, topic_name, "static-b", {**static, "group.instance.id": "b"})
    poll_until(
        [a, b],
        lambda: len(a.assignment) == 2 and len(b.assignment) == 2 and len(a.seen) + len(b.seen) == len(first),
        "both static members hold two partitions each and the first round is consumed",
    )
    a_partitions, b_revoked = set(a.assignment), len(b.revoked)

    # A static member leaves no LeaveGroup behind when it closes: its slot waits for it, past
    # the other member's next heartbeat (every 5 s under the consumer protocol), which would
    # hand it a's partitions if a had left for good.
    a.close()
    b_before = len(b.seen)  # what b read of the first round: all, some or none of it
    second = produce_round(spindle.bootstrap, topic_name, 2)
    waited = time.monotonic() + 6
    while time.monotonic() < waited:
        b.poll_once()
        assert len(b.assignment) == 2, f"static-b was given static-a's partitions: {b.assignment}"
    restarted = Member(spindle.bootstrap, group, topic_name, "static-a2", {**static, "group.instance.id": "a"})
    poll_until(
        [restarted, b],
        lambda: len(restarted.seen) + len(b.seen) - b_before >= len(second),
        "the restarted member and the other consume the second round",
    )
    assert restarted.assignment == a_partitions
    assert len(b.revoked) == b_revoked, f"the restart made static-b give up partitions: {b.revoked}"
    restarted.close()
    b.close()
    assert_each_once([a, restarted, b], first | second)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_classic_group_rides_out_a_server_restart_without_a_rebalance(fresh_spindle, topic_name, stop_signal):
    """A classic group's membership is kept in the offsets log: after the server restarts under
    a Stable group of two librdkafka members (stopped cleanly or killed), both heartbeat on at
    their generation and keep their partitions (no revocation, no rejoin) and consume the next
    round, every record once."""
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    group = f"group-{topic_name}"
    first = produce_round(bootstrap, topic_name, 1)
    a = Member(bootstrap, group, topic_name, "member-a")
    b = Member(bootstrap, group, topic_name, "member-b")
    poll_until(
        [a, b],
        lambda: len(a.assignment) == 2 and len(b.assignment) == 2 and len(a.seen) + len(b.seen) == len(first),
        "both members hold two partitions each and the first round is consumed",
    )
    before = {m.name: (set(m.assignment), len(m.revoked)) for m in (a, b)}

    fresh_spindle.restart(stop_signal)
    second = produce_round(bootstrap, topic_name, 2)
    poll_until(
        [a, b],
        lambda: len(a.seen) + len(b.seen) >= len(first) + len(second),
        "both members consume the second round after the restart",
        timeout_s=60,
    )
    # Past two heartbeats (every 3 s): a member the coordinator had forgotten would be told to
    # rejoin by now, and would give its partitions up first.
    waited = time.monotonic() + 7
    while time.monotonic() < waited:
        a.poll_once()
        b.poll_once()
    after = {m.name: (set(m.assignment), len(m.revoked)) for m in (a, b)}
    assert after == before, f"the restart rebalanced the group: {before} -> {after}"
    assert_each_once([a, b], first | second)
    a.close()
    b.close()


def test_cooperative_sticky_members_hand_over_only_what_moves(spindle, topic_name):
    """librdkafka's cooperative-sticky assignor over the classic protocol: a second member takes
    two partitions from the first, which keeps consuming the other two, and takes them back when
    the second leaves; every record is consumed once."""
    clients.create_topic(spindle.bootstrap, topic_name, partitions=PARTITIONS)
    group = f"coop-{topic_name}"
    cooperative = {"partition.assignment.strategy": "cooperative-sticky"}
    first = produce_round(spindle.bootstrap, topic_name, 1)
    a = Member(spindle.bootstrap, group, topic_name, "coop-a", cooperative)
    poll_until([a], lambda: len(a.seen) == len(first), "the first member consumes the first round")
    assert a.assignment == set(range(PARTITIONS))

    b = Member(spindle.bootstrap, group, topic_name, "coop-b", cooperative)
    second = produce_round(spindle.bootstrap, topic_name, 2)
    poll_until(
        [a, b],
        lambda: len(a.assignment) == 2 and len(b.assignment) == 2 and len(a.seen) + len(b.seen) == 2 * len(first),
        "the members hold two partitions each and the second round is consumed",
    )
    # Only what moved was revoked: the first member never gave up everything.
    assert all(len(r) < PARTITIONS for r in a.revoked), a.revoked

    b.close()
    third = produce_round(spindle.bootstrap, topic_name, 3)
    poll_until(
        [a],
        lambda: a.assignment == set(range(PARTITIONS)) and len(a.seen) + len(b.seen) == 3 * len(first),
        "the first member takes the partitions back and consumes the third round",
    )
    a.close()
    assert_each_once([a, b], first | second | third)


def kafka_python_consumer(bootstrap: str, group: str, *topics: str, **settings):
    """A kafka-python group member with short timeouts, committing only when told."""
    from kafka import KafkaConsumer

    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        heartbeat_interval_ms=500,
        request_timeout_ms=10_000,
        fetch_max_wait_ms=100,
        **settings,
    )


def test_kafka_python_group_commits_and_resumes(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, partitions=2)
    group = f"kp-group-{topic_name}"
    first = produce_round(spindle.bootstrap, topic_name, 1, partitions=2)

    def drain(count: int) -> list:
        cons = kafka_python_consumer(spindle.bootstrap, group, topic_name, session_timeout_ms=6_000)
        got = []
        deadline = time.monotonic() + 30
        try:
            while len(got) < count and time.monotonic() < deadline:
                for batch in cons.poll(timeout_ms=200).values():
                    got.extend(batch)
            cons.commit()
        finally:
            cons.close()
        assert len(got) == count, f"kafka-python group member consumed {len(got)} of {count}"
        return got

    assert {r.value for r in drain(len(first))} == first
    second = produce_round(spindle.bootstrap, topic_name, 2, partitions=2)
    assert {r.value for r in drain(len(second))} == second, "the group must resume after its commits"


@pytest.mark.parametrize("assignor", ["range", "cooperative-sticky"])
def test_a_group_moves_to_the_consumer_protocol_and_back_a_member_at_a_time(spindle, topic_name, assignor):
    """Kafka's online migration (KIP-848): a consumer-protocol member joining a classic group
    with members turns it into a consumer-protocol group, whose classic members go on with
    JoinGroup, SyncGroup and Heartbeat and share the partitions with it; when it leaves, the
    group is a classic one again. Every record is consumed, none twice."""
    migrate_and_leave(spindle.bootstrap, topic_name, assignor, then=ConsumerGroupType.CLASSIC)


def server_with_migration_policy(request, tmp_path, policy: str):
    """A server of the test's own whose `group_consumer_migration_policy` is `policy`."""
    config = f'group_consumer_migration_policy = "{policy}"\n'
    yield from conftest._run(request, conftest.Spindle(base=tmp_path / "spindle", config_toml=config))


@pytest.fixture
def upgrade_only(request, tmp_path):
    """A server whose groups may move to the consumer protocol but not back."""
    yield from server_with_migration_policy(request, tmp_path, "upgrade")


def test_under_an_upgrade_only_policy_the_classic_members_stay_in_the_consumer_protocol_group(
    upgrade_only, topic_name
):
    """`group_consumer_migration_policy = "upgrade"`: when the consumer-protocol member leaves,
    the group keeps the consumer protocol, and its classic members take its partitions back
    through the coordinator's own assignment. Every record is consumed, none twice."""
    migrate_and_leave(upgrade_only.bootstrap, topic_name, "range", then=ConsumerGroupType.CONSUMER)


@pytest.fixture
def migration_disabled(request, tmp_path):
    """A server whose groups with members never move between the protocols."""
    yield from server_with_migration_policy(request, tmp_path, "disabled")


def test_with_migration_disabled_a_consumer_protocol_member_is_refused_and_the_classic_group_goes_on(
    migration_disabled, topic_name
):
    """`group_consumer_migration_policy = "disabled"`: a consumer-protocol member that joins a
    classic group with members is told GROUP_ID_NOT_FOUND, as Kafka tells it (librdkafka takes
    it as fatal), and the classic member keeps every partition, undisturbed."""
    bootstrap = migration_disabled.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    group = f"classic-only-{topic_name}"
    first = produce_round(bootstrap, topic_name, 1)
    a = Member(bootstrap, group, topic_name, "classic-a")
    poll_until([a], lambda: len(a.assignment) == PARTITIONS and len(a.seen) == len(first), "a takes all")
    errors: list[str] = []
    c = clients.consumer(
        bootstrap, group, {"group.protocol": "consumer", "error_cb": lambda e: errors.append(str(e))}
    )
    try:
        c.subscribe([topic_name])
        refused = None
        deadline = time.monotonic() + 20
        while refused is None and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None and msg.error():
                refused = msg.error()
            a.poll_once(0.05)
        assert refused is not None and refused.code() == KafkaError._FATAL, f"{refused}; {errors}"
        assert "group id does not exist" in refused.str(), refused.str()
    finally:
        c.close()
    second = produce_round(bootstrap, topic_name, 2)
    poll_until([a], lambda: len(a.seen) == len(first) + len(second), "a consumes the second round")
    assert a.revoked == [], f"the classic member was disturbed: {a.revoked}"
    assert described(bootstrap, group).type == ConsumerGroupType.CLASSIC
    a.close()
    assert_each_once([a], first | second)


def described(bootstrap: str, group: str):
    """`group` as an admin client's DescribeGroups (or ConsumerGroupDescribe) shows it."""
    return clients.admin(bootstrap).describe_consumer_groups([group])[group].result(timeout=10)


def migrate_and_leave(bootstrap: str, topic_name: str, assignor: str, then) -> None:
    """Two classic members (with `assignor`) of a group share `topic_name`; a consumer-protocol
    member joins and gets its share, then leaves, and the classic members take everything back
    in a group of type `then`. Every record is consumed, none twice."""
    group = f"migrating-{topic_name}"
    clients.create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    classic = {"partition.assignment.strategy": assignor}
    first = produce_round(bootstrap, topic_name, 1)
    a = Member(bootstrap, group, topic_name, "classic-a", classic)
    b = Member(bootstrap, group, topic_name, "classic-b", classic)
    poll_until(
        [a, b],
        lambda: len(a.assignment) == 2 and len(b.assignment) == 2 and len(a.seen) + len(b.seen) == len(first),
        "both classic members hold two partitions each and the first round is consumed",
    )
    # The upgrade: a member of the consumer protocol joins and gets its share.
    c = Member(bootstrap, group, topic_name, "consumer-c", PROTOCOLS["consumer"])
    second = produce_round(bootstrap, topic_name, 2)
    members = [a, b, c]
    poll_until(
        members,
        lambda: c.assignment
        and a.assignment | b.assignment | c.assignment == set(range(PARTITIONS))
        and sum(len(m.seen) for m in members) >= len(first) + len(second),
        "the consumer-protocol member shares the partitions and the second round is consumed",
        timeout_s=60,
    )
    assert not (a.assignment & b.assignment or a.assignment & c.assignment or b.assignment & c.assignment)
    members_seen = {m.client_id for m in described(bootstrap, group).members}
    assert members_seen == {"classic-a", "classic-b", "consumer-c"}
    # It leaves, and the classic members take everything back.
    c.close()
    third = produce_round(bootstrap, topic_name, 3)
    poll_until(
        [a, b],
        lambda: a.assignment | b.assignment == set(range(PARTITIONS))
        and sum(len(m.seen) for m in members) >= len(first) + len(second) + len(third),
        "the classic members take the partitions back and consume the third round",
        timeout_s=60,
    )
    assert described(bootstrap, group).type == then
    a.close()
    b.close()
    assert_each_once(members, first | second | third)


def test_kafka_python_member_rides_out_a_server_restart_without_a_rebalance(fresh_spindle, topic_name):
    """kafka-python 3.x keeps its generation across a server restart (the coordinator restores
    the group from the offsets log): its partitions are neither revoked nor assigned again, and
    it reads on from its position, every record once."""
    from kafka import ConsumerRebalanceListener

    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=2)
    first = produce_round(bootstrap, topic_name, 1, partitions=2)
    rebalances: list[tuple[str, list[int]]] = []

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            rebalances.append(("revoked", sorted(tp.partition for tp in revoked)))

        def on_partitions_assigned(self, assigned):
            rebalances.append(("assigned", sorted(tp.partition for tp in assigned)))

    cons = kafka_python_consumer(bootstrap, f"kp-group-{topic_name}", session_timeout_ms=10_000)
    cons.subscribe([topic_name], listener=Listener())
    seen: list[tuple[int, int, bytes]] = []

    def poll_for(seconds: float, until=lambda: False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            for batch in cons.poll(timeout_ms=200).values():
                seen.extend((r.partition, r.offset, r.value) for r in batch)

    try:
        poll_for(30, lambda: len(seen) >= len(first))
        assert {v for _, _, v in seen} == first
        joined = list(rebalances)
        fresh_spindle.restart()
        second = produce_round(bootstrap, topic_name, 2, partitions=2)
        poll_for(30, lambda: len(seen) >= len(first) + len(second))
        # Past several heartbeats: a forgotten member would have been told to rejoin by now.
        poll_for(4)
        after = list(rebalances)  # before close(), which gives the partitions up
    finally:
        cons.close()
    assert after == joined, f"the restart rebalanced the group: {joined} -> {after}"
    positions = [(p, o) for p, o, _ in seen]
    assert len(positions) == len(set(positions)), "a record was consumed twice"
    assert {v for _, _, v in seen} == first | second


def test_kcat_balanced_consumer(spindle, topic_name):
    """kcat -G: librdkafka 2.0.2's consumer group protocol, to the end of every partition."""
    clients.create_topic(spindle.bootstrap, topic_name, partitions=PARTITIONS)
    sent = produce_round(spindle.bootstrap, topic_name, 1)

    out = clients.kcat(
        spindle.bootstrap,
        "-G",
        f"kcat-group-{topic_name}",
        "-X",
        "auto.offset.reset=earliest",
        "-c",
        str(len(sent)),
        "-f",
        "%s\n",
        topic_name,
        timeout_s=60,
    )

    assert sorted(out.splitlines()) == sorted(sent)


def kip848_member_consuming_a_first_round(
    bootstrap: str, topic: str, group: str, extra: dict | None = None
) -> tuple[Member, set[bytes]]:
    """Creates `topic`, produces a first round to it and has a KIP-848 member of `group` (with
    `extra` settings) take every partition and consume the round; the member and the round."""
    clients.create_topic(bootstrap, topic, partitions=PARTITIONS)
    first = produce_round(bootstrap, topic, 1)
    a = Member(bootstrap, group, topic, "member-a", {**PROTOCOLS["consumer"], **(extra or {})})
    poll_until(
        [a],
        lambda: a.assignment == set(range(PARTITIONS)) and len(a.seen) == len(first),
        "member-a owns every partition and consumed the first round",
    )
    return a, first


def consumes_a_second_round_after_the_restart(bootstrap: str, topic: str, member: Member, first: set[bytes]) -> None:
    """Produces a second round once the server restarted under `member`, which must consume it,
    every record of both rounds once, without giving up its partitions (the coordinator knows
    it from the offsets log: no rejoin); then closes the member."""
    revoked = len(member.revoked)
    second = produce_round(bootstrap, topic, 2)
    poll_until(
        [member],
        lambda: len(member.seen) >= len(first) + len(second),
        f"{member.name} consumed the second round after the restart",
        timeout_s=60,
    )
    # Past a heartbeat (every 5 s): a member the coordinator had forgotten would be fenced by
    # now, and would give its partitions up before joining again.
    waited = time.monotonic() + 6
    while time.monotonic() < waited:
        member.poll_once()
    assert member.revoked[revoked:] == [], f"{member.name} gave partitions up: {member.revoked[revoked:]}"
    assert member.assignment == set(range(PARTITIONS))
    assert_each_once([member], first | second)
    member.close()


def test_kip848_group_is_listed_described_and_its_member_carries_on_after_a_restart(fresh_spindle, topic_name):
    """A KIP-848 group (`group.protocol=consumer`) is listed with type `consumer` and described
    with its member's partitions. Its membership is kept in the offsets log: after the server
    restarts under it, the member heartbeats on at its epoch with its partitions, and every
    record is consumed, none twice."""
    from confluent_kafka import ConsumerGroupState, ConsumerGroupType

    bootstrap = fresh_spindle.bootstrap
    group = f"group-{topic_name}"
    a, first = kip848_member_consuming_a_first_round(bootstrap, topic_name, group)

    admin = clients.admin(bootstrap)
    listed = admin.list_consumer_groups().result(timeout=10)
    [listing] = [g for g in listed.valid if g.group_id == group]
    assert listing.type == ConsumerGroupType.CONSUMER, listing.type
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert described.state == ConsumerGroupState.STABLE, described.state
    assert described.type == ConsumerGroupType.CONSUMER, described.type
    assert described.partition_assignor == "uniform"
    [member] = described.members
    assert member.client_id == "member-a"
    assert {tp.partition for tp in member.assignment.topic_partitions} == set(range(PARTITIONS))
    # Only ConsumerGroupDescribe carries the partitions a member is moving to.
    assert member.target_assignment is not None
    assert {(tp.topic, tp.partition) for tp in member.target_assignment.topic_partitions} == {
        (topic_name, p) for p in range(PARTITIONS)
    }
    # A classic group, or one that only holds offsets, is still described (through DescribeGroups).
    classic = clients.consumer(bootstrap, f"classic-{group}")
    try:
        classic.subscribe([topic_name])
        clients.consume(classic, 1)
        classic_described = admin.describe_consumer_groups([f"classic-{group}"])[f"classic-{group}"].result(timeout=10)
        assert classic_described.type == ConsumerGroupType.CLASSIC, classic_described.type
        assert len(classic_described.members) == 1
        # `spindle group list` names each group's type too.
        listed_by_cli = subprocess.run(
            [str(spindle_binary()), "group", "list", "--json", "--bootstrap", bootstrap],
            check=True,
            capture_output=True,
            timeout=30,
        )
        types = {g["group"]: g["group_type"] for g in json.loads(listed_by_cli.stdout)}
        assert types[group] == "consumer" and types[f"classic-{group}"] == "classic", types
    finally:
        classic.close()

    fresh_spindle.restart()
    consumes_a_second_round_after_the_restart(bootstrap, topic_name, a, first)


def test_kip848_member_whose_commit_meets_the_restart_first_carries_on(fresh_spindle, topic_name):
    """librdkafka sends a commit it deferred while the coordinator was away as soon as it is
    back, before any heartbeat. The restarted coordinator knows the member from the offsets log
    and takes the commit at its epoch. (When it did not, the commit was refused, librdkafka
    handed its partitions back and, with the application not polling, rejoined at epoch 0
    without its subscription: a fatal error had the coordinator answered INVALID_REQUEST, as
    Kafka would; it is fenced instead, a path the unit and wire tests keep.)
    `metadata.recovery.strategy=none` keeps librdkafka from bootstrapping again during the
    outage, after which it would heartbeat first."""
    bootstrap = fresh_spindle.bootstrap
    a, first = kip848_member_consuming_a_first_round(
        bootstrap, topic_name, f"group-{topic_name}", {"metadata.recovery.strategy": "none"}
    )
    fresh_spindle.stop()
    # Deferred: there is no coordinator to send it to.
    a.consumer.commit(offsets=[CTP(topic_name, 0, PER_PARTITION)], asynchronous=True)
    fresh_spindle.start()
    # Longer than a heartbeat interval (5 s) without a poll: the heartbeat goes out before the
    # application has handed the partitions back.
    time.sleep(6)
    consumes_a_second_round_after_the_restart(bootstrap, topic_name, a, first)


def test_kip848_member_with_a_day_long_max_poll_interval_joins_and_consumes(spindle, topic_name):
    """librdkafka sends its `max.poll.interval.ms` (up to a day) as the member's rebalance
    timeout. The coordinator honours at most 30 minutes and shortens a longer one; refused, it
    would be a fatal error for the consumer."""
    bootstrap = spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    sent = produce_round(bootstrap, topic_name, 1)
    extra = {**PROTOCOLS["consumer"], "max.poll.interval.ms": 86_400_000}
    a = Member(bootstrap, f"group-{topic_name}", topic_name, "member-a", extra)
    poll_until([a], lambda: len(a.seen) == len(sent), "member-a joined and consumed the round")
    assert_each_once([a], sent)
    a.close()


def test_kip848_member_subscribes_by_pattern_and_gets_topics_created_later(spindle, topic_name):
    """Under `group.protocol=consumer` librdkafka sends a `^...` subscription to the coordinator,
    which resolves it against whole topic names: the member gets the matching topics (not one
    whose name merely contains a match), and a matching topic created while it runs joins its
    assignment."""
    bootstrap = spindle.bootstrap
    prod = clients.producer(bootstrap)

    def create_and_fill(topic: str, partitions: int) -> set[bytes]:
        clients.create_topic(bootstrap, topic, partitions=partitions)
        values = [f"{topic}/{p}/{i}".encode() for p in range(partitions) for i in range(3)]
        clients.produce_sync(prod, topic, [{"value": v, "partition": int(v.split(b"/")[1])} for v in values])
        return set(values)

    expected = create_and_fill(f"{topic_name}-a", 2) | create_and_fill(f"{topic_name}-b", 1)
    unmatched = create_and_fill(f"x-{topic_name}-a", 1)
    cons = clients.consumer(bootstrap, f"group-{topic_name}", PROTOCOLS["consumer"])
    seen: list[bytes] = []

    def poll_until(done, what: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}; seen {len(seen)}"
            msg = cons.poll(0.2)
            if msg is not None and not msg.error():
                seen.append(msg.value())

    try:
        cons.subscribe([f"^{topic_name}-.*"])
        poll_until(lambda: expected <= set(seen), "the records of the two matching topics")
        later = create_and_fill(f"{topic_name}-c", 2)
        poll_until(lambda: expected | later <= set(seen), "the records of the topic created later")
        assert {tp.topic for tp in cons.assignment()} == {f"{topic_name}-{s}" for s in "abc"}
        clients.assert_no_more(cons, quiet_s=1.0)
        assert not unmatched & set(seen)
        assert len(seen) == len(set(seen)), "each record once"
    finally:
        cons.close()
