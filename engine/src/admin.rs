//! Topic administration on the metadata owner (shard 0).
//!
//! Every change follows one path, [`mutate`]: under the owner's lock, copy the metadata, change
//! the copy, bump its version, persist it (temp file, fsync, rename, directory fsync, on a
//! blocking thread so the shard keeps serving), send it to every shard (each opens or closes its
//! partitions and replaces its read-only copy), then publish the new routes to handles. Only
//! then does the caller get its answer, so a produce issued after `create_topic` returns finds
//! the partition open on its shard.

use std::cell::Cell;

use glommio::sync::Semaphore;

use crate::limits::{PARTITIONS_PER_TOPIC_MAX, PRODUCER_ID_BLOCK};
use crate::metadata::{
    new_topic_uuid, remove_dir_tree, topic_dir, Metadata, TopicMeta, CONSUMER_OFFSETS_TOPIC,
};
use crate::topic::validate_topic_name;
use crate::{EngineError, Result, Shard, TopicConfig, TopicInfo};

/// What only the metadata owner holds.
pub(crate) struct MetadataOwner {
    /// Serialises changes: one persist-and-broadcast at a time.
    lock: Semaphore,
    /// Next producer id to hand out (ids up to the persisted reservation are free to use).
    next_producer_id: Cell<i64>,
}

impl MetadataOwner {
    pub(crate) fn new(metadata: &Metadata) -> Self {
        Self {
            lock: Semaphore::new(1),
            next_producer_id: Cell::new(metadata.producer_ids_reserved),
        }
    }
}

fn owner(shard: &Shard) -> &MetadataOwner {
    shard
        .state()
        .owner
        .as_ref()
        .expect("admin operations run on the metadata owner, shard 0")
}

/// Applies `change` to a copy of the metadata, persists it and sends it to every shard.
async fn mutate<T>(shard: &Shard, change: impl FnOnce(&mut Metadata) -> Result<T>) -> Result<T> {
    let owner = owner(shard);
    let _permit = owner
        .lock
        .acquire_permit(1)
        .await
        .map_err(|_| EngineError::ShuttingDown)?;
    let mut next = shard.state().metadata.borrow().clone();
    let out = change(&mut next)?;
    next.version += 1;
    let data_dir = shard.state().config.data_dir.clone();
    let persisted = next.clone();
    glommio::executor()
        .spawn_blocking(move || persisted.persist(&data_dir))
        .await?;
    broadcast(shard, &next).await?;
    publish_routes(shard, &next);
    Ok(out)
}

/// Sends `metadata` to every shard and waits until each has applied it.
///
/// # Errors
/// The first shard's error (every shard is still updated).
pub(crate) async fn broadcast(shard: &Shard, metadata: &Metadata) -> Result<()> {
    let copy = metadata.clone();
    let results = shard
        .run_on_every_shard(move |s| async move { s.state().apply_metadata(copy).await })
        .await;
    for result in results {
        result??;
    }
    Ok(())
}

/// Publishes the placement to handles.
pub(crate) fn publish_routes(shard: &Shard, metadata: &Metadata) {
    let routes = metadata.routes();
    match shard.state().routes.write() {
        Ok(mut guard) => *guard = routes,
        // A handle thread panicked while reading; the map itself is still whole.
        Err(poisoned) => *poisoned.into_inner() = routes,
    }
}

pub(crate) async fn create_topic(
    shard: &Shard,
    name: &str,
    partitions: u32,
    config: TopicConfig,
) -> Result<TopicInfo> {
    validate_topic_name(name)?;
    check_partition_count(partitions)?;
    config.validate()?;
    let shards = shard.shard_count();
    mutate(shard, |m| {
        if m.topics.contains_key(name) {
            return Err(EngineError::TopicExists(name.to_owned()));
        }
        let placement = m.place(partitions, shards);
        let id = m.next_topic_id;
        m.next_topic_id += 1;
        let meta = TopicMeta {
            id,
            uuid: new_topic_uuid(),
            config,
            internal: false,
            placement,
        };
        m.topics.insert(name.to_owned(), meta);
        Ok(m.topic_info(name).expect("the topic was just inserted"))
    })
    .await
}

pub(crate) async fn delete_topic(shard: &Shard, name: &str) -> Result<()> {
    let removed = mutate(shard, |m| {
        let meta = m
            .topics
            .get(name)
            .ok_or_else(|| EngineError::UnknownTopic(name.to_owned()))?;
        refuse_internal(name, meta)?;
        Ok(m.topics.remove(name).map(|meta| meta.id))
    })
    .await?;
    // Each owning shard removed its partitions' directories; remove the topic's own.
    if let Some(id) = removed {
        let dir = topic_dir(&shard.state().config.data_dir, name, id);
        remove_dir_tree(dir).await?;
    }
    Ok(())
}

pub(crate) async fn create_partitions(shard: &Shard, name: &str, total: u32) -> Result<()> {
    check_partition_count(total)?;
    let shards = shard.shard_count();
    mutate(shard, |m| {
        let meta = m
            .topics
            .get(name)
            .ok_or_else(|| EngineError::UnknownTopic(name.to_owned()))?;
        refuse_internal(name, meta)?;
        let current = meta.placement.len() as u32;
        if total <= current {
            return Err(EngineError::InvalidPartitions {
                count: total,
                reason: format!("topic {name:?} already has {current} partitions"),
            });
        }
        let added = m.place(total - current, shards);
        if let Some(meta) = m.topics.get_mut(name) {
            meta.placement.extend(added);
        }
        Ok(())
    })
    .await
}

pub(crate) async fn alter_topic_config(
    shard: &Shard,
    name: &str,
    config: TopicConfig,
) -> Result<()> {
    config.validate()?;
    mutate(shard, |m| {
        let meta = m
            .topics
            .get_mut(name)
            .ok_or_else(|| EngineError::UnknownTopic(name.to_owned()))?;
        refuse_internal(name, meta)?;
        meta.config = config;
        Ok(())
    })
    .await
}

/// Hands out the next producer id, reserving (and persisting) a new block when the current one
/// is used up, so ids are never reused across restarts.
pub(crate) async fn init_producer_id(shard: &Shard) -> Result<(i64, i16)> {
    let owner = owner(shard);
    let reserved = shard.state().metadata.borrow().producer_ids_reserved;
    if owner.next_producer_id.get() >= reserved {
        mutate(shard, |m| {
            m.producer_ids_reserved =
                m.producer_ids_reserved.max(owner.next_producer_id.get()) + PRODUCER_ID_BLOCK;
            Ok(())
        })
        .await?;
    }
    // Another call may have reserved meanwhile; either way the id is below the reservation.
    let id = owner.next_producer_id.get();
    owner.next_producer_id.set(id + 1);
    assert!(id < shard.state().metadata.borrow().producer_ids_reserved);
    Ok((id, 0))
}

fn check_partition_count(count: u32) -> Result<()> {
    if count == 0 || count > PARTITIONS_PER_TOPIC_MAX {
        return Err(EngineError::InvalidPartitions {
            count,
            reason: format!("must be from 1 to {PARTITIONS_PER_TOPIC_MAX}"),
        });
    }
    Ok(())
}

fn refuse_internal(name: &str, meta: &TopicMeta) -> Result<()> {
    if meta.internal || name == CONSUMER_OFFSETS_TOPIC {
        return Err(EngineError::InvalidTopic {
            name: name.to_owned(),
            reason: "internal topics cannot be changed".to_owned(),
        });
    }
    Ok(())
}
