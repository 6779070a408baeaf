//! Two shards: partitions on both, produce and fetch through handles from a plain thread and
//! from a tokio runtime, and `run_on` across shards both ways.

mod common;

use std::time::Duration;

use futures::executor::block_on;
use spindle_engine::{
    FetchRequest, Offset, ShardId, TopicConfig, TopicPartition, CONSUMER_OFFSETS_TOPIC,
};

#[test]
fn partitions_on_both_shards_serve_plain_threads_and_tokio() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    assert_eq!(handle.shard_count(), 2);

    block_on(handle.create_topic("orders", 4, TopicConfig::default())).expect("create");
    let description = block_on(handle.describe_topic("orders")).expect("describe");
    let shards: Vec<ShardId> = description.partitions.iter().map(|p| p.shard).collect();
    assert_eq!(shards, vec![ShardId(0), ShardId(1), ShardId(0), ShardId(1)]);

    // From plain threads, one per partition.
    let threads: Vec<_> = (0..4)
        .map(|p| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                let tp = TopicPartition::new("orders", p);
                let outcome =
                    block_on(handle.produce_records(&tp, common::records(&format!("p{p}"), 3)))
                        .expect("produce");
                assert_eq!(
                    (outcome.base_offset, outcome.last_offset),
                    (Offset(0), Offset(2))
                );
            })
        })
        .collect();
    for t in threads {
        t.join().expect("producer thread");
    }

    // From a tokio runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tokio_handle = handle.clone();
    runtime.block_on(async move {
        let tasks: Vec<_> = (0..4)
            .map(|p| {
                let handle = tokio_handle.clone();
                tokio::spawn(async move {
                    let tp = TopicPartition::new("orders", p);
                    handle
                        .produce_records(&tp, common::records("tokio", 2))
                        .await
                        .expect("produce from tokio")
                })
            })
            .collect();
        for task in tasks {
            let outcome = task.await.expect("task");
            assert_eq!(outcome.base_offset, Offset(3));
        }
    });

    for p in 0..4 {
        let tp = TopicPartition::new("orders", p);
        let values: Vec<String> = common::fetch_all(&handle, &tp)
            .into_iter()
            .map(|r| r.1)
            .collect();
        let p0 = format!("p{p}-0");
        assert_eq!(values.len(), 5, "partition {p}: {values:?}");
        assert_eq!(values[0], p0);
        assert_eq!(values[3], "tokio-0");
    }
    engine.shutdown().expect("shutdown");
}

#[test]
fn run_on_crosses_shards_both_ways_and_from_the_handle() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();

    let from_handle = block_on(handle.run_on(ShardId(1), |shard| async move { shard.id() }));
    assert_eq!(from_handle.expect("run_on"), ShardId(1));

    for (from, to) in [(0u32, 1u32), (1, 0)] {
        let seen = block_on(handle.run_on(ShardId(from), move |shard| async move {
            let here = shard.id();
            let there = shard
                .run_on(ShardId(to), |other| async move {
                    (other.id(), std::thread::current().name().map(str::to_owned))
                })
                .await
                .expect("cross-shard run_on");
            (here, there)
        }))
        .expect("run_on");
        assert_eq!(seen.0, ShardId(from));
        assert_eq!((seen.1).0, ShardId(to));
        assert_eq!(
            (seen.1).1.as_deref(),
            Some(format!("spindle-shard-{to}").as_str())
        );
    }

    // The offsets topic's partitions are spread over the shards, partition p on shard p % 2.
    let offsets = block_on(handle.describe_topic(CONSUMER_OFFSETS_TOPIC)).expect("describe");
    assert!(offsets.info.internal);
    let owners: Vec<ShardId> = offsets.partitions.iter().map(|p| p.shard).collect();
    assert_eq!(owners.len(), spindle_engine::limits::OFFSETS_PARTITIONS_MIN);
    assert!(owners
        .iter()
        .enumerate()
        .all(|(p, shard)| *shard == ShardId(p as u32 % 2)));
    engine.shutdown().expect("shutdown");
}

/// Every cross-shard reply travels in a `tokio::sync::oneshot` that holds the asking task's
/// waker until the channel is freed, now and then by the answering shard after the asking task
/// has ended, while the asking shard drops the task's `JoinHandle`: glommio 0.9 could then free
/// the task twice and abort the node (third_party/README.md; `foreign_wakers.rs` lines that
/// race up on purpose). Here the mesh's side of it: many rounds of asks, half of them given up
/// before the answer (a deadline, a closed connection), each task's handle dropped as soon as
/// it is done, must all end, answered or not.
#[test]
fn cross_shard_asks_given_up_before_the_answer_end_cleanly() {
    const ROUNDS: u64 = 2_000;
    const CONCURRENT: u64 = 64;
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    let (answered, given_up) = block_on(handle.run_on(ShardId(0), |shard| async move {
        let (mut answered, mut given_up) = (0u64, 0u64);
        for _ in 0..ROUNDS {
            let asks: Vec<_> = (0..CONCURRENT)
                .map(|i| {
                    let shard = shard.clone();
                    glommio::spawn_local(async move {
                        let ask = async {
                            let answer = shard.run_on(ShardId(1), |_| async {
                                glommio::timer::sleep(Duration::from_micros(100)).await;
                                1u64
                            });
                            Some(answer.await.expect("cross-shard run_on"))
                        };
                        let give_up = async {
                            if i % 2 == 0 {
                                futures_lite::future::yield_now().await;
                                None
                            } else {
                                futures_lite::future::pending().await
                            }
                        };
                        futures_lite::future::or(ask, give_up).await
                    })
                })
                .collect();
            for ask in asks {
                match ask.await {
                    Some(_) => answered += 1,
                    None => given_up += 1,
                }
            }
        }
        (answered, given_up)
    }))
    .expect("run_on");
    assert_eq!(answered + given_up, ROUNDS * CONCURRENT);
    assert!(answered >= ROUNDS * CONCURRENT / 2, "{answered} answered");
    assert!(given_up > 0, "no ask was given up");
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_shard_serves_partitions_of_other_shards_through_the_mesh() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    block_on(handle.create_topic("mesh", 2, TopicConfig::default())).expect("create");
    // Shard 0 produces to and fetches from partition 1, owned by shard 1.
    let values = block_on(handle.run_on(ShardId(0), |shard| async move {
        let tp = TopicPartition::new("mesh", 1);
        assert_eq!(shard.owner_of(&tp), Some(ShardId(1)));
        shard
            .produce_records(&tp, common::records("via-mesh", 2))
            .await
            .expect("produce");
        shard
            .fetch(FetchRequest {
                tp,
                offset: Offset(0),
                max_bytes: 1 << 20,
                max_wait: Duration::ZERO,
                min_bytes: 0,
                isolation: Default::default(),
            })
            .await
            .expect("fetch")
            .batches
    }))
    .expect("run_on");
    assert_eq!(
        common::decode(&values),
        vec![(0, "via-mesh-0".to_owned()), (1, "via-mesh-1".to_owned())]
    );
    engine.shutdown().expect("shutdown");
}
