//! DescribeLogDirs: the node's one log directory (its data directory) and the size on disk of
//! each partition in it. Kafka UIs (Redpanda Console, AKHQ, Kafdrop) and `kafka-log-dirs.sh`
//! show topic sizes from it. v4 adds the file system's total and usable bytes. Topics the node
//! does not have are left out of the answer, as Kafka leaves them out.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::context::RequestContext;
use crate::limits::MAX_ADMIN_RESOURCES;

/// Answers one DescribeLogDirs request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // Which partitions of which topics; `None` for all of a topic's.
    let wanted: Vec<(String, Option<Vec<i32>>)> = match req.topics {
        None => ctx
            .shard
            .topics()
            .into_iter()
            .map(|t| (t.name, None))
            .collect(),
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), Some(t.partitions)))
            .collect(),
    };
    let mut topics = Vec::new();
    // Topics the principal has no grant on are left out, like unknown ones.
    let visible = wanted.into_iter().filter(|(name, _)| ctx.sees(name));
    for (name, partitions) in visible.take(MAX_ADMIN_RESOURCES) {
        let Ok(described) = ctx.shard.describe_topic(&name).await else {
            continue;
        };
        let sizes = described
            .partitions
            .iter()
            .map(|p| {
                (
                    i32::try_from(p.partition.0).unwrap_or(i32::MAX),
                    p.size_bytes,
                )
            })
            .filter(|(index, _)| {
                partitions
                    .as_ref()
                    .is_none_or(|asked| asked.contains(index))
            })
            .map(|(index, size)| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(index)
                    .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
            })
            .collect();
        topics.push(
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(sizes),
        );
    }
    let dir = ctx.shard.data_dir();
    let (total_bytes, usable_bytes) = file_system_bytes(&dir).unwrap_or((-1, -1));
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes);
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// The total and the available bytes of the file system holding `dir`.
fn file_system_bytes(dir: &Path) -> Option<(i64, i64)> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a valid NUL-terminated string and `stats` a properly sized, writable
    // `statvfs` that the call fills in; it is read only when the call succeeded.
    let stats = unsafe {
        let mut stats = std::mem::zeroed::<libc::statvfs>();
        if libc::statvfs(path.as_ptr(), &mut stats) != 0 {
            return None;
        }
        stats
    };
    let block = stats.f_frsize;
    let bytes = |blocks: u64| i64::try_from(blocks.saturating_mul(block)).unwrap_or(i64::MAX);
    Some((bytes(stats.f_blocks), bytes(stats.f_bavail)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_system_of_a_directory_has_a_size_and_room() {
        let (total, usable) = file_system_bytes(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            total > 0 && usable >= 0 && usable <= total,
            "{total} {usable}"
        );
        assert_eq!(file_system_bytes(Path::new("/no/such/directory")), None);
    }
}
