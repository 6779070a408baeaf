//! Shared fixtures for the criterion benches: Kafka v2 record batches with correct CRC-32C,
//! scratch directories on the real disk, and running a measurement on a glommio executor.
//!
//! The log is `!Send` and does its I/O through the executor's io_uring, so a measurement runs
//! whole inside one executor: criterion's `iter_custom` hands us an iteration count, the fixture
//! starts an executor on this thread, sets up outside the timed part, times only the loop, and
//! returns the elapsed time.

#![deny(missing_docs)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};

/// One batch of `records` records of `value_bytes` bytes each (uncompressed, valid CRC).
pub fn batch(records: usize, value_bytes: usize) -> Bytes {
    spindle_log::testing::batch(records, value_bytes, 1_700_000_000_000)
}

/// A blob of `batches` such batches back to back (one produce request's worth).
pub fn batches(batches: usize, records: usize, value_bytes: usize) -> Bytes {
    let one = batch(records, value_bytes);
    let mut blob = BytesMut::with_capacity(one.len() * batches);
    for _ in 0..batches {
        blob.extend_from_slice(&one);
    }
    blob.freeze()
}

/// Runs `f` to completion on a fresh glommio executor on this thread.
///
/// # Panics
/// Panics if the executor cannot be created (io_uring unavailable).
pub fn on_executor<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    glommio::LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor")
        .run(f())
}

/// A scratch directory under `$SPINDLE_BENCH_DIR` or /tmp (on the real disk, not tmpfs),
/// removed on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A new, empty directory.
    ///
    /// # Panics
    /// Panics if it cannot be created.
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let root = std::env::var_os("SPINDLE_BENCH_DIR")
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let path = root.join(format!(
            "spindle-bench-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create scratch dir");
        ScratchDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("leaving {}: {e}", self.0.display());
        }
    }
}
