//! One file per Kafka API.

pub(crate) mod delete_groups;
pub(crate) mod describe_groups;
pub(crate) mod find_coordinator;
pub(crate) mod heartbeat;
pub(crate) mod join_group;
pub(crate) mod leave_group;
pub(crate) mod list_groups;
pub(crate) mod offset_commit;
pub(crate) mod offset_fetch;
pub(crate) mod sync_group;
