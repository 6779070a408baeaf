//! [`Partition`]: one partition as its owning shard holds it: the log, the idempotent producer
//! table and the event that wakes long-polling fetches.
//!
//! Everything here runs on the owning shard only. A produce judges its batches (size, producer
//! sequence) and appends them in one synchronous step, so no other request of the shard can
//! interleave between the check and the append; it then awaits `Log::flush`, which the log
//! shares among concurrent producers (group commit). Only after the flush has advanced the high
//! watermark are waiting fetches woken, so a fetch never sees a record before it could be
//! acknowledged.

mod maintenance;
mod producer;
mod txn;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;

use crate::event::Event;
use crate::limits::FETCH_MAX_WAIT;
use crate::log_api::{batch, Clock, Log, LogConfig, Offset};
use crate::metrics::LogCounters;
use crate::{
    AbortedTransaction, EngineError, FetchOutcome, FetchRequest, Isolation, OffsetSpec,
    PartitionState, ProduceOutcome, Result, ShardId, TimestampType, TopicConfig, TopicPartition,
};
use maintenance::Compaction;
pub use producer::ProducerState;
use producer::{decode_snapshot, ProducerBatch, ProducerTable, Verdict};
use spindle_log::batch::{BatchHeader, TxnMarker};
use spindle_log::LogError;
use txn::Transactions;

/// One partition on its owning shard.
pub(crate) struct Partition {
    tp: TopicPartition,
    dir: PathBuf,
    log: Log,
    producers: RefCell<ProducerTable>,
    /// Open and aborted transactions (see `txn`).
    txns: RefCell<Transactions>,
    /// The offset of the producer snapshot last saved or loaded (see `snapshot_producers`).
    snapshot_at: Cell<Option<Offset>>,
    /// Notified whenever the high watermark advances or the partition stops serving.
    appended: Event,
    max_message_bytes: Cell<u32>,
    /// Set once shutdown or deletion begins: no new produce, long polls answer at once.
    closing: Cell<bool>,
    /// Set once shutdown begins: long polls answer at once (produces still work while services
    /// finish their in-flight requests).
    polls_ended: Cell<bool>,
    /// For the `interval:MS` fsync timer: when the log was last synced, and up to where.
    last_sync_at: Cell<Instant>,
    synced_to: Cell<Offset>,
    /// How the partition is compacted, when its topic's `cleanup.policy` says it is.
    compaction: Cell<Option<Compaction>>,
    /// Whether batches get the append time as their timestamp (`LogAppendTime`).
    log_append_time: Cell<bool>,
    /// How far behind and ahead of the clock, in ms, a record's create time may be, if the topic
    /// limits it (see `TopicConfig::timestamp_window`).
    timestamp_window: Cell<Option<(u64, u64)>>,
    /// The clock append times come from (the log's).
    clock: Rc<dyn Clock>,
}

/// A transaction a batch would open in a partition, as verified with the coordinator.
pub(crate) struct OpeningTxn {
    pub producer_id: i64,
    pub epoch: i16,
    /// How many markers of the producer the partition had seen before the check.
    markers_seen: u64,
}

/// The base and last offsets of a stored batch (the log hands out only whole, checked batches).
fn batch_span(batch: &[u8]) -> (u64, u64) {
    BatchHeader::parse(batch).map_or((0, 0), |h| {
        let offset = |o: i64| u64::try_from(o).unwrap_or(0);
        (offset(h.base_offset()), offset(h.last_offset()))
    })
}

/// The producer fields of a batch header.
fn producer_batch(header: &BatchHeader) -> ProducerBatch {
    ProducerBatch::new(
        header.producer_id(),
        header.producer_epoch(),
        header.base_sequence(),
        header.last_offset_delta(),
    )
    .at(header.max_timestamp())
}

/// The log configuration a topic configuration asks for.
pub(crate) fn log_config(config: &TopicConfig) -> LogConfig {
    LogConfig {
        segment_bytes: config.segment_bytes,
        segment_ms: roll_after_ms(config),
        // A compacted topic's segments go by compaction alone unless its policy also deletes.
        retention_bytes: config
            .retention_bytes
            .filter(|_| config.cleanup_policy.deletes()),
        retention_ms: config
            .retention_ms
            .filter(|_| config.cleanup_policy.deletes()),
        fsync: config.fsync,
        ..LogConfig::default()
    }
}

/// How old the active segment may grow before it rolls: `segment.ms`, or for a compacted topic
/// `max.compaction.lag.ms` where that is sooner, as in Kafka (KIP-354). Compaction never touches
/// the active segment, so without the roll a quiet partition's records would wait up to
/// `segment.ms` (a week by default) however short the lag asked for.
fn roll_after_ms(config: &TopicConfig) -> Option<u64> {
    let lag = Some(config.max_compaction_lag_ms)
        .filter(|&ms| config.cleanup_policy.compacts() && ms < i64::MAX as u64);
    match (config.segment_ms, lag) {
        (Some(segment), Some(lag)) => Some(segment.min(lag)),
        (segment, lag) => segment.or(lag),
    }
}

impl Partition {
    /// Opens (or creates) the partition's log in `dir`, recovering it, and rebuilds the producer
    /// table (see `rebuild_producers`).
    ///
    /// # Errors
    /// Log recovery or I/O errors.
    pub(crate) async fn open(
        tp: TopicPartition,
        dir: PathBuf,
        config: &TopicConfig,
        clock: Rc<dyn Clock>,
    ) -> Result<Partition> {
        let log = Log::open(&dir, log_config(config), clock.clone()).await?;
        let partition = Partition {
            tp,
            dir,
            log,
            producers: RefCell::default(),
            txns: RefCell::default(),
            snapshot_at: Cell::new(None),
            appended: Event::default(),
            max_message_bytes: Cell::new(config.max_message_bytes),
            closing: Cell::new(false),
            polls_ended: Cell::new(false),
            last_sync_at: Cell::new(Instant::now()),
            synced_to: Cell::new(Offset(0)),
            compaction: Cell::new(Compaction::of(config)),
            log_append_time: Cell::new(config.timestamp_type == TimestampType::LogAppendTime),
            timestamp_window: Cell::new(config.timestamp_window()),
            clock,
        };
        partition.synced_to.set(partition.log.high_watermark());
        partition.rebuild_producers();
        Ok(partition)
    }

    /// Rebuilds the producer table from what the log's recovery found: the newest usable
    /// producer snapshot, if any, and the idempotent batches after it (or without one those at
    /// the end of the log), read once by recovery itself.
    fn rebuild_producers(&self) {
        let recovered = self.log.take_recovered_producers();
        let mut table = ProducerTable::default();
        let mut txns = Transactions::default();
        if let Some(snapshot) = recovered.snapshot {
            match decode_snapshot(&snapshot.body) {
                Some(saved) => (table, txns) = saved,
                // The log checked the file's CRC, so this is a format this build does not read.
                None => tracing::warn!(
                    partition = %self.tp,
                    offset = %snapshot.offset,
                    "ignoring a producer snapshot in an unknown format; producers whose last batch \
                     is before it are forgotten"
                ),
            }
            self.snapshot_at.set(Some(snapshot.offset));
        }
        for batch in recovered.batches {
            let header = batch.header;
            let base = Offset(u64::try_from(header.base_offset()).unwrap_or(0));
            let delta = u64::try_from(header.last_offset_delta()).unwrap_or(0);
            if let Some(marker) = batch.marker {
                table.fence(header.producer_id(), header.producer_epoch());
                txns.on_marker(header.producer_id(), marker == TxnMarker::Abort, base);
                continue;
            }
            table.record(
                &producer_batch(&header),
                base,
                Offset(base.0.saturating_add(delta)),
            );
            if header.is_transactional() {
                txns.on_data(header.producer_id(), base);
            }
        }
        txns.forget_below(self.log.start_offset());
        if table.len() > 0 {
            tracing::debug!(partition = %self.tp, producers = table.len(), "producer state rebuilt");
        }
        *self.producers.borrow_mut() = table;
        *self.txns.borrow_mut() = txns;
    }

    /// Bounds the log's tail cache to this partition's share of the shard's memory budget.
    pub(crate) fn set_tail_cache_bytes(&self, bytes: usize) {
        self.log.set_tail_cache_bytes(bytes);
    }

    /// The partition's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `records` and returns once they are written (see the module doc). The log takes
    /// the buffer over and patches the offsets into it.
    ///
    /// # Errors
    /// Oversize or invalid batches, producer sequence or epoch errors, I/O.
    pub(crate) async fn produce(&self, records: impl Into<BytesMut>) -> Result<ProduceOutcome> {
        let mut records = records.into();
        if self.closing.get() {
            return Err(EngineError::ShuttingDown);
        }
        let headers = self.judge_sizes(&records)?;
        self.judge_records(&records)?;
        let idempotent: Vec<(usize, ProducerBatch)> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.producer_id() >= 0)
            .map(|(i, h)| (i, producer_batch(h)))
            .collect();
        if let Some(duplicate) = self.judge_sequences(&idempotent, headers.len())? {
            // The original may still be on its way to the disk (or back in the queue after a
            // failed write): the retry is acknowledged only once the original is written, as
            // the original would have been.
            if self.log.high_watermark() <= duplicate.last_offset {
                self.log.flush().await?;
            }
            return Ok(duplicate);
        }
        let log_append_time_ms = if self.log_append_time.get() {
            let now = self.clock.now_ms();
            batch::stamp_log_append_time(&mut records, now).map_err(EngineError::InvalidBatch)?;
            now
        } else {
            -1
        };
        // No await between judging and appending: nothing else on this shard can append between.
        let info = self.log.append(records).map_err(|e| match e {
            LogError::InvalidBatch { .. } => EngineError::InvalidBatch(e),
            LogError::Closed { .. } => EngineError::ShuttingDown,
            other => EngineError::Log(other),
        })?;
        if !idempotent.is_empty() {
            let mut producers = self.producers.borrow_mut();
            let mut txns = self.txns.borrow_mut();
            let mut next = info.base_offset.0;
            for (i, h) in headers.iter().enumerate() {
                let last = next + u64::try_from(h.last_offset_delta()).unwrap_or(0);
                if let Some((_, pb)) = idempotent.iter().find(|(j, _)| *j == i) {
                    let pb = match log_append_time_ms {
                        -1 => *pb,
                        stamped => pb.at(stamped),
                    };
                    producers.record(&pb, Offset(next), Offset(last));
                    if h.is_transactional() {
                        txns.on_data(pb.producer_id, Offset(next));
                    }
                }
                next = last + 1;
            }
        }
        self.log.flush().await?;
        self.appended.notify();
        let outcome = ProduceOutcome {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            log_start_offset: self.log.start_offset(),
            log_append_time_ms,
        };
        Ok(outcome)
    }

    /// Checks every batch against `max.message.bytes`, and refuses control batches (only the
    /// transaction coordinator writes those); returns each batch's header.
    fn judge_sizes(&self, records: &[u8]) -> Result<Vec<BatchHeader>> {
        let max = self.max_message_bytes.get() as usize;
        let mut headers = Vec::new();
        for item in batch::batches(records) {
            let (header, raw) = item.map_err(EngineError::InvalidBatch)?;
            if raw.len() > max {
                return Err(EngineError::MessageTooLarge {
                    bytes: raw.len(),
                    max,
                });
            }
            if header.is_control() {
                return Err(EngineError::InvalidBatch(LogError::InvalidBatch {
                    position: 0,
                    reason: batch::BatchDefect::BadRecords,
                }));
            }
            headers.push(header);
        }
        Ok(headers)
    }

    /// The transaction `records` would open here, if they hold a transactional batch of a
    /// producer with no transaction open in this partition: what the shard verifies with the
    /// transaction coordinator before the append (see `Shard::produce_in_transaction`).
    pub(crate) fn transaction_to_verify(&self, records: &[u8]) -> Option<OpeningTxn> {
        let (header, _) = batch::batches(records).next()?.ok()?;
        if !header.is_transactional() || header.is_control() || header.producer_id() < 0 {
            return None;
        }
        let txns = self.txns.borrow();
        (!txns.is_open(header.producer_id())).then(|| OpeningTxn {
            producer_id: header.producer_id(),
            epoch: header.producer_epoch(),
            markers_seen: txns.markers_of(header.producer_id()),
        })
    }

    /// Refuses the append of a verified transaction's first batch when a marker for its
    /// producer came while the coordinator was asked: the transaction it was verified for ended.
    ///
    /// # Errors
    /// [`crate::txn::TxnError::InvalidState`].
    pub(crate) fn check_still_open(&self, opening: &OpeningTxn) -> Result<()> {
        if self.txns.borrow().markers_of(opening.producer_id) != opening.markers_seen {
            return Err(crate::txn::TxnError::InvalidState(
                "the transaction ended while its batch was verified",
            )
            .into());
        }
        Ok(())
    }

    /// Ends producer `producer_id`'s transaction in this partition with a marker (see `txn`),
    /// written with the producer's `epoch` (a coordinator that bumped it fences the older epoch
    /// here), and returns once the marker is written. A partition the producer wrote nothing to
    /// in the transaction gets the marker too, as in Kafka.
    ///
    /// # Errors
    /// [`EngineError::InvalidProducerEpoch`] when the partition has seen a later epoch of the
    /// producer; I/O.
    pub(crate) async fn write_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        marker: TxnMarker,
        coordinator_epoch: i32,
    ) -> Result<Offset> {
        if self.closing.get() {
            return Err(EngineError::ShuttingDown);
        }
        if self.producers.borrow().epoch_of(producer_id) > Some(epoch) {
            return Err(EngineError::InvalidProducerEpoch { producer_id, epoch });
        }
        let batch = batch::encode_marker(
            producer_id,
            epoch,
            marker,
            coordinator_epoch,
            self.clock.now_ms(),
        );
        let info = self.log.append(batch)?;
        self.producers.borrow_mut().fence(producer_id, epoch);
        self.txns
            .borrow_mut()
            .on_marker(producer_id, marker == TxnMarker::Abort, info.base_offset);
        self.log.flush().await?;
        self.txns
            .borrow_mut()
            .forget_ended_below(self.log.high_watermark());
        self.appended.notify();
        Ok(info.base_offset)
    }

    /// Reads the records of every batch where the topic asks for it, as Kafka does: a
    /// compacted topic refuses a record without a key (compaction could never tell which such
    /// record to keep), and a topic with a timestamp window (`message.timestamp.before.max.ms`,
    /// `message.timestamp.after.max.ms`) a record whose create time lies outside it. Other
    /// topics do not pay for reading the records (decompressing them a record at a time).
    fn judge_records(&self, records: &[u8]) -> Result<()> {
        let compaction = self.compaction.get();
        let window = self.timestamp_window.get().map(|(before, after)| {
            let now = i128::from(self.clock.now_ms());
            let clamp = |ms: i128| ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
            (
                clamp(now - i128::from(before)),
                clamp(now + i128::from(after)),
            )
        });
        if compaction.is_none() && window.is_none() {
            return Ok(());
        }
        let invalid = |reason| {
            EngineError::InvalidBatch(LogError::InvalidBatch {
                position: 0,
                reason,
            })
        };
        let unreadable = |_| invalid(batch::BatchDefect::BadRecords);
        for item in batch::batches(records) {
            let (_, raw) = item.map_err(EngineError::InvalidBatch)?;
            batch::validate(raw).map_err(invalid)?;
            if let Some(compaction) = compaction {
                if batch::clean::has_record_without_key(raw).map_err(unreadable)? {
                    return Err(EngineError::KeylessRecord {
                        topic: self.tp.topic.to_string(),
                        policy: compaction.policy.as_str(),
                    });
                }
            }
            if let Some((min, max)) = window {
                let outside = batch::clean::timestamp_outside(raw, min, max).map_err(unreadable)?;
                if let Some(timestamp) = outside {
                    return Err(EngineError::InvalidTimestamp {
                        timestamp,
                        min,
                        max,
                    });
                }
            }
        }
        Ok(())
    }

    /// Judges the idempotent batches of one request in order. Returns the original outcome when
    /// the request is one batch already stored.
    fn judge_sequences(
        &self,
        idempotent: &[(usize, ProducerBatch)],
        batch_count: usize,
    ) -> Result<Option<ProduceOutcome>> {
        if idempotent.is_empty() {
            return Ok(None);
        }
        let producers = self.producers.borrow();
        let mut scratch = producers.subset(idempotent.iter().map(|(_, b)| b.producer_id));
        for (_, pb) in idempotent {
            match scratch.check(pb)? {
                Verdict::Append => scratch.record(pb, Offset(0), Offset(0)),
                Verdict::Duplicate(stored) if batch_count == 1 => {
                    return Ok(Some(ProduceOutcome {
                        base_offset: stored.base_offset,
                        last_offset: stored.last_offset,
                        log_start_offset: self.log.start_offset(),
                        log_append_time_ms: -1,
                    }));
                }
                Verdict::Duplicate(_) => {
                    // A request mixing stored and new batches cannot be answered with one set of
                    // offsets; Kafka clients never send one (one batch per partition).
                    return Err(EngineError::OutOfOrderSequence {
                        producer_id: pb.producer_id,
                        expected: -1,
                        got: pb.first_seq,
                    });
                }
            }
        }
        Ok(None)
    }

    /// Reads from `req.offset`, waiting up to `req.max_wait` for `req.min_bytes`.
    ///
    /// # Errors
    /// [`EngineError::OffsetOutOfRange`], I/O.
    pub(crate) async fn fetch(&self, req: &FetchRequest) -> Result<FetchOutcome> {
        let deadline = Instant::now() + req.max_wait.min(FETCH_MAX_WAIT);
        loop {
            // Read the generation before the log: an append during the read is not missed.
            let seen = self.appended.generation();
            let outcome = self.read_once(req).await?;
            let now = Instant::now();
            if outcome.bytes() >= req.min_bytes || now >= deadline || self.polls_ended.get() {
                return Ok(outcome);
            }
            let timeout = async {
                glommio::timer::Timer::new(deadline - now).await;
            };
            futures_lite::future::or(self.appended.wait_past(seen), timeout).await;
        }
    }

    async fn read_once(&self, req: &FetchRequest) -> Result<FetchOutcome> {
        let start = self.log.start_offset();
        let high_watermark = self.log.high_watermark();
        if req.offset < start || req.offset > high_watermark {
            return Err(EngineError::OffsetOutOfRange {
                requested: req.offset,
                log_start: start,
                high_watermark,
            });
        }
        let committed = req.isolation == Isolation::ReadCommitted;
        let end = if committed {
            self.last_stable_offset()
        } else {
            high_watermark
        };
        let mut batches = if req.offset >= end || req.max_bytes == 0 {
            Vec::new()
        } else {
            self.log.read(req.offset, req.max_bytes).await?
        };
        let mut aborted = Vec::new();
        if committed {
            // The log reads up to the high watermark; a read-committed answer stops at the last
            // stable offset, which is always a batch's base offset. (It only grows: `end`, taken
            // before the read, still bounds what is committed.)
            batches.retain(|b| batch_span(b).0 < end.0);
            if let Some(last) = batches.last() {
                let to = Offset(batch_span(last).1.saturating_add(1));
                aborted = self
                    .txns
                    .borrow()
                    .aborted_within(req.offset, to)
                    .into_iter()
                    .map(|(producer_id, first_offset)| AbortedTransaction {
                        producer_id,
                        first_offset,
                    })
                    .collect();
            }
        }
        Ok(FetchOutcome {
            batches,
            high_watermark: self.log.high_watermark(),
            last_stable_offset: self.last_stable_offset(),
            log_start_offset: self.log.start_offset(),
            aborted,
        })
    }

    /// Every producer the partition knows (Kafka's DescribeProducers).
    pub(crate) fn producers(&self) -> Vec<ProducerState> {
        let txns = self.txns.borrow();
        self.producers
            .borrow()
            .states(|producer_id| txns.opened_at(producer_id))
    }

    /// The first offset of the oldest open transaction, or the high watermark.
    pub(crate) fn last_stable_offset(&self) -> Offset {
        self.txns
            .borrow()
            .last_stable_offset(self.log.high_watermark())
    }

    /// Deletes the records below `before` (the high watermark if `None`); the log start offset.
    ///
    /// # Errors
    /// [`EngineError::OffsetOutOfRange`] when `before` is above the high watermark; I/O.
    pub(crate) async fn delete_records(&self, before: Option<Offset>) -> Result<Offset> {
        self.log
            .delete_records_before(before)
            .await
            .map_err(|e| match e {
                LogError::OffsetOutOfRange {
                    requested,
                    start,
                    end,
                } => EngineError::OffsetOutOfRange {
                    requested,
                    log_start: start,
                    high_watermark: end,
                },
                other => other.into(),
            })
    }

    /// Resolves a ListOffsets query.
    ///
    /// # Errors
    /// I/O.
    pub(crate) async fn list_offset(&self, spec: OffsetSpec) -> Result<Option<(Offset, i64)>> {
        Ok(match spec {
            OffsetSpec::Earliest => Some((self.log.start_offset(), -1)),
            OffsetSpec::Latest => Some((self.log.high_watermark(), -1)),
            OffsetSpec::LastStable => Some((self.last_stable_offset(), -1)),
            OffsetSpec::Timestamp(ts) => self.log.offset_for_timestamp(ts).await?,
            OffsetSpec::MaxTimestamp => self.log.offset_of_max_timestamp().await?,
        })
    }

    /// Has the log tell `observer` how long each of its write rounds takes.
    pub(crate) fn observe_rounds(&self, observer: spindle_log::RoundObserver) {
        self.log.observe_rounds(observer);
    }

    /// What the partition's log has counted since it was opened.
    pub(crate) fn log_counters(&self) -> LogCounters {
        let stats = self.log.io_stats();
        LogCounters {
            syncs: stats.syncs,
            sync_micros: stats.sync_micros,
            bytes_read_cached: stats.bytes_read_cached,
            bytes_read_from_disk: stats.bytes_read_from_disk,
            segments_new: stats.segments_new,
            segments_recycled: stats.segments_recycled,
        }
    }

    /// The partition's live state.
    pub(crate) fn state(&self, shard: ShardId) -> PartitionState {
        PartitionState {
            partition: self.tp.partition,
            shard,
            log_start_offset: self.log.start_offset(),
            high_watermark: self.log.high_watermark(),
            size_bytes: self.log.size_bytes(),
        }
    }

    /// Applies a new topic configuration at once.
    pub(crate) fn set_config(&self, config: &TopicConfig) {
        self.max_message_bytes.set(config.max_message_bytes);
        self.compaction.set(Compaction::of(config));
        self.log_append_time
            .set(config.timestamp_type == TimestampType::LogAppendTime);
        self.timestamp_window.set(config.timestamp_window());
        let wanted = log_config(config);
        if self.log.config() != wanted {
            self.log.set_config(wanted);
        }
    }

    /// Answers waiting fetches at once, and every later fetch without waiting.
    pub(crate) fn end_long_polls(&self) {
        self.polls_ended.set(true);
        self.appended.notify();
    }

    /// Stops taking produces and answers waiting fetches at once.
    pub(crate) fn begin_closing(&self) {
        self.closing.set(true);
        self.end_long_polls();
    }

    /// Flushes and syncs the log, saves the producer snapshot and closes the log. A snapshot
    /// that cannot be saved is reported and the close goes on: the next open rebuilds the
    /// producers from the log's last batches instead.
    ///
    /// # Errors
    /// The first flush, sync or close error.
    pub(crate) async fn close(&self) -> Result<()> {
        self.begin_closing();
        self.log.flush().await?;
        self.log.sync().await?;
        if let Err(e) = self.snapshot_producers().await {
            tracing::warn!(partition = %self.tp, error = %e, "saving the producer snapshot at close");
        }
        self.log.close().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use spindle_log::testing::BatchBuilder;
    use spindle_log::SystemClock;

    #[test]
    fn producers_survive_a_crash_through_the_snapshot_saved_after_a_roll() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t-0");
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let clock: Rc<dyn Clock> = Rc::new(SystemClock);
                let mut config = TopicConfig::default();
                config.set("segment.bytes", "4194304").expect("valid");
                let tp = TopicPartition::new("t", 0);
                let open = || Partition::open(tp.clone(), path.clone(), &config, clock.clone());
                let partition = open().await.expect("open");
                let original = BatchBuilder::new(1_000)
                    .producer(7, 0, 0)
                    .records(3, 10)
                    .build();
                let first = partition.produce(original.clone()).await.expect("produce");
                // 20 MiB of another producer's batches (5 rolls), with the snapshot the shard
                // saves after each roll.
                for seq in 0..40 {
                    let other = BatchBuilder::new(1_000)
                        .producer(8, 0, seq * 500)
                        .records(500, 1000)
                        .build();
                    partition.produce(other).await.expect("produce");
                    partition
                        .snapshot_producers_if_rolled()
                        .await
                        .expect("snapshot");
                }
                let end = partition.log.next_offset();
                // A crash: the partition is dropped without closing its log.
                drop(partition);
                let partition = open().await.expect("reopen");
                assert_eq!(partition.log.next_offset(), end);
                let again = partition.produce(original).await.expect("retry");
                assert_eq!(
                    (again.base_offset, again.last_offset),
                    (first.base_offset, first.last_offset),
                    "the retry is known although its original is 20 MiB back"
                );
                let next = BatchBuilder::new(1_000)
                    .producer(8, 0, 40 * 500)
                    .records(1, 10)
                    .build();
                let stored = partition.produce(next).await.expect("in sequence");
                assert_eq!(stored.base_offset, end, "producer 8's sequence carried on");
                partition.close().await.expect("close");
            })
            .expect("executor")
            .join()
            .expect("executor thread");
    }

    /// Everything `partition` returns from offset 0 at `isolation`.
    async fn read_from_start(partition: &Partition, isolation: Isolation) -> FetchOutcome {
        let req = FetchRequest {
            tp: TopicPartition::new("t", 0),
            offset: Offset(0),
            max_bytes: 1 << 20,
            max_wait: Duration::ZERO,
            min_bytes: 0,
            isolation,
        };
        partition.fetch(&req).await.expect("fetch")
    }

    #[test]
    fn transactions_bound_committed_reads_and_survive_a_crash_across_a_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t-0");
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let clock: Rc<dyn Clock> = Rc::new(SystemClock);
                let config = TopicConfig::default();
                let tp = TopicPartition::new("t", 0);
                let open = || Partition::open(tp.clone(), path.clone(), &config, clock.clone());
                let partition = open().await.expect("open");
                let txn_batch = |producer, seq| {
                    BatchBuilder::new(1_000)
                        .producer(producer, 0, seq)
                        .transactional()
                        .records(2, 10)
                        .build()
                };
                // Producer 7 aborts at 2 (records 0-1), producer 8 opens at 3 and commits at 7
                // after the snapshot; producer 9 stays open from 5.
                partition.produce(txn_batch(7, 0)).await.expect("produce");
                partition
                    .write_marker(7, 0, TxnMarker::Abort, 0)
                    .await
                    .expect("marker");
                partition.produce(txn_batch(8, 0)).await.expect("produce");
                partition.produce(txn_batch(9, 0)).await.expect("produce");
                let committed = read_from_start(&partition, Isolation::ReadCommitted).await;
                assert_eq!(committed.last_stable_offset, Offset(3));
                assert_eq!(
                    committed.batches.len(),
                    2,
                    "the aborted batch and its marker"
                );
                assert_eq!(
                    committed.aborted,
                    vec![AbortedTransaction {
                        producer_id: 7,
                        first_offset: Offset(0)
                    }]
                );
                partition.snapshot_producers().await.expect("snapshot");
                partition
                    .write_marker(8, 0, TxnMarker::Commit, 0)
                    .await
                    .expect("marker");
                let end = partition.log.next_offset();
                // A crash: the partition is dropped without closing its log.
                drop(partition);
                let partition = open().await.expect("reopen");
                assert_eq!(partition.log.next_offset(), end);
                let committed = read_from_start(&partition, Isolation::ReadCommitted).await;
                assert_eq!(
                    committed.last_stable_offset,
                    Offset(5),
                    "producer 9 is still open"
                );
                assert_eq!(committed.aborted.len(), 1);
                let all = read_from_start(&partition, Isolation::ReadUncommitted).await;
                assert_eq!(all.last_stable_offset, Offset(5));
                assert_eq!(all.high_watermark, end);
                partition
                    .write_marker(9, 0, TxnMarker::Abort, 0)
                    .await
                    .expect("marker");
                let committed = read_from_start(&partition, Isolation::ReadCommitted).await;
                assert_eq!(committed.last_stable_offset, partition.log.high_watermark());
                assert_eq!(committed.aborted.len(), 2);
                partition.close().await.expect("close");
            })
            .expect("executor")
            .join()
            .expect("executor thread");
    }

    #[test]
    fn a_retry_is_acknowledged_only_once_its_original_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t-0");
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let clock: Rc<dyn Clock> = Rc::new(SystemClock);
                let partition = Rc::new(
                    Partition::open(
                        TopicPartition::new("t", 0),
                        path,
                        &TopicConfig::default(),
                        clock,
                    )
                    .await
                    .expect("open"),
                );
                let batch = BatchBuilder::new(1_000)
                    .producer(7, 0, 0)
                    .records(3, 10)
                    .build();
                // The original appends and goes to write; the retry arrives meanwhile.
                let original = glommio::spawn_local({
                    let (partition, batch) = (partition.clone(), batch.clone());
                    async move { partition.produce(batch).await.expect("original") }
                });
                futures_lite::future::yield_now().await;
                assert_eq!(
                    partition.log.next_offset(),
                    Offset(3),
                    "the original appended"
                );
                let retry = partition.produce(batch).await.expect("retry");
                assert!(
                    partition.log.high_watermark() > retry.last_offset,
                    "the retry was acknowledged before its original was written"
                );
                let original = original.await;
                assert_eq!(
                    (retry.base_offset, retry.last_offset),
                    (original.base_offset, original.last_offset)
                );
            })
            .expect("executor")
            .join()
            .expect("executor thread");
    }
}
