//! The cluster id a node reports in Metadata and DescribeCluster when none is configured: made
//! once, at the first start on a data directory, and kept in its file `cluster.id`, as Kafka
//! keeps `cluster.id` in `meta.properties`. Tools that manage several clusters (UIs, Connect,
//! monitoring) tell them apart by it, so two nodes started with defaults must not share one.
//!
//! The id has Kafka's form: a random version-4 UUID in URL-safe base64 without padding (22
//! characters). The file is written to a temporary name, synced and renamed, so a crash leaves
//! either no id (one is made at the next start) or the whole one.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The file in the data directory that holds the id.
pub const FILE_NAME: &str = "cluster.id";

/// Longest id accepted from the file (Kafka's ids are 22 characters).
const ID_LEN_MAX: usize = 255;

/// The id stored in `data_dir`, made and stored first if there is none.
///
/// # Errors
/// The directory or file cannot be read or written, or the file holds no usable id.
pub fn stored(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if id.is_empty() || id.len() > ID_LEN_MAX || !id.chars().all(|c| c.is_ascii_graphic()) {
                bail!(
                    "{} does not hold a cluster id (1 to {ID_LEN_MAX} printable characters): \
                     remove it to have a new one made, or set cluster_id",
                    path.display()
                );
            }
            Ok(id.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = new_id();
            spindle_engine::durable_file::replace(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A new id: a random version-4 UUID in URL-safe base64 without padding.
fn new_id() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_kept_and_a_bad_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = stored(&data).unwrap();
        assert_eq!(first.len(), 22, "{first}");
        assert_eq!(stored(&data).unwrap(), first, "kept");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            stored(other.path()).unwrap(),
            first,
            "another directory, another id"
        );
        fs::write(data.join(FILE_NAME), "  \n").unwrap();
        let err = stored(&data).unwrap_err().to_string();
        assert!(err.contains("does not hold a cluster id"), "{err}");
    }
}
