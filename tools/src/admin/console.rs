//! `spindle topic produce` and `spindle topic consume`: records from standard input to a topic
//! and from a topic to standard output, a line each, as `kafka-console-producer.sh`,
//! `kafka-console-consumer.sh` and `rpk topic produce/consume` do.
//!
//! Produce: each line is a record's value, or with `--key-separator` its key, the separator and
//! its value (a line without the separator has no key). A record goes to `--partition`, else
//! by its key as Kafka's Java clients and the gRPC gateway place it
//! ([`spindle_gateway::key_partition`]), else round robin a batch at a time. Batches of at most
//! [`limits::PRODUCE_BATCH_RECORDS`] records or [`limits::PRODUCE_BATCH_BYTES`] bytes go to the
//! partition's leader with `acks=all`; the command ends once every batch is acknowledged.
//!
//! Consume: from `--from` (`beginning`, `end` or an offset) of each chosen partition, to the end
//! each partition had when the command started, or without end with `--follow` (until `--count`
//! records, or Ctrl-C). Records print as their value, or key, separator and value with
//! `--key-separator`; with `--json` as one JSON object a line (topic, partition, offset,
//! timestamp, key, value, headers), values as text where they are UTF-8.

use std::collections::BTreeMap;
use std::io::BufRead;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};
use serde::Serialize;
use spindle_engine::{encode_batch, Record as PlainRecord, RecordHeader};
use spindle_gateway::key_partition;

use crate::admin::client::{select_partitions, Client, PartitionLeader, EARLIEST, LATEST};
use crate::admin::error::AdminError;
use crate::admin::limits;
use crate::admin::table::Printer;
use crate::bench::batch::now_ms;

/// How `topic produce` makes records of its input.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Splits each line into key and value at its first occurrence.
    pub key_separator: Option<String>,
    /// Every record goes to this partition.
    pub partition: Option<i32>,
    /// Headers every record carries.
    pub headers: Vec<(String, String)>,
    /// The batches' codec.
    pub compression: Compression,
}

/// Where `topic consume` starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The first offset still in the log.
    Beginning,
    /// The offset the next record will get.
    End,
    /// This offset.
    Offset(i64),
}

/// What `topic consume` reads and how it prints it.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// The partitions to read (all of the topic's when empty).
    pub partitions: Vec<i32>,
    /// Where each partition starts.
    pub from: StartAt,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Keep waiting for records past the end.
    pub follow: bool,
    /// Print keys before values, separated by this.
    pub key_separator: Option<String>,
}

/// What `topic produce` reports per partition.
#[derive(Debug, Serialize)]
struct Produced {
    partition: i32,
    records: u64,
    first_offset: i64,
    last_offset: i64,
}

/// What `topic produce` reports.
#[derive(Debug, Serialize)]
struct ProduceReport<'a> {
    topic: &'a str,
    records: u64,
    partitions: Vec<Produced>,
}

/// The records of one partition waiting to be sent, and what was acknowledged so far.
#[derive(Debug, Default)]
struct Pending {
    records: Vec<PlainRecord>,
    bytes: usize,
    produced: Option<Produced>,
}

/// Reads records from `input` (a line each) and produces them to `topic`.
///
/// # Errors
/// [`AdminError::UnknownTopic`], a partition the topic does not have, unreadable input, the
/// server's refusal of a batch, connection errors.
pub fn produce(
    client: &mut Client,
    topic: &str,
    options: &ProduceOptions,
    input: &mut dyn BufRead,
    out: &mut Printer,
) -> Result<(), AdminError> {
    let leaders = client.partitions(topic)?;
    if let Some(p) = options.partition {
        select_partitions(&leaders, topic, &[p])?;
    }
    let count = u32::try_from(leaders.len()).unwrap_or(u32::MAX);
    if count == 0 {
        return Err(AdminError::UnknownTopic(topic.to_owned()));
    }
    let send_batch = |client: &mut Client, partition: i32, batch: &mut Pending| {
        send(
            client,
            topic,
            &leaders,
            partition,
            batch,
            options.compression,
        )
    };
    let mut pending: BTreeMap<i32, Pending> = BTreeMap::new();
    let mut next_round_robin = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .map_err(|e| AdminError::Invalid(format!("reading standard input: {e}")))?;
        if read == 0 {
            break;
        }
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let (key, value) = match &options.key_separator {
            Some(sep) => match text.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k), v),
                None => (None, text),
            },
            None => (None, text),
        };
        // A topic's partitions are numbered 0 to count - 1.
        let partition = match (options.partition, key) {
            (Some(p), _) => p,
            (None, Some(k)) => i32::try_from(key_partition(k.as_bytes(), count)).unwrap_or(0),
            (None, None) => i32::try_from(next_round_robin % count as usize).unwrap_or(0),
        };
        let batch = pending.entry(partition).or_default();
        batch.bytes += text.len();
        batch.records.push(record(key, value, &options.headers));
        if batch.records.len() >= limits::PRODUCE_BATCH_RECORDS
            || batch.bytes >= limits::PRODUCE_BATCH_BYTES
        {
            send_batch(client, partition, batch)?;
            next_round_robin += 1;
        }
    }
    for (&partition, batch) in &mut pending {
        send_batch(client, partition, batch)?;
    }
    let partitions: Vec<Produced> = pending.into_values().filter_map(|p| p.produced).collect();
    let report = ProduceReport {
        topic,
        records: partitions.iter().map(|p| p.records).sum(),
        partitions,
    };
    out.print(&report, |r| {
        format!("produced {} record(s) to {}\n", r.records, r.topic)
    })
}

fn record(key: Option<&str>, value: &str, headers: &[(String, String)]) -> PlainRecord {
    let bytes = |text: &str| Bytes::copy_from_slice(text.as_bytes());
    PlainRecord {
        key: key.map(bytes),
        value: Some(bytes(value)),
        headers: headers
            .iter()
            .map(|(k, v)| RecordHeader {
                key: k.clone(),
                value: Some(bytes(v)),
            })
            .collect(),
        timestamp_ms: None,
    }
}

/// Sends `batch`'s records (if any) to `partition`'s leader and notes their offsets.
fn send(
    client: &mut Client,
    topic: &str,
    leaders: &[PartitionLeader],
    partition: i32,
    batch: &mut Pending,
    compression: Compression,
) -> Result<(), AdminError> {
    if batch.records.is_empty() {
        return Ok(());
    }
    let records = std::mem::take(&mut batch.records);
    batch.bytes = 0;
    let encoded = encode_batch(&records, now_ms(), compression)
        .map_err(|e| AdminError::Invalid(format!("encoding a batch: {e}")))?;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(limits::PRODUCE_TIMEOUT_MS)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(encoded))])]);
    let leader = leader_of(leaders, topic, partition)?;
    let response = client.broker(leader)?.call(&request)?;
    let answer = response
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or_else(|| AdminError::Invalid(format!("no answer for {topic}/{partition}")))?;
    AdminError::check(
        answer.error_code,
        answer.error_message.as_ref().map(|m| m.as_str()),
        || format!("producing to {topic} partition {partition}"),
    )?;
    let n = records.len() as u64;
    // Offsets come from the server: no arithmetic on them may overflow.
    let last = answer
        .base_offset
        .saturating_add(i64::try_from(n).unwrap_or(i64::MAX) - 1);
    let produced = batch.produced.get_or_insert(Produced {
        partition,
        records: 0,
        first_offset: answer.base_offset,
        last_offset: last,
    });
    produced.records += n;
    produced.last_offset = last;
    Ok(())
}

fn leader_of(leaders: &[PartitionLeader], topic: &str, partition: i32) -> Result<i32, AdminError> {
    match leaders.iter().find(|l| l.partition == partition) {
        Some(l) if l.leader >= 0 => Ok(l.leader),
        _ => Err(AdminError::Invalid(format!(
            "{topic} partition {partition} has no leader"
        ))),
    }
}

/// One partition being read.
#[derive(Debug)]
struct Cursor {
    partition: i32,
    leader: i32,
    next: i64,
    /// Where reading stops without `--follow`: the end when the command started.
    end: i64,
}

/// One record as `--json` prints it.
#[derive(Debug, Serialize)]
struct Printed<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    headers: BTreeMap<String, Option<String>>,
}

/// Prints the records of `topic` as `options` say.
///
/// # Errors
/// [`AdminError::UnknownTopic`], a partition the topic does not have, the server's refusal of a
/// read (e.g. an offset out of range), connection errors, unwritable output.
pub fn consume(
    client: &mut Client,
    topic: &str,
    options: &ConsumeOptions,
    out: &mut Printer,
) -> Result<(), AdminError> {
    let all = client.partitions(topic)?;
    let chosen: Vec<PartitionLeader> = select_partitions(&all, topic, &options.partitions)?
        .into_iter()
        .cloned()
        .collect();
    let starts = client.list_offsets(&chosen, EARLIEST)?;
    let ends = client.list_offsets(&chosen, LATEST)?;
    let mut cursors = Vec::with_capacity(chosen.len());
    for p in &chosen {
        let key = (topic.to_owned(), p.partition);
        let end = ends.get(&key).copied().flatten().unwrap_or(0);
        let next = match options.from {
            StartAt::Beginning => starts.get(&key).copied().flatten().unwrap_or(0),
            StartAt::End => end,
            StartAt::Offset(o) => o,
        };
        cursors.push(Cursor {
            partition: p.partition,
            leader: leader_of(&all, topic, p.partition)?,
            next,
            end,
        });
    }
    let mut printed = 0u64;
    let enough = |printed: u64| options.count.is_some_and(|c| printed >= c);
    let at_end = |c: &Cursor| !options.follow && c.next >= c.end;
    while !enough(printed) && !cursors.iter().all(at_end) {
        for cursor in cursors.iter_mut().filter(|c| !at_end(c)) {
            for r in fetch(client, topic, cursor, options.follow)? {
                if enough(printed) || (!options.follow && r.offset >= cursor.end) {
                    break;
                }
                print_record(out, topic, cursor.partition, &r, options)?;
                printed += 1;
            }
            // A read's records reach the reader together, before the next (possibly long) wait.
            out.flush()?;
        }
    }
    Ok(())
}

/// The records of one read of `cursor`'s partition at or after its position, which moves past
/// what was read.
fn fetch(
    client: &mut Client,
    topic: &str,
    cursor: &mut Cursor,
    wait: bool,
) -> Result<Vec<Record>, AdminError> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(if wait { limits::FOLLOW_WAIT_MS } else { 0 })
        .with_min_bytes(1)
        .with_max_bytes(limits::CONSUME_FETCH_BYTES)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(cursor.partition)
                .with_fetch_offset(cursor.next)
                .with_partition_max_bytes(limits::CONSUME_FETCH_BYTES)])]);
    let response = client.broker(cursor.leader)?.call(&request)?;
    let data = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| {
            AdminError::Invalid(format!("no answer for {topic}/{}", cursor.partition))
        })?;
    AdminError::check(data.error_code, None, || {
        format!(
            "reading {topic} partition {} at offset {}",
            cursor.partition, cursor.next
        )
    })?;
    let mut records = Vec::new();
    let mut bytes = data.records.clone().unwrap_or_default();
    let batches = RecordBatchDecoder::decode_all(&mut bytes)
        .map_err(|e| AdminError::Invalid(format!("undecodable records from the server: {e}")))?;
    for batch in batches {
        for r in batch.records {
            if r.offset >= cursor.next && !r.control {
                records.push(r);
            }
        }
    }
    // The position moves past every whole batch read, records or not (a compacted partition
    // may hold batches without records; a read may end in a partial batch).
    let whole = spindle_log::batch::batches(data.records.as_ref().unwrap_or(&Bytes::new()))
        .map_while(Result::ok)
        .map(|(h, _)| {
            h.base_offset()
                .saturating_add(i64::from(h.last_offset_delta()))
        })
        .last();
    match whole {
        Some(last) => cursor.next = cursor.next.max(last.saturating_add(1)),
        // Nothing there although the end was ahead (records deleted meanwhile): stop here
        // rather than ask again forever.
        None if !wait => cursor.end = cursor.next,
        None => {}
    }
    Ok(records)
}

fn print_record(
    out: &mut Printer,
    topic: &str,
    partition: i32,
    r: &Record,
    options: &ConsumeOptions,
) -> Result<(), AdminError> {
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    if out.is_json() {
        let printed = Printed {
            topic,
            partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: text(&r.key),
            value: text(&r.value),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), text(v)))
                .collect(),
        };
        let line = serde_json::to_string(&printed)
            .map_err(|e| AdminError::Output(std::io::Error::other(e)))?;
        return out.line(&line);
    }
    let value = text(&r.value).unwrap_or_default();
    match &options.key_separator {
        Some(sep) => out.line(&format!("{}{sep}{value}", text(&r.key).unwrap_or_default())),
        None => out.line(&value),
    }
}
