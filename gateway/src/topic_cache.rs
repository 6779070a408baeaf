//! Partition counts of topics, remembered for a moment so that a produce needs one message to
//! the engine (the append) rather than two (a metadata lookup, then the append).
//!
//! An entry is trusted for [`crate::limits::TOPIC_CACHE_TTL`]; a miss lists every topic once
//! and refreshes them all. A stale count is harmless: a partition that no longer exists is
//! answered NOT_FOUND by the engine itself. Unknown topics are never cached, so a topic created
//! through Kafka is visible to the next gRPC call.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use spindle_engine::EngineHandle;
use tonic::Status;

use crate::limits::TOPIC_CACHE_TTL;
use crate::status;

/// Topic name to (partition count, when learnt).
#[derive(Debug, Default)]
pub struct TopicCache {
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

impl TopicCache {
    /// The partition count of `topic`.
    ///
    /// # Errors
    /// NOT_FOUND for an unknown topic; the engine's failure otherwise.
    pub async fn partitions(&self, engine: &EngineHandle, topic: &str) -> Result<u32, Status> {
        if let Some(count) = self.cached(topic) {
            return Ok(count);
        }
        let topics = engine.list_topics().await.map_err(status::from_engine)?;
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.clear();
        entries.extend(topics.into_iter().map(|t| (t.name, (t.partitions, now))));
        entries
            .get(topic)
            .map(|(count, _)| *count)
            .ok_or_else(|| Status::not_found(format!("unknown topic {topic:?}")))
    }

    /// Forgets `topic` (after the gateway created or deleted it).
    pub fn forget(&self, topic: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(topic);
    }

    fn cached(&self, topic: &str) -> Option<u32> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, learnt) = entries.get(topic)?;
        (learnt.elapsed() < TOPIC_CACHE_TTL).then_some(*count)
    }
}
