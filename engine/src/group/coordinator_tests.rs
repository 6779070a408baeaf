//! The coordinator's waiting requests: joins parked until the rebalance completes, follower
//! syncs parked until the leader's assignment arrives, and expiry through the timer's tick.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use super::*;
use crate::group::member::Protocol;

/// The topics of these tests' node: none (classic groups do not look).
static NO_TOPICS: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();

/// A node's configuration with these group settings.
fn config(initial_delay: Duration, offsets_retention: Option<Duration>) -> crate::EngineConfig {
    crate::EngineConfig {
        group_initial_rebalance_delay: initial_delay,
        offsets_retention,
        ..crate::EngineConfig::default()
    }
}

fn coordinator() -> Rc<GroupCoordinator> {
    Rc::new(GroupCoordinator::new(
        1,
        Replayed::default(),
        0,
        &config(Duration::ZERO, None),
    ))
}

fn join_req(member_id: &str, require_known_member_id: bool) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: None,
        require_known_member_id,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(60),
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"sub"),
        }],
    }
}

fn sync_req(member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        group_id: "g".into(),
        generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    }
}

/// Spawns `fut` and returns the slot its output lands in.
fn spawn<T: 'static>(
    pool: &LocalPool,
    fut: impl std::future::Future<Output = T> + 'static,
) -> Rc<RefCell<Option<T>>> {
    let slot = Rc::new(RefCell::new(None));
    let out = Rc::clone(&slot);
    pool.spawner()
        .spawn_local(async move {
            let value = fut.await;
            *out.borrow_mut() = Some(value);
        })
        .unwrap();
    slot
}

#[test]
fn waiting_join_and_sync_are_answered_when_the_group_moves_on() {
    let c = coordinator();
    let mut pool = LocalPool::new();
    // KIP-394: the first join gets an id to come back with.
    let a_id = match pool.run_until(c.join(&NO_TOPICS, join_req("", true))) {
        Err(GroupError::MemberIdRequired(id)) => id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    assert!(a_id.starts_with("c-"));
    let a = pool
        .run_until(c.join(&NO_TOPICS, join_req(&a_id, true)))
        .unwrap();
    assert_eq!(a.generation, 1);
    let leader_sync = sync_req(&a_id, 1, vec![(a_id.clone(), Bytes::from_static(b"all"))]);
    pool.run_until(c.sync(leader_sync)).unwrap();

    // A second member's join waits until the first rejoins.
    let b = {
        let c = Rc::clone(&c);
        spawn(&pool, async move {
            c.join(&NO_TOPICS, join_req("", false)).await
        })
    };
    pool.run_until_stalled();
    assert!(b.borrow().is_none());
    let hb = HeartbeatRequest {
        group_id: "g".into(),
        generation: 1,
        member_id: a_id.clone(),
        group_instance_id: None,
    };
    assert_eq!(c.heartbeat(&hb), Err(GroupError::RebalanceInProgress));
    let a = pool
        .run_until(c.join(&NO_TOPICS, join_req(&a_id, true)))
        .unwrap();
    pool.run_until_stalled();
    let b = b.borrow_mut().take().unwrap().unwrap();
    assert_eq!((a.generation, b.generation), (2, 2));
    assert_eq!(a.members.len(), 2);
    assert!(b.members.is_empty());

    // The follower's sync waits for the leader's.
    let b_sync = {
        let c = Rc::clone(&c);
        let req = sync_req(&b.member_id, 2, Vec::new());
        spawn(&pool, async move { c.sync(req).await })
    };
    pool.run_until_stalled();
    assert!(b_sync.borrow().is_none());
    let assignments = vec![
        (a_id.clone(), Bytes::from_static(b"p0")),
        (b.member_id.clone(), Bytes::from_static(b"p1")),
    ];
    let mine = pool
        .run_until(c.sync(sync_req(&a_id, 2, assignments)))
        .unwrap();
    pool.run_until_stalled();
    let theirs = b_sync.borrow_mut().take().unwrap().unwrap();
    assert_eq!(
        (mine.assignment.as_ref(), theirs.assignment.as_ref()),
        (&b"p0"[..], &b"p1"[..])
    );

    let described = c.describe_group("g");
    assert_eq!(described.state, GroupState::Stable);
    assert_eq!(described.members.len(), 2);
    assert_eq!(c.list_groups().len(), 1);
}

#[test]
fn tick_expires_silent_members_and_answers_their_waiting_joins() {
    let c = coordinator();
    let mut pool = LocalPool::new();
    let a = pool
        .run_until(c.join(&NO_TOPICS, join_req("", false)))
        .unwrap();
    pool.run_until(c.sync(sync_req(&a.member_id, 1, Vec::new())))
        .unwrap();
    let b = {
        let c = Rc::clone(&c);
        spawn(&pool, async move {
            c.join(&NO_TOPICS, join_req("", false)).await
        })
    };
    pool.run_until_stalled();
    // "a" never rejoins nor heartbeats: its session lapses, and the join of "b" completes
    // without it.
    c.tick(Instant::now() + Duration::from_secs(11));
    pool.run_until_stalled();
    let b = b.borrow_mut().take().unwrap().unwrap();
    assert_eq!(b.generation, 2);
    assert_eq!(b.leader, b.member_id);
    let hb = HeartbeatRequest {
        group_id: "g".into(),
        generation: 2,
        member_id: a.member_id,
        group_instance_id: None,
    };
    assert_eq!(c.heartbeat(&hb), Err(GroupError::UnknownMemberId));
}

#[test]
fn unknown_group_is_dead_and_requests_on_it_are_refused() {
    let c = coordinator();
    let hb = HeartbeatRequest {
        group_id: "nope".into(),
        generation: 1,
        member_id: "m".into(),
        group_instance_id: None,
    };
    assert_eq!(c.heartbeat(&hb), Err(GroupError::UnknownMemberId));
    assert_eq!(c.describe_group("nope").state, GroupState::Dead);
    assert_eq!(c.deletable("nope"), Err(GroupError::GroupIdNotFound));
    // A join that fails leaves no group behind.
    let mut pool = LocalPool::new();
    let mut req = join_req("", false);
    req.group_id = "nope".into();
    req.protocols.clear();
    assert!(pool.run_until(c.join(&NO_TOPICS, req)).is_err());
    assert!(c.list_groups().is_empty());
}

#[test]
fn a_kafka_commit_is_an_outsiders_only_without_generation_member_or_instance() {
    assert_eq!(Committer::from_kafka(-1, "", None), Committer::Outsider);
    let member = |generation, id: &str, instance: Option<&str>| Committer::Member {
        generation,
        member_id: id.to_owned(),
        group_instance_id: instance.map(str::to_owned),
    };
    // Naming a member or an instance claims membership, checked as such (as Kafka does).
    assert_eq!(Committer::from_kafka(-1, "m", None), member(-1, "m", None));
    assert_eq!(
        Committer::from_kafka(-1, "", Some("i")),
        member(-1, "", Some("i"))
    );
    assert_eq!(Committer::from_kafka(3, "m", None), member(3, "m", None));
}

#[test]
fn an_outsider_may_commit_until_someone_has_joined() {
    let c = coordinator();
    let mut pool = LocalPool::new();
    let outsider = || OffsetCommit {
        group_id: "g".into(),
        committer: Committer::Outsider,
        offsets: Vec::new(),
    };
    // An id handed out with MEMBER_ID_REQUIRED is no member yet (Kafka's group is still Empty).
    let id = match pool.run_until(c.join(&NO_TOPICS, join_req("", true))) {
        Err(GroupError::MemberIdRequired(id)) => id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    assert_eq!(c.check_commit(&outsider()), Ok(()));
    // Once it has joined, the outsider's commit would race the member's own.
    let joined = spawn(&pool, {
        let c = Rc::clone(&c);
        async move { c.join(&NO_TOPICS, join_req(&id, true)).await }
    });
    pool.run_until_stalled();
    assert!(
        joined.borrow().is_some(),
        "the join completes at once (no initial delay)"
    );
    assert_eq!(
        c.check_commit(&outsider()),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn offsets_expire_a_retention_after_the_last_commit_members_or_start() {
    let retention = Duration::from_secs(60);
    let c = Rc::new(GroupCoordinator::new(
        1,
        Replayed::default(),
        0,
        &config(Duration::ZERO, Some(retention)),
    ));
    let long_ago = CommittedOffset {
        offset: 1,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp_ms: 0,
    };
    let tp = TopicPartition::new("t", 0);
    for group in ["idle", "g"] {
        c.store_offset(group, tp.clone(), long_ago.clone(), 0);
    }
    let mut pool = LocalPool::new();
    pool.run_until(c.join(&NO_TOPICS, join_req("", false)))
        .unwrap(); // "g" has a member
    let now = super::super::commit::unix_ms();
    let later = now + 2 * 60_000;
    // Commits from long ago, but the coordinator has just started: nothing goes yet.
    assert!(c.expired_groups(now).is_empty());
    // A retention after the start, the group without members goes; "g", seen with a member
    // at the last look, stays.
    assert_eq!(c.expired_groups(later), ["idle"]);
    // Once "g" has no member, it still has a retention from when it was last seen with one.
    c.tick(Instant::now() + Duration::from_secs(11));
    assert_eq!(c.describe_group("g").members.len(), 0);
    assert_eq!(c.expired_groups(later + 30_000), ["idle"]);
    let mut both = c.expired_groups(later + 61_000);
    both.sort();
    assert_eq!(both, ["g", "idle"]);
}
