//! A write round that fails: nothing is acknowledged, the batches stay queued in order, and the
//! next flush writes them. The failure comes from the kernel: a file-size limit (RLIMIT_FSIZE)
//! below what the round writes makes fallocate and writes fail with EFBIG. The limit is per
//! process, so this test has a binary of its own.

mod common;

use std::rc::Rc;

use common::*;
use spindle_log::testing::batch;
use spindle_log::{LogConfig, LogError, Offset};

const FLUSHERS: usize = 6;

#[test]
fn a_failed_round_acknowledges_nothing_and_the_next_flush_writes_its_batches_in_order() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        let log = Rc::new(log);
        set_file_size_limit(1);
        let tasks: Vec<_> = (0..FLUSHERS)
            .map(|i| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    log.append(batch(2, 300, i as i64)).unwrap();
                    log.flush().await
                })
            })
            .collect();
        for t in tasks {
            let outcome = t.await;
            assert!(
                matches!(outcome, Err(LogError::Io { .. })),
                "a flush over a failed write fails: {outcome:?}"
            );
        }
        assert_eq!(log.high_watermark(), Offset(0), "nothing acknowledged");
        assert_eq!(log.next_offset(), Offset(2 * FLUSHERS as u64));
        assert!(read_all(&log, Offset(0)).await.is_empty());

        set_file_size_limit(libc::RLIM_INFINITY);
        assert_eq!(log.flush().await.unwrap(), Offset(2 * FLUSHERS as u64));
        let batches = read_all(&log, Offset(0)).await;
        let bases: Vec<u64> = batches.iter().map(|b| base_of(b)).collect();
        assert_eq!(
            bases,
            (0..FLUSHERS as u64).map(|i| 2 * i).collect::<Vec<_>>()
        );
        log.close().await.unwrap();
        let (reopened, _) = open(&path, LogConfig::default()).await;
        assert_eq!(read_all(&reopened, Offset(0)).await, batches);
    });
}
