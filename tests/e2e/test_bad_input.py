"""Hostile and broken input on the Kafka port. Each case is sent on its own raw connection, and
afterwards the server must still be running and must answer normal requests on a NEW connection:
bad input costs at most the connection that sent it.

What the server must do with the bad connection itself, following Kafka's broker:
  - a frame it cannot read (size prefix over the limit or negative, a request that does not
    decode, an unknown API key): close the connection, without reading a gigabyte first;
  - a request whose body is followed by bytes it does not account for: close the connection
    without handling the request (a small batch padded that way would otherwise keep the whole
    frame in memory);
  - ApiVersions at a version it does not know: error 35 (UNSUPPORTED_VERSION) with the supported
    ranges in a v0-shaped body, and the connection stays usable (clients then retry at v0);
  - a batch whose CRC does not match: CORRUPT_MESSAGE (2) for that partition only; the other
    partitions of the same request are stored, and nothing of the bad batch is.
"""

from __future__ import annotations

import random

from confluent_kafka import TopicPartition as CTP

import clients
import wire

CLOSE_WITHIN_S = 10.0


def assert_still_serving(server) -> None:
    assert server.alive(), f"spindle died (exit {server.proc and server.proc.poll()})"
    with wire.Connection(server.bootstrap) as conn:
        error, versions = conn.api_versions()
        assert error == wire.NONE
        assert wire.PRODUCE in versions and wire.FETCH in versions
        reader = conn.metadata()
        brokers = reader.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
        assert [(host, port) for _, host, port, _ in brokers] == [("127.0.0.1", server.kafka_port)]


def test_oversize_length_prefix_closes_connection(fresh_spindle):
    with wire.Connection(fresh_spindle.bootstrap) as conn:
        conn.send_raw(wire.i32(0x7FFF_FFF0) + b"\x00" * 64)
        assert conn.closed_by_peer(CLOSE_WITHIN_S), "a 2 GiB size prefix must close the connection"
    assert_still_serving(fresh_spindle)


def test_negative_length_prefix_closes_connection(fresh_spindle):
    with wire.Connection(fresh_spindle.bootstrap) as conn:
        conn.send_raw(wire.i32(-5) + b"\x00" * 16)
        assert conn.closed_by_peer(CLOSE_WITHIN_S), "a negative size prefix must close the connection"
    assert_still_serving(fresh_spindle)


def test_truncated_frame_then_hang_up(fresh_spindle):
    for _ in range(3):
        with wire.Connection(fresh_spindle.bootstrap) as conn:
            conn.send_raw(wire.i32(100) + b"\x00\x12\x00\x00" + b"\x00" * 6)
    assert_still_serving(fresh_spindle)


def test_garbage_bytes(fresh_spindle):
    rng = random.Random(20260101)
    for _ in range(5):
        with wire.Connection(fresh_spindle.bootstrap) as conn:
            conn.send_raw(rng.randbytes(4096))
            conn.closed_by_peer(0.5)  # The server may close or wait for more; either is fine.
    assert_still_serving(fresh_spindle)


def test_garbage_body_in_valid_frame_closes_connection(fresh_spindle):
    rng = random.Random(7)
    with wire.Connection(fresh_spindle.bootstrap) as conn:
        header = wire.i16(wire.PRODUCE) + wire.i16(3) + wire.i32(1) + wire.string("bad")
        request = header + rng.randbytes(200)
        conn.send_raw(wire.i32(len(request)) + request)
        assert conn.closed_by_peer(CLOSE_WITHIN_S), "an undecodable Produce must close the connection"
    assert_still_serving(fresh_spindle)


def test_truncated_request_body_closes_connection(fresh_spindle):
    with wire.Connection(fresh_spindle.bootstrap) as conn:
        # Metadata v1 claiming 1000 topic names, with none in the frame.
        conn.send_request(wire.METADATA, 1, wire.i32(1000))
        assert conn.closed_by_peer(CLOSE_WITHIN_S), (
            "a request body shorter than its fields must close the connection"
        )
    assert_still_serving(fresh_spindle)


def test_an_array_count_beyond_the_frame_closes_connection_without_allocating_it(fresh_spindle):
    """A count of two billion elements in a frame of a few bytes: refused as malformed before
    anything is sized from it (an allocation that large would abort the whole process)."""
    for api, version, body in [
        (wire.METADATA, 1, wire.i32(0x7FFF_FFFF)),
        # Fetch v4: replica, max wait, min bytes, max bytes, isolation, then the topic count.
        (wire.FETCH, 4, wire.i32(-1) + wire.i32(0) + wire.i32(1) + wire.i32(1 << 20) + b"\x00" + wire.i32(0x7FFF_FFFF)),
    ]:
        with wire.Connection(fresh_spindle.bootstrap) as conn:
            conn.send_request(api, version, body)
            assert conn.closed_by_peer(CLOSE_WITHIN_S), f"API {api} v{version}: the connection stays open"
        assert_still_serving(fresh_spindle)


def test_trailing_bytes_after_request_body_close_connection(fresh_spindle, topic_name):
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=1)
    batch = wire.record_batch([wire.Record(value=b"padded", key=b"k")])
    with wire.Connection(bootstrap) as conn:
        # Produce v3 of one small batch, followed by 64 KiB that belong to no field.
        partitions = wire.array([wire.i32(0) + wire.nbytes(batch)])
        body = wire.string(None) + wire.i16(-1) + wire.i32(10_000)
        body += wire.array([wire.string(topic_name) + partitions])
        conn.send_request(wire.PRODUCE, 3, body + b"\x00" * 65536)
        assert conn.closed_by_peer(CLOSE_WITHIN_S), "bytes after a request's body must close the connection"
    with wire.Connection(bootstrap) as conn:
        error, high_watermark, records = conn.fetch(topic_name, 0)
        assert (error, high_watermark, records) == (wire.NONE, 0, b""), "the padded batch was stored"
    assert_still_serving(fresh_spindle)


def test_unknown_api_key(fresh_spindle):
    with wire.Connection(fresh_spindle.bootstrap) as conn:
        correlation_id = conn.send_request(32_000, 0, b"")
        try:
            frame = conn.recv_frame()
        except (wire.ConnectionClosed, ConnectionResetError):
            pass  # Kafka closes the connection.
        else:
            got = wire.Reader(frame).i32()
            assert got == correlation_id, "an answer to an unknown API must carry its correlation id"
    assert_still_serving(fresh_spindle)


def test_api_versions_unsupported_version_lists_ranges(fresh_spindle):
    with wire.Connection(fresh_spindle.bootstrap) as conn:
        error, versions = conn.api_versions(version=99)
        assert error == wire.UNSUPPORTED_VERSION
        assert versions, "error 35 must still list the supported ranges"
        lo, hi = versions[wire.API_VERSIONS]
        assert lo == 0 and hi >= 3
        assert versions[wire.PRODUCE][1] >= 3, "record batches (magic 2) need Produce v3+"
        assert versions[wire.FETCH][1] >= 4, "record batches (magic 2) need Fetch v4+"
        for key, (lo, hi) in versions.items():
            assert 0 <= lo <= hi, f"API {key}: bad range {lo}..{hi}"

        # The client then downgrades on the same connection.
        error, again = conn.api_versions(version=0)
        assert error == wire.NONE
        assert again == versions
    assert_still_serving(fresh_spindle)


def test_corrupt_batch_is_refused_and_other_partition_is_stored(fresh_spindle, topic_name):
    bootstrap = fresh_spindle.bootstrap
    clients.create_topic(bootstrap, topic_name, partitions=2)
    good = wire.record_batch([wire.Record(value=b"good", key=b"k")])
    bad = wire.corrupt_crc(wire.record_batch([wire.Record(value=b"bad", key=b"k")]))

    with wire.Connection(bootstrap) as conn:
        result = conn.produce(topic_name, {0: good, 1: bad})
        assert result[0] == (wire.NONE, 0)
        assert result[1][0] == wire.CORRUPT_MESSAGE
        # The connection stays usable, and the partition takes the next good batch at offset 0.
        assert conn.produce(topic_name, {1: good}) == {1: (wire.NONE, 0)}

    cons = clients.consumer(bootstrap)
    assert cons.get_watermark_offsets(CTP(topic_name, 0), timeout=10) == (0, 1)
    assert cons.get_watermark_offsets(CTP(topic_name, 1), timeout=10) == (0, 1)
    cons.assign([CTP(topic_name, 0, 0), CTP(topic_name, 1, 0)])
    got = clients.consume(cons, 2)
    clients.assert_no_more(cons, quiet_s=0.5)
    cons.close()
    assert sorted((m.partition(), m.offset(), m.value()) for m in got) == [(0, 0, b"good"), (1, 0, b"good")]
    assert_still_serving(fresh_spindle)
