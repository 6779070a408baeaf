//! Consumer groups: the classic rebalance protocol, KIP-848's consumer protocol, and committed
//! offsets.
//!
//! A group's committed offsets live in partition `crc32(group id) % partitions` of the internal
//! topic [`OFFSETS_TOPIC`], and the shard that owns that partition is the group's coordinator
//! ([`crate::Shard::group_coordinator`], [`crate::EngineHandle::group_coordinator`]): all of the
//! group's requests run there, on that shard's [`GroupCoordinator`] (reached with
//! [`crate::Shard::local_groups`]), so a group's state has a single owner and no lock, and a
//! commit is a local append. The offsets topic keeps the partition count it was created with
//! (like Kafka's `offsets.topic.num.partitions`); when the shard count changes between starts
//! its partitions move to other shards, and each group's commits move with its partition.
//!
//! Layout:
//! - [`state`]: one group's state machine (Empty → PreparingRebalance → CompletingRebalance →
//!   Stable), pure: it takes `now` and queues answers instead of waiting or writing;
//! - [`consumer_group`]: one group of KIP-848's consumer protocol (epochs, the coordinator's
//!   assignment, reconciliation), pure as well;
//! - `coordinator`: the shard's groups, the waiting requests, the timer, reads;
//! - `commit`: offset commits and group deletion, which write to the offsets log;
//! - [`consumer_protocol`]: reading and writing members' subscriptions and assignments;
//! - `record`: the byte format of the offsets log; `offsets`: the in-memory map; `replay`: the
//!   replay at start; `membership`: groups' membership records, restored at start;
//! - `api`: routing helpers for callers on any shard or thread (the Kafka server, the gRPC
//!   gateway).
//!
//! # Using groups from Rust
//! From a shard, [`on_coordinator`] runs a closure on the group's coordinator:
//! ```ignore
//! let outcome = group::on_coordinator(&shard, "orders", move |shard, groups| async move {
//!     groups.commit_offsets(&shard, commit).await
//! }).await?;
//! ```
//! From any thread, [`crate::EngineHandle::run_on`] with the group's coordinator does the same:
//! ```ignore
//! let target = handle.group_coordinator("orders");
//! let offsets = handle.run_on(target, move |shard| async move {
//!     shard.local_groups().fetch_offsets("orders", None)
//! }).await?;
//! ```
//! [`list_all_groups`] gathers every group of every shard with members, assignments and
//! offsets (for lag reports).

mod api;
mod cleaning;
mod commit;
pub mod consumer_group;
pub mod consumer_protocol;
mod coordinator;
mod error;
mod expiry;
mod limits;
mod member;
mod membership;
mod offsets;
mod record;
mod replay;
pub mod state;

pub(crate) use api::{coordinator_in, offsets_partition};
pub use api::{list_all_groups, on_coordinator};
pub(crate) use commit::unix_ms;
pub use commit::CommitOutcome;
pub use coordinator::{
    Committer, GroupCoordinator, GroupDescription, GroupListing, GroupType, OffsetCommit,
};
pub use error::GroupError;
pub use limits::{INITIAL_REBALANCE_DELAY_DEFAULT, REBALANCE_TIMEOUT_MAX};
pub use member::{
    HeartbeatRequest, JoinRequest, JoinResponse, JoinedMember, MemberDescription, MemberIdentity,
    Protocol, SyncRequest, SyncResponse,
};
pub use offsets::CommittedOffset;
pub use state::GroupState;

/// The internal topic holding committed offsets, created at first start with
/// [`crate::limits::OFFSETS_PARTITIONS_MIN`] partitions or one per shard if there are more.
pub const OFFSETS_TOPIC: &str = crate::CONSUMER_OFFSETS_TOPIC;

#[cfg(test)]
mod engine_tests;

/// Seeded pseudo-random numbers (xorshift) for the tests that feed damaged bytes to decoders.
#[cfg(test)]
pub(crate) fn noise(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
