"""Log compaction (`cleanup.policy=compact`): the cleaner keeps at least the latest record of
every key, drops the older records of a key once they and a newer record of that key lie in
sealed segments, keeps the offsets of what it keeps (consumers see increasing offsets with
holes, the log start and the high watermark stay), drops tombstones after
`delete.retention.ms`, rewrites compressed batches with their codec, and leaves content that
survives a clean stop and a SIGKILL. confluent-kafka, kafka-python, aiokafka and kcat all read a
compacted partition to its end and see the same records (kafkajs: tests/node).

The cleaner only touches sealed segments, never the active (last) one, so every topic here has
4 KiB segments (`segment.bytes=4096`, the smallest) and `min.cleanable.dirty.ratio=0.01`, and
each round of keys is produced as its own batch: the partition rolls a segment every round or
few rounds, and is cleaned at the next check of its shard (about every 2 s).

The cleaned state is recognised without knowing where the segments begin: the active segment
holds at most 4096 bytes, so at most `records_per_segment` records whose bytes cannot be
squeezed below a known size. Everything below `high watermark - records_per_segment` is therefore
sealed, and once cleaned holds each key at most once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from typing import Callable, NamedTuple

import kafka
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AIOTopicPartition
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException
from confluent_kafka import TopicPartition as CTP
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

import clients
import wire

T = clients.OP_TIMEOUT_S
SEGMENT_BYTES = 4096
# Bounds every wait for the cleaner: it checks each partition about every 2 s.
CLEAN_TIMEOUT_S = 30.0
# Two reads this far apart that agree, with the cleaner's checks in between, mean it is done.
SETTLE_S = 4.5

COMPACTED = {
    "cleanup.policy": "compact",
    "segment.bytes": str(SEGMENT_BYTES),
    "min.cleanable.dirty.ratio": "0.01",
}

# Every value is VALUE_BYTES long and carries TOKEN_BYTES random bytes (hex-encoded): a record
# takes at least VALUE_BYTES in an uncompressed batch and at least TOKEN_BYTES in a compressed
# one, which bounds how many records the active segment can hold.
VALUE_BYTES = 100
TOKEN_BYTES = 24
PLAIN_RECORDS_PER_SEGMENT = SEGMENT_BYTES // VALUE_BYTES
COMPRESSED_RECORDS_PER_SEGMENT = SEGMENT_BYTES // TOKEN_BYTES

CODECS = ["gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
INVALID_CONFIG = KafkaError.INVALID_CONFIG


class Rec(NamedTuple):
    """One record as a consumer sees it (value None: a tombstone)."""

    offset: int
    key: bytes | None
    value: bytes | None


class Snapshot(NamedTuple):
    """A partition read from its log start to its high watermark."""

    low: int
    high: int
    records: list[Rec]


# --- producing -------------------------------------------------------------------------------
def key_names(count: int, prefix: str = "key") -> list[bytes]:
    return [f"{prefix}-{i:02d}".encode() for i in range(count)]


def make_value(key: bytes, round_: int) -> bytes:
    """`key:round:token:` padded to VALUE_BYTES; the token is random, so that compression cannot
    shrink a record below TOKEN_BYTES."""
    head = f"{key.decode()}:{round_}:{os.urandom(TOKEN_BYTES).hex()}:"
    return (head + "." * (VALUE_BYTES - len(head))).encode()


def round_of(value: bytes) -> int:
    return int(value.split(b":")[1])


def create_compacted(bootstrap: str, topic: str, **overrides: str) -> None:
    """A one-partition topic that rolls every 4 KiB and is cleaned as soon as a segment is
    sealed; `overrides` (dots as underscores) change or add configs."""
    config = dict(COMPACTED)
    config.update({k.replace("_", "."): v for k, v in overrides.items()})
    clients.create_topic(bootstrap, topic, config=config)


def produce_records(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes | None]],
                    producer_config: dict | None = None) -> list[Rec]:
    """Produces (key, value) pairs to partition 0 as one flush (acks=all); returns them with
    their offsets."""
    prod = clients.producer(bootstrap, {"acks": "all", **(producer_config or {})})
    delivered = clients.produce_sync(
        prod, topic, [{"key": k, "value": v, "partition": 0} for k, v in pairs]
    )
    return [Rec(m.offset(), m.key(), m.value()) for m in delivered]


def produce_rounds(bootstrap: str, topic: str, keys: list[bytes], rounds: int, first_round: int = 0,
                   producer_config: dict | None = None) -> list[Rec]:
    """Produces one value per key per round, each round flushed on its own (one batch, about
    2 KiB uncompressed for 20 keys, so that 4 KiB segments roll every round or few rounds).
    Returns the records with their offsets, in offset order."""
    # A long linger keeps a round in one batch however slowly this loop runs (flush() sends at
    # once): a round split in two could straddle a roll, and retention then deletes half of it.
    prod = clients.producer(bootstrap, {"acks": "all", "linger.ms": 1000, **(producer_config or {})})
    sent: list[Rec] = []
    for round_ in range(first_round, first_round + rounds):
        delivered = clients.produce_sync(
            prod, topic, [{"key": k, "value": make_value(k, round_), "partition": 0} for k in keys]
        )
        sent += [Rec(m.offset(), m.key(), m.value()) for m in delivered]
    assert [r.offset for r in sent] == sorted(r.offset for r in sent)
    return sent


# --- reading ---------------------------------------------------------------------------------
def watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    cons = clients.consumer(bootstrap)
    try:
        return cons.get_watermark_offsets(CTP(topic, 0), timeout=10)
    finally:
        cons.close()


def read_partition(bootstrap: str, topic: str, timeout_s: float = T) -> Snapshot:
    """Reads partition 0 with confluent-kafka from its log start until the consumer reports the
    end of the partition at the high watermark (offsets with holes must not stall it)."""
    cons = clients.consumer(bootstrap, extra={"enable.partition.eof": True})
    try:
        low, high = cons.get_watermark_offsets(CTP(topic, 0), timeout=10)
        if high == low:
            return Snapshot(low, high, [])
        cons.assign([CTP(topic, 0, OFFSET_BEGINNING)])
        got: list[Rec] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = cons.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    # The end event carries the offset reached; the record before the high
                    # watermark is in the active segment, which the cleaner never touches.
                    if msg.offset() >= high or (got and got[-1].offset >= high - 1):
                        return Snapshot(low, high, got)
                    continue
                raise AssertionError(f"consume error: {msg.error()}")
            got.append(Rec(msg.offset(), msg.key(), msg.value()))
        last = got[-1].offset if got else None
        raise AssertionError(
            f"{topic}: did not reach the high watermark {high} in {timeout_s}s: read {len(got)} "
            f"records, the last at offset {last} (stuck at a hole in the offsets?)"
        )
    finally:
        cons.close()


def stored_batches(bootstrap: str, topic: str) -> list[wire.BatchHeader]:
    """Every batch of partition 0 as the broker stores it, fetched raw from the log start to the
    high watermark, each fetch starting after the last batch of the one before."""
    low, _ = watermarks(bootstrap, topic)
    batches: list[wire.BatchHeader] = []
    offset = low
    with wire.Connection(bootstrap) as conn:
        for _ in range(10_000):
            error, high, data = conn.fetch(topic, 0, offset)
            assert error == wire.NONE, f"fetch at {offset}: error {error}"
            if offset >= high:
                return batches
            got = wire.split_batches(data)
            assert got, f"a fetch at offset {offset} (high watermark {high}) returned no batch"
            batches += got
            offset = got[-1].base_offset + got[-1].last_offset_delta + 1
    raise AssertionError(f"{topic}: more than 10,000 fetches to read the partition")


def latest_by_key(records: list[Rec]) -> dict[bytes | None, Rec]:
    latest: dict[bytes | None, Rec] = {}
    for r in sorted(records):
        latest[r.key] = r
    return latest


# --- waiting for the cleaner -----------------------------------------------------------------
def compacted(records_per_segment: int) -> Callable[[Snapshot], bool]:
    """Whether a snapshot is cleaned: below `high - records_per_segment` (surely sealed) no key
    appears twice."""

    def done(snap: Snapshot) -> bool:
        sealed = Counter(r.key for r in snap.records if r.offset < snap.high - records_per_segment)
        return all(n <= 1 for n in sealed.values())

    return done


def describe_state(snap: Snapshot, records_per_segment: int) -> str:
    sealed = Counter(r.key for r in snap.records if r.offset < snap.high - records_per_segment)
    twice = {k: n for k, n in sealed.items() if n > 1}
    return (
        f"watermarks ({snap.low}, {snap.high}), {len(snap.records)} records read, "
        f"keys more than once below offset {snap.high - records_per_segment}: "
        f"{dict(list(twice.items())[:5])}{' ...' if len(twice) > 5 else ''}"
    )


def wait_for(bootstrap: str, topic: str, done: Callable[[Snapshot], bool], what: Callable[[Snapshot], str],
             timeout_s: float = CLEAN_TIMEOUT_S, settle_s: float = 0.0) -> Snapshot:
    """Reads the partition again and again until `done` holds (failing at the deadline with
    `what` of the last read). With `settle_s`, `done` must also hold for two reads `settle_s`
    apart that give the same snapshot: the cleaner has nothing left to do."""
    deadline = time.monotonic() + timeout_s + settle_s
    previous: Snapshot | None = None
    while True:
        snap = read_partition(bootstrap, topic)
        if done(snap):
            if not settle_s or snap == previous:
                return snap
            previous = snap
            pause = settle_s
        else:
            previous = None
            pause = 0.5
        if time.monotonic() + pause > deadline:
            state = "reached but not yet stable" if previous is not None else "not reached"
            raise AssertionError(
                f"{topic}: not within {timeout_s}s (+{settle_s}s to settle), {state}: {what(snap)}"
            )
        time.sleep(pause)


def wait_until_compacted(bootstrap: str, topic: str, records_per_segment: int,
                         settle_s: float = 0.0, also: Callable[[Snapshot], bool] | None = None) -> Snapshot:
    """Waits until the partition is cleaned (see `compacted`) and `also` holds, if given."""
    is_compacted = compacted(records_per_segment)
    return wait_for(
        bootstrap,
        topic,
        lambda snap: is_compacted(snap) and (also is None or also(snap)),
        lambda snap: describe_state(snap, records_per_segment),
        settle_s=settle_s,
    )


# --- checking --------------------------------------------------------------------------------
def assert_compacted_view(
    snap: Snapshot, sent: list[Rec], tail: list[Rec], gone: frozenset = frozenset()
) -> None:
    """What the cleaner may leave: increasing offsets; every record exactly as produced at its
    offset; fewer records than produced; each key (but those in `gone`) ending on its latest
    record, its records in the order produced; the last batch produced (`tail`, in the active
    segment) whole; the log start and high watermark as before the cleaning."""
    offsets = [r.offset for r in snap.records]
    assert all(a < b for a, b in zip(offsets, offsets[1:])), f"offsets not increasing: {offsets[:50]}"
    produced = {r.offset: r for r in sent}
    changed = [r for r in snap.records if produced.get(r.offset) != r]
    assert not changed, f"records not as produced at their offsets: {changed[:3]}"
    assert len(snap.records) < len(sent), f"nothing was removed: {len(snap.records)} of {len(sent)}"
    expected_latest = {k: r for k, r in latest_by_key(sent).items() if k not in gone}
    assert latest_by_key(snap.records) == expected_latest
    for key in expected_latest:
        rounds = [round_of(r.value) for r in snap.records if r.key == key and r.value is not None]
        assert rounds == sorted(set(rounds)), f"{key!r}: rounds out of order or repeated: {rounds}"
    missing = [r for r in tail if r not in snap.records]
    assert not missing, f"records of the active segment removed: {missing[:3]}"
    assert (snap.low, snap.high) == (0, sent[-1].offset + 1)


# --- (a) the latest value of each key -------------------------------------------------------
def test_compaction_keeps_the_latest_value_of_each_key(spindle, topic_name):
    """20 keys x 50 rounds: once the cleaner has run, each key's older values in sealed segments
    are gone, its latest value is read, offsets keep their holes, and the high watermark (1000),
    the log start (0) and the last record (offset 999, in the active segment) are unchanged."""
    bootstrap = spindle.bootstrap
    create_compacted(bootstrap, topic_name)
    keys = key_names(20)

    sent = produce_rounds(bootstrap, topic_name, keys, 50)
    assert [r.offset for r in sent] == list(range(1000))

    snap = wait_until_compacted(bootstrap, topic_name, PLAIN_RECORDS_PER_SEGMENT)
    assert_compacted_view(snap, sent, tail=sent[-len(keys):])
    assert {k: round_of(r.value) for k, r in latest_by_key(snap.records).items()} == {k: 49 for k in keys}
    assert snap.records[-1].offset == 999
    assert len(snap.records) <= len(keys) + PLAIN_RECORDS_PER_SEGMENT
    assert watermarks(bootstrap, topic_name) == (0, 1000)


def test_a_quiet_partition_is_compacted_within_max_compaction_lag(spindle, topic_name):
    """With 1 GiB segments nothing would seal the records of a partition that stops receiving
    them; `max.compaction.lag.ms` rolls its active segment once that old (KIP-354), so they are
    compacted without another record written."""
    bootstrap = spindle.bootstrap
    create_compacted(bootstrap, topic_name, segment_bytes=str(1 << 30), max_compaction_lag_ms="1000")
    keys = key_names(5)
    sent = produce_rounds(bootstrap, topic_name, keys, 10)
    snap = wait_for(
        bootstrap,
        topic_name,
        lambda s: len(s.records) == len(keys),
        lambda s: f"{len(s.records)} records of {len(sent)}",
    )
    assert {k: round_of(r.value) for k, r in latest_by_key(snap.records).items()} == {k: 9 for k in keys}
    assert watermarks(bootstrap, topic_name) == (0, len(sent))


# --- (b) tombstones ---------------------------------------------------------------------------
GONE = key_names(5, "gone")
KEPT = key_names(5, "kept")
FILLER = key_names(20, "filler")
FILLER_ROUNDS = 12


def produce_tombstone_layout(bootstrap: str, topic: str) -> tuple[list[Rec], list[Rec]]:
    """A value for each GONE and KEPT key, then a tombstone for each GONE key, then FILLER_ROUNDS
    rounds of other keys, which roll the segments so that the tombstones lie in sealed ones.
    Returns (everything sent, the last round)."""
    sent = produce_records(bootstrap, topic, [(k, make_value(k, 0)) for k in GONE + KEPT])
    sent += produce_records(bootstrap, topic, [(k, None) for k in GONE])
    rounds = produce_rounds(bootstrap, topic, FILLER, FILLER_ROUNDS)
    return sent + rounds, rounds[-len(FILLER):]


def test_tombstones_are_removed_after_delete_retention_ms(spindle, topic_name):
    """With delete.retention.ms=0, a tombstone in a sealed segment goes at the next cleaning,
    with every earlier record of its key: the key is no longer read at all. Keys without a
    tombstone keep their latest value at its offset."""
    bootstrap = spindle.bootstrap
    create_compacted(bootstrap, topic_name, delete_retention_ms="0")
    sent, tail = produce_tombstone_layout(bootstrap, topic_name)

    snap = wait_for(
        bootstrap,
        topic_name,
        lambda s: not any(r.key in GONE for r in s.records),
        lambda s: f"records of tombstoned keys still read: {[r for r in s.records if r.key in GONE]}",
    )

    assert_compacted_view(snap, sent, tail=tail, gone=frozenset(GONE))
    kept = [r for r in snap.records if r.key in KEPT]
    assert kept == [r for r in sent if r.key in KEPT], "the keys without a tombstone lost their value"


def test_tombstones_stay_within_delete_retention_ms(spindle, topic_name):
    """With the default delete.retention.ms (a day), the cleaner removes the values a tombstone
    supersedes but keeps the tombstone: the key is read once, with a null value, at the
    tombstone's offset."""
    bootstrap = spindle.bootstrap
    create_compacted(bootstrap, topic_name)
    sent, tail = produce_tombstone_layout(bootstrap, topic_name)

    snap = wait_until_compacted(
        bootstrap,
        topic_name,
        PLAIN_RECORDS_PER_SEGMENT,
        also=lambda s: not any(r.key in GONE and r.value is not None for r in s.records),
    )

    assert_compacted_view(snap, sent, tail=tail)
    graves = [r for r in sent if r.key in GONE and r.value is None]
    assert [r for r in snap.records if r.key in GONE] == graves
    assert len(graves) == len(GONE)
    assert [r for r in snap.records if r.key in KEPT] == [r for r in sent if r.key in KEPT]


# --- (c) compressed batches -------------------------------------------------------------------
@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_are_compacted(spindle, topic_name, codec):
    """Batches compressed by the producer are cleaned too: the records read are as in (a), and
    every stored batch that holds records, rewritten or not, still carries the producer's codec,
    and every batch a valid CRC (a batch compaction emptied entirely is stored without records
    and without a codec: there is nothing to compress)."""
    bootstrap = spindle.bootstrap
    create_compacted(bootstrap, topic_name)
    keys = key_names(10)

    sent = produce_rounds(bootstrap, topic_name, keys, 80, producer_config={"compression.type": codec})

    snap = wait_until_compacted(bootstrap, topic_name, COMPRESSED_RECORDS_PER_SEGMENT)
    assert_compacted_view(snap, sent, tail=sent[-len(keys):])
    assert {k: round_of(r.value) for k, r in latest_by_key(snap.records).items()} == {k: 79 for k in keys}
    batches = stored_batches(bootstrap, topic_name)
    bad = [b for b in batches if b.magic != 2 or not b.crc_ok]
    assert not bad, f"batches with a wrong magic or CRC: {bad[:3]}"
    codecs = sorted({b.codec for b in batches if b.record_count > 0})
    assert codecs == [CODEC_IDS[codec]], f"stored with codecs {codecs}, produced with {codec}"
    assert all(b.codec == 0 for b in batches if b.record_count == 0)
    assert sum(b.record_count for b in batches) < len(sent)


# --- (d) every client reads the compacted partition to its end -----------------------------
def kafka_python_read(bootstrap: str, topic: str, timeout_s: float = T) -> list[tuple]:
    """(offset, key, value) of partition 0 from the beginning to the high watermark, with
    kafka-python."""
    cons = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=10_000,
        fetch_max_wait_ms=100,
    )
    try:
        tp = kafka.TopicPartition(topic, 0)
        cons.assign([tp])
        cons.seek_to_beginning(tp)
        high = cons.end_offsets([tp])[tp]
        got = []
        deadline = time.monotonic() + timeout_s
        while (position := cons.position(tp)) < high:
            assert time.monotonic() < deadline, (
                f"kafka-python stuck at offset {position} of {high} after {len(got)} records"
            )
            for batch in cons.poll(timeout_ms=200).values():
                got.extend(batch)
        return [(r.offset, r.key, r.value) for r in got]
    finally:
        cons.close()


def aiokafka_read(bootstrap: str, topic: str, timeout_s: float = T) -> list[tuple]:
    """(offset, key, value) of partition 0 from the beginning to the high watermark, with
    aiokafka."""

    async def scenario() -> list[tuple]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await consumer.start()
        try:
            tp = AIOTopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            high = (await consumer.end_offsets([tp]))[tp]
            got = []
            deadline = time.monotonic() + timeout_s
            while (position := await consumer.position(tp)) < high:
                assert time.monotonic() < deadline, (
                    f"aiokafka stuck at offset {position} of {high} after {len(got)} records"
                )
                for records in (await consumer.getmany(tp, timeout_ms=200)).values():
                    got += records
            return [(r.offset, r.key, r.value) for r in got]
        finally:
            await consumer.stop()

    return asyncio.run(asyncio.wait_for(scenario(), timeout_s * 2))


def kcat_read(bootstrap: str, topic: str) -> list[tuple]:
    """(offset, key, value) of partition 0 from the beginning to its end (-e), with kcat."""
    out = clients.kcat(bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-J")
    got = []
    for line in out.splitlines():
        if not line.strip():
            continue
        msg = json.loads(line)
        key, payload = msg.get("key"), msg.get("payload")
        got.append((
            msg["offset"],
            None if key is None else key.encode(),
            None if payload is None else payload.encode(),
        ))
    return got


def test_every_client_reads_the_same_compacted_partition(spindle, topic_name):
    """A compacted partition with holes in its offsets, plain and gzip batches, and two
    tombstones: kafka-python, aiokafka and kcat each read it from the beginning to the end
    (none stalls at a hole) and see exactly the (offset, key, value) list confluent-kafka reads."""
    bootstrap = spindle.bootstrap
    create_compacted(bootstrap, topic_name)
    keys = key_names(20)
    graves = key_names(2, "grave")

    sent = produce_records(bootstrap, topic_name, [(k, make_value(k, 0)) for k in graves])
    sent += produce_rounds(bootstrap, topic_name, keys, 25)
    sent += produce_records(bootstrap, topic_name, [(k, None) for k in graves])
    last = produce_rounds(
        bootstrap, topic_name, keys, 25, first_round=25, producer_config={"compression.type": "gzip"}
    )
    sent += last

    snap = wait_until_compacted(
        bootstrap,
        topic_name,
        max(COMPRESSED_RECORDS_PER_SEGMENT, PLAIN_RECORDS_PER_SEGMENT),
        settle_s=SETTLE_S,
        also=lambda s: not any(r.key in graves and r.value is not None for r in s.records),
    )
    assert_compacted_view(snap, sent, tail=last[-len(keys):])
    assert [(r.key, r.value) for r in snap.records if r.key in graves] == [(k, None) for k in graves]
    expected = [tuple(r) for r in snap.records]

    assert kafka_python_read(bootstrap, topic_name) == expected, "kafka-python"
    assert aiokafka_read(bootstrap, topic_name) == expected, "aiokafka"
    assert kcat_read(bootstrap, topic_name) == expected, "kcat"
    assert read_partition(bootstrap, topic_name) == snap, "the partition changed while the clients read it"


# --- retention with and without compaction ---------------------------------------------------
def test_retention_applies_only_with_compact_delete(spindle, topic_name):
    """Three topics get the same records: with `compact,delete`, retention.ms=1 deletes the
    sealed segments (the log start moves); with `compact` alone the same retention deletes
    nothing (the log start stays 0 and the latest records in sealed segments are read); and a
    `delete` topic without retention is never compacted (every offset is read)."""
    bootstrap = spindle.bootstrap
    both, alone, plain = f"{topic_name}-cd", f"{topic_name}-c", f"{topic_name}-d"
    retention = {"retention_ms": "1", "retention_bytes": str(SEGMENT_BYTES)}
    create_compacted(bootstrap, both, cleanup_policy="compact,delete", **retention)
    create_compacted(bootstrap, alone, **retention)
    create_compacted(bootstrap, plain, cleanup_policy="delete", retention_ms="-1")
    keys = key_names(20)
    sent = {topic: produce_rounds(bootstrap, topic, keys, 30) for topic in (both, alone, plain)}

    deadline = time.monotonic() + CLEAN_TIMEOUT_S
    while watermarks(bootstrap, both)[0] == 0:
        assert time.monotonic() < deadline, f"{both}: retention deleted nothing under compact,delete"
        time.sleep(0.5)

    snap = wait_until_compacted(bootstrap, alone, PLAIN_RECORDS_PER_SEGMENT, settle_s=SETTLE_S)
    assert_compacted_view(snap, sent[alone], tail=sent[alone][-len(keys):])
    tail_start = sent[alone][-len(keys)].offset
    assert any(r.offset < tail_start for r in snap.records), (
        "nothing read from the sealed segments of a compact topic: retention deleted them"
    )

    whole = read_partition(bootstrap, plain)
    assert whole.records == sent[plain], "a topic with cleanup.policy=delete was compacted"

    # By now retention has deleted every sealed segment of the compact,delete topic: what is
    # left is read from its log start to the end, the last round whole.
    remaining = read_partition(bootstrap, both)
    assert remaining.low > 0 and remaining.high == len(sent[both])
    assert all(r.offset >= remaining.low for r in remaining.records)
    assert set(sent[both][-len(keys):]) <= set(remaining.records)


# --- (e) administration -----------------------------------------------------------------------
def incremental_set(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()
        ],
    )
    clients.admin(bootstrap).incremental_alter_configs([resource])[resource].result(timeout=T)


def alter_whole(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    """AlterConfigs: the topic's whole configuration becomes `configs` (the rest: defaults)."""
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config=configs)
    clients.admin(bootstrap).alter_configs([resource], request_timeout=T)[resource].result(timeout=T)


def policies(value: str) -> set[str]:
    return {p.strip() for p in value.split(",")}


def test_compaction_configs_are_described_and_altered(spindle, topic_name):
    """DescribeConfigs shows cleanup.policy, delete.retention.ms and min.cleanable.dirty.ratio
    as created, and their defaults (delete, 86400000, 0.5) on a topic created without them;
    IncrementalAlterConfigs switches to `compact,delete` (also spelt `delete,compact`) keeping
    the other keys, AlterConfigs (which resets the keys it does not give) back to `compact` and
    to `compact,delete` again, and IncrementalAlterConfigs to `delete`."""
    bootstrap = spindle.bootstrap
    created = {
        "cleanup.policy": "compact",
        "delete.retention.ms": "3600000",
        "min.cleanable.dirty.ratio": "0.25",
    }
    clients.create_topic(bootstrap, topic_name, config=created)

    described = clients.describe_topic(bootstrap, topic_name)
    assert described.get("cleanup.policy") == "compact"
    assert described.get("delete.retention.ms") == "3600000"
    assert float(described.get("min.cleanable.dirty.ratio")) == 0.25

    plain = f"{topic_name}-plain"
    clients.create_topic(bootstrap, plain)
    defaults = clients.describe_topic(bootstrap, plain)
    assert defaults.get("cleanup.policy") == "delete"
    assert defaults.get("delete.retention.ms") == "86400000"
    assert float(defaults.get("min.cleanable.dirty.ratio")) == 0.5

    incremental_set(bootstrap, topic_name, {"cleanup.policy": "compact,delete"})
    described = clients.describe_topic(bootstrap, topic_name)
    assert policies(described["cleanup.policy"]) == {"compact", "delete"}
    assert described["delete.retention.ms"] == "3600000", "an incremental change must keep the other keys"
    assert float(described["min.cleanable.dirty.ratio"]) == 0.25

    alter_whole(bootstrap, topic_name, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
    described = clients.describe_topic(bootstrap, topic_name)
    assert described["cleanup.policy"] == "compact"
    assert float(described["min.cleanable.dirty.ratio"]) == 0.01
    assert described["delete.retention.ms"] == "86400000", "AlterConfigs resets the keys it does not give"

    incremental_set(bootstrap, topic_name, {"cleanup.policy": "delete,compact", "delete.retention.ms": "0"})
    described = clients.describe_topic(bootstrap, topic_name)
    assert policies(described["cleanup.policy"]) == {"compact", "delete"}
    assert described["delete.retention.ms"] == "0"

    alter_whole(bootstrap, topic_name, {"cleanup.policy": "compact,delete"})
    assert policies(clients.describe_topic(bootstrap, topic_name)["cleanup.policy"]) == {"compact", "delete"}

    incremental_set(bootstrap, topic_name, {"cleanup.policy": "delete"})
    assert clients.describe_topic(bootstrap, topic_name)["cleanup.policy"] == "delete"


INVALID = [
    ("cleanup.policy", "shred"),
    ("cleanup.policy", "compact,shred"),
    ("min.cleanable.dirty.ratio", "1.5"),
    ("min.cleanable.dirty.ratio", "-0.1"),
    ("min.cleanable.dirty.ratio", "half"),
    ("delete.retention.ms", "-5"),
    ("delete.retention.ms", "soon"),
]


@pytest.mark.parametrize("key,value", INVALID)
def test_invalid_compaction_configs_are_refused(spindle, topic_name, key, value):
    """A wrong value is refused with INVALID_CONFIG and a message naming the key, by
    CreateTopics (no topic is created), AlterConfigs and IncrementalAlterConfigs (the topic
    keeps its configuration), and the server goes on serving."""
    bootstrap = spindle.bootstrap
    admin = clients.admin(bootstrap)

    def refusal(future) -> KafkaError:
        with pytest.raises(KafkaException) as failure:
            future.result(timeout=T)
        return failure.value.args[0]

    bad = f"{topic_name}-bad"
    error = refusal(admin.create_topics([NewTopic(bad, 1, 1, config={**COMPACTED, key: value})],
                                        request_timeout=T)[bad])
    assert error.code() == INVALID_CONFIG, error
    assert key in error.str(), f"the message does not name {key}: {error.str()}"
    assert bad not in admin.list_topics(timeout=10).topics

    create_compacted(bootstrap, topic_name)
    before = clients.describe_topic(bootstrap, topic_name)
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic_name,
        incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)],
    )
    error = refusal(admin.incremental_alter_configs([resource])[resource])
    assert error.code() == INVALID_CONFIG, error
    assert key in error.str(), f"the message does not name {key}: {error.str()}"
    resource = ConfigResource(ResourceType.TOPIC, topic_name, set_config={**COMPACTED, key: value})
    error = refusal(admin.alter_configs([resource], request_timeout=T)[resource])
    assert error.code() == INVALID_CONFIG, error
    assert key in error.str(), f"the message does not name {key}: {error.str()}"
    assert clients.describe_topic(bootstrap, topic_name) == before

    sent = produce_records(bootstrap, topic_name, [(b"k", b"still serving")])
    assert read_partition(bootstrap, topic_name).records == sent


def test_a_record_without_a_key_is_refused_by_a_compacted_topic(spindle, topic_name):
    """As in Kafka, a compacted topic refuses a record without a key (compaction could never
    tell which to keep) with INVALID_RECORD; keyed records in the same producer's next request,
    and keyless records to a `delete` topic, are stored."""
    bootstrap = spindle.bootstrap
    create_compacted(bootstrap, topic_name)
    prod = clients.producer(bootstrap, {"acks": "all", "retries": 0})
    [(err, _)] = clients.deliver(prod, topic_name, [{"key": None, "value": b"anonymous", "partition": 0}])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    [stored] = produce_records(bootstrap, topic_name, [(b"k", b"keyed")])
    assert stored.offset == 0, "the refused record took no offset"
    plain = f"{topic_name}-plain"
    clients.create_topic(bootstrap, plain)
    clients.produce_sync(prod, plain, [{"key": None, "value": b"anonymous", "partition": 0}])


# --- (f) restarts -----------------------------------------------------------------------------
def test_compacted_content_survives_a_restart(fresh_spindle, topic_name):
    """After the cleaner has run, a clean stop (SIGTERM) and a start on the same data dir give
    the same records, offsets and watermarks; the configs are kept and records produced after
    the restart are cleaned in their turn."""
    bootstrap = fresh_spindle.bootstrap
    create_compacted(bootstrap, topic_name)
    keys = key_names(20)
    sent = produce_rounds(bootstrap, topic_name, keys, 50)
    before = wait_until_compacted(bootstrap, topic_name, PLAIN_RECORDS_PER_SEGMENT, settle_s=SETTLE_S)
    assert_compacted_view(before, sent, tail=sent[-len(keys):])

    assert fresh_spindle.restart(signal.SIGTERM) == 0

    clients.wait_for_topic(bootstrap, topic_name, 1)
    assert read_partition(bootstrap, topic_name) == before
    described = clients.describe_topic(bootstrap, topic_name)
    assert described["cleanup.policy"] == "compact"
    assert float(described["min.cleanable.dirty.ratio"]) == 0.01

    more = produce_rounds(bootstrap, topic_name, keys, 20, first_round=50)
    after = wait_until_compacted(bootstrap, topic_name, PLAIN_RECORDS_PER_SEGMENT)
    assert_compacted_view(after, sent + more, tail=more[-len(keys):])
    assert {k: round_of(r.value) for k, r in latest_by_key(after.records).items()} == {k: 69 for k in keys}


def assert_acknowledged_latest_readable(
    snap: Snapshot, acked: dict[int, tuple[bytes, bytes]], context: str
) -> None:
    """Every record read at an acknowledged offset is the one acknowledged there, and each key's
    latest acknowledged record is read, or a later record of the key is (which may supersede it)."""
    wrong = [
        (r, acked[r.offset])
        for r in snap.records
        if r.offset in acked and (r.key, r.value) != acked[r.offset]
    ]
    assert not wrong, f"{context}: records changed at acknowledged offsets: {wrong[:3]}"
    latest_acked: dict[bytes, int] = {}
    for offset, (key, _) in acked.items():
        latest_acked[key] = max(offset, latest_acked.get(key, -1))
    latest_read = {k: r.offset for k, r in latest_by_key(snap.records).items()}
    lost = {k: o for k, o in latest_acked.items() if latest_read.get(k, -1) < o}
    assert not lost, (
        f"{context}: latest acknowledged records lost (key: offset): {dict(list(lost.items())[:5])}"
    )


def test_acknowledged_latest_values_survive_kills_during_compaction(fresh_spindle, topic_name):
    """A producer (acks=all) streams rounds of 10 keys into a compacted topic that the cleaner
    works on, and the server is SIGKILLed three times at random moments: after each restart,
    and once the cleaner has run again, every key's latest acknowledged value is still read."""
    seed = int(os.environ.get("SPINDLE_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    bootstrap = fresh_spindle.bootstrap
    create_compacted(bootstrap, topic_name)
    keys = key_names(10)
    acked: dict[int, tuple[bytes, bytes]] = {}

    def on_delivery(err, msg):
        if err is None:
            acked[msg.offset()] = (msg.key(), msg.value())

    round_ = 0
    for kill in range(3):
        # Batches of at most 2 KiB, also when the backlog of a restart is sent: the active
        # segment then holds at most PLAIN_RECORDS_PER_SEGMENT records, as the final wait assumes.
        prod = clients.producer(bootstrap, {"acks": "all", "batch.size": 2048})
        # Long enough for segments to seal and the cleaner to start on them (it checks every ~2 s).
        streaming_until = time.monotonic() + rng.uniform(2.5, 4.5)
        while time.monotonic() < streaming_until:
            for key in keys:
                prod.produce(topic_name, key=key, value=make_value(key, round_), partition=0,
                             on_delivery=on_delivery)
            round_ += 1
            prod.poll(0)
            time.sleep(0.02)
        assert fresh_spindle.restart(signal.SIGKILL) == -signal.SIGKILL
        # What was in flight is retried against the restarted server or times out: either is
        # fine, only what was acknowledged must be there.
        prod.flush(30)
        assert_acknowledged_latest_readable(
            read_partition(bootstrap, topic_name), acked, f"seed {seed}, after kill {kill + 1}"
        )
    assert len(acked) > 500, f"seed {seed}: only {len(acked)} records acknowledged"

    snap = wait_until_compacted(bootstrap, topic_name, PLAIN_RECORDS_PER_SEGMENT)
    assert_acknowledged_latest_readable(snap, acked, f"seed {seed}, after the cleaning")
    assert len(snap.records) < len(acked), f"seed {seed}: nothing was compacted"
    assert snap.low == 0
