//! `spindle.v1.Admin`: topics, and the gateway's own gauges.
//!
//! Creating and deleting need the `admin` permission on the topic's name; describing needs
//! `read` or `admin`; listing shows the topics the caller has any permission on.

use std::sync::Arc;

use spindle_engine::TopicConfig;
use tonic::{Request, Response, Status};

use super::Context;
use crate::auth::{principal_of, PrincipalCheck};
use crate::config::Operation;
use crate::gauges::Gauge;
use crate::proto::admin_server::Admin;
use crate::proto::{
    ConfigEntry, CreateTopicRequest, DeleteTopicRequest, DeleteTopicResponse, DescribeTopicRequest,
    GatewayStatus, GetGatewayStatusRequest, ListTopicsRequest, ListTopicsResponse,
    PartitionDescription, TopicDescription, TopicInfo,
};
use crate::status::{self, invalid_argument};

/// The `Admin` service.
pub struct AdminService {
    ctx: Arc<Context>,
}

impl AdminService {
    /// Serves admin calls through `ctx`.
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn create_topic(
        &self,
        request: Request<CreateTopicRequest>,
    ) -> Result<Response<TopicInfo>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        check_name(&request.name)?;
        principal.check(Operation::Admin, &request.name)?;
        if request.partitions == 0 {
            return Err(invalid_argument("partitions", &"must be at least 1"));
        }
        let mut config = TopicConfig::default();
        for entry in &request.config {
            config
                .set(&entry.key, &entry.value)
                .map_err(status::from_engine)?;
        }
        let info = self
            .ctx
            .engine
            .create_topic(&request.name, request.partitions, config)
            .await
            .map_err(status::from_engine)?;
        self.ctx.topics.forget(&request.name);
        tracing::info!(topic = %request.name, principal = principal.name(), "topic created over gRPC");
        Ok(Response::new(topic_info(info)))
    }

    async fn delete_topic(
        &self,
        request: Request<DeleteTopicRequest>,
    ) -> Result<Response<DeleteTopicResponse>, Status> {
        let principal = principal_of(&request)?;
        let request = request.into_inner();
        check_name(&request.name)?;
        principal.check(Operation::Admin, &request.name)?;
        self.ctx
            .engine
            .delete_topic(&request.name)
            .await
            .map_err(status::from_engine)?;
        self.ctx.topics.forget(&request.name);
        tracing::info!(topic = %request.name, principal = principal.name(), "topic deleted over gRPC");
        Ok(Response::new(DeleteTopicResponse {}))
    }

    async fn list_topics(
        &self,
        request: Request<ListTopicsRequest>,
    ) -> Result<Response<ListTopicsResponse>, Status> {
        let principal = principal_of(&request)?;
        let include_internal = request.get_ref().include_internal;
        let topics = self
            .ctx
            .engine
            .list_topics()
            .await
            .map_err(status::from_engine)?
            .into_iter()
            .filter(|t| (include_internal || !t.internal) && principal.allows_any(&t.name))
            .map(topic_info)
            .collect();
        Ok(Response::new(ListTopicsResponse { topics }))
    }

    async fn describe_topic(
        &self,
        request: Request<DescribeTopicRequest>,
    ) -> Result<Response<TopicDescription>, Status> {
        let principal = principal_of(&request)?;
        let name = &request.get_ref().name;
        check_name(name)?;
        if !principal.allows(Operation::Read, name) {
            principal.check(Operation::Admin, name)?;
        }
        let description = self
            .ctx
            .engine
            .describe_topic(name)
            .await
            .map_err(status::from_engine)?;
        let partitions = description
            .partitions
            .iter()
            .map(|p| PartitionDescription {
                partition: p.partition.0,
                shard: p.shard.0,
                log_start_offset: i64::try_from(p.log_start_offset.0).unwrap_or(i64::MAX),
                high_watermark: i64::try_from(p.high_watermark.0).unwrap_or(i64::MAX),
                size_bytes: p.size_bytes,
            })
            .collect();
        Ok(Response::new(TopicDescription {
            info: Some(topic_info(description.info)),
            partitions,
        }))
    }

    async fn get_gateway_status(
        &self,
        request: Request<GetGatewayStatusRequest>,
    ) -> Result<Response<GatewayStatus>, Status> {
        principal_of(&request)?;
        let gauges = &self.ctx.gauges;
        Ok(Response::new(GatewayStatus {
            active_subscriptions: gauges.get(Gauge::ActiveSubscriptions),
            active_produce_streams: gauges.get(Gauge::ActiveProduceStreams),
            queued_subscriber_bytes: gauges.get(Gauge::QueuedSubscriberBytes),
        }))
    }
}

fn check_name(name: &str) -> Result<(), Status> {
    if name.is_empty() {
        Err(invalid_argument("name", &"empty"))
    } else {
        Ok(())
    }
}

fn topic_info(info: spindle_engine::TopicInfo) -> TopicInfo {
    TopicInfo {
        config: info
            .config
            .entries()
            .into_iter()
            .map(|(key, value)| ConfigEntry {
                key: key.to_string(),
                value,
            })
            .collect(),
        name: info.name,
        partitions: info.partitions,
        internal: info.internal,
        topic_id: bytes::Bytes::copy_from_slice(&info.topic_id.to_be_bytes()),
    }
}
