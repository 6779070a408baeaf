//! Append refuses malformed batches with a precise error and leaves the log untouched.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use spindle_log::batch::BatchDefect;
use spindle_log::testing::{batch, fix_crc};
use spindle_log::{Log, LogConfig, LogError, Offset};

/// Appends `bad`, expects `InvalidBatch` with `defect` (checked by `matches`), and checks that
/// the log still holds exactly what it held before.
async fn refused(log: &Log, bad: Bytes, matches: impl Fn(&BatchDefect) -> bool) {
    let (next, hw) = (log.next_offset(), log.high_watermark());
    let before = read_all(log, Offset(0)).await;
    match log.append(bad) {
        Err(LogError::InvalidBatch { reason, .. }) => assert!(matches(&reason), "got {reason}"),
        other => panic!("expected InvalidBatch, got {other:?}"),
    }
    assert_eq!((log.next_offset(), log.high_watermark()), (next, hw));
    log.flush().await.unwrap();
    assert_eq!(log.next_offset(), next, "nothing was queued");
    assert_eq!(read_all(log, Offset(0)).await, before);
}

fn damaged(f: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::from(&batch(3, 50, 7)[..]);
    f(&mut b);
    b.freeze()
}

#[test]
fn each_defect_is_refused_and_the_log_is_untouched() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        log.append(batch(2, 10, 1)).unwrap();
        log.flush().await.unwrap();

        refused(&log, Bytes::new(), |d| *d == BatchDefect::Empty).await;
        // Length field below the header size, and above what is there.
        refused(
            &log,
            damaged(|b| b[8..12].copy_from_slice(&10i32.to_be_bytes())),
            |d| matches!(d, BatchDefect::BadLength { declared: 10 }),
        )
        .await;
        refused(
            &log,
            damaged(|b| b[8..12].copy_from_slice(&100_000i32.to_be_bytes())),
            |d| matches!(d, BatchDefect::Truncated { .. }),
        )
        .await;
        refused(&log, damaged(|b| b[16] = 1), |d| {
            matches!(d, BatchDefect::BadMagic { found: 1 })
        })
        .await;
        refused(
            &log,
            damaged(|b| {
                let last = b.len() - 3;
                b[last] ^= 0x01;
            }),
            |d| matches!(d, BatchDefect::BadCrc { .. }),
        )
        .await;
        // Records count disagreeing with the last offset delta (CRC fixed so only that is wrong).
        refused(
            &log,
            damaged(|b| {
                b[57..61].copy_from_slice(&4i32.to_be_bytes());
                fix_crc(b);
            }),
            |d| matches!(d, BatchDefect::RecordsCount { declared: 4, .. }),
        )
        .await;
        // Count and delta agree with each other but not with the records present.
        refused(
            &log,
            damaged(|b| {
                b[57..61].copy_from_slice(&4i32.to_be_bytes());
                b[23..27].copy_from_slice(&3i32.to_be_bytes());
                fix_crc(b);
            }),
            |d| {
                matches!(
                    d,
                    BatchDefect::RecordsCount {
                        declared: 4,
                        found: 3
                    }
                )
            },
        )
        .await;
        // Truncated input: half a batch, and a header cut short.
        let whole = batch(3, 50, 7);
        refused(&log, whole.slice(..whole.len() / 2), |d| {
            matches!(d, BatchDefect::Truncated { .. })
        })
        .await;
        refused(&log, whole.slice(..11), |d| {
            matches!(d, BatchDefect::Truncated { .. })
        })
        .await;
        // A good batch followed by a bad one: neither is appended.
        let mut two = BytesMut::from(&batch(1, 5, 1)[..]);
        two.extend_from_slice(&damaged(|b| b[16] = 0));
        refused(&log, two.freeze(), |d| {
            matches!(d, BatchDefect::BadMagic { found: 0 })
        })
        .await;
        let position = match log.append({
            let mut two = BytesMut::from(&batch(1, 5, 1)[..]);
            two.extend_from_slice(&whole[..whole.len() - 1]);
            two.freeze()
        }) {
            Err(LogError::InvalidBatch { position, .. }) => position,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            position,
            batch(1, 5, 1).len(),
            "the error names the bad batch's position"
        );

        // And the log still works.
        let info = log.append(whole).unwrap();
        assert_eq!(info.base_offset, Offset(2));
        log.flush().await.unwrap();
    });
}

#[test]
fn several_batches_in_one_append_get_consecutive_offsets() {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = open(&path, LogConfig::default()).await;
        let mut blob = BytesMut::new();
        for n in [1usize, 5, 2] {
            blob.extend_from_slice(&batch(n, 20, 100 + n as i64));
        }
        let info = log.append(blob.freeze()).unwrap();
        assert_eq!(
            (info.base_offset, info.last_offset, info.batches),
            (Offset(0), Offset(7), 3)
        );
        assert_eq!(info.max_timestamp_ms, 105);
        log.flush().await.unwrap();
        let got = read_all(&log, Offset(0)).await;
        let bases: Vec<u64> = got.iter().map(|b| base_of(b)).collect();
        assert_eq!(bases, vec![0, 1, 6]);
    });
}
