//! Random sequences of append, flush, read, roll, retention, truncate, deleting records,
//! timestamp lookups (also of the largest timestamp), compaction and reopen (clean or not)
//! against a simple in-memory model of the log. The records have no key, so compaction keeps
//! every one of them byte for byte: what it may change is the segments (it merges small ones),
//! which every other operation must then find as before.

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use spindle_log::batch::BatchHeader;
use spindle_log::testing::batch;
use spindle_log::{Log, LogConfig, LogError, Offset};

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value: usize,
        ts: i64,
    },
    Flush,
    Read {
        pick: u64,
        max_bytes: usize,
    },
    Roll,
    Retention {
        bytes: u64,
    },
    Truncate {
        pick: u64,
    },
    Reopen {
        clean: bool,
    },
    Timestamp {
        ts: i64,
    },
    DeleteRecords {
        pick: u64,
    },
    MaxTimestamp,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..5, 0usize..700, 0i64..100)
            .prop_map(|(records, value, ts)| Op::Append { records, value, ts }),
        3 => Just(Op::Flush),
        4 => (any::<u64>(), 1usize..4000).prop_map(|(pick, max_bytes)| Op::Read { pick, max_bytes }),
        2 => Just(Op::Roll),
        1 => (0u64..30_000).prop_map(|bytes| Op::Retention { bytes }),
        1 => any::<u64>().prop_map(|pick| Op::Truncate { pick }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (0i64..110).prop_map(|ts| Op::Timestamp { ts }),
        1 => any::<u64>().prop_map(|pick| Op::DeleteRecords { pick }),
        1 => Just(Op::MaxTimestamp),
        2 => Just(Op::Compact),
    ]
}

/// A batch as the model knows it: offsets, timestamp, and the bytes after the fields the log
/// rewrites (base offset and leader epoch).
#[derive(Debug, Clone)]
struct Expected {
    base: u64,
    last: u64,
    ts: i64,
    body: Bytes,
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<Expected>,
    start: u64,
    hw: u64,
    next: u64,
}

impl Model {
    fn cut_at(&mut self, to: u64) {
        let keep = self.batches.partition_point(|b| b.last < to);
        let cut = self.batches.get(keep).map_or(self.next, |b| b.base);
        self.batches.truncate(keep);
        self.next = cut;
        self.hw = self.hw.min(cut);
    }
}

fn check_read(model: &Model, from: u64, max_bytes: usize, got: &[Bytes]) {
    let mut expected = Vec::new();
    let mut total = 0;
    for b in model
        .batches
        .iter()
        .filter(|b| b.last >= from && b.base < model.hw)
    {
        let len = b.body.len() + 16;
        if !expected.is_empty() && total + len > max_bytes {
            break;
        }
        total += len;
        expected.push(b);
    }
    assert!(got.len() <= expected.len(), "read returned too much");
    assert_eq!(got.is_empty(), expected.is_empty(), "read from {from}");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(BatchHeader::parse(g).unwrap().base_offset() as u64, e.base);
        assert_eq!(&g[16..], &e.body[..], "batch {} bytes", e.base);
    }
}

async fn apply(
    log: &mut Log,
    model: &mut Model,
    op: Op,
    config: &LogConfig,
    path: &std::path::Path,
) {
    match op {
        Op::Append { records, value, ts } => {
            let b = batch(records, value, ts);
            let info = log.append(b.clone()).unwrap();
            assert_eq!(info.base_offset, Offset(model.next));
            model.batches.push(Expected {
                base: model.next,
                last: model.next + records as u64 - 1,
                ts,
                body: b.slice(16..),
            });
            model.next += records as u64;
        }
        Op::Flush => {
            assert_eq!(log.flush().await.unwrap(), Offset(model.next));
            model.hw = model.next;
        }
        Op::Read { pick, max_bytes } => {
            let span = model.hw - model.start + 2;
            let from = if pick % 10 == 0 && model.start > 0 {
                model.start - 1
            } else {
                model.start + pick % span
            };
            match log.read(Offset(from), max_bytes).await {
                Ok(got) => {
                    assert!(
                        from >= model.start && from <= model.hw,
                        "read {from} should fail"
                    );
                    check_read(model, from, max_bytes, &got);
                }
                Err(LogError::OffsetOutOfRange { .. }) => {
                    assert!(from < model.start || from > model.hw, "read {from} failed");
                }
                Err(e) => panic!("read {from}: {e}"),
            }
        }
        Op::Roll => log.roll().await.unwrap(),
        Op::Compact => {
            let segments = log.segment_count();
            let outcome = log.compact(0, 0).await.unwrap();
            assert_eq!(outcome.records_removed, 0, "records without a key all stay");
            assert_eq!(
                log.segment_count(),
                segments - outcome.segments_merged as usize
            );
        }
        Op::Retention { bytes } => {
            log.set_config(LogConfig {
                retention_bytes: Some(bytes),
                ..config.clone()
            });
            log.enforce_retention().await.unwrap();
            log.set_config(config.clone());
            let start = log.start_offset().0;
            assert!(start >= model.start && start <= model.hw);
            assert!(
                start == model.start
                    || start == model.hw
                    || model.batches.iter().any(|b| b.base == start)
            );
            model.batches.retain(|b| b.last >= start);
            model.start = start;
        }
        Op::Truncate { pick } => {
            let to = if pick % 8 == 0 {
                model.start.saturating_sub(pick % 3)
            } else {
                model.start + pick % (model.next - model.start + 2)
            };
            log.truncate(Offset(to)).await.unwrap();
            if to >= model.next {
            } else if to <= model.start {
                *model = Model {
                    start: to,
                    hw: to,
                    next: to,
                    ..Model::default()
                };
            } else {
                // The batch holding `to` goes whole; if records were deleted up to within it,
                // nothing remains and the log continues at its base offset.
                let cut = model
                    .batches
                    .iter()
                    .find(|b| b.last >= to)
                    .map_or(model.next, |b| b.base);
                if cut <= model.start && cut < model.hw {
                    *model = Model {
                        start: cut,
                        hw: cut,
                        next: cut,
                        ..Model::default()
                    };
                } else {
                    model.cut_at(to);
                }
            }
        }
        Op::Reopen { clean } => {
            if clean {
                log.close().await.unwrap();
                model.hw = model.next;
            } else {
                let hw = model.hw;
                model.cut_at(hw);
            }
            let (reopened, _) = open(path, config.clone()).await;
            *log = reopened;
        }
        Op::DeleteRecords { pick } => {
            let before = (pick % 6 != 0).then(|| model.start + pick % (model.hw - model.start + 3));
            match log.delete_records_before(before.map(Offset)).await {
                Ok(start) => {
                    let wanted = before.unwrap_or(model.hw);
                    assert!(wanted <= model.hw, "deleting below {wanted} should fail");
                    model.start = model.start.max(wanted);
                    assert_eq!(start, Offset(model.start));
                    let first = model.start;
                    model.batches.retain(|b| b.last >= first);
                }
                Err(LogError::OffsetOutOfRange { .. }) => {
                    assert!(
                        before.is_some_and(|b| b > model.hw),
                        "deleting below {before:?} failed"
                    );
                }
                Err(e) => panic!("deleting below {before:?}: {e}"),
            }
        }
        Op::MaxTimestamp => {
            let readable = || {
                model
                    .batches
                    .iter()
                    .filter(|b| b.base < model.hw && b.last >= model.start)
            };
            let expected = readable().map(|b| b.ts).max().and_then(|max| {
                readable()
                    .find(|b| b.ts == max)
                    .map(|b| (Offset(b.base.max(model.start)), max))
            });
            assert_eq!(log.offset_of_max_timestamp().await.unwrap(), expected);
        }
        Op::Timestamp { ts } => {
            let expected = model
                .batches
                .iter()
                .find(|b| b.base < model.hw && b.ts >= ts)
                .map(|b| (Offset(b.base.max(model.start)), b.ts));
            assert_eq!(
                log.offset_for_timestamp(ts).await.unwrap(),
                expected,
                "ts {ts}"
            );
        }
    }
    assert_eq!(
        (
            log.start_offset().0,
            log.high_watermark().0,
            log.next_offset().0
        ),
        (model.start, model.hw, model.next)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        ops in proptest::collection::vec(op(), 1..60),
        segment_bytes in 4096u64..16384,
        index_interval_bytes in 128u32..2048,
    ) {
        let dir = tempdir();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let config = LogConfig { segment_bytes, index_interval_bytes, ..LogConfig::default() };
            let (mut log, _) = open(&path, config.clone()).await;
            let mut model = Model::default();
            for op in ops {
                apply(&mut log, &mut model, op, &config, &path).await;
            }
            // Whatever happened, a final clean reopen shows exactly the model.
            apply(&mut log, &mut model, Op::Reopen { clean: true }, &config, &path).await;
            let all = read_all(&log, log.start_offset()).await;
            check_read(&model, model.start, usize::MAX, &all);
        });
    }
}
