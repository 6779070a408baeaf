//! A file system with no room for a whole preallocation step (16 MiB) but room for the round:
//! the round is written, the file grown only as far as it needs. The shortage comes from the
//! kernel: a file-size limit (RLIMIT_FSIZE) of 64 KiB makes the step's fallocate fail with
//! EFBIG, as a nearly full disk makes it fail with ENOSPC. The limit is per process, so this
//! test has a binary of its own.

mod common;

use common::*;
use spindle_log::testing::batch;
use spindle_log::{LogConfig, Offset};

#[test]
fn a_round_is_written_where_a_whole_preallocation_step_does_not_fit() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        set_file_size_limit(64 << 10);
        for i in 0..4 {
            log.append(batch(2, 300, i)).unwrap();
            assert_eq!(log.flush().await.unwrap(), Offset(2 * (i as u64 + 1)));
        }
        let batches = read_all(&log, Offset(0)).await;
        assert_eq!(batches.len(), 4);
        set_file_size_limit(libc::RLIM_INFINITY);
        log.close().await.unwrap();
        let (reopened, _) = open(&path, LogConfig::default()).await;
        assert_eq!(read_all(&reopened, Offset(0)).await, batches);
    });
}
