//! Producer snapshots on real files: which one recovery hands over, with which batches to
//! replay, and when it hands over none.

mod common;

use std::path::Path;

use common::*;
use spindle_log::testing::BatchBuilder;
use spindle_log::{Log, LogConfig, LogError, Offset};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        ..LogConfig::default()
    }
}

/// Appends one idempotent batch of producer `id` (10 records of 1 KiB) and writes it.
async fn produce(log: &Log, id: i64, seq: i32) -> Offset {
    let batch = BatchBuilder::new(1_000)
        .producer(id, 0, seq)
        .records(10, 1_000)
        .build();
    let info = log.append(batch).expect("append");
    log.flush().await.expect("flush");
    info.base_offset
}

fn snapshot_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".producers"))
        .collect();
    names.sort();
    names
}

#[test]
fn recovery_hands_over_the_newest_snapshot_and_the_batches_after_it() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, config()).await;
        for seq in 0..16 {
            produce(&log, 7, seq * 10).await;
        }
        assert!(log.segment_count() >= 3, "the log rolled twice");
        let end = log.high_watermark();
        assert!(matches!(
            log.save_producer_snapshot(end.plus(1), b"ahead").await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        log.save_producer_snapshot(Offset(10), b"older")
            .await
            .expect("save");
        log.save_producer_snapshot(end, b"state")
            .await
            .expect("save");
        let after = [produce(&log, 7, 160).await, produce(&log, 8, 0).await];
        log.close().await.expect("close");

        let (log, _) = open(&path, config()).await;
        let recovered = log.take_recovered_producers();
        let snapshot = recovered.snapshot.expect("a snapshot");
        assert_eq!(
            (snapshot.offset, snapshot.body.as_slice()),
            (end, &b"state"[..])
        );
        let replayed: Vec<(i64, i32, i64)> = recovered
            .batches
            .iter()
            .map(|h| {
                (
                    h.header.producer_id(),
                    h.header.base_sequence(),
                    h.header.base_offset(),
                )
            })
            .collect();
        assert_eq!(
            replayed,
            vec![(7, 160, after[0].0 as i64), (8, 0, after[1].0 as i64)],
            "exactly the batches from the snapshot's offset on"
        );
        assert_eq!(snapshot_files(&path).len(), 2, "the newest two are kept");

        // A damaged newest snapshot is passed over for the one before, at offset 10: the
        // replay then reads every batch after it, across the rolls since.
        let newest = path.join(snapshot_files(&path).pop().expect("a file"));
        let mut bytes = std::fs::read(&newest).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&newest, bytes).expect("write");
        log.close().await.expect("close");
        let (log, _) = open(&path, config()).await;
        let recovered = log.take_recovered_producers();
        let snapshot = recovered.snapshot.expect("the older snapshot");
        assert_eq!(
            (snapshot.offset, snapshot.body.as_slice()),
            (Offset(10), &b"older"[..])
        );
        assert!(
            log.segment_count() >= 3,
            "the replay crosses several segments"
        );
        assert_eq!(
            recovered.batches.len(),
            17,
            "every batch from offset 10 on (the first batch, at 0, is before it)"
        );
        log.close().await.expect("close");
    });
}

#[test]
fn a_snapshot_in_the_segment_before_the_active_one_replays_from_inside_it() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, config()).await;
        produce(&log, 7, 0).await;
        produce(&log, 7, 10).await;
        let at = log.high_watermark();
        log.save_producer_snapshot(at, b"s").await.expect("save");
        // Fill the segment and roll once, as a crash before the next snapshot would leave it.
        let base = log.active_segment_base();
        let mut seq = 20;
        while log.active_segment_base() == base {
            produce(&log, 7, seq).await;
            seq += 10;
        }
        let batches_after = (seq - 20) / 10;
        log.close().await.expect("close");

        let (log, _) = open(&path, config()).await;
        let recovered = log.take_recovered_producers();
        assert_eq!(recovered.snapshot.map(|s| s.offset), Some(at));
        let seqs: Vec<i32> = recovered
            .batches
            .iter()
            .map(|h| h.header.base_sequence())
            .collect();
        assert_eq!(
            seqs,
            (2..2 + batches_after).map(|i| i * 10).collect::<Vec<_>>()
        );

        // Cutting the log below the snapshot removes it.
        log.truncate(Offset(5)).await.expect("truncate");
        assert!(snapshot_files(&path).is_empty());
        log.close().await.expect("close");
    });
}
