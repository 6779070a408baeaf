//! From a frame to an answer: decode the header and body, route to the API's file under `api/`,
//! encode the response at the request's version.
//!
//! Decoding never trusts the client: an unknown API key, a version outside [`versions::SERVED`]
//! or a body the codec cannot read is a [`RequestError`] and the connection closes (as Kafka
//! closes it). The one exception is ApiVersions at an unknown version, which is answered with
//! UNSUPPORTED_VERSION in a v0 body so the client can pick a version it shares with us.
//!
//! A body must also fill its frame: more than [`MAX_TRAILING_BYTES`] after it are refused like
//! an undecodable body. Produce batches and group metadata are zero-copy slices of the frame, so
//! a small batch padded with trailing bytes would otherwise keep a frame of up to
//! `max_frame_bytes` alive long after its memory reservation was given back. The few bytes let
//! through are for librdkafka, whose all-topics Metadata request carries 3 (see the constant).

use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::kafka::answer::{AnswerBuf, EncodedAnswer};
use crate::kafka::api;
use crate::kafka::context::RequestContext;
use crate::kafka::versions;
use crate::limits::MAX_TRAILING_BYTES;

/// A request read off the wire.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A request to answer.
    Request {
        /// Its API.
        api_key: ApiKey,
        /// Its header.
        header: RequestHeader,
        /// Its body.
        body: Box<RequestKind>,
        /// For Produce, the frame its batches are slices of, so that they can be taken back out
        /// of it as buffers of their own (`api::produce`).
        produce_frame: Option<Bytes>,
    },
    /// ApiVersions at a version not served: answered with v0 and UNSUPPORTED_VERSION.
    UnsupportedApiVersions {
        /// The request's correlation id.
        correlation_id: i32,
    },
}

/// A request that cannot be answered; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The API key is not a Kafka API.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A Kafka API or version that this server does not serve.
    #[error("{key:?} v{version} is not served")]
    NotServed {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The header or body does not decode.
    #[error("malformed {key:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
        /// What the codec reported.
        reason: String,
    },
    /// The header and body decode but leave more than [`MAX_TRAILING_BYTES`] of the frame
    /// unread.
    #[error("{key:?} v{version} request followed by {bytes} bytes after its body")]
    TrailingBytes {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
        /// Bytes of the frame after the body.
        bytes: usize,
    },
    /// The response could not be encoded (a bug: a field set at a version that lacks it).
    #[error("cannot encode the {key:?} v{version} response: {reason}")]
    Encode {
        /// The API.
        key: ApiKey,
        /// The version.
        version: i16,
        /// What the codec reported.
        reason: String,
    },
}

/// Decodes one frame (without its length prefix).
///
/// # Errors
/// [`RequestError`] for anything the server will not answer.
pub(crate) fn decode(frame: Bytes) -> Result<Decoded, RequestError> {
    // The frame reader guarantees MIN_FRAME_BYTES, enough for key, version and correlation id.
    let mut fixed = &frame[..];
    let raw_key = fixed.get_i16();
    let version = fixed.get_i16();
    let correlation_id = fixed.get_i32();
    let api_key = ApiKey::try_from(raw_key).map_err(|()| RequestError::UnknownApiKey(raw_key))?;
    if !versions::accepts(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            return Ok(Decoded::UnsupportedApiVersions { correlation_id });
        }
        return Err(RequestError::NotServed {
            key: api_key,
            version,
        });
    }
    let produce_frame = (api_key == ApiKey::Produce).then(|| frame.clone());
    // The codec is third-party code fed client bytes: a panic in it must end this request,
    // not the shard's thread.
    let decoded = std::panic::catch_unwind(move || {
        let mut rest = frame;
        let header = RequestHeader::decode(&mut rest, api_key.request_header_version(version))
            .map_err(|e| malformed(api_key, version, e))?;
        let body = RequestKind::decode(api_key, &mut rest, version)
            .map_err(|e| malformed(api_key, version, e))?;
        if rest.remaining() > MAX_TRAILING_BYTES {
            return Err(RequestError::TrailingBytes {
                key: api_key,
                version,
                bytes: rest.remaining(),
            });
        }
        Ok((header, body))
    });
    let (header, body) =
        decoded.unwrap_or_else(|_| Err(malformed(api_key, version, "codec panicked")))?;
    Ok(Decoded::Request {
        api_key,
        header,
        body: Box::new(body),
        produce_frame,
    })
}

fn malformed(key: ApiKey, version: i16, e: impl std::fmt::Display) -> RequestError {
    RequestError::Malformed {
        key,
        version,
        reason: format!("{e:#}"),
    }
}

fn encode_failed(key: ApiKey, version: i16, e: impl std::fmt::Display) -> RequestError {
    RequestError::Encode {
        key,
        version,
        reason: format!("{e:#}"),
    }
}

/// What a handled request gives the connection.
pub(crate) enum Answer {
    /// The response to encode.
    Response(Box<ResponseKind>),
    /// No answer is owed (Produce with acks=0).
    Silent,
    /// The API is in [`versions::SERVED`] but routed nowhere (a server bug): close the
    /// connection rather than leave the request unanswered.
    Unrouted,
}

/// Answers one decoded request; a Produce with what the connection learned as it read it (it
/// always gives one). The APIs are routed by what they serve: records here, then topics, groups,
/// transactions and access.
pub(crate) async fn answer(
    ctx: &RequestContext,
    body: RequestKind,
    arrival: Option<api::produce::Arrival>,
) -> Answer {
    let response = match body {
        RequestKind::Produce(req) => {
            let silent = req.acks == 0;
            let resp = api::produce::handle(ctx, req, arrival.unwrap_or_default()).await;
            if silent {
                return Answer::Silent;
            }
            ResponseKind::Produce(resp)
        }
        RequestKind::Fetch(req) => ResponseKind::Fetch(api::fetch::handle(ctx, req).await),
        RequestKind::ListOffsets(req) => {
            ResponseKind::ListOffsets(api::list_offsets::handle(ctx, req).await)
        }
        RequestKind::OffsetForLeaderEpoch(req) => {
            ResponseKind::OffsetForLeaderEpoch(api::offset_for_leader_epoch::handle(ctx, req).await)
        }
        RequestKind::Metadata(req) => {
            ResponseKind::Metadata(Box::pin(api::metadata::handle(ctx, req)).await)
        }
        RequestKind::ApiVersions(req) => {
            ResponseKind::ApiVersions(api::api_versions::handle(ctx, req).await)
        }
        RequestKind::DescribeCluster(req) => {
            ResponseKind::DescribeCluster(api::describe_cluster::handle(ctx, req).await)
        }
        // The other APIs' futures are boxed, as Metadata's: they are larger than Produce's and
        // Fetch's, and each request's task is as large as the largest future this function may
        // await (a consumer's long-polling Fetch held 8 KiB before).
        RequestKind::InitProducerId(req) => {
            ResponseKind::InitProducerId(Box::pin(api::init_producer_id::handle(ctx, req)).await)
        }
        other => return Box::pin(answer_topic(ctx, other)).await,
    };
    Answer::Response(Box::new(response))
}

/// Topic administration: topics, partitions, their configurations, log directories, records
/// deleted and replicas.
async fn answer_topic(ctx: &RequestContext, body: RequestKind) -> Answer {
    let response = match body {
        RequestKind::CreateTopics(req) => {
            ResponseKind::CreateTopics(api::create_topics::handle(ctx, req).await)
        }
        RequestKind::DeleteTopics(req) => {
            ResponseKind::DeleteTopics(api::delete_topics::handle(ctx, req).await)
        }
        RequestKind::CreatePartitions(req) => {
            ResponseKind::CreatePartitions(api::create_partitions::handle(ctx, req).await)
        }
        RequestKind::DescribeConfigs(req) => {
            ResponseKind::DescribeConfigs(api::describe_configs::handle(ctx, req).await)
        }
        RequestKind::AlterConfigs(req) => {
            ResponseKind::AlterConfigs(api::alter_configs::handle(ctx, req).await)
        }
        RequestKind::IncrementalAlterConfigs(req) => ResponseKind::IncrementalAlterConfigs(
            api::incremental_alter_configs::handle(ctx, req).await,
        ),
        RequestKind::ListConfigResources(req) => {
            ResponseKind::ListConfigResources(api::list_config_resources::handle(ctx, req).await)
        }
        RequestKind::DescribeLogDirs(req) => {
            ResponseKind::DescribeLogDirs(api::describe_log_dirs::handle(ctx, req).await)
        }
        RequestKind::DeleteRecords(req) => {
            ResponseKind::DeleteRecords(api::delete_records::handle(ctx, req).await)
        }
        RequestKind::DescribeTopicPartitions(req) => ResponseKind::DescribeTopicPartitions(
            api::describe_topic_partitions::handle(ctx, req).await,
        ),
        RequestKind::ElectLeaders(req) => {
            ResponseKind::ElectLeaders(api::replicas::elect(ctx, req).await)
        }
        RequestKind::AlterPartitionReassignments(req) => ResponseKind::AlterPartitionReassignments(
            api::replicas::alter_reassignments(ctx, req).await,
        ),
        RequestKind::ListPartitionReassignments(req) => ResponseKind::ListPartitionReassignments(
            api::replicas::list_reassignments(ctx, req).await,
        ),
        other => return answer_group(ctx, other).await,
    };
    Answer::Response(Box::new(response))
}

/// The consumer-group APIs of both protocols, served by the group coordinator's handlers.
async fn answer_group(ctx: &RequestContext, body: RequestKind) -> Answer {
    let response = match body {
        RequestKind::FindCoordinator(req) => {
            ResponseKind::FindCoordinator(api::find_coordinator::handle(ctx, req).await)
        }
        RequestKind::JoinGroup(req) => {
            ResponseKind::JoinGroup(api::join_group::handle(ctx, req).await)
        }
        RequestKind::SyncGroup(req) => {
            ResponseKind::SyncGroup(api::sync_group::handle(ctx, req).await)
        }
        RequestKind::Heartbeat(req) => {
            ResponseKind::Heartbeat(api::heartbeat::handle(ctx, req).await)
        }
        RequestKind::LeaveGroup(req) => {
            ResponseKind::LeaveGroup(api::leave_group::handle(ctx, req).await)
        }
        RequestKind::OffsetCommit(req) => {
            ResponseKind::OffsetCommit(api::offset_commit::handle(ctx, req).await)
        }
        RequestKind::OffsetFetch(req) => {
            ResponseKind::OffsetFetch(api::offset_fetch::handle(ctx, req).await)
        }
        RequestKind::ListGroups(req) => {
            ResponseKind::ListGroups(api::list_groups::handle(ctx, req).await)
        }
        RequestKind::DescribeGroups(req) => {
            ResponseKind::DescribeGroups(api::describe_groups::handle(ctx, req).await)
        }
        RequestKind::DeleteGroups(req) => {
            ResponseKind::DeleteGroups(api::delete_groups::handle(ctx, req).await)
        }
        RequestKind::OffsetDelete(req) => {
            ResponseKind::OffsetDelete(api::offset_delete::handle(ctx, req).await)
        }
        RequestKind::ConsumerGroupHeartbeat(req) => ResponseKind::ConsumerGroupHeartbeat(
            api::consumer_group_heartbeat::handle(ctx, req).await,
        ),
        RequestKind::ConsumerGroupDescribe(req) => ResponseKind::ConsumerGroupDescribe(
            api::consumer_group_describe::handle(ctx, req).await,
        ),
        other => return answer_transaction(ctx, other).await,
    };
    Answer::Response(Box::new(response))
}

/// Transactions, their markers, and what is known of producers and transactions.
async fn answer_transaction(ctx: &RequestContext, body: RequestKind) -> Answer {
    let response = match body {
        RequestKind::AddPartitionsToTxn(req) => {
            ResponseKind::AddPartitionsToTxn(api::transactions::add_partitions(ctx, req).await)
        }
        RequestKind::AddOffsetsToTxn(req) => {
            ResponseKind::AddOffsetsToTxn(api::transactions::add_offsets(ctx, req).await)
        }
        RequestKind::TxnOffsetCommit(req) => {
            ResponseKind::TxnOffsetCommit(api::transactions::commit_offsets(ctx, req).await)
        }
        RequestKind::EndTxn(req) => ResponseKind::EndTxn(api::transactions::end(ctx, req).await),
        RequestKind::WriteTxnMarkers(req) => {
            ResponseKind::WriteTxnMarkers(api::write_txn_markers::handle(ctx, req).await)
        }
        RequestKind::DescribeProducers(req) => {
            ResponseKind::DescribeProducers(api::describe_producers::handle(ctx, req).await)
        }
        RequestKind::DescribeTransactions(req) => {
            ResponseKind::DescribeTransactions(api::describe_transactions::handle(ctx, req).await)
        }
        RequestKind::ListTransactions(req) => {
            ResponseKind::ListTransactions(api::list_transactions::handle(ctx, req).await)
        }
        other => return answer_access(ctx, other).await,
    };
    Answer::Response(Box::new(response))
}

/// Who may do what: ACLs, client quotas and SCRAM credentials.
async fn answer_access(ctx: &RequestContext, body: RequestKind) -> Answer {
    let response = match body {
        RequestKind::DescribeAcls(req) => {
            ResponseKind::DescribeAcls(api::acls::describe(ctx, req).await)
        }
        RequestKind::CreateAcls(req) => ResponseKind::CreateAcls(api::acls::create(ctx, req).await),
        RequestKind::DeleteAcls(req) => ResponseKind::DeleteAcls(api::acls::delete(ctx, req).await),
        RequestKind::DescribeClientQuotas(req) => {
            ResponseKind::DescribeClientQuotas(api::client_quotas::describe(ctx, req).await)
        }
        RequestKind::AlterClientQuotas(req) => {
            ResponseKind::AlterClientQuotas(api::client_quotas::alter(ctx, req).await)
        }
        RequestKind::DescribeUserScramCredentials(req) => {
            ResponseKind::DescribeUserScramCredentials(
                api::scram_credentials::describe(ctx, req).await,
            )
        }
        RequestKind::AlterUserScramCredentials(req) => {
            ResponseKind::AlterUserScramCredentials(api::scram_credentials::alter(ctx, req).await)
        }
        // `decode` admits only the APIs in `versions::SERVED`, all matched above or before; the
        // test `every_served_version_answers_and_decodes` holds the two together.
        _ => return Answer::Unrouted,
    };
    Answer::Response(Box::new(response))
}

/// Encodes a response with its length prefix and header, ready to write; a Fetch answer's
/// large records stay where they are stored (see [`crate::kafka::answer`]).
///
/// # Errors
/// [`RequestError::Encode`] when the codec refuses the response (a server bug).
pub(crate) fn encode(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<EncodedAnswer, RequestError> {
    let mut buf = AnswerBuf::new(ANSWER_OVERHEAD_BYTES, fetched_records(response));
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api_key.response_header_version(version))
        .map_err(|e| encode_failed(api_key, version, e))?;
    match response {
        // The one answer that carries records: encoded through `AnswerBuf` itself.
        ResponseKind::Fetch(fetch) => fetch.encode(&mut buf, version),
        other => other.encode(buf.piece_mut(), version),
    }
    .map_err(|e| encode_failed(api_key, version, e))?;
    buf.finish()
        .ok_or_else(|| encode_failed(api_key, version, "response over 2 GiB"))
}

/// Room for what an answer holds besides records (headers, topic and partition fields).
const ANSWER_OVERHEAD_BYTES: usize = 1024;

/// The records a Fetch answer carries, in the order they are encoded (none for other APIs).
fn fetched_records(response: &ResponseKind) -> impl Iterator<Item = &Bytes> {
    let topics = match response {
        ResponseKind::Fetch(fetch) => &fetch.responses[..],
        _ => &[],
    };
    topics
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.as_ref())
}

/// The answer to ApiVersions at an unsupported version: v0 body, UNSUPPORTED_VERSION, and the
/// served ranges so the client can retry at one of them.
pub(crate) fn encode_unsupported_api_versions(
    correlation_id: i32,
) -> Result<EncodedAnswer, RequestError> {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api::api_versions::served_keys());
    encode(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(response),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::{Request, StrBytes};

    /// `request` at `version` as a frame without its length prefix, with `extra` bytes after it.
    fn frame<R: Request>(request: &R, version: i16, extra: &[u8]) -> Bytes {
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(9)
            .with_client_id(Some(StrBytes::from_static_str("dispatch-test")))
            .encode(&mut body, R::header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        body.extend_from_slice(extra);
        body.freeze()
    }

    #[test]
    fn a_body_that_fills_its_frame_decodes() {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("test"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let decoded = decode(frame(&request, 3, &[])).unwrap();
        assert!(matches!(
            decoded,
            Decoded::Request { api_key: ApiKey::ApiVersions, header, .. } if header.correlation_id == 9
        ));
    }

    #[test]
    fn bytes_after_the_body_are_refused_naming_the_api() {
        let request = MetadataRequest::default().with_topics(Some(Vec::new()));
        for (version, extra) in [
            (1, &[0u8; MAX_TRAILING_BYTES + 1][..]),
            (12, &[0u8; 4096][..]),
        ] {
            let err = decode(frame(&request, version, extra)).unwrap_err();
            assert!(
                matches!(
                    err,
                    RequestError::TrailingBytes { key: ApiKey::Metadata, version: v, bytes }
                        if v == version && bytes == extra.len()
                ),
                "v{version}: {err}"
            );
            assert!(err.to_string().contains("Metadata"), "{err}");
        }
    }

    #[test]
    fn a_few_bytes_after_the_body_are_let_through() {
        let request = MetadataRequest::default().with_topics(Some(Vec::new()));
        let decoded = decode(frame(&request, 12, &[0u8; MAX_TRAILING_BYTES])).unwrap();
        assert!(matches!(
            decoded,
            Decoded::Request {
                api_key: ApiKey::Metadata,
                ..
            }
        ));
    }

    #[test]
    fn librdkafkas_all_topics_metadata_request_is_served() {
        // Metadata v13 for all topics as librdkafka 2.16 sends it: the null topic array is a
        // 0 length followed by the 3 zero bytes left of a 4-byte placeholder.
        let frame = Bytes::from_static(
            b"\x00\x03\x00\x0d\x00\x00\x00\x04\x00\x07rdkafka\x00\
              \x00\x00\x00\x00\x01\x00\x00",
        );
        let decoded = decode(frame).unwrap();
        assert!(matches!(
            decoded,
            Decoded::Request { api_key: ApiKey::Metadata, body, .. }
                if matches!(&*body, RequestKind::Metadata(req) if req.topics.is_none())
        ));
    }
}
