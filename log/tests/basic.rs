//! The log end to end on real files: append, flush, read, reopen, roll, truncate, retention,
//! deleting records.

mod common;

use common::*;
use spindle_log::testing::batch;
use spindle_log::{FsyncPolicy, LogConfig, LogError, Offset};

#[test]
fn append_flush_read_and_reopen() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        assert_eq!(
            (log.start_offset(), log.next_offset()),
            (Offset(0), Offset(0))
        );
        let info = log.append(batch(3, 100, 10)).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (Offset(0), Offset(2)));
        let info = log.append(batch(2, 50, 20)).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (Offset(3), Offset(4)));
        assert_eq!(
            log.high_watermark(),
            Offset(0),
            "nothing written before flush"
        );
        assert!(log.read(Offset(0), 1000).await.unwrap().is_empty());
        assert_eq!(log.flush().await.unwrap(), Offset(5));
        let all = log.read(Offset(0), 1 << 20).await.unwrap();
        assert_eq!(all.len(), 2);
        let all_bytes: usize = all.iter().map(|b| b.len()).sum();
        let stats = log.io_stats();
        assert_eq!(
            (stats.bytes_read_cached, stats.bytes_read_from_disk),
            (all_bytes as u64, 0),
            "a read of what was just written comes from the tail cache"
        );
        assert_eq!(base_of(&all[1]), 3);
        let mid = log.read(Offset(4), 1).await.unwrap();
        assert_eq!((mid.len(), base_of(&mid[0])), (1, 3));
        assert!(matches!(
            log.read(Offset(6), 10).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        log.close().await.unwrap();

        let (log, _) = open(&path, LogConfig::default()).await;
        assert_eq!(log.next_offset(), Offset(5));
        assert_eq!(
            read_all(&log, Offset(0)).await,
            all,
            "disk reads equal cached reads"
        );
        let stats = log.io_stats();
        assert_eq!(
            (stats.bytes_read_cached, stats.bytes_read_from_disk),
            (0, all_bytes as u64),
            "after a reopen the cache is empty and reads come from the segment file"
        );
        let info = log.append(batch(1, 10, 30)).unwrap();
        assert_eq!(info.base_offset, Offset(5));
        log.flush().await.unwrap();
        assert_eq!(read_all(&log, Offset(0)).await.len(), 3);
        log.close().await.unwrap();
    });
}

#[test]
fn an_observer_is_told_each_write_round_as_it_settles() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        let rounds = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = rounds.clone();
        log.observe_rounds(std::rc::Rc::new(move |took| seen.borrow_mut().push(took)));
        for ts in [10, 20, 30] {
            log.append(batch(2, 100, ts)).unwrap();
            log.flush().await.unwrap();
        }
        // Nothing appended: no round.
        log.flush().await.unwrap();
        let rounds = rounds.borrow().clone();
        assert_eq!(rounds.len(), 3, "one per round: {rounds:?}");
        assert_eq!(log.io_stats().writes, 3);
        assert!(rounds.iter().all(|took| !took.is_zero()), "{rounds:?}");
        log.close().await.unwrap();
    });
}

#[test]
fn rolls_by_size_and_reads_across_segments_after_reopen() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 8192,
            index_interval_bytes: 1024,
            fsync: FsyncPolicy::Batch,
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config.clone()).await;
        append_n(&log, 60, 4, 200, 1000);
        log.flush().await.unwrap();
        assert!(log.segment_count() > 3, "{} segments", log.segment_count());
        let before = read_all(&log, Offset(0)).await;
        assert_eq!(before.len(), 60);
        drop(log);

        let (log, _) = open(&path, config).await;
        assert_eq!(log.next_offset(), Offset(240));
        for from in [0u64, 1, 37, 100, 239] {
            let got = log.read(Offset(from), 1).await.unwrap();
            assert_eq!(base_of(&got[0]), from / 4 * 4);
        }
        assert_eq!(read_all(&log, Offset(0)).await, before);
        assert_eq!(
            log.offset_for_timestamp(1030).await.unwrap(),
            Some((Offset(120), 1030))
        );
        assert_eq!(log.offset_for_timestamp(5000).await.unwrap(), None);
        assert_eq!(
            log.offset_for_timestamp(0).await.unwrap(),
            Some((Offset(0), 1000))
        );
    });
}

#[test]
fn truncate_then_append_continues_at_the_cut() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 8192,
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config.clone()).await;
        append_n(&log, 40, 2, 300, 0);
        log.flush().await.unwrap();
        log.truncate(Offset(31)).await.unwrap();
        assert_eq!(
            log.next_offset(),
            Offset(30),
            "the batch holding 31 goes whole"
        );
        assert_eq!(log.high_watermark(), Offset(30));
        assert_eq!(log.append(batch(1, 5, 0)).unwrap().base_offset, Offset(30));
        log.flush().await.unwrap();
        assert_eq!(read_all(&log, Offset(0)).await.len(), 16);
        log.close().await.unwrap();
        let (log, _) = open(&path, config).await;
        assert_eq!(log.next_offset(), Offset(31));
        log.truncate(Offset(0)).await.unwrap();
        assert_eq!(
            (log.start_offset(), log.next_offset()),
            (Offset(0), Offset(0))
        );
        assert_eq!(log.segment_count(), 1);
    });
}

#[test]
fn retention_by_size_and_age_and_roll_by_age() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 4096,
            segment_ms: Some(60_000),
            ..LogConfig::default()
        };
        let (log, clock) = open(&path, config.clone()).await;
        append_n(&log, 30, 2, 400, 0);
        log.flush().await.unwrap();
        let segments = log.segment_count();
        assert!(segments >= 4);
        log.set_config(LogConfig {
            retention_bytes: Some(8192),
            ..config.clone()
        });
        let out = log.enforce_retention().await.unwrap();
        assert!(out.segments_deleted >= 1);
        assert_eq!(
            log.segment_count(),
            segments - out.segments_deleted as usize
        );
        assert!(log.start_offset() > Offset(0));
        assert!(matches!(
            log.read(Offset(0), 10).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // Age: the active segment rolls after segment_ms; all but it go after retention_ms.
        clock.advance(61_000);
        log.set_config(LogConfig {
            retention_ms: Some(1),
            ..config
        });
        let before = log.active_segment_base();
        log.enforce_retention().await.unwrap();
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.start_offset(), log.next_offset());
        assert!(log.active_segment_base() > before);
    });
}

#[test]
fn deleted_records_stay_deleted_and_retention_removes_their_segments() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 4096,
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config.clone()).await;
        append_n(&log, 30, 2, 400, 0);
        log.flush().await.unwrap();
        let segments = log.segment_count();
        assert!(segments >= 4);
        // Offset 25 lies inside a batch (2 records each) of a later segment.
        assert_eq!(
            log.delete_records_before(Some(Offset(25))).await.unwrap(),
            Offset(25)
        );
        assert_eq!(log.start_offset(), Offset(25));
        assert!(matches!(
            log.read(Offset(24), 10).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let from_start = log.read(Offset(25), 10).await.unwrap();
        assert_eq!(
            base_of(&from_start[0]),
            24,
            "the batch holding the start is read whole"
        );
        assert_eq!(
            log.delete_records_before(Some(Offset(10))).await.unwrap(),
            Offset(25),
            "the start never moves back"
        );
        assert!(matches!(
            log.delete_records_before(Some(Offset(61))).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let out = log.enforce_retention().await.unwrap();
        assert!(out.segments_deleted >= 1);
        assert_eq!(
            log.segment_count(),
            segments - out.segments_deleted as usize
        );
        assert_eq!(
            log.start_offset(),
            Offset(25),
            "retention keeps the start inside the segment"
        );
        log.close().await.unwrap();

        let (log, _) = open(&path, config).await;
        assert_eq!(
            log.start_offset(),
            Offset(25),
            "deleted records stay deleted after a restart"
        );
        assert!(matches!(
            log.read(Offset(24), 10).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.delete_records_before(None).await.unwrap(), Offset(60));
        assert!(read_all(&log, Offset(60)).await.is_empty());
    });
}

#[test]
fn offset_for_timestamp_finds_the_record_inside_a_batch_of_every_codec() {
    for codec in spindle_log::batch::codec::ALL {
        let dir = tempdir();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let (log, _) = open(&path, LogConfig::default()).await;
            // Offsets 0..3 at 100, 110, 120; then 3..5 at 50, 60 (timestamps need not grow).
            let b = spindle_log::testing::BatchBuilder::new(100)
                .timestamp_step(10)
                .records(3, 8)
                .compression(codec)
                .build();
            log.append(b).unwrap();
            let b = spindle_log::testing::BatchBuilder::new(50)
                .timestamp_step(10)
                .records(2, 8)
                .compression(codec)
                .build();
            log.append(b).unwrap();
            assert_eq!(
                log.offset_for_timestamp(105).await.unwrap(),
                None,
                "unwritten"
            );
            log.flush().await.unwrap();
            let at = |ts| log.offset_for_timestamp(ts);
            let what = format!("{codec:?}");
            assert_eq!(at(105).await.unwrap(), Some((Offset(1), 110)), "{what}");
            assert_eq!(at(120).await.unwrap(), Some((Offset(2), 120)), "{what}");
            assert_eq!(at(0).await.unwrap(), Some((Offset(0), 100)), "{what}");
            assert_eq!(at(121).await.unwrap(), None, "{what}");
            // The largest timestamp (ListOffsets -3) is a record's, inside its batch.
            assert_eq!(
                log.offset_of_max_timestamp().await.unwrap(),
                Some((Offset(2), 120)),
                "{what}"
            );
        });
    }
}

/// Waits (up to 10 s) for background deletions until `count()` satisfies `done`; the last count.
async fn settle(count: &dyn Fn() -> usize, done: impl Fn(usize) -> bool) -> usize {
    for _ in 0..1000 {
        if done(count()) {
            break;
        }
        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
    }
    count()
}

#[test]
fn retired_segments_are_written_over_by_later_rolls_and_recover_after_a_crash() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 4096,
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config.clone()).await;
        append_n(&log, 40, 2, 400, 0);
        log.flush().await.unwrap();
        assert!(log.segment_count() >= 8);
        log.set_config(LogConfig {
            retention_bytes: Some(8192),
            ..config.clone()
        });
        let out = log.enforce_retention().await.unwrap();
        assert!(out.segments_deleted >= 5, "{out:?}");
        let rolled = log.segment_count() - 1 + out.segments_deleted as usize;
        // With no spare yet, every roll went into a new file.
        let stats = log.io_stats();
        assert_eq!(
            (stats.segments_new, stats.segments_recycled),
            (rolled as u64, 0)
        );
        let retired = || {
            std::fs::read_dir(&path)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_str().unwrap().ends_with(".log.retired")
                })
                .count()
        };
        assert!(rolled > out.segments_deleted as usize);
        assert_eq!(
            retired(),
            out.segments_deleted as usize,
            "the log rolled more segments than retention retired: every file is kept as a spare"
        );
        log.enforce_retention().await.unwrap();
        assert_eq!(
            settle(&retired, |n| n <= 2).await,
            2,
            "with no roll since the last run, two spares are kept, the rest deleted (in the background)"
        );

        // Small batches: the new segments end well before the old bytes of the files they reuse.
        let segments_before = log.segment_count();
        append_n(&log, 60, 1, 100, 100);
        log.flush().await.unwrap();
        let stats = log.io_stats();
        assert!(stats.segments_recycled >= 1);
        assert_eq!(
            stats.segments_new + stats.segments_recycled,
            (rolled + log.segment_count() - segments_before) as u64,
            "every roll counted once, by the file it went into"
        );
        assert!(retired() < 2);
        let before = read_all(&log, log.start_offset()).await;
        let (start, next) = (log.start_offset(), log.next_offset());
        let mut expected = start.0;
        for b in &before {
            assert_eq!(base_of(b), expected, "batches continue each other");
            let h = spindle_log::batch::BatchHeader::parse(b).unwrap();
            expected = h.last_offset() as u64 + 1;
        }
        assert_eq!(expected, next.0);

        // A crash: the log is dropped without closing, so the reused active file keeps its old
        // bytes past the new segment's end. Reopening ends the log exactly where it was.
        drop(log);
        let (log, clock) = open(&path, config.clone()).await;
        assert_eq!((log.start_offset(), log.next_offset()), (start, next));
        assert_eq!(read_all(&log, start).await, before);
        let info = log.append(batch(1, 10, 500)).unwrap();
        assert_eq!(info.base_offset, next);
        log.flush().await.unwrap();

        // Spares that no roll takes go after a minute.
        log.set_config(LogConfig {
            retention_bytes: Some(8192),
            ..config
        });
        append_n(&log, 20, 2, 400, 600);
        log.flush().await.unwrap();
        log.enforce_retention().await.unwrap();
        log.enforce_retention().await.unwrap();
        let spares = settle(&retired, |n| n <= 2).await;
        assert!((1..=2).contains(&spares), "{spares}");
        log.enforce_retention().await.unwrap();
        assert_eq!(retired(), spares, "a fresh spare stays");
        clock.advance(60_000);
        log.enforce_retention().await.unwrap();
        assert_eq!(
            settle(&retired, |n| n == 0).await,
            0,
            "an idle spare is deleted"
        );
        log.close().await.unwrap();
    });
}

/// A batch of one record that is exactly `len` bytes long.
fn batch_of_len(len: usize, ts: i64) -> bytes::Bytes {
    let probe = batch(1, len, ts).len();
    let exact = batch(1, len - (probe - len), ts);
    assert_eq!(exact.len(), len);
    exact
}

#[test]
fn a_reused_file_keeps_no_old_bytes_right_after_a_round_that_ends_on_a_block() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 12_000,
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config.clone()).await;
        // Segments of four 3,000-byte batches: a block boundary falls inside an old batch.
        for i in 0..24 {
            log.append(batch_of_len(3000, i)).unwrap();
        }
        log.flush().await.unwrap();
        log.set_config(LogConfig {
            retention_bytes: Some(12_000),
            ..config.clone()
        });
        log.enforce_retention().await.unwrap();
        // Fill the active segment, then roll into a reused file with one 4,096-byte batch.
        let recycled = log.io_stats().segments_recycled;
        let mut ts = 100;
        while log.io_stats().segments_recycled == recycled {
            log.append(batch_of_len(3000, ts)).unwrap();
            log.flush().await.unwrap();
            ts += 1;
        }
        let active = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .max()
            .unwrap();
        let next = log.next_offset();
        log.append(batch_of_len(4096 - 3000, ts)).unwrap();
        log.flush().await.unwrap();
        let bytes = std::fs::read(&active).unwrap();
        assert!(bytes.len() >= 8192, "{} bytes", bytes.len());
        assert!(
            bytes[4096..8192].iter().all(|&b| b == 0),
            "the block after the data still holds the reused file's old bytes"
        );

        // A crash, and the log ends right after that batch.
        drop(log);
        let (log, _) = open(&path, config).await;
        assert_eq!(log.next_offset(), next.plus(1));
        log.close().await.unwrap();
    });
}

#[test]
fn a_batch_nothing_else_refers_to_is_patched_in_place_and_one_still_shared_is_copied() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        log.append(batch(2, 10, 10)).unwrap();
        let unique = batch(3, 10, 20);
        let unique_at = unique.as_ptr();
        log.append(unique).unwrap();
        let shared = batch(4, 10, 30);
        let kept = shared.clone();
        log.append(shared).unwrap();
        log.flush().await.unwrap();
        let read = log.read(Offset(0), 1 << 20).await.unwrap();
        let bases: Vec<u64> = read.iter().map(|b| base_of(b)).collect();
        assert_eq!(bases, vec![0, 2, 5]);
        // The unique batch is served from the very memory it came in, patched there.
        assert_eq!(read[1].as_ptr(), unique_at);
        // The shared one was copied: the caller's bytes are untouched.
        assert_ne!(read[2].as_ptr(), kept.as_ptr());
        assert_eq!(base_of(&kept), 0);
        log.close().await.unwrap();
        // What reached the file is the patched bytes either way.
        let (log, _) = open(&path, LogConfig::default()).await;
        assert_eq!(read_all(&log, Offset(0)).await, read);
        log.close().await.unwrap();
    });
}

#[test]
fn recovery_hands_over_the_producer_batches_of_the_last_16_mib_across_rolls() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            segment_bytes: 8 << 20,
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config.clone()).await;
        // 384 idempotent batches of about 64 KiB (24 MiB, over several segments), then a roll
        // and one small batch.
        let mut seq = 0;
        for _ in 0..384 {
            let b = spindle_log::testing::BatchBuilder::new(1_000)
                .producer(7, 0, seq)
                .records(64, 1000)
                .build();
            log.append(b).unwrap();
            seq += 64;
        }
        log.flush().await.unwrap();
        log.roll().await.unwrap();
        let last = spindle_log::testing::BatchBuilder::new(1_000)
            .producer(8, 0, 0)
            .records(1, 10)
            .build();
        log.append(last).unwrap();
        log.close().await.unwrap();

        let (log, _) = open(&path, config).await;
        let recovered = log.take_recovered_producers();
        assert!(recovered.snapshot.is_none(), "none was saved");
        let headers = recovered.batches;
        let seen: Vec<(i64, i32)> = headers
            .iter()
            .map(|h| (h.header.producer_id(), h.header.base_sequence()))
            .collect();
        let (last, earlier) = seen.split_last().unwrap();
        assert_eq!(*last, (8, 0), "the active segment's batch comes last");
        assert!(earlier.iter().all(|&(id, _)| id == 7));
        // The ends of the segments before: about 16 MiB of them, in order, up to the last batch.
        let seqs: Vec<i32> = earlier.iter().map(|&(_, s)| s).collect();
        assert!(
            (250..=266).contains(&seqs.len()),
            "{} batches of the 384",
            seqs.len()
        );
        assert_eq!(*seqs.last().unwrap(), 383 * 64);
        assert!(
            log.segment_count() >= 4,
            "the window spans several segments"
        );
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 64), "in log order");
        assert!(log.take_recovered_producers().batches.is_empty());
    });
}

#[test]
fn index_files_a_roll_leaves_to_a_task_never_outlive_their_segment() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let config = LogConfig {
            retention_bytes: Some(0),
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config.clone()).await;
        // Each roll leaves the sealed segment's index files to a task, and retention right after
        // it retires that very segment (all but the active one go).
        for round in 0..20 {
            append_n(&log, 2, 2, 600, round * 10);
            log.flush().await.unwrap();
            log.roll().await.unwrap();
            let out = log.enforce_retention().await.unwrap();
            assert_eq!(out.segments_deleted, 1, "round {round}");
        }
        // A segment sealed just before the close keeps its indexes.
        log.set_config(LogConfig {
            retention_bytes: None,
            ..config
        });
        append_n(&log, 2, 2, 600, 1000);
        log.flush().await.unwrap();
        log.roll().await.unwrap();
        log.close().await.unwrap();

        let stems = |suffix: &str| -> std::collections::BTreeSet<String> {
            std::fs::read_dir(&path)
                .unwrap()
                .filter_map(|e| {
                    let name = e.unwrap().file_name().into_string().unwrap();
                    name.strip_suffix(suffix).map(str::to_owned)
                })
                .collect()
        };
        let logs = stems(".log");
        assert_eq!(logs.len(), 2, "{logs:?}");
        assert_eq!(stems(".index"), logs, "offset indexes, one per segment");
        assert_eq!(stems(".timeindex"), logs, "time indexes, one per segment");
    });
}
