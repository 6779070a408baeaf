//! [`Engine`]: starts the shards, hands out handles and shuts everything down cleanly.
//!
//! Start-up, on the caller's thread: check placement, io_uring and memlock (see
//! `shard/executor.rs`), load the metadata (creating `__consumer_offsets` at first start and
//! re-placing partitions if the shard count changed), then start the shard threads one by one.
//! Each shard recovers its own partitions and group coordinator; once every shard is ready the
//! services are started, one call of the service callback on each shard.
//!
//! Shutdown runs three phases across all shards (drain, close, exit; see `shard/lifecycle.rs`)
//! and joins the threads. Dropping an [`Engine`] without calling [`Engine::shutdown`] does the
//! same and logs the error it cannot return.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;

use crate::limits::{HANDLE_INBOX_CAPACITY, MESH_CHANNEL_CAPACITY};
use crate::metadata::{io_error, Metadata};
use crate::shard::executor::{self, ShardThread};
use crate::shard::lifecycle::{self, ShardStart};
use crate::shard::state::Routes;
use crate::{EngineError, EngineHandle, Result, Shard, ShardId, TopicConfig};

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
    /// The CPUs pinned shards run on, shard `i` on the `i`-th (Seastar's and Redpanda's
    /// `--cpuset`); `None` is every online CPU. With `shards` 0 there is one shard per CPU of
    /// the set. Only with [`Placement::Pinned`].
    pub cpuset: Option<Vec<usize>>,
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
    /// Memory budget of each shard for its logs' tail caches and its connections' request
    /// buffers (see [`crate::MemoryBudget`]); at least
    /// [`crate::limits::SHARD_MEMORY_BYTES_MIN`].
    pub shard_memory_bytes: usize,
    /// How long the committed offsets of a group without members outlive its last commit
    /// (and the last time it had members) before they are deleted, as Kafka's
    /// `offsets.retention.minutes`; `None` keeps them forever.
    pub offsets_retention: Option<Duration>,
    /// How long the first join into an empty group waits for more members before it
    /// completes (Kafka's `group.initial.rebalance.delay.ms`), at most
    /// [`crate::group::REBALANCE_TIMEOUT_MAX`].
    pub group_initial_rebalance_delay: Duration,
    /// The session timeout and heartbeat interval of consumer-protocol (KIP-848) members
    /// (Kafka's `group.consumer.session.timeout.ms` and `group.consumer.heartbeat.interval.ms`).
    pub group_consumer_timing: crate::group::consumer_group::ConsumerTiming,
    /// Which way a group with members may move between the classic and the consumer protocol
    /// (Kafka's `group.consumer.migration.policy`).
    pub group_consumer_migration_policy: crate::group::consumer_group::MigrationPolicy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            shards: 0,
            placement: Placement::Pinned,
            cpuset: None,
            topic_defaults: TopicConfig::default(),
            auto_create_topics: true,
            default_partitions: 1,
            spin_before_park_us: None,
            shard_memory_bytes: crate::limits::SHARD_MEMORY_BYTES_DEFAULT,
            offsets_retention: Some(crate::limits::OFFSETS_RETENTION_DEFAULT),
            group_initial_rebalance_delay: crate::group::INITIAL_REBALANCE_DELAY_DEFAULT,
            group_consumer_timing: Default::default(),
            group_consumer_migration_policy: Default::default(),
        }
    }
}

/// A running engine: its shard threads and the way to stop them.
pub struct Engine {
    handle: EngineHandle,
    threads: Vec<JoinHandle<()>>,
    /// Held while the engine lives; dropped last, after the shard threads.
    _lock: DataDirLock,
}

/// An exclusive lock on a data directory (`flock` on `DATA/.lock`), so that two processes never
/// open the same logs: the second gets a clear error instead of corrupting them.
struct DataDirLock {
    /// The locked file; closing it (on drop) releases the lock.
    _file: std::fs::File,
}

impl DataDirLock {
    const FILE: &'static str = ".lock";

    fn acquire(data_dir: &std::path::Path) -> Result<DataDirLock> {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsRawFd;
        let path = data_dir.join(Self::FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(format!("opening {}", path.display()), e))?;
        // flock rather than `File::try_lock`, which is newer than the supported Rust version.
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return Err(io_error(format!("locking {}", path.display()), e));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(EngineError::Start(format!(
                "data directory {} is in use by another Spindle process{}",
                data_dir.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                }
            )));
        }
        // The pid is for the message above; the lock itself is what protects.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(DataDirLock { _file: file })
    }
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
        if config.shard_memory_bytes < crate::limits::SHARD_MEMORY_BYTES_MIN {
            return Err(EngineError::Start(format!(
                "shard memory budget {} bytes is below the minimum of {} bytes",
                config.shard_memory_bytes,
                crate::limits::SHARD_MEMORY_BYTES_MIN
            )));
        }
        let placements = executor::placements(&config)?;
        let shards = placements.len();
        executor::probe_io_uring()?;
        let io_memory = executor::io_memory_per_shard(shards)?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| io_error(format!("creating {}", config.data_dir.display()), e))?;
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let mut metadata = Metadata::load(&config.data_dir)?.unwrap_or_default();
        if metadata.fit_to_shards(shards) {
            metadata.version += 1;
            metadata.persist(&config.data_dir)?;
        }
        let routes = Arc::new(RwLock::new(metadata.routes()));
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| flume::bounded(HANDLE_INBOX_CAPACITY))
            .unzip();
        let handle = EngineHandle::new(senders, routes.clone());
        let started = spawn_shards(
            &config, placements, receivers, &metadata, &routes, io_memory,
        )?;
        let mut engine = Engine {
            handle,
            threads: Vec::with_capacity(shards),
            _lock: lock,
        };
        let mut first_error = None;
        for thread in &started {
            if thread.go.send(true).is_err() {
                first_error.get_or_insert(EngineError::Start("a shard thread died".to_owned()));
            }
        }
        for thread in started {
            let ready = thread.ready.recv().unwrap_or_else(|_| {
                Err(EngineError::Start(
                    "a shard thread died while starting".to_owned(),
                ))
            });
            if let Err(e) = ready {
                first_error.get_or_insert(e);
            }
            engine.threads.push(thread.thread);
        }
        if let Some(e) = first_error {
            if let Err(stop) = engine.stop() {
                tracing::warn!(error = %stop, "stopping after a failed start");
            }
            return Err(e);
        }
        engine.start_services(Arc::new(service))?;
        tracing::info!(shards, data_dir = %config.data_dir.display(), "engine started");
        Ok(engine)
    }

    /// A handle usable from any thread.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Stops services, flushes and syncs every log, and joins the shard threads.
    ///
    /// # Errors
    /// The first flush or sync error met (every log is still attempted).
    pub fn shutdown(self) -> Result<()> {
        let mut engine = self;
        engine.stop()
    }
}

/// Starts one thread per shard, in shard order (see `shard/executor.rs`); on failure, ends the
/// threads already started.
fn spawn_shards(
    config: &EngineConfig,
    placements: Vec<glommio::Placement>,
    inboxes: Vec<flume::Receiver<crate::shard::mesh::Job>>,
    metadata: &Metadata,
    routes: &Routes,
    io_memory: usize,
) -> Result<Vec<ShardThread>> {
    let shards = placements.len();
    let mesh = (shards > 1).then(|| MeshBuilder::full(shards, MESH_CHANNEL_CAPACITY));
    let spin = config.spin_before_park_us.map(Duration::from_micros);
    let mut started: Vec<ShardThread> = Vec::with_capacity(shards);
    for (i, (placement, inbox)) in placements.into_iter().zip(inboxes).enumerate() {
        let start = ShardStart {
            id: ShardId(i as u32),
            count: shards,
            config: config.clone(),
            mesh: mesh.clone(),
            inbox,
            metadata: metadata.clone(),
            routes: routes.clone(),
        };
        match executor::spawn(start, placement, io_memory, spin) {
            Ok(thread) => started.push(thread),
            Err(e) => {
                for thread in started {
                    if thread.go.send(false).is_err() || thread.thread.join().is_err() {
                        tracing::warn!("a shard thread ended early");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// One shutdown phase, run on every shard.
type Phase = fn(Shard) -> futures::future::LocalBoxFuture<'static, Result<()>>;

impl Engine {
    fn start_services(&self, service: Arc<dyn Fn(Shard) + Send + Sync>) -> Result<()> {
        let starts = (0..self.handle.shard_count()).map(|i| {
            let service = service.clone();
            self.handle.run_on(
                ShardId(i as u32),
                move |shard| async move { service(shard) },
            )
        });
        for started in futures::executor::block_on(futures::future::join_all(starts)) {
            started?;
        }
        Ok(())
    }

    /// Runs the shutdown phases and joins the threads; a no-op once done.
    fn stop(&mut self) -> Result<()> {
        if self.threads.is_empty() {
            return Ok(());
        }
        let handle = &self.handle;
        let every_shard = |phase: Phase| {
            let jobs =
                (0..handle.shard_count()).map(move |i| handle.run_on(ShardId(i as u32), phase));
            futures::executor::block_on(futures::future::join_all(jobs))
        };
        // A shard that already stopped answers ShuttingDown: nothing left to do there.
        let mut first_error = None;
        let phases: [Phase; 3] = [
            |s| {
                Box::pin(async move {
                    lifecycle::drain(&s).await;
                    Ok(())
                })
            },
            |s| Box::pin(async move { lifecycle::close(&s).await }),
            |s| {
                Box::pin(async move {
                    lifecycle::exit(&s);
                    Ok(())
                })
            },
        ];
        for phase in phases {
            for result in every_shard(phase) {
                match result {
                    Ok(Ok(())) | Err(EngineError::ShuttingDown) => {}
                    Ok(Err(e)) | Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                first_error.get_or_insert(EngineError::Start("a shard thread panicked".to_owned()));
            }
        }
        self.handle.mark_stopped();
        tracing::info!("engine stopped");
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "engine shutdown on drop failed");
        }
    }
}
