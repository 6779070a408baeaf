//! Topics, configuration, records and producer state survive a clean restart on the same
//! directory.

mod common;

use std::time::Duration;

use futures::executor::block_on;
use spindle_engine::{TopicConfig, TopicPartition};

fn all_values(handle: &spindle_engine::EngineHandle, tp: &TopicPartition) -> Vec<String> {
    common::fetch_all(handle, tp)
        .into_iter()
        .map(|r| r.1)
        .collect()
}

#[test]
fn topics_and_records_survive_restart() {
    let dir = common::temp_dir();
    let (pid, first_offsets) = {
        let engine = common::start(dir.path(), 2);
        let handle = engine.handle();
        let mut config = TopicConfig::default();
        config.set("retention.ms", "-1").expect("set");
        block_on(handle.create_topic("keep", 3, config)).expect("create");
        block_on(handle.create_topic("gone", 1, TopicConfig::default())).expect("create");
        block_on(handle.delete_topic("gone")).expect("delete");
        for p in 0..3 {
            let tp = TopicPartition::new("keep", p);
            block_on(handle.produce_records(&tp, common::records(&format!("p{p}"), 4)))
                .expect("produce");
        }
        let (pid, epoch) = block_on(handle.init_producer_id()).expect("pid");
        let tp = TopicPartition::new("keep", 0);
        let first = block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch, 0, 2)))
            .expect("idempotent");
        engine.shutdown().expect("shutdown");
        (pid, first)
    };

    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    let mut names: Vec<String> = block_on(handle.list_topics())
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["__consumer_offsets".to_owned(), "keep".to_owned()]
    );
    let keep = block_on(handle.describe_topic("keep")).expect("describe");
    assert_eq!(keep.info.config.retention_ms, None);
    for p in 0..3 {
        let tp = TopicPartition::new("keep", p);
        let values = all_values(&handle, &tp);
        let expected_len = if p == 0 { 6 } else { 4 };
        assert_eq!(values.len(), expected_len, "partition {p}: {values:?}");
        assert_eq!(values[0], format!("p{p}-0"));
    }
    // Producer state came back from the log: the retry is still recognised.
    let tp = TopicPartition::new("keep", 0);
    let again = block_on(handle.produce(&tp, common::idempotent_batch(pid, 0, 0, 2)))
        .expect("duplicate after restart");
    assert_eq!(again.base_offset, first_offsets.base_offset);
    assert_eq!(all_values(&handle, &tp).len(), 6);
    // Producer ids are never handed out twice.
    let (next_pid, _) = block_on(handle.init_producer_id()).expect("pid");
    assert!(next_pid > pid, "{next_pid} after {pid}");
    // A deleted topic's name can be used again, starting empty.
    block_on(handle.create_topic("gone", 1, TopicConfig::default())).expect("re-create");
    assert!(all_values(&handle, &TopicPartition::new("gone", 0)).is_empty());
    engine.shutdown().expect("shutdown");
}

#[test]
fn restart_with_more_shards_keeps_data_and_spreads_the_offsets_topic() {
    let dir = common::temp_dir();
    {
        let engine = common::start(dir.path(), 1);
        let handle = engine.handle();
        block_on(handle.create_topic("grow", 2, TopicConfig::default())).expect("create");
        let tp = TopicPartition::new("grow", 1);
        block_on(handle.produce_records(&tp, common::records("g", 3))).expect("produce");
        engine.shutdown().expect("shutdown");
    }
    let engine = common::start(dir.path(), 3);
    let handle = engine.handle();
    // The offsets topic keeps its partition count and spreads over the three shards.
    let offsets = block_on(handle.describe_topic("__consumer_offsets")).expect("describe");
    assert_eq!(
        offsets.partitions.len(),
        spindle_engine::limits::OFFSETS_PARTITIONS_MIN
    );
    let shards: std::collections::BTreeSet<u32> =
        offsets.partitions.iter().map(|p| p.shard.0).collect();
    assert_eq!(shards.into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(
        all_values(&handle, &TopicPartition::new("grow", 1)).len(),
        3
    );
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_deleted_topic_leaves_the_topics_directory_at_once_and_its_data_is_freed() {
    let dir = common::temp_dir();
    let topics = dir.path().join("topics");
    let trash = dir.path().join("trash");
    let topic_dirs = |prefix: &str| {
        std::fs::read_dir(&topics)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_str().unwrap().starts_with(prefix)
            })
            .count()
    };
    let trash_entries = || std::fs::read_dir(&trash).map_or(0, |d| d.count());
    let wait_for_empty_trash = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while trash_entries() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        trash_entries()
    };
    {
        let engine = common::start(dir.path(), 2);
        let handle = engine.handle();
        block_on(handle.create_topic("big", 2, TopicConfig::default())).expect("create");
        for p in 0..2 {
            let tp = TopicPartition::new("big", p);
            block_on(handle.produce_records(&tp, common::records("x", 50))).expect("produce");
        }
        assert_eq!(topic_dirs("big-"), 1);
        block_on(handle.delete_topic("big")).expect("delete");
        assert_eq!(
            topic_dirs("big-"),
            0,
            "the topic's directory is gone at once"
        );
        assert_eq!(
            wait_for_empty_trash(),
            0,
            "its data is freed in the background"
        );
        engine.shutdown().expect("shutdown");
    }
    // What a stop interrupted is freed at the next start.
    std::fs::create_dir_all(trash.join("left-1-0")).unwrap();
    std::fs::write(
        trash.join("left-1-0").join("00000000000000000000.log"),
        vec![7u8; 40 << 20],
    )
    .unwrap();
    let engine = common::start(dir.path(), 2);
    assert_eq!(wait_for_empty_trash(), 0, "the trash is emptied on start");
    engine.shutdown().expect("shutdown");
}
