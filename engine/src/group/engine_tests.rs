//! Groups on a real engine: commits go through the offsets log on disk and come back after a
//! restart; deletions write tombstones that a restart honours.

use std::time::Duration;

use futures::executor::block_on;

use super::*;
use crate::{Engine, EngineConfig, EngineHandle, Placement, TopicConfig, TopicPartition};

const SHARDS: usize = 2;

fn start(dir: &std::path::Path) -> Engine {
    start_with(dir, SHARDS)
}

fn start_with(dir: &std::path::Path, shards: usize) -> Engine {
    Engine::start(EngineConfig {
        data_dir: dir.to_path_buf(),
        shards,
        placement: Placement::Unbound,
        auto_create_topics: false,
        ..EngineConfig::default()
    })
    .expect("engine starts")
}

fn offset(value: i64, metadata: &str) -> CommittedOffset {
    CommittedOffset {
        offset: value,
        leader_epoch: 0,
        metadata: Some(metadata.to_owned()),
        commit_timestamp_ms: -1,
    }
}

/// Commits `offsets` (partition of topic "t", offset) to `group_id` as `committer`.
fn submit(
    handle: &EngineHandle,
    group_id: &str,
    committer: Committer,
    offsets: &[(u32, i64)],
) -> Result<CommitOutcome, GroupError> {
    let commit = OffsetCommit {
        group_id: group_id.to_owned(),
        committer,
        offsets: offsets
            .iter()
            .map(|(p, o)| (TopicPartition::new("t", *p), offset(*o, "meta")))
            .collect(),
    };
    let target = handle.group_coordinator(group_id);
    block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().commit_offsets(&shard, commit).await
    }))
    .expect("coordinator shard runs")
}

/// As [`submit`], for a commit the group accepts as a whole.
fn commit(
    handle: &EngineHandle,
    group_id: &str,
    committer: Committer,
    offsets: &[(u32, i64)],
) -> CommitOutcome {
    submit(handle, group_id, committer, offsets).expect("commit accepted")
}

/// Whether a commit of one offset to partition 0 of topic "t" is accepted as a whole.
fn try_commit(
    handle: &EngineHandle,
    group_id: &str,
    committer: Committer,
) -> Result<(), GroupError> {
    submit(handle, group_id, committer, &[(0, 1)]).map(drop)
}

fn fetch(handle: &EngineHandle, group_id: &str) -> Vec<(u32, i64)> {
    let id = group_id.to_owned();
    let target = handle.group_coordinator(group_id);
    let found = block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().fetch_offsets(&id, None)
    }))
    .expect("coordinator shard runs");
    found
        .into_iter()
        .map(|(tp, c)| (tp.partition.0, c.map_or(-1, |c| c.offset)))
        .collect()
}

/// A shard counter summed over the shards.
fn counted(handle: &EngineHandle, counter: fn(&crate::metrics::ShardMetrics) -> u64) -> u64 {
    (0..SHARDS)
        .map(|i| {
            block_on(
                handle.run_on(crate::ShardId(i as u32), move |shard| async move {
                    counter(shard.metrics())
                }),
            )
            .expect("shard runs")
        })
        .sum()
}

fn delete(handle: &EngineHandle, group_id: &str) -> Result<(), GroupError> {
    let ids = vec![group_id.to_owned()];
    let target = handle.group_coordinator(group_id);
    let mut results = block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().delete_groups(&shard, &ids).await
    }))
    .expect("coordinator shard runs");
    results.pop().expect("one result").1
}

/// Joins a member with a session of 1 s (it never heartbeats) and one protocol, "range".
fn join(
    handle: &EngineHandle,
    group_id: &str,
    protocol_type: &str,
    metadata: bytes::Bytes,
) -> JoinResponse {
    join_for(
        handle,
        group_id,
        protocol_type,
        metadata,
        Duration::from_millis(1_000),
    )
}

/// As [`join`], with a session of `session`.
fn join_for(
    handle: &EngineHandle,
    group_id: &str,
    protocol_type: &str,
    metadata: bytes::Bytes,
    session: Duration,
) -> JoinResponse {
    let join = JoinRequest {
        group_id: group_id.to_owned(),
        member_id: String::new(),
        group_instance_id: None,
        require_known_member_id: false,
        client_id: "test".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout: session,
        rebalance_timeout: Duration::from_millis(1_000),
        protocol_type: protocol_type.to_owned(),
        protocols: vec![Protocol {
            name: "range".to_owned(),
            metadata,
        }],
    };
    let target = handle.group_coordinator(group_id);
    block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().join(&shard, join).await
    }))
    .expect("coordinator shard runs")
    .expect("joined")
}

/// The only member of a group of one, which its join made leader, assigns itself `assignment`.
fn sync_alone(
    handle: &EngineHandle,
    joined: &JoinResponse,
    group_id: &str,
    assignment: impl AsRef<[u8]>,
) {
    let assignment = assignment.as_ref();
    let sync = SyncRequest {
        group_id: group_id.to_owned(),
        generation: joined.generation,
        member_id: joined.member_id.clone(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: vec![(
            joined.member_id.clone(),
            bytes::Bytes::copy_from_slice(assignment),
        )],
    };
    let target = handle.group_coordinator(group_id);
    let synced = block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().sync(sync).await
    }))
    .expect("coordinator shard runs")
    .expect("synced");
    assert_eq!(synced.assignment.as_ref(), assignment);
}

fn describe(handle: &EngineHandle, group_id: &str) -> GroupDescription {
    let id = group_id.to_owned();
    let target = handle.group_coordinator(group_id);
    block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().describe_group(&id)
    }))
    .expect("coordinator shard runs")
}

fn heartbeat(
    handle: &EngineHandle,
    group_id: &str,
    member_id: &str,
    generation: i32,
) -> Result<(), GroupError> {
    let request = HeartbeatRequest {
        group_id: group_id.to_owned(),
        generation,
        member_id: member_id.to_owned(),
        group_instance_id: None,
    };
    let target = handle.group_coordinator(group_id);
    block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().heartbeat(&request)
    }))
    .expect("coordinator shard runs")
}

/// Waits until the coordinator has written `group_id`'s membership record (`true`) or its
/// tombstone (`false`).
fn await_membership_record(handle: &EngineHandle, group_id: &str, stored: bool) {
    let target = handle.group_coordinator(group_id);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let id = group_id.to_owned();
        let found = block_on(handle.run_on(target, move |shard| async move {
            shard
                .local_groups()
                .membership
                .borrow()
                .stored
                .contains_key(&id)
        }))
        .expect("coordinator shard runs");
        if found == stored {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{group_id}: record never became {stored}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn delete_offsets(
    handle: &EngineHandle,
    group_id: &str,
    partitions: &[(&str, u32)],
) -> Result<Vec<Result<(), GroupError>>, GroupError> {
    let id = group_id.to_owned();
    let partitions = partitions
        .iter()
        .map(|(topic, p)| TopicPartition::new(*topic, *p))
        .collect();
    let target = handle.group_coordinator(group_id);
    let outcome = block_on(handle.run_on(target, move |shard| async move {
        shard
            .local_groups()
            .delete_offsets(&shard, &id, partitions)
            .await
    }))
    .expect("coordinator shard runs")?;
    Ok(outcome.into_iter().map(|(_, r)| r).collect())
}

#[test]
fn offsets_are_deleted_unless_the_members_subscribe_to_their_topic() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    {
        let engine = start(dir.path());
        let handle = engine.handle();
        block_on(handle.create_topic("t", 2, TopicConfig::default())).expect("create");
        block_on(handle.create_topic("u", 1, TopicConfig::default())).expect("create");
        commit(&handle, "g", Committer::Outsider, &[(0, 5), (1, 7)]);
        assert_eq!(
            delete_offsets(&handle, "nobody", &[("t", 0)]),
            Err(GroupError::GroupIdNotFound)
        );
        // Without members any partition's offset may go.
        assert_eq!(
            delete_offsets(&handle, "g", &[("t", 0), ("t", 9)]),
            Ok(vec![Ok(()), Err(GroupError::UnknownTopicOrPartition)])
        );
        assert_eq!(fetch(&handle, "g"), vec![(1, 7)]);
        // A member subscribed to "u" keeps the offsets of "u", not those of "t".
        let subscription = consumer_protocol::subscription("u");
        join(&handle, "g", "consumer", subscription);
        assert_eq!(
            delete_offsets(&handle, "g", &[("u", 0), ("t", 1)]),
            Ok(vec![Err(GroupError::GroupSubscribedToTopic), Ok(())])
        );
        assert!(fetch(&handle, "g").is_empty());
        // A group that is not a consumer group gives up nothing while it has members.
        join(
            &handle,
            "h",
            "connect",
            bytes::Bytes::from_static(b"opaque"),
        );
        assert_eq!(
            delete_offsets(&handle, "h", &[("t", 0)]),
            Err(GroupError::NonEmptyGroup)
        );
        engine.shutdown().expect("shutdown");
    }
    // The deletions were tombstones in the offsets log: a restart does not bring them back.
    let engine = start(dir.path());
    assert!(fetch(&engine.handle(), "g").is_empty());
    engine.shutdown().expect("shutdown");
}

#[test]
fn an_unreadable_membership_record_leaves_its_group_empty_and_the_others_restored() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let long = Duration::from_secs(60);
    let kept;
    {
        let engine = start(dir.path());
        let handle = engine.handle();
        block_on(handle.create_topic("t", 1, TopicConfig::default())).expect("create");
        kept = join_for(
            &handle,
            "kept",
            "consumer",
            consumer_protocol::subscription("t"),
            long,
        );
        sync_alone(&handle, &kept, "kept", "p0");
        await_membership_record(&handle, "kept", true);
        commit(&handle, "damaged", Committer::Outsider, &[(0, 7)]);
        // A membership record for "damaged" whose value no version of Spindle wrote.
        let target = handle.group_coordinator("damaged");
        block_on(handle.run_on(target, |shard| async move {
            let tp = shard.local_groups().offsets_tp("damaged");
            let garbage = super::membership::membership_record(
                "damaged",
                Some(bytes::Bytes::from_static(b"\x00\x01\x00\xff\xff")),
            );
            shard.append_internal_records(&tp, vec![garbage]).await
        }))
        .expect("coordinator shard runs")
        .expect("appended");
        engine.shutdown().expect("shutdown");
    }
    // The start goes on: the damaged group has no members but keeps its commits, the other
    // group is back with its member.
    let engine = start(dir.path());
    let handle = engine.handle();
    let damaged = describe(&handle, "damaged");
    assert!(damaged.members.is_empty());
    assert_eq!(fetch(&handle, "damaged"), vec![(0, 7)]);
    assert_eq!(describe(&handle, "kept").state, GroupState::Stable);
    assert_eq!(
        heartbeat(&handle, "kept", &kept.member_id, kept.generation),
        Ok(())
    );
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_stable_group_keeps_its_members_across_a_restart_and_one_that_left_stays_empty() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let long = Duration::from_secs(60);
    let subscription = || consumer_protocol::subscription("t");
    let (kept, gone, stale);
    {
        let engine = start(dir.path());
        let handle = engine.handle();
        block_on(handle.create_topic("t", 2, TopicConfig::default())).expect("create");
        kept = join_for(&handle, "kept", "consumer", subscription(), long);
        sync_alone(&handle, &kept, "kept", "both partitions");
        await_membership_record(&handle, "kept", true);
        // A member with a short session, which will not come back.
        stale = join(&handle, "stale", "consumer", subscription());
        sync_alone(&handle, &stale, "stale", "p0");
        gone = join_for(&handle, "gone", "consumer", subscription(), long);
        sync_alone(&handle, &gone, "gone", "p1");
        await_membership_record(&handle, "gone", true);
        let left = block_on(handle.run_on(handle.group_coordinator("gone"), {
            let member_id = gone.member_id.clone();
            move |shard| async move {
                shard.local_groups().leave(
                    "gone",
                    &[MemberIdentity {
                        member_id,
                        group_instance_id: None,
                    }],
                )
            }
        }))
        .expect("coordinator shard runs");
        assert_eq!(left, Ok(vec![Ok(())]));
        // Shut down at once: the tombstone is written on the way down.
        engine.shutdown().expect("shutdown");
    }
    let engine = start(dir.path());
    let handle = engine.handle();
    let restored = describe(&handle, "kept");
    assert_eq!(
        (
            restored.state,
            restored.generation,
            restored.protocol.as_str()
        ),
        (GroupState::Stable, kept.generation, "range")
    );
    let members: Vec<(&str, &[u8], &[u8])> = restored
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.as_str(),
                m.metadata.as_ref(),
                m.assignment.as_ref(),
            )
        })
        .collect();
    assert_eq!(
        members,
        vec![(
            kept.member_id.as_str(),
            subscription().as_ref(),
            &b"both partitions"[..]
        )]
    );
    // The member heartbeats on at its generation, with no rebalance.
    assert_eq!(
        heartbeat(&handle, "kept", &kept.member_id, kept.generation),
        Ok(())
    );
    assert_eq!(
        heartbeat(&handle, "kept", &kept.member_id, kept.generation + 1),
        Err(GroupError::IllegalGeneration)
    );
    // The group whose last member left before the shutdown has none after it.
    assert!(describe(&handle, "gone").members.is_empty());
    assert_eq!(
        heartbeat(&handle, "gone", &gone.member_id, gone.generation),
        Err(GroupError::UnknownMemberId)
    );
    // A member that does not come back expires one session after the start.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !describe(&handle, "stale").members.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "stale member never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(describe(&handle, "kept").state, GroupState::Stable);
    await_membership_record(&handle, "stale", false);
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_group_grown_too_large_to_store_loses_its_record_rather_than_keep_an_old_one() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let engine = start(dir.path());
    let handle = engine.handle();
    block_on(handle.create_topic("t", 1, TopicConfig::default())).expect("create");
    let long = Duration::from_secs(60);
    let first = join_for(
        &handle,
        "g",
        "consumer",
        consumer_protocol::subscription("t"),
        long,
    );
    sync_alone(&handle, &first, "g", "small");
    await_membership_record(&handle, "g", true);
    // The member rejoins with 600 KiB of metadata and is assigned 600 KiB: over 1 MiB in all.
    let rejoin = JoinRequest {
        group_id: "g".to_owned(),
        member_id: first.member_id.clone(),
        group_instance_id: None,
        require_known_member_id: false,
        client_id: "test".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout: long,
        rebalance_timeout: Duration::from_millis(1_000),
        protocol_type: "consumer".to_owned(),
        protocols: vec![Protocol {
            name: "range".to_owned(),
            metadata: bytes::Bytes::from(vec![1u8; 600 << 10]),
        }],
    };
    let target = handle.group_coordinator("g");
    let second = block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().join(&shard, rejoin).await
    }))
    .expect("coordinator shard runs")
    .expect("rejoined");
    assert_eq!(second.generation, first.generation + 1);
    sync_alone(&handle, &second, "g", "a".repeat(600 << 10));
    await_membership_record(&handle, "g", false);
    engine.shutdown().expect("shutdown");
}

#[test]
fn the_configured_initial_rebalance_delay_holds_the_first_join_of_a_group() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    // Below the members' rebalance timeout (1 s), which also bounds the delay.
    for delay in [Duration::ZERO, Duration::from_millis(800)] {
        let engine = Engine::start(EngineConfig {
            data_dir: dir.path().to_path_buf(),
            shards: SHARDS,
            placement: Placement::Unbound,
            auto_create_topics: false,
            group_initial_rebalance_delay: delay,
            ..EngineConfig::default()
        })
        .expect("engine starts");
        let handle = engine.handle();
        for shard in 0..SHARDS {
            let configured = block_on(
                handle.run_on(crate::ShardId(shard as u32), |shard| async move {
                    shard.local_groups().initial_delay
                }),
            )
            .expect("shard runs");
            assert_eq!(configured, delay, "shard {shard}");
        }
        let started = std::time::Instant::now();
        let joined = join_for(
            &handle,
            &format!("g-{}", delay.as_millis()),
            "consumer",
            bytes::Bytes::new(),
            Duration::from_secs(30),
        );
        assert_eq!(joined.generation, 1);
        assert!(
            started.elapsed() >= delay,
            "the first join waited {:?}",
            started.elapsed()
        );
        engine.shutdown().expect("shutdown");
    }
}

#[test]
fn consumer_protocol_members_get_the_configured_heartbeat_and_session() {
    use consumer_group::{ConsumerHeartbeat, ConsumerTiming, JOIN_EPOCH};

    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let timing = ConsumerTiming {
        session_timeout: Duration::from_millis(1_500),
        heartbeat_interval: Duration::from_millis(300),
    };
    let engine = Engine::start(EngineConfig {
        data_dir: dir.path().to_path_buf(),
        shards: SHARDS,
        placement: Placement::Unbound,
        auto_create_topics: false,
        group_consumer_timing: timing,
        ..EngineConfig::default()
    })
    .expect("engine starts");
    let handle = engine.handle();
    block_on(handle.create_topic("t", 1, TopicConfig::default())).expect("create");
    let joined = consumer_heartbeat(
        &handle,
        ConsumerHeartbeat {
            group_id: "g".to_owned(),
            member_epoch: JOIN_EPOCH,
            subscribed_topics: Some(vec!["t".to_owned()]),
            ..ConsumerHeartbeat::default()
        },
    )
    .expect("joined");
    assert_eq!(joined.heartbeat_interval, timing.heartbeat_interval);
    // Silent past its 1.5 s session (not the default 45 s), the member is removed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !describe(&handle, "g").members.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the member was never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    engine.shutdown().expect("shutdown");
}

/// The type of `group_id` as ListGroups shows it; `None` when the group is not listed.
fn group_type(handle: &EngineHandle, group_id: &str) -> Option<GroupType> {
    let id = group_id.to_owned();
    let target = handle.group_coordinator(group_id);
    let listings = block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().list_groups()
    }))
    .expect("coordinator shard runs");
    listings
        .into_iter()
        .find(|l| l.group_id == id)
        .map(|l| l.group_type)
}

#[test]
fn the_migration_policy_decides_which_way_a_group_with_members_may_move() {
    use consumer_group::{ConsumerHeartbeat, MigrationPolicy, JOIN_EPOCH, LEAVE_EPOCH};

    let start_with_policy = |dir: &std::path::Path, policy: MigrationPolicy| {
        Engine::start(EngineConfig {
            data_dir: dir.to_path_buf(),
            shards: SHARDS,
            placement: Placement::Unbound,
            auto_create_topics: false,
            group_initial_rebalance_delay: Duration::ZERO,
            group_consumer_migration_policy: policy,
            ..EngineConfig::default()
        })
        .expect("engine starts")
    };
    // A classic group of one Kafka consumer that owns both partitions of t.
    let classic_group = |handle: &EngineHandle| {
        block_on(handle.create_topic("t", 2, TopicConfig::default())).expect("create");
        let member = join_for(
            handle,
            "g",
            "consumer",
            consumer_protocol::subscription("t"),
            Duration::from_secs(30),
        );
        let both = std::collections::BTreeMap::from([("t".to_owned(), vec![0, 1])]);
        sync_alone(handle, &member, "g", consumer_protocol::assignment(&both));
        member
    };
    let kip848_join = || ConsumerHeartbeat {
        group_id: "g".to_owned(),
        member_epoch: JOIN_EPOCH,
        subscribed_topics: Some(vec!["t".to_owned()]),
        ..ConsumerHeartbeat::default()
    };

    // No upgrade: the consumer-protocol member is refused and the classic group goes on.
    for policy in [MigrationPolicy::Disabled, MigrationPolicy::Downgrade] {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
        let engine = start_with_policy(dir.path(), policy);
        let handle = engine.handle();
        let member = classic_group(&handle);
        assert_eq!(
            consumer_heartbeat(&handle, kip848_join()),
            Err(GroupError::UpgradeDisabled("g".to_owned())),
            "{policy:?}"
        );
        assert_eq!(group_type(&handle, "g"), Some(GroupType::Classic));
        assert_eq!(describe(&handle, "g").state, GroupState::Stable);
        heartbeat(&handle, "g", &member.member_id, member.generation).expect("still a member");
        engine.shutdown().expect("shutdown");
    }

    // Upgrade, and back only where the policy allows it: when the consumer-protocol member
    // leaves, the classic member is in a classic group again, or stays in a consumer-protocol
    // group that goes on serving it.
    for (policy, after_leave) in [
        (MigrationPolicy::Upgrade, GroupType::Consumer),
        (MigrationPolicy::Bidirectional, GroupType::Classic),
    ] {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
        let engine = start_with_policy(dir.path(), policy);
        let handle = engine.handle();
        let member = classic_group(&handle);
        let joined = consumer_heartbeat(&handle, kip848_join()).expect("upgraded");
        assert_eq!(group_type(&handle, "g"), Some(GroupType::Consumer));
        let leave = ConsumerHeartbeat {
            member_id: joined.member_id,
            member_epoch: LEAVE_EPOCH,
            ..kip848_join()
        };
        consumer_heartbeat(&handle, leave).expect("left");
        assert_eq!(group_type(&handle, "g"), Some(after_leave), "{policy:?}");
        let members = describe(&handle, "g").members;
        assert_eq!(members.len(), 1, "{policy:?}");
        assert_eq!(members[0].member_id, member.member_id);
        engine.shutdown().expect("shutdown");
    }
}

fn consumer_heartbeat(
    handle: &EngineHandle,
    req: consumer_group::ConsumerHeartbeat,
) -> Result<consumer_group::ConsumerHeartbeatAnswer, GroupError> {
    let target = handle.group_coordinator(&req.group_id);
    block_on(handle.run_on(target, move |shard| async move {
        shard.local_groups().consumer_heartbeat(&shard, req)
    }))
    .expect("coordinator shard runs")
}

#[test]
fn a_consumer_protocol_group_keeps_its_members_across_a_restart() {
    use consumer_group::{ConsumerHeartbeat, JOIN_EPOCH, LEAVE_EPOCH};

    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let beat = |group: &str, member_id: &str, member_epoch: i32| ConsumerHeartbeat {
        group_id: group.to_owned(),
        member_id: member_id.to_owned(),
        member_epoch,
        subscribed_topics: (member_epoch == JOIN_EPOCH).then(|| vec!["t".to_owned()]),
        ..ConsumerHeartbeat::default()
    };
    let (kept, gone);
    {
        let engine = start(dir.path());
        let handle = engine.handle();
        block_on(handle.create_topic("t", 2, TopicConfig::default())).expect("create");
        kept = consumer_heartbeat(&handle, beat("kept", "", JOIN_EPOCH)).expect("joined");
        gone = consumer_heartbeat(&handle, beat("gone", "", JOIN_EPOCH)).expect("joined");
        await_membership_record(&handle, "kept", true);
        await_membership_record(&handle, "gone", true);
        let left = consumer_heartbeat(&handle, beat("gone", &gone.member_id, LEAVE_EPOCH));
        assert_eq!(left.map(|a| a.member_epoch), Ok(LEAVE_EPOCH));
        engine.shutdown().expect("shutdown");
    }
    let engine = start(dir.path());
    let handle = engine.handle();
    // The member heartbeats on at its epoch and is sent the partitions it had.
    let again = consumer_heartbeat(&handle, beat("kept", &kept.member_id, kept.member_epoch))
        .expect("known after the restart");
    assert_eq!(again.member_epoch, kept.member_epoch);
    assert_eq!(again.assignment, kept.assignment);
    assert!(kept.assignment.is_some());
    let member = Committer::from_kafka(kept.member_epoch, &kept.member_id, None);
    assert_eq!(try_commit(&handle, "kept", member), Ok(()));
    assert_eq!(describe(&handle, "kept").state, GroupState::Stable);
    // The member that left before the shutdown is not brought back.
    assert_eq!(
        consumer_heartbeat(&handle, beat("gone", &gone.member_id, gone.member_epoch)),
        Err(GroupError::FencedMemberEpoch)
    );
    engine.shutdown().expect("shutdown");
}

#[test]
fn commits_and_tombstones_survive_restart() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    {
        let engine = start(dir.path());
        let handle = engine.handle();
        block_on(handle.create_topic("t", 2, TopicConfig::default())).expect("create");
        for outcome in [
            commit(&handle, "g1", Committer::Outsider, &[(0, 5), (1, 7)]),
            commit(&handle, "g1", Committer::Outsider, &[(0, 9)]),
            commit(&handle, "g2", Committer::Outsider, &[(0, 1)]),
        ] {
            assert!(outcome.iter().all(|(_, r)| r.is_ok()), "{outcome:?}");
        }
        assert_eq!(fetch(&handle, "g1"), vec![(0, 9), (1, 7)]);
        assert_eq!(delete(&handle, "g2"), Ok(()));
        assert_eq!(delete(&handle, "g2"), Err(GroupError::GroupIdNotFound));
        assert!(fetch(&handle, "g2").is_empty());
        engine.shutdown().expect("shutdown");
    }
    let engine = start(dir.path());
    let handle = engine.handle();
    assert_eq!(fetch(&handle, "g1"), vec![(0, 9), (1, 7)]);
    assert!(fetch(&handle, "g2").is_empty());
    let all = block_on(handle.run_on(crate::ShardId(0), |shard| async move {
        list_all_groups(&shard).await
    }))
    .expect("shard runs")
    .expect("every shard answers");
    let ids: Vec<&str> = all.iter().map(|g| g.group_id.as_str()).collect();
    assert_eq!(ids, vec!["g1"]);
    assert_eq!(all[0].state, GroupState::Empty);
    assert_eq!(all[0].offsets[0].1.metadata.as_deref(), Some("meta"));
    engine.shutdown().expect("shutdown");
}

#[test]
fn commits_survive_restarts_with_another_shard_count() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let groups: Vec<String> = (0..12).map(|i| format!("group-{i}")).collect();
    {
        let engine = start_with(dir.path(), 2);
        let handle = engine.handle();
        block_on(handle.create_topic("t", 1, TopicConfig::default())).expect("create");
        for (i, group) in (10..).zip(&groups) {
            let outcome = commit(&handle, group, Committer::Outsider, &[(0, i)]);
            assert!(outcome.iter().all(|(_, r)| r.is_ok()), "{outcome:?}");
        }
        engine.shutdown().expect("shutdown");
    }
    for shards in [3, 1, 2] {
        let engine = start_with(dir.path(), shards);
        let handle = engine.handle();
        for (i, group) in (10..).zip(&groups) {
            assert_eq!(
                fetch(&handle, group),
                vec![(0, i)],
                "{group} after a restart with {shards} shards"
            );
        }
        engine.shutdown().expect("shutdown");
    }
}

#[test]
fn commits_are_checked_against_topics_and_generations() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let engine = start(dir.path());
    let handle = engine.handle();
    block_on(handle.create_topic("t", 1, TopicConfig::default())).expect("create");
    let outcome = commit(&handle, "g", Committer::Outsider, &[(0, 3), (5, 4)]);
    assert_eq!(outcome[0].1, Ok(()));
    assert_eq!(outcome[1].1, Err(GroupError::UnknownTopicOrPartition));
    // A generation-based commit for a group nobody joined is refused as a whole.
    let refused = submit(&handle, "g", Committer::from_kafka(4, "m", None), &[(0, 8)]);
    assert_eq!(refused.unwrap_err(), GroupError::IllegalGeneration);
    assert_eq!(fetch(&handle, "g"), vec![(0, 3)]);
    // Generation -1 under a member id (a consumer between generations) is taken while the
    // group has no members, as Kafka takes it.
    let between = Committer::from_kafka(-1, "m", None);
    assert_eq!(try_commit(&handle, "g", between.clone()), Ok(()));
    let target = handle.group_coordinator("g");
    // The coordinator's timer runs on the shard: a member that never heartbeats is expired.
    let joined = join(&handle, "g", "consumer", bytes::Bytes::new());
    assert_eq!(joined.generation, 1);
    let state = |handle: &EngineHandle| {
        block_on(handle.run_on(target, |shard| async move {
            shard.local_groups().describe_group("g").state
        }))
        .expect("coordinator shard runs")
    };
    assert_eq!(state(&handle), GroupState::CompletingRebalance);
    // With a member in the group, a commit from outside it is refused (as Kafka does), while
    // the gateway's, made for its own subscriptions, is taken.
    assert_eq!(
        try_commit(&handle, "g", Committer::Outsider),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(try_commit(&handle, "g", Committer::Gateway), Ok(()));
    assert_eq!(
        try_commit(&handle, "g", between.clone()),
        Err(GroupError::UnknownMemberId)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while state(&handle) != GroupState::Empty && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state(&handle), GroupState::Empty);
    assert_eq!(try_commit(&handle, "g", Committer::Outsider), Ok(()));
    assert_eq!(try_commit(&handle, "g", between), Ok(()));
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_long_offsets_log_is_cleaned_and_replays_to_the_last_commits() {
    use crate::limits::OFFSETS_PARTITIONS_MIN;
    use crate::{OffsetSpec, CONSUMER_OFFSETS_TOPIC};

    let offsets_partition =
        |group: &str| super::api::offsets_partition(group, OFFSETS_PARTITIONS_MIN.max(SHARDS));
    let log = TopicPartition::new(CONSUMER_OFFSETS_TOPIC, offsets_partition("g"));
    // A deleted group whose tombstones share g's offsets partition: cleaning must not revive it.
    let gone = (0..)
        .map(|i| format!("gone-{i}"))
        .find(|name| offsets_partition(name) == log.partition.0)
        .expect("some name lands on g's partition");
    // A group with a member, whose membership record the cleaning must carry over.
    let stable = (0..)
        .map(|i| format!("stable-{i}"))
        .find(|name| offsets_partition(name) == log.partition.0)
        .expect("some name lands on g's partition");
    let member;
    let bounds = |handle: &EngineHandle| {
        let at = |spec| {
            block_on(handle.list_offset(&log, spec))
                .expect("list offsets")
                .map_or(0, |(offset, _)| offset.0)
        };
        (at(OffsetSpec::Earliest), at(OffsetSpec::Latest))
    };
    let partitions: Vec<u32> = (0..100).collect();
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    {
        let engine = start(dir.path());
        let handle = engine.handle();
        block_on(handle.create_topic("t", 100, TopicConfig::default())).expect("create");
        commit(&handle, &gone, Committer::Outsider, &[(0, 1)]);
        assert_eq!(delete(&handle, &gone), Ok(()));
        let subscription = consumer_protocol::subscription("t");
        member = join_for(
            &handle,
            &stable,
            "consumer",
            subscription,
            Duration::from_secs(60),
        );
        sync_alone(&handle, &member, &stable, "all of t");
        await_membership_record(&handle, &stable, true);
        // 150 commits of 100 partitions: the log passes CLEAN_MIN_RECORDS and keeps growing
        // while the cleaning runs beside the commits.
        for round in 0..150 {
            let offsets: Vec<(u32, i64)> = partitions.iter().map(|p| (*p, round)).collect();
            commit(&handle, "g", Committer::Outsider, &offsets);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while bounds(&handle).0 == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "never cleaned: {:?}",
                bounds(&handle)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (start, end) = bounds(&handle);
        assert!(end >= 15_000, "{start}..{end}");
        // What is left: the 100 live commits rewritten, and the rounds after the cleaning.
        assert!(end - start < 10_000, "{start}..{end}");
        let last: Vec<(u32, i64)> = partitions.iter().map(|p| (*p, 149)).collect();
        assert_eq!(fetch(&handle, "g"), last);
        assert!(counted(&handle, |m| m.offsets_cleanings.get()) >= 1);
        engine.shutdown().expect("shutdown");
    }
    // A restart replays from the moved start and ends with the same commits.
    let engine = start(dir.path());
    let handle = engine.handle();
    let last: Vec<(u32, i64)> = partitions.iter().map(|p| (*p, 149)).collect();
    assert_eq!(fetch(&handle, "g"), last);
    assert!(fetch(&handle, &gone).is_empty());
    assert!(bounds(&handle).0 > 0);
    let restored = describe(&handle, &stable);
    assert_eq!(restored.state, GroupState::Stable);
    assert_eq!(restored.members[0].member_id, member.member_id);
    assert_eq!(restored.members[0].assignment.as_ref(), b"all of t");
    engine.shutdown().expect("shutdown");
}

#[test]
fn offsets_of_a_group_without_members_expire_after_the_retention() {
    let retention = Duration::from_millis(500);
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    {
        let engine = Engine::start(EngineConfig {
            data_dir: dir.path().to_path_buf(),
            shards: SHARDS,
            placement: Placement::Unbound,
            auto_create_topics: false,
            offsets_retention: Some(retention),
            ..EngineConfig::default()
        })
        .expect("engine starts");
        let handle = engine.handle();
        block_on(handle.create_topic("t", 1, TopicConfig::default())).expect("create");
        let committed = std::time::Instant::now();
        commit(&handle, "idle", Committer::Outsider, &[(0, 3)]);
        assert_eq!(fetch(&handle, "idle"), vec![(0, 3)]);
        while !fetch(&handle, "idle").is_empty() {
            assert!(
                committed.elapsed() < Duration::from_secs(10),
                "never expired"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            committed.elapsed() >= retention,
            "expired after {:?}",
            committed.elapsed()
        );
        assert_eq!(counted(&handle, |m| m.offsets_expired_groups.get()), 1);
        engine.shutdown().expect("shutdown");
    }
    // The expiry wrote tombstones: a restart keeping offsets forever does not bring them back.
    let engine = start(dir.path());
    assert!(fetch(&engine.handle(), "idle").is_empty());
    engine.shutdown().expect("shutdown");
}

#[test]
fn commits_from_many_threads_across_cleanings_replay_to_the_last_ones() {
    // Four threads commit their own partitions with rising offsets while the offsets log passes
    // its cleaning threshold twice; each thread's last acknowledged commit must be what a
    // restart replays. (The write gate's own race is provoked deterministically below.)
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 25;
    const ROUNDS: i64 = 250;
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    {
        let engine = start(dir.path());
        let handle = engine.handle();
        block_on(handle.create_topic("t", THREADS * PER_THREAD, TopicConfig::default()))
            .expect("create");
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let handle = handle.clone();
                scope.spawn(move || {
                    for round in 1..=ROUNDS {
                        let offsets: Vec<(u32, i64)> = (t * PER_THREAD..(t + 1) * PER_THREAD)
                            .map(|p| (p, round))
                            .collect();
                        commit(&handle, "g", Committer::Outsider, &offsets);
                    }
                });
            }
        });
        engine.shutdown().expect("shutdown");
    }
    let engine = start(dir.path());
    let last: Vec<(u32, i64)> = (0..THREADS * PER_THREAD).map(|p| (p, ROUNDS)).collect();
    assert_eq!(fetch(&engine.handle(), "g"), last);
    engine.shutdown().expect("shutdown");
}

#[test]
fn a_cleaning_waits_for_the_commit_in_flight_so_its_rewrite_never_overtakes_it() {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let group = "g";
    {
        let engine = start(dir.path());
        let handle = engine.handle();
        block_on(handle.create_topic("t", 1, TopicConfig::default())).expect("create");
        commit(&handle, group, Committer::Outsider, &[(0, 1)]);
        let target = handle.group_coordinator(group);
        block_on(handle.run_on(target, move |shard| async move {
            let groups = shard.local_groups();
            let log = groups.offsets_tp(group);
            // A commit of 2 starts and waits for its append...
            let in_flight = {
                let (shard, groups) = (shard.clone(), std::rc::Rc::clone(&groups));
                glommio::spawn_local(async move {
                    let commit = OffsetCommit {
                        group_id: group.to_owned(),
                        committer: Committer::Outsider,
                        offsets: vec![(TopicPartition::new("t", 0), offset(2, "meta"))],
                    };
                    groups.commit_offsets(&shard, commit).await
                })
            };
            futures_lite::future::yield_now().await;
            // ...while a cleaning rewrites the live commits: it must see 2, not 1.
            groups.clean(&shard, &log).await.expect("cleaned");
            in_flight.await.expect("committed");
        }))
        .expect("coordinator shard runs");
        engine.shutdown().expect("shutdown");
    }
    let engine = start(dir.path());
    assert_eq!(fetch(&engine.handle(), group), vec![(0, 2)]);
    engine.shutdown().expect("shutdown");
}
