//! Idempotent producer state of one partition.
//!
//! For every producer id seen, the partition remembers the producer's epoch and its last
//! [`PRODUCER_BATCHES_REMEMBERED`] batches (first and last sequence, first and last offset).
//! A batch repeated after a lost acknowledgement is recognised by its sequence range and answered
//! with the offsets it got the first time, without being stored again. A batch that skips
//! sequence numbers is refused, as is an epoch older than the one seen (a fenced producer).
//!
//! The table survives restarts as Kafka's does: the partition saves it as a producer snapshot
//! in the log's directory after each roll and at a clean close ([`ProducerTable::encode`]), and
//! on open decodes the newest usable snapshot and replays onto it the idempotent batches the log
//! holds after it (see `spindle_log::RecoveredProducers`). Without a usable snapshot (a log from
//! before snapshots, or one whose snapshot is older than the segment before the active one), the
//! table is rebuilt from the batches of the log's last 16 MiB, two write rounds, which holds the
//! originals of the retries a restart normally sees. A producer the table does not know has
//! its next batch accepted at any sequence, as Kafka does once a producer's state has expired.
//! The table holds at most [`PRODUCERS_PER_PARTITION_MAX`] producers: a new one beyond that
//! evicts the producer that wrote least recently.

use std::collections::{HashMap, VecDeque};

use spindle_log::Offset;

use super::txn::Transactions;
use crate::limits::{PRODUCERS_PER_PARTITION_MAX, PRODUCER_BATCHES_REMEMBERED};
use crate::EngineError;

/// The producer fields of one batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerBatch {
    /// Producer id (≥ 0 for idempotent batches).
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// The batch's largest timestamp (-1 when not known).
    pub max_timestamp: i64,
}

impl ProducerBatch {
    /// The producer fields of a batch with `records` records (`last_offset_delta + 1`).
    pub(crate) fn new(
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_offset_delta: i32,
    ) -> Self {
        Self {
            producer_id,
            epoch,
            first_seq,
            last_seq: seq_add(first_seq, last_offset_delta),
            max_timestamp: -1,
        }
    }

    /// The same batch, its largest timestamp `max_timestamp`.
    pub(crate) fn at(self, max_timestamp: i64) -> Self {
        Self {
            max_timestamp,
            ..self
        }
    }
}

/// A batch remembered with the offsets it was stored at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredBatch {
    first_seq: i32,
    last_seq: i32,
    /// Offset of the batch's first record.
    pub base_offset: Offset,
    /// Offset of the batch's last record.
    pub last_offset: Offset,
    /// The batch's largest timestamp (-1 when not known).
    max_timestamp: i64,
}

/// One producer the partition knows, as Kafka's DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// The latest epoch seen (from a batch or a transaction marker).
    pub epoch: i16,
    /// The sequence of its last record remembered here, -1 when none is.
    pub last_sequence: i32,
    /// The largest timestamp of its last batch remembered here, -1 when none is (or the
    /// batch came from a snapshot written before timestamps were kept).
    pub last_timestamp: i64,
    /// The first offset of its transaction open in the partition, if one is.
    pub transaction_start: Option<Offset>,
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New and in sequence: append it.
    Append,
    /// Already stored: answer with the original offsets.
    Duplicate(StoredBatch),
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<StoredBatch>,
}

/// Every idempotent producer one partition has seen.
#[derive(Debug, Default)]
pub(crate) struct ProducerTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerTable {
    /// Judges `batch` against what the partition has stored.
    ///
    /// # Errors
    /// [`EngineError::InvalidProducerEpoch`] for an older epoch,
    /// [`EngineError::OutOfOrderSequence`] for a gap or a new epoch not starting at 0.
    pub(crate) fn check(&self, batch: &ProducerBatch) -> Result<Verdict, EngineError> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(Verdict::Append);
        };
        if batch.epoch < entry.epoch {
            return Err(EngineError::InvalidProducerEpoch {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
            });
        }
        let out_of_order = |expected| EngineError::OutOfOrderSequence {
            producer_id: batch.producer_id,
            expected,
            got: batch.first_seq,
        };
        if batch.epoch > entry.epoch {
            return if batch.first_seq == 0 {
                Ok(Verdict::Append)
            } else {
                Err(out_of_order(0))
            };
        }
        if let Some(stored) = entry
            .batches
            .iter()
            .find(|s| s.first_seq == batch.first_seq && s.last_seq == batch.last_seq)
        {
            return Ok(Verdict::Duplicate(*stored));
        }
        let expected = entry
            .batches
            .back()
            .map_or(batch.first_seq, |last| seq_add(last.last_seq, 1));
        if batch.first_seq == expected {
            Ok(Verdict::Append)
        } else {
            Err(out_of_order(expected))
        }
    }

    /// Remembers a batch stored at `base_offset..=last_offset`.
    pub(crate) fn record(
        &mut self,
        batch: &ProducerBatch,
        base_offset: Offset,
        last_offset: Offset,
    ) {
        if !self.producers.contains_key(&batch.producer_id)
            && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX
        {
            self.evict_least_recent();
        }
        let entry = self.producers.entry(batch.producer_id).or_default();
        if batch.epoch != entry.epoch {
            entry.epoch = batch.epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == PRODUCER_BATCHES_REMEMBERED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(StoredBatch {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            base_offset,
            last_offset,
            max_timestamp: batch.max_timestamp,
        });
    }

    /// Every producer the table knows, by id, with `open_at` giving the first offset of a
    /// producer's open transaction.
    pub(crate) fn states(&self, open_at: impl Fn(i64) -> Option<Offset>) -> Vec<ProducerState> {
        let mut states: Vec<ProducerState> = self
            .producers
            .iter()
            .map(|(&producer_id, entry)| {
                let last = entry.batches.back();
                ProducerState {
                    producer_id,
                    epoch: entry.epoch,
                    last_sequence: last.map_or(-1, |b| b.last_seq),
                    last_timestamp: last.map_or(-1, |b| b.max_timestamp),
                    transaction_start: open_at(producer_id),
                }
            })
            .collect();
        states.sort_unstable_by_key(|s| s.producer_id);
        states
    }

    /// Forgets the producer whose last batch is the oldest in the log.
    fn evict_least_recent(&mut self) {
        let oldest = self
            .producers
            .iter()
            .min_by_key(|(_, entry)| entry.batches.back().map(|b| b.last_offset))
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.producers.remove(&id);
        }
    }

    /// A copy holding only the given producers, to judge several batches of one request in
    /// order without touching the real table until the append succeeds.
    pub(crate) fn subset(&self, ids: impl Iterator<Item = i64>) -> ProducerTable {
        let mut copy = ProducerTable::default();
        for id in ids {
            if let Some(entry) = self.producers.get(&id) {
                copy.producers.insert(id, entry.clone());
            }
        }
        copy
    }

    /// The epoch the table holds for `producer_id`, if it knows the producer.
    pub(crate) fn epoch_of(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    /// Producers known.
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// A transaction marker of `producer_id` at `epoch`: a coordinator that bumped the epoch
    /// (fencing the producer, or aborting its timed-out transaction) fences the older epoch here
    /// too, and the producer starts again from any sequence at the new one.
    pub(crate) fn fence(&mut self, producer_id: i64, epoch: i16) {
        match self.producers.get_mut(&producer_id) {
            Some(entry) if epoch <= entry.epoch => {}
            Some(entry) => {
                entry.epoch = epoch;
                entry.batches.clear();
            }
            None => {
                if self.producers.len() >= PRODUCERS_PER_PARTITION_MAX {
                    self.evict_least_recent();
                }
                let entry = ProducerEntry {
                    epoch,
                    batches: VecDeque::new(),
                };
                self.producers.insert(producer_id, entry);
            }
        }
    }

    /// Appends the table as it was after every batch below `end` (batches at or above it left
    /// out, and producers with none left) to a snapshot body:
    ///
    /// ```text
    /// producers u32 | per producer: id i64, epoch i16, batches u8,
    ///   per batch: first sequence i32, last sequence i32, base offset u64, last offset u64,
    ///     max timestamp i64
    /// ```
    ///
    /// (big-endian). Leaving out the later batches gives the state at `end`: a batch of a new
    /// epoch clears the ones before it, so a producer whose epoch changed at or above `end` has
    /// no batch left below it, and replaying from `end` brings it back as it is now.
    pub(crate) fn encode_into(&self, end: Offset, out: &mut Vec<u8>) {
        let mut producers: Vec<(i64, i16, Vec<&StoredBatch>)> = self
            .producers
            .iter()
            .map(|(&id, entry)| {
                let below = entry.batches.iter().filter(|b| b.last_offset < end);
                (id, entry.epoch, below.collect::<Vec<_>>())
            })
            .filter(|(_, _, batches)| !batches.is_empty())
            .collect();
        producers.sort_unstable_by_key(|&(id, _, _)| id);
        // At most PRODUCERS_PER_PARTITION_MAX producers, each with at most
        // PRODUCER_BATCHES_REMEMBERED batches: the counts fit.
        out.extend_from_slice(&(producers.len() as u32).to_be_bytes());
        for (id, epoch, batches) in producers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&epoch.to_be_bytes());
            out.push(batches.len() as u8);
            for b in batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.0.to_be_bytes());
                out.extend_from_slice(&b.last_offset.0.to_be_bytes());
                out.extend_from_slice(&b.max_timestamp.to_be_bytes());
            }
        }
    }

    /// The table [`encode_into`](Self::encode_into) wrote, read off `r`; `timestamps` is false
    /// for snapshot bodies before version 3, whose batches carry no timestamp.
    pub(crate) fn decode_from(r: &mut Reader<'_>, timestamps: bool) -> Option<ProducerTable> {
        let count = u32::from_be_bytes(r.take()?) as usize;
        if count > PRODUCERS_PER_PARTITION_MAX {
            return None;
        }
        let mut table = ProducerTable::default();
        for _ in 0..count {
            let id = i64::from_be_bytes(r.take()?);
            let epoch = i16::from_be_bytes(r.take()?);
            let [batches] = r.take::<1>()?;
            if usize::from(batches) > PRODUCER_BATCHES_REMEMBERED {
                return None;
            }
            let mut entry = ProducerEntry {
                epoch,
                batches: VecDeque::with_capacity(usize::from(batches)),
            };
            for _ in 0..batches {
                entry.batches.push_back(StoredBatch {
                    first_seq: i32::from_be_bytes(r.take()?),
                    last_seq: i32::from_be_bytes(r.take()?),
                    base_offset: Offset(u64::from_be_bytes(r.take()?)),
                    last_offset: Offset(u64::from_be_bytes(r.take()?)),
                    max_timestamp: if timestamps {
                        i64::from_be_bytes(r.take()?)
                    } else {
                        -1
                    },
                });
            }
            table.producers.insert(id, entry);
        }
        Some(table)
    }
}

/// The version byte of a producer snapshot's body: 1 held the producer table alone, 2 the table
/// and then the partition's transactions, 3 the same with each batch's largest timestamp.
const SNAPSHOT_VERSION: u8 = 3;

/// A producer snapshot's body: the version byte, the producer table and the transactions, each
/// as it was after every batch below `end` (see [`ProducerTable::encode_into`] and
/// [`Transactions::encode_into`]).
pub(crate) fn encode_snapshot(
    table: &ProducerTable,
    txns: &mut Transactions,
    end: Offset,
) -> Vec<u8> {
    let mut out = vec![SNAPSHOT_VERSION];
    table.encode_into(end, &mut out);
    txns.encode_into(end, &mut out);
    out
}

/// What [`encode_snapshot`] wrote (or an older version's body: 1 without transactions, 1 and 2
/// without timestamps), or `None` for bytes it could not have written.
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Option<(ProducerTable, Transactions)> {
    let mut r = Reader::new(bytes);
    let [version] = r.take::<1>()?;
    if !(1..=SNAPSHOT_VERSION).contains(&version) {
        return None;
    }
    let table = ProducerTable::decode_from(&mut r, version >= 3)?;
    let txns = match version {
        1 => Transactions::default(),
        _ => Transactions::decode_from(&mut r)?,
    };
    r.0.is_empty().then_some((table, txns))
}

/// Reads fixed-size fields off the front of a byte slice.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    pub(crate) fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (field, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*field)
    }
}

/// Sequence numbers wrap from `i32::MAX` to 0, as in Kafka.
fn seq_add(seq: i32, n: i32) -> i32 {
    let sum = i64::from(seq) + i64::from(n);
    // The modulus is positive and the result below i32::MAX + 1, so the cast cannot truncate.
    (sum.rem_euclid(i64::from(i32::MAX) + 1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(epoch: i16, first: i32, records: i32) -> ProducerBatch {
        ProducerBatch::new(7, epoch, first, records - 1)
    }

    #[test]
    fn duplicate_returns_original_offsets() {
        let mut t = ProducerTable::default();
        let b = batch(0, 0, 3);
        assert_eq!(t.check(&b).unwrap(), Verdict::Append);
        t.record(&b, Offset(10), Offset(12));
        match t.check(&b).unwrap() {
            Verdict::Duplicate(s) => {
                assert_eq!((s.base_offset, s.last_offset), (Offset(10), Offset(12)))
            }
            v => panic!("expected duplicate, got {v:?}"),
        }
        assert_eq!(t.check(&batch(0, 3, 1)).unwrap(), Verdict::Append);
    }

    #[test]
    fn gap_and_fenced_epoch_are_refused() {
        let mut t = ProducerTable::default();
        let b = batch(1, 0, 2);
        t.record(&b, Offset(0), Offset(1));
        assert!(matches!(
            t.check(&batch(1, 5, 1)),
            Err(EngineError::OutOfOrderSequence {
                expected: 2,
                got: 5,
                ..
            })
        ));
        assert!(matches!(
            t.check(&batch(0, 2, 1)),
            Err(EngineError::InvalidProducerEpoch { epoch: 0, .. })
        ));
        assert!(matches!(
            t.check(&batch(2, 1, 1)),
            Err(EngineError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(t.check(&batch(2, 0, 1)).unwrap(), Verdict::Append);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut t = ProducerTable::default();
        for i in 0..6 {
            t.record(&batch(0, i, 1), Offset(i as u64), Offset(i as u64));
        }
        assert!(matches!(
            t.check(&batch(0, 0, 1)),
            Err(EngineError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            t.check(&batch(0, 1, 1)),
            Ok(Verdict::Duplicate(_))
        ));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_least_recent_producer() {
        let mut table = ProducerTable::default();
        let max = PRODUCERS_PER_PARTITION_MAX as i64;
        for id in 0..=max {
            let b = ProducerBatch::new(id, 0, 0, 0);
            table.record(&b, Offset(id as u64), Offset(id as u64));
        }
        assert_eq!(table.len(), PRODUCERS_PER_PARTITION_MAX);
        // Producer 0 wrote least recently and is forgotten: its next batch is accepted at any
        // sequence; producer 1 is still known and a gap is refused.
        assert!(matches!(
            table.check(&ProducerBatch::new(0, 0, 7, 0)),
            Ok(Verdict::Append)
        ));
        assert!(table.check(&ProducerBatch::new(1, 0, 7, 0)).is_err());
    }

    #[test]
    fn a_snapshot_holds_the_state_below_its_offset() {
        let mut table = ProducerTable::default();
        table.record(&ProducerBatch::new(7, 0, 0, 2), Offset(0), Offset(2));
        table.record(&ProducerBatch::new(7, 0, 3, 0), Offset(3), Offset(3));
        table.record(&ProducerBatch::new(8, 0, 0, 0), Offset(4), Offset(4));
        // Producer 9's epoch changed at offset 6, at the snapshot's offset: it is left out.
        table.record(&ProducerBatch::new(9, 0, 0, 0), Offset(5), Offset(5));
        table.record(&ProducerBatch::new(9, 1, 0, 0), Offset(6), Offset(6));
        let snapshot = |end| encode_snapshot(&table, &mut Transactions::default(), end);
        let decoded = decode_snapshot(&snapshot(Offset(4))).expect("decodes").0;
        assert_eq!(decoded.len(), 1, "only producer 7 wrote below offset 4");
        assert!(matches!(
            decoded.check(&ProducerBatch::new(7, 0, 3, 0)),
            Ok(Verdict::Duplicate(s)) if s.base_offset == Offset(3)
        ));
        assert!(decoded.check(&ProducerBatch::new(7, 0, 9, 0)).is_err());
        let whole = decode_snapshot(&snapshot(Offset(7))).expect("decodes").0;
        assert_eq!(whole.len(), 3);
        assert!(matches!(
            whole.check(&ProducerBatch::new(9, 0, 1, 0)),
            Err(EngineError::InvalidProducerEpoch { .. })
        ));
        // Anything else is refused, never half read.
        let bytes = snapshot(Offset(7));
        assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode_snapshot(&[bytes.as_slice(), &[0]].concat()).is_none());
        assert!(decode_snapshot(&[4]).is_none());
        assert!(decode_snapshot(&[]).is_none());
    }

    #[test]
    fn snapshots_of_earlier_versions_still_read() {
        // Version 1 and 2 bodies: the table without timestamps (version 2 then the
        // transactions, here none).
        let mut v2_table = 1_u32.to_be_bytes().to_vec();
        v2_table.extend_from_slice(&7_i64.to_be_bytes());
        v2_table.extend_from_slice(&2_i16.to_be_bytes());
        v2_table.push(1);
        for field in [0_i32, 4] {
            v2_table.extend_from_slice(&field.to_be_bytes());
        }
        for offset in [10_u64, 14] {
            v2_table.extend_from_slice(&offset.to_be_bytes());
        }
        let v1 = [&[1], v2_table.as_slice()].concat();
        let mut v2 = [&[2], v2_table.as_slice()].concat();
        Transactions::default().encode_into(Offset(20), &mut v2);
        for body in [v1, v2] {
            let (table, _) = decode_snapshot(&body).expect("decodes");
            assert!(matches!(
                table.check(&ProducerBatch::new(7, 2, 0, 4)),
                Ok(Verdict::Duplicate(s)) if s.base_offset == Offset(10)
            ));
            let states = table.states(|_| None);
            assert_eq!((states[0].last_sequence, states[0].last_timestamp), (4, -1));
        }
    }

    #[test]
    fn the_states_show_each_producers_last_batch_and_open_transaction() {
        let mut table = ProducerTable::default();
        table.record(
            &ProducerBatch::new(8, 1, 0, 2).at(5_000),
            Offset(0),
            Offset(2),
        );
        table.record(
            &ProducerBatch::new(7, 0, 0, 0).at(6_000),
            Offset(3),
            Offset(3),
        );
        table.record(
            &ProducerBatch::new(8, 1, 3, 1).at(7_000),
            Offset(4),
            Offset(5),
        );
        table.fence(9, 4);
        let open = |id| (id == 8).then_some(Offset(4));
        let states = table.states(open);
        let seen: Vec<_> = states
            .iter()
            .map(|s| (s.producer_id, s.epoch, s.last_sequence, s.last_timestamp))
            .collect();
        assert_eq!(seen, [(7, 0, 0, 6_000), (8, 1, 4, 7_000), (9, 4, -1, -1)]);
        assert_eq!(states[1].transaction_start, Some(Offset(4)));
        assert_eq!(states[0].transaction_start, None);
        // The timestamps survive a snapshot.
        let body = encode_snapshot(&table, &mut Transactions::default(), Offset(6));
        let decoded = decode_snapshot(&body).expect("decodes").0;
        assert_eq!(decoded.states(|_| None)[1].last_timestamp, 7_000);
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(seq_add(i32::MAX, 1), 0);
        assert_eq!(seq_add(i32::MAX - 1, 3), 1);
    }
}
