//! `message.timestamp.type=LogAppendTime`: the node stamps each batch with its append time
//! (attribute and max timestamp, CRC sealed again), answers the produce with that time, and
//! looks offsets up by it; `CreateTime` keeps the producer's timestamps, within the window
//! around the clock that `message.timestamp.before.max.ms` and `.after.max.ms` set.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::executor::block_on;
use kafka_protocol::records::RecordBatchDecoder;
use spindle_engine::{EngineError, OffsetSpec, Record, TimestampType, TopicConfig, TopicPartition};

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_millis()).expect("ms fit i64")
}

fn old_records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            timestamp_ms: Some(1_000_000 + i as i64),
            ..Record::default()
        })
        .collect()
}

#[test]
fn log_append_time_replaces_the_producers_timestamps() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 1);
    let handle = engine.handle();
    let mut config = TopicConfig::default();
    config
        .set("message.timestamp.type", "LogAppendTime")
        .expect("valid");
    assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
    block_on(handle.create_topic("stamped", 1, config)).expect("create");
    block_on(handle.create_topic("as-sent", 1, TopicConfig::default())).expect("create");

    let before = now_ms();
    let stamped = TopicPartition::new("stamped", 0);
    let outcome = block_on(handle.produce_records(&stamped, old_records(3))).expect("produce");
    let after = now_ms();
    assert!(
        (before..=after).contains(&outcome.log_append_time_ms),
        "{outcome:?}"
    );

    let fetched =
        block_on(handle.fetch(common::read_request(&stamped, 0, 1 << 20))).expect("fetch");
    let mut buf = fetched.batches[0].clone();
    let set = RecordBatchDecoder::decode_all(&mut buf).expect("the CRC was sealed again");
    for record in &set[0].records {
        assert_eq!(
            record.timestamp_type,
            kafka_protocol::records::TimestampType::LogAppend
        );
    }
    // Consumers read every record's timestamp as the batch's max timestamp (bytes 35..43).
    let batch = &fetched.batches[0];
    let max_timestamp = i64::from_be_bytes(batch[35..43].try_into().expect("8 bytes"));
    assert_eq!(max_timestamp, outcome.log_append_time_ms);
    let found =
        block_on(handle.list_offset(&stamped, OffsetSpec::Timestamp(before))).expect("list");
    assert_eq!(
        found,
        Some((spindle_engine::Offset(0), outcome.log_append_time_ms))
    );

    let plain = TopicPartition::new("as-sent", 0);
    let outcome = block_on(handle.produce_records(&plain, old_records(3))).expect("produce");
    assert_eq!(outcome.log_append_time_ms, -1);
    let fetched = block_on(handle.fetch(common::read_request(&plain, 0, 1 << 20))).expect("fetch");
    let mut buf = fetched.batches[0].clone();
    let set = RecordBatchDecoder::decode_all(&mut buf).expect("decode");
    let times: Vec<i64> = set[0].records.iter().map(|r| r.timestamp).collect();
    assert_eq!(
        times,
        [1_000_000, 1_000_001, 1_000_002],
        "CreateTime keeps the producer's"
    );
    engine.shutdown().expect("shutdown");
}

fn record_at(timestamp_ms: i64) -> Vec<Record> {
    vec![Record {
        value: Some(Bytes::from_static(b"v")),
        timestamp_ms: Some(timestamp_ms),
        ..Record::default()
    }]
}

#[test]
fn create_times_outside_the_topics_window_are_refused() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 1);
    let handle = engine.handle();
    let hour = 3_600_000;
    let mut config = TopicConfig::default();
    config
        .set("message.timestamp.before.max.ms", &hour.to_string())
        .expect("valid");
    block_on(handle.create_topic("window", 1, config.clone())).expect("create");
    let tp = TopicPartition::new("window", 0);
    let produce = |ts| block_on(handle.produce_records(&tp, record_at(ts)));
    let now = now_ms();
    produce(now - hour / 2).expect("half an hour old");
    produce(now + 100 * hour).expect("no limit ahead");
    let refused = produce(now - 2 * hour).unwrap_err();
    assert!(
        matches!(refused, EngineError::InvalidTimestamp { timestamp, .. } if timestamp == now - 2 * hour),
        "{refused:?}"
    );
    // The deprecated difference limits the side left unset: here, ahead.
    config
        .set(
            "message.timestamp.difference.max.ms",
            &(2 * hour).to_string(),
        )
        .expect("valid");
    block_on(handle.alter_topic_config("window", config)).expect("alter");
    assert!(matches!(
        produce(now + 3 * hour),
        Err(EngineError::InvalidTimestamp { .. })
    ));
    produce(now + hour).expect("within the difference");
    assert!(
        produce(now - 90 * 60_000).is_err(),
        "before.max.ms still rules behind"
    );
    let high_watermark = block_on(handle.describe_topic("window"))
        .expect("describe")
        .partitions[0]
        .high_watermark;
    assert_eq!(high_watermark.0, 3, "only the accepted records are stored");
    engine.shutdown().expect("shutdown");
}
