//! Helpers shared by the log's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use spindle_log::testing::{batch, ManualClock};
use spindle_log::{Clock, Log, LogConfig, Offset};

/// Runs `f` on a fresh glommio executor thread and returns its output.
pub fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .expect("spawn executor")
        .join()
        .expect("executor thread")
}

/// A temp dir on the real disk (/tmp is ext4 here, not tmpfs).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("spindle-log-")
        .tempdir_in("/tmp")
        .expect("tempdir")
}

/// Opens with a manual clock at 1_000_000 ms.
pub async fn open(dir: &Path, config: LogConfig) -> (Log, Rc<ManualClock>) {
    let clock = Rc::new(ManualClock::new(1_000_000));
    let log = Log::open(dir, config, clock.clone() as Rc<dyn Clock>)
        .await
        .expect("open");
    (log, clock)
}

/// Appends `n` batches of `records` records of `value` bytes, with timestamps `ts + i`.
pub fn append_n(log: &Log, n: usize, records: usize, value: usize, ts: i64) -> Vec<Offset> {
    (0..n)
        .map(|i| {
            log.append(batch(records, value, ts + i as i64))
                .expect("append")
                .base_offset
        })
        .collect()
}

/// Reads everything from `from` to the high watermark, batch by batch.
pub async fn read_all(log: &Log, from: Offset) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = from;
    while at < log.high_watermark() {
        let got = log.read(at, 1 << 20).await.expect("read");
        assert!(
            !got.is_empty(),
            "a read below the high watermark returns a batch"
        );
        for b in got {
            let h = spindle_log::batch::BatchHeader::parse(&b).unwrap();
            at = Offset(h.last_offset() as u64 + 1);
            out.push(b);
        }
    }
    out
}

/// The base offset of a stored batch.
pub fn base_of(b: &[u8]) -> u64 {
    spindle_log::batch::BatchHeader::parse(b)
        .unwrap()
        .base_offset() as u64
}

/// Limits the size of the files this process may write (RLIMIT_FSIZE) to `bytes`, so that
/// fallocate and writes beyond it fail with EFBIG, as a full disk makes them fail with ENOSPC.
/// The limit is per process: a test that sets it has a test binary of its own.
pub fn set_file_size_limit(bytes: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain libc calls with valid arguments; ignoring SIGXFSZ turns the signal a write
    // past the limit raises into the EFBIG error.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}
