//! One Kafka-protocol producer: a writer thread that sends Produce requests on the schedule and
//! a reader thread that matches the answers and records their latency.
//!
//! The two halves share a FIFO of outstanding requests (Kafka answers a connection's requests
//! in order) and an in-flight window of `--in-flight` slots: the writer takes a slot before
//! each send and the reader returns it with each answer. With `--rate`, a request waiting for
//! a slot is charged the wait, since its latency runs from its intended time; at full speed a
//! request is due when its slot frees, as in the async modes. With `acks=0` the broker sends
//! no answers; the latency is then the time until the request is in the socket.
//!
//! Each request carries one batch for each of `--partitions-per-request` partitions (one by
//! default), taken in turn from those the producer writes; a batch is a pre-built template whose
//! timestamps are re-stamped in the encoded frame with the intended send time (wall clock), so
//! consumers can compute end-to-end latency from the batch header.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::bench::batch::{stamp, RequestShape, Template};
use crate::bench::kafka::cluster::{topic_name, Cluster};
use crate::bench::kafka::connection::{encode_request, Reader, Writer};
use crate::bench::producer_task::ProducerOutcome;
use crate::bench::schedule::{precise_sleeps_on_this_thread, Plan, Schedule};
use crate::bench::throughput::Throughput;

/// What every producer of a run shares.
pub struct ProduceSetup<'a> {
    /// The cluster and its leaders.
    pub cluster: &'a Cluster,
    /// Topic name.
    pub topic: &'a str,
    /// `acks` of every request.
    pub acks: i16,
    /// Broker-side timeout of every request.
    pub timeout_ms: i32,
    /// Requests outstanding per producer at most.
    pub in_flight: usize,
    /// Producers in the run.
    pub producers: usize,
    /// Target messages per second over all producers.
    pub rate: Option<u64>,
    /// What each request carries.
    pub request: RequestShape,
    /// Pre-built batches.
    pub templates: &'a [Template],
    /// When the run ends.
    pub plan: &'a Plan,
    /// Shared counters.
    pub throughput: &'a Arc<Throughput>,
    /// The run's start.
    pub start: Instant,
    /// Wall clock (ms since the epoch) at `start`.
    pub start_wall_ms: i64,
}

/// A request on its way.
struct Pending {
    correlation_id: i32,
    intended: Instant,
}

/// The partitions producer `index` writes, all led by one broker, so it needs one connection.
/// Producers are dealt to leaders round robin, then each takes its leader's partitions
/// starting at a different one.
fn assignment(cluster: &Cluster, producers: usize, index: usize) -> (i32, Vec<i32>) {
    let leaders = cluster.leader_ids();
    let leader = leaders[index % leaders.len()];
    let mut mine: Vec<i32> = (0..cluster.leaders.len() as i32)
        .filter(|p| cluster.leaders[*p as usize] == leader)
        .collect();
    let peers = producers.div_ceil(leaders.len()).max(1);
    let shift = (index / leaders.len()) * mine.len() / peers;
    let len = mine.len().max(1);
    mine.rotate_left(shift % len);
    (leader, mine)
}

/// Runs producer `index` until the plan ends and its answers are in.
pub fn run(setup: &ProduceSetup<'_>, index: usize) -> ProducerOutcome {
    let mut out = ProducerOutcome::default();
    if let Err(e) = produce(setup, index, &mut out) {
        setup.throughput.error();
        out.first_error.get_or_insert_with(|| format!("{e:#}"));
    }
    out
}

fn produce(
    setup: &ProduceSetup<'_>,
    index: usize,
    out: &mut ProducerOutcome,
) -> anyhow::Result<()> {
    let (leader, partitions) = assignment(setup.cluster, setup.producers, index);
    let conn = setup.cluster.connect(leader)?;
    let (writer, reader) = conn.split()?;
    // The in-flight window: the writer takes a slot before each send, the reader returns it
    // with each answer.
    let (free_slot, slots) = mpsc::sync_channel::<()>(setup.in_flight);
    for _ in 0..setup.in_flight {
        free_slot.send(()).context("filling the in-flight window")?;
    }
    let (to_reader, pending) = mpsc::channel::<Pending>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let receiver = (setup.acks != 0)
            .then(|| scope.spawn(move || receive(setup, reader, pending, free_slot)));
        let sender = Sender {
            setup,
            index,
            partitions: &partitions,
            slots,
            to_reader,
        };
        let result = sender.run(writer, out);
        if let Some(receiver) = receiver {
            let answers = receiver
                .join()
                .map_err(|_| anyhow::anyhow!("the response reader panicked"))?;
            out.merge(answers);
        }
        result
    })
}

/// The writing half of one producer.
struct Sender<'a, 's> {
    setup: &'a ProduceSetup<'s>,
    index: usize,
    partitions: &'a [i32],
    slots: mpsc::Receiver<()>,
    to_reader: mpsc::Sender<Pending>,
}

impl Sender<'_, '_> {
    /// Sends until the plan ends, the connection fails or the reader stops (on an error it
    /// reports itself). Dropping `self` at the end closes the FIFO, so the reader drains the
    /// outstanding answers and finishes.
    fn run(self, mut writer: Writer, out: &mut ProducerOutcome) -> anyhow::Result<()> {
        let setup = self.setup;
        if setup.rate.is_some() {
            precise_sleeps_on_this_thread();
        }
        let version = setup.cluster.versions.produce;
        let mut schedule = Schedule::new(
            setup.start,
            setup.rate,
            setup.producers,
            self.index,
            setup.request.records(),
        );
        for sent in 0usize.. {
            let mut intended = schedule.next_send();
            if !setup.plan.claim(intended) {
                break;
            }
            if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if setup.acks != 0 && self.slots.recv().is_err() {
                break;
            }
            if !schedule.is_paced() {
                // At full speed a request is due when its slot frees (as in the async modes).
                intended = Instant::now();
            }
            // Consecutive batches of the producer's sequence, so a request's partitions differ.
            let per_request = setup.request.partitions;
            let batches: Vec<(i32, &Template)> = (sent * per_request..(sent + 1) * per_request)
                .map(|n| {
                    (
                        self.partitions[n % self.partitions.len()],
                        &setup.templates[n % setup.templates.len()],
                    )
                })
                .collect();
            let wall_ms = setup.start_wall_ms
                + i64::try_from(intended.duration_since(setup.start).as_millis()).unwrap_or(0);
            let correlation_id = writer.take_correlation_id();
            let frame = produce_frame(setup, &batches, version, correlation_id, wall_ms)?;
            let pending = Pending {
                correlation_id,
                intended,
            };
            if setup.acks != 0 && self.to_reader.send(pending).is_err() {
                break;
            }
            if schedule.is_paced() {
                out.sent(setup.plan, intended);
            }
            writer.send(&frame)?;
            if setup.acks == 0 {
                out.complete(
                    setup.plan,
                    intended,
                    Ok(()),
                    setup.request,
                    setup.throughput,
                );
            }
        }
        Ok(())
    }
}

/// Encodes one Produce request carrying each `(partition, template)` of `batches`, every batch
/// stamped `wall_ms`.
fn produce_frame(
    setup: &ProduceSetup<'_>,
    batches: &[(i32, &Template)],
    version: i16,
    correlation_id: i32,
    wall_ms: i64,
) -> anyhow::Result<bytes::BytesMut> {
    let partition_data = batches
        .iter()
        .map(|(partition, template)| {
            PartitionProduceData::default()
                .with_index(*partition)
                .with_records(Some(template.bytes.clone()))
        })
        .collect();
    let request = ProduceRequest::default()
        .with_acks(setup.acks)
        .with_timeout_ms(setup.timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(setup.topic))
            .with_partition_data(partition_data)]);
    let mut frame = encode_request(&request, version, correlation_id)?;
    // Each partition's records are its last field but for, in flexible versions (9+), an
    // empty tag buffer; the request ends with two more (topic, request). Walking back from the
    // end: tags, records, the records' length, the partition index.
    let flexible = version >= 9;
    let mut end = frame.len() - if flexible { 2 } else { 0 };
    for (_, template) in batches.iter().rev() {
        let len = template.bytes.len();
        let at = end
            .checked_sub(usize::from(flexible) + len)
            .context("produce frame shorter than its batches")?;
        ensure!(
            frame[at..at + 12] == template.bytes[..12],
            "records not where expected in a Produce v{version} frame"
        );
        stamp(&mut frame[at..], template, wall_ms);
        let length_prefix = if flexible {
            uvarint_len(len as u64 + 1)
        } else {
            4
        };
        end = at.saturating_sub(length_prefix + 4);
    }
    Ok(frame)
}

/// Bytes of `n` as an unsigned varint.
fn uvarint_len(n: u64) -> usize {
    (64 - n.max(1).leading_zeros() as usize).div_ceil(7)
}

/// The reader half: answers in request order until the writer closes the FIFO.
fn receive(
    setup: &ProduceSetup<'_>,
    mut reader: Reader,
    pending: mpsc::Receiver<Pending>,
    free_slot: mpsc::SyncSender<()>,
) -> ProducerOutcome {
    let mut out = ProducerOutcome::default();
    let version = setup.cluster.versions.produce;
    let mut window_open = true;
    while let Ok(p) = pending.recv() {
        let answer = reader.receive::<ProduceRequest>(version);
        let result = answer.and_then(|(id, response)| check(id, p.correlation_id, &response));
        let fatal = result
            .as_ref()
            .is_err_and(|e| e.downcast_ref::<PartitionError>().is_none());
        out.complete(
            setup.plan,
            p.intended,
            result,
            setup.request,
            setup.throughput,
        );
        if fatal {
            // The connection is unusable: stop, which makes the writer stop.
            return out;
        }
        // Once the writer has finished nobody takes slots; the answers still pending are read
        // all the same.
        window_open = window_open && free_slot.send(()).is_ok();
    }
    out
}

/// A partition-level error in an otherwise well-formed answer: the connection stays usable.
#[derive(Debug)]
struct PartitionError(String);

impl std::fmt::Display for PartitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PartitionError {}

fn check(got: i32, expected: i32, response: &ProduceResponse) -> anyhow::Result<()> {
    ensure!(
        got == expected,
        "answer to request {got}, expected {expected}"
    );
    for t in &response.responses {
        for p in &t.partition_responses {
            if p.error_code != 0 {
                let name = kafka_protocol::error::ResponseError::try_from_code(p.error_code)
                    .map_or_else(|| "unknown error".to_owned(), |e| e.to_string());
                return Err(PartitionError(format!(
                    "partition {}: error {} ({name})",
                    p.index, p.error_code
                ))
                .into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::kafka::versions::Versions;
    use crate::transport::Security;

    fn cluster(leaders: Vec<i32>) -> Cluster {
        Cluster {
            versions: Versions {
                produce: 9,
                fetch: 12,
                metadata: 12,
                create_topics: 7,
                list_offsets: 7,
            },
            brokers: [(0, "a:1".to_owned()), (1, "b:1".to_owned())].into(),
            leaders,
            security: Security::default(),
        }
    }

    #[test]
    fn producers_write_only_partitions_of_their_leader_from_different_starts() {
        let c = cluster(vec![0, 1, 0, 1, 0, 1]);
        assert_eq!(assignment(&c, 4, 0), (0, vec![0, 2, 4]));
        assert_eq!(assignment(&c, 4, 1), (1, vec![1, 3, 5]));
        let (leader, third) = assignment(&c, 4, 2);
        assert_eq!(leader, 0);
        assert_ne!(
            third[0], 0,
            "a second producer of leader 0 starts elsewhere"
        );
        let mut sorted = third.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 2, 4]);
    }

    #[test]
    fn the_fewest_partitions_of_a_leader_bound_a_request() {
        assert_eq!(
            cluster(vec![0, 1, 0, 1, 0]).fewest_partitions_of_a_leader(),
            2
        );
        assert_eq!(cluster(vec![0, 0, 0]).fewest_partitions_of_a_leader(), 3);
    }

    #[test]
    fn produce_frames_carry_a_stamped_valid_batch_for_each_partition() {
        use crate::bench::batch::{first_timestamp_ms, verify, BatchShape};
        use kafka_protocol::messages::{ApiKey, RequestHeader};
        use kafka_protocol::protocol::Decodable;
        use kafka_protocol::records::Compression;
        let c = cluster(vec![0]);
        let shape = BatchShape::filling(1000, 100, Compression::None);
        // Batches of several sizes, so that the walk back over the frame cannot get by on one.
        let small = BatchShape::filling(300, 100, Compression::None);
        let large = BatchShape::filling(20_000, 100, Compression::None);
        let templates = [
            Template::build_set(&shape, 1).expect("builds"),
            Template::build_set(&small, 1).expect("builds"),
            Template::build_set(&large, 1).expect("builds"),
        ]
        .concat();
        let plan = Plan::new(
            crate::bench::args::Stop::Count(1),
            Instant::now(),
            10,
            std::time::Duration::ZERO,
        );
        let throughput = Arc::new(Throughput::default());
        let setup = ProduceSetup {
            cluster: &c,
            topic: "t",
            acks: 1,
            timeout_ms: 1000,
            in_flight: 1,
            producers: 1,
            rate: None,
            request: RequestShape {
                batch: shape,
                partitions: 3,
            },
            templates: &templates,
            plan: &plan,
            throughput: &throughput,
            start: Instant::now(),
            start_wall_ms: 0,
        };
        for version in [3, 8, 9, 12] {
            let one = [(0, &templates[0])];
            let three = [(4, &templates[2]), (5, &templates[1]), (6, &templates[0])];
            for batches in [&one[..], &three[..]] {
                let frame = produce_frame(&setup, batches, version, 5, 777).expect("encodes");
                let mut body = frame.freeze().slice(4..);
                let header_version = ApiKey::Produce.request_header_version(version);
                RequestHeader::decode(&mut body, header_version).expect("header");
                let request = ProduceRequest::decode(&mut body, version).expect("body");
                let sent = &request.topic_data[0].partition_data;
                assert_eq!(sent.len(), batches.len(), "v{version}");
                for (data, (partition, template)) in sent.iter().zip(batches) {
                    assert_eq!(data.index, *partition, "v{version}");
                    let records = data.records.as_ref().expect("records");
                    assert_eq!(records.len(), template.bytes.len(), "v{version}");
                    verify(records).expect("valid CRC after stamping");
                    assert_eq!(first_timestamp_ms(records), Some(777), "v{version}");
                }
            }
        }
    }
}
