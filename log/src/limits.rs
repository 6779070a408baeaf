//! Named limits of the log, with their relations checked at compile time.

/// Bytes of a Kafka v2 record batch header, from the base offset to the records count.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the `batch_length` field's coverage starts (base offset + length).
pub const BATCH_LOG_OVERHEAD_BYTES: usize = 12;
/// Byte position in the batch where the CRC32C coverage starts (the attributes field).
pub const BATCH_CRC_START: usize = 21;
/// Largest record batch accepted (Kafka's `message.max.bytes` is 1 MiB by default).
pub const BATCH_BYTES_MAX: usize = 16 << 20;
/// The in-memory tail cache keeps at most this many bytes of the most recent batches.
pub const TAIL_CACHE_BYTES_MAX: usize = 8 << 20;
/// One DMA write carries at most this many bytes; larger flushes issue several concurrently.
pub const WRITE_CHUNK_BYTES: usize = 1 << 20;
/// One write round takes at most this many bytes of queued batches (and at least one batch):
/// the round's copy and its DMA buffers are memory no budget sees, so a deep queue is written
/// in several rounds rather than doubled in memory at once.
pub const ROUND_BYTES_MAX: u64 = 8 << 20;
/// Longest a flusher waits before a durable round for the producers the last round answered to
/// append again (see `group_commit`); the wait is also at most a third of the last round.
pub const GATHER_WAIT_MAX: std::time::Duration = std::time::Duration::from_micros(200);
/// A gathering flusher stops waiting once no batch has been appended for this long.
pub const GATHER_GAP_MAX: std::time::Duration = std::time::Duration::from_micros(40);
/// Segment files are preallocated in steps of this many bytes.
pub const PREALLOCATE_STEP_BYTES: u64 = 16 << 20;
/// Segment files that retention retires are kept, up to this many per log or as many as the log
/// rolled since retention last ran if that is more, for the next rolls to write over (see
/// `Log::start_segment_file`); the rest are deleted.
pub const SPARE_SEGMENTS_MAX: usize = 2;
/// A spare segment file that no roll has taken for this long is deleted, so that only logs that
/// keep rolling keep spares (as Kafka keeps deleted segments for `file.delete.delay.ms`).
pub const SPARE_IDLE_MS: i64 = 60_000;
/// A segment that retention deletes is truncated by at most this many bytes per file-system
/// commit (see `io::remove_gradually`).
pub const REMOVE_STEP_BYTES: u64 = 16 << 20;
/// Pause between two such steps, so that deleting leaves the disk to appends most of the time.
pub const REMOVE_STEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);
/// The short walks from an index entry that truncation and timestamp lookups make read at least
/// this many bytes of a segment file at a time.
pub const READ_WINDOW_BYTES: usize = 256 << 10;
/// Long reads of a segment file (a consumer's read of old data, at most what it may return plus
/// an index interval; recovery's scan of a whole segment) fetch up to this many bytes at a
/// time. Each window is one DMA read awaited before the next, so a long read pays one device
/// round trip per window: consumers reading from disk got 593-617 MB/s at 0.59-0.67 CPU-s per
/// GB with 256 KiB windows and 649-722 MB/s at 0.47-0.57 with 1 MiB (docs/BENCHMARKS.md).
pub const LONG_READ_WINDOW_BYTES: usize = 1 << 20;
/// Recovery reports its progress through a segment it scans every this many bytes, and how
/// long the scan took if the segment was at least this large.
pub const SCAN_PROGRESS_BYTES: u64 = 256 << 20;
/// Without a usable producer snapshot (see `producer_snapshot`), recovery reads idempotent
/// producers' batch headers from at least the last this many bytes of the log: the active
/// segment, and the ends of the segments before it when the active one is shorter, so that a
/// retry after a restart finds its original also when rolls came between them. Two write rounds'
/// worth: an acknowledgement is sent as its round completes, so the batches still
/// unacknowledged at a stop are normally in the last round or the one before. The cost at a
/// start is bounded: segments before the active one are read only while the active one, which
/// recovery reads whole anyway, is shorter than this.
pub const PRODUCER_HISTORY_BYTES: u64 = 2 * ROUND_BYTES_MAX;
/// Recovery replays a producer snapshot over at most this many bytes of sealed segments
/// (always at least the segment before the active one, whatever its size): a snapshot further
/// back is passed over for the `PRODUCER_HISTORY_BYTES` window, so that a start never reads
/// more than that much beyond the active segment to rebuild producer state.
pub const SNAPSHOT_REPLAY_BYTES_MAX: u64 = 1 << 30;
/// Default segment size before rolling.
pub const SEGMENT_BYTES_DEFAULT: u64 = 1 << 30;
/// Largest accepted segment size: positions in the offset index are 32-bit.
pub const SEGMENT_BYTES_MAX: u64 = (u32::MAX as u64) - (BATCH_BYTES_MAX as u64) - (1 << 20);
/// Smallest accepted segment size.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Largest span of offsets one segment holds (last offset − base offset): index entries store
/// offsets relative to the segment's base in 32 bits. A batch's records count comes from the
/// client and compressed batches are not opened, so a few small batches can claim billions of
/// offsets; the log rolls before one would leave this span.
pub const SEGMENT_OFFSET_SPAN_MAX: u64 = u32::MAX as u64;
/// Default spacing of sparse offset index entries.
pub const INDEX_INTERVAL_BYTES_DEFAULT: u32 = 4096;

const _: () = assert!(BATCH_HEADER_BYTES == 61);
const _: () = assert!(WRITE_CHUNK_BYTES % 4096 == 0);
const _: () = assert!(ROUND_BYTES_MAX >= WRITE_CHUNK_BYTES as u64);
const _: () = assert!(PREALLOCATE_STEP_BYTES % (WRITE_CHUNK_BYTES as u64) == 0);
const _: () = assert!(TAIL_CACHE_BYTES_MAX >= BATCH_BYTES_MAX / 2);
const _: () = assert!(SEGMENT_BYTES_MAX > SEGMENT_BYTES_DEFAULT);
const _: () = assert!(GATHER_GAP_MAX.as_nanos() <= GATHER_WAIT_MAX.as_nanos());

/// Memory a compaction pass's key map may take before it stops mapping more segments (it maps
/// at least one whole segment).
pub const KEY_MAP_BYTES_MAX: usize = 64 << 20;
