//! Fetch sessions (KIP-227): a consumer that fetches the same partitions over and over names
//! them once, and afterwards each Fetch carries only what changed (a partition's fetch offset,
//! one added or forgotten), while each answer carries only the partitions with something to say
//! (records, an error, or a high watermark, last stable offset or log start offset that moved).
//! Java clients and kafka-python use them; librdkafka and kafkajs do not.
//!
//! The request's `session_id` and `session_epoch` decide:
//! - epoch -1: a full fetch without a session (and the session named, if any, is closed);
//! - epoch 0: a full fetch that opens a session (closing the one named, if any): the answer
//!   carries its id, and the session holds the request's partitions in request order;
//! - epoch n > 0: an incremental fetch of session `session_id`, which must be the session's next
//!   epoch (else INVALID_FETCH_SESSION_EPOCH; an id the connection has no session for is
//!   FETCH_SESSION_ID_NOT_FOUND, after which clients start over with a full fetch).
//!
//! A session belongs to its connection, which holds at most one (a client keeps one per node):
//! it ends when the connection closes, and a client that reconnects starts a new one, as after
//! Kafka evicts a session. A request that would make a session hold more than
//! [`FETCH_SESSION_PARTITIONS_MAX`] partitions is served without one.
//!
//! After each incremental answer the partitions that returned records move to the end of the
//! session's order, so that, when the answer's byte budget runs out before the last partition,
//! the others are read first next time (Kafka's rotation).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use uuid::Uuid;

use crate::limits::FETCH_SESSION_PARTITIONS_MAX;

/// The epoch of a full fetch that wants no session.
const FINAL_EPOCH: i32 = -1;
/// The epoch of a full fetch that opens a session.
const INITIAL_EPOCH: i32 = 0;
/// The session id of an answer without a session.
const NO_SESSION: i32 = 0;

/// A connection's fetch session, if it has one.
#[derive(Default, Clone)]
pub(crate) struct FetchSessionSlot(Rc<RefCell<Slot>>);

#[derive(Default)]
struct Slot {
    session: Option<Session>,
    /// The id the last session was given; the next gets the one after.
    last_id: i32,
}

/// A partition as the client names it: by topic id from Fetch v13, by name before.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    topic_id: Uuid,
    topic: TopicName,
    partition: i32,
}

impl Key {
    fn of(topic: &FetchTopic, partition: i32) -> Self {
        Self {
            topic_id: topic.topic_id,
            topic: topic.topic.clone(),
            partition,
        }
    }
}

/// What the session remembers of a partition: what to fetch, and what it last answered.
#[derive(Clone)]
struct Cached {
    request: FetchPartition,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

impl Cached {
    fn new(request: FetchPartition) -> Self {
        Self {
            request,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
        }
    }

    /// Takes in what an answer says of the partition; whether an incremental answer must
    /// carry it.
    fn answered(&mut self, data: &PartitionData) -> bool {
        let has_records = data.records.as_ref().is_some_and(|r| !r.is_empty());
        let moved = (
            self.high_watermark,
            self.last_stable_offset,
            self.log_start_offset,
        ) != (
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset,
        );
        self.high_watermark = data.high_watermark;
        self.last_stable_offset = data.last_stable_offset;
        self.log_start_offset = data.log_start_offset;
        has_records || moved || data.error_code != 0
    }
}

struct Session {
    id: i32,
    /// The epoch the next incremental fetch must carry.
    next_epoch: i32,
    /// The partitions in fetch order.
    order: Vec<Key>,
    partitions: HashMap<Key, Cached>,
}

/// How a Fetch is served, decided before it reads.
pub(crate) enum Plan {
    /// A full fetch; the answer carries no session id.
    Sessionless,
    /// A full fetch that opens a session once answered; its partitions in request order.
    Open(Vec<(Key, FetchPartition)>),
    /// An incremental fetch of session `id`, whose partitions now make the request.
    Incremental { id: i32 },
}

impl FetchSessionSlot {
    /// Decides how `req` is served and, for an incremental fetch, turns it into the full
    /// request of the session's partitions.
    ///
    /// # Errors
    /// FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH, as the module docs say.
    pub(crate) fn begin(&self, req: &mut FetchRequest) -> Result<Plan, i16> {
        let mut slot = self.0.borrow_mut();
        if req.session_epoch == FINAL_EPOCH || req.session_epoch == INITIAL_EPOCH {
            if req.session_id != NO_SESSION {
                slot.session = None;
            }
            if req.session_epoch == FINAL_EPOCH {
                return Ok(Plan::Sessionless);
            }
            let mut named: Vec<(Key, FetchPartition)> = Vec::new();
            let mut seen = HashSet::new();
            for topic in &req.topics {
                for part in &topic.partitions {
                    let key = Key::of(topic, part.partition);
                    if seen.insert(key.clone()) {
                        named.push((key, part.clone()));
                    }
                }
            }
            return Ok(if named.len() > FETCH_SESSION_PARTITIONS_MAX {
                Plan::Sessionless
            } else {
                Plan::Open(named)
            });
        }
        let Some(session) = slot.session.as_mut().filter(|s| s.id == req.session_id) else {
            return Err(ResponseError::FetchSessionIdNotFound.code());
        };
        if req.session_epoch != session.next_epoch {
            return Err(ResponseError::InvalidFetchSessionEpoch.code());
        }
        session.next_epoch = next_epoch(session.next_epoch);
        for forgotten in &req.forgotten_topics_data {
            for &partition in &forgotten.partitions {
                let key = Key {
                    topic_id: forgotten.topic_id,
                    topic: forgotten.topic.clone(),
                    partition,
                };
                session.partitions.remove(&key);
            }
        }
        for topic in &req.topics {
            for part in &topic.partitions {
                let key = Key::of(topic, part.partition);
                match session.partitions.get_mut(&key) {
                    Some(cached) => cached.request = part.clone(),
                    None => {
                        session.order.push(key.clone());
                        session.partitions.insert(key, Cached::new(part.clone()));
                    }
                }
            }
        }
        let partitions = &session.partitions;
        session.order.retain(|key| partitions.contains_key(key));
        if session.order.len() > FETCH_SESSION_PARTITIONS_MAX {
            slot.session = None;
            return Err(ResponseError::FetchSessionIdNotFound.code());
        }
        req.topics = topics_of(
            session
                .order
                .iter()
                .filter_map(|key| Some((key, &session.partitions.get(key)?.request))),
        );
        Ok(Plan::Incremental { id: session.id })
    }

    /// Completes the answer to a fetch served by `plan`: opens the session of a full fetch
    /// that asked for one, and keeps in an incremental answer only the partitions with
    /// something to say.
    pub(crate) fn finish(&self, plan: Plan, mut response: FetchResponse) -> FetchResponse {
        let mut slot = self.0.borrow_mut();
        match plan {
            Plan::Sessionless => response.with_session_id(NO_SESSION),
            Plan::Open(named) => {
                let id = slot.last_id.checked_add(1).unwrap_or(1);
                slot.last_id = id;
                let mut partitions: HashMap<Key, Cached> = HashMap::with_capacity(named.len());
                let order = named.iter().map(|(key, _)| key.clone()).collect();
                for (key, request) in named {
                    partitions.insert(key, Cached::new(request));
                }
                for (topic, data) in answered(&response) {
                    if let Some(cached) = partitions.get_mut(&topic.key(data.partition_index)) {
                        cached.answered(data);
                    }
                }
                slot.session = Some(Session {
                    id,
                    next_epoch: 1,
                    order,
                    partitions,
                });
                response.with_session_id(id)
            }
            Plan::Incremental { id } => {
                let Some(session) = slot.session.as_mut().filter(|s| s.id == id) else {
                    // A full fetch replaced the session while this one read.
                    return response.with_session_id(NO_SESSION);
                };
                let mut with_records = HashSet::new();
                for topic in &mut response.responses {
                    let name = AnswerTopic {
                        topic_id: topic.topic_id,
                        topic: topic.topic.clone(),
                    };
                    topic.partitions.retain(|data| {
                        let key = name.key(data.partition_index);
                        if data.records.as_ref().is_some_and(|r| !r.is_empty()) {
                            with_records.insert(key.clone());
                        }
                        session
                            .partitions
                            .get_mut(&key)
                            .is_none_or(|cached| cached.answered(data))
                    });
                }
                response.responses.retain(|t| !t.partitions.is_empty());
                // The partitions that returned records go last next time.
                if !with_records.is_empty() {
                    let order = std::mem::take(&mut session.order);
                    let (rest, last): (Vec<Key>, Vec<Key>) =
                        order.into_iter().partition(|k| !with_records.contains(k));
                    session.order = rest.into_iter().chain(last).collect();
                }
                response.with_session_id(id)
            }
        }
    }
}

/// How an answer names a topic (as the request did).
struct AnswerTopic {
    topic_id: Uuid,
    topic: TopicName,
}

impl AnswerTopic {
    fn key(&self, partition: i32) -> Key {
        Key {
            topic_id: self.topic_id,
            topic: self.topic.clone(),
            partition,
        }
    }
}

/// Every partition of an answer with its topic.
fn answered(response: &FetchResponse) -> impl Iterator<Item = (AnswerTopic, &PartitionData)> {
    response.responses.iter().flat_map(|topic| {
        topic.partitions.iter().map(|data| {
            let name = AnswerTopic {
                topic_id: topic.topic_id,
                topic: topic.topic.clone(),
            };
            (name, data)
        })
    })
}

/// The request's topics for partitions in fetch order, consecutive partitions of a topic
/// together.
fn topics_of<'a>(
    partitions: impl Iterator<Item = (&'a Key, &'a FetchPartition)>,
) -> Vec<FetchTopic> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (key, part) in partitions {
        let same = topics
            .last()
            .is_some_and(|t| t.topic_id == key.topic_id && t.topic == key.topic);
        if !same {
            topics.push(
                FetchTopic::default()
                    .with_topic(key.topic.clone())
                    .with_topic_id(key.topic_id),
            );
        }
        if let Some(topic) = topics.last_mut() {
            topic.partitions.push(part.clone());
        }
    }
    topics
}

/// The epoch after `epoch`: epochs wrap from `i32::MAX` to 1, as Kafka's do.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn topic() -> TopicName {
        TopicName(StrBytes::from_static_str("t"))
    }

    fn request(id: i32, epoch: i32, partitions: &[i32]) -> FetchRequest {
        let parts = partitions
            .iter()
            .map(|&p| FetchPartition::default().with_partition(p))
            .collect();
        FetchRequest::default()
            .with_session_id(id)
            .with_session_epoch(epoch)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic())
                .with_partitions(parts)])
    }

    /// The answer to `req`: records for the partitions in `with_records`, every high
    /// watermark 1.
    fn answer(req: &FetchRequest, with_records: &[i32]) -> FetchResponse {
        let topics = req.topics.iter().map(|t| {
            let parts = t.partitions.iter().map(|p| {
                let records = if with_records.contains(&p.partition) {
                    Bytes::from_static(b"batch")
                } else {
                    Bytes::new()
                };
                PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_high_watermark(1)
                    .with_records(Some(records))
            });
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(parts.collect())
        });
        FetchResponse::default().with_responses(topics.collect())
    }

    fn order(req: &FetchRequest) -> Vec<i32> {
        req.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.partition))
            .collect()
    }

    #[test]
    fn partitions_that_returned_records_are_read_last_next_time() {
        let slot = FetchSessionSlot::default();
        let mut full = request(0, INITIAL_EPOCH, &[0, 1, 2]);
        let plan = slot.begin(&mut full).expect("a full fetch");
        let id = slot.finish(plan, answer(&full, &[0, 1, 2])).session_id;
        assert_ne!(id, NO_SESSION);

        let mut next = request(id, 1, &[]);
        let plan = slot.begin(&mut next).expect("the session's next epoch");
        assert_eq!(order(&next), [0, 1, 2]);
        let answered = slot.finish(plan, answer(&next, &[0]));
        assert_eq!(order_of(&answered), [0], "only the partition with records");

        let mut after = request(id, 2, &[]);
        slot.begin(&mut after).expect("the session's next epoch");
        assert_eq!(order(&after), [1, 2, 0]);
    }

    #[test]
    fn a_full_fetch_beyond_the_session_limit_is_served_without_one() {
        let slot = FetchSessionSlot::default();
        let many: Vec<i32> = (0..).take(FETCH_SESSION_PARTITIONS_MAX + 1).collect();
        let mut full = request(0, INITIAL_EPOCH, &many);
        let plan = slot.begin(&mut full).expect("a full fetch");
        assert_eq!(slot.finish(plan, answer(&full, &[])).session_id, NO_SESSION);
    }

    fn order_of(response: &FetchResponse) -> Vec<i32> {
        let parts = response.responses.iter().flat_map(|t| &t.partitions);
        parts.map(|p| p.partition_index).collect()
    }
}
