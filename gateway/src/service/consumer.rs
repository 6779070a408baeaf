//! `spindle.v1.Consumer`: `Subscribe`, `Commit` and `FetchCommitted`.
//!
//! A subscription starts each partition at an offset, at the earliest or latest offset, at a
//! timestamp, or at a consumer group's committed offset (falling back to `reset`). With a group
//! the subscriber commits what it has processed with `Commit`, and a later subscription of the
//! same group resumes there; the group's offsets are the ones Kafka consumers of that group
//! use. A group subscription that names no partitions joins the group's rebalance protocol and
//! reads what the group assigns it (see [`crate::group_member`]); one that names partitions
//! reads those from the group's offsets without joining.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use spindle_engine::{Isolation as EngineIsolation, OffsetSpec};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::subscription::{self, Plan, Subscription};
use super::Context;
use crate::auth::{principal_of, PrincipalCheck};
use crate::committed_offsets;
use crate::config::Operation;
use crate::group_member::GroupMember;
use crate::limits::{
    SUBSCRIBE_MAX_BYTES_DEFAULT, SUBSCRIBE_MAX_BYTES_MAX, SUBSCRIBE_MAX_WAIT_DEFAULT,
    SUBSCRIBE_MAX_WAIT_MAX, SUBSCRIBE_PARTITIONS_MAX, SUBSCRIBE_QUEUE_MESSAGES,
};
use crate::proto::consumer_server::Consumer;
use crate::proto::subscribe_request::Start;
use crate::proto::{
    CommitRequest, CommitResponse, FetchCommittedRequest, FetchCommittedResponse, Isolation,
    PartitionOffset, StartPosition, SubscribeRequest, SubscribeResponse,
};
use crate::status::invalid_argument;
use spindle_engine::access::Principal;

/// The `Consumer` service.
pub struct ConsumerService {
    ctx: Arc<Context>,
}

impl ConsumerService {
    /// Serves consumer calls through `ctx`.
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Consumer for ConsumerService {
    type SubscribeStream = RecordStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<RecordStream>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        if request.topic.is_empty() {
            return Err(invalid_argument("topic", &"empty"));
        }
        principal.check(Operation::Read, &request.topic)?;
        if let Some(Start::Group(group)) = &request.start {
            check_group_topic(&principal, group, &request.topic)?;
        }
        let max_wait = match request.max_wait_ms {
            0 => SUBSCRIBE_MAX_WAIT_DEFAULT,
            ms => Duration::from_millis(u64::from(ms)).min(SUBSCRIBE_MAX_WAIT_MAX),
        };
        let max_bytes = match request.max_bytes {
            0 => SUBSCRIBE_MAX_BYTES_DEFAULT,
            bytes => (bytes as usize).min(SUBSCRIBE_MAX_BYTES_MAX),
        };
        let isolation = isolation_of(request.isolation)?;
        let partitions = self.partitions(&request).await?;
        let plan = match &request.start {
            Some(Start::Group(group)) if request.partitions.is_empty() => Plan::Member {
                member: GroupMember::new(self.ctx.engine.clone(), group, &request.topic),
                group: group.clone(),
                reset: reset_spec(request.reset)?,
            },
            _ => Plan::Fixed(self.start_positions(&request, &partitions).await?),
        };
        let subscription = Subscription {
            ctx: Arc::clone(&self.ctx),
            topic: Arc::from(request.topic.as_str()),
            plan,
            max_wait,
            max_bytes,
            isolation,
        };
        let (queue, rx) = mpsc::channel(SUBSCRIBE_QUEUE_MESSAGES);
        tokio::spawn(subscription.run(queue));
        // Taking a response out of the queue drops its gauge guard.
        let stream = ReceiverStream::new(rx).map(|(response, _queued)| response);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        check_group_topic(&principal, &request.group, &request.topic)?;
        principal.check(Operation::Read, &request.topic)?;
        if request.offsets.is_empty() {
            return Err(invalid_argument("offsets", &"empty"));
        }
        let offsets = request
            .offsets
            .iter()
            .map(|o| (o.partition, o.offset))
            .collect();
        committed_offsets::commit(&self.ctx.engine, &request.group, &request.topic, offsets)
            .await?;
        Ok(Response::new(CommitResponse {}))
    }

    async fn fetch_committed(
        &self,
        request: Request<FetchCommittedRequest>,
    ) -> Result<Response<FetchCommittedResponse>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        check_group_topic(&principal, &request.group, &request.topic)?;
        principal.check(Operation::Read, &request.topic)?;
        let offsets =
            committed_offsets::fetch(&self.ctx.engine, &request.group, &request.topic).await?;
        Ok(Response::new(FetchCommittedResponse {
            offsets: offsets
                .into_iter()
                .map(|(partition, offset)| PartitionOffset { partition, offset })
                .collect(),
        }))
    }
}

impl ConsumerService {
    /// The partitions asked for, checked against the topic; all of them when none are named.
    async fn partitions(&self, request: &SubscribeRequest) -> Result<Vec<u32>, Status> {
        let count = self
            .ctx
            .topics
            .partitions(&self.ctx.engine, &request.topic)
            .await?;
        if request.partitions.is_empty() {
            return Ok((0..count).collect());
        }
        if request.partitions.len() > SUBSCRIBE_PARTITIONS_MAX {
            return Err(invalid_argument(
                "partitions",
                &format!("at most {SUBSCRIBE_PARTITIONS_MAX}"),
            ));
        }
        let mut partitions = request.partitions.clone();
        partitions.sort_unstable();
        partitions.dedup();
        if let Some(missing) = partitions.iter().find(|&&p| p >= count) {
            return Err(Status::not_found(format!(
                "topic {:?} has no partition {missing} (it has {count})",
                request.topic
            )));
        }
        Ok(partitions)
    }

    /// Where each partition starts.
    async fn start_positions(
        &self,
        request: &SubscribeRequest,
        partitions: &[u32],
    ) -> Result<Vec<(u32, i64)>, Status> {
        let reset = reset_spec(request.reset)?;
        let committed = match &request.start {
            Some(Start::Group(group)) => {
                committed_offsets::fetch(&self.ctx.engine, group, &request.topic).await?
            }
            _ => Vec::new(),
        };
        let mut positions = Vec::with_capacity(partitions.len());
        for &partition in partitions {
            let spec = match &request.start {
                Some(Start::Offset(offset)) if *offset < 0 => {
                    return Err(invalid_argument("offset", &"must not be negative"));
                }
                Some(Start::Offset(offset)) => {
                    positions.push((partition, *offset));
                    continue;
                }
                Some(Start::Group(_)) => {
                    let committed = committed
                        .iter()
                        .find(|(p, _)| *p == partition)
                        .map(|&(_, offset)| offset);
                    let engine = &self.ctx.engine;
                    let offset = subscription::from_committed(
                        engine,
                        &request.topic,
                        partition,
                        committed,
                        reset,
                    )
                    .await?;
                    positions.push((partition, offset));
                    continue;
                }
                Some(Start::TimestampMs(ms)) => OffsetSpec::Timestamp(*ms),
                Some(Start::Position(position)) => match StartPosition::try_from(*position) {
                    Ok(StartPosition::Earliest) => OffsetSpec::Earliest,
                    Ok(StartPosition::Latest | StartPosition::Unspecified) => OffsetSpec::Latest,
                    Err(_) => return Err(invalid_argument("position", &"unknown start position")),
                },
                None => OffsetSpec::Latest,
            };
            let offset =
                subscription::resolve(&self.ctx.engine, &request.topic, partition, spec).await?;
            positions.push((partition, offset));
        }
        Ok(positions)
    }
}

/// Where a group's partition without a committed offset starts (default earliest).
fn reset_spec(reset: i32) -> Result<OffsetSpec, Status> {
    match StartPosition::try_from(reset) {
        Ok(StartPosition::Latest) => Ok(OffsetSpec::Latest),
        Ok(StartPosition::Earliest | StartPosition::Unspecified) => Ok(OffsetSpec::Earliest),
        Err(_) => Err(invalid_argument("reset", &"unknown start position")),
    }
}

/// The engine's isolation for a subscription's (default read committed).
fn isolation_of(isolation: i32) -> Result<EngineIsolation, Status> {
    match Isolation::try_from(isolation) {
        Ok(Isolation::ReadCommitted | Isolation::Unspecified) => Ok(EngineIsolation::ReadCommitted),
        Ok(Isolation::ReadUncommitted) => Ok(EngineIsolation::ReadUncommitted),
        Err(_) => Err(invalid_argument("isolation", &"unknown isolation")),
    }
}

fn check_group_topic(principal: &Principal, group: &str, topic: &str) -> Result<(), Status> {
    if group.is_empty() {
        return Err(invalid_argument("group", &"empty"));
    }
    if topic.is_empty() {
        return Err(invalid_argument("topic", &"empty"));
    }
    principal.check_group(group)
}
