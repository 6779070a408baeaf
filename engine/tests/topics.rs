//! Topic administration and configuration: Kafka key names, `-1` for none, refusals that name
//! the key, topic-name rules, and changes applied at run time.

mod common;

use futures::executor::block_on;
use spindle_engine::{CleanupPolicy, EngineError, FsyncPolicy, TopicConfig, TopicPartition};

#[test]
fn config_keys_parse_and_print_in_kafka_form() {
    let mut c = TopicConfig::default();
    for (key, value) in [
        ("segment.bytes", "1048576"),
        ("segment.ms", "60000"),
        ("retention.bytes", "-1"),
        ("retention.ms", "3600000"),
        ("fsync.policy", "interval:50"),
        ("max.message.bytes", "65536"),
        ("cleanup.policy", "delete,compact"),
        ("delete.retention.ms", "0"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("min.compaction.lag.ms", "60000"),
        // Kafka keys kept without effect, as provisioning tools and Kafka Streams set them.
        ("min.insync.replicas", "2"),
        ("compression.type", "zstd"),
        ("message.timestamp.type", "CreateTime"),
        ("unclean.leader.election.enable", "false"),
    ] {
        c.set(key, value)
            .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
    }
    assert_eq!(c.segment_bytes, 1 << 20);
    assert_eq!(c.segment_ms, Some(60_000));
    assert_eq!(c.retention_bytes, None);
    assert_eq!(c.fsync, FsyncPolicy::IntervalMs(50));
    assert_eq!(c.cleanup_policy, CleanupPolicy::CompactAndDelete);
    assert_eq!(
        (c.delete_retention_ms, c.min_cleanable_dirty_ppm),
        (0, 10_000)
    );
    let entries = c.entries();
    let shown = |key: &str| entries.iter().find(|e| e.0 == key).map(|e| e.1.clone());
    assert_eq!(shown("cleanup.policy").as_deref(), Some("compact,delete"));
    assert_eq!(shown("min.cleanable.dirty.ratio").as_deref(), Some("0.01"));
    let keys: Vec<&str> = entries.iter().map(|e| e.0).collect();
    let known: Vec<&str> = TopicConfig::KEYS
        .iter()
        .copied()
        .chain(TopicConfig::kept_keys())
        .collect();
    assert_eq!(keys, known);
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        keys.len(),
        "each key is described once: {keys:?}"
    );
    assert_eq!(shown("min.insync.replicas").as_deref(), Some("2"));
    assert_eq!(
        shown("preallocate").as_deref(),
        Some("false"),
        "a kept key not set shows Kafka's default"
    );
    assert_eq!(c.min_compaction_lag_ms, 60_000);
    assert_eq!(
        c.kept.len(),
        2,
        "a kept key set to its default is not held: {:?}",
        c.kept
    );
    let mut copy = TopicConfig::default();
    for (k, v) in &entries {
        copy.set(k, v).expect("round trip");
    }
    assert_eq!(copy, c);
    c.set("fsync.policy", "batch").expect("batch");
    c.set("segment.ms", "-1").expect("-1");
    assert_eq!((c.fsync, c.segment_ms), (FsyncPolicy::Batch, None));
}

#[test]
fn bad_config_values_are_refused_naming_the_key() {
    let mut c = TopicConfig::default();
    for (key, value, allowed) in [
        ("segment.bytes", "12", "4096"),
        ("retention.ms", "soon", "-1"),
        ("fsync.policy", "always", "interval:MS"),
        ("fsync.policy", "interval:0", "batch"),
        ("max.message.bytes", "0", "from 1"),
        ("cleanup.policy", "shred", "compact,delete"),
        ("cleanup.policy", "", "compact,delete"),
        ("delete.retention.ms", "-1", ">= 0"),
        ("min.cleanable.dirty.ratio", "1.5", "from 0 to 1"),
        ("min.cleanable.dirty.ratio", "NaN", "from 0 to 1"),
        ("min.compaction.lag.ms", "-1", ">= 0"),
        (
            "message.timestamp.type",
            "WallClock",
            "CreateTime or LogAppendTime",
        ),
        ("min.insync.replicas", "0", ">= 1"),
        ("compression.type", "brotli", "zstd"),
        ("preallocate", "yes", "true or false"),
        ("flush.messages", "1", "fsync.policy"),
        ("no.such.key", "1", "segment.bytes"),
    ] {
        let err = c.set(key, value).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, EngineError::InvalidConfig { key: k, .. } if k == key),
            "{err:?}"
        );
        assert!(
            text.contains(key) && text.contains(allowed),
            "{key}={value}: {text}"
        );
    }
    assert_eq!(c, TopicConfig::default(), "a refused value changes nothing");
}

#[test]
fn topic_names_follow_kafka_rules() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 1);
    let handle = engine.handle();
    for bad in ["", ".", "..", "a/b", "sp ace", &"x".repeat(250)] {
        let err = block_on(handle.create_topic(bad, 1, TopicConfig::default())).unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidTopic { .. }),
            "{bad:?}: {err:?}"
        );
    }
    block_on(handle.create_topic("Good.name_1-2", 1, TopicConfig::default())).expect("valid");
    let err =
        block_on(handle.create_topic("Good.name_1-2", 1, TopicConfig::default())).unwrap_err();
    assert!(matches!(err, EngineError::TopicExists(_)), "{err:?}");
    let err = block_on(handle.create_topic("zero", 0, TopicConfig::default())).unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidPartitions { .. }),
        "{err:?}"
    );
    let err = block_on(handle.delete_topic("__consumer_offsets")).unwrap_err();
    assert!(matches!(err, EngineError::InvalidTopic { .. }), "{err:?}");
    engine.shutdown().expect("shutdown");
}

#[test]
fn config_and_partitions_change_at_run_time() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    block_on(handle.create_topic("live", 1, TopicConfig::default())).expect("create");
    let tp = TopicPartition::new("live", 0);
    block_on(handle.produce_records(&tp, common::records(&"v".repeat(200), 2))).expect("produce");

    let mut config = TopicConfig::default();
    config.set("max.message.bytes", "100").expect("set");
    block_on(handle.alter_topic_config("live", config)).expect("alter");
    let err =
        block_on(handle.produce_records(&tp, common::records(&"v".repeat(200), 2))).unwrap_err();
    assert!(
        matches!(err, EngineError::MessageTooLarge { max: 100, .. }),
        "{err:?}"
    );
    let described = block_on(handle.describe_topic("live")).expect("describe");
    assert_eq!(described.info.config.max_message_bytes, 100);

    block_on(handle.create_partitions("live", 3)).expect("grow");
    let err = block_on(handle.create_partitions("live", 2)).unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidPartitions { .. }),
        "{err:?}"
    );
    let described = block_on(handle.describe_topic("live")).expect("describe");
    assert_eq!(described.partitions.len(), 3);
    block_on(handle.produce_records(&TopicPartition::new("live", 2), common::records("n", 1)))
        .expect("produce to a new partition");
    let err =
        block_on(handle.produce_records(&TopicPartition::new("live", 3), common::records("n", 1)))
            .unwrap_err();
    assert!(
        matches!(err, EngineError::UnknownPartition { partition: 3, .. }),
        "{err:?}"
    );
    let err =
        block_on(handle.produce_records(&TopicPartition::new("nope", 0), common::records("n", 1)))
            .unwrap_err();
    assert!(matches!(err, EngineError::UnknownTopic(_)), "{err:?}");
    engine.shutdown().expect("shutdown");
}

#[test]
fn clients_cannot_write_to_or_reconfigure_the_offsets_topic() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    let offsets = spindle_engine::CONSUMER_OFFSETS_TOPIC;
    for partition in 0..2 {
        let tp = TopicPartition::new(offsets, partition);
        let err = block_on(handle.produce_records(&tp, common::records("forged", 1))).unwrap_err();
        assert!(matches!(err, EngineError::InvalidTopic { .. }), "{err:?}");
        let err =
            block_on(handle.produce(&tp, common::idempotent_batch(-1, -1, -1, 1))).unwrap_err();
        assert!(matches!(err, EngineError::InvalidTopic { .. }), "{err:?}");
    }
    let mut config = TopicConfig::default();
    config.set("retention.ms", "0").expect("set");
    let err = block_on(handle.alter_topic_config(offsets, config)).unwrap_err();
    assert!(matches!(err, EngineError::InvalidTopic { .. }), "{err:?}");
    let described = block_on(handle.describe_topic(offsets)).expect("describe");
    assert_eq!(described.info.config.retention_ms, None);
    let stored: u64 = described
        .partitions
        .iter()
        .map(|p| p.high_watermark.0)
        .sum();
    assert_eq!(stored, 0, "nothing was written to the offsets topic");
    engine.shutdown().expect("shutdown");
}
