//! Idempotent producers: a repeated batch gets its original offsets and is stored once; a
//! sequence gap and a fenced epoch are refused.

mod common;

use futures::executor::block_on;
use spindle_engine::{
    Engine, EngineError, EngineHandle, Offset, ProduceOutcome, TopicConfig, TopicPartition,
};

#[test]
fn duplicate_batch_is_answered_with_its_offsets_and_stored_once() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    block_on(handle.create_topic("idem", 2, TopicConfig::default())).expect("create");
    let (pid, epoch) = block_on(handle.init_producer_id()).expect("producer id");
    let (pid2, _) = block_on(handle.init_producer_id()).expect("producer id");
    assert_ne!(pid, pid2);

    for p in 0..2 {
        let tp = TopicPartition::new("idem", p);
        let first = block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch, 0, 3)))
            .expect("first");
        let second = block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch, 3, 2)))
            .expect("second");
        // The first batch again (a retry after a lost acknowledgement).
        let again = block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch, 0, 3)))
            .expect("duplicate");
        assert_eq!(
            (again.base_offset, again.last_offset),
            (first.base_offset, first.last_offset)
        );
        assert_eq!(
            (second.base_offset, second.last_offset),
            (Offset(3), Offset(4))
        );
        assert_eq!(common::fetch_all(&handle, &tp).len(), 5, "stored once");

        // A gap: sequence 7 when 5 is expected.
        let gap =
            block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch, 7, 1))).unwrap_err();
        assert!(
            matches!(
                gap,
                EngineError::OutOfOrderSequence {
                    expected: 5,
                    got: 7,
                    ..
                }
            ),
            "{gap:?}"
        );
        // A newer epoch must start at 0; after it, the old epoch is fenced.
        let bad_start =
            block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch + 1, 5, 1)))
                .unwrap_err();
        assert!(
            matches!(
                bad_start,
                EngineError::OutOfOrderSequence { expected: 0, .. }
            ),
            "{bad_start:?}"
        );
        block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch + 1, 0, 1)))
            .expect("new epoch");
        let fenced =
            block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch, 5, 1))).unwrap_err();
        assert!(
            matches!(fenced, EngineError::InvalidProducerEpoch { .. }),
            "{fenced:?}"
        );
        assert_eq!(common::fetch_all(&handle, &tp).len(), 6);
    }
    engine.shutdown().expect("shutdown");
}

#[test]
fn oversize_batches_are_refused() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 1);
    let handle = engine.handle();
    let mut config = TopicConfig::default();
    config.set("max.message.bytes", "200").expect("set");
    block_on(handle.create_topic("small", 1, config)).expect("create");
    let tp = TopicPartition::new("small", 0);
    let described = block_on(handle.describe_topic("small")).expect("describe");
    assert_eq!(described.info.config.max_message_bytes, 200);
    let err =
        block_on(handle.produce_records(&tp, common::records(&"x".repeat(100), 5))).unwrap_err();
    assert!(
        matches!(err, EngineError::MessageTooLarge { max: 200, .. }),
        "{err:?}"
    );
    block_on(handle.produce_records(&tp, common::records("ok", 1))).expect("small batch");
    engine.shutdown().expect("shutdown");
}

/// Creates `topic` (one partition of `segment_bytes` segments) in a new engine over `dir`,
/// produces one idempotent batch of 3 records, lets `then` write after it, and restarts the
/// engine with a clean shutdown. Returns the restarted engine, the producer and the original's
/// outcome.
fn produce_then_restart(
    dir: &std::path::Path,
    tp: &TopicPartition,
    segment_bytes: u64,
    then: impl FnOnce(&EngineHandle),
) -> (Engine, (i64, i16), ProduceOutcome) {
    let engine = common::start(dir, 1);
    let handle = engine.handle();
    let mut config = TopicConfig::default();
    config
        .set("segment.bytes", &segment_bytes.to_string())
        .expect("valid");
    block_on(handle.create_topic(&tp.topic, 1, config)).expect("create");
    let (pid, epoch) = block_on(handle.init_producer_id()).expect("producer id");
    let original =
        block_on(handle.produce(tp, common::idempotent_batch(pid, epoch, 0, 3))).expect("original");
    then(&handle);
    engine.shutdown().expect("shutdown");
    (common::start(dir, 1), (pid, epoch), original)
}

/// Sends the original batch of `produce_then_restart` again, as a producer whose acknowledgement
/// was lost does, and checks it is answered with the original's offsets.
fn retry_is_known(
    handle: &EngineHandle,
    tp: &TopicPartition,
    producer: (i64, i16),
    original: &ProduceOutcome,
) {
    let again =
        block_on(handle.produce(tp, common::idempotent_batch(producer.0, producer.1, 0, 3)))
            .expect("duplicate");
    assert_eq!(
        (again.base_offset, again.last_offset),
        (original.base_offset, original.last_offset),
        "answered with the original's offsets"
    );
}

fn high_watermark(handle: &EngineHandle, tp: &TopicPartition) -> Offset {
    let desc = block_on(handle.describe_topic(&tp.topic)).expect("describe");
    desc.partitions[0].high_watermark
}

#[test]
fn a_retry_after_a_restart_is_known_even_when_its_original_is_in_the_segment_before() {
    let dir = common::temp_dir();
    let tp = TopicPartition::new("rolled", 0);
    let (engine, producer, original) = produce_then_restart(dir.path(), &tp, 4096, |handle| {
        // Another producer's batches (about 1.5 KiB each) fill the segment, and the last starts
        // the next one: this producer's batch is no longer in the active segment.
        let (other, other_epoch) = block_on(handle.init_producer_id()).expect("producer id");
        for seq in [0, 100, 200] {
            block_on(handle.produce(&tp, common::idempotent_batch(other, other_epoch, seq, 100)))
                .expect("other");
        }
    });
    let handle = engine.handle();
    retry_is_known(&handle, &tp, producer, &original);
    assert_eq!(high_watermark(&handle, &tp), Offset(303), "stored once");
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_producer_is_known_after_a_restart_however_much_was_written_after_its_last_batch() {
    let dir = common::temp_dir();
    let tp = TopicPartition::new("busy", 0);
    let (engine, (pid, epoch), original) =
        produce_then_restart(dir.path(), &tp, 4 << 20, |handle| {
            // 20 MiB of plain records after it: beyond the last 16 MiB that recovery would read
            // without the snapshot saved at the close.
            let value = "x".repeat(1000);
            for _ in 0..40 {
                block_on(handle.produce_records(&tp, common::records(&value, 500))).expect("other");
            }
        });
    let handle = engine.handle();
    let end = high_watermark(&handle, &tp);
    retry_is_known(&handle, &tp, (pid, epoch), &original);
    let gap = block_on(handle.produce(&tp, common::idempotent_batch(pid, epoch, 9, 1)));
    assert!(
        matches!(
            gap,
            Err(EngineError::OutOfOrderSequence {
                expected: 3,
                got: 9,
                ..
            })
        ),
        "the producer's next sequence is known: {gap:?}"
    );
    assert_eq!(high_watermark(&handle, &tp), end, "nothing stored");
    engine.shutdown().expect("shutdown");
}
