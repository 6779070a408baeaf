//! Concurrent flushes share writes and syncs (group commit); the fsync policy decides syncs.

mod common;

use std::rc::Rc;

use common::*;
use spindle_log::testing::batch;
use spindle_log::{FsyncPolicy, LogConfig, Offset};

const FLUSHERS: usize = 8;

#[test]
fn concurrent_flushers_share_one_write_and_one_fdatasync() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            fsync: FsyncPolicy::Batch,
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config).await;
        let log = Rc::new(log);
        // Everything appended before any flush starts: all flushers ride on one write + sync.
        for _ in 0..FLUSHERS {
            log.append(batch(4, 100, 0)).unwrap();
        }
        let before = log.io_stats();
        let tasks: Vec<_> = (0..FLUSHERS)
            .map(|_| {
                let log = log.clone();
                glommio::spawn_local(async move { log.flush().await.unwrap() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await, Offset(4 * FLUSHERS as u64));
        }
        let after = log.io_stats();
        assert_eq!(
            after.writes - before.writes,
            1,
            "one write for {FLUSHERS} flushers"
        );
        assert_eq!(
            after.syncs - before.syncs,
            1,
            "one fdatasync for {FLUSHERS} flushers"
        );

        // Producers that each append then flush: the first writes its own batch; everyone who
        // arrives while that write is in flight shares the next one.
        let before = log.io_stats();
        let tasks: Vec<_> = (0..FLUSHERS)
            .map(|_| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    let info = log.append(batch(2, 100, 0)).unwrap();
                    let hw = log.flush().await.unwrap();
                    assert!(hw > info.last_offset, "acknowledged only once written");
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let after = log.io_stats();
        assert!(
            after.syncs - before.syncs <= 2,
            "{:?} -> {:?}",
            before,
            after
        );
        assert!(after.writes - before.writes <= 2);
    });
}

#[test]
fn fsync_never_syncs_only_on_close_and_interval_leaves_it_to_sync() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        append_n(&log, 10, 1, 10, 0);
        log.flush().await.unwrap();
        log.roll().await.unwrap();
        append_n(&log, 10, 1, 10, 0);
        log.flush().await.unwrap();
        assert_eq!(log.io_stats().syncs, 0);
        log.close().await.unwrap();
        assert_eq!(log.io_stats().syncs, 1);

        let config = LogConfig {
            fsync: FsyncPolicy::IntervalMs(100),
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config).await;
        append_n(&log, 10, 1, 10, 0);
        log.flush().await.unwrap();
        assert_eq!(log.io_stats().syncs, 0);
        log.sync().await.unwrap();
        assert_eq!(log.io_stats().syncs, 1);
    });
}

/// Whether this process holds `path` open with `O_DSYNC` (from /proc/self/fdinfo).
fn open_with_dsync(path: &std::path::Path) -> bool {
    let target = std::fs::canonicalize(path).unwrap();
    std::fs::read_dir("/proc/self/fd").unwrap().any(|entry| {
        let entry = entry.unwrap();
        if std::fs::read_link(entry.path()).ok().as_deref() != Some(target.as_path()) {
            return false;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/self/fdinfo/{}",
            entry.file_name().to_str().unwrap()
        ))
        .unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| i64::from_str_radix(f.trim(), 8).ok())
            .is_some_and(|flags| flags & i64::from(libc::O_DSYNC) != 0)
    })
}

#[test]
fn fsync_batch_writes_through_an_o_dsync_handle_and_never_does_not() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        let segment = path.join(format!("{:020}.log", 0));
        log.append(batch(1, 100, 0)).unwrap();
        log.flush().await.unwrap();
        assert!(!open_with_dsync(&segment), "fsync never: plain writes");

        log.set_config(LogConfig {
            fsync: FsyncPolicy::Batch,
            ..LogConfig::default()
        });
        let before = log.io_stats();
        log.append(batch(1, 100, 0)).unwrap();
        log.flush().await.unwrap();
        assert!(open_with_dsync(&segment), "fsync batch: an O_DSYNC handle");
        let after = log.io_stats();
        assert_eq!(
            (after.writes - before.writes, after.syncs - before.syncs),
            (1, 2),
            "the bytes written before batch are synced once, then the round is durable"
        );
        let before = after;
        log.append(batch(1, 100, 0)).unwrap();
        log.flush().await.unwrap();
        let after = log.io_stats();
        assert_eq!(
            (after.writes - before.writes, after.syncs - before.syncs),
            (1, 1),
            "one write round, which is also the sync"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn producers_arriving_at_different_moments_are_acknowledged_in_order() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        let log = Rc::new(log);
        // Producers that append and flush in a loop, arriving at different moments (some while
        // a round is on the device): each must see its own batch acknowledged, in order.
        const ROUNDS: usize = 200;
        let tasks: Vec<_> = (0..FLUSHERS)
            .map(|p| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    for i in 0..ROUNDS {
                        for _ in 0..p % 4 {
                            futures_lite::future::yield_now().await;
                        }
                        let info = log.append(batch(3, 700, (p * ROUNDS + i) as i64)).unwrap();
                        let hw = log.flush().await.unwrap();
                        assert!(hw > info.last_offset, "acknowledged only once written");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let stats = log.io_stats();
        assert!(
            stats.writes < (FLUSHERS * ROUNDS) as u64,
            "flushers that arrive while a round is on its way share the next: {stats:?}"
        );
        let total = (FLUSHERS * ROUNDS * 3) as u64;
        assert_eq!(log.high_watermark(), Offset(total));
        let batches = read_all(&log, Offset(0)).await;
        let bases: Vec<u64> = batches.iter().map(|b| base_of(b)).collect();
        let expected: Vec<u64> = (0..(FLUSHERS * ROUNDS) as u64).map(|i| i * 3).collect();
        assert_eq!(bases, expected, "batches back to back, in offset order");
        log.close().await.unwrap();
        let (reopened, _) = open(&path, LogConfig::default()).await;
        assert_eq!(reopened.next_offset(), Offset(total));
        assert_eq!(read_all(&reopened, Offset(0)).await, batches);
    });
}

#[test]
fn a_flush_dropped_while_its_round_is_on_the_device_loses_nothing() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        log.append(batch(2, 100, 0)).unwrap();
        {
            // Poll the flush until its round has started, then drop it (as when the client
            // that sent the produce hangs up).
            let mut flush = std::pin::pin!(log.flush());
            for _ in 0..3 {
                assert!(futures_lite::future::poll_once(&mut flush).await.is_none());
            }
        }
        log.append(batch(2, 100, 1)).unwrap();
        assert_eq!(log.flush().await.unwrap(), Offset(4));
        let bases: Vec<u64> = read_all(&log, Offset(0))
            .await
            .iter()
            .map(|b| base_of(b))
            .collect();
        assert_eq!(bases, vec![0, 2]);
        log.close().await.unwrap();
        let (reopened, _) = open(&path, LogConfig::default()).await;
        assert_eq!(reopened.next_offset(), Offset(4));
    });
}

#[test]
fn a_deep_queue_is_written_in_rounds_of_bounded_size() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        // Twelve batches of about 1 MiB queue up before one flush: over ROUND_BYTES_MAX (8 MiB),
        // so they go in two rounds, not one copy of all of them at once.
        append_n(&log, 12, 64, 16 << 10, 0);
        let before = log.io_stats();
        assert_eq!(log.flush().await.unwrap(), Offset(12 * 64));
        let after = log.io_stats();
        assert_eq!(after.writes - before.writes, 2, "{after:?}");
        assert_eq!(read_all(&log, Offset(0)).await.len(), 12);
    });
}

/// A durable log whose last round carried `FLUSHERS` batches. They are large (64 KiB each), so
/// that the round takes a few milliseconds and the next round's gathering may wait its longest
/// (`GATHER_WAIT_MAX`), whatever the disk and the build.
async fn after_a_round_of_many(path: &std::path::Path) -> Rc<spindle_log::Log> {
    let config = LogConfig {
        fsync: FsyncPolicy::Batch,
        ..LogConfig::default()
    };
    let (log, _) = open(path, config).await;
    let log = Rc::new(log);
    for _ in 0..FLUSHERS {
        log.append(batch(64, 1000, 0)).unwrap();
    }
    log.flush().await.unwrap();
    log
}

#[test]
fn a_durable_round_waits_for_the_producers_the_last_one_answered() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = after_a_round_of_many(&path).await;
        let before = log.io_stats();
        // The first producer appends and flushes at once; the others are a step behind (one
        // yield), as producers answered by the same round come back one after another.
        let tasks: Vec<_> = (0..FLUSHERS)
            .map(|i| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    if i > 0 {
                        futures_lite::future::yield_now().await;
                    }
                    let info = log.append(batch(1, 100, 0)).unwrap();
                    assert!(log.flush().await.unwrap() > info.last_offset);
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let after = log.io_stats();
        assert_eq!(
            after.writes - before.writes,
            1,
            "the first flusher gathered the others' batches into its round"
        );
    });
}

#[test]
fn a_gathering_flush_that_is_dropped_leaves_the_others_to_write() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let log = after_a_round_of_many(&path).await;
        log.append(batch(1, 100, 0)).unwrap();
        // This flush starts gathering (fewer batches queued than the last round carried) and
        // is dropped while it waits.
        let gathering = {
            let log = log.clone();
            glommio::spawn_local(async move { log.flush().await })
        };
        futures_lite::future::yield_now().await;
        futures_lite::future::yield_now().await;
        gathering.cancel().await;
        let info = log.append(batch(1, 100, 0)).unwrap();
        let hw = futures_lite::future::or(async { log.flush().await.unwrap() }, async {
            glommio::timer::sleep(std::time::Duration::from_secs(10)).await;
            panic!("the flush waits for a gathering flusher that is gone");
        })
        .await;
        assert!(hw > info.last_offset, "both batches written");
        assert_eq!(log.next_offset(), hw);
    });
}
