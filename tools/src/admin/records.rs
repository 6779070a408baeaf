//! `spindle topic delete-records`: deletes a topic's records below an offset (Kafka's
//! DeleteRecords, what `kafka-delete-records.sh` sends). Each partition's request goes to its
//! leader; the answer is each partition's new start offset (its low watermark).

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::admin::client::{by_leader, select_partitions, Client};
use crate::admin::error::AdminError;
use crate::admin::limits;
use crate::admin::table::{Printer, Table};

/// One partition's outcome.
#[derive(Debug, Serialize)]
struct Deleted {
    topic: String,
    partition: i32,
    /// The partition's first offset now.
    start_offset: i64,
}

/// Deletes the records of `topic` below `before` (-1: all written) in `partitions` (all of the
/// topic's when empty) and prints each partition's new start offset.
///
/// # Errors
/// [`AdminError::UnknownTopic`], a partition the topic does not have, a partition without a
/// leader, the server's refusal (e.g. an offset past the end), connection errors.
pub fn delete(
    client: &mut Client,
    topic: &str,
    before: i64,
    partitions: &[i32],
    out: &mut Printer,
) -> Result<(), AdminError> {
    let all = client.partitions(topic)?;
    let chosen = select_partitions(&all, topic, partitions)?;
    let mut deleted = Vec::new();
    for (leader, led) in by_leader(chosen)? {
        let request = DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(
                    led.iter()
                        .map(|p| {
                            DeleteRecordsPartition::default()
                                .with_partition_index(p.partition)
                                .with_offset(before)
                        })
                        .collect(),
                )])
            .with_timeout_ms(limits::SERVER_TIMEOUT_MS);
        let response = client.broker(leader)?.call(&request)?;
        for t in response.topics {
            for p in t.partitions {
                AdminError::check(p.error_code, None, || {
                    format!("deleting records of {topic}-{}", p.partition_index)
                })?;
                deleted.push(Deleted {
                    topic: topic.to_owned(),
                    partition: p.partition_index,
                    start_offset: p.low_watermark,
                });
            }
        }
    }
    deleted.sort_by_key(|d| d.partition);
    out.print(&deleted, render)
}

fn render(deleted: &Vec<Deleted>) -> String {
    let mut table = Table::new(&["PARTITION", "START"]);
    for d in deleted {
        table.row(vec![d.partition.to_string(), d.start_offset.to_string()]);
    }
    table.render()
}
