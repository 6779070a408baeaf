"""The Kafka wire protocol by hand, for tests that real clients cannot express.

Real clients never send a bad CRC, an unknown API key or a duplicate batch on purpose, so the
tests that check how Spindle answers those build frames here with `struct`, following the Kafka
protocol guide: a frame is an int32 size then the request; the request header (v1) is api_key
int16, api_version int16, correlation_id int32, client_id nullable string. Only non-flexible
request versions are used, so no tagged fields are needed. Record batches are v2 ("magic 2"),
with the CRC-32C over everything from the attributes to the end.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

import crc32c

# API keys
PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
API_VERSIONS = 18
INIT_PRODUCER_ID = 22

# Error codes
NONE = 0
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35
DUPLICATE_SEQUENCE_NUMBER = 46
OUT_OF_ORDER_SEQUENCE_NUMBER = 45

IO_TIMEOUT_S = 10.0


# --- encoding --------------------------------------------------------------------------------
def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    raw = s.encode()
    return i16(len(raw)) + raw


def nbytes(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items: list[bytes]) -> bytes:
    return i32(len(items)) + b"".join(items)


def varint(v: int) -> bytes:
    """A zigzag-encoded signed varint, as record fields use."""
    z = (v << 1) ^ (v >> 63)
    out = bytearray()
    while True:
        byte = z & 0x7F
        z >>= 7
        if z:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varbytes(b: bytes | None) -> bytes:
    if b is None:
        return varint(-1)
    return varint(len(b)) + b


# --- decoding --------------------------------------------------------------------------------
class Reader:
    """Reads big-endian fields off a response body, front to back."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"response truncated: need {n} bytes at {self.pos} of {len(self.data)}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def i8(self) -> int:
        return self.unpack(">b")

    def i16(self) -> int:
        return self.unpack(">h")

    def i32(self) -> int:
        return self.unpack(">i")

    def i64(self) -> int:
        return self.unpack(">q")

    def string(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def array(self, item) -> list:
        n = self.i32()
        return [] if n < 0 else [item(self) for _ in range(n)]


# --- record batches --------------------------------------------------------------------------
@dataclass
class Record:
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_delta: int = 0


def encode_record(offset_delta: int, record: Record) -> bytes:
    body = (
        i8(0)
        + varint(record.timestamp_delta)
        + varint(offset_delta)
        + varbytes(record.key)
        + varbytes(record.value)
        + varint(len(record.headers))
        + b"".join(varbytes(k.encode()) + varbytes(v) for k, v in record.headers)
    )
    return varint(len(body)) + body


def record_batch(
    records: list[Record],
    base_timestamp: int | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    attributes: int = 0,
) -> bytes:
    """A v2 record batch with a correct CRC-32C (uncompressed unless `attributes` says so)."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    max_timestamp = base_timestamp + max(r.timestamp_delta for r in records)
    after_crc = (
        i16(attributes)
        + i32(len(records) - 1)
        + i64(base_timestamp)
        + i64(max_timestamp)
        + i64(producer_id)
        + i16(producer_epoch)
        + i32(base_sequence)
        + i32(len(records))
        + b"".join(encode_record(i, r) for i, r in enumerate(records))
    )
    crc = struct.pack(">I", crc32c.crc32c(after_crc))
    after_length = i32(0) + i8(2) + crc + after_crc  # partition leader epoch, magic, crc
    return i64(0) + i32(len(after_length)) + after_length


@dataclass
class BatchHeader:
    base_offset: int
    length: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    record_count: int
    crc_ok: bool

    @property
    def codec(self) -> int:
        """0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd."""
        return self.attributes & 0x7


def split_batches(records: bytes) -> list[BatchHeader]:
    """The v2 batch headers in a Fetch response's records, with each batch's CRC checked.
    A partial batch at the end (a fetch may cut one off) is left out."""
    headers = []
    pos = 0
    while pos + 61 <= len(records):
        base_offset, length, _epoch, magic, crc, attributes, last_delta = struct.unpack_from(
            ">qiibIhi", records, pos
        )
        end = pos + 12 + length
        if end > len(records):
            break
        (count,) = struct.unpack_from(">i", records, pos + 57)
        crc_ok = crc32c.crc32c(records[pos + 21 : end]) == crc
        headers.append(BatchHeader(base_offset, length, magic, crc, attributes, last_delta, count, crc_ok))
        pos = end
    return headers


def corrupt_crc(batch: bytes) -> bytes:
    """The same batch with one payload byte flipped, so its stored CRC no longer matches."""
    flipped = bytearray(batch)
    flipped[-1] ^= 0xFF
    return bytes(flipped)


# --- connection ------------------------------------------------------------------------------
class ConnectionClosed(Exception):
    pass


class Connection:
    """One TCP connection speaking raw Kafka frames, with bounded waits."""

    def __init__(self, bootstrap: str, timeout: float = IO_TIMEOUT_S):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.correlation_id = 0
        self.versions: dict[int, tuple[int, int]] | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_request(
        self, api_key: int, version: int, body: bytes, client_id: str | None = "spindle-e2e"
    ) -> int:
        self.correlation_id += 1
        header = i16(api_key) + i16(version) + i32(self.correlation_id) + string(client_id)
        request = header + body
        self.send_raw(i32(len(request)) + request)
        return self.correlation_id

    def _recv_exact(self, n: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            chunk = self.sock.recv(n - len(chunks))
            if not chunk:
                raise ConnectionClosed(f"connection closed after {len(chunks)} of {n} bytes")
            chunks += chunk
        return bytes(chunks)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        if size < 4 or size > 64 * 1024 * 1024:
            raise ValueError(f"implausible response size {size}")
        return self._recv_exact(size)

    def request(self, api_key: int, version: int, body: bytes) -> Reader:
        """Sends one request and returns a reader positioned after the response header."""
        correlation_id = self.send_request(api_key, version, body)
        reader = Reader(self.recv_frame())
        got = reader.i32()
        assert got == correlation_id, f"correlation id {got}, expected {correlation_id}"
        return reader

    def closed_by_peer(self, within_s: float) -> bool:
        """Whether the server closes this connection within `within_s`, reading (and dropping)
        whatever it sends meanwhile."""
        deadline = time.monotonic() + within_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False

    # --- APIs ----------------------------------------------------------------------------
    def api_versions(self, version: int = 0) -> tuple[int, dict[int, tuple[int, int]]]:
        """ApiVersions; returns (error_code, {api_key: (min, max)}). Sent with an empty body,
        which is how v0-v2 look and how a client probes a version it does not know."""
        reader = self.request(API_VERSIONS, version, b"")
        error = reader.i16()
        ranges = reader.array(lambda r: (r.i16(), r.i16(), r.i16()))
        return error, {key: (lo, hi) for key, lo, hi in ranges}

    def pick_version(self, api_key: int, lowest: int, highest: int) -> int:
        """The highest version in [lowest, highest] that the server advertises."""
        if self.versions is None:
            error, self.versions = self.api_versions()
            assert error == NONE, f"ApiVersions v0 failed with error {error}"
        assert api_key in self.versions, f"server does not advertise API {api_key}"
        lo, hi = self.versions[api_key]
        version = min(hi, highest)
        assert version >= max(lo, lowest), (
            f"API {api_key}: server offers v{lo}-v{hi}, this test speaks v{lowest}-v{highest}"
        )
        return version

    def produce(
        self,
        topic: str,
        batches: dict[int, bytes],
        acks: int = -1,
        timeout_ms: int = 10_000,
        transactional_id: str | None = None,
    ) -> dict[int, tuple[int, int]]:
        """Produce (v3-v8: same request layout); returns {partition: (error, base_offset)}."""
        version = self.pick_version(PRODUCE, 3, 8)
        partitions = [i32(p) + nbytes(b) for p, b in sorted(batches.items())]
        body = string(transactional_id) + i16(acks) + i32(timeout_ms) + array([string(topic) + array(partitions)])
        reader = self.request(PRODUCE, version, body)

        def partition(r: Reader) -> tuple[int, int, int]:
            index, error, base_offset = r.i32(), r.i16(), r.i64()
            r.i64()  # log_append_time_ms
            if version >= 5:
                r.i64()  # log_start_offset
            if version >= 8:
                r.array(lambda rr: (rr.i32(), rr.string()))  # record_errors
                r.string()  # error_message
            return index, error, base_offset

        topics = reader.array(lambda r: (r.string(), r.array(partition)))
        assert [name for name, _ in topics] == [topic], topics
        return {index: (error, base) for index, error, base in topics[0][1]}

    def init_producer_id(self, transactional_id: str | None = None) -> tuple[int, int, int]:
        """InitProducerId (v0-v1); returns (error, producer_id, epoch)."""
        version = self.pick_version(INIT_PRODUCER_ID, 0, 1)
        reader = self.request(INIT_PRODUCER_ID, version, string(transactional_id) + i32(60_000))
        reader.i32()  # throttle_time_ms
        return reader.i16(), reader.i64(), reader.i16()

    def fetch(
        self, topic: str, partition: int, offset: int = 0, max_bytes: int = 4 << 20
    ) -> tuple[int, int, bytes]:
        """Fetch v4 (read committed: no) of one partition; returns (error, high_watermark,
        records) where records are the stored batches, byte for byte."""
        version = self.pick_version(FETCH, 4, 4)
        partitions = array([i32(partition) + i64(offset) + i32(max_bytes)])
        body = i32(-1) + i32(100) + i32(1) + i32(max_bytes) + i8(0) + array([string(topic) + partitions])
        reader = self.request(FETCH, version, body)
        reader.i32()  # throttle_time_ms

        def partition_data(r: Reader) -> tuple[int, int, int, bytes]:
            index, error, high_watermark = r.i32(), r.i16(), r.i64()
            r.i64()  # last_stable_offset
            r.array(lambda rr: (rr.i64(), rr.i64()))  # aborted transactions
            size = r.i32()
            return index, error, high_watermark, b"" if size < 0 else r.take(size)

        [(name, [(index, error, high_watermark, records)])] = reader.array(
            lambda r: (r.string(), r.array(partition_data))
        )
        assert (name, index) == (topic, partition)
        return error, high_watermark, records

    def metadata(self, topics: list[str] | None = None) -> Reader:
        """Metadata v1 for `topics` (None: all topics); returns the reader after the header."""
        body = i32(-1) if topics is None else array([string(t) for t in topics])
        return self.request(METADATA, self.pick_version(METADATA, 1, 1), body)
