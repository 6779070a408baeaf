"""Records go in and come out byte for byte: keys (also null), values (also empty, null and every
byte value), headers (repeated keys, null values, in order) and producer timestamps, through
confluent-kafka, kafka-python and kcat, and across clients."""

from __future__ import annotations


from confluent_kafka import TIMESTAMP_CREATE_TIME
from confluent_kafka import TopicPartition as CTP
from kafka import KafkaProducer

import clients

BASE_TS = 1_700_000_000_000


def sample_records() -> list[dict]:
    """Records as confluent-kafka's produce() keywords, with edge cases a broker could mangle."""
    return [
        {"key": b"k0", "value": b"v0", "headers": [("h", b"1")], "timestamp": BASE_TS},
        {"key": None, "value": b"no key", "headers": [], "timestamp": BASE_TS + 1},
        {"key": b"k2", "value": b"", "headers": [("a", b"x"), ("a", b"y")], "timestamp": BASE_TS + 2},
        {"key": b"k3", "value": None, "headers": [("null", None)], "timestamp": BASE_TS + 3},
        {
            "key": bytes(range(256)),
            "value": bytes(range(255, -1, -1)) * 4,
            "headers": [("bin", bytes(range(256)))],
            "timestamp": BASE_TS - 5_000,
        },
        {
            "key": "ключ".encode(),
            "value": "значение ✓".encode(),
            "headers": [("ü", "ö".encode())],
            "timestamp": BASE_TS + 10,
        },
    ]


def norm_headers(headers) -> list[tuple[str, bytes | None]]:
    return [(k, v) for k, v in (headers or [])]


def confluent_view(msg) -> tuple:
    ts_type, ts = msg.timestamp()
    assert ts_type == TIMESTAMP_CREATE_TIME
    return (msg.key(), msg.value(), norm_headers(msg.headers()), ts)


def expected_view(record: dict) -> tuple:
    return (record["key"], record["value"], record["headers"], record["timestamp"])


def test_confluent_roundtrip_keys_headers_timestamps(spindle, topic_name):
    records = sample_records()
    delivered = clients.produce_sync(
        clients.producer(spindle.bootstrap), topic_name, [dict(r, partition=0) for r in records]
    )
    assert [m.offset() for m in delivered] == list(range(len(records)))

    cons = clients.consumer(spindle.bootstrap)
    cons.assign([CTP(topic_name, 0, 0)])
    got = clients.consume(cons, len(records))
    cons.close()

    assert [m.offset() for m in got] == list(range(len(records)))
    assert [confluent_view(m) for m in got] == [expected_view(r) for r in records]


def kafka_python_view(rec) -> tuple:
    assert rec.timestamp_type == 0, "expected CreateTime"
    return (rec.key, rec.value, norm_headers(rec.headers), rec.timestamp)


def test_kafka_python_roundtrip_and_cross_client(spindle, topic_name):
    # kafka-python refuses a null header value, so those become empty here.
    records = [
        dict(r, headers=[(k, b"" if v is None else v) for k, v in r["headers"]]) for r in sample_records()
    ]
    prod = KafkaProducer(bootstrap_servers=spindle.bootstrap, request_timeout_ms=10_000, linger_ms=5)
    try:
        futures = [
            prod.send(
                topic_name,
                value=r["value"],
                key=r["key"],
                headers=r["headers"],
                timestamp_ms=r["timestamp"],
                partition=0,
            )
            for r in records
        ]
        offsets = [f.get(timeout=15).offset for f in futures]
    finally:
        prod.close(timeout=5)
    assert offsets == list(range(len(records)))

    # kafka-python reads back what it wrote...
    assert [
        kafka_python_view(r)
        for r in clients.kafka_python_consume(spindle.bootstrap, topic_name, len(records))
    ] == [expected_view(r) for r in records]
    # ...and librdkafka reads the same bytes.
    cons = clients.consumer(spindle.bootstrap)
    cons.assign([CTP(topic_name, 0, 0)])
    got = clients.consume(cons, len(records))
    cons.close()
    assert [confluent_view(m) for m in got] == [expected_view(r) for r in records]


def test_confluent_records_read_by_kafka_python(spindle, topic_name):
    records = sample_records()
    clients.produce_sync(
        clients.producer(spindle.bootstrap), topic_name, [dict(r, partition=0) for r in records]
    )

    got = clients.kafka_python_consume(spindle.bootstrap, topic_name, len(records))

    assert [r.offset for r in got] == list(range(len(records)))
    assert [kafka_python_view(r) for r in got] == [expected_view(r) for r in records]


def test_kcat_produce_with_keys_and_headers(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name)
    lines = [b"alpha:one", b"beta:two words", b"gamma:", b"delta:4:with:colons"]

    clients.kcat(
        spindle.bootstrap,
        "-P",
        "-t",
        topic_name,
        "-p",
        "0",
        "-K:",
        "-H",
        "origin=kcat",
        "-H",
        "n=1",
        stdin=b"\n".join(lines) + b"\n",
    )

    cons = clients.consumer(spindle.bootstrap)
    cons.assign([CTP(topic_name, 0, 0)])
    got = clients.consume(cons, len(lines))
    clients.assert_no_more(cons, quiet_s=0.5)
    cons.close()
    assert [(m.key(), m.value() or b"") for m in got] == [tuple(line.split(b":", 1)) for line in lines]
    assert all(norm_headers(m.headers()) == [("origin", b"kcat"), ("n", b"1")] for m in got)


def test_kcat_consume_format_string_byte_for_byte(spindle, topic_name):
    records = [
        {"key": b"k1", "value": b"hello", "headers": [("h1", b"v1")], "timestamp": BASE_TS + 1},
        {
            "key": b"k2",
            "value": b"world",
            "headers": [("h1", b"v1"), ("h2", b"v2")],
            "timestamp": BASE_TS + 2,
        },
        {"key": b"k3", "value": b"\x00\x01binary\xff", "headers": [], "timestamp": BASE_TS + 3},
    ]
    clients.produce_sync(
        clients.producer(spindle.bootstrap), topic_name, [dict(r, partition=0) for r in records]
    )

    out = clients.kcat_consume(spindle.bootstrap, topic_name, len(records), "%p|%o|%k|%s|%h|%T\n")

    expected = b"".join(
        b"0|%d|%s|%s|%s|%d\n"
        % (i, r["key"], r["value"], b",".join(k.encode() + b"=" + v for k, v in r["headers"]), r["timestamp"])
        for i, r in enumerate(records)
    )
    assert out == expected


def test_kafka_python_reads_many_partitions_through_an_incremental_fetch_session(spindle, topic_name):
    """kafka-python fetches with KIP-227 sessions: after the first full fetch its requests
    name only the partitions whose offsets moved and the answers carry only partitions with
    news. Records appended later to two of six partitions still arrive, every record once and
    in order per partition."""
    import time

    import kafka

    partitions = 6
    clients.create_topic(spindle.bootstrap, topic_name, partitions=partitions)
    prod = clients.producer(spindle.bootstrap)

    def produce(round_no: int, to: range | list[int]) -> None:
        clients.produce_sync(
            prod, topic_name, [{"value": f"r{round_no}-p{p}-{i}".encode(), "partition": p} for p in to for i in range(5)]
        )

    cons = kafka.KafkaConsumer(
        bootstrap_servers=spindle.bootstrap, enable_auto_commit=False, request_timeout_ms=10_000, fetch_max_wait_ms=100
    )
    got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}

    def poll_until(count: int) -> None:
        deadline = time.monotonic() + 20
        while sum(map(len, got.values())) < count and time.monotonic() < deadline:
            for tp, records in cons.poll(timeout_ms=200).items():
                got[tp.partition].extend((r.offset, r.value) for r in records)
        assert sum(map(len, got.values())) == count, {p: len(r) for p, r in got.items()}

    try:
        tps = [kafka.TopicPartition(topic_name, p) for p in range(partitions)]
        cons.assign(tps)
        cons.seek_to_beginning(*tps)
        produce(1, range(partitions))
        poll_until(5 * partitions)
        produce(2, [2, 4])
        poll_until(5 * partitions + 10)
        # kafka-python keeps its session state per node (private, read here only to show that
        # the fetches went through a session).
        sessions = cons._fetcher._session_handlers.values()
        assert any(s.next_metadata.session_id != 0 and s.next_metadata.epoch > 1 for s in sessions), [
            (s.next_metadata.session_id, s.next_metadata.epoch) for s in sessions
        ]
        time.sleep(0.5)
        assert not any(cons.poll(timeout_ms=300).values()), "no record twice"
    finally:
        cons.close()
    for p, records in got.items():
        rounds = [1, 2] if p in (2, 4) else [1]
        expected = [f"r{r}-p{p}-{i}".encode() for r in rounds for i in range(5)]
        assert [v for _, v in records] == expected, f"partition {p}"
        assert [o for o, _ in records] == list(range(len(expected))), f"partition {p}"
