"""Precise status codes: NOT_FOUND, INVALID_ARGUMENT naming the field, ALREADY_EXISTS,
OUT_OF_RANGE; and the admin calls that produce them."""

from __future__ import annotations

import grpc
import pytest

from gateway_harness import admin_pb2, consumer_pb2, create_topic, producer_pb2, record_pb2


def error_of(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            next(iter(result))
    return raised.value


def one_record():
    return [record_pb2.Record(value=b"x")]


def test_unknown_topic_is_not_found(grpc_clients, topic):
    c = grpc_clients
    err = error_of(c.call, c.producer.Produce, producer_pb2.ProduceRequest(topic=topic, records=one_record()))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert topic in err.details()
    err = error_of(c.call, c.admin.DescribeTopic, admin_pb2.DescribeTopicRequest(name=topic))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = error_of(c.call, c.admin.DeleteTopic, admin_pb2.DeleteTopicRequest(name=topic))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = error_of(c.consumer.Subscribe, consumer_pb2.SubscribeRequest(topic=topic), timeout=10)
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_partition_is_not_found(grpc_clients, topic):
    c = grpc_clients
    create_topic(c, topic, partitions=2)
    err = error_of(
        c.call, c.producer.Produce, producer_pb2.ProduceRequest(topic=topic, partition=2, records=one_record())
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = error_of(c.consumer.Subscribe, consumer_pb2.SubscribeRequest(topic=topic, partitions=[5]), timeout=10)
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_invalid_arguments_name_the_field(grpc_clients, topic):
    c = grpc_clients
    cases = [
        (c.producer.Produce, producer_pb2.ProduceRequest(topic="", records=one_record()), "topic"),
        (c.producer.Produce, producer_pb2.ProduceRequest(topic=topic, records=[]), "records"),
        (
            c.producer.Produce,
            producer_pb2.ProduceRequest(topic=topic, records=[record_pb2.Record(value=b"x", timestamp_ms=-5)]),
            "records[0].timestamp_ms",
        ),
        (c.admin.CreateTopic, admin_pb2.CreateTopicRequest(name=topic, partitions=0), "partitions"),
        (c.admin.CreateTopic, admin_pb2.CreateTopicRequest(name="", partitions=1), "name"),
        (
            c.admin.CreateTopic,
            admin_pb2.CreateTopicRequest(
                name=topic, partitions=1, config=[admin_pb2.ConfigEntry(key="no.such.key", value="1")]
            ),
            "config",
        ),
        (c.consumer.Commit, consumer_pb2.CommitRequest(group="", topic=topic), "group"),
    ]
    for method, request, field in cases:
        err = error_of(c.call, method, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err)
        assert err.details().startswith(f"{field}: "), (field, err.details())


def test_create_twice_is_already_exists_and_admin_round_trip(grpc_clients, topic):
    c = grpc_clients
    info = c.call(
        c.admin.CreateTopic,
        admin_pb2.CreateTopicRequest(
            name=topic, partitions=3, config=[admin_pb2.ConfigEntry(key="retention.ms", value="3600000")]
        ),
    )
    assert info.name == topic and info.partitions == 3
    assert {e.key: e.value for e in info.config}["retention.ms"] == "3600000"
    err = error_of(c.call, c.admin.CreateTopic, admin_pb2.CreateTopicRequest(name=topic, partitions=1))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS

    c.call(c.producer.Produce, producer_pb2.ProduceRequest(topic=topic, partition=1, records=one_record() * 4))
    described = c.call(c.admin.DescribeTopic, admin_pb2.DescribeTopicRequest(name=topic))
    assert [p.partition for p in described.partitions] == [0, 1, 2]
    assert [p.high_watermark for p in described.partitions] == [0, 4, 0]
    listed = c.call(c.admin.ListTopics, admin_pb2.ListTopicsRequest())
    assert topic in [t.name for t in listed.topics]
    assert "__consumer_offsets" not in [t.name for t in listed.topics]

    c.call(c.admin.DeleteTopic, admin_pb2.DeleteTopicRequest(name=topic))
    listed = c.call(c.admin.ListTopics, admin_pb2.ListTopicsRequest())
    assert topic not in [t.name for t in listed.topics]


def test_offset_past_the_end_is_out_of_range(grpc_clients, topic):
    c = grpc_clients
    create_topic(c, topic)
    c.call(c.producer.Produce, producer_pb2.ProduceRequest(topic=topic, records=one_record()))
    err = error_of(c.consumer.Subscribe, consumer_pb2.SubscribeRequest(topic=topic, offset=1000), timeout=10)
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE
