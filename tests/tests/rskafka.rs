//! InfluxData's `rskafka`, a Kafka client written from scratch in Rust (its own protocol codecs
//! and record batch encoder, not librdkafka's), against the real `spindle serve`: topic admin,
//! produce and fetch with keys, headers and timestamps under every codec, offsets by time,
//! DeleteRecords and its stream consumer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
use rskafka::client::error::{Error, ProtocolError};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use spindle_tests::{spindle_binary, Server};

/// How long any one client call may take before the test fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn start() -> Option<(Server, tokio::runtime::Runtime)> {
    let Some(binary) = spindle_binary() else {
        eprintln!("SKIPPED: target/debug/spindle is not built (cargo build --bin spindle)");
        return None;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    Some((Server::start(&binary), runtime))
}

async fn within<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {CALL_TIMEOUT:?}"))
}

/// Runs `test` with a client of a fresh server on which topic `name` has `partitions`
/// partitions (nothing, with a note, when the binary is not built).
fn with_topic<F, Fut>(name: &str, partitions: i32, test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some((server, runtime)) = start() else {
        return;
    };
    runtime.block_on(async {
        let client = client(&server).await;
        create(&client, name, partitions).await;
        test(client).await;
    });
}

async fn client(server: &Server) -> Client {
    within(
        "connecting",
        ClientBuilder::new(vec![server.kafka.to_string()]).build(),
    )
    .await
    .expect("rskafka connects")
}

async fn create(client: &Client, topic: &str, partitions: i32) {
    let controller = client.controller_client().expect("controller client");
    within(
        "create_topic",
        controller.create_topic(topic, partitions, 1, 5_000),
    )
    .await
    .expect("topic created");
}

async fn partition(client: &Client, topic: &str, partition: i32) -> PartitionClient {
    within(
        "partition_client",
        client.partition_client(topic, partition, UnknownTopicHandling::Retry),
    )
    .await
    .expect("partition client")
}

fn record(i: usize, timestamp_ms: i64) -> Record {
    Record {
        key: Some(format!("key-{i}").into_bytes()),
        value: Some(format!("value-{i}-{}", "v".repeat(i % 7 * 50)).into_bytes()),
        headers: BTreeMap::from([
            ("index".to_owned(), i.to_string().into_bytes()),
            ("origin".to_owned(), b"rskafka".to_vec()),
        ]),
        timestamp: Utc
            .timestamp_millis_opt(timestamp_ms)
            .single()
            .expect("valid timestamp"),
    }
}

/// Every record from `from` up to the high watermark.
async fn read_all(pc: &PartitionClient, from: i64) -> Vec<(i64, Record)> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let (records, high_watermark) =
            within("fetch_records", pc.fetch_records(at, 1..1_000_000, 100))
                .await
                .expect("fetch");
        for r in records {
            at = r.offset + 1;
            out.push((r.offset, r.record));
        }
        if at >= high_watermark {
            return out;
        }
    }
}

#[test]
fn produces_and_fetches_under_every_codec() {
    with_topic("rs-codecs", 2, |client| async move {
        let topics = within("list_topics", client.list_topics())
            .await
            .expect("list");
        let listed = topics
            .iter()
            .find(|t| t.name == "rs-codecs")
            .expect("the new topic is listed");
        assert_eq!(
            listed.partitions.iter().copied().collect::<Vec<_>>(),
            [0, 1]
        );

        let codecs = [
            Compression::NoCompression,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        let pc = partition(&client, "rs-codecs", 1).await;
        let base_ms = 1_700_000_000_000;
        let mut sent = Vec::new();
        for (round, codec) in codecs.into_iter().enumerate() {
            let records: Vec<Record> = (0..20)
                .map(|i| record(round * 20 + i, base_ms + (round * 20 + i) as i64))
                .collect();
            let offsets = within("produce", pc.produce(records.clone(), codec))
                .await
                .unwrap_or_else(|e| panic!("{codec:?} produce: {e}"));
            let first = (round * 20) as i64;
            assert_eq!(
                offsets,
                (first..first + 20).collect::<Vec<_>>(),
                "{codec:?}"
            );
            sent.extend(records);
        }
        let got = read_all(&pc, 0).await;
        assert_eq!(got.len(), sent.len());
        for ((offset, got), (i, want)) in got.iter().zip(sent.iter().enumerate()) {
            assert_eq!(*offset, i as i64);
            assert_eq!(got, want, "record at offset {offset}");
        }
        let earliest = within("earliest", pc.get_offset(OffsetAt::Earliest)).await;
        assert_eq!(earliest.expect("earliest"), 0);
        let latest = within("latest", pc.get_offset(OffsetAt::Latest)).await;
        assert_eq!(latest.expect("latest"), 100);
        // The first offset whose timestamp is at or after the one asked for.
        let at = Utc
            .timestamp_millis_opt(base_ms + 42)
            .single()
            .expect("valid timestamp");
        let by_time = within("by timestamp", pc.get_offset(OffsetAt::Timestamp(at))).await;
        assert_eq!(by_time.expect("offset for a timestamp"), 42);

        let other = partition(&client, "rs-codecs", 0).await;
        assert!(
            read_all(&other, 0).await.is_empty(),
            "partition 0 untouched"
        );
    });
}

#[test]
fn delete_records_moves_the_earliest_offset_and_fetches_below_it_fail() {
    with_topic("rs-delete", 1, |client| async move {
        let pc = partition(&client, "rs-delete", 0).await;
        let records: Vec<Record> = (0..10).map(|i| record(i, 1_000 + i as i64)).collect();
        within("produce", pc.produce(records, Compression::NoCompression))
            .await
            .expect("produce");
        within("delete_records", pc.delete_records(6, 5_000))
            .await
            .expect("records deleted");
        let earliest = within("earliest", pc.get_offset(OffsetAt::Earliest)).await;
        assert_eq!(earliest.expect("earliest"), 6);
        let offsets: Vec<i64> = read_all(&pc, 6).await.iter().map(|r| r.0).collect();
        assert_eq!(offsets, [6, 7, 8, 9]);
        match within(
            "fetch below the start",
            pc.fetch_records(2, 1..1_000_000, 100),
        )
        .await
        {
            Err(Error::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            }) => {}
            other => panic!("expected OFFSET_OUT_OF_RANGE, got {other:?}"),
        }

        let controller = client.controller_client().expect("controller client");
        within("delete_topic", controller.delete_topic("rs-delete", 5_000))
            .await
            .expect("topic deleted");
        let topics = within("list_topics", client.list_topics())
            .await
            .expect("list");
        assert!(topics.iter().all(|t| t.name != "rs-delete"), "{topics:?}");
    });
}

#[test]
fn stream_consumer_reads_what_arrives_after_it_started() {
    with_topic("rs-stream", 1, |client| async move {
        let pc = Arc::new(partition(&client, "rs-stream", 0).await);
        let mut stream = StreamConsumerBuilder::new(Arc::clone(&pc), StartOffset::Latest)
            .with_max_wait_ms(200)
            .build();
        // The consumer long-polls at the end of the empty partition while records arrive.
        let producer = Arc::clone(&pc);
        let produced = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for batch in 0..5 {
                let records = (0..4).map(|i| record(batch * 4 + i, 5_000)).collect();
                producer
                    .produce(records, Compression::Lz4)
                    .await
                    .expect("produce");
            }
        });
        let mut offsets = Vec::new();
        while offsets.len() < 20 {
            let (got, _high_watermark) = within("stream", stream.next())
                .await
                .expect("the stream does not end")
                .expect("no stream error");
            let index = &got.record.headers["index"];
            assert_eq!(index, got.offset.to_string().as_bytes());
            offsets.push(got.offset);
        }
        assert_eq!(offsets, (0..20).collect::<Vec<_>>());
        within("producer task", produced)
            .await
            .expect("producer task");
    });
}
