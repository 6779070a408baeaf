"""aiokafka, the asyncio client (its own protocol code, like kafka-python's, not librdkafka's):
admin, an idempotent producer with keys, headers and every compression codec it ships, a group
of two consumers that split a topic and hand it over when one leaves, and committed offsets
that a new member resumes from."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

TIMEOUT_S = 30


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT_S * 2))


async def create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, count: int, start: int = 0, **config) -> list:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", **config)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, key=b"k%d" % (i % 7), value=b"value %d" % i, headers=[("n", b"%d" % i)])
            for i in range(start, start + count)
        ]
        return [await s for s in sent]
    finally:
        await producer.stop()


async def drain(consumer: AIOKafkaConsumer, count: int, timeout_s: float = TIMEOUT_S) -> list:
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            got += records
    return got


CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def test_records_round_trip_with_every_codec(spindle, topic_name):
    async def scenario():
        await create(spindle.bootstrap, topic_name, 2)
        for n, codec in enumerate(CODECS):
            await produce(spindle.bootstrap, topic_name, 20, start=20 * n, compression_type=codec)
        consumer = AIOKafkaConsumer(
            topic_name, bootstrap_servers=spindle.bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        try:
            got = await drain(consumer, 20 * len(CODECS))
        finally:
            await consumer.stop()
        numbers = sorted(int(r.headers[0][1]) for r in got)
        assert numbers == list(range(20 * len(CODECS)))
        for record in got:
            number = record.headers[0][1]
            assert record.value == b"value " + number
            assert record.key == b"k%d" % (int(number) % 7)
        # Keys land by murmur2, as Kafka's clients place them: one key, one partition.
        partitions_of_key: dict[bytes, set[int]] = {}
        for record in got:
            partitions_of_key.setdefault(record.key, set()).add(record.partition)
        assert all(len(p) == 1 for p in partitions_of_key.values()), partitions_of_key

    run(scenario())


def test_a_group_splits_the_topic_hands_it_over_and_resumes_from_commits(spindle, topic_name):
    group = f"{topic_name}-group"

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic_name,
            bootstrap_servers=spindle.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=500,
        )

    def numbers(records) -> list[int]:
        return sorted(int(r.headers[0][1]) for r in records)

    async def caught_up(consumer: AIOKafkaConsumer) -> bool:
        """Whether the consumer has partitions and has read each to its end."""
        assigned = list(consumer.assignment())
        if not assigned:
            return False
        ends = await consumer.end_offsets(assigned)
        return all([await consumer.position(tp) == ends[tp] for tp in assigned])

    async def scenario():
        await create(spindle.bootstrap, topic_name, 4)
        await produce(spindle.bootstrap, topic_name, 200)
        first, second = member(), member()
        await first.start()
        await second.start()
        try:
            # Both members read until every record is in (one that joins late may reread what
            # the other read before the rebalance: at least once), then hold two partitions each.
            got = []
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline and not (
                set(numbers(got)) == set(range(200))
                and len(first.assignment() | second.assignment()) == 4
                and await caught_up(first)
                and await caught_up(second)
            ):
                batches = await asyncio.gather(first.getmany(timeout_ms=200), second.getmany(timeout_ms=200))
                for batch in batches:
                    for records in batch.values():
                        got += records
            assert set(numbers(got)) == set(range(200))
            assert first.assignment().isdisjoint(second.assignment())
            assert len(first.assignment() | second.assignment()) == 4
            await first.commit()
            await second.commit()
        finally:
            await second.stop()  # leaves the group: the first takes every partition
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while len(first.assignment()) < 4 and time.monotonic() < deadline:
                await first.getmany(timeout_ms=200)
            assert len(first.assignment()) == 4
            # The second's partitions resume from its commits: only new records arrive.
            await produce(spindle.bootstrap, topic_name, 10, start=200)
            assert numbers(await drain(first, 10)) == list(range(200, 210))
            await first.commit()
        finally:
            await first.stop()
        # A new member resumes from the group's commits too.
        third = member()
        await third.start()
        try:
            await produce(spindle.bootstrap, topic_name, 5, start=210)
            assert numbers(await drain(third, 5)) == list(range(210, 215))
            assert not await drain(third, 1, timeout_s=2)
        finally:
            await third.stop()

    run(scenario())


def test_transactions_commit_and_abort(spindle, topic_name):
    """aiokafka's transactional producer (its own transaction code): a committed round is read
    by an aiokafka read_committed consumer, an aborted one between two committed rounds is not,
    and a read_uncommitted consumer reads all three."""

    async def scenario():
        await create(spindle.bootstrap, topic_name, 1)
        producer = AIOKafkaProducer(bootstrap_servers=spindle.bootstrap, transactional_id=f"{topic_name}-txn")
        await producer.start()
        try:
            for name, commit in (("first", True), ("aborted", False), ("second", True)):
                await producer.begin_transaction()
                for i in range(3):
                    await producer.send_and_wait(topic_name, value=f"{name}-{i}".encode(), partition=0)
                await (producer.commit_transaction() if commit else producer.abort_transaction())
        finally:
            await producer.stop()

        async def read(isolation: str, count: int) -> list[bytes]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=spindle.bootstrap, isolation_level=isolation, auto_offset_reset="earliest"
            )
            await consumer.start()
            try:
                consumer.assign([TopicPartition(topic_name, 0)])
                await consumer.seek_to_beginning()
                got = await drain(consumer, count)
                got += await drain(consumer, count + 1, timeout_s=1)
                return [r.value for r in got]
            finally:
                await consumer.stop()

        committed = await read("read_committed", 6)
        assert committed == [f"{n}-{i}".encode() for n in ("first", "second") for i in range(3)], committed
        everything = await read("read_uncommitted", 9)
        assert len(everything) == 9 and b"aborted-0" in everything, everything

    run(scenario())
