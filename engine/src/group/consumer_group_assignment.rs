//! Partition assignments of the consumer protocol: the coordinator's assignor ([`assign`], for
//! both of the names a member may ask for) and the set operations reconciliation moves members
//! with.

use std::collections::{BTreeMap, BTreeSet};

use super::super::consumer_protocol::Partitions;
use super::Assignment;

/// Whether every partition of `a` is in `b`.
pub(super) fn within(a: &Assignment, b: &Assignment) -> bool {
    a.iter().all(|(topic, partitions)| {
        b.get(topic)
            .is_some_and(|theirs| partitions.is_subset(theirs))
            || partitions.is_empty()
    })
}

/// Whether `a` and `b` share a partition.
pub(super) fn overlaps(a: &Assignment, b: &Assignment) -> bool {
    a.iter().any(|(topic, partitions)| {
        b.get(topic)
            .is_some_and(|theirs| !partitions.is_disjoint(theirs))
    })
}

/// The partitions of `a` that are not in `b`.
pub(super) fn difference(a: &Assignment, b: &Assignment) -> Assignment {
    a.iter()
        .filter_map(|(topic, partitions)| {
            let left: BTreeSet<u32> = match b.get(topic) {
                Some(theirs) => partitions.difference(theirs).copied().collect(),
                None => partitions.clone(),
            };
            (!left.is_empty()).then(|| (topic.clone(), left))
        })
        .collect()
}

/// The target assignment: each topic's partitions spread over the members subscribed to it, as
/// evenly as they divide (counts differ by at most one), each member first keeping what
/// `previous` gave it while its share allows, the rest going to the members with the fewest.
pub fn assign(
    subscriptions: &BTreeMap<&str, &BTreeSet<String>>,
    partitions: &BTreeMap<String, u32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> = subscriptions
        .keys()
        .map(|id| ((*id).to_owned(), Assignment::new()))
        .collect();
    for (topic, &count) in partitions {
        let subscribers: Vec<&str> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(id, _)| *id)
            .collect();
        if subscribers.is_empty() || count == 0 {
            continue;
        }
        let members = u32::try_from(subscribers.len()).unwrap_or(u32::MAX);
        let base = count / members;
        let mut extra = count % members;
        let mut owner: Vec<Option<usize>> = vec![None; count as usize];
        let mut counts = vec![0u32; subscribers.len()];
        let take = |i: usize, counts: &mut Vec<u32>, extra: &mut u32| {
            if counts[i] < base {
                counts[i] += 1;
                true
            } else if counts[i] == base && *extra > 0 {
                counts[i] += 1;
                *extra -= 1;
                true
            } else {
                false
            }
        };
        for (i, id) in subscribers.iter().enumerate() {
            let kept = previous
                .get(*id)
                .and_then(|a| a.get(topic))
                .into_iter()
                .flatten();
            for &p in kept {
                let Some(slot) = owner.get_mut(p as usize) else {
                    continue;
                };
                if slot.is_none() && take(i, &mut counts, &mut extra) {
                    *slot = Some(i);
                }
            }
        }
        for slot in owner.iter_mut().filter(|s| s.is_none()) {
            let fewest = (0..subscribers.len())
                .filter(|&i| counts[i] < base || (counts[i] == base && extra > 0))
                .min_by_key(|&i| counts[i]);
            if let Some(i) = fewest {
                take(i, &mut counts, &mut extra);
                *slot = Some(i);
            }
        }
        for (p, slot) in owner.iter().enumerate() {
            if let Some(i) = slot {
                if let Some(assignment) = target.get_mut(subscribers[*i]) {
                    assignment
                        .entry(topic.clone())
                        .or_default()
                        .insert(u32::try_from(p).unwrap_or(u32::MAX));
                }
            }
        }
    }
    target
}

/// Partitions by topic as the classic consumer protocol decodes them, as sets; topics with no
/// partition left out.
pub(super) fn as_sets(topics: Partitions) -> Assignment {
    topics
        .into_iter()
        .filter(|(_, partitions)| !partitions.is_empty())
        .map(|(topic, partitions)| (topic, partitions.into_iter().collect()))
        .collect()
}

/// An assignment as the classic consumer protocol encodes it: partition lists by topic.
pub(super) fn as_lists(assigned: &Assignment) -> Partitions {
    assigned
        .iter()
        .map(|(topic, partitions)| (topic.clone(), partitions.iter().copied().collect()))
        .collect()
}
