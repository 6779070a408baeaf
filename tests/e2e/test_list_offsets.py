"""ListOffsets: earliest, latest (the offset after the last record, not after the last batch's
base offset), the largest timestamp and by timestamp (the first offset whose timestamp is at or after the one asked),
through confluent-kafka's consumer (get_watermark_offsets, offsets_for_times) and AdminClient
(list_offsets), kafka-python and kcat."""

from __future__ import annotations

from confluent_kafka import TopicPartition as CTP
from confluent_kafka.admin import OffsetSpec
from kafka import KafkaConsumer, TopicPartition

import clients
import wire

T0 = 1_700_000_000_000
STEP_MS = 10
COUNT = 8  # one batch: offsets 0..7 at T0, T0+10, ... T0+70


def produce_one_batch(bootstrap: str, topic: str) -> None:
    """Eight records in ONE batch, so 'latest' must count records, not batches."""
    clients.create_topic(bootstrap, topic)
    records = [wire.Record(value=f"v{i}".encode(), timestamp_delta=i * STEP_MS) for i in range(COUNT)]
    with wire.Connection(bootstrap) as conn:
        assert conn.produce(topic, {0: wire.record_batch(records, base_timestamp=T0)}) == {0: (wire.NONE, 0)}


def test_watermarks_count_records_not_batches(spindle, topic_name):
    produce_one_batch(spindle.bootstrap, topic_name)
    cons = clients.consumer(spindle.bootstrap)

    assert cons.get_watermark_offsets(CTP(topic_name, 0), timeout=10) == (0, COUNT)
    cons.close()


def test_offsets_for_times(spindle, topic_name):
    produce_one_batch(spindle.bootstrap, topic_name)
    cons = clients.consumer(spindle.bootstrap)

    def lookup(ts: int) -> int:
        [tp] = cons.offsets_for_times([CTP(topic_name, 0, ts)], timeout=10)
        assert tp.error is None, tp.error
        return tp.offset

    assert lookup(T0 - 1_000) == 0, "before the first record: the first offset"
    assert lookup(T0) == 0
    assert lookup(T0 + 3 * STEP_MS) == 3, "an exact timestamp: that record"
    assert lookup(T0 + 3 * STEP_MS + 1) == 4, "between two records: the later one"
    assert lookup(T0 + (COUNT - 1) * STEP_MS) == COUNT - 1
    assert lookup(T0 + COUNT * STEP_MS) == -1, "after the last record: no offset (-1)"
    assert lookup(-2) == 0, "timestamp -2 means earliest"
    assert lookup(-1) == COUNT, "timestamp -1 means latest"
    cons.close()


def test_admin_list_offsets(spindle, topic_name):
    produce_one_batch(spindle.bootstrap, topic_name)
    admin = clients.admin(spindle.bootstrap)
    tp = CTP(topic_name, 0)

    def offset(spec) -> int:
        return admin.list_offsets({tp: spec}, request_timeout=10)[tp].result(timeout=10).offset

    assert offset(OffsetSpec.earliest()) == 0
    assert offset(OffsetSpec.latest()) == COUNT
    assert offset(OffsetSpec.for_timestamp(T0 + 5 * STEP_MS)) == 5


def test_admin_list_offsets_max_timestamp(spindle, topic_name):
    """OffsetSpec.max_timestamp (ListOffsets -3, KIP-734): the first record with the largest
    timestamp, which need not be the last one; a later batch of older records does not move it."""
    clients.create_topic(spindle.bootstrap, topic_name)
    deltas = [0, 50, 20, 50, 10]
    first = [wire.Record(value=b"m", timestamp_delta=d) for d in deltas]
    later = [wire.Record(value=b"o", timestamp_delta=d) for d in (0, 5)]
    with wire.Connection(spindle.bootstrap) as conn:
        assert conn.produce(topic_name, {0: wire.record_batch(first, base_timestamp=T0)}) == {0: (wire.NONE, 0)}
        assert conn.produce(topic_name, {0: wire.record_batch(later, base_timestamp=T0)}) == {0: (wire.NONE, 5)}
    admin = clients.admin(spindle.bootstrap)
    tp = CTP(topic_name, 0)
    found = admin.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=10)[tp].result(timeout=10)
    assert (found.offset, found.timestamp) == (1, T0 + 50)


def test_kafka_python_offsets(spindle, topic_name):
    produce_one_batch(spindle.bootstrap, topic_name)
    cons = KafkaConsumer(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000)
    tp = TopicPartition(topic_name, 0)
    try:
        assert cons.beginning_offsets([tp], timeout_ms=10_000) == {tp: 0}
        assert cons.end_offsets([tp], timeout_ms=10_000) == {tp: COUNT}
        found = cons.offsets_for_times({tp: T0 + 2 * STEP_MS + 5}, timeout_ms=10_000)[tp]
        assert (found.offset, found.timestamp) == (3, T0 + 3 * STEP_MS)
        assert cons.offsets_for_times({tp: T0 + 10 * STEP_MS}, timeout_ms=10_000)[tp] is None
    finally:
        cons.close()


def test_kcat_offset_query(spindle, topic_name):
    produce_one_batch(spindle.bootstrap, topic_name)

    out = clients.kcat(spindle.bootstrap, "-Q", "-t", f"{topic_name}:0:{T0 + 6 * STEP_MS}").decode()

    assert out.strip() == f"{topic_name} [0] offset 6", out
