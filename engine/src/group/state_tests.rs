//! Transitions of the rebalance state machine, driven with an explicit clock.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::group::member::Protocol;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn join_req(member_id: &str, protocols: &[(&str, &'static [u8])]) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: None,
        require_known_member_id: false,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|(name, meta)| Protocol {
                name: (*name).into(),
                metadata: Bytes::from_static(meta),
            })
            .collect(),
    }
}

fn range(meta: &'static [u8]) -> JoinRequest {
    join_req("", &[("range", meta)])
}

fn sync_req(member: &str, generation: i32, assignments: &[(&str, &'static [u8])]) -> SyncRequest {
    SyncRequest {
        group_id: "g".into(),
        generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| ((*m).to_owned(), Bytes::from_static(a)))
            .collect(),
    }
}

fn heartbeat(
    group: &mut Group,
    now: Instant,
    member: &str,
    generation: i32,
) -> Result<(), GroupError> {
    group.heartbeat(
        now,
        &HeartbeatRequest {
            group_id: "g".into(),
            generation,
            member_id: member.into(),
            group_instance_id: None,
        },
    )
}

fn done(reply: Result<JoinReply, GroupError>) -> JoinResponse {
    match reply {
        Ok(JoinReply::Done(r)) => r,
        other => panic!("expected a completed join, got {other:?}"),
    }
}

fn join_notice(notices: &[Notice], member: &str) -> JoinResponse {
    notices
        .iter()
        .find_map(|n| match n {
            Notice::Join {
                member_id,
                result: Ok(r),
            } if member_id == member => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join notice for {member} in {notices:?}"))
}

/// Brings a group to Stable with members "a" (leader) and "b" at generation 2.
fn stable_pair(now: Instant) -> Group {
    let mut g = Group::new("g", Duration::ZERO);
    let first = done(g.join(now, &range(b"meta-a"), "a".into()));
    assert_eq!(first.generation, 1);
    // "b" joins: the group waits for "a" to rejoin.
    assert_eq!(
        g.join(now, &range(b"meta-b"), "b".into()),
        Ok(JoinReply::Wait("b".into()))
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let a = done(g.join(now, &join_req("a", &[("range", b"meta-a")]), "x".into()));
    let b = join_notice(&g.take_notices(), "b");
    assert_eq!((a.generation, b.generation), (2, 2));
    let leader = sync_req("a", 2, &[("a", b"p0"), ("b", b"p1")]);
    assert!(matches!(g.sync(now, &leader), Ok(SyncReply::Done(_))));
    assert_eq!(g.state(), GroupState::Stable);
    g
}

#[test]
fn join_of_two_members_gives_leader_all_metadata_and_followers_none() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    done(g.join(now, &range(b"meta-a"), "a".into()));
    g.join(now, &range(b"meta-b"), "b".into()).unwrap();
    let a = done(g.join(now, &join_req("a", &[("range", b"meta-a")]), "x".into()));
    let b = join_notice(&g.take_notices(), "b");
    assert_eq!(a.leader, "a");
    assert_eq!(b.leader, "a");
    assert_eq!(a.protocol_name, "range");
    let metadata: Vec<(&str, &[u8])> = a
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), m.metadata.as_ref()))
        .collect();
    assert_eq!(metadata, vec![("a", &b"meta-a"[..]), ("b", &b"meta-b"[..])]);
    assert!(b.members.is_empty());
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn sync_distributes_the_leaders_assignments() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    done(g.join(now, &range(b"a"), "a".into()));
    g.join(now, &range(b"b"), "b".into()).unwrap();
    done(g.join(now, &join_req("a", &[("range", b"a")]), "x".into()));
    g.take_notices();
    // The follower syncs first and waits for the leader.
    assert_eq!(g.sync(now, &sync_req("b", 2, &[])), Ok(SyncReply::Wait));
    let leader = g.sync(now, &sync_req("a", 2, &[("a", b"p0"), ("b", b"p1")]));
    match leader {
        Ok(SyncReply::Done(r)) => assert_eq!(r.assignment.as_ref(), b"p0"),
        other => panic!("leader sync: {other:?}"),
    }
    let notices = g.take_notices();
    assert_eq!(notices.len(), 1);
    match &notices[0] {
        Notice::Sync {
            member_id,
            result: Ok(r),
        } => {
            assert_eq!(member_id, "b");
            assert_eq!(r.assignment.as_ref(), b"p1");
        }
        other => panic!("follower notice: {other:?}"),
    }
    // A late sync in Stable gets the stored assignment at once.
    match g.sync(now, &sync_req("b", 2, &[])) {
        Ok(SyncReply::Done(r)) => assert_eq!(r.assignment.as_ref(), b"p1"),
        other => panic!("late sync: {other:?}"),
    }
}

#[test]
fn chosen_protocol_is_supported_by_all_members() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    done(g.join(
        now,
        &join_req("", &[("sticky", b""), ("range", b"")]),
        "a".into(),
    ));
    g.join(
        now,
        &join_req("", &[("range", b""), ("roundrobin", b"")]),
        "b".into(),
    )
    .unwrap();
    let a = done(g.join(
        now,
        &join_req("a", &[("sticky", b""), ("range", b"")]),
        "x".into(),
    ));
    assert_eq!(a.protocol_name, "range");
    // A member sharing no protocol with the group is refused.
    assert_eq!(
        g.join(now, &join_req("", &[("roundrobin", b"")]), "c".into()),
        Err(GroupError::InconsistentGroupProtocol)
    );
}

#[test]
fn heartbeat_during_rebalance_says_rebalance_in_progress() {
    let now = Instant::now();
    let mut g = stable_pair(now);
    assert_eq!(heartbeat(&mut g, now, "a", 2), Ok(()));
    g.join(now, &range(b"c"), "c".into()).unwrap();
    assert_eq!(
        heartbeat(&mut g, now, "a", 2),
        Err(GroupError::RebalanceInProgress)
    );
    assert_eq!(
        heartbeat(&mut g, now, "a", 1),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        heartbeat(&mut g, now, "zz", 2),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn leave_triggers_rebalance_and_remaining_member_gets_everything() {
    let now = Instant::now();
    let mut g = stable_pair(now);
    let left = g.leave(
        now,
        &[MemberIdentity {
            member_id: "b".into(),
            group_instance_id: None,
        }],
    );
    assert_eq!(left, vec![Ok(())]);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        heartbeat(&mut g, now, "a", 2),
        Err(GroupError::RebalanceInProgress)
    );
    let a = done(g.join(now, &join_req("a", &[("range", b"meta-a")]), "x".into()));
    assert_eq!(a.generation, 3);
    assert_eq!(a.leader, "a");
    assert_eq!(a.members.len(), 1);
    let sync = g.sync(now, &sync_req("a", 3, &[("a", b"p0,p1")]));
    match sync {
        Ok(SyncReply::Done(r)) => assert_eq!(r.assignment.as_ref(), b"p0,p1"),
        other => panic!("sync: {other:?}"),
    }
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn last_member_leaving_empties_the_group() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    done(g.join(now, &range(b"a"), "a".into()));
    let who = MemberIdentity {
        member_id: "a".into(),
        group_instance_id: None,
    };
    assert_eq!(g.leave(now, std::slice::from_ref(&who)), vec![Ok(())]);
    assert_eq!(g.state(), GroupState::Empty);
    assert!(g.is_vacant());
    assert_eq!(g.leave(now, &[who]), vec![Err(GroupError::UnknownMemberId)]);
}

#[test]
fn session_expiry_removes_a_member_and_rebalances() {
    let start = Instant::now();
    let mut g = stable_pair(start);
    // Only "a" keeps heartbeating.
    let later = start + SESSION / 2;
    assert_eq!(heartbeat(&mut g, later, "a", 2), Ok(()));
    g.tick(start + SESSION - Duration::from_millis(1));
    assert!(g.has_member("b"));
    let expired = start + SESSION;
    g.tick(expired);
    assert!(!g.has_member("b"));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let a = done(g.join(expired, &join_req("a", &[("range", b"meta-a")]), "x".into()));
    assert_eq!(a.generation, 3);
    assert_eq!(a.members.len(), 1);
}

#[test]
fn rebalance_deadline_drops_members_that_did_not_rejoin() {
    let now = Instant::now();
    let mut g = stable_pair(now);
    g.join(now, &join_req("a", &[("range", b"meta-a")]), "x".into())
        .unwrap();
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    // "b" keeps its session alive with heartbeats but never rejoins.
    let mut t = now;
    while t < now + REBALANCE {
        t += Duration::from_secs(3);
        let _ = heartbeat(&mut g, t, "b", 2);
        g.tick(t);
    }
    assert!(!g.has_member("b"));
    let a = join_notice(&g.take_notices(), "a");
    assert_eq!((a.generation, a.members.len()), (3, 1));
}

#[test]
fn first_join_without_member_id_requires_one() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    let mut req = range(b"a");
    req.require_known_member_id = true;
    assert_eq!(
        g.join(now, &req, "m-1".into()),
        Err(GroupError::MemberIdRequired("m-1".into()))
    );
    req.member_id = "m-1".into();
    let r = done(g.join(now, &req, "unused".into()));
    assert_eq!((r.member_id.as_str(), r.generation), ("m-1", 1));
    // An id never handed out is refused.
    req.member_id = "forged".into();
    assert_eq!(
        g.join(now, &req, "unused".into()),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn static_member_rejoining_fences_its_old_id() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    let mut req = range(b"a");
    req.group_instance_id = Some("instance-1".into());
    let first = done(g.join(now, &req, "old".into()));
    let second = done(g.join(now, &req, "new".into()));
    assert_eq!(second.member_id, "new");
    assert!(second.generation > first.generation);
    assert_eq!(
        g.heartbeat(
            now,
            &HeartbeatRequest {
                group_id: "g".into(),
                generation: second.generation,
                member_id: "old".into(),
                group_instance_id: Some("instance-1".into()),
            }
        ),
        Err(GroupError::FencedInstanceId)
    );
}

/// Brings a group to Stable with static members "a" (instance "inst-a", leader, assigned "p0")
/// and "b" ("inst-b", assigned "p1") at generation 2.
fn static_stable_pair(now: Instant) -> Group {
    let mut g = Group::new("g", Duration::ZERO);
    let mut a = range(b"meta-a");
    a.group_instance_id = Some("inst-a".into());
    done(g.join(now, &a, "a".into()));
    let mut b = range(b"meta-b");
    b.group_instance_id = Some("inst-b".into());
    g.join(now, &b, "b".into()).unwrap();
    a.member_id = "a".into();
    done(g.join(now, &a, "x".into()));
    g.take_notices();
    let mut leader = sync_req("a", 2, &[("a", b"p0"), ("b", b"p1")]);
    leader.group_instance_id = Some("inst-a".into());
    assert!(matches!(g.sync(now, &leader), Ok(SyncReply::Done(_))));
    let mut follower = sync_req("b", 2, &[]);
    follower.group_instance_id = Some("inst-b".into());
    assert!(matches!(g.sync(now, &follower), Ok(SyncReply::Done(_))));
    assert_eq!(g.state(), GroupState::Stable);
    g
}

/// A static member's restart as it reaches the group: no member id, its instance id.
fn restart(instance: &str, meta: &'static [u8]) -> JoinRequest {
    let mut req = range(meta);
    req.group_instance_id = Some(instance.into());
    req
}

fn static_sync(g: &mut Group, now: Instant, member: &str, instance: &str) -> Bytes {
    let mut req = sync_req(member, 2, &[]);
    req.group_instance_id = Some(instance.into());
    match g.sync(now, &req) {
        Ok(SyncReply::Done(r)) => r.assignment,
        other => panic!("expected an assignment, got {other:?}"),
    }
}

#[test]
fn static_member_restarting_into_a_stable_group_keeps_its_assignment() {
    let now = Instant::now();
    let mut g = static_stable_pair(now);
    // The follower comes back under a new id: same generation, same partitions, no rebalance.
    let b = done(g.join(now, &restart("inst-b", b"meta-b"), "b2".into()));
    assert_eq!(
        (b.generation, b.member_id.as_str(), b.skip_assignment),
        (2, "b2", false)
    );
    assert_eq!(g.state(), GroupState::Stable);
    assert!(g.take_notices().is_empty());
    assert_eq!(
        static_sync(&mut g, now, "b2", "inst-b"),
        Bytes::from_static(b"p1")
    );
    let old = HeartbeatRequest {
        group_id: "g".into(),
        generation: 2,
        member_id: "b".into(),
        group_instance_id: Some("inst-b".into()),
    };
    assert_eq!(g.heartbeat(now, &old), Err(GroupError::FencedInstanceId));
    // The leader comes back: it stays leader, sees the members and is told not to reassign.
    let a = done(g.join(now, &restart("inst-a", b"meta-a"), "a2".into()));
    assert_eq!(
        (a.generation, a.leader.as_str(), a.skip_assignment),
        (2, "a2", true)
    );
    assert_eq!(a.members.len(), 2);
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(
        static_sync(&mut g, now, "a2", "inst-a"),
        Bytes::from_static(b"p0")
    );
}

#[test]
fn static_member_restarting_with_another_subscription_rebalances() {
    let now = Instant::now();
    let mut g = static_stable_pair(now);
    let reply = g.join(now, &restart("inst-b", b"meta-b-changed"), "b2".into());
    assert_eq!(reply, Ok(JoinReply::Wait("b2".into())));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert!(!g.has_member("b"));
}

#[test]
fn sync_with_wrong_generation_is_illegal() {
    let now = Instant::now();
    let mut g = stable_pair(now);
    assert_eq!(
        g.sync(now, &sync_req("b", 1, &[])),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.sync(now, &sync_req("nobody", 2, &[])),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn rebalance_before_leader_syncs_tells_waiting_followers_to_rejoin() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    done(g.join(now, &range(b"a"), "a".into()));
    g.join(now, &range(b"b"), "b".into()).unwrap();
    done(g.join(now, &join_req("a", &[("range", b"a")]), "x".into()));
    g.take_notices();
    assert_eq!(g.sync(now, &sync_req("b", 2, &[])), Ok(SyncReply::Wait));
    g.join(now, &range(b"c"), "c".into()).unwrap();
    let notices = g.take_notices();
    assert!(notices.contains(&Notice::Sync {
        member_id: "b".into(),
        result: Err(GroupError::RebalanceInProgress),
    }));
}

#[test]
fn session_timeout_out_of_range_is_refused() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    let mut req = range(b"a");
    req.session_timeout = Duration::from_millis(10);
    assert_eq!(
        g.join(now, &req, "a".into()),
        Err(GroupError::InvalidSessionTimeout)
    );
}

#[test]
fn commits_are_checked_against_member_and_generation() {
    let now = Instant::now();
    let mut g = stable_pair(now);
    assert_eq!(g.check_commit(now, "a", None, 2), Ok(()));
    assert_eq!(
        g.check_commit(now, "a", None, 1),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.check_commit(now, "stranger", None, 2),
        Err(GroupError::UnknownMemberId)
    );
    // While members rejoin, the current generation may still commit.
    g.join(now, &range(b"c"), "c".into()).unwrap();
    assert_eq!(g.check_commit(now, "b", None, 2), Ok(()));
    g.join(now, &join_req("a", &[("range", b"meta-a")]), "x".into())
        .unwrap();
    g.join(now, &join_req("b", &[("range", b"meta-b")]), "x".into())
        .unwrap();
    // Between join and sync it may not.
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(
        g.check_commit(now, "a", None, 3),
        Err(GroupError::RebalanceInProgress)
    );
}

#[test]
fn first_join_waits_the_initial_delay_for_more_members() {
    let start = Instant::now();
    let delay = Duration::from_secs(3);
    let mut g = Group::new("g", delay);
    assert_eq!(
        g.join(start, &range(b"a"), "a".into()),
        Ok(JoinReply::Wait("a".into()))
    );
    // A second member joining during the delay extends it.
    let second = start + Duration::from_secs(2);
    assert_eq!(
        g.join(second, &range(b"b"), "b".into()),
        Ok(JoinReply::Wait("b".into()))
    );
    g.tick(start + delay);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    g.tick(second + delay);
    let notices = g.take_notices();
    let a = join_notice(&notices, "a");
    let b = join_notice(&notices, "b");
    assert_eq!((a.generation, b.generation), (1, 1));
    assert_eq!(a.members.len(), 2);
    // Later rebalances are not delayed: they complete once everyone has rejoined.
    let now = second + delay;
    let c = g.join(now, &range(b"c"), "c".into()).unwrap();
    assert_eq!(c, JoinReply::Wait("c".into()));
    g.join(now, &join_req("a", &[("range", b"a")]), "x".into())
        .unwrap();
    let b = done(g.join(now, &join_req("b", &[("range", b"b")]), "x".into()));
    assert_eq!(b.generation, 2);
}

#[test]
fn joins_and_syncs_beyond_the_limits_are_refused_and_the_group_stays_as_it_was() {
    let now = Instant::now();
    let mut g = stable_pair(now);
    // Too many protocols.
    let mut many = join_req("", &[]);
    many.protocols = (0..=crate::group::limits::PROTOCOLS_PER_MEMBER_MAX)
        .map(|i| Protocol {
            name: format!("p{i}"),
            metadata: Bytes::new(),
        })
        .collect();
    let err = g.join(now, &many, "c".into()).unwrap_err();
    assert!(matches!(err, GroupError::InvalidRequest(_)), "{err:?}");
    assert_eq!(err.kafka_code(), 42, "INVALID_REQUEST");
    // Too much metadata.
    let mut fat = join_req("", &[]);
    fat.protocols = vec![Protocol {
        name: "range".into(),
        metadata: Bytes::from(vec![
            0u8;
            crate::group::limits::MEMBER_METADATA_BYTES_MAX + 1
        ]),
    }];
    let err = g.join(now, &fat, "d".into()).unwrap_err();
    assert!(matches!(err, GroupError::InvalidRequest(_)), "{err:?}");
    assert_eq!(g.state(), GroupState::Stable);
    // A leader's assignment too large for one member.
    let mut sync = sync_req("a", 2, &[("a", b"p0")]);
    sync.assignments.push((
        "b".to_owned(),
        Bytes::from(vec![
            0u8;
            crate::group::limits::MEMBER_METADATA_BYTES_MAX + 1
        ]),
    ));
    let err = g.sync(now, &sync).unwrap_err();
    assert!(matches!(err, GroupError::InvalidRequest(_)), "{err:?}");
    assert_eq!(g.state(), GroupState::Stable);
    assert!(heartbeat(&mut g, now, "b", 2).is_ok());
}

#[test]
fn a_change_a_restart_must_see_is_flagged_once() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    done(g.join(now, &range(b"meta-a"), "a".into()));
    // Between join and sync there is nothing to store yet.
    assert!(!g.take_changed());
    assert!(matches!(
        g.sync(now, &sync_req("a", 1, &[("a", b"p0")])),
        Ok(SyncReply::Done(_))
    ));
    assert!(g.take_changed(), "a generation became Stable");
    assert!(!g.take_changed(), "taken once");
    assert_eq!(heartbeat(&mut g, now, "a", 1), Ok(()));
    assert!(!g.take_changed(), "a heartbeat changes nothing stored");
    assert_eq!(
        g.leave(
            now,
            &[MemberIdentity {
                member_id: "a".into(),
                group_instance_id: None,
            }]
        ),
        vec![Ok(())]
    );
    assert!(g.take_changed(), "the last member went");
    let mut g = static_stable_pair(now);
    assert!(g.take_changed());
    done(g.join(now, &restart("inst-b", b"meta-b"), "b2".into()));
    assert!(g.take_changed(), "a static member took over its slot");
}

#[test]
fn a_stored_group_is_restored_stable_with_its_members_and_assignments() {
    let before = Instant::now();
    let g = static_stable_pair(before);
    let later = before + Duration::from_secs(60);
    let stored = match crate::group::membership::decode(
        &crate::group::membership::encode(&g).expect("small"),
        later,
    ) {
        Ok(crate::group::membership::Stored::Classic(stored)) => stored,
        other => panic!("not restored as a classic group: {other:?}"),
    };
    let mut restored = Group::restore("g", Duration::ZERO, stored);
    assert_eq!(restored.state(), GroupState::Stable);
    assert_eq!(restored.generation(), 2);
    assert_eq!(restored.described_protocol(), "range");
    assert_eq!(restored.leader(), Some("a"));
    let described: Vec<(String, Option<String>, Bytes, Bytes)> = restored
        .describe_members()
        .into_iter()
        .map(|m| (m.member_id, m.group_instance_id, m.metadata, m.assignment))
        .collect();
    assert_eq!(
        described,
        vec![
            (
                "a".into(),
                Some("inst-a".into()),
                "meta-a".into(),
                "p0".into()
            ),
            (
                "b".into(),
                Some("inst-b".into()),
                "meta-b".into(),
                "p1".into()
            ),
        ]
    );
    // Members heartbeat on at their generation; sessions start at the restore, not before.
    assert_eq!(heartbeat(&mut restored, later, "b", 2), Ok(()));
    restored.tick(later + SESSION - Duration::from_millis(1));
    assert_eq!(restored.state(), GroupState::Stable);
    // Static members keep their slots: a restart of an instance is a takeover, not a stranger.
    let midway = later + SESSION / 2;
    let b = done(restored.join(midway, &restart("inst-b", b"meta-b"), "b2".into()));
    assert_eq!((b.generation, b.member_id.as_str()), (2, "b2"));
    // A member that does not come back expires a session after the restore; the rest rebalance.
    restored.tick(later + SESSION);
    assert_eq!(restored.state(), GroupState::PreparingRebalance);
    assert!(!restored.has_member("a"));
}

#[test]
fn a_damaged_membership_record_is_refused_by_name() {
    let now = Instant::now();
    let value = crate::group::membership::encode(&stable_pair(now)).expect("small");
    assert!(crate::group::membership::decode(&value, now).is_ok());
    for cut in [1, 6, value.len() / 2, value.len() - 1] {
        assert_eq!(
            crate::group::membership::decode(&value[..cut], now).map(drop),
            Err(crate::group::record::DecodeError::Truncated),
            "cut at {cut}"
        );
    }
    let mut long = value.to_vec();
    long.push(0);
    assert_eq!(
        crate::group::membership::decode(&long, now).map(drop),
        Err(crate::group::record::DecodeError::TrailingBytes)
    );
    let mut newer = value.to_vec();
    newer[1] = 9;
    assert_eq!(
        crate::group::membership::decode(&newer, now).map(drop),
        Err(crate::group::record::DecodeError::UnknownVersion(9))
    );
}

#[test]
fn a_group_too_large_to_store_is_not_encoded() {
    let now = Instant::now();
    let mut g = Group::new("g", Duration::ZERO);
    let large = |member_id: &str| {
        let mut req = join_req(member_id, &[("range", b"")]);
        req.protocols[0].metadata = Bytes::from(vec![7u8; 600 << 10]);
        req
    };
    done(g.join(now, &large(""), "a".into()));
    assert!(matches!(
        g.sync(now, &sync_req("a", 1, &[("a", b"p0")])),
        Ok(SyncReply::Done(_))
    ));
    assert!(
        crate::group::membership::encode(&g).is_some(),
        "one member fits"
    );
    g.join(now, &large(""), "b".into()).unwrap();
    done(g.join(now, &large("a"), "x".into()));
    assert!(matches!(
        g.sync(now, &sync_req("a", 2, &[("a", b"p0"), ("b", b"p1")])),
        Ok(SyncReply::Done(_))
    ));
    assert_eq!(g.state(), GroupState::Stable);
    assert!(crate::group::membership::encode(&g).is_none(), "two do not");
}
