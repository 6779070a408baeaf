"""Restarts: the server announces readiness and stops cleanly on SIGTERM; acknowledged records
survive both a clean stop and a SIGKILL, also one that strikes while a producer streams; topic
configs survive; and a consumer group that was mid-way through a topic when the server
restarted resumes from its committed offsets."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import zlib

from confluent_kafka import TopicPartition as CTP

import clients
import conftest

PARTITIONS = 2
PER_PARTITION = 30


def produce_values(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> list[int]:
    prod = clients.producer(bootstrap, {"acks": "all"})
    return [
        m.offset()
        for m in clients.produce_sync(prod, topic, [{"value": v, "partition": partition} for v in values])
    ]


def read_all(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes]]:
    cons = clients.consumer(bootstrap)
    cons.assign([CTP(topic, 0, 0)])
    got = clients.consume(cons, count)
    clients.assert_no_more(cons, quiet_s=0.5)
    cons.close()
    return [(m.offset(), m.value()) for m in got]


def test_ready_line_and_clean_exit_on_sigterm(fresh_spindle):
    assert conftest.READY_LINE in fresh_spindle.log_text(), "no 'spindle ready' line in the log"

    code = fresh_spindle.stop(signal.SIGTERM)

    assert code == 0, f"spindle exited with {code} on SIGTERM"


def test_records_survive_sigterm_restart(fresh_spindle, topic_name):
    clients.create_topic(fresh_spindle.bootstrap, topic_name)
    values = [f"before-{i}".encode() for i in range(50)]
    assert produce_values(fresh_spindle.bootstrap, topic_name, values) == list(range(50))

    assert fresh_spindle.restart(signal.SIGTERM) == 0

    assert read_all(fresh_spindle.bootstrap, topic_name, 50) == list(enumerate(values))
    assert produce_values(fresh_spindle.bootstrap, topic_name, [b"after"]) == [50]


def test_acknowledged_records_survive_sigkill(fresh_spindle, topic_name):
    clients.create_topic(fresh_spindle.bootstrap, topic_name)
    values = [f"acked-{i}".encode() for i in range(50)]
    assert produce_values(fresh_spindle.bootstrap, topic_name, values) == list(range(50))

    assert fresh_spindle.restart(signal.SIGKILL) == -signal.SIGKILL

    assert read_all(fresh_spindle.bootstrap, topic_name, 50) == list(enumerate(values))
    assert produce_values(fresh_spindle.bootstrap, topic_name, [b"after"]) == [50]


def test_nothing_acknowledged_is_lost_when_killed_mid_stream(fresh_spindle, topic_name):
    """SIGKILL while a producer (acks=all) streams records into two partitions, three times at
    random moments: after each restart every record the producer was told is stored is read back
    at its offset, and each partition's offsets run from 0 without a hole."""
    seed = int(os.environ.get("SPINDLE_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    clients.create_topic(fresh_spindle.bootstrap, topic_name, partitions=PARTITIONS)
    acked: dict[tuple[int, int], bytes] = {}

    def on_delivery(err, msg):
        if err is None:
            acked[(msg.partition(), msg.offset())] = msg.value()

    for kill in range(3):
        prod = clients.producer(
            fresh_spindle.bootstrap,
            {"acks": "all", "linger.ms": 1, "message.timeout.ms": 15000},
        )
        streaming_until = time.monotonic() + rng.uniform(0.3, 1.0)
        sent = 0
        while time.monotonic() < streaming_until:
            try:
                prod.produce(topic_name, value=f"k{kill}-{sent}".encode(),
                             partition=sent % PARTITIONS, on_delivery=on_delivery)
            except BufferError:
                # librdkafka's local queue is full (the server is slower than this loop, or still
                # starting): let it drain a little, as confluent-kafka's documentation advises.
                prod.poll(0.05)
                continue
            sent += 1
            if sent % 100 == 0:
                prod.poll(0)
        assert fresh_spindle.restart(signal.SIGKILL) == -signal.SIGKILL
        # What was in flight is retried against the restarted server or times out: either is
        # fine, only what was acknowledged must be there.
        prod.flush(30)
    assert len(acked) > 100, f"seed {seed}: only {len(acked)} records acknowledged"

    cons = clients.consumer(fresh_spindle.bootstrap)
    stored: dict[tuple[int, int], bytes] = {}
    for p in range(PARTITIONS):
        _, high = cons.get_watermark_offsets(CTP(topic_name, p), timeout=10)
        cons.assign([CTP(topic_name, p, 0)])
        for m in clients.consume(cons, high):
            stored[(p, m.offset())] = m.value()
        offsets = sorted(o for (q, o) in stored if q == p)
        assert offsets == list(range(high)), f"seed {seed}: partition {p} has holes"
    cons.close()
    lost = {k: v for k, v in acked.items() if stored.get(k) != v}
    assert not lost, f"seed {seed}: {len(lost)} acknowledged records lost or changed, e.g. {list(lost.items())[:3]}"


def test_topic_configs_survive_restart(fresh_spindle, topic_name):
    configs = {"retention.ms": "123456789", "segment.bytes": "2097152", "fsync.policy": "never"}
    clients.create_topic(fresh_spindle.bootstrap, topic_name, partitions=3, config=configs)

    fresh_spindle.restart()

    clients.wait_for_topic(fresh_spindle.bootstrap, topic_name, 3)
    described = clients.describe_topic(fresh_spindle.bootstrap, topic_name)
    assert {k: described.get(k) for k in configs} == configs


def test_group_resumes_from_committed_offsets_after_restart(fresh_spindle, topic_name):
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    for p in range(PARTITIONS):
        produce_values(
            bootstrap, topic_name, [f"p{p}-{i}".encode() for i in range(PER_PARTITION)], partition=p
        )
    group = f"group-{topic_name}"

    # The first consumer reads part of the topic, committing each record, then the server
    # restarts under it.
    first = clients.consumer(bootstrap, group)
    first.subscribe([topic_name])
    before = clients.consume(first, PER_PARTITION)
    for msg in before:
        first.commit(message=msg, asynchronous=False)
    committed_before = {
        tp.partition: tp.offset
        for tp in first.committed([CTP(topic_name, p) for p in range(PARTITIONS)], timeout=10)
    }
    fresh_spindle.restart()
    first.close()

    # A new member of the same group starts exactly where the commits left off.
    second = clients.consumer(bootstrap, group)
    committed_after = {
        tp.partition: tp.offset
        for tp in second.committed([CTP(topic_name, p) for p in range(PARTITIONS)], timeout=10)
    }
    assert committed_after == committed_before
    second.subscribe([topic_name])
    rest = clients.consume(second, PARTITIONS * PER_PARTITION - len(before), timeout_s=30)
    clients.assert_no_more(second, quiet_s=1.0)
    second.close()

    for p in range(PARTITIONS):
        resumed = sorted(m.offset() for m in rest if m.partition() == p)
        start = max(committed_before[p], 0)
        assert resumed == list(range(start, PER_PARTITION)), (
            f"partition {p}: committed {start}, resumed at {resumed[:1]}"
        )
    values = sorted(m.value() for m in before + rest)
    assert values == sorted(f"p{p}-{i}".encode() for p in range(PARTITIONS) for i in range(PER_PARTITION))


def test_committed_offsets_survive_a_restart_with_another_shard_count(fresh_spindle, topic_name):
    """Commits are stored by group in the offsets topic; a node restarted with another shard
    count (another --shards, or the default one-per-CPU on another machine) must find them."""
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name)
    produce_values(bootstrap, topic_name, [f"v{i}".encode() for i in range(10)])
    # Groups that crc32(group) % 2 put on the second of two shards: the ones a layout following
    # the shard count would lose when the node comes back with one.
    groups = [g for g in (f"{topic_name}-g{i}" for i in range(40)) if zlib.crc32(g.encode()) % 2 == 1][:3]
    fresh_spindle.shards = 2
    fresh_spindle.restart()
    for offset, group in enumerate(groups, start=3):
        committer = clients.consumer(bootstrap, group)
        committer.commit(offsets=[CTP(topic_name, 0, offset)], asynchronous=False)
        committer.close()

    for shards in (1, 2):
        fresh_spindle.shards = shards
        fresh_spindle.restart()
        for offset, group in enumerate(groups, start=3):
            reader = clients.consumer(bootstrap, group)
            committed = reader.committed([CTP(topic_name, 0)], timeout=10)
            reader.close()
            assert committed[0].offset == offset, f"{group} after a restart with {shards} shard(s)"


def test_sigterm_the_moment_ready_is_printed_is_clean(tmp_path):
    """A supervisor may stop the server as soon as it says it is ready: from the ready line on,
    SIGTERM must mean a clean stop (exit 0), never the default action of the signal."""
    for attempt in range(5):
        server = conftest.Spindle(base=tmp_path / f"server{attempt}")
        proc = subprocess.Popen(
            server.args(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, NO_COLOR="1"),
            preexec_fn=conftest.die_with_parent,
        )
        try:
            deadline = time.monotonic() + conftest.START_TIMEOUT_S
            for line in proc.stdout:
                if line.startswith(conftest.READY_LINE.encode()):
                    proc.send_signal(signal.SIGTERM)
                    break
                assert time.monotonic() < deadline, "no ready line in time"
            else:
                raise AssertionError(f"spindle exited with {proc.wait(timeout=10)} before its ready line")
            proc.communicate(timeout=conftest.STOP_TIMEOUT_S)
            assert proc.returncode == 0, (
                f"attempt {attempt}: exit {proc.returncode} on SIGTERM right after ready"
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_deleted_records_stay_deleted_after_a_restart(fresh_spindle, topic_name):
    clients.create_topic(fresh_spindle.bootstrap, topic_name)
    values = [f"d{i}".encode() for i in range(30)]
    assert produce_values(fresh_spindle.bootstrap, topic_name, values) == list(range(30))
    admin = clients.admin(fresh_spindle.bootstrap)
    deleted = admin.delete_records([CTP(topic_name, 0, 17)])
    assert [f.result(30).low_watermark for f in deleted.values()] == [17]

    assert fresh_spindle.restart(signal.SIGKILL) == -signal.SIGKILL

    cons = clients.consumer(fresh_spindle.bootstrap)
    assert cons.get_watermark_offsets(CTP(topic_name, 0), timeout=10) == (17, 30)
    cons.close()


def test_a_group_that_committed_thousands_of_times_resumes_from_its_last_commits(fresh_spindle, topic_name):
    """Enough commits that the offsets log is cleaned (its live commits rewritten, the old ones
    dropped: `cleaned the offsets log`), then a SIGKILL: the group's offsets are its last."""
    partitions = 200
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=partitions)
    group = f"{topic_name}-group"
    committer = clients.consumer(bootstrap, group)
    try:
        for round_ in range(1, 61):  # 60 commits of 200 offsets: 12,000 records
            committer.commit(offsets=[CTP(topic_name, p, round_ * 10 + p) for p in range(partitions)],
                             asynchronous=False)
    finally:
        committer.close()
    deadline = time.monotonic() + 10
    while "cleaned the offsets log" not in fresh_spindle.log_text():
        assert time.monotonic() < deadline, "the offsets log was never cleaned"
        time.sleep(0.1)

    fresh_spindle.restart(signal.SIGKILL)

    reader = clients.consumer(bootstrap, group)
    try:
        committed = reader.committed([CTP(topic_name, p) for p in range(partitions)], timeout=clients.OP_TIMEOUT_S)
    finally:
        reader.close()
    assert [tp.offset for tp in committed] == [600 + p for p in range(partitions)]


def test_acknowledged_commits_survive_kills_while_the_offsets_log_is_cleaned(fresh_spindle, topic_name):
    """A group commits 50 partitions in a loop (enough that its offsets log is cleaned again and
    again) while the server is SIGKILLed three times at random moments: after each restart every
    partition's committed offset is the last acknowledged commit, or the one in flight at the kill."""
    import threading

    partitions = 50
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=partitions)
    group = f"{topic_name}-group"
    rng = random.Random(7)
    next_round = 1
    for cycle in range(3):
        acknowledged = [0]
        stop = threading.Event()

        def commit_rounds(first: int) -> None:
            committer = clients.consumer(bootstrap, group, {"socket.timeout.ms": 3000})
            try:
                round_ = first
                while not stop.is_set():
                    try:
                        committer.commit(offsets=[CTP(topic_name, p, round_) for p in range(partitions)],
                                         asynchronous=False)
                    except Exception:  # the server died under the commit
                        return
                    acknowledged[0] = round_
                    round_ += 1
            finally:
                committer.close()

        worker = threading.Thread(target=commit_rounds, args=(next_round,))
        worker.start()
        deadline = time.monotonic() + 30
        # The group is committing (the first time, past the 10,000 records that make the offsets
        # log due for cleaning): now kill at a random moment.
        while acknowledged[0] < next_round + (250 if cycle == 0 else 3):
            assert time.monotonic() < deadline and worker.is_alive(), "the commits did not start"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.0))
        fresh_spindle.restart(signal.SIGKILL)
        stop.set()
        worker.join(timeout=30)
        assert not worker.is_alive()
        last = acknowledged[0]
        reader = clients.consumer(bootstrap, group)
        try:
            committed = reader.committed([CTP(topic_name, p) for p in range(partitions)],
                                         timeout=clients.OP_TIMEOUT_S)
        finally:
            reader.close()
        for tp in committed:
            # The commit in flight at the kill may or may not have been stored, and may have been
            # retried and acknowledged after the restart.
            assert last <= tp.offset <= last + 1, (tp.partition, tp.offset, last)
        next_round = max(tp.offset for tp in committed) + 1
    assert "cleaned the offsets log" in fresh_spindle.log_text()
