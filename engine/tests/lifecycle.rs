//! Engine life: services started on every shard and drained at shutdown, start-up refusals,
//! handles after shutdown, heavy cross-shard traffic, auto-creation and the retention task.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use spindle_engine::{
    Engine, EngineConfig, EngineError, FetchRequest, Offset, Placement, ShardId, TopicConfig,
    TopicPartition,
};

#[test]
fn services_run_on_every_shard_and_finish_in_flight_work_at_shutdown() {
    let dir = common::temp_dir();
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    {
        let engine = common::start(dir.path(), 2);
        block_on(
            engine
                .handle()
                .create_topic("svc", 2, TopicConfig::default()),
        )
        .expect("create");
        engine.shutdown().expect("shutdown");
    }
    let engine = {
        let (started, finished) = (started.clone(), finished.clone());
        Engine::start_with_services(common::config(dir.path(), 2), move |shard| {
            started.fetch_add(1, Ordering::SeqCst);
            let finished = finished.clone();
            let worker = shard.clone();
            // A service that, once told to stop, still completes the write it has in hand.
            shard.spawn_request(async move {
                worker.stopping().await;
                let tp = TopicPartition::new("svc", worker.id().0);
                worker
                    .produce_records(&tp, common::records("last-words", 1))
                    .await
                    .expect("produce while draining");
                finished.fetch_add(1, Ordering::SeqCst);
            });
        })
        .expect("start")
    };
    assert_eq!(started.load(Ordering::SeqCst), 2);
    engine.shutdown().expect("shutdown");
    assert_eq!(finished.load(Ordering::SeqCst), 2);

    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    for p in 0..2 {
        let out = block_on(handle.fetch(FetchRequest {
            tp: TopicPartition::new("svc", p),
            offset: Offset(0),
            max_bytes: 1 << 20,
            max_wait: Duration::ZERO,
            min_bytes: 0,
            isolation: Default::default(),
        }))
        .expect("fetch");
        assert_eq!(
            common::decode(&out.batches),
            vec![(0, "last-words-0".to_owned())]
        );
    }
    engine.shutdown().expect("shutdown");
    // A handle outliving its engine answers ShuttingDown.
    let err = block_on(handle.list_topics()).unwrap_err();
    assert!(matches!(err, EngineError::ShuttingDown), "{err:?}");
}

#[test]
fn more_pinned_shards_than_cpus_is_refused_with_a_hint() {
    let dir = common::temp_dir();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let err = Engine::start(EngineConfig {
        placement: Placement::Pinned,
        ..common::config(dir.path(), cpus + 1)
    })
    .err()
    .expect("refused");
    assert!(
        matches!(&err, EngineError::Start(msg) if msg.contains("or unbound placement")),
        "{err}"
    );
}

#[test]
fn a_cpuset_places_one_shard_on_each_of_its_cpus() {
    let dir = common::temp_dir();
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let last = online - 1;
    let engine = Engine::start(EngineConfig {
        placement: Placement::Pinned,
        cpuset: Some(vec![last]),
        ..common::config(dir.path(), 0)
    })
    .expect("start");
    let handle = engine.handle();
    assert_eq!(
        handle.shard_count(),
        1,
        "shards 0 is one per CPU of the set"
    );
    // SAFETY: sched_getcpu takes no argument and only reads the calling thread's CPU.
    let cpu = block_on(handle.run_on(ShardId(0), |_| async { unsafe { libc::sched_getcpu() } }))
        .expect("run_on");
    assert_eq!(cpu, last as i32);
    engine.shutdown().expect("shutdown");

    for (cpuset, placement, why) in [
        (vec![online + 64], Placement::Pinned, "not online"),
        (vec![last, last], Placement::Pinned, "twice"),
        (vec![], Placement::Pinned, "no CPU"),
        (vec![last], Placement::Unbound, "Pinned"),
    ] {
        let err = Engine::start(EngineConfig {
            placement,
            cpuset: Some(cpuset.clone()),
            ..common::config(dir.path(), 0)
        })
        .err()
        .expect("refused");
        assert!(
            matches!(&err, EngineError::Start(msg) if msg.contains(why)),
            "{cpuset:?}: {err}"
        );
    }
}

#[test]
fn heavy_cross_shard_traffic_both_ways_does_not_deadlock() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    // Far more concurrent jobs than a mesh channel holds, in both directions at once.
    const JOBS: u32 = 5_000;
    let deadline = Instant::now() + Duration::from_secs(30);
    let sides: Vec<_> = [(0u32, 1u32), (1, 0)]
        .into_iter()
        .map(|(from, to)| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                block_on(handle.run_on(ShardId(from), move |shard| async move {
                    let calls = (0..JOBS).map(|i| {
                        shard.run_on(ShardId(to), move |other| async move {
                            // Each job calls back, so both shards send and receive at once.
                            other
                                .run_on(ShardId(from), move |_| async move { i })
                                .await
                                .expect("call back")
                        })
                    });
                    let results = futures::future::join_all(calls).await;
                    results.into_iter().map(|r| r.expect("run_on")).sum::<u32>()
                }))
                .expect("run_on")
            })
        })
        .collect();
    for side in sides {
        assert_eq!(side.join().expect("side"), (0..JOBS).sum::<u32>());
    }
    assert!(Instant::now() < deadline, "cross-shard storm took too long");
    engine.shutdown().expect("shutdown");
}

#[test]
fn produce_auto_creates_topics_when_enabled() {
    let dir = common::temp_dir();
    let engine = Engine::start(EngineConfig {
        auto_create_topics: true,
        default_partitions: 3,
        ..common::config(dir.path(), 2)
    })
    .expect("start");
    let handle = engine.handle();
    let tp = TopicPartition::new("auto", 2);
    block_on(handle.produce_records(&tp, common::records("a", 1))).expect("produce");
    let described = block_on(handle.describe_topic("auto")).expect("describe");
    assert_eq!(described.partitions.len(), 3);
    assert_eq!(described.partitions[2].high_watermark, Offset(1));
    engine.shutdown().expect("shutdown");
}

#[test]
fn retention_task_deletes_old_segments() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    let mut config = TopicConfig::default();
    config.set("segment.bytes", "4096").expect("set");
    config.set("retention.bytes", "4096").expect("set");
    block_on(handle.create_topic("short", 1, config)).expect("create");
    let tp = TopicPartition::new("short", 0);
    for i in 0..40 {
        block_on(handle.produce_records(&tp, common::records(&format!("{i:0>500}"), 2)))
            .expect("produce");
    }
    // The background task runs every few seconds; wait for it, boundedly.
    let deadline = Instant::now() + Duration::from_secs(15);
    let start = loop {
        let state = block_on(handle.describe_topic("short"))
            .expect("describe")
            .partitions[0]
            .clone();
        if state.log_start_offset > Offset(0) || Instant::now() > deadline {
            break state.log_start_offset;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(start > Offset(0), "retention never ran");
    let err = block_on(handle.fetch(FetchRequest {
        tp: tp.clone(),
        offset: Offset(0),
        max_bytes: 1 << 20,
        max_wait: Duration::ZERO,
        min_bytes: 0,
        isolation: Default::default(),
    }))
    .unwrap_err();
    assert!(
        matches!(err, EngineError::OffsetOutOfRange { .. }),
        "{err:?}"
    );
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_second_engine_on_the_same_data_dir_is_refused_until_the_first_stops() {
    let dir = common::temp_dir();
    let first = common::start(dir.path(), 1);
    let Err(err) = Engine::start(common::config(dir.path(), 1)) else {
        panic!("a second engine started on a data directory in use");
    };
    let message = err.to_string();
    assert!(
        message.contains("in use by another Spindle process"),
        "{message}"
    );
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    first.shutdown().expect("shutdown");
    let again = common::start(dir.path(), 1);
    again.shutdown().expect("shutdown");
}
