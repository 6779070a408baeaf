//! Client quotas changed at run time (AlterClientQuotas: `kafka-configs.sh --alter
//! --entity-type clients|users`, admin clients' `alterClientQuotas`), kept in the data
//! directory's `client-quotas.json` so that they outlive a restart (docs/FORMAT.md).
//!
//! An entity altered at run time takes its rates from that file from then on, whatever
//! `[[kafka.quotas]]` says of it; one whose every rate was removed stays in the file without
//! rates, so that it stays without a quota. Shard 0 owns the changes: it applies each
//! AlterClientQuotas, replaces the file (a temporary file, synced, renamed over the old one, the
//! directory synced; on glommio's blocking pool, one change at a time) and only then hands every
//! shard the quotas in force, so that a change that was answered survives a crash. Each shard
//! reads the file when its listener starts.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spindle_engine::{durable_file, Shard};

use crate::kafka::quota::{shard_quotas, ClientQuota, QuotaKind};

const FILE_NAME: &str = "client-quotas.json";
const FORMAT: u32 = 1;

/// The file: the entities altered at run time, each with all of its rates.
#[derive(Debug, Serialize, Deserialize)]
struct QuotaFile {
    format: u32,
    entities: Vec<ClientQuota>,
}

/// One entity's change: the rates it sets (`Some`) or removes (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The entity's user, `None` for every user.
    pub(crate) user: Option<String>,
    /// The entity's client id, `None` for every client id (each on its own without a user).
    pub(crate) client_id: Option<String>,
    /// The rates set or removed, in order.
    pub(crate) rates: Vec<(QuotaKind, Option<u64>)>,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Puts this shard's quotas in force as its listener starts: `configured`, overridden by the
/// entities the data directory's file keeps.
///
/// # Errors
/// The file cannot be read, does not parse or has an unknown format: a message naming it.
pub(crate) fn start(data_dir: &Path, configured: &[ClientQuota]) -> Result<(), String> {
    let altered = load(data_dir)?;
    let quotas = shard_quotas();
    quotas.put_in_force(0, in_force(configured, &altered));
    *quotas.altered.borrow_mut() = altered;
    Ok(())
}

fn load(data_dir: &Path) -> Result<Vec<ClientQuota>, String> {
    let path = path(data_dir);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let file: QuotaFile = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a client quota file: {e}", path.display()))?;
    if file.format != FORMAT {
        return Err(format!(
            "{}: unknown format {}",
            path.display(),
            file.format
        ));
    }
    Ok(file.entities)
}

/// Replaces the file in `data_dir` with `entities`, atomically and durably.
fn persist(data_dir: &Path, entities: &[ClientQuota]) -> Result<(), String> {
    let file = QuotaFile {
        format: FORMAT,
        entities: entities.to_vec(),
    };
    let text =
        serde_json::to_vec_pretty(&file).map_err(|e| format!("encoding client quotas: {e}"))?;
    durable_file::replace(&path(data_dir), &text).map_err(|e| e.to_string())
}

fn same_entity(a: &ClientQuota, b: &ClientQuota) -> bool {
    (&a.user, &a.client_id) == (&b.user, &b.client_id)
}

/// The quotas in force: `configured`, each entity that `altered` names replaced by its altered
/// rates, or dropped if it has none left.
pub(crate) fn in_force(configured: &[ClientQuota], altered: &[ClientQuota]) -> Vec<ClientQuota> {
    let has_rates =
        |q: &&ClientQuota| q.producer_byte_rate.is_some() || q.consumer_byte_rate.is_some();
    configured
        .iter()
        .filter(|c| !altered.iter().any(|a| same_entity(a, c)))
        .chain(altered.iter().filter(has_rates))
        .cloned()
        .collect()
}

/// `altered` with `changes` applied: each changed entity starts from its rates in force.
fn apply(
    configured: &[ClientQuota],
    altered: &[ClientQuota],
    changes: Vec<Change>,
) -> Vec<ClientQuota> {
    let mut altered = altered.to_vec();
    for change in changes {
        let entity = ClientQuota {
            user: change.user,
            client_id: change.client_id,
            producer_byte_rate: None,
            consumer_byte_rate: None,
        };
        let mut entity = in_force(configured, &altered)
            .into_iter()
            .find(|q| same_entity(q, &entity))
            .unwrap_or(entity);
        for (kind, rate) in change.rates {
            match kind {
                QuotaKind::Produce => entity.producer_byte_rate = rate,
                QuotaKind::Fetch => entity.consumer_byte_rate = rate,
            }
        }
        altered.retain(|a| !same_entity(a, &entity));
        altered.push(entity);
    }
    altered
}

/// Makes `changes` on shard 0: applies them, replaces the file in the data directory (on
/// glommio's blocking pool, so that the fsyncs do not stall the shard), then puts the new quotas
/// in force on every shard. Runs on shard 0, one change at a time.
///
/// # Errors
/// Writing the file failed (nothing changed): the reason.
pub(crate) async fn make(
    shard: &Shard,
    configured: Arc<[ClientQuota]>,
    changes: Vec<Change>,
) -> Result<(), String> {
    let quotas = shard_quotas();
    let _turn = quotas
        .changing
        .acquire_permit(1)
        .await
        .map_err(|e| e.to_string())?;
    let altered = apply(&configured, &quotas.altered.borrow(), changes);
    let (data_dir, written) = (shard.data_dir(), altered.clone());
    glommio::executor()
        .spawn_blocking(move || persist(&data_dir, &written))
        .await?;
    let force = in_force(&configured, &altered);
    *quotas.altered.borrow_mut() = altered;
    let change = quotas.changes.get() + 1;
    quotas.changes.set(change);
    // A shard that cannot be told means the engine is stopping.
    shard
        .run_on_every_shard(move |_| async move {
            shard_quotas().put_in_force(change, force);
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::quota::tests::quota;

    #[test]
    fn an_altered_entity_replaces_the_configured_one_and_one_without_rates_has_no_quota() {
        let configured = [
            quota(None, Some("loader"), Some(100)),
            quota(Some("app"), None, Some(200)),
        ];
        let change = |client: &str, rates| Change {
            user: None,
            client_id: Some(client.to_owned()),
            rates,
        };
        // Altering one rate keeps the entity's others; a new entity starts from none.
        let altered = apply(
            &configured,
            &[],
            vec![
                change("loader", vec![(QuotaKind::Fetch, Some(50))]),
                change("new", vec![(QuotaKind::Produce, Some(7))]),
            ],
        );
        let mut loader = quota(None, Some("loader"), Some(100));
        loader.consumer_byte_rate = Some(50);
        assert_eq!(
            in_force(&configured, &altered),
            [
                quota(Some("app"), None, Some(200)),
                loader.clone(),
                quota(None, Some("new"), Some(7)),
            ]
        );
        // Removing every rate leaves the entity without a quota, the configured one too.
        let altered = apply(
            &configured,
            &altered,
            vec![change(
                "loader",
                vec![(QuotaKind::Produce, None), (QuotaKind::Fetch, None)],
            )],
        );
        assert!(altered.contains(&quota(None, Some("loader"), None)));
        assert_eq!(
            in_force(&configured, &altered),
            [
                quota(Some("app"), None, Some(200)),
                quota(None, Some("new"), Some(7)),
            ]
        );
    }

    #[test]
    fn the_changes_survive_in_the_file_and_a_damaged_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Ok(Vec::new()), "no file: no changes");
        let altered = vec![
            quota(None, Some("loader"), Some(100)),
            quota(Some("app"), None, None),
        ];
        persist(dir.path(), &altered).unwrap();
        assert_eq!(load(dir.path()), Ok(altered));
        fs::write(path(dir.path()), "{\"format\": 1, \"entit").unwrap();
        let refused = load(dir.path()).unwrap_err();
        assert!(refused.contains("client-quotas.json"), "{refused}");
    }
}
