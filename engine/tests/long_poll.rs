//! Fetch long-polls: it waits for data, wakes on the append (not on a timer), and answers empty
//! once `max_wait` passes with nothing produced.

mod common;

use std::time::{Duration, Instant};

use futures::executor::block_on;
use spindle_engine::{EngineError, FetchRequest, Offset, TopicConfig, TopicPartition};

fn wait_request(tp: &TopicPartition, offset: u64, max_wait: Duration) -> FetchRequest {
    FetchRequest {
        max_wait,
        min_bytes: 1,
        isolation: Default::default(),
        ..common::read_request(tp, offset, 1 << 20)
    }
}

#[test]
fn fetch_wakes_on_append_and_times_out_empty() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    block_on(handle.create_topic("poll", 2, TopicConfig::default())).expect("create");

    for p in 0..2 {
        let tp = TopicPartition::new("poll", p);
        // A fetch at the end waits; a produce 200 ms later wakes it well before max_wait.
        let fetcher = {
            let handle = handle.clone();
            let tp = tp.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let out = block_on(handle.fetch(wait_request(&tp, 0, Duration::from_secs(5))))
                    .expect("fetch");
                (started.elapsed(), out)
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let produced_at = Instant::now();
        block_on(handle.produce_records(&tp, common::records("wake", 1))).expect("produce");
        let (waited, out) = fetcher.join().expect("fetcher");
        let after_produce = produced_at.elapsed();
        assert_eq!(common::decode(&out.batches), vec![(0, "wake-0".to_owned())]);
        assert!(
            waited < Duration::from_secs(2) && after_produce < Duration::from_millis(900),
            "partition {p}: fetch took {waited:?} ({after_produce:?} after the produce)"
        );

        // Nothing comes: the fetch answers empty after max_wait, not before.
        let started = Instant::now();
        let out = block_on(handle.fetch(wait_request(&tp, 1, Duration::from_millis(300))))
            .expect("fetch");
        let waited = started.elapsed();
        assert!(out.batches.is_empty());
        assert_eq!(out.high_watermark, Offset(1));
        assert!(
            waited >= Duration::from_millis(280) && waited < Duration::from_secs(2),
            "empty fetch waited {waited:?}"
        );
    }
    engine.shutdown().expect("shutdown");
}

#[test]
fn offsets_out_of_range_are_refused() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 1);
    let handle = engine.handle();
    block_on(handle.create_topic("range", 1, TopicConfig::default())).expect("create");
    let tp = TopicPartition::new("range", 0);
    block_on(handle.produce_records(&tp, common::records("r", 2))).expect("produce");
    let err = block_on(handle.fetch(wait_request(&tp, 3, Duration::ZERO))).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::OffsetOutOfRange {
                requested: Offset(3),
                high_watermark: Offset(2),
                ..
            }
        ),
        "{err:?}"
    );
    let latest =
        block_on(handle.list_offset(&tp, spindle_engine::OffsetSpec::Latest)).expect("latest");
    assert_eq!(latest, Some((Offset(2), -1)));
    let earliest =
        block_on(handle.list_offset(&tp, spindle_engine::OffsetSpec::Earliest)).expect("earliest");
    assert_eq!(earliest, Some((Offset(0), -1)));

    // By timestamp: the first record at or after the time asked, with its timestamp. The
    // records above carry the current time; these are a day ahead, one second apart.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        + 86_400_000;
    let mut timed = common::records("t", 3);
    for (i, r) in timed.iter_mut().enumerate() {
        r.timestamp_ms = Some(base + 1_000 * (i as i64 + 1));
    }
    block_on(handle.produce_records(&tp, timed)).expect("produce");
    let at = |ts| block_on(handle.list_offset(&tp, spindle_engine::OffsetSpec::Timestamp(ts)));
    assert_eq!(
        at(base + 1_500).expect("by time"),
        Some((Offset(3), base + 2_000))
    );
    assert_eq!(at(base + 10_000).expect("by time"), None);
    engine.shutdown().expect("shutdown");
}
