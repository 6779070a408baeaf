"""Kafka transactions on one node, as librdkafka (and kafka-python) use them.

A transactional producer's records become visible to read_committed consumers only when its
transaction commits, and never when it aborts; read_uncommitted consumers see everything. Fetch
stops read_committed consumers at the last stable offset (the first offset of the oldest open
transaction) and hands them the aborted transactions, which librdkafka drops. Offsets sent with
send_offsets_to_transaction become the group's committed offsets only on commit. A second
producer with the same transactional.id fences the first and aborts its open transaction; a
transaction left open past the producer's transaction.timeout.ms is aborted by the server. All
of it survives a SIGKILL and restart.

The commit/abort marker (a control batch) of a transaction takes one offset in each partition
it wrote to, as in Kafka; librdkafka never hands control records to the application.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
import urllib.request

import kafka.errors
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as CTP

import clients
import wire
from clients import OP_TIMEOUT_S
from conftest import _run
from spindle_process import Spindle, free_port, spindle_binary

# The errors librdkafka reports to a producer whose epoch was bumped by another instance.
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}

# Kafka's error code and the record batch attribute bit.
INVALID_TXN_STATE = 48
TRANSACTIONAL = 0x10

READ_COMMITTED = "read_committed"
READ_UNCOMMITTED = "read_uncommitted"


def txn_producer(bootstrap: str, transactional_id: str, extra: dict | None = None):
    """A librdkafka producer with `transactional.id`, after init_transactions()."""
    prod = clients.producer(bootstrap, {"transactional.id": transactional_id, **(extra or {})})
    prod.init_transactions(OP_TIMEOUT_S)
    return prod


def produce_in_txn(prod, topic: str, values: list[bytes], partition: int = 0) -> list[int]:
    """Produces `values` to one partition inside the producer's open transaction and waits for
    every delivery report (all must succeed); returns their offsets."""
    delivered = clients.produce_sync(prod, topic, [{"value": v, "partition": partition} for v in values])
    return [m.offset() for m in delivered]


@contextlib.contextmanager
def reader(bootstrap: str, partitions: list[tuple[str, int]], isolation: str = READ_COMMITTED):
    """A consumer outside any group, assigned `partitions` from offset 0, closed afterwards."""
    cons = clients.consumer(bootstrap, extra={"isolation.level": isolation})
    try:
        cons.assign([CTP(topic, p, 0) for topic, p in partitions])
        yield cons
    finally:
        cons.close()


def read_exactly(
    bootstrap: str,
    partitions: list[tuple[str, int]],
    count: int,
    isolation: str = READ_COMMITTED,
    timeout_s: float = OP_TIMEOUT_S,
) -> list[tuple[str, int, int, bytes]]:
    """Reads `partitions` from the beginning: exactly `count` records must arrive, then nothing
    more. Returns (topic, partition, offset, value) sorted by partition and offset."""
    with reader(bootstrap, partitions, isolation) as cons:
        got = clients.consume(cons, count, timeout_s)
        clients.assert_no_more(cons, quiet_s=1.0)
    return sorted((m.topic(), m.partition(), m.offset(), m.value()) for m in got)


def values_of(records: list[tuple[str, int, int, bytes]]) -> list[bytes]:
    return [value for _, _, _, value in records]


def high_watermark(bootstrap: str, topic: str, partition: int, isolation: str) -> int:
    """The end offset ListOffsets reports for `isolation`: the high watermark for
    read_uncommitted, the last stable offset for read_committed (as in Kafka)."""
    cons = clients.consumer(bootstrap, extra={"isolation.level": isolation})
    try:
        _, high = cons.get_watermark_offsets(CTP(topic, partition), timeout=10)
    finally:
        cons.close()
    return high


def describe_partitions(bootstrap: str, topic: str) -> list[dict]:
    """`spindle topic describe --json`'s partitions: what an operator sees."""
    out = subprocess.run(
        [str(spindle_binary()), "topic", "describe", topic, "--json", "--bootstrap", bootstrap],
        capture_output=True,
        check=True,
        text=True,
        timeout=OP_TIMEOUT_S,
    ).stdout
    return json.loads(out)["partitions"]


def is_fenced(err: KafkaError) -> bool:
    return err.fatal() or err.code() in FENCED


def test_committed_transaction_across_partitions_and_topics_is_seen_whole(spindle, topic_name):
    """One transaction writes to both partitions of a topic and to a second topic: every delivery
    report succeeds, a read_committed consumer sees all of its records at their delivered
    offsets, and each partition's high watermark is one past its last record (the commit marker)."""
    bootstrap = spindle.bootstrap
    other = f"{topic_name}-b"
    clients.create_topic(bootstrap, topic_name, partitions=2)
    clients.create_topic(bootstrap, other)
    prod = txn_producer(bootstrap, f"{topic_name}-txn")

    layout = ((topic_name, 0, 5), (topic_name, 1, 4), (other, 0, 3))
    prod.begin_transaction()
    expected = []
    for topic, partition, count in layout:
        values = [f"{'b' if topic == other else 'a'}-p{partition}-{i}".encode() for i in range(count)]
        offsets = produce_in_txn(prod, topic, values, partition)
        assert offsets == list(range(count)), f"{topic}/{partition}: delivered at {offsets}"
        expected += [(topic, partition, o, v) for o, v in zip(offsets, values)]
    prod.commit_transaction(OP_TIMEOUT_S)

    partitions = [(topic_name, 0), (topic_name, 1), (other, 0)]
    got = read_exactly(bootstrap, partitions, len(expected))
    assert got == sorted(expected), "read_committed consumer did not see the committed transaction whole"
    for topic, partition, count in layout:
        high = high_watermark(bootstrap, topic, partition, READ_UNCOMMITTED)
        assert high == count + 1, (
            f"{topic}/{partition}: high watermark {high}, expected {count + 1} (records + commit marker)"
        )


def test_aborted_transaction_is_hidden_from_read_committed_only(spindle, topic_name):
    """An aborted transaction followed by a committed one on the same partition: read_committed
    sees only the committed records (it reads past the aborted ones), read_uncommitted sees both,
    each at the offset its delivery report gave."""
    bootstrap = spindle.bootstrap
    clients.create_topic(bootstrap, topic_name)
    prod = txn_producer(bootstrap, f"{topic_name}-txn")
    aborted = [f"aborted-{i}".encode() for i in range(3)]
    committed = [f"committed-{i}".encode() for i in range(3)]

    prod.begin_transaction()
    aborted_offsets = produce_in_txn(prod, topic_name, aborted)
    prod.abort_transaction(OP_TIMEOUT_S)
    prod.begin_transaction()
    committed_offsets = produce_in_txn(prod, topic_name, committed)
    prod.commit_transaction(OP_TIMEOUT_S)

    assert aborted_offsets == [0, 1, 2], aborted_offsets
    # Offset 3 is the abort marker.
    assert committed_offsets == [4, 5, 6], committed_offsets
    got = read_exactly(bootstrap, [(topic_name, 0)], len(committed))
    assert got == [(topic_name, 0, o, v) for o, v in zip(committed_offsets, committed)], (
        f"read_committed consumer saw {values_of(got)}"
    )
    everything = read_exactly(bootstrap, [(topic_name, 0)], len(aborted) + len(committed), READ_UNCOMMITTED)
    assert everything == [
        (topic_name, 0, o, v)
        for o, v in zip(aborted_offsets + committed_offsets, aborted + committed)
    ], f"read_uncommitted consumer saw {values_of(everything)}"


def test_read_committed_stops_at_the_last_stable_offset_until_commit(spindle, topic_name):
    """While a transaction is open (its records produced and acknowledged), a read_committed
    consumer gets the records before it and then nothing: its position stays at the transaction's
    first offset and ListOffsets reports that offset as its end. read_uncommitted gets the open
    transaction's records at once. After the commit the read_committed consumer gets them."""
    bootstrap = spindle.bootstrap
    clients.create_topic(bootstrap, topic_name)
    prod = txn_producer(bootstrap, f"{topic_name}-txn")
    before = [b"before-0", b"before-1"]
    plain = clients.producer(bootstrap)
    clients.produce_sync(plain, topic_name, [{"value": v, "partition": 0} for v in before])
    pending = [f"pending-{i}".encode() for i in range(3)]

    prod.begin_transaction()
    pending_offsets = produce_in_txn(prod, topic_name, pending)
    assert pending_offsets == [2, 3, 4], pending_offsets

    with reader(bootstrap, [(topic_name, 0)]) as committed_reader:
        got = clients.consume(committed_reader, len(before))
        assert [m.value() for m in got] == before
        clients.assert_no_more(committed_reader, quiet_s=2.0)
        [position] = committed_reader.position([CTP(topic_name, 0)])
        assert position.offset == 2, f"read_committed position {position.offset}, expected 2 (the LSO)"
        assert high_watermark(bootstrap, topic_name, 0, READ_COMMITTED) == 2, (
            "ListOffsets(latest, read_committed) must report the last stable offset"
        )
        assert high_watermark(bootstrap, topic_name, 0, READ_UNCOMMITTED) == 5
        [described] = describe_partitions(bootstrap, topic_name)
        assert (described["end_offset"], described["stable_offset"]) == (5, 2), described

        everything = read_exactly(bootstrap, [(topic_name, 0)], len(before) + len(pending), READ_UNCOMMITTED)
        assert values_of(everything) == before + pending

        prod.commit_transaction(OP_TIMEOUT_S)

        after = clients.consume(committed_reader, len(pending))
        assert [(m.offset(), m.value()) for m in after] == list(zip(pending_offsets, pending))
        clients.assert_no_more(committed_reader, quiet_s=0.5)
    # The commit marker took offset 5; nothing is open any more.
    assert high_watermark(bootstrap, topic_name, 0, READ_COMMITTED) == 6


def group_offsets(cons, topic: str, partitions: int) -> dict[int, int]:
    committed = cons.committed([CTP(topic, p) for p in range(partitions)], timeout=OP_TIMEOUT_S)
    return {tp.partition: tp.offset for tp in committed}


def test_consume_transform_produce_commits_offsets_only_with_the_transaction(spindle, topic_name):
    """A group consumer reads input records, a transactional producer writes one output per input
    and sends the consumer's positions with send_offsets_to_transaction: on commit the group's
    committed offsets are those positions. A second round that aborts leaves them unchanged, its
    outputs stay hidden, and a new member of the group reads the second round's inputs again."""
    bootstrap = spindle.bootstrap
    partitions = 2
    output = f"{topic_name}-out"
    group = f"{topic_name}-group"
    clients.create_topic(bootstrap, topic_name, partitions=partitions)
    clients.create_topic(bootstrap, output)
    prod = txn_producer(bootstrap, f"{topic_name}-txn")
    plain = clients.producer(bootstrap)

    def write_inputs(round_no: int, per_partition: int) -> set[bytes]:
        messages = [
            {"value": f"r{round_no}-p{p}-{i}".encode(), "partition": p}
            for p in range(partitions)
            for i in range(per_partition)
        ]
        clients.produce_sync(plain, topic_name, messages)
        return {m["value"] for m in messages}

    def transform(cons, inputs: set[bytes], commit: bool) -> dict[int, int]:
        got = clients.consume(cons, len(inputs), timeout_s=30)
        assert {m.value() for m in got} == inputs
        prod.begin_transaction()
        produce_in_txn(prod, output, [b"out-" + m.value() for m in got])
        positions = cons.position(cons.assignment())
        prod.send_offsets_to_transaction(positions, cons.consumer_group_metadata(), OP_TIMEOUT_S)
        if commit:
            prod.commit_transaction(OP_TIMEOUT_S)
        else:
            prod.abort_transaction(OP_TIMEOUT_S)
        return {tp.partition: tp.offset for tp in positions}

    first_inputs = write_inputs(1, 5)
    cons = clients.consumer(bootstrap, group)
    try:
        cons.subscribe([topic_name])
        positions = transform(cons, first_inputs, commit=True)
        assert positions == {p: 5 for p in range(partitions)}, positions
        assert group_offsets(cons, topic_name, partitions) == positions, (
            "the committed transaction's offsets are not the group's committed offsets"
        )

        second_inputs = write_inputs(2, 3)
        aborted_positions = transform(cons, second_inputs, commit=False)
        assert aborted_positions == {p: 8 for p in range(partitions)}, aborted_positions
        assert group_offsets(cons, topic_name, partitions) == positions, (
            "an aborted transaction changed the group's committed offsets"
        )
    finally:
        cons.close()

    outputs = read_exactly(bootstrap, [(output, 0)], len(first_inputs))
    assert set(values_of(outputs)) == {b"out-" + v for v in first_inputs}, "aborted outputs visible"

    again = clients.consumer(bootstrap, group)
    try:
        again.subscribe([topic_name])
        replayed = clients.consume(again, len(second_inputs), timeout_s=30)
        assert {m.value() for m in replayed} == second_inputs, (
            "a new member did not resume from the offsets of the committed transaction"
        )
        clients.assert_no_more(again, quiet_s=0.5)
    finally:
        again.close()


def test_a_consumer_asking_for_stable_offsets_waits_for_the_transaction_holding_them(spindle, topic_name):
    """KIP-447: while a transaction holds offsets for a group, a read_committed consumer's
    OffsetFetch asks for stable offsets and is answered UNSTABLE_OFFSET_COMMIT, which librdkafka
    retries; once the transaction commits it sees the transaction's offset, not the older
    commit it would otherwise have started from."""
    clients.create_topic(spindle.bootstrap, topic_name, partitions=1)
    group = f"{topic_name}-group"
    setter = clients.consumer(spindle.bootstrap, group)
    setter.commit(offsets=[CTP(topic_name, 0, 2)], asynchronous=False)
    meta = setter.consumer_group_metadata()
    prod = txn_producer(spindle.bootstrap, f"{topic_name}-txn")
    prod.begin_transaction()
    produce_in_txn(prod, topic_name, [b"out"])
    prod.send_offsets_to_transaction([CTP(topic_name, 0, 5)], meta, OP_TIMEOUT_S)
    setter.close()

    committer = threading.Timer(2.0, lambda: prod.commit_transaction(OP_TIMEOUT_S))
    committer.start()
    reader = clients.consumer(spindle.bootstrap, group, {"isolation.level": READ_COMMITTED})
    try:
        started = time.monotonic()
        [committed] = reader.committed([CTP(topic_name, 0)], timeout=OP_TIMEOUT_S)
        waited = time.monotonic() - started
    finally:
        committer.join()
        reader.close()
    assert committed.offset == 5, f"saw offset {committed.offset} after {waited:.1f} s"
    assert waited >= 1.0, f"answered after {waited:.1f} s, before the transaction committed"


def test_a_transactional_batch_for_a_partition_outside_the_transaction_is_refused(spindle, topic_name):
    """KIP-890's check: a transactional batch for a partition its producer's open transaction
    did not add -- as a batch that arrives late, after its transaction ended, is -- is refused
    INVALID_TXN_STATE instead of opening a transaction no marker would ever close, which would
    hold every read_committed consumer of the partition at it."""
    clients.create_topic(spindle.bootstrap, topic_name)
    txn_id = f"{topic_name}-txn"
    with wire.Connection(spindle.bootstrap) as conn:
        error, producer_id, epoch = conn.init_producer_id(txn_id)
        assert error == 0, error
        batch = wire.record_batch(
            [wire.Record(value=b"late")],
            producer_id=producer_id,
            producer_epoch=epoch,
            base_sequence=0,
            attributes=TRANSACTIONAL,
        )
        [(error, _)] = conn.produce(topic_name, {0: batch}, transactional_id=txn_id).values()
    assert error == INVALID_TXN_STATE, error
    assert high_watermark(spindle.bootstrap, topic_name, 0, READ_COMMITTED) == 0
    assert high_watermark(spindle.bootstrap, topic_name, 0, READ_UNCOMMITTED) == 0, "nothing stored"


def test_second_producer_with_the_same_transactional_id_fences_the_first(spindle, topic_name):
    """Producer A begins a transaction and produces; producer B inits with the same
    transactional.id. A's commit then fails with a fatal (fenced) error, A's records stay hidden
    from read_committed consumers (its transaction was aborted), and B commits a transaction that
    is visible."""
    bootstrap = spindle.bootstrap
    clients.create_topic(bootstrap, topic_name)
    transactional_id = f"{topic_name}-txn"
    first = txn_producer(bootstrap, transactional_id)
    first.begin_transaction()
    first_values = [f"fenced-{i}".encode() for i in range(3)]
    produce_in_txn(first, topic_name, first_values)

    second = txn_producer(bootstrap, transactional_id)

    try:
        first.commit_transaction(OP_TIMEOUT_S)
    except KafkaException as e:
        error = e.args[0]
    else:
        raise AssertionError("the fenced producer committed its transaction")
    assert is_fenced(error), f"expected a fatal fenced error, got {error}"

    second_values = [f"winner-{i}".encode() for i in range(2)]
    second.begin_transaction()
    produce_in_txn(second, topic_name, second_values)
    second.commit_transaction(OP_TIMEOUT_S)

    got = read_exactly(bootstrap, [(topic_name, 0)], len(second_values))
    assert values_of(got) == second_values, f"read_committed consumer saw {values_of(got)}"
    count = len(first_values) + len(second_values)
    everything = read_exactly(bootstrap, [(topic_name, 0)], count, READ_UNCOMMITTED)
    assert values_of(everything) == first_values + second_values, "the fenced records were not stored"


def test_committed_and_aborted_transactions_survive_sigkill(fresh_spindle, topic_name):
    """Commit, abort, commit (on two partitions), nothing left open, then SIGKILL and restart: a
    read_committed consumer sees exactly the committed records, read_uncommitted all of them, and
    a new producer with the same transactional.id inits and commits a visible transaction."""
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=2)
    transactional_id = f"{topic_name}-txn"
    prod = txn_producer(bootstrap, transactional_id)
    committed: list[tuple[str, int, int, bytes]] = []
    everything: list[tuple[str, int, int, bytes]] = []
    for txn, commit in (("t1", True), ("t2", False), ("t3", True)):
        prod.begin_transaction()
        for partition in range(2):
            values = [f"{txn}-p{partition}-{i}".encode() for i in range(3)]
            offsets = produce_in_txn(prod, topic_name, values, partition)
            records = [(topic_name, partition, o, v) for o, v in zip(offsets, values)]
            everything += records
            if commit:
                committed += records
        if commit:
            prod.commit_transaction(OP_TIMEOUT_S)
        else:
            prod.abort_transaction(OP_TIMEOUT_S)
    del prod

    assert fresh_spindle.restart(signal.SIGKILL) == -signal.SIGKILL
    clients.wait_for_topic(bootstrap, topic_name, 2)

    partitions = [(topic_name, 0), (topic_name, 1)]
    got = read_exactly(bootstrap, partitions, len(committed))
    assert got == sorted(committed), f"after the restart read_committed saw {values_of(got)}"
    assert read_exactly(bootstrap, partitions, len(everything), READ_UNCOMMITTED) == sorted(everything)

    again = txn_producer(bootstrap, transactional_id)
    again.begin_transaction()
    offsets = produce_in_txn(again, topic_name, [b"after-restart"])
    again.commit_transaction(OP_TIMEOUT_S)
    got = read_exactly(bootstrap, partitions, len(committed) + 1)
    assert got == sorted(committed + [(topic_name, 0, offsets[0], b"after-restart")])


def test_transaction_left_open_past_its_timeout_is_aborted_by_the_server(spindle, topic_name):
    """A producer with transaction.timeout.ms=3000 produces in a transaction and is then
    abandoned. Another producer commits a transaction after it on the same partition: a
    read_committed consumer gets nothing while the abandoned transaction may still be open, then,
    once the server has aborted it, exactly the later committed records. The abandoned producer
    was fenced: its commit fails."""
    bootstrap = spindle.bootstrap
    timeout_ms = 3000
    clients.create_topic(bootstrap, topic_name)
    # librdkafka requires message.timeout.ms <= transaction.timeout.ms and
    # socket.timeout.ms <= transaction.timeout.ms + 100.
    abandoned = txn_producer(
        bootstrap,
        f"{topic_name}-abandoned",
        {
            "transaction.timeout.ms": timeout_ms,
            "message.timeout.ms": timeout_ms,
            "socket.timeout.ms": timeout_ms,
        },
    )
    live = txn_producer(bootstrap, f"{topic_name}-live")

    abandoned.begin_transaction()
    txn_started = time.monotonic()
    abandoned_values = [b"abandoned-0", b"abandoned-1"]
    assert produce_in_txn(abandoned, topic_name, abandoned_values) == [0, 1]

    live_values = [b"live-0", b"live-1"]
    live.begin_transaction()
    live_offsets = produce_in_txn(live, topic_name, live_values)
    live.commit_transaction(OP_TIMEOUT_S)

    with reader(bootstrap, [(topic_name, 0)]) as cons:
        # The server cannot abort the transaction before its timeout, so the committed records
        # behind it stay invisible until then.
        quiet_s = txn_started + timeout_ms / 2000 - time.monotonic()
        if quiet_s > 0:
            clients.assert_no_more(cons, quiet_s=quiet_s)
        got = clients.consume(cons, len(live_values), timeout_s=30)
        waited = time.monotonic() - txn_started
        assert [(m.offset(), m.value()) for m in got] == list(zip(live_offsets, live_values)), (
            f"after {waited:.1f}s read_committed saw {[m.value() for m in got]}"
        )
        clients.assert_no_more(cons, quiet_s=0.5)

    everything = read_exactly(bootstrap, [(topic_name, 0)], 4, READ_UNCOMMITTED)
    assert values_of(everything) == abandoned_values + live_values

    try:
        abandoned.commit_transaction(OP_TIMEOUT_S)
    except KafkaException as e:
        error = e.args[0]
    else:
        raise AssertionError("a transaction the server aborted on timeout was committed")
    assert is_fenced(error) or error.txn_requires_abort() or error.code() == KafkaError.INVALID_TXN_STATE, (
        f"expected the timed-out producer to be fenced, got {error}"
    )


def read_to_end(bootstrap: str, topic: str, isolation: str, timeout_s: float = OP_TIMEOUT_S) -> list[tuple]:
    """Every record of partition 0 up to its end for `isolation`, as (offset, key, value)."""
    end = high_watermark(bootstrap, topic, 0, isolation)
    got = []
    with reader(bootstrap, [(topic, 0)], isolation) as cons:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (not got or got[-1][0] < end - 1):
            msg = cons.poll(0.2)
            if msg is None or msg.error():
                continue
            got.append((msg.offset(), msg.key(), msg.value()))
    assert got and got[-1][0] == end - 1, f"read {len(got)} records, not up to offset {end - 1}"
    return got


def test_compaction_keeps_the_committed_value_over_an_aborted_one(spindle, topic_name):
    """In a compacted topic, an aborted transaction's newer value of a key must not replace the
    committed one: compaction drops the aborted record and keeps the committed value, so a
    read_committed consumer (a Kafka Streams store restoring from its changelog) still finds
    the key."""
    clients.create_topic(
        spindle.bootstrap,
        topic_name,
        partitions=1,
        config={"cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"},
    )
    prod = txn_producer(spindle.bootstrap, f"{topic_name}-txn")
    for value, commit in ((b"committed", True), (b"aborted", False)):
        prod.begin_transaction()
        clients.produce_sync(prod, topic_name, [{"key": b"k", "value": value, "partition": 0}])
        prod.commit_transaction(OP_TIMEOUT_S) if commit else prod.abort_transaction(OP_TIMEOUT_S)
    # Plain records of other keys after them, so that both lie in sealed segments.
    filler = clients.producer(spindle.bootstrap)
    clients.produce_sync(
        filler,
        topic_name,
        [{"key": b"f%d" % (i % 10), "value": b"x" * 200, "partition": 0} for i in range(120)],
    )
    deadline = time.monotonic() + 45
    while True:
        records = read_to_end(spindle.bootstrap, topic_name, READ_UNCOMMITTED)
        if not any(value == b"aborted" for _, _, value in records):
            break
        assert time.monotonic() < deadline, "compaction did not remove the aborted record in 45 s"
        time.sleep(1)
    committed = [value for _, key, value in read_to_end(spindle.bootstrap, topic_name, READ_COMMITTED) if key == b"k"]
    assert committed == [b"committed"], committed


def within(timeout_s: float, what: str, call):
    """Runs `call` on a daemon thread and fails if it does not return within `timeout_s`
    (kafka-python's commit_transaction has no timeout of its own)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as e:  # re-raised below, in the test's thread
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"{what} did not return within {timeout_s}s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture
def metered_spindle(request, tmp_path):
    """A server of this test's own whose admin endpoint (/metrics) listens on a known port."""
    port = free_port()
    server = Spindle(base=tmp_path / "spindle", config_toml=f'[admin]\nlisten = "127.0.0.1:{port}"\n')
    server.admin_port = port
    yield from _run(request, server)


def metric_total(port: int, name: str) -> float:
    """The sum over every shard of counter `name` in the server's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_the_coordinator_counts_commits_aborts_and_timeouts(metered_spindle, topic_name):
    """/metrics counts the transactions the coordinators ended: one commit, one abort asked for
    by the producer, and one abort of a transaction left open past its timeout."""
    bootstrap, port = metered_spindle.bootstrap, metered_spindle.admin_port
    clients.create_topic(bootstrap, topic_name)
    prod = txn_producer(bootstrap, f"{topic_name}-txn")
    for commit in (True, False):
        prod.begin_transaction()
        produce_in_txn(prod, topic_name, [b"v"])
        prod.commit_transaction(OP_TIMEOUT_S) if commit else prod.abort_transaction(OP_TIMEOUT_S)
    short = {"transaction.timeout.ms": 3000, "message.timeout.ms": 3000, "socket.timeout.ms": 3000}
    abandoned = txn_producer(bootstrap, f"{topic_name}-abandoned", short)
    abandoned.begin_transaction()
    produce_in_txn(abandoned, topic_name, [b"left"])
    deadline = time.monotonic() + 30
    while metric_total(port, "spindle_transactions_timed_out_total") < 1:
        assert time.monotonic() < deadline, "the open transaction was not aborted within 30 s"
        time.sleep(0.5)
    assert metric_total(port, "spindle_transactions_committed_total") == 1
    assert metric_total(port, "spindle_transactions_aborted_total") == 2
    assert metric_total(port, "spindle_transactions_timed_out_total") == 1


def test_kafka_python_committed_transaction_is_read_by_librdkafka(spindle, topic_name):
    """kafka-python's transactional producer commits a transaction; a librdkafka read_committed
    consumer reads exactly its records."""
    import kafka
    from kafka import KafkaProducer

    if not hasattr(KafkaProducer, "init_transactions"):
        pytest.skip(f"kafka-python {kafka.__version__} has no transactional producer")
    clients.create_topic(spindle.bootstrap, topic_name)
    prod = KafkaProducer(
        bootstrap_servers=spindle.bootstrap,
        transactional_id=f"{topic_name}-txn",
        request_timeout_ms=10_000,
        max_block_ms=int(OP_TIMEOUT_S * 1000),
    )
    try:
        prod.init_transactions()
        prod.begin_transaction()
        values = [f"kp-txn-{i}".encode() for i in range(5)]
        futures = [prod.send(topic_name, value=v, partition=0) for v in values]
        offsets = [f.get(timeout=OP_TIMEOUT_S).offset for f in futures]
        prod.flush(timeout=OP_TIMEOUT_S)
        within(OP_TIMEOUT_S, "kafka-python commit_transaction", prod.commit_transaction)
    finally:
        prod.close(timeout=5)

    assert offsets == list(range(5)), offsets
    got = read_exactly(spindle.bootstrap, [(topic_name, 0)], len(values))
    assert got == [(topic_name, 0, o, v) for o, v in zip(offsets, values)]


def kafka_python_admin(bootstrap: str):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)


def test_an_operator_finds_and_aborts_an_open_transaction_with_kafka_python_admin(spindle, topic_name):
    """kafka-python's admin client (as `kafka-transactions.sh` does) lists the node's
    transactions, describes one and the producers of its partitions, and aborts it in one
    partition (WriteTxnMarkers): the records there become aborted for read_committed consumers
    and the partition's last stable offset moves to its end, while the transaction's other
    partition stays held until the producer commits. A marker at an epoch older than the
    partition has seen is refused."""
    from kafka.admin._transactions import AbortTransactionSpec, TransactionState
    from kafka.errors import InvalidProducerEpochError, TransactionalIdNotFoundError
    from kafka.structs import TopicPartition as KTP

    bootstrap = spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=2)
    txn_id = f"{topic_name}-txn"
    prod = txn_producer(bootstrap, txn_id, {"transaction.timeout.ms": 60_000})
    began_ms = int(time.time() * 1000)
    prod.begin_transaction()
    produce_in_txn(prod, topic_name, [b"p0-0", b"p0-1", b"p0-2"], partition=0)
    produce_in_txn(prod, topic_name, [b"p1-0", b"p1-1"], partition=1)

    admin = kafka_python_admin(bootstrap)
    try:
        def listed(**filters) -> dict[str, tuple[int, TransactionState]]:
            by_node = admin.list_transactions(**filters)
            return {t.transactional_id: (t.producer_id, t.state) for ts in by_node.values() for t in ts}

        assert txn_id in listed(), "ListTransactions does not show the open transaction"
        producer_id, state = listed()[txn_id]
        assert state == TransactionState.ONGOING
        assert txn_id in listed(state_filters=["Ongoing"])
        assert txn_id not in listed(state_filters=["CompleteCommit"])
        assert txn_id not in listed(producer_id_filters=[producer_id + 1])
        assert txn_id in listed(duration_filter_ms=0)
        assert txn_id not in listed(duration_filter_ms=3_600_000), "open for less than an hour"
        # v2's pattern matches the whole id.
        assert txn_id in listed(transactional_id_pattern=f"{topic_name}-t.*")
        assert txn_id not in listed(transactional_id_pattern=topic_name), "a match inside the id is not one"
        # INVALID_REGULAR_EXPRESSION (128), which kafka-python 3.0 has no name for.
        with pytest.raises(kafka.errors.UnknownError) as refused:
            listed(transactional_id_pattern="(unclosed")
        assert refused.value.errno == 128

        described = admin.describe_transactions([txn_id])[txn_id]
        assert described.state == TransactionState.ONGOING
        assert described.producer_id == producer_id
        assert described.transaction_timeout_ms == 60_000
        assert began_ms - 1_000 <= described.transaction_start_time_ms <= int(time.time() * 1000)
        assert described.topic_partitions == {KTP(topic_name, 0), KTP(topic_name, 1)}
        epoch = described.producer_epoch
        with pytest.raises(TransactionalIdNotFoundError):
            admin.describe_transactions([f"{txn_id}-unknown"])

        producers = admin.describe_producers([KTP(topic_name, 0), KTP(topic_name, 1)])
        [p0] = producers[KTP(topic_name, 0)].active_producers
        [p1] = producers[KTP(topic_name, 1)].active_producers
        assert (p0.producer_id, p0.producer_epoch, p0.last_sequence) == (producer_id, epoch, 2)
        assert (p1.producer_id, p1.last_sequence) == (producer_id, 1)
        assert (p0.current_transaction_start_offset, p1.current_transaction_start_offset) == (0, 0)
        assert began_ms - 1_000 <= p0.last_timestamp <= int(time.time() * 1000) + 1_000

        # The operator aborts the transaction in partition 0 only.
        assert high_watermark(bootstrap, topic_name, 0, READ_COMMITTED) == 0
        admin.abort_transaction(AbortTransactionSpec(KTP(topic_name, 0), producer_id, epoch))
        assert high_watermark(bootstrap, topic_name, 0, READ_COMMITTED) == 4, "records and abort marker"
        assert high_watermark(bootstrap, topic_name, 1, READ_COMMITTED) == 0, "partition 1 still held"
        [p0] = admin.describe_producers([KTP(topic_name, 0)])[KTP(topic_name, 0)].active_producers
        assert p0.current_transaction_start_offset == -1

        # The producer commits: partition 1's records become visible, partition 0's stay aborted.
        prod.commit_transaction(OP_TIMEOUT_S)
        got = read_exactly(bootstrap, [(topic_name, 0), (topic_name, 1)], 2)
        assert values_of(got) == [b"p1-0", b"p1-1"], f"read_committed consumer saw {values_of(got)}"
        assert listed()[txn_id] == (producer_id, TransactionState.COMPLETE_COMMIT)
        assert admin.describe_transactions([txn_id])[txn_id].topic_partitions == set()

        # A new instance writes at the next epoch; a marker at the old epoch is refused, and
        # one at the new epoch aborts the new instance's transaction.
        prod = txn_producer(bootstrap, txn_id, {"transaction.timeout.ms": 60_000})
        prod.begin_transaction()
        produce_in_txn(prod, topic_name, [b"p0-3"], partition=0)
        new_epoch = admin.describe_transactions([txn_id])[txn_id].producer_epoch
        assert new_epoch == epoch + 1
        with pytest.raises(InvalidProducerEpochError):
            admin.abort_transaction(AbortTransactionSpec(KTP(topic_name, 0), producer_id, epoch))
        stable_before = high_watermark(bootstrap, topic_name, 0, READ_COMMITTED)
        admin.abort_transaction(AbortTransactionSpec(KTP(topic_name, 0), producer_id, new_epoch))
        assert high_watermark(bootstrap, topic_name, 0, READ_COMMITTED) > stable_before
        prod.abort_transaction(OP_TIMEOUT_S)
        got = read_exactly(bootstrap, [(topic_name, 0), (topic_name, 1)], 2)
        assert values_of(got) == [b"p1-0", b"p1-1"], f"read_committed consumer saw {values_of(got)}"
    finally:
        admin.close()
