"""Every compression codec Kafka defines (gzip, snappy, lz4, zstd) survives the broker: batches
compressed by librdkafka and by kafka-python come back intact to both clients. The broker
stores batches as they arrive, so these tests also check that it reads the compressed batch
headers right (record counts, offsets)."""

from __future__ import annotations


import pytest
from confluent_kafka import TopicPartition as CTP
from kafka import KafkaProducer
from kafka import codec as kafka_codec

import clients
import wire

CODECS = ["gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
COUNT = 50

KAFKA_PYTHON_HAS = {
    "gzip": kafka_codec.has_gzip,
    "snappy": kafka_codec.has_snappy,
    "lz4": kafka_codec.has_lz4,
    "zstd": kafka_codec.has_zstd,
}


def records(codec: str) -> list[tuple[bytes, bytes, list]]:
    """Compressible records (repeated text) with keys and headers."""
    return [
        (f"key-{i}".encode(), (f"{codec} record {i} " * 20).encode(), [("i", str(i).encode())])
        for i in range(COUNT)
    ]


def confluent_read(bootstrap: str, topic: str) -> list[tuple]:
    cons = clients.consumer(bootstrap)
    cons.assign([CTP(topic, 0, 0)])
    got = clients.consume(cons, COUNT)
    cons.close()
    assert [m.offset() for m in got] == list(range(COUNT))
    return [(m.key(), m.value(), list(m.headers() or [])) for m in got]


def require_kafka_python_codec(codec: str) -> None:
    if not KAFKA_PYTHON_HAS[codec]():
        pytest.skip(f"kafka-python has no {codec} codec here (its optional package did not install)")


def kafka_python_read(bootstrap: str, topic: str) -> list[tuple]:
    got = clients.kafka_python_consume(bootstrap, topic, COUNT)
    assert [r.offset for r in got] == list(range(COUNT))
    return [(r.key, r.value, list(r.headers)) for r in got]


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_compressed_batches_roundtrip(spindle, topic_name, codec):
    sent = records(codec)
    prod = clients.producer(spindle.bootstrap, {"compression.type": codec, "linger.ms": 50})
    clients.produce_sync(
        prod, topic_name, [{"key": k, "value": v, "headers": h, "partition": 0} for k, v, h in sent]
    )

    assert confluent_read(spindle.bootstrap, topic_name) == sent


@pytest.mark.parametrize("codec", CODECS)
def test_batches_are_served_as_the_producer_compressed_them(spindle, topic_name, codec):
    """The broker stores and serves the producer's compressed batch: no recompression, valid CRC."""
    sent = records(codec)
    prod = clients.producer(spindle.bootstrap, {"compression.type": codec, "linger.ms": 50})
    clients.produce_sync(
        prod, topic_name, [{"key": k, "value": v, "headers": h, "partition": 0} for k, v, h in sent]
    )

    with wire.Connection(spindle.bootstrap) as conn:
        error, high_watermark, stored = conn.fetch(topic_name, 0)
    assert (error, high_watermark) == (wire.NONE, COUNT)
    batches = wire.split_batches(stored)
    assert batches, "the fetch returned no complete batch"
    assert sum(b.record_count for b in batches) == COUNT
    for b in batches:
        assert b.magic == 2 and b.crc_ok, b
        assert b.codec == CODEC_IDS[codec], f"stored with codec {b.codec}, produced with {codec}"
    assert len(stored) < sum(len(v) for _, v, _ in sent) / 2, "the stored bytes are not compressed"


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_reads_confluent_compressed_batches(spindle, topic_name, codec):
    require_kafka_python_codec(codec)
    sent = records(codec)
    prod = clients.producer(spindle.bootstrap, {"compression.type": codec, "linger.ms": 50})
    clients.produce_sync(
        prod, topic_name, [{"key": k, "value": v, "headers": h, "partition": 0} for k, v, h in sent]
    )

    assert kafka_python_read(spindle.bootstrap, topic_name) == sent


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_compressed_batches_roundtrip(spindle, topic_name, codec):
    require_kafka_python_codec(codec)
    sent = records(codec)
    prod = KafkaProducer(
        bootstrap_servers=spindle.bootstrap, compression_type=codec, linger_ms=50, request_timeout_ms=10_000
    )
    try:
        futures = [prod.send(topic_name, key=k, value=v, headers=h, partition=0) for k, v, h in sent]
        assert [f.get(timeout=15).offset for f in futures] == list(range(COUNT))
    finally:
        prod.close(timeout=5)

    assert confluent_read(spindle.bootstrap, topic_name) == sent
    assert kafka_python_read(spindle.bootstrap, topic_name) == sent


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_compressed_roundtrip(spindle, topic_name, codec):
    """kcat is built on an older librdkafka (2.0.2 on Debian bookworm): it must negotiate every
    codec too (zstd needs Produce v7+ and Fetch v10+ advertised)."""
    clients.create_topic(spindle.bootstrap, topic_name)
    lines = [f"{codec}-key-{i}:".encode() + (f"{codec} line {i} " * 10).encode() for i in range(COUNT)]

    clients.kcat(
        spindle.bootstrap,
        "-P",
        "-t",
        topic_name,
        "-p",
        "0",
        "-K:",
        "-X",
        f"compression.codec={codec}",
        "-X",
        "linger.ms=50",
        stdin=b"\n".join(lines) + b"\n",
    )
    out = clients.kcat_consume(spindle.bootstrap, topic_name, COUNT, "%o:%k:%s\n")

    assert out.splitlines() == [b"%d:%s" % (i, line) for i, line in enumerate(lines)]
    with wire.Connection(spindle.bootstrap) as conn:
        _, _, stored = conn.fetch(topic_name, 0)
    assert {b.codec for b in wire.split_batches(stored)} == {CODEC_IDS[codec]}
