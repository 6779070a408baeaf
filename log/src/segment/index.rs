//! The sparse offset index and the time index of one segment.
//!
//! In memory both live in one [`SegmentIndex`]: every `index_interval_bytes` of batches, an entry
//! records the batch's offset (relative to the segment base), its byte position, and the largest
//! timestamp of all batches *before* it. That last value makes the time lookup exact: every batch
//! before an entry whose timestamp is below the target has all its records below the target, so a
//! scan may start there.
//!
//! On disk they are two Spindle-own files, `.index` and `.timeindex`, each a 48-byte header and
//! fixed-size big-endian entries (see docs/FORMAT.md). The header names the segment base, the
//! segment length it describes, the segment's next offset and max timestamp, the entry count and
//! a crc32fast checksum of the rest. An index whose checksum, base or length does not match is
//! stale or garbage and is rebuilt from the segment, never trusted.

use zerocopy::byteorder::big_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::offset::Offset;

/// Magic of an offset index file.
const OFFSET_MAGIC: [u8; 4] = *b"SPXO";
/// Magic of a time index file.
const TIME_MAGIC: [u8; 4] = *b"SPXT";
/// Version of both index file formats.
const VERSION: u16 = 1;
/// Bytes of the header covered by the checksum (all but the checksum itself).
const CHECKED_HEADER_BYTES: usize = 44;

/// Header of `.index` and `.timeindex` files.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct IndexFileHeader {
    magic: [u8; 4],
    version: U16,
    entry_bytes: U16,
    base_offset: U64,
    log_bytes: U64,
    next_offset: U64,
    max_timestamp: I64,
    entries: U32,
    crc: U32,
}

/// One `.index` entry.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct OffsetEntry {
    relative_offset: U32,
    position: U32,
}

/// One `.timeindex` entry.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct TimeEntry {
    max_timestamp_before: I64,
    relative_offset: U32,
}

/// Bytes of an index file header.
pub(crate) const HEADER_BYTES: usize = std::mem::size_of::<IndexFileHeader>();
const _: () = assert!(HEADER_BYTES == CHECKED_HEADER_BYTES + 4);

/// What an index file says about its segment besides the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub base: Offset,
    pub log_bytes: u64,
    pub next: Offset,
    pub max_timestamp: i64,
}

/// Sparse offset and time index of one segment, in memory (public for the benches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    relative_offsets: Vec<u32>,
    positions: Vec<u32>,
    max_timestamps_before: Vec<i64>,
}

impl SegmentIndex {
    /// Adds an entry; offsets and positions must grow.
    ///
    /// # Panics
    /// Panics if the entry does not come after the last one (a broken invariant).
    pub fn push(&mut self, relative_offset: u32, position: u32, max_timestamp_before: i64) {
        if let (Some(&o), Some(&p)) = (self.relative_offsets.last(), self.positions.last()) {
            assert!(
                o < relative_offset && p < position,
                "index entries must grow"
            );
        }
        self.relative_offsets.push(relative_offset);
        self.positions.push(position);
        self.max_timestamps_before.push(max_timestamp_before);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The last indexed batch starting at or before `relative_offset`, as (relative offset,
    /// byte position), or (0, 0): where a scan for that offset starts.
    pub fn entry_for(&self, relative_offset: u32) -> (u32, u64) {
        let i = self
            .relative_offsets
            .partition_point(|&o| o <= relative_offset);
        self.entry(i)
    }

    /// The last indexed batch starting at or before byte `position`, as (relative offset, byte
    /// position), or (0, 0).
    pub fn entry_at_or_before_position(&self, position: u64) -> (u32, u64) {
        let i = self
            .positions
            .partition_point(|&p| u64::from(p) <= position);
        self.entry(i)
    }

    /// Where a scan for the first batch with max timestamp >= `ts` may start, as (relative
    /// offset, byte position).
    pub fn entry_for_timestamp(&self, ts: i64) -> (u32, u64) {
        let i = self.max_timestamps_before.partition_point(|&t| t < ts);
        self.entry(i)
    }

    /// Entry `i - 1`, or the segment start for `i == 0`.
    fn entry(&self, i: usize) -> (u32, u64) {
        if i == 0 {
            (0, 0)
        } else {
            (
                self.relative_offsets[i - 1],
                u64::from(self.positions[i - 1]),
            )
        }
    }

    /// The last entry as (relative offset, position, max timestamp before), if any.
    pub(crate) fn last(&self) -> Option<(u32, u64, i64)> {
        let i = self.len().checked_sub(1)?;
        Some((
            self.relative_offsets[i],
            u64::from(self.positions[i]),
            self.max_timestamps_before[i],
        ))
    }

    /// Drops every entry at or after byte `position`.
    pub(crate) fn truncate_at_position(&mut self, position: u64) {
        let keep = self.positions.partition_point(|&p| u64::from(p) < position);
        self.relative_offsets.truncate(keep);
        self.positions.truncate(keep);
        self.max_timestamps_before.truncate(keep);
    }

    /// Bytes the two index files take on disk.
    pub(crate) fn file_bytes(&self) -> u64 {
        (2 * HEADER_BYTES + self.len() * (8 + 12)) as u64
    }

    /// Encodes the `.index` file.
    pub(crate) fn encode_offsets(&self, summary: SegmentSummary) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_BYTES];
        for (&o, &p) in self.relative_offsets.iter().zip(&self.positions) {
            let e = OffsetEntry {
                relative_offset: o.into(),
                position: p.into(),
            };
            out.extend_from_slice(e.as_bytes());
        }
        seal_header(&mut out, OFFSET_MAGIC, 8, summary, self.len());
        out
    }

    /// Encodes the `.timeindex` file.
    pub(crate) fn encode_times(&self, summary: SegmentSummary) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_BYTES];
        for (&t, &o) in self
            .max_timestamps_before
            .iter()
            .zip(&self.relative_offsets)
        {
            let e = TimeEntry {
                max_timestamp_before: t.into(),
                relative_offset: o.into(),
            };
            out.extend_from_slice(e.as_bytes());
        }
        seal_header(&mut out, TIME_MAGIC, 12, summary, self.len());
        out
    }

    /// Decodes the pair of index files, or `None` if either is damaged, stale (describes another
    /// base or another segment length) or inconsistent with the other.
    pub(crate) fn decode(
        offsets: &[u8],
        times: &[u8],
        base: Offset,
        log_bytes: u64,
    ) -> Option<(Self, SegmentSummary)> {
        let (ho, entries_o) = check_header(offsets, OFFSET_MAGIC, 8)?;
        let (ht, entries_t) = check_header(times, TIME_MAGIC, 12)?;
        let summary = summary_of(ho);
        if summary != summary_of(ht) || summary.base != base || summary.log_bytes != log_bytes {
            return None;
        }
        let offsets = <[OffsetEntry]>::ref_from_bytes(entries_o).ok()?;
        let times = <[TimeEntry]>::ref_from_bytes(entries_t).ok()?;
        if offsets.len() != times.len() {
            return None;
        }
        let mut index = SegmentIndex::default();
        for (o, t) in offsets.iter().zip(times) {
            let (rel, pos) = (o.relative_offset.get(), o.position.get());
            let grows = index
                .relative_offsets
                .last()
                .is_none_or(|&last| last < rel && index.positions.last().is_some_and(|&p| p < pos));
            if !grows || t.relative_offset.get() != rel || u64::from(pos) >= log_bytes {
                return None;
            }
            index.push(rel, pos, t.max_timestamp_before.get());
        }
        Some((index, summary))
    }
}

fn summary_of(h: &IndexFileHeader) -> SegmentSummary {
    SegmentSummary {
        base: Offset(h.base_offset.get()),
        log_bytes: h.log_bytes.get(),
        next: Offset(h.next_offset.get()),
        max_timestamp: h.max_timestamp.get(),
    }
}

/// Fills in the header at the front of `out` (entries already appended) with its checksum.
fn seal_header(
    out: &mut [u8],
    magic: [u8; 4],
    entry_bytes: u16,
    s: SegmentSummary,
    entries: usize,
) {
    let mut h = IndexFileHeader {
        magic,
        version: VERSION.into(),
        entry_bytes: entry_bytes.into(),
        base_offset: s.base.0.into(),
        log_bytes: s.log_bytes.into(),
        next_offset: s.next.0.into(),
        max_timestamp: s.max_timestamp.into(),
        entries: u32::try_from(entries)
            .expect("index entries fit u32")
            .into(),
        crc: 0.into(),
    };
    out[..HEADER_BYTES].copy_from_slice(h.as_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&out[..CHECKED_HEADER_BYTES]);
    hasher.update(&out[HEADER_BYTES..]);
    h.crc = hasher.finalize().into();
    out[..HEADER_BYTES].copy_from_slice(h.as_bytes());
}

/// Checks magic, version, entry size, entry count and checksum; returns header and entries.
fn check_header(
    bytes: &[u8],
    magic: [u8; 4],
    entry_bytes: u16,
) -> Option<(&IndexFileHeader, &[u8])> {
    let (h, entries) = IndexFileHeader::ref_from_prefix(bytes).ok()?;
    let count = usize::try_from(h.entries.get()).ok()?;
    if h.magic != magic
        || h.version.get() != VERSION
        || h.entry_bytes.get() != entry_bytes
        || entries.len() != count.checked_mul(usize::from(entry_bytes))?
    {
        return None;
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..CHECKED_HEADER_BYTES]);
    hasher.update(entries);
    (hasher.finalize() == h.crc.get()).then_some((h, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SegmentIndex, SegmentSummary) {
        let mut i = SegmentIndex::default();
        i.push(10, 4100, 5);
        i.push(20, 8300, 9);
        i.push(35, 12400, 9);
        let s = SegmentSummary {
            base: Offset(100),
            log_bytes: 16000,
            next: Offset(140),
            max_timestamp: 12,
        };
        (i, s)
    }

    #[test]
    fn lookups() {
        let (i, _) = sample();
        assert_eq!(i.entry_for(0), (0, 0));
        assert_eq!(i.entry_for(10), (10, 4100));
        assert_eq!(i.entry_for(19), (10, 4100));
        assert_eq!(i.entry_for(36), (35, 12400));
        assert_eq!(i.entry_for_timestamp(5), (0, 0));
        assert_eq!(i.entry_for_timestamp(6), (10, 4100));
        assert_eq!(i.entry_for_timestamp(10), (35, 12400));
        assert_eq!(i.last(), Some((35, 12400, 9)));
    }

    #[test]
    fn round_trip_and_rejects_garbage_or_stale() {
        let (i, s) = sample();
        let (o, t) = (i.encode_offsets(s), i.encode_times(s));
        let (back, summary) = SegmentIndex::decode(&o, &t, s.base, s.log_bytes).unwrap();
        assert_eq!((back, summary), (i, s));
        assert!(SegmentIndex::decode(&o, &t, s.base, s.log_bytes + 1).is_none());
        assert!(SegmentIndex::decode(&o, &t, Offset(0), s.log_bytes).is_none());
        for k in 0..o.len() {
            let mut bad = o.clone();
            bad[k] ^= 0x40;
            assert!(SegmentIndex::decode(&bad, &t, s.base, s.log_bytes).is_none());
        }
        assert!(SegmentIndex::decode(&o[..o.len() - 1], &t, s.base, s.log_bytes).is_none());
        assert!(SegmentIndex::decode(b"garbage", &t, s.base, s.log_bytes).is_none());
    }
}
