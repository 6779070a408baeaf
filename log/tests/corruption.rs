//! Damaged files: open succeeds, the log ends before the damage, and reads never return damaged
//! bytes.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::*;
use spindle_log::testing::batch;
use spindle_log::{LogConfig, LogError, Offset};

const BATCHES: usize = 20;
const RECORDS: usize = 2;

fn seg(dir: &Path, base: u64, ext: &str) -> std::path::PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// Writes BATCHES equal batches into one segment, closes; returns one batch's size.
async fn fill(dir: &Path, config: LogConfig) -> usize {
    let (log, _) = open(dir, config).await;
    append_n(&log, BATCHES, RECORDS, 100, 0);
    log.close().await.unwrap();
    batch(RECORDS, 100, 0).len()
}

fn flip(path: &Path, at: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
}

#[test]
fn flipped_byte_in_last_segment_ends_the_log_before_it() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let len = fill(&path, LogConfig::default()).await as u64;
        flip(&seg(&path, 0, "log"), 10 * len + len / 2);
        let (log, _) = open(&path, LogConfig::default()).await;
        assert_eq!(log.next_offset(), Offset(10 * RECORDS as u64));
        let got = read_all(&log, Offset(0)).await;
        assert_eq!(got.len(), 10);
        assert_eq!(
            std::fs::metadata(seg(&path, 0, "log")).unwrap().len(),
            10 * len
        );
        // The log goes on from there, and what follows survives a reopen.
        log.append(batch(1, 10, 0)).unwrap();
        log.close().await.unwrap();
        let (log, _) = open(&path, LogConfig::default()).await;
        assert_eq!(log.next_offset(), Offset(10 * RECORDS as u64 + 1));
    });
}

#[test]
fn segment_cut_mid_batch_ends_the_log_at_the_last_whole_batch() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let len = fill(&path, LogConfig::default()).await as u64;
        for cut in [7 * len + 30, 7 * len + 5, 7 * len] {
            let f = OpenOptions::new()
                .write(true)
                .open(seg(&path, 0, "log"))
                .unwrap();
            f.set_len(cut).unwrap();
            drop(f);
            let (log, _) = open(&path, LogConfig::default()).await;
            assert_eq!(log.next_offset(), Offset(7 * RECORDS as u64));
            assert_eq!(read_all(&log, Offset(0)).await.len(), 7);
            drop(log);
        }
    });
}

#[test]
fn garbage_or_stale_indexes_are_rebuilt_not_trusted() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    let config = LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    };
    run(move || async move {
        let (log, _) = open(&path, config.clone()).await;
        append_n(&log, 60, RECORDS, 100, 0);
        log.close().await.unwrap();
        let (log, _) = open(&path, config.clone()).await;
        let expected = read_all(&log, Offset(0)).await;
        let ts = log.offset_for_timestamp(33).await.unwrap();
        drop(log);
        assert!(seg(&path, 0, "index").exists());
        let valid = std::fs::read(seg(&path, 0, "index")).unwrap();
        // Random garbage, a truncated index, a wrong entry with a valid-looking header, a
        // missing time index, and an index of a different length (stale).
        std::fs::write(seg(&path, 0, "index"), b"this is not an index at all").unwrap();
        std::fs::write(seg(&path, 0, "timeindex"), vec![0xffu8; 100]).unwrap();
        let mut wrong = valid.clone();
        let n = wrong.len();
        wrong[n - 2] ^= 0x11;
        let base1 = {
            let mut bases: Vec<u64> = std::fs::read_dir(&path)
                .unwrap()
                .filter_map(|e| {
                    let n = e.unwrap().file_name().into_string().unwrap();
                    n.strip_suffix(".index").map(|s| s.parse().unwrap())
                })
                .collect();
            bases.sort();
            bases[1]
        };
        std::fs::write(seg(&path, base1, "index"), &wrong).unwrap();
        std::fs::remove_file(seg(&path, base1, "timeindex")).ok();
        let (log, _) = open(&path, config.clone()).await;
        assert_eq!(read_all(&log, Offset(0)).await, expected);
        for from in 0..(60 * RECORDS as u64) {
            let got = log.read(Offset(from), 1).await.unwrap();
            assert_eq!(base_of(&got[0]), from / RECORDS as u64 * RECORDS as u64);
        }
        assert_eq!(log.offset_for_timestamp(33).await.unwrap(), ts);
        drop(log);
        assert_eq!(
            std::fs::read(seg(&path, 0, "index")).unwrap(),
            valid,
            "rebuilt"
        );
    });
}

#[test]
fn damage_in_a_sealed_segment_with_a_bad_index_ends_the_log_there() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    let config = LogConfig {
        segment_bytes: 4096,
        ..LogConfig::default()
    };
    run(move || async move {
        let (log, _) = open(&path, config.clone()).await;
        append_n(&log, 60, RECORDS, 100, 0);
        log.close().await.unwrap();
        let len = batch(RECORDS, 100, 0).len() as u64;
        std::fs::remove_file(seg(&path, 0, "index")).unwrap();
        flip(&seg(&path, 0, "log"), 3 * len + 70);
        let (log, _) = open(&path, config.clone()).await;
        assert_eq!(log.next_offset(), Offset(3 * RECORDS as u64));
        assert_eq!(log.segment_count(), 1);
        assert_eq!(read_all(&log, Offset(0)).await.len(), 3);
    });
}

#[test]
fn damage_appearing_under_a_running_log_is_never_returned() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let len = fill(&path, LogConfig::default()).await as u64;
        let (log, _) = open(&path, LogConfig::default()).await;
        flip(&seg(&path, 0, "log"), 5 * len + 80);
        match log.read(Offset(5 * RECORDS as u64), 1 << 20).await {
            Err(LogError::Corrupt { position, .. }) => assert_eq!(position, 5 * len),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let before = log.read(Offset(0), 1 << 20).await.unwrap();
        assert_eq!(before.len(), 5, "a read stops before the damage");
    });
}

/// A compressed batch (its records are not opened) claiming `i32::MAX` records: a valid header
/// and CRC over a few bytes of payload.
fn batch_claiming_i32_max_records() -> bytes::Bytes {
    let mut b = batch(1, 10, 0).to_vec();
    b[22] |= 1; // attributes: gzip
    b[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes()); // last offset delta
    b[57..61].copy_from_slice(&i32::MAX.to_be_bytes()); // records count
    spindle_log::testing::fix_crc(&mut b);
    b.into()
}

#[test]
fn batches_claiming_billions_of_offsets_roll_the_log_instead_of_breaking_its_index() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    const CLAIMS: u64 = 5;
    let span = i32::MAX as u64; // offsets each batch claims
    run(move || async move {
        let config = LogConfig {
            index_interval_bytes: 1,
            ..LogConfig::default()
        };
        let (log, _) = open(&path, config.clone()).await;
        for i in 0..CLAIMS {
            let appended = log.append(batch_claiming_i32_max_records()).unwrap();
            assert_eq!(appended.base_offset, Offset(i * span));
        }
        log.flush().await.unwrap();
        log.close().await.unwrap();
        // Each segment spans at most 2^32 - 1 offsets: two such batches per segment.
        let segments: Vec<u64> = std::fs::read_dir(&path)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".log").map(|stem| stem.parse().unwrap())
            })
            .collect();
        let mut segments = segments;
        segments.sort_unstable();
        assert_eq!(segments, vec![0, 2 * span, 4 * span]);
        // Reopening recovers all of them, readable from every batch's base.
        let (log, _) = open(&path, config).await;
        assert_eq!(log.high_watermark(), Offset(CLAIMS * span));
        let all = read_all(&log, Offset(0)).await;
        let bases: Vec<u64> = all.iter().map(|b| base_of(b)).collect();
        assert_eq!(bases, (0..CLAIMS).map(|i| i * span).collect::<Vec<_>>());
        for i in 0..CLAIMS {
            let got = log.read(Offset(i * span + 12345), 1).await.unwrap();
            assert_eq!(base_of(&got[0]), i * span);
        }
        log.close().await.unwrap();
    });
}

#[test]
fn a_segment_holding_offsets_beyond_its_span_ends_before_them_and_odd_names_are_ignored() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    let span = i32::MAX as u64;
    // Three claiming batches written back to back in one segment file, as no roll would allow:
    // the third reaches beyond 2^32 - 1 offsets from the segment's base.
    let mut file = Vec::new();
    for i in 0..3u64 {
        let mut b = batch_claiming_i32_max_records().to_vec();
        b[0..8].copy_from_slice(&((i * span) as i64).to_be_bytes());
        file.extend_from_slice(&b);
    }
    std::fs::write(seg(&path, 0, "log"), &file).unwrap();
    // A file named like a segment but past any Kafka offset (u64::MAX).
    std::fs::write(path.join("18446744073709551615.log"), b"not a segment").unwrap();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        assert_eq!(log.high_watermark(), Offset(2 * span));
        let all = read_all(&log, Offset(0)).await;
        assert_eq!(all.len(), 2);
        // The log goes on from there.
        let appended = log.append(batch(1, 10, 0)).unwrap();
        assert_eq!(appended.base_offset, Offset(2 * span));
        log.close().await.unwrap();
    });
}

#[test]
fn an_unreadable_or_outdated_start_offset_file_is_not_trusted() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        fill(&path, LogConfig::default()).await;
        let next = Offset((BATCHES * RECORDS) as u64);
        // Not a number: ignored, the log starts at its first segment.
        std::fs::write(path.join("log-start-offset"), "garbage\n").unwrap();
        let (log, _) = open(&path, LogConfig::default()).await;
        assert_eq!(log.start_offset(), Offset(0));
        assert_eq!(read_all(&log, Offset(0)).await.len(), BATCHES);
        log.close().await.unwrap();
        // Beyond the log end (the log was cut after it was written): the log end.
        std::fs::write(path.join("log-start-offset"), "999999\n").unwrap();
        let (log, _) = open(&path, LogConfig::default()).await;
        assert_eq!((log.start_offset(), log.next_offset()), (next, next));
        log.close().await.unwrap();
    });
}
