//! Transactions: the coordinator of transactional producers (Kafka's transaction coordinator).
//!
//! A transactional id is coordinated by the shard that coordinates a consumer group of the same
//! name ([`crate::Shard::group_coordinator`]), so that each id has a single owner and needs no
//! lock. For each id the coordinator keeps the producer id and epoch, the transaction's phase,
//! the partitions it wrote to and the offsets it will commit for consumer groups:
//!
//! - `init_producer` gives a producer its id and a new epoch, which fences any older instance;
//!   an open transaction of the old instance is aborted first;
//! - `add_partitions`, `add_offsets` and `commit_offsets` open the transaction and record what
//!   it holds;
//! - `end` writes the commit or abort marker to every partition of the transaction (see
//!   `Partition::write_marker`), then, for a commit, commits the held offsets to their groups.
//!
//! A transaction left open longer than its timeout is aborted by the coordinator's tick, with
//! the epoch bumped so that the producer that abandoned it is fenced, as in Kafka.
//!
//! State is kept in `DATA/transactions/<offsets partition>.json`, one file per partition of the
//! offsets topic the shard owns, replaced atomically (temporary file, fsync, rename, directory
//! fsync) at each change and before the change is answered. The phase is written before the
//! markers (`PrepareCommit`, `PrepareAbort`) and after them (`CompleteCommit`, `CompleteAbort`):
//! a coordinator that finds a prepared transaction at start writes its markers (again) and
//! completes it, so a decided transaction always ends as decided.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use futures::future::join_all;
use glommio::sync::Semaphore;
use serde::{Deserialize, Serialize};

use crate::group::{self, unix_ms, CommittedOffset, Committer, OffsetCommit};
use crate::log_api::batch::TxnMarker;
use crate::{EngineError, Result, Shard, TopicPartition};

/// Longest transaction timeout a producer may ask for (Kafka's `transaction.max.timeout.ms`).
pub const TRANSACTION_TIMEOUT_MAX_MS: u64 = 15 * 60 * 1000;
/// A transactional id with no transaction open is forgotten after this long without use
/// (Kafka's `transactional.id.expiration.ms`): its next InitProducerId gets a new producer id.
pub const TRANSACTIONAL_ID_EXPIRATION_MS: u64 = 7 * 24 * 3600 * 1000;
/// How often the coordinator looks for transactions past their timeout and prepared ones to
/// complete.
const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Why a transactional request is refused (each is a Kafka error code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// A newer instance of the producer holds the transactional id (PRODUCER_FENCED).
    #[error(
        "producer {producer_id} epoch {epoch} is fenced by a newer epoch of its transactional id"
    )]
    ProducerFenced {
        /// The producer id.
        producer_id: i64,
        /// The epoch the request carried.
        epoch: i16,
    },
    /// The id does not belong to this producer, or is unknown (INVALID_PRODUCER_ID_MAPPING).
    #[error("the transactional id is not mapped to producer {producer_id}")]
    UnknownProducer {
        /// The producer id the request carried.
        producer_id: i64,
    },
    /// The transaction is being committed or aborted; try again (CONCURRENT_TRANSACTIONS).
    #[error("the transaction is completing; retry")]
    Completing,
    /// The request does not fit the transaction's phase (INVALID_TXN_STATE).
    #[error("{0}")]
    InvalidState(&'static str),
    /// A timeout above [`TRANSACTION_TIMEOUT_MAX_MS`] (INVALID_TRANSACTION_TIMEOUT).
    #[error("transaction timeout {0} ms is above the maximum of {TRANSACTION_TIMEOUT_MAX_MS} ms")]
    InvalidTimeout(u64),
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// No transaction open.
    Empty,
    /// Open: partitions or offsets were added.
    Ongoing,
    /// Decided, markers being written.
    PrepareCommit,
    PrepareAbort,
    /// Ended; the next AddPartitions opens a new one.
    CompleteCommit,
    CompleteAbort,
}

impl Phase {
    /// The state's name in Kafka's DescribeTransactions and ListTransactions.
    fn kafka_name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::Ongoing => "Ongoing",
            Phase::PrepareCommit => "PrepareCommit",
            Phase::PrepareAbort => "PrepareAbort",
            Phase::CompleteCommit => "CompleteCommit",
            Phase::CompleteAbort => "CompleteAbort",
        }
    }

    fn prepared(commit: bool) -> Phase {
        if commit {
            Phase::PrepareCommit
        } else {
            Phase::PrepareAbort
        }
    }

    fn decision(self) -> Option<bool> {
        match self {
            Phase::PrepareCommit => Some(true),
            Phase::PrepareAbort => Some(false),
            _ => None,
        }
    }
}

/// An offset a transaction commits to a group when it commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HeldOffset {
    group: String,
    topic: String,
    partition: u32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
}

/// One transactional id's state, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Txn {
    producer_id: i64,
    epoch: i16,
    timeout_ms: u64,
    phase: Phase,
    /// The partitions written to in the open transaction, as (topic, partition).
    partitions: BTreeSet<(String, u32)>,
    /// The groups whose offsets the open transaction commits.
    groups: BTreeSet<String>,
    offsets: Vec<HeldOffset>,
    /// When the open transaction began, ms since the Unix epoch.
    started_ms: i64,
    /// When the id's state last changed (ids kept before this field count from their load).
    #[serde(default = "unix_ms")]
    last_used_ms: i64,
}

/// One transactional id as its coordinator sees it (Kafka's DescribeTransactions and
/// ListTransactions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id and current epoch.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub epoch: i16,
    /// The state by Kafka's name: `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`,
    /// `CompleteCommit` or `CompleteAbort`.
    pub state: &'static str,
    /// The transaction timeout the producer asked for.
    pub timeout_ms: u64,
    /// When the open (or last) transaction began, ms since the Unix epoch; -1 when `Empty`.
    pub started_ms: i64,
    /// The partitions written to in the open transaction.
    pub partitions: Vec<TopicPartition>,
}

impl TransactionDescription {
    fn of(transactional_id: &str, txn: &Txn) -> Self {
        Self {
            transactional_id: transactional_id.to_owned(),
            producer_id: txn.producer_id,
            epoch: txn.epoch,
            state: txn.phase.kafka_name(),
            timeout_ms: txn.timeout_ms,
            started_ms: if txn.phase == Phase::Empty {
                -1
            } else {
                txn.started_ms
            },
            partitions: txn
                .partitions
                .iter()
                .map(|(topic, partition)| TopicPartition::new(topic.as_str(), *partition))
                .collect(),
        }
    }
}

/// Every transactional id this node coordinates, gathered from every shard, in id order.
///
/// # Errors
/// [`EngineError::ShuttingDown`] when a shard no longer takes work.
pub async fn list(shard: &Shard) -> Result<Vec<TransactionDescription>> {
    let per_shard = shard
        .run_on_every_shard(|s: Shard| async move { s.local_transactions().describe_all() })
        .await;
    let mut all = Vec::new();
    for found in per_shard {
        all.extend(found?);
    }
    all.sort_unstable_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    Ok(all)
}

/// What the coordinator's tick does with a transactional id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Nothing,
    /// A decided transaction whose markers are to be written.
    Complete,
    /// An open transaction past its timeout.
    Abort,
    /// An id idle past [`TRANSACTIONAL_ID_EXPIRATION_MS`] with no transaction open.
    Expire,
}

impl Txn {
    /// Checks that a request of `producer_id` at `epoch` may act on the transaction now.
    fn check(&self, producer_id: i64, epoch: i16) -> std::result::Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::UnknownProducer { producer_id });
        }
        if epoch != self.epoch {
            return Err(TxnError::ProducerFenced { producer_id, epoch });
        }
        if self.phase.decision().is_some() {
            return Err(TxnError::Completing);
        }
        Ok(())
    }

    /// What the tick does with this id at `now_ms`.
    fn due(&self, now_ms: i64) -> Due {
        let older_than =
            |since: i64, ms: u64| i128::from(now_ms) - i128::from(since) > i128::from(ms);
        match self.phase {
            _ if self.phase.decision().is_some() => Due::Complete,
            Phase::Ongoing if older_than(self.started_ms, self.timeout_ms) => Due::Abort,
            Phase::Ongoing => Due::Nothing,
            _ if older_than(self.last_used_ms, TRANSACTIONAL_ID_EXPIRATION_MS) => Due::Expire,
            _ => Due::Nothing,
        }
    }

    /// Opens a transaction if none is open.
    fn open(&mut self, now_ms: i64) {
        if self.phase != Phase::Ongoing {
            self.phase = Phase::Ongoing;
            self.partitions.clear();
            self.groups.clear();
            self.offsets.clear();
            self.started_ms = now_ms;
        }
    }
}

/// The file format: every transactional id of one offsets partition.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    format: u32,
    txns: BTreeMap<String, Txn>,
}

const STATE_FORMAT: u32 = 1;

/// The transactional ids one shard coordinates.
pub struct TxnCoordinator {
    /// Partitions of the offsets topic (which one an id belongs to).
    offsets_partitions: usize,
    dir: PathBuf,
    /// Per offsets partition, its ids' state.
    txns: RefCell<BTreeMap<u32, BTreeMap<String, Txn>>>,
    /// Serialises writes of the state files, so that the last write holds the last state.
    writing: Semaphore,
}

/// Every partition whose offsets for `group_id` an unfinished transaction holds, on any shard:
/// Kafka's pending transactional offsets, which an OffsetFetch asking for stable offsets
/// (KIP-447) is told to wait for.
///
/// # Errors
/// [`EngineError::ShuttingDown`] when a shard no longer takes work.
pub async fn held_offsets(shard: &Shard, group_id: &str) -> Result<Vec<TopicPartition>> {
    let group_id = group_id.to_owned();
    let per_shard = shard
        .run_on_every_shard(move |s: Shard| async move {
            s.local_transactions().held_offsets_of(&group_id)
        })
        .await;
    let mut held = Vec::new();
    for found in per_shard {
        held.extend(found?);
    }
    Ok(held)
}

/// Checks with `transactional_id`'s coordinator that `tp` is in the open transaction of
/// `producer_id` at `epoch` (see `Shard::produce_in_transaction`).
///
/// # Errors
/// [`TxnError`] when it is not, [`EngineError::ShuttingDown`].
pub async fn verify(
    shard: &Shard,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    tp: &TopicPartition,
) -> Result<()> {
    let (id, tp) = (transactional_id.to_owned(), tp.clone());
    on_coordinator(shard, transactional_id, move |_, txns| async move {
        let txn = txns.checked(&id, producer_id, epoch)?;
        let added = txn.phase == Phase::Ongoing
            && txn
                .partitions
                .contains(&(tp.topic.to_string(), tp.partition.0));
        if added {
            Ok(())
        } else {
            Err(
                TxnError::InvalidState("the partition is not in the producer's open transaction")
                    .into(),
            )
        }
    })
    .await?
}

/// Runs `f` on the coordinator shard of `transactional_id` (that of a group of the same name)
/// with that shard's transaction coordinator.
///
/// # Errors
/// [`EngineError::ShuttingDown`] when the coordinator shard no longer takes work.
pub async fn on_coordinator<T, F, Fut>(shard: &Shard, transactional_id: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Shard, Rc<TxnCoordinator>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    group::on_coordinator(shard, transactional_id, move |s, _| {
        let txns = s.local_transactions();
        f(s, txns)
    })
    .await
}

impl TxnCoordinator {
    /// Loads the state of the offsets partitions this shard owns from `DATA/transactions`, and
    /// starts the tick that completes prepared transactions and aborts timed-out ones.
    ///
    /// # Errors
    /// A state file that cannot be read or parsed.
    pub(crate) fn recover(shard: &Shard) -> Result<Rc<TxnCoordinator>> {
        let dir = shard.data_dir().join("transactions");
        let owned = shard.owned_offsets_partitions();
        let mut txns = BTreeMap::new();
        for partition in owned.iter().copied() {
            let path = state_path(&dir, partition);
            let loaded = match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice::<StateFile>(&bytes)
                    .map_err(|e| EngineError::Start(format!("reading {}: {e}", path.display())))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
                Err(e) => {
                    return Err(EngineError::Io {
                        context: format!("reading {}", path.display()),
                        source: e,
                    })
                }
            };
            txns.insert(partition, loaded.txns);
        }
        let coordinator = Rc::new(TxnCoordinator {
            offsets_partitions: shard.offsets_partition_count(),
            dir,
            txns: RefCell::new(txns),
            writing: Semaphore::new(1),
        });
        let tick = {
            let (shard, coordinator) = (shard.clone(), coordinator.clone());
            async move {
                while !crate::shard::lifecycle::sleep_unless_stopping(&shard, TICK_INTERVAL).await {
                    coordinator.tick(&shard).await;
                }
            }
        };
        shard.spawn_background(tick);
        Ok(coordinator)
    }

    /// `transactional_id` as its coordinator sees it, if it knows the id.
    pub fn describe(&self, transactional_id: &str) -> Option<TransactionDescription> {
        let txn = self.get(transactional_id)?;
        Some(TransactionDescription::of(transactional_id, &txn))
    }

    /// Every transactional id this shard coordinates.
    fn describe_all(&self) -> Vec<TransactionDescription> {
        self.txns
            .borrow()
            .values()
            .flat_map(|ids| ids.iter())
            .map(|(id, txn)| TransactionDescription::of(id, txn))
            .collect()
    }

    /// The partitions whose offsets for `group_id` this shard's unfinished transactions hold.
    fn held_offsets_of(&self, group_id: &str) -> Vec<TopicPartition> {
        self.txns
            .borrow()
            .values()
            .flat_map(|ids| ids.values())
            .filter(|t| t.phase == Phase::Ongoing || t.phase.decision().is_some())
            .flat_map(|t| t.offsets.iter())
            .filter(|o| o.group == group_id)
            .map(|o| TopicPartition::new(o.topic.as_str(), o.partition))
            .collect()
    }

    fn partition_of(&self, transactional_id: &str) -> u32 {
        group::offsets_partition(transactional_id, self.offsets_partitions)
    }

    fn get(&self, transactional_id: &str) -> Option<Txn> {
        let partition = self.partition_of(transactional_id);
        self.txns
            .borrow()
            .get(&partition)?
            .get(transactional_id)
            .cloned()
    }

    /// Stores `txn` for `transactional_id`, stamped as used now (see [`TxnCoordinator::store`]).
    async fn put(&self, transactional_id: &str, mut txn: Txn) -> Result<()> {
        txn.last_used_ms = unix_ms();
        self.store(transactional_id, Some(txn)).await
    }

    /// Stores `txn` for `transactional_id` (removes the id for `None`) and writes its partition's
    /// state file; returns once the file is durable.
    async fn store(&self, transactional_id: &str, txn: Option<Txn>) -> Result<()> {
        let partition = self.partition_of(transactional_id);
        {
            let mut txns = self.txns.borrow_mut();
            let ids = txns.entry(partition).or_default();
            match txn {
                Some(txn) => ids.insert(transactional_id.to_owned(), txn),
                None => ids.remove(transactional_id),
            };
        }
        let _permit = self
            .writing
            .acquire_permit(1)
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        let file = StateFile {
            format: STATE_FORMAT,
            txns: self
                .txns
                .borrow()
                .get(&partition)
                .cloned()
                .unwrap_or_default(),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| EngineError::Io {
            context: "encoding transaction state".to_owned(),
            source: e.into(),
        })?;
        let path = state_path(&self.dir, partition);
        glommio::executor()
            .spawn_blocking(move || crate::durable_file::replace(&path, &text))
            .await
    }

    /// Gives the producer of `transactional_id` its id and a new epoch (fencing any older
    /// instance); an open transaction is aborted first.
    ///
    /// # Errors
    /// [`TxnError::InvalidTimeout`], [`TxnError::Completing`] while a decided transaction's
    /// markers are written; I/O.
    pub async fn init_producer(
        &self,
        shard: &Shard,
        transactional_id: &str,
        timeout_ms: u64,
    ) -> Result<(i64, i16)> {
        if timeout_ms == 0 || timeout_ms > TRANSACTION_TIMEOUT_MAX_MS {
            return Err(TxnError::InvalidTimeout(timeout_ms).into());
        }
        let Some(mut txn) = self.get(transactional_id) else {
            let (producer_id, epoch) = shard.init_producer_id().await?;
            let txn = Txn {
                producer_id,
                epoch,
                timeout_ms,
                phase: Phase::Empty,
                partitions: BTreeSet::new(),
                groups: BTreeSet::new(),
                offsets: Vec::new(),
                started_ms: 0,
                last_used_ms: 0,
            };
            self.put(transactional_id, txn).await?;
            return Ok((producer_id, epoch));
        };
        if txn.phase.decision().is_some() {
            return Err(TxnError::Completing.into());
        }
        if txn.phase == Phase::Ongoing {
            // Aborted at a bumped epoch, which fences the old instance in every partition.
            self.abort_with_new_epoch(shard, transactional_id, txn)
                .await?;
            txn = self
                .get(transactional_id)
                .ok_or(TxnError::InvalidState("the transactional id vanished"))?;
        } else if txn.epoch >= i16::MAX - 1 {
            // The epoch space is spent: a new producer id starts again at 0.
            (txn.producer_id, txn.epoch) = shard.init_producer_id().await?;
        } else {
            txn.epoch += 1;
        }
        txn.timeout_ms = timeout_ms;
        txn.phase = Phase::Empty;
        let answer = (txn.producer_id, txn.epoch);
        self.put(transactional_id, txn).await?;
        Ok(answer)
    }

    /// Adds partitions to the producer's transaction, opening one if none is open.
    ///
    /// # Errors
    /// [`TxnError`] for a request the transaction's state refuses; I/O.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> Result<()> {
        let mut txn = self.checked(transactional_id, producer_id, epoch)?;
        let before = (txn.phase, txn.partitions.len());
        txn.open(unix_ms());
        txn.partitions.extend(
            partitions
                .into_iter()
                .map(|tp| (tp.topic.to_string(), tp.partition.0)),
        );
        if (txn.phase, txn.partitions.len()) == before {
            return Ok(());
        }
        self.put(transactional_id, txn).await
    }

    /// Adds a consumer group's offsets to the producer's transaction (Kafka's AddOffsetsToTxn).
    ///
    /// # Errors
    /// As [`TxnCoordinator::add_partitions`].
    pub async fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group_id: &str,
    ) -> Result<()> {
        let mut txn = self.checked(transactional_id, producer_id, epoch)?;
        if txn.phase == Phase::Ongoing && txn.groups.contains(group_id) {
            return Ok(());
        }
        txn.open(unix_ms());
        txn.groups.insert(group_id.to_owned());
        self.put(transactional_id, txn).await
    }

    /// Holds offsets to commit to `group_id` when the transaction commits (Kafka's
    /// TxnOffsetCommit); an abort drops them.
    ///
    /// # Errors
    /// As [`TxnCoordinator::add_partitions`]; [`TxnError::InvalidState`] when the group was not
    /// added to the transaction.
    pub async fn commit_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group_id: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<()> {
        let mut txn = self.checked(transactional_id, producer_id, epoch)?;
        if txn.phase != Phase::Ongoing || !txn.groups.contains(group_id) {
            return Err(TxnError::InvalidState(
                "offsets sent for a group not added to the transaction",
            )
            .into());
        }
        for (tp, offset) in offsets {
            let held = HeldOffset {
                group: group_id.to_owned(),
                topic: tp.topic.to_string(),
                partition: tp.partition.0,
                offset: offset.offset,
                leader_epoch: offset.leader_epoch,
                metadata: offset.metadata,
            };
            txn.offsets.retain(|o| {
                (&o.group, &o.topic, o.partition) != (&held.group, &held.topic, held.partition)
            });
            txn.offsets.push(held);
        }
        self.put(transactional_id, txn).await
    }

    /// Commits or aborts the producer's transaction: the decision is stored, the markers are
    /// written to every partition of the transaction, a commit's offsets are committed to their
    /// groups, and the transaction is complete. Ending a transaction that just ended the same
    /// way (a retry) succeeds.
    ///
    /// # Errors
    /// [`TxnError`] for a request the transaction's state refuses, [`TxnError::Completing`]
    /// when markers could not all be written (the tick retries them); I/O.
    pub async fn end(
        &self,
        shard: &Shard,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<()> {
        let mut txn = self.checked(transactional_id, producer_id, epoch)?;
        match (txn.phase, commit) {
            (Phase::Ongoing, _) => {}
            (Phase::CompleteCommit, true) | (Phase::CompleteAbort, false) => return Ok(()),
            (Phase::Empty, false) => return Ok(()),
            _ => return Err(TxnError::InvalidState("no open transaction to end that way").into()),
        }
        txn.phase = Phase::prepared(commit);
        self.put(transactional_id, txn.clone()).await?;
        self.complete(shard, transactional_id, txn).await
    }

    /// Writes a prepared transaction's markers (and a commit's offsets) and marks it complete.
    async fn complete(&self, shard: &Shard, transactional_id: &str, mut txn: Txn) -> Result<()> {
        let Some(commit) = txn.phase.decision() else {
            return Ok(());
        };
        let marker = if commit {
            TxnMarker::Commit
        } else {
            TxnMarker::Abort
        };
        let writes = txn.partitions.iter().map(|(topic, partition)| {
            let tp = TopicPartition::new(topic.as_str(), *partition);
            async move {
                let written = shard
                    .write_marker(&tp, txn.producer_id, txn.epoch, marker)
                    .await;
                (tp, written)
            }
        });
        for (tp, written) in join_all(writes).await {
            match written {
                // A partition deleted since has nothing left to mark.
                Ok(_)
                | Err(EngineError::UnknownTopic(_) | EngineError::UnknownPartition { .. }) => {}
                Err(e) => {
                    tracing::warn!(transactional_id, partition = %tp, error = %e, "writing a transaction marker; will retry");
                    return Err(TxnError::Completing.into());
                }
            }
        }
        if commit {
            self.commit_held_offsets(shard, transactional_id, &txn)
                .await?;
        }
        let counter = if commit {
            &shard.metrics().txn_commits
        } else {
            &shard.metrics().txn_aborts
        };
        counter.add(1);
        txn.phase = if commit {
            Phase::CompleteCommit
        } else {
            Phase::CompleteAbort
        };
        txn.partitions.clear();
        txn.groups.clear();
        txn.offsets.clear();
        self.put(transactional_id, txn).await
    }

    async fn commit_held_offsets(
        &self,
        shard: &Shard,
        transactional_id: &str,
        txn: &Txn,
    ) -> Result<()> {
        let mut by_group: BTreeMap<&str, Vec<(TopicPartition, CommittedOffset)>> = BTreeMap::new();
        for o in &txn.offsets {
            by_group.entry(&o.group).or_default().push((
                TopicPartition::new(o.topic.as_str(), o.partition),
                CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                    commit_timestamp_ms: 0,
                },
            ));
        }
        for (group_id, offsets) in by_group {
            let commit = OffsetCommit {
                group_id: group_id.to_owned(),
                committer: Committer::Transaction,
                offsets,
            };
            let group = group_id.to_owned();
            let done = group::on_coordinator(shard, &group, move |shard, groups| async move {
                groups.commit_offsets(&shard, commit).await
            })
            .await?;
            if let Err(e) = done {
                tracing::warn!(transactional_id, group = %group_id, error = %e, "committing a transaction's offsets");
                return Err(TxnError::Completing.into());
            }
        }
        Ok(())
    }

    /// Aborts `txn`'s open transaction at a bumped epoch.
    async fn abort_with_new_epoch(
        &self,
        shard: &Shard,
        transactional_id: &str,
        mut txn: Txn,
    ) -> Result<()> {
        txn.epoch = txn.epoch.saturating_add(1);
        txn.phase = Phase::PrepareAbort;
        self.put(transactional_id, txn.clone()).await?;
        self.complete(shard, transactional_id, txn).await
    }

    /// The transaction of `transactional_id`, checked for a request of `producer_id` at
    /// `epoch`.
    fn checked(&self, transactional_id: &str, producer_id: i64, epoch: i16) -> Result<Txn> {
        let txn = self
            .get(transactional_id)
            .ok_or(TxnError::UnknownProducer { producer_id })?;
        txn.check(producer_id, epoch)?;
        Ok(txn)
    }

    /// Completes prepared transactions, aborts those open past their timeout and forgets ids
    /// idle past their expiration.
    async fn tick(&self, shard: &Shard) {
        let now = unix_ms();
        let due: Vec<(String, Txn, Due)> = self
            .txns
            .borrow()
            .values()
            .flat_map(|ids| ids.iter())
            .map(|(id, t)| (id, t, t.due(now)))
            .filter(|(_, _, due)| *due != Due::Nothing)
            .map(|(id, t, due)| (id.clone(), t.clone(), due))
            .collect();
        for (id, txn, due) in due {
            let done = match due {
                Due::Abort => {
                    tracing::info!(transactional_id = %id, producer_id = txn.producer_id, "aborting a transaction open past its timeout");
                    shard.metrics().txn_timeouts.add(1);
                    self.abort_with_new_epoch(shard, &id, txn).await
                }
                Due::Complete => self.complete(shard, &id, txn).await,
                Due::Expire => {
                    tracing::info!(transactional_id = %id, "forgetting a transactional id unused past its expiration");
                    self.store(&id, None).await
                }
                Due::Nothing => Ok(()),
            };
            if let Err(e) = done {
                tracing::debug!(transactional_id = %id, error = %e, "completing a transaction; will retry");
            }
        }
    }
}

fn state_path(dir: &Path, partition: u32) -> PathBuf {
    dir.join(format!("{partition}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(phase: Phase, started_ms: i64, last_used_ms: i64) -> Txn {
        Txn {
            producer_id: 1,
            epoch: 0,
            timeout_ms: 60_000,
            phase,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            offsets: Vec::new(),
            started_ms,
            last_used_ms,
        }
    }

    #[test]
    fn the_tick_completes_decisions_aborts_timed_out_transactions_and_forgets_idle_ids() {
        let week = TRANSACTIONAL_ID_EXPIRATION_MS as i64;
        let now = 10 * week;
        assert_eq!(txn(Phase::PrepareCommit, 0, 0).due(now), Due::Complete);
        assert_eq!(txn(Phase::Ongoing, now - 60_001, now).due(now), Due::Abort);
        assert_eq!(
            txn(Phase::Ongoing, now - 1_000, 0).due(now),
            Due::Nothing,
            "an open transaction never expires"
        );
        assert_eq!(
            txn(Phase::CompleteCommit, 0, now - week - 1).due(now),
            Due::Expire
        );
        assert_eq!(txn(Phase::Empty, 0, now - week + 1).due(now), Due::Nothing);
    }

    #[test]
    fn an_id_kept_before_its_last_use_was_recorded_counts_from_its_load() {
        let json = r#"{"producer_id":1,"epoch":0,"timeout_ms":60000,"phase":"Empty",
            "partitions":[],"groups":[],"offsets":[],"started_ms":0}"#;
        let loaded: Txn = serde_json::from_str(json).expect("parses");
        assert_eq!(loaded.due(unix_ms()), Due::Nothing);
    }
}
