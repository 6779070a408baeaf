//! The transactions of one partition: which are open, which were aborted, and from them the
//! last stable offset.
//!
//! A transactional producer's first data batch in the partition opens its transaction here; the
//! marker the transaction coordinator writes at its end (a control batch, see
//! `spindle_log::batch::encode_marker`) closes it. The *last stable offset* (LSO) is the first
//! offset of the oldest open transaction, or the high watermark when none is open:
//! read-committed consumers read only below it. An aborted transaction is remembered as
//! (producer, first offset, marker offset) so that a read-committed fetch can list the aborted
//! transactions its records overlap, which the consumer then drops; entries go once the log
//! start passes their marker.
//!
//! State changes happen when a batch or marker is appended, in the same step as the append. A
//! snapshot describes the state after every batch below an offset `end` (the high watermark,
//! see the producer table's `encode`): transactions opened at or above `end` are left out, and
//! those whose marker lies at or above it are still open there. The ends of the latter are kept
//! in `ended` until the high watermark passes their marker.

use std::collections::{HashMap, VecDeque};

use spindle_log::{Offset, TxnFate};

use super::producer::Reader;

/// An aborted transaction: its producer, its first offset here and its marker's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub producer_id: i64,
    pub first: Offset,
    pub marker: Offset,
}

/// The transactions of one partition.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    /// Open transactions: producer id → offset of its first batch in the transaction.
    open: HashMap<i64, Offset>,
    /// Aborted transactions in marker order.
    aborted: VecDeque<AbortedTxn>,
    /// Transactions ended since the last snapshot (producer, first offset, marker offset).
    ended: Vec<AbortedTxn>,
    /// Markers appended since the partition opened, per producer (for `check_still_open`).
    markers: HashMap<i64, u64>,
}

impl Transactions {
    /// A transactional data batch of `producer_id` appended at `base`.
    pub(crate) fn on_data(&mut self, producer_id: i64, base: Offset) {
        self.open.entry(producer_id).or_insert(base);
    }

    /// A marker of `producer_id` appended at `offset`; `aborted` for an abort marker.
    pub(crate) fn on_marker(&mut self, producer_id: i64, aborted: bool, offset: Offset) {
        *self.markers.entry(producer_id).or_default() += 1;
        let Some(first) = self.open.remove(&producer_id) else {
            // The producer wrote nothing here in this transaction: the marker changes nothing.
            return;
        };
        let txn = AbortedTxn {
            producer_id,
            first,
            marker: offset,
        };
        if aborted {
            self.aborted.push_back(txn);
        }
        self.ended.push(txn);
    }

    /// Whether `producer_id` has a transaction open in the partition.
    pub(crate) fn is_open(&self, producer_id: i64) -> bool {
        self.open.contains_key(&producer_id)
    }

    /// The first offset of `producer_id`'s transaction open in the partition, if one is.
    pub(crate) fn opened_at(&self, producer_id: i64) -> Option<Offset> {
        self.open.get(&producer_id).copied()
    }

    /// How many markers of `producer_id` the partition appended since it opened.
    pub(crate) fn markers_of(&self, producer_id: i64) -> u64 {
        self.markers.get(&producer_id).copied().unwrap_or(0)
    }

    /// The first offset of the oldest open transaction, or `high_watermark` if that is lower.
    pub(crate) fn last_stable_offset(&self, high_watermark: Offset) -> Offset {
        self.open
            .values()
            .min()
            .map_or(high_watermark, |&first| first.min(high_watermark))
    }

    /// What became of the transaction of `producer_id`'s transactional batch at `base`, for
    /// compaction.
    pub(crate) fn fate(&self, producer_id: i64, base: Offset) -> TxnFate {
        if self
            .open
            .get(&producer_id)
            .is_some_and(|&first| first <= base)
        {
            return TxnFate::Open;
        }
        let aborted = self
            .aborted
            .iter()
            .any(|t| t.producer_id == producer_id && t.first <= base && base < t.marker);
        if aborted {
            TxnFate::Aborted
        } else {
            TxnFate::Committed
        }
    }

    /// The aborted transactions with records in `from..to`, as (producer id, first offset).
    pub(crate) fn aborted_within(&self, from: Offset, to: Offset) -> Vec<(i64, Offset)> {
        self.aborted
            .iter()
            .filter(|t| t.first < to && t.marker >= from)
            .map(|t| (t.producer_id, t.first))
            .collect()
    }

    /// Forgets the ends of transactions whose marker lies below `high_watermark`: every later
    /// snapshot is taken at the high watermark or above, where they are no longer open.
    pub(crate) fn forget_ended_below(&mut self, high_watermark: Offset) {
        self.ended.retain(|t| t.marker >= high_watermark);
    }

    /// Forgets the aborted transactions whose marker lies below `log_start`.
    pub(crate) fn forget_below(&mut self, log_start: Offset) {
        while self.aborted.front().is_some_and(|t| t.marker < log_start) {
            self.aborted.pop_front();
        }
    }

    /// Appends the state after every batch below `end` to a snapshot body:
    ///
    /// ```text
    /// open u32, per open transaction: producer id i64, first offset u64
    /// aborted u32, per aborted transaction: producer id i64, first offset u64, marker u64
    /// ```
    ///
    /// and forgets the ends a later snapshot (at `end` or above) no longer needs.
    pub(crate) fn encode_into(&mut self, end: Offset, out: &mut Vec<u8>) {
        let mut open: Vec<(i64, Offset)> = self
            .open
            .iter()
            .map(|(&id, &first)| (id, first))
            .chain(
                self.ended
                    .iter()
                    .filter(|t| t.marker >= end)
                    .map(|t| (t.producer_id, t.first)),
            )
            .filter(|&(_, first)| first < end)
            .collect();
        open.sort_unstable();
        let aborted: Vec<&AbortedTxn> = self.aborted.iter().filter(|t| t.marker < end).collect();
        // Counts fit: a partition holds far fewer than 2^32 transactions' worth of offsets in
        // memory.
        out.extend_from_slice(&(open.len() as u32).to_be_bytes());
        for (id, first) in open {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&first.0.to_be_bytes());
        }
        out.extend_from_slice(&(aborted.len() as u32).to_be_bytes());
        for t in aborted {
            out.extend_from_slice(&t.producer_id.to_be_bytes());
            out.extend_from_slice(&t.first.0.to_be_bytes());
            out.extend_from_slice(&t.marker.0.to_be_bytes());
        }
        self.ended.retain(|t| t.marker >= end);
    }

    /// The state [`encode_into`](Self::encode_into) wrote, read off `r`.
    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Option<Transactions> {
        let mut txns = Transactions::default();
        let open = u32::from_be_bytes(r.take()?);
        for _ in 0..open {
            let id = i64::from_be_bytes(r.take()?);
            txns.open.insert(id, Offset(u64::from_be_bytes(r.take()?)));
        }
        let aborted = u32::from_be_bytes(r.take()?);
        for _ in 0..aborted {
            txns.aborted.push_back(AbortedTxn {
                producer_id: i64::from_be_bytes(r.take()?),
                first: Offset(u64::from_be_bytes(r.take()?)),
                marker: Offset(u64::from_be_bytes(r.take()?)),
            });
        }
        Some(txns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_stable_offset_waits_for_the_oldest_open_transaction() {
        let mut t = Transactions::default();
        assert_eq!(t.last_stable_offset(Offset(10)), Offset(10));
        t.on_data(7, Offset(10));
        t.on_data(8, Offset(12));
        t.on_data(7, Offset(14));
        assert_eq!(t.last_stable_offset(Offset(20)), Offset(10));
        t.on_marker(7, true, Offset(20));
        assert_eq!(t.last_stable_offset(Offset(21)), Offset(12));
        t.on_marker(8, false, Offset(21));
        assert_eq!(t.last_stable_offset(Offset(22)), Offset(22));
        assert_eq!(
            t.aborted_within(Offset(0), Offset(22)),
            vec![(7, Offset(10))]
        );
        assert!(t.aborted_within(Offset(21), Offset(22)).is_empty());
        assert_eq!(t.fate(7, Offset(14)), TxnFate::Aborted);
        assert_eq!(t.fate(8, Offset(12)), TxnFate::Committed);
        t.on_data(8, Offset(30));
        assert_eq!(t.fate(8, Offset(30)), TxnFate::Open);
        assert_eq!(
            t.fate(8, Offset(12)),
            TxnFate::Committed,
            "an earlier transaction"
        );
        t.forget_below(Offset(21));
        assert!(t.aborted_within(Offset(0), Offset(22)).is_empty());
    }

    #[test]
    fn a_snapshot_holds_the_transactions_as_they_were_at_its_offset() {
        let mut t = Transactions::default();
        t.on_data(7, Offset(0));
        t.on_marker(7, true, Offset(5));
        t.on_data(8, Offset(6));
        t.on_marker(8, true, Offset(9));
        t.on_data(9, Offset(10));
        // At offset 8 producer 7's abort is done, producer 8's transaction is open (its marker
        // comes later) and producer 9's has not begun.
        let mut body = Vec::new();
        t.encode_into(Offset(8), &mut body);
        let decoded = Transactions::decode_from(&mut Reader::new(&body)).expect("decodes");
        assert_eq!(decoded.last_stable_offset(Offset(8)), Offset(6));
        assert_eq!(
            decoded.aborted_within(Offset(0), Offset(8)),
            vec![(7, Offset(0))]
        );
    }
}
