//! [`Engine`]: starts the shards, hands out handles and shuts everything down cleanly.

use std::path::PathBuf;

use crate::{EngineHandle, Result, Shard, TopicConfig};

/// How shard threads are placed on CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// One shard pinned per CPU (glommio `MaxSpread`); refuses more shards than CPUs.
    #[default]
    Pinned,
    /// Shards float (glommio `Unbound`); allows more shards than CPUs (tests).
    Unbound,
}

/// What the engine is started with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where partitions, metadata and the offsets log live.
    pub data_dir: PathBuf,
    /// Number of shards; 0 means one per available CPU.
    pub shards: usize,
    /// CPU placement of shard threads.
    pub placement: Placement,
    /// Configuration of topics created without one (and the base that overrides apply to).
    pub topic_defaults: TopicConfig,
    /// Whether produce/metadata for an unknown topic creates it (Kafka's
    /// `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partition count of auto-created topics.
    pub default_partitions: u32,
    /// Spin this many µs before parking an idle shard (cheaper cross-shard wake-ups when shards
    /// own their cores); `None` parks at once.
    pub spin_before_park_us: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            shards: 0,
            placement: Placement::Pinned,
            topic_defaults: TopicConfig::default(),
            auto_create_topics: true,
            default_partitions: 1,
            spin_before_park_us: None,
        }
    }
}

/// A running engine: its shard threads and the way to stop them.
pub struct Engine {
    _inner: (),
}

impl Engine {
    /// Starts the shards with no services: recovers every partition, then serves handles.
    ///
    /// # Errors
    /// [`crate::EngineError::Start`] when a shard cannot start (io_uring blocked, memlock too
    /// low), I/O errors recovering metadata or logs.
    pub fn start(config: EngineConfig) -> Result<Engine> {
        Self::start_with_services(config, |_shard| {})
    }

    /// Starts the shards and, on each shard thread once its partitions are recovered, calls
    /// `service` with the shard's context (the Kafka server spawns its listener there). Services
    /// watch [`Shard::stopping`] to finish.
    ///
    /// # Errors
    /// As [`Engine::start`].
    pub fn start_with_services(
        config: EngineConfig,
        service: impl Fn(Shard) + Send + Sync + 'static,
    ) -> Result<Engine> {
        let _ = (config, service);
        todo!()
    }

    /// A handle usable from any thread.
    pub fn handle(&self) -> EngineHandle {
        todo!()
    }

    /// Stops services, flushes and syncs every log, and joins the shard threads.
    ///
    /// # Errors
    /// The first flush or sync error met (every log is still attempted).
    pub fn shutdown(self) -> Result<()> {
        todo!()
    }
}
