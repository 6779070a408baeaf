"""A 1 MiB record is produced and consumed intact (by librdkafka and kcat), and a record over
the topic's max.message.bytes is refused with MESSAGE_TOO_LARGE while the topic keeps working."""

from __future__ import annotations

import hashlib
import os

from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition as CTP

import clients

MIB = 1024 * 1024


def test_one_mib_message_roundtrip(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, config={"max.message.bytes": str(4 * MIB)})
    payload = os.urandom(MIB)
    prod = clients.producer(spindle.bootstrap, {"message.max.bytes": 2 * MIB})

    [msg] = clients.produce_sync(prod, topic_name, [{"key": b"big", "value": payload, "partition": 0}])
    assert msg.offset() == 0

    cons = clients.consumer(
        spindle.bootstrap, extra={"max.partition.fetch.bytes": 2 * MIB, "fetch.max.bytes": 4 * MIB}
    )
    cons.assign([CTP(topic_name, 0, 0)])
    [got] = clients.consume(cons, 1)
    cons.close()
    assert got.key() == b"big"
    assert len(got.value()) == MIB
    assert got.value() == payload

    out = clients.kcat_consume(
        spindle.bootstrap, topic_name, 1, "%s", "-X", "fetch.message.max.bytes=2097152"
    )
    assert hashlib.sha256(out).digest() == hashlib.sha256(payload).digest()


def test_message_over_topic_limit_is_refused(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name, config={"max.message.bytes": "10000"})
    prod = clients.producer(spindle.bootstrap, {"message.max.bytes": 2 * MIB, "linger.ms": 0})

    [(err, _)] = clients.deliver(prod, topic_name, [{"value": os.urandom(50_000), "partition": 0}])
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err

    [small] = clients.produce_sync(prod, topic_name, [{"value": b"fits", "partition": 0}])
    assert small.offset() == 0
