//! Shared helpers of the engine's integration tests: an engine on real files in a temporary
//! directory, and Kafka v2 batches built with `kafka-protocol`.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::executor::block_on;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use spindle_engine::{
    Engine, EngineConfig, EngineHandle, FetchRequest, Offset, Placement, Record, TopicPartition,
};

/// An engine with `shards` unbound shards on `dir` (a directory on the real disk).
pub fn start(dir: &Path, shards: usize) -> Engine {
    Engine::start(config(dir, shards)).expect("engine starts")
}

pub fn config(dir: &Path, shards: usize) -> EngineConfig {
    EngineConfig {
        data_dir: dir.to_path_buf(),
        shards,
        placement: Placement::Unbound,
        auto_create_topics: false,
        ..EngineConfig::default()
    }
}

/// A temporary directory under the target directory's disk (never tmpfs).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("spindle-engine-test")
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir")
}

/// A read of `tp` from `offset` of at most `max_bytes`, waiting for nothing.
pub fn read_request(tp: &TopicPartition, offset: u64, max_bytes: usize) -> FetchRequest {
    FetchRequest {
        tp: tp.clone(),
        offset: Offset(offset),
        max_bytes,
        max_wait: Duration::ZERO,
        min_bytes: 0,
        isolation: Default::default(),
    }
}

/// The records of `tp` from its offset 0 (up to 1 MiB of batches), decoded.
pub fn fetch_all(handle: &EngineHandle, tp: &TopicPartition) -> Vec<(i64, String)> {
    let out = block_on(handle.fetch(read_request(tp, 0, 1 << 20))).expect("fetch");
    decode(&out.batches)
}

/// Plain records with values `"{prefix}-{i}"`.
pub fn records(prefix: &str, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("{prefix}-{i}"))),
            ..Record::default()
        })
        .collect()
}

/// One v2 batch of `n` records from an idempotent producer.
pub fn idempotent_batch(producer_id: i64, epoch: i16, first_seq: i32, n: usize) -> Bytes {
    let records: Vec<KafkaRecord> = (0..n)
        .map(|i| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: first_seq + i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("seq-{}", first_seq + i as i32))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.freeze()
}

/// `(offset, value)` of every record in `batches`.
pub fn decode(batches: &[Bytes]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for batch in batches {
        let mut buf = batch.clone();
        for set in RecordBatchDecoder::decode_all(&mut buf).expect("decode") {
            for r in set.records {
                let value = r.value.map(|v| String::from_utf8_lossy(&v).into_owned());
                out.push((r.offset, value.unwrap_or_default()));
            }
        }
    }
    out
}
