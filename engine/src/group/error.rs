//! [`GroupError`]: why a group operation was refused.
//!
//! These are answers of the classic group protocol, not failures of the engine: a client that
//! gets `RebalanceInProgress` rejoins, one that gets `UnknownMemberId` starts over. The protocol
//! is Kafka's, so each outcome has exactly one Kafka error code ([`GroupError::kafka_code`]);
//! the gRPC gateway maps the variants to its own statuses.

use kafka_protocol::ResponseError;

/// Why a group operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError {
    /// The coordinator does not know this member (never joined, expired, or left).
    UnknownMemberId,
    /// The member's generation is not the group's current one.
    IllegalGeneration,
    /// The group is rebalancing: the member must (re)join.
    RebalanceInProgress,
    /// KIP-394: a first join must be retried with the member id carried here.
    MemberIdRequired(String),
    /// The member's protocol type or protocols do not match the group's.
    InconsistentGroupProtocol,
    /// The session timeout is outside the range the coordinator allows.
    InvalidSessionTimeout,
    /// The group id is empty or too long.
    InvalidGroupId,
    /// The group already holds the most members allowed.
    GroupMaxSizeReached,
    /// Another member holds this `group.instance.id` (static membership).
    FencedInstanceId,
    /// DeleteGroups on a group that still has members.
    NonEmptyGroup,
    /// The group does not exist.
    GroupIdNotFound,
    /// KIP-848: ConsumerGroupDescribe of a group that is not a consumer-protocol group with
    /// members (Kafka's GROUP_ID_NOT_FOUND, with a message naming the group).
    NotConsumerGroup(String),
    /// The topic or partition of a commit does not exist.
    UnknownTopicOrPartition,
    /// OffsetDelete of a topic the group's members are subscribed to.
    GroupSubscribedToTopic,
    /// A commit's metadata string is too long.
    OffsetMetadataTooLarge,
    /// A commit too large for the offsets log.
    InvalidCommitOffsetSize,
    /// The coordinator cannot serve now (the offsets log refused the write, shutting down);
    /// clients retry after finding the coordinator again.
    CoordinatorNotAvailable,
    /// KIP-848: a heartbeat's member epoch is neither the member's nor, for a resent
    /// heartbeat, the one before; the member must join again.
    FencedMemberEpoch,
    /// KIP-848: an offset commit at an epoch that is not the member's.
    StaleMemberEpoch,
    /// KIP-848: the server-side assignor asked for is not one the coordinator has.
    UnsupportedAssignor(String),
    /// KIP-848: a subscription's regular expression does not compile, with why.
    InvalidRegularExpression(String),
    /// KIP-848: a consumer-protocol member cannot join the classic group named, which has
    /// members, as `group_consumer_migration_policy` allows no upgrade (Kafka's
    /// GROUP_ID_NOT_FOUND, with a message saying so).
    UpgradeDisabled(String),
    /// A request beyond the coordinator's limits (too many protocols, metadata or assignment
    /// too large), with what was wrong.
    InvalidRequest(String),
}

impl GroupError {
    /// The Kafka error code of this outcome.
    pub fn kafka_code(&self) -> i16 {
        let error = match self {
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::GroupIdNotFound
            | GroupError::NotConsumerGroup(_)
            | GroupError::UpgradeDisabled(_) => ResponseError::GroupIdNotFound,
            GroupError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
            GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
            GroupError::InvalidCommitOffsetSize => ResponseError::InvalidCommitOffsetSize,
            GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            GroupError::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
            GroupError::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
            GroupError::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
            GroupError::InvalidRegularExpression(_) => ResponseError::InvalidRegularExpression,
            GroupError::InvalidRequest(_) => ResponseError::InvalidRequest,
        };
        error.code()
    }
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupError::MemberIdRequired(id) => write!(f, "member id required: rejoin as {id}"),
            GroupError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            GroupError::NotConsumerGroup(group) => {
                write!(f, "group {group:?} is not a consumer group with members")
            }
            GroupError::UpgradeDisabled(group) => write!(
                f,
                "classic group {group:?} has members and group_consumer_migration_policy allows \
                 no upgrade to the consumer protocol"
            ),
            GroupError::InvalidRegularExpression(why) => {
                write!(f, "invalid regular expression: {why}")
            }
            other => write!(f, "{other:?}"),
        }
    }
}
