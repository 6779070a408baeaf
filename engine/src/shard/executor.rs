//! Starting the shard threads: checks that turn glommio's start-up failures into clear errors,
//! and one `LocalExecutorBuilder` per thread.
//!
//! - **io_uring blocked** (a container's seccomp profile): glommio panics with a misleading
//!   "kernel too old" message or exits the process (DESIGN trap 5), so the engine first sets up
//!   a throw-away ring itself and reports [`EngineError::Start`] naming the cause.
//! - **Memlock**: glommio refuses to create an executor below 512 KiB of `RLIMIT_MEMLOCK`, and
//!   registers each shard's `io_memory` with three rings, falling back to unregistered buffers
//!   (slower) when the limit is exceeded (trap 6). `io_memory` is therefore sized from the
//!   limit: `limit / (shards × 3)`, between 64 KiB and glommio's default of 10 MiB, and logged.
//! - **Ring depth**: each shard's rings are [`RING_DEPTH`] entries deep, so that the kernel's
//!   table of pending polls (one per idle connection) has its most buckets (see the constant);
//!   where the kernel refuses rings that deep, the shard falls back to glommio's default and
//!   warns.
//! - **Placement**: [`Placement::Pinned`] binds shard `i` to the `i`-th online CPU (or of the
//!   configured CPU set) and refuses more shards than CPUs with a message suggesting
//!   [`Placement::Unbound`] (trap 8), and a CPU set that names a CPU that is not online.
//!
//! Executors are created one after another, in shard order: glommio orders mesh peers by
//! executor id, so this makes a shard's position in the mesh equal its index.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use glommio::LocalExecutorBuilder;

use crate::limits::{
    IO_MEMORY_MAX, IO_MEMORY_MIN, MEMLOCK_MIN, RINGS_PER_SHARD, RING_DEPTH, RING_DEPTH_FALLBACK,
    SHARDS_MAX,
};
use crate::shard::lifecycle::{self, ShardStart};
use crate::{EngineConfig, EngineError, Placement, Result};

/// How many shards to run and where each one's thread goes.
///
/// # Errors
/// [`EngineError::Start`] for too many shards, more pinned shards than CPUs, or a CPU set that
/// is empty, names a CPU twice or one that is not online, or comes with unbound placement.
pub(crate) fn placements(config: &EngineConfig) -> Result<Vec<glommio::Placement>> {
    let online: Vec<usize> = glommio::CpuSet::online()
        .map_err(|e| EngineError::Start(format!("reading the CPU topology: {e}")))?
        .into_iter()
        .map(|location| location.cpu)
        .collect();
    let cpus = match &config.cpuset {
        None => online,
        Some(set) => checked_cpuset(set, &online, config.placement)?,
    };
    let shards = if config.shards == 0 {
        cpus.len().max(1)
    } else {
        config.shards
    };
    if shards > SHARDS_MAX {
        return Err(EngineError::Start(format!(
            "{shards} shards asked for; at most {SHARDS_MAX} are supported"
        )));
    }
    match config.placement {
        Placement::Pinned => {
            if shards > cpus.len() {
                let place = if config.cpuset.is_some() {
                    "in the CPU set"
                } else {
                    "online"
                };
                // Worded for the embedding program and the `spindle` command line alike.
                return Err(EngineError::Start(format!(
                    "{shards} pinned shards asked for but only {n} CPUs are {place}: use at most \
                     {n} shards, or unbound placement (shards not pinned to CPUs)",
                    n = cpus.len()
                )));
            }
            Ok(cpus[..shards]
                .iter()
                .map(|cpu| glommio::Placement::Fixed(*cpu))
                .collect())
        }
        Placement::Unbound => Ok(vec![glommio::Placement::Unbound; shards]),
    }
}

/// `set` as the CPUs to pin shards to, once it is known to be usable.
fn checked_cpuset(set: &[usize], online: &[usize], placement: Placement) -> Result<Vec<usize>> {
    let refuse = |why: String| Err(EngineError::Start(format!("CPU set {set:?}: {why}")));
    if placement != Placement::Pinned {
        return refuse("a CPU set pins shards, so it needs Placement::Pinned".to_owned());
    }
    if set.is_empty() {
        return refuse("names no CPU".to_owned());
    }
    if let Some((i, cpu)) = set.iter().enumerate().find(|(i, c)| set[..*i].contains(c)) {
        return refuse(format!("CPU {cpu} is named twice (position {i})"));
    }
    let offline: Vec<usize> = set
        .iter()
        .copied()
        .filter(|c| !online.contains(c))
        .collect();
    if !offline.is_empty() {
        return refuse(format!(
            "CPUs {offline:?} are not online (online: {online:?})"
        ));
    }
    Ok(set.to_vec())
}

/// Sets up (and closes) an io_uring, so a blocked io_uring is reported clearly instead of by
/// a glommio panic.
///
/// # Errors
/// [`EngineError::Start`] naming the errno and the likely cause.
pub(crate) fn probe_io_uring() -> Result<()> {
    // struct io_uring_params is 120 bytes; all zero asks for a default ring.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes exactly the 120-byte params struct we own, and
    // returns a new file descriptor (closed below) or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            4u32,
            params.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        let hint = match err.raw_os_error() {
            Some(libc::ENOSYS) => "the kernel has no io_uring (Linux 5.8 or newer is needed)",
            Some(libc::EPERM) | Some(libc::EACCES) => {
                "io_uring is forbidden here: a seccomp profile (Docker's default blocks it; run \
                 with --security-opt seccomp=unconfined or a profile allowing io_uring_*) or \
                 the sysctl kernel.io_uring_disabled"
            }
            Some(libc::ENOMEM) => "not enough locked memory for a ring (raise RLIMIT_MEMLOCK)",
            _ => "io_uring is unavailable",
        };
        return Err(EngineError::Start(format!(
            "io_uring_setup failed: {err}: {hint}"
        )));
    }
    // SAFETY: fd is the descriptor io_uring_setup just returned; nothing else uses it.
    if unsafe { libc::close(fd as libc::c_int) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "closing the io_uring probe");
    }
    Ok(())
}

/// The soft `RLIMIT_MEMLOCK` in bytes (`u64::MAX` when unlimited).
///
/// # Errors
/// [`EngineError::Start`] when it cannot be read.
fn memlock_limit() -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct that we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Err(EngineError::Start(format!(
            "getrlimit(RLIMIT_MEMLOCK): {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(if limit.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        limit.rlim_cur
    })
}

/// glommio `io_memory` per shard, sized from `RLIMIT_MEMLOCK` (see the module doc).
///
/// # Errors
/// [`EngineError::Start`] when the limit is below what glommio needs at all.
pub(crate) fn io_memory_per_shard(shards: usize) -> Result<usize> {
    let limit = memlock_limit()?;
    if limit < MEMLOCK_MIN {
        return Err(EngineError::Start(format!(
            "RLIMIT_MEMLOCK is {limit} bytes; glommio needs at least {MEMLOCK_MIN} (raise it with \
             `ulimit -l` or LimitMEMLOCK= in the service unit)"
        )));
    }
    let share = limit / (shards as u64 * RINGS_PER_SHARD as u64);
    let io_memory = usize::try_from(share)
        .unwrap_or(usize::MAX)
        .clamp(IO_MEMORY_MIN, IO_MEMORY_MAX)
        & !4095;
    tracing::info!(
        memlock_bytes = limit,
        shards,
        io_memory_bytes = io_memory,
        "sized glommio io_memory from RLIMIT_MEMLOCK"
    );
    Ok(io_memory)
}

/// Makes an executor with rings `depths[0]` entries deep or, if the kernel refuses those,
/// `depths[1]`; with the refusal of the first when the second was used. The second's error if
/// neither works.
fn make_executor(
    builder: impl Fn(usize) -> LocalExecutorBuilder,
    depths: [usize; 2],
) -> std::result::Result<(glommio::LocalExecutor, Option<String>), glommio::GlommioError<()>> {
    match builder(depths[0]).make() {
        Ok(executor) => Ok((executor, None)),
        Err(refused) => builder(depths[1])
            .make()
            .map(|executor| (executor, Some(refused.to_string()))),
    }
}

/// What a started shard thread gives back.
pub(crate) struct ShardThread {
    pub thread: JoinHandle<()>,
    /// Tells the thread to go on (`true`) or give up (`false`) once every executor exists.
    pub go: mpsc::Sender<bool>,
    /// The shard's start-up result.
    pub ready: mpsc::Receiver<Result<()>>,
}

/// Spawns a shard thread and waits until its executor exists (or failed to).
///
/// # Errors
/// [`EngineError::Start`] when the thread or the executor cannot be created.
pub(crate) fn spawn(
    start: ShardStart,
    placement: glommio::Placement,
    io_memory: usize,
    spin_before_park: Option<Duration>,
) -> Result<ShardThread> {
    let id = start.id;
    let (made_tx, made_rx) = mpsc::channel::<Result<()>>();
    let (go_tx, go_rx) = mpsc::channel::<bool>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
    let thread = std::thread::Builder::new()
        .name(format!("spindle-shard-{id}"))
        .spawn(move || {
            let builder = |ring_depth| {
                let builder = LocalExecutorBuilder::new(placement.clone())
                    .name(&format!("spindle-shard-{id}"))
                    .io_memory(io_memory)
                    .ring_depth(ring_depth);
                match spin_before_park {
                    Some(spin) => builder.spin_before_park(spin),
                    None => builder,
                }
            };
            let executor = match make_executor(builder, [RING_DEPTH, RING_DEPTH_FALLBACK]) {
                Ok((executor, refused)) => {
                    if let Some(error) = refused {
                        tracing::warn!(
                            shard = %id,
                            %error,
                            ring_depth = RING_DEPTH_FALLBACK,
                            "io_uring rings of {RING_DEPTH} entries could not be set up (kernels \
                             before 5.12 count them against RLIMIT_MEMLOCK); with smaller ones, \
                             many idle connections cost the shard CPU"
                        );
                    }
                    executor
                }
                Err(e) => {
                    let err = EngineError::Start(format!("creating shard {id}'s executor: {e}"));
                    if made_tx.send(Err(err)).is_err() {
                        tracing::warn!(shard = %id, "engine stopped waiting for the executor");
                    }
                    return;
                }
            };
            if made_tx.send(Ok(())).is_err() || !go_rx.recv().unwrap_or(false) {
                return;
            }
            executor.run(lifecycle::run(start, ready_tx));
        })
        .map_err(|e| EngineError::Start(format!("spawning shard {id}'s thread: {e}")))?;
    let made = made_rx
        .recv()
        .unwrap_or_else(|_| Err(EngineError::Start(format!("shard {id}'s thread died"))));
    if let Err(e) = made {
        if thread.join().is_err() {
            tracing::error!(shard = %id, "shard thread panicked");
        }
        return Err(e);
    }
    Ok(ShardThread {
        thread,
        go: go_tx,
        ready: ready_rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unbound(ring_depth: usize) -> LocalExecutorBuilder {
        LocalExecutorBuilder::new(glommio::Placement::Unbound).ring_depth(ring_depth)
    }

    /// Runs a task on the executor `make_executor` gives, on a thread of its own; what it ran
    /// and the refusal it reports.
    fn made_with(depths: [usize; 2]) -> std::result::Result<(i32, Option<String>), String> {
        std::thread::spawn(move || {
            make_executor(unbound, depths)
                .map(|(executor, refused)| (executor.run(async { 1 + 1 }), refused))
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the executor's thread panicked".to_owned()))
    }

    #[test]
    fn shards_get_deep_rings() {
        assert_eq!(made_with([RING_DEPTH, RING_DEPTH_FALLBACK]), Ok((2, None)));
    }

    #[test]
    fn a_ring_depth_the_kernel_refuses_falls_back_to_the_next() {
        // io_uring_setup refuses more than 32768 entries (IORING_MAX_ENTRIES) with EINVAL.
        let (ran, refused) = made_with([1 << 20, RING_DEPTH_FALLBACK]).expect("the fallback works");
        assert_eq!(ran, 2);
        let refused = refused.expect("the refusal is reported");
        assert!(refused.contains("Invalid argument"), "{refused}");
    }
}
