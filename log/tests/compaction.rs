//! Compaction against a model: random keyed appends (tombstones, records without a key, every
//! codec), rolls, passes and reopens; after each pass the log holds exactly what Kafka's cleaner
//! would leave, every record keeps its offset, and batches still follow one another.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bytes::Bytes;
use common::{open, read_all, run, tempdir};
use spindle_log::batch::clean::for_each_record;
use spindle_log::batch::codec::ALL;
use spindle_log::batch::BatchHeader;
use spindle_log::testing::BatchBuilder;
use spindle_log::{Clock, CompactionOutcome, Log, LogConfig, Offset, TxnFate};

/// A record as appended: key and value, `None` for null.
type Rec = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Every record the log holds, by offset, decoded from what reads return.
fn records_of(batches: &[Bytes]) -> BTreeMap<i64, Rec> {
    let mut out = BTreeMap::new();
    let mut next = None;
    for b in batches {
        let h = BatchHeader::parse(b).unwrap();
        if let Some(n) = next {
            assert_eq!(h.base_offset(), n, "batches follow one another");
        }
        next = Some(h.last_offset() + 1);
        let mut count = 0;
        for_each_record(b, |r| {
            assert!(
                (h.base_offset()..=h.last_offset()).contains(&r.offset),
                "a record lies in its batch's range"
            );
            let value = if r.tombstone { None } else { Some(()) };
            let previous = out.insert(
                r.offset,
                (r.key.map(<[u8]>::to_vec), value.map(|()| vec![])),
            );
            assert!(previous.is_none(), "offset {} appears twice", r.offset);
            count += 1;
        })
        .unwrap();
        assert_eq!(
            count,
            h.records_count(),
            "records count matches the records"
        );
    }
    out
}

/// A tiny deterministic generator, so that a failure names a seed that reproduces it.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// Appends one batch of 1 to 6 records with keys from a small set (a few without a key, a few
/// tombstones), timestamped `ts`; returns them by offset.
fn append_random(log: &Log, rng: &mut Lcg, ts: i64) -> Vec<(i64, Rec)> {
    let n = 1 + rng.below(6) as usize;
    let mut recs: Vec<Rec> = Vec::new();
    let mut builder = BatchBuilder::new(ts);
    for _ in 0..n {
        let key = match rng.below(12) {
            0 => None,
            k => Some(format!("key-{k}").into_bytes()),
        };
        let value = if key.is_some() && rng.below(8) == 0 {
            None
        } else {
            Some(vec![b'v'; 10 + rng.below(80) as usize])
        };
        builder = builder.keyed(key.as_deref(), value.as_deref());
        recs.push((key, value));
    }
    let codec = ALL[rng.below(ALL.len() as u64) as usize];
    let info = log
        .append(builder.compression(codec).build())
        .expect("append");
    recs.into_iter()
        .enumerate()
        .map(|(i, r)| (info.base_offset.to_kafka() + i as i64, r))
        .collect()
}

/// What the log must hold after a pass that mapped every sealed segment, given every record
/// appended (`model`), where the active segment starts, and whether old tombstones went.
fn expected_after_full_pass(
    model: &BTreeMap<i64, Rec>,
    before: &BTreeMap<i64, Rec>,
    active_base: i64,
    tombstones_expired: bool,
) -> BTreeMap<i64, (Option<Vec<u8>>, bool)> {
    let mut latest_sealed: HashMap<&[u8], i64> = HashMap::new();
    for (&o, (k, _)) in model.range(..active_base) {
        if let Some(k) = k {
            latest_sealed.insert(k, o);
        }
    }
    before
        .iter()
        .filter(|(&o, (k, v))| {
            if o >= active_base {
                return true;
            }
            let Some(k) = k else { return true };
            latest_sealed[k.as_slice()] == o && !(v.is_none() && tombstones_expired)
        })
        .map(|(&o, (k, v))| (o, (k.clone(), v.is_none())))
        .collect()
}

fn shape(held: &BTreeMap<i64, Rec>) -> BTreeMap<i64, (Option<Vec<u8>>, bool)> {
    held.iter()
        .map(|(&o, (k, v))| (o, (k.clone(), v.is_none())))
        .collect()
}

/// Appends `n` one-record batches of 60-byte values, keys `k0 .. k{keys-1}` in turn, at `ts`.
fn append_cycling_keys(log: &Log, n: usize, keys: usize, ts: i64) {
    for i in 0..n {
        let key = format!("k{}", i % keys);
        let batch = BatchBuilder::new(ts)
            .keyed(Some(key.as_bytes()), Some(&[b'v'; 60]))
            .build();
        log.append(batch).unwrap();
    }
}

async fn check_seed(dir: &Path, seed: u64) {
    let mut rng = Lcg(seed);
    let (mut log, mut clock) = open(dir, config()).await;
    let mut model: BTreeMap<i64, Rec> = BTreeMap::new();
    for step in 0..12 {
        for _ in 0..(20 + rng.below(60)) {
            let ts = clock.now_ms();
            model.extend(append_random(&log, &mut rng, ts));
            if rng.below(25) == 0 {
                log.roll().await.unwrap();
            }
        }
        log.flush().await.unwrap();
        let (start, hw) = (log.start_offset(), log.high_watermark());
        let before = records_of(&read_all(&log, start).await);
        if rng.below(3) == 0 {
            // A reopen remembers what was cleaned; without its checkpoint file, the next pass
            // maps every sealed segment.
            let now = clock.now_ms();
            let dirty = log.cleanable().dirty_bytes;
            log.close().await.unwrap();
            let forget = rng.below(2) == 0;
            if forget {
                let _ = std::fs::remove_file(dir.join("cleaner-offset"));
            }
            (log, clock) = open(dir, config()).await;
            if !forget {
                assert_eq!(
                    log.cleanable().dirty_bytes,
                    dirty,
                    "seed {seed}: the checkpoint holds"
                );
            }
            clock.advance(now - clock.now_ms());
        }
        let expire = rng.below(2) == 0;
        let delete_retention_ms = if expire { 0 } else { u64::MAX / 2 };
        clock.advance(1);
        let full = log.cleanable().dirty_bytes == log.cleanable().sealed_bytes;
        let outcome = log.compact(delete_retention_ms, 0).await.unwrap();
        assert_eq!(
            (log.start_offset(), log.high_watermark()),
            (start, hw),
            "seed {seed} step {step}"
        );
        let after = records_of(&read_all(&log, start).await);
        // Whatever stays is what was appended there.
        for (o, rec) in &after {
            let m = &model[o];
            assert_eq!(
                (&m.0, m.1.is_none()),
                (&rec.0, rec.1.is_none()),
                "seed {seed} offset {o}"
            );
        }
        let removed = before.len() - after.len();
        assert_eq!(
            removed as u64, outcome.records_removed,
            "seed {seed} step {step}"
        );
        if full {
            let active_base = log.active_segment_base().to_kafka();
            let want = expected_after_full_pass(&model, &before, active_base, expire);
            assert_eq!(shape(&after), want, "seed {seed} step {step}: {outcome:?}");
        }
        // The active segment is never touched.
        let active_base = log.active_segment_base().to_kafka();
        assert_eq!(
            shape(&before).range(active_base..).count(),
            shape(&after).range(active_base..).count()
        );
        clock.advance(10);
    }
    // What the last pass left survives a reopen, indexes and all.
    let start = log.start_offset();
    let held = records_of(&read_all(&log, start).await);
    log.close().await.unwrap();
    let (log, _clock) = open(dir, config()).await;
    assert_eq!(
        records_of(&read_all(&log, start).await),
        held,
        "seed {seed}"
    );
    for (&o, _) in held.iter().step_by(7) {
        let got = log.read(Offset(o as u64), 1).await.unwrap();
        let h = BatchHeader::parse(&got[0]).unwrap();
        assert!(
            h.base_offset() <= o && o <= h.last_offset(),
            "a read starts at the batch holding {o}"
        );
    }
}

#[test]
fn compaction_leaves_what_the_model_says() {
    for seed in 1..=12u64 {
        run(move || async move {
            let dir = tempdir();
            check_seed(dir.path(), seed).await;
        });
    }
}

#[test]
fn a_rewrite_interrupted_by_a_crash_is_deleted_and_the_segment_kept() {
    run(|| async {
        let dir = tempdir();
        let (log, _clock) = open(dir.path(), config()).await;
        append_cycling_keys(&log, 200, 5, 0);
        log.flush().await.unwrap();
        let before = read_all(&log, Offset(0)).await;
        log.close().await.unwrap();
        let segment = dir.path().join(&files_ending_with(dir.path(), ".log")[0]);
        let leftover = format!("{}.cleaning", segment.display());
        std::fs::write(&leftover, b"half a rewrite").unwrap();
        let (log, _clock) = open(dir.path(), config()).await;
        assert!(
            !Path::new(&leftover).exists(),
            "recovery deletes the leftover"
        );
        assert_eq!(read_all(&log, Offset(0)).await, before);
        let outcome = log.compact(0, 0).await.unwrap();
        assert!(outcome.segments_rewritten > 0, "{outcome:?}");
        assert!(outcome.bytes_after < outcome.bytes_before, "{outcome:?}");
        let cleaned = files_ending_with(dir.path(), ".cleaning");
        assert!(
            cleaned.is_empty(),
            "a finished pass leaves no rewrite file: {cleaned:?}"
        );
        // The first segments now hold no record: one read goes on until it finds some.
        let first = log.read(Offset(0), 1 << 20).await.unwrap();
        let counts: Vec<i32> = first
            .iter()
            .map(|b| BatchHeader::parse(b).unwrap().records_count())
            .collect();
        assert_eq!(
            counts[0], 0,
            "offset 0 lies in an emptied batch: {counts:?}"
        );
        assert!(
            counts.iter().any(|&c| c > 0),
            "a read returns records when records follow: {counts:?}"
        );
        // A second pass over clean segments finds nothing dirty, also after a restart.
        assert_eq!(log.cleanable().dirty_bytes, 0);
        assert_eq!(log.compact(0, 0).await.unwrap().segments_mapped, 0);
        log.close().await.unwrap();
        let (log, _clock) = open(dir.path(), config()).await;
        assert_eq!(
            log.cleanable().dirty_bytes,
            0,
            "the checkpoint survives a restart"
        );
        assert!(log.cleanable().sealed_bytes > 0);
    });
}

/// The names of the files in `dir` ending with `suffix`, in order.
fn files_ending_with(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// The names of the segment files in `dir`, in order.
fn segment_files(dir: &Path) -> Vec<String> {
    files_ending_with(dir, ".log")
}

#[test]
fn small_segments_are_merged_and_an_interrupted_merge_is_finished_by_recovery() {
    run(|| async {
        let dir = tempdir();
        let (log, _clock) = open(dir.path(), config()).await;
        // Ten keys over and over: after a pass each 4 KiB segment holds little.
        append_cycling_keys(&log, 400, 10, 0);
        log.flush().await.unwrap();
        let before = segment_files(dir.path());
        assert!(before.len() > 5, "{before:?}");
        let saved: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();

        let outcome = log.compact(0, 0).await.unwrap();
        assert!(outcome.segments_merged > 0, "{outcome:?}");
        let after = segment_files(dir.path());
        assert_eq!(
            after.len(),
            before.len() - outcome.segments_merged as usize,
            "{after:?}"
        );
        assert_eq!(log.segment_count(), after.len());
        let held = records_of(&read_all(&log, Offset(0)).await);
        let latest: BTreeMap<Vec<u8>, i64> = held
            .iter()
            .filter_map(|(&o, (k, _))| k.clone().map(|k| (k, o)))
            .collect();
        assert_eq!(latest.len(), 10, "every key is still there");
        log.close().await.unwrap();

        // A crash after the merged segment took the first one's name, before the others went:
        // their files are back, and so are the merged segment's old index files.
        for (name, bytes) in &saved {
            let merged_away = name.ends_with(".log") && !after.contains(name);
            let index_of_merged_away = [".index", ".timeindex"].iter().any(|ext| {
                name.strip_suffix(ext)
                    .is_some_and(|stem| !after.contains(&format!("{stem}.log")))
            });
            if merged_away || index_of_merged_away {
                std::fs::write(dir.path().join(name), bytes).unwrap();
            }
        }
        assert_eq!(segment_files(dir.path()), before);
        let (log, _clock) = open(dir.path(), config()).await;
        assert_eq!(
            segment_files(dir.path()),
            after,
            "recovery removes the merged segments"
        );
        assert_eq!(records_of(&read_all(&log, Offset(0)).await), held);
        assert_eq!(log.high_watermark(), Offset(400));
    });
}

#[test]
fn records_younger_than_the_minimum_lag_are_left_alone() {
    run(|| async {
        let dir = tempdir();
        let (log, clock) = open(dir.path(), config()).await;
        append_cycling_keys(&log, 200, 5, clock.now_ms());
        log.flush().await.unwrap();
        assert!(log.segment_count() > 2);
        clock.advance(500);
        let outcome = log.compact(0, 1000).await.unwrap();
        assert_eq!(
            outcome,
            CompactionOutcome::default(),
            "every record is younger than 1 s"
        );
        assert_eq!(read_all(&log, Offset(0)).await.len(), 200);
        clock.advance(500);
        let outcome = log.compact(0, 1000).await.unwrap();
        assert!(outcome.records_removed > 0, "{outcome:?}");
    });
}

#[test]
fn an_aborted_transaction_supersedes_nothing_and_goes_and_an_open_one_stays() {
    run(|| async {
        let dir = tempdir();
        let (log, _clock) = open(dir.path(), config()).await;
        let plain = |key: &[u8], value: &[u8]| {
            BatchBuilder::new(1_000)
                .keyed(Some(key), Some(value))
                .build()
        };
        let in_txn = |producer, key: &[u8], value: &[u8]| {
            BatchBuilder::new(1_000)
                .producer(producer, 0, 0)
                .transactional()
                .keyed(Some(key), Some(value))
                .build()
        };
        log.append(plain(b"a", b"committed")).unwrap(); // offset 0
        log.append(in_txn(7, b"a", b"aborted")).unwrap(); // 1, producer 7 aborted
        log.append(plain(b"b", b"older")).unwrap(); // 2
        log.append(in_txn(8, b"b", b"open")).unwrap(); // 3, producer 8 still open
        log.flush().await.unwrap();
        log.roll().await.unwrap();
        log.append(plain(b"c", b"tail")).unwrap(); // 4, the active segment
        log.flush().await.unwrap();
        let fate = |producer: i64, _: Offset| {
            if producer == 7 {
                TxnFate::Aborted
            } else {
                TxnFate::Open
            }
        };
        let outcome = log.compact_transactions(0, 0, &fate).await.unwrap();
        let records = records_of(&read_all(&log, Offset(0)).await);
        // A plain pass would keep 1, 3 and 4: the transactional records would supersede the
        // earlier ones of their keys.
        assert_eq!(
            records.keys().copied().collect::<Vec<_>>(),
            vec![0, 2, 3, 4],
            "the committed `a` and the older `b` stay, the aborted `a` goes"
        );
        assert_eq!(outcome.records_removed, 1);
    });
}

#[test]
fn a_commit_marker_goes_once_its_records_are_gone_and_it_is_past_the_delete_retention() {
    use spindle_log::batch::{encode_marker, TxnMarker};
    run(|| async {
        let dir = tempdir();
        let (log, clock) = open(dir.path(), config()).await;
        let now = clock.now_ms();
        let plain = |key: &[u8]| BatchBuilder::new(now).keyed(Some(key), Some(b"v")).build();
        let in_txn = |producer, key: &[u8]| {
            BatchBuilder::new(now)
                .producer(producer, 0, 0)
                .transactional()
                .keyed(Some(key), Some(b"v"))
                .build()
        };
        let marker = |producer, kind| encode_marker(producer, 0, kind, 0, now);
        log.append(plain(b"a")).unwrap(); // 0
        log.append(in_txn(7, b"a")).unwrap(); // 1: aborted
        log.append(marker(7, TxnMarker::Abort)).unwrap(); // 2
        log.append(in_txn(9, b"b")).unwrap(); // 3: committed, superseded by 5
        log.append(marker(9, TxnMarker::Commit)).unwrap(); // 4
        log.append(plain(b"b")).unwrap(); // 5
        log.append(in_txn(8, b"c")).unwrap(); // 6: committed, the latest `c`
        log.append(marker(8, TxnMarker::Commit)).unwrap(); // 7
        log.flush().await.unwrap();
        log.roll().await.unwrap();
        log.append(plain(b"d")).unwrap(); // 8, the active segment
        log.flush().await.unwrap();
        let fate = |producer: i64, _: Offset| {
            if producer == 7 {
                TxnFate::Aborted
            } else {
                TxnFate::Committed
            }
        };
        let markers_left = |batches: &[Bytes]| -> Vec<i64> {
            batches
                .iter()
                .map(|b| *BatchHeader::parse(b).unwrap())
                .filter(|h| h.is_control())
                .map(|h| h.base_offset())
                .collect()
        };
        // Within the delete retention every marker stays, even those with no record left.
        log.compact_transactions(60_000, 0, &fate).await.unwrap();
        assert_eq!(markers_left(&read_all(&log, Offset(0)).await), [2, 4, 7]);
        // Past it (at the next pass, which new writes bring), the commit marker of the
        // superseded transaction goes; the one whose record stays stays, and so does the abort
        // marker (read-committed consumers skip an aborted transaction until they read it).
        // Every offset still reads in order.
        clock.advance(120_000);
        log.roll().await.unwrap();
        log.append(plain(b"e")).unwrap(); // 9
        log.flush().await.unwrap();
        log.compact_transactions(60_000, 0, &fate).await.unwrap();
        let batches = read_all(&log, Offset(0)).await;
        assert_eq!(markers_left(&batches), [2, 7]);
        let data: Vec<i64> = batches
            .iter()
            .filter(|b| !BatchHeader::parse(b).unwrap().is_control())
            .flat_map(|b| {
                let mut offsets = Vec::new();
                for_each_record(b, |r| offsets.push(r.offset)).unwrap();
                offsets
            })
            .collect();
        assert_eq!(data, [0, 5, 6, 8, 9]);
        let mut next = 0;
        for b in &batches {
            let h = BatchHeader::parse(b).unwrap();
            assert_eq!(h.base_offset(), next, "batches follow one another");
            next = h.last_offset() + 1;
        }
        assert_eq!(next, 10);
    });
}
