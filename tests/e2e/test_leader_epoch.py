"""KIP-320 offset validation through librdkafka: a consumer starting from an offset that carries
a leader epoch (a committed offset, an assign or seek with an epoch) first asks the node where
that epoch ends (OffsetForLeaderEpoch), and treats an end below its offset as log truncation.
Every partition has the one epoch 0 here."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition as CTP

import clients

COUNT = 10


def produce(bootstrap: str, topic: str, values: range) -> None:
    messages = [{"value": f"v{i}".encode(), "partition": 0} for i in values]
    clients.produce_sync(clients.producer(bootstrap), topic, messages)


def test_a_position_within_its_epoch_validates_and_is_consumed_from(spindle, topic_name):
    clients.create_topic(spindle.bootstrap, topic_name)
    produce(spindle.bootstrap, topic_name, range(COUNT))
    cons = clients.consumer(spindle.bootstrap)
    cons.assign([CTP(topic_name, 0, 4, leader_epoch=0)])

    got = clients.consume(cons, COUNT - 4)
    cons.close()
    assert [m.offset() for m in got] == list(range(4, COUNT))
    assert {m.leader_epoch() for m in got} == {0}


def test_a_position_past_the_end_of_its_epoch_resumes_at_that_end(spindle, topic_name):
    """librdkafka seeks to where the epoch ends rather than resetting to the beginning, as it
    would after an out-of-range fetch from a broker without OffsetForLeaderEpoch."""
    clients.create_topic(spindle.bootstrap, topic_name)
    produce(spindle.bootstrap, topic_name, range(COUNT))
    cons = clients.consumer(spindle.bootstrap, extra={"auto.offset.reset": "earliest"})
    cons.assign([CTP(topic_name, 0, 50, leader_epoch=0)])

    clients.assert_no_more(cons, quiet_s=3.0)
    produce(spindle.bootstrap, topic_name, range(COUNT, COUNT + 2))
    got = clients.consume(cons, 2)
    cons.close()
    assert [m.offset() for m in got] == [COUNT, COUNT + 1]


def test_a_position_past_the_end_of_its_epoch_is_reported_as_log_truncation_without_a_reset_policy(
    spindle, topic_name
):
    clients.create_topic(spindle.bootstrap, topic_name)
    produce(spindle.bootstrap, topic_name, range(COUNT))
    cons = clients.consumer(spindle.bootstrap, extra={"auto.offset.reset": "error"})
    cons.assign([CTP(topic_name, 0, 50, leader_epoch=0)])

    error = None
    deadline = time.monotonic() + clients.OP_TIMEOUT_S
    while error is None and time.monotonic() < deadline:
        msg = cons.poll(0.2)
        if msg is not None and msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
            error = msg.error()
    cons.close()
    assert error is not None, "no error reported"
    # librdkafka reports the reset it may not do, naming the truncation as its cause (an
    # out-of-range fetch would be the same code, naming the out-of-range offset).
    assert error.code() == KafkaError._AUTO_OFFSET_RESET, error
    assert "log truncation detected at offset 50" in error.str(), error
