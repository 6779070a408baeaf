//! Compacted topics (`cleanup.policy=compact`): the shards compact their partitions in the
//! background, a fetch from the start then returns the last record of each key with its
//! original offset, retention deletes nothing, and the compacted log survives a restart.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::executor::block_on;
use kafka_protocol::records::RecordBatchDecoder;
use spindle_engine::{EngineHandle, Record, TopicConfig, TopicPartition};

/// `(offset, key, value)` of every record of `tp`, read from offset 0 to the high watermark.
fn read_keyed(handle: &EngineHandle, tp: &TopicPartition) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut at = 0u64;
    loop {
        let got = block_on(handle.fetch(common::read_request(tp, at, 1 << 20))).expect("fetch");
        if got.batches.is_empty() {
            return out;
        }
        for batch in &got.batches {
            let mut buf = batch.clone();
            for set in RecordBatchDecoder::decode_all(&mut buf).expect("decode") {
                for r in set.records {
                    let text = |b: Bytes| String::from_utf8_lossy(&b).into_owned();
                    out.push((
                        r.offset,
                        r.key.map(text).unwrap_or_default(),
                        r.value.map(text),
                    ));
                }
            }
            at = u64::try_from(last_offset(batch) + 1).expect("offset");
        }
    }
}

/// A v2 batch's last offset: its base offset (bytes 0..8) plus its last offset delta (23..27),
/// which a compacted batch keeps when records inside it went.
fn last_offset(batch: &[u8]) -> i64 {
    let base = i64::from_be_bytes(batch[0..8].try_into().expect("8 bytes"));
    let delta = i32::from_be_bytes(batch[23..27].try_into().expect("4 bytes"));
    base + i64::from(delta)
}

fn produce_rounds(handle: &EngineHandle, tp: &TopicPartition, keys: usize, rounds: usize) {
    for round in 0..rounds {
        let records: Vec<Record> = (0..keys)
            .map(|k| Record {
                key: Some(Bytes::from(format!("key-{k}"))),
                value: Some(Bytes::from(format!("round-{round}-{}", "x".repeat(100)))),
                ..Record::default()
            })
            .collect();
        block_on(handle.produce_records(tp, records)).expect("produce");
    }
}

/// Waits (at most 30 s) until a read of `tp` returns fewer than `fewer_than` records.
fn wait_compacted(
    handle: &EngineHandle,
    tp: &TopicPartition,
    fewer_than: usize,
) -> Vec<(i64, String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = read_keyed(handle, tp);
        if got.len() < fewer_than {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted after 30 s: {} records",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn compacted_config() -> TopicConfig {
    let mut config = TopicConfig::default();
    for (k, v) in [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "4096"),
        ("min.cleanable.dirty.ratio", "0.01"),
        // Would delete everything at once if it applied to a compacted topic.
        ("retention.ms", "0"),
    ] {
        config.set(k, v).expect("valid");
    }
    config
}

#[test]
fn shards_compact_their_partitions_and_the_result_survives_a_restart() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    block_on(handle.create_topic("table", 2, compacted_config())).expect("create");
    let (keys, rounds) = (10, 40);
    let mut compacted = BTreeMap::new();
    for p in 0..2 {
        let tp = TopicPartition::new("table", p);
        produce_rounds(&handle, &tp, keys, rounds);
        let got = wait_compacted(&handle, &tp, keys * rounds / 2);
        let mut latest = BTreeMap::new();
        let mut previous = -1;
        for (offset, key, value) in &got {
            assert!(*offset > previous, "offsets increase");
            previous = *offset;
            latest.insert(key.clone(), value.clone());
        }
        for k in 0..keys {
            let want = format!("round-{}-{}", rounds - 1, "x".repeat(100));
            assert_eq!(latest[&format!("key-{k}")].as_deref(), Some(want.as_str()));
        }
        let last = got.last().expect("records");
        assert_eq!(
            last.0,
            (keys * rounds - 1) as i64,
            "the last record keeps its offset"
        );
        let desc = block_on(handle.describe_topic("table")).expect("describe");
        let state = &desc.partitions[p as usize];
        assert_eq!(state.log_start_offset.0, 0, "retention deleted nothing");
        assert_eq!(state.high_watermark.0, (keys * rounds) as u64);
        compacted.insert(p, got);
    }
    drop(handle);
    engine.shutdown().expect("shutdown");

    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    for p in 0..2 {
        let tp = TopicPartition::new("table", p);
        let after = read_keyed(&handle, &tp);
        // A pass after the restart may remove more, never what a key's latest record is.
        let latest = |rs: &[(i64, String, Option<String>)]| {
            rs.iter()
                .map(|(_, k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(latest(&after), latest(&compacted[&p]));
        assert!(after.len() <= compacted[&p].len());
    }
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_topic_altered_to_compact_is_compacted_and_tombstones_expire() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 1);
    let handle = engine.handle();
    let mut config = TopicConfig::default();
    config.set("segment.bytes", "4096").expect("valid");
    block_on(handle.create_topic("users", 1, config.clone())).expect("create");
    let tp = TopicPartition::new("users", 0);
    produce_rounds(&handle, &tp, 8, 20);
    let gone: Vec<Record> = (0..4)
        .map(|k| Record {
            key: Some(Bytes::from(format!("key-{k}"))),
            value: None,
            ..Record::default()
        })
        .collect();
    block_on(handle.produce_records(&tp, gone)).expect("tombstones");
    // Other keys, so that the tombstones end up in a sealed segment.
    for round in 0..30 {
        let records = vec![Record {
            key: Some(Bytes::from(format!("other-{round}"))),
            value: Some(Bytes::from("y".repeat(200))),
            ..Record::default()
        }];
        block_on(handle.produce_records(&tp, records)).expect("produce");
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        read_keyed(&handle, &tp).len(),
        8 * 20 + 4 + 30,
        "a delete topic is not compacted"
    );

    for (k, v) in [
        ("cleanup.policy", "compact"),
        ("min.cleanable.dirty.ratio", "0"),
        ("delete.retention.ms", "0"),
    ] {
        config.set(k, v).expect("valid");
    }
    block_on(handle.alter_topic_config("users", config)).expect("alter");
    let got = wait_compacted(&handle, &tp, 100);
    let keys: Vec<&str> = got.iter().map(|r| r.1.as_str()).collect();
    for k in 0..4 {
        let key = format!("key-{k}");
        assert!(
            !keys.contains(&key.as_str()),
            "{key} was deleted by a tombstone: {keys:?}"
        );
    }
    for k in 4..8 {
        let key = format!("key-{k}");
        assert_eq!(
            keys.iter().filter(|&&x| x == key).count(),
            1,
            "{key}: {keys:?}"
        );
    }
    engine.shutdown().expect("shutdown");
}

#[test]
fn max_compaction_lag_rolls_a_quiet_active_segment_so_its_records_are_compacted() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 1);
    let handle = engine.handle();
    let mut config = TopicConfig::default();
    // Default 1 GiB segments and weekly `segment.ms`: only the lag can end the active segment.
    config.set("cleanup.policy", "compact").expect("valid");
    config.set("max.compaction.lag.ms", "1000").expect("valid");
    block_on(handle.create_topic("quiet", 1, config)).expect("create");
    let tp = TopicPartition::new("quiet", 0);
    let (keys, rounds) = (5, 10);
    produce_rounds(&handle, &tp, keys, rounds);
    // No further append: the roll has to come from the shard's own rounds.
    let got = wait_compacted(&handle, &tp, keys * rounds);
    assert_eq!(got.len(), keys, "one record per key: {got:?}");
    let desc = block_on(handle.describe_topic("quiet")).expect("describe");
    assert_eq!(desc.partitions[0].high_watermark.0, (keys * rounds) as u64);
    engine.shutdown().expect("shutdown");
}
