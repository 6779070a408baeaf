//! [`Metadata`]: topics, their partitions' placement on shards, and the producer-id
//! reservation, with the file that persists them.
//!
//! One shard (shard 0) owns the metadata; every shard holds a read-only copy that the owner
//! replaces by message after each change (see `admin.rs`). The copy is versioned so that a
//! shard never goes back to an older one.
//!
//! The file (`metadata.json` in the data directory) is Spindle's own: a JSON envelope holding
//! the body as a string and its CRC-32 (crc32fast), so a torn or edited file is refused rather
//! than half-read. It is replaced atomically: written to a temporary file, synced, renamed over
//! the old one, and the directory synced so the rename itself survives a power loss.
//!
//! A partition's directory does not depend on its shard (`topics/<name>-<id>/<partition>`), so
//! a restart with a different shard count only re-places partitions; no data moves.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::limits::{OFFSETS_PARTITIONS_MIN, OFFSETS_SEGMENT_BYTES};
use crate::{EngineError, Result, ShardId, TopicConfig, TopicInfo};

/// The internal topic holding committed consumer offsets: one partition per shard, partition
/// `i` on shard `i`.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

const FILE_NAME: &str = "metadata.json";
const FORMAT: u32 = 1;

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicMeta {
    /// Unique for the engine's lifetime: a topic deleted and created again gets a new id, hence
    /// a new directory.
    pub id: u64,
    /// Kafka's topic id (KIP-516): a random version-4 UUID, never zero, that clients use to
    /// tell a topic from a later one of the same name.
    pub uuid: u128,
    pub config: TopicConfig,
    pub internal: bool,
    /// The owning shard of each partition, by partition index.
    pub placement: Vec<ShardId>,
}

/// Every topic and the producer-id reservation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metadata {
    /// Bumped on every change.
    pub version: u64,
    pub next_topic_id: u64,
    /// Producer ids below this are reserved (possibly handed out); the next start begins here.
    pub producer_ids_reserved: i64,
    pub topics: BTreeMap<String, TopicMeta>,
}

impl Metadata {
    /// The shard owning `partition` of `topic`.
    pub(crate) fn owner_of(&self, topic: &str, partition: u32) -> Option<ShardId> {
        let meta = self.topics.get(topic)?;
        meta.placement.get(partition as usize).copied()
    }

    /// A topic as listed.
    pub(crate) fn topic_info(&self, name: &str) -> Option<TopicInfo> {
        self.topics.get(name).map(|meta| info(name, meta))
    }

    /// Every topic as listed, by name.
    pub(crate) fn topic_infos(&self) -> Vec<TopicInfo> {
        self.topics
            .iter()
            .map(|(name, meta)| info(name, meta))
            .collect()
    }

    /// Shards for `count` new partitions: each goes to the shard owning the fewest partitions
    /// so far (the lowest index on a tie), so partitions spread evenly.
    pub(crate) fn place(&self, count: u32, shards: usize) -> Vec<ShardId> {
        let mut load = vec![0usize; shards];
        for meta in self.topics.values() {
            for shard in &meta.placement {
                if let Some(n) = load.get_mut(shard.0 as usize) {
                    *n += 1;
                }
            }
        }
        (0..count)
            .map(|_| {
                let (best, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|(i, n)| (**n, *i))
                    .unwrap_or((0, &0));
                load[best] += 1;
                ShardId(best as u32)
            })
            .collect()
    }

    /// Makes the metadata fit `shards` shards: partitions placed on shards that no longer
    /// exist move to `partition % shards`, and the offsets topic is created at first start
    /// (with `max(OFFSETS_PARTITIONS_MIN, shards)` partitions, a count it keeps) and spread
    /// over the shards, partition *p* on shard `p % shards`. Topics from a file written before
    /// topic ids get theirs. Returns whether anything changed.
    pub(crate) fn fit_to_shards(&mut self, shards: usize) -> bool {
        let mut changed = false;
        for meta in self.topics.values_mut() {
            for (p, shard) in meta.placement.iter_mut().enumerate() {
                if shard.0 as usize >= shards {
                    *shard = ShardId((p % shards) as u32);
                    changed = true;
                }
            }
        }
        for meta in self.topics.values_mut().filter(|meta| meta.uuid == 0) {
            meta.uuid = new_topic_uuid();
            changed = true;
        }
        let offsets = self
            .topics
            .entry(CONSUMER_OFFSETS_TOPIC.to_owned())
            .or_insert_with(|| {
                changed = true;
                let id = self.next_topic_id;
                self.next_topic_id += 1;
                TopicMeta {
                    id,
                    uuid: new_topic_uuid(),
                    config: TopicConfig {
                        // Committed offsets must outlive any retention.
                        retention_ms: None,
                        retention_bytes: None,
                        segment_bytes: OFFSETS_SEGMENT_BYTES,
                        ..TopicConfig::default()
                    },
                    internal: true,
                    placement: vec![ShardId(0); OFFSETS_PARTITIONS_MIN.max(shards)],
                }
            });
        // Data directories from before the offsets log was cleaned have the default segments.
        if offsets.config.segment_bytes != OFFSETS_SEGMENT_BYTES {
            offsets.config.segment_bytes = OFFSETS_SEGMENT_BYTES;
            changed = true;
        }
        for (p, shard) in offsets.placement.iter_mut().enumerate() {
            let spread = ShardId((p % shards) as u32);
            if *shard != spread {
                *shard = spread;
                changed = true;
            }
        }
        changed
    }

    /// The owning shard of every partition, by topic (what handles route by).
    pub(crate) fn routes(&self) -> HashMap<Arc<str>, Vec<ShardId>> {
        self.topics
            .iter()
            .map(|(name, meta)| (Arc::from(name.as_str()), meta.placement.clone()))
            .collect()
    }

    /// Reads the metadata file in `data_dir`; `None` when there is none yet.
    ///
    /// # Errors
    /// I/O, a checksum mismatch or a body that does not parse.
    pub(crate) fn load(data_dir: &Path) -> Result<Option<Metadata>> {
        let path = data_dir.join(FILE_NAME);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format!("reading {}", path.display()), e)),
        };
        let corrupt = |why: String| {
            io_error(
                format!("metadata file {}", path.display()),
                std::io::Error::new(std::io::ErrorKind::InvalidData, why),
            )
        };
        let envelope: Envelope =
            serde_json::from_str(&text).map_err(|e| corrupt(format!("not an envelope: {e}")))?;
        if envelope.format != FORMAT {
            return Err(corrupt(format!("unknown format {}", envelope.format)));
        }
        let crc = crc32fast::hash(envelope.body.as_bytes());
        if crc != envelope.crc32 {
            return Err(corrupt(format!(
                "checksum mismatch: stored {:#010x}, computed {crc:#010x}",
                envelope.crc32
            )));
        }
        let body: Body =
            serde_json::from_str(&envelope.body).map_err(|e| corrupt(format!("bad body: {e}")))?;
        body.into_metadata().map(Some)
    }

    /// Replaces the metadata file in `data_dir` atomically and durably.
    ///
    /// # Errors
    /// I/O.
    pub(crate) fn persist(&self, data_dir: &Path) -> Result<()> {
        let body = serde_json::to_string(&Body::from_metadata(self))
            .map_err(|e| io_error("encoding metadata".to_owned(), e.into()))?;
        let envelope = Envelope {
            format: FORMAT,
            crc32: crc32fast::hash(body.as_bytes()),
            body,
        };
        let text = serde_json::to_string_pretty(&envelope)
            .map_err(|e| io_error("encoding metadata".to_owned(), e.into()))?;
        crate::durable_file::replace(&data_dir.join(FILE_NAME), text.as_bytes())
    }
}

/// Where a topic's partitions live.
pub(crate) fn topic_dir(data_dir: &Path, name: &str, id: u64) -> PathBuf {
    data_dir.join("topics").join(format!("{name}-{id}"))
}

/// Where deleted partitions' directories wait to be freed.
pub(crate) fn trash_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("trash")
}

/// Moves a deleted partition's directory into the trash at once, and frees it in the background
/// a step at a time (`spindle_log::remove_in_background`): unlinking gigabytes at once stalls
/// every write to the disk (docs/FORMAT.md, "Retired segments"), and the deletion of a large
/// topic would outlast a client's request timeout. Whatever a shutdown interrupts is freed at
/// the next start ([`empty_trash`]).
///
/// # Errors
/// I/O creating the trash or renaming into it (a directory already gone is fine).
pub(crate) async fn discard_dir(data_dir: &Path, dir: &Path) -> Result<()> {
    let trash = trash_dir(data_dir);
    fs::create_dir_all(&trash).map_err(|e| io_error(format!("creating {}", trash.display()), e))?;
    // topics/<name>-<id>/<partition> becomes trash/<name>-<id>-<partition>: unique, since a
    // topic id is never reused.
    let name = match (dir.parent().and_then(Path::file_name), dir.file_name()) {
        (Some(topic), Some(partition)) => format!(
            "{}-{}",
            topic.to_string_lossy(),
            partition.to_string_lossy()
        ),
        _ => dir.to_string_lossy().replace('/', "_"),
    };
    let target = trash.join(name);
    match fs::rename(dir, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(io_error(
                format!("moving {} to the trash", dir.display()),
                e,
            ))
        }
    }
    spindle_log::remove_in_background(target);
    Ok(())
}

/// Frees what an earlier run left in the trash, in the background.
pub(crate) fn empty_trash(data_dir: &Path) {
    if let Ok(entries) = fs::read_dir(trash_dir(data_dir)) {
        for entry in entries.flatten() {
            spindle_log::remove_in_background(entry.path());
        }
    }
}

/// Removes a directory tree on glommio's blocking thread pool, so a large tree does not stall
/// the shard; a tree that is already gone counts as removed.
///
/// # Errors
/// I/O other than "not found".
pub(crate) async fn remove_dir_tree(dir: PathBuf) -> Result<()> {
    glommio::executor()
        .spawn_blocking(move || match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("removing {}", dir.display()), e)),
        })
        .await
}

/// A new Kafka topic id: a random version-4 UUID (never zero: its version bits are set).
pub(crate) fn new_topic_uuid() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

pub(crate) fn io_error(context: String, source: std::io::Error) -> EngineError {
    EngineError::Io { context, source }
}

fn info(name: &str, meta: &TopicMeta) -> TopicInfo {
    TopicInfo {
        name: name.to_owned(),
        topic_id: meta.uuid,
        partitions: meta.placement.len() as u32,
        config: meta.config.clone(),
        internal: meta.internal,
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: u32,
    crc32: u32,
    body: String,
}

#[derive(Serialize, Deserialize)]
struct Body {
    version: u64,
    next_topic_id: u64,
    producer_ids_reserved: i64,
    topics: Vec<TopicRecord>,
}

#[derive(Serialize, Deserialize)]
struct TopicRecord {
    name: String,
    id: u64,
    /// The topic id as 32 hex digits; absent in files written before topic ids were assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uuid: Option<String>,
    internal: bool,
    placement: Vec<u32>,
    config: BTreeMap<String, String>,
}

impl Body {
    fn from_metadata(m: &Metadata) -> Body {
        Body {
            version: m.version,
            next_topic_id: m.next_topic_id,
            producer_ids_reserved: m.producer_ids_reserved,
            topics: m
                .topics
                .iter()
                .map(|(name, t)| TopicRecord {
                    name: name.clone(),
                    id: t.id,
                    uuid: Some(format!("{:032x}", t.uuid)),
                    internal: t.internal,
                    placement: t.placement.iter().map(|s| s.0).collect(),
                    config: t
                        .config
                        .entries()
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                })
                .collect(),
        }
    }

    fn into_metadata(self) -> Result<Metadata> {
        let mut topics = BTreeMap::new();
        for record in self.topics {
            // The name becomes a directory name: the file's checksum guards against damage,
            // not against a name no topic could have been created with.
            crate::topic::validate_topic_name(&record.name)?;
            let mut config = TopicConfig::default();
            for (key, value) in &record.config {
                config.set(key, value)?;
            }
            // Zero for a file from before topic ids: `fit_to_shards` gives the topic one.
            let uuid = match &record.uuid {
                None => 0,
                Some(hex) => u128::from_str_radix(hex, 16)
                    .ok()
                    .filter(|&id| id != 0)
                    .ok_or_else(|| {
                        io_error(
                            format!("topic {}", record.name),
                            std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                format!("bad topic id {hex:?} in the metadata file"),
                            ),
                        )
                    })?,
            };
            topics.insert(
                record.name,
                TopicMeta {
                    id: record.id,
                    uuid,
                    config,
                    internal: record.internal,
                    placement: record.placement.into_iter().map(ShardId).collect(),
                },
            );
        }
        Ok(Metadata {
            version: self.version,
            next_topic_id: self.next_topic_id,
            producer_ids_reserved: self.producer_ids_reserved,
            topics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Metadata::default();
        m.fit_to_shards(3);
        let placement = m.place(4, 3);
        m.topics.insert(
            "t".to_owned(),
            TopicMeta {
                id: 9,
                uuid: new_topic_uuid(),
                config: TopicConfig::default(),
                internal: false,
                placement,
            },
        );
        m.persist(dir.path()).unwrap();
        assert_eq!(Metadata::load(dir.path()).unwrap(), Some(m));

        let path = dir.path().join(FILE_NAME);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("\\\"t\\\"", "\\\"u\\\"");
        fs::write(&path, text).unwrap();
        let err = Metadata::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");

        // A name no topic could have, with a checksum that matches: refused, not used as a
        // directory name.
        let mut bad = Metadata::default();
        bad.topics.insert(
            "../../escape".to_owned(),
            TopicMeta {
                id: 1,
                uuid: new_topic_uuid(),
                config: TopicConfig::default(),
                internal: false,
                placement: vec![ShardId(0)],
            },
        );
        bad.persist(dir.path()).unwrap();
        let err = Metadata::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("escape"), "{err}");
    }

    #[test]
    fn placement_spreads_evenly_and_offsets_keep_their_partition_count() {
        let mut m = Metadata::default();
        assert!(m.fit_to_shards(2));
        let offsets = &m.topics[CONSUMER_OFFSETS_TOPIC];
        assert_eq!(offsets.placement.len(), OFFSETS_PARTITIONS_MIN);
        assert_eq!(offsets.placement[..3], [ShardId(0), ShardId(1), ShardId(0)]);
        assert!(offsets.internal);
        assert_eq!(
            m.place(4, 2),
            vec![ShardId(0), ShardId(1), ShardId(0), ShardId(1)]
        );
        assert!(!m.fit_to_shards(2));
        // More shards: the same partitions, spread over all of them.
        assert!(m.fit_to_shards(3));
        let offsets = &m.topics[CONSUMER_OFFSETS_TOPIC];
        assert_eq!(offsets.placement.len(), OFFSETS_PARTITIONS_MIN);
        assert_eq!(
            offsets.placement[..4],
            [ShardId(0), ShardId(1), ShardId(2), ShardId(0)]
        );
        assert!(m.fit_to_shards(1));
        assert!(m.topics[CONSUMER_OFFSETS_TOPIC]
            .placement
            .iter()
            .all(|s| *s == ShardId(0)));
        // A first start with more shards than the minimum: one partition per shard.
        let mut wide = Metadata::default();
        wide.fit_to_shards(OFFSETS_PARTITIONS_MIN + 4);
        assert_eq!(
            wide.topics[CONSUMER_OFFSETS_TOPIC].placement.len(),
            OFFSETS_PARTITIONS_MIN + 4
        );
    }

    #[test]
    fn topic_ids_are_version_4_uuids_and_older_files_get_them_once() {
        for _ in 0..100 {
            let id = uuid_parts(new_topic_uuid());
            assert_eq!((id.0, id.1), (4, 2), "version 4, RFC 4122 variant");
        }
        let dir = tempfile::tempdir().unwrap();
        let mut m = Metadata::default();
        m.fit_to_shards(1);
        let mut old = Body::from_metadata(&m);
        for topic in &mut old.topics {
            topic.uuid = None; // as written before topic ids
        }
        let body = serde_json::to_string(&old).unwrap();
        let envelope = Envelope {
            format: FORMAT,
            crc32: crc32fast::hash(body.as_bytes()),
            body,
        };
        fs::write(
            dir.path().join(FILE_NAME),
            serde_json::to_string(&envelope).unwrap(),
        )
        .unwrap();
        let mut loaded = Metadata::load(dir.path()).unwrap().unwrap();
        assert!(loaded.topics.values().all(|t| t.uuid == 0));
        assert!(
            loaded.fit_to_shards(1),
            "ids assigned: the file must be written"
        );
        assert!(loaded.topics.values().all(|t| t.uuid != 0));
        loaded.persist(dir.path()).unwrap();
        let again = Metadata::load(dir.path()).unwrap().unwrap();
        assert_eq!(again.topics, loaded.topics, "the ids are kept");
    }

    /// A UUID's version nibble and variant bits.
    fn uuid_parts(id: u128) -> (u128, u128) {
        ((id >> 76) & 0xf, (id >> 62) & 0x3)
    }
}
