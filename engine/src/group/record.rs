//! The records of the offsets log: what a commit looks like on disk.
//!
//! Committed offsets are stored in the internal `__consumer_offsets` topic as ordinary Kafka v2
//! record batches (so the log, its recovery and any future replication treat them like any
//! data). Each record is one committed offset; the key names it and the value holds it. Replay
//! applies records in log order, so the last commit of a key wins; a record with a null value
//! (a tombstone) deletes the key. All integers are big-endian.
//!
//! ```text
//! key, version 1 (offset commit):
//!   u16  key version = 1
//!   u16  group id length G     G bytes  group id, UTF-8
//!   u16  topic length T        T bytes  topic, UTF-8
//!   u32  partition
//! value, version 1:
//!   u16  value version = 1
//!   i64  committed offset
//!   i32  leader epoch (-1: none)
//!   i64  commit timestamp, ms since the Unix epoch
//!   i16  metadata length M (-1: null)    M bytes  metadata, UTF-8
//! ```
//!
//! A group's membership is stored beside its commits under a key of version 2 (the
//! group id alone); its value is described in [`super::membership`].
//!
//! The version fields let later formats (more value fields) coexist: replay skips keys and
//! values of versions it does not know, with a warning, rather than guessing at them.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::member::Protocol;
use super::offsets::CommittedOffset;
use crate::TopicPartition;

/// Version of the offset-commit key.
pub(crate) const KEY_VERSION_OFFSET: u16 = 1;
/// Version of the offset-commit value.
pub(crate) const VALUE_VERSION_OFFSET: u16 = 1;

/// Version of the group-membership key.
pub(crate) const KEY_VERSION_GROUP: u16 = 2;

/// What a record of the offsets log is about, read from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordKey {
    /// A committed offset.
    Offset(OffsetKey),
    /// A group's membership, by group id.
    Group(String),
}

impl RecordKey {
    pub(crate) fn decode(bytes: &[u8]) -> Result<RecordKey, DecodeError> {
        let mut r = Reader(bytes);
        match r.u16()? {
            KEY_VERSION_OFFSET => OffsetKey::decode(bytes).map(RecordKey::Offset),
            KEY_VERSION_GROUP => {
                let group = r.str16()?;
                r.finish()?;
                Ok(RecordKey::Group(group))
            }
            version => Err(DecodeError::UnknownVersion(version)),
        }
    }
}

/// The key of a group's membership record.
pub(crate) fn group_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_u16(KEY_VERSION_GROUP);
    put_str16(&mut buf, group);
    buf.freeze()
}

/// The key of an offset record: which group's offset of which partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetKey {
    pub(crate) group: String,
    pub(crate) tp: TopicPartition,
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes end before the fields do.
    Truncated,
    /// Bytes follow the last field.
    TrailingBytes,
    /// A version this build does not know.
    UnknownVersion(u16),
    /// A name or metadata that is not UTF-8.
    NotUtf8,
}

impl OffsetKey {
    pub(crate) fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(10 + self.group.len() + self.tp.topic.len());
        buf.put_u16(KEY_VERSION_OFFSET);
        put_str16(&mut buf, &self.group);
        put_str16(&mut buf, &self.tp.topic);
        buf.put_u32(self.tp.partition.0);
        buf.freeze()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<OffsetKey, DecodeError> {
        let mut r = Reader(bytes);
        let version = r.u16()?;
        if version != KEY_VERSION_OFFSET {
            return Err(DecodeError::UnknownVersion(version));
        }
        let group = r.str16()?;
        let topic = r.str16()?;
        let partition = r.u32()?;
        r.finish()?;
        Ok(OffsetKey {
            group,
            tp: TopicPartition::new(Arc::<str>::from(topic), partition),
        })
    }
}

/// Encodes a committed offset as a version-1 value.
pub(crate) fn encode_value(offset: &CommittedOffset) -> Bytes {
    let metadata_len = offset.metadata.as_ref().map_or(0, String::len);
    let mut buf = BytesMut::with_capacity(24 + metadata_len);
    buf.put_u16(VALUE_VERSION_OFFSET);
    buf.put_i64(offset.offset);
    buf.put_i32(offset.leader_epoch);
    buf.put_i64(offset.commit_timestamp_ms);
    match &offset.metadata {
        // Lengths are bounded by OFFSET_METADATA_BYTES_MAX (checked at commit), far below i16.
        Some(m) => {
            let len = i16::try_from(m.len()).unwrap_or(i16::MAX);
            buf.put_i16(len);
            buf.put_slice(&m.as_bytes()[..len as usize]);
        }
        None => buf.put_i16(-1),
    }
    buf.freeze()
}

/// Decodes a value written by [`encode_value`].
pub(crate) fn decode_value(bytes: &[u8]) -> Result<CommittedOffset, DecodeError> {
    let mut r = Reader(bytes);
    let version = r.u16()?;
    if version != VALUE_VERSION_OFFSET {
        return Err(DecodeError::UnknownVersion(version));
    }
    let offset = r.i64()?;
    let leader_epoch = r.i32()?;
    let commit_timestamp_ms = r.i64()?;
    let metadata_len = r.i16()?;
    let metadata = match usize::try_from(metadata_len) {
        Ok(len) => Some(utf8(r.take(len)?)?),
        Err(_) => None,
    };
    r.finish()?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

pub(super) fn put_str16(buf: &mut BytesMut, s: &str) {
    // Names are bounded by NAME_BYTES_MAX (checked before anything is written), far below u16.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    buf.put_u16(len);
    buf.put_slice(&s.as_bytes()[..usize::from(len)]);
}

fn utf8(bytes: &[u8]) -> Result<String, DecodeError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::NotUtf8)
}

/// Writes a u32 length and `bytes`.
pub(super) fn put_bytes32(buf: &mut BytesMut, bytes: &[u8]) {
    // Members' metadata and assignments: at most MEMBER_METADATA_BYTES_MAX, checked at join
    // and sync.
    buf.put_u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    buf.put_slice(bytes);
}

/// Writes a member's protocols: a u16 count, then each one's name and metadata.
pub(super) fn put_protocols(buf: &mut BytesMut, protocols: &[Protocol]) {
    // At most PROTOCOLS_PER_MEMBER_MAX, checked at join.
    buf.put_u16(u16::try_from(protocols.len()).unwrap_or(u16::MAX));
    for protocol in protocols {
        put_str16(buf, &protocol.name);
        put_bytes32(buf, &protocol.metadata);
    }
}

/// Writes a count of items as a u32; the coordinator's limits keep every count far below
/// `u32::MAX`.
pub(super) fn put_count(buf: &mut BytesMut, count: usize) {
    buf.put_u32(u32::try_from(count).unwrap_or(u32::MAX));
}

/// Writes an optional string: u8 1 and the string, or u8 0.
pub(super) fn put_opt_str16(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        Some(value) => {
            buf.put_u8(1);
            put_str16(buf, value);
        }
        None => buf.put_u8(0),
    }
}

/// Writes a timeout in ms; the coordinator bounds them far below `u32::MAX` ms.
pub(super) fn put_millis(buf: &mut BytesMut, timeout: Duration) {
    buf.put_u32(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
}

/// A cursor over a stored record's bytes.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array().map(u8::from_be_bytes)
    }

    pub(super) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    pub(super) fn i16(&mut self) -> Result<i16, DecodeError> {
        self.array().map(i16::from_be_bytes)
    }

    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    pub(super) fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_be_bytes)
    }

    pub(super) fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_be_bytes)
    }

    /// Bytes after a u32 length, as [`put_bytes32`] writes them.
    pub(super) fn bytes32(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()?;
        self.take(usize::try_from(len).map_err(|_| DecodeError::Truncated)?)
    }

    /// Protocols as [`put_protocols`] writes them.
    pub(super) fn protocols(&mut self) -> Result<Vec<Protocol>, DecodeError> {
        let mut protocols = Vec::new();
        for _ in 0..self.u16()? {
            let name = self.str16()?;
            let metadata = Bytes::copy_from_slice(self.bytes32()?);
            protocols.push(Protocol { name, metadata });
        }
        Ok(protocols)
    }

    /// A timeout as [`put_millis`] writes it.
    pub(super) fn millis(&mut self) -> Result<Duration, DecodeError> {
        Ok(Duration::from_millis(u64::from(self.u32()?)))
    }

    pub(super) fn str16(&mut self) -> Result<String, DecodeError> {
        let len = self.u16()?;
        utf8(self.take(usize::from(len))?)
    }

    /// An optional string as [`put_opt_str16`] writes it.
    pub(super) fn opt_str16(&mut self) -> Result<Option<String>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.str16().map(Some),
        }
    }

    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(metadata: Option<&str>) -> CommittedOffset {
        CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: metadata.map(str::to_owned),
            commit_timestamp_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn key_round_trips_and_has_the_documented_layout() {
        let key = OffsetKey {
            group: "g1".into(),
            tp: TopicPartition::new("t", 7),
        };
        let bytes = key.encode();
        assert_eq!(
            bytes.as_ref(),
            &[0, 1, 0, 2, b'g', b'1', 0, 1, b't', 0, 0, 0, 7][..]
        );
        assert_eq!(OffsetKey::decode(&bytes), Ok(key));
    }

    #[test]
    fn value_round_trips_with_and_without_metadata() {
        for c in [commit(Some("hello")), commit(Some("")), commit(None)] {
            assert_eq!(decode_value(&encode_value(&c)), Ok(c));
        }
        let bytes = encode_value(&commit(None));
        let mut expected = vec![0, 1];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes.as_ref(), &expected[..]);
    }

    #[test]
    fn damaged_records_are_refused_by_name() {
        let key = OffsetKey {
            group: "g".into(),
            tp: TopicPartition::new("t", 0),
        }
        .encode();
        assert_eq!(
            OffsetKey::decode(&key[..key.len() - 1]),
            Err(DecodeError::Truncated)
        );
        let mut long = key.to_vec();
        long.push(0);
        assert_eq!(OffsetKey::decode(&long), Err(DecodeError::TrailingBytes));
        assert_eq!(
            OffsetKey::decode(&[0, 9, 0, 0]),
            Err(DecodeError::UnknownVersion(9))
        );
        assert_eq!(
            OffsetKey::decode(&[0, 1, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::NotUtf8)
        );
        let value = encode_value(&commit(Some("m")));
        assert_eq!(
            decode_value(&value[..value.len() - 1]),
            Err(DecodeError::Truncated)
        );
    }
}
