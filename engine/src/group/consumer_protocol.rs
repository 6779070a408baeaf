//! Kafka's consumer protocol payloads: a member's subscription (its JoinGroup metadata) and its
//! assignment (what the leader hands it through SyncGroup), each a big-endian `i16` version
//! followed by the message. The coordinator reads subscriptions (which topics a group consumes,
//! for OffsetDelete); the gRPC gateway, whose subscribers are group members, writes both and
//! reads both.
//!
//! What is written is built with `kafka_protocol`'s encoders. What is read comes from group
//! members, which may be any Kafka client, so it is read here rather than by `kafka_protocol`'s
//! decoders: those size a vector by the count the client wrote before reading a single element
//! (`Vec::with_capacity` of up to 2^31 entries, which aborts the process when the allocation
//! fails, where no `catch_unwind` helps), and are not written to refuse every hostile input
//! without panicking. The reader here checks each count against the bytes left before it
//! allocates, never indexes past its input, and answers [`Malformed`] instead.
//!
//! It reads only what is used: the subscribed topics, the partitions a member says it owns (which
//! follow the topics and user data from version 1) and the assigned partitions. Kafka only
//! appends fields in newer versions, so what follows them (generation, rack) is not read, and a
//! newer version is read as well.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

/// The protocol type Kafka consumers join classic groups with, and the one DescribeGroups and
/// ListGroups show for a consumer-protocol group.
pub const PROTOCOL_TYPE: &str = "consumer";

/// Partitions by topic; as read from the protocol's bytes, each list sorted and without repeats.
pub type Partitions = BTreeMap<String, Vec<u32>>;

/// Fewest bytes a string takes: its `i16` length.
const STRING_BYTES_MIN: usize = 2;
/// Fewest bytes an assigned topic takes: its name's length and its partitions' count.
const ASSIGNED_TOPIC_BYTES_MIN: usize = 2 + 4;
/// Bytes of a partition number.
const PARTITION_BYTES: usize = 4;

/// Why consumer protocol bytes from another member cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The bytes end inside a field.
    #[error("the bytes end inside a field")]
    Truncated,
    /// The version is negative (Kafka refuses these too).
    #[error("version {0} is not a consumer protocol version")]
    Version(i16),
    /// A length or count is negative where the field cannot be null.
    #[error("length or count {0} is negative")]
    Negative(i32),
    /// A count needs more bytes than are left.
    #[error("a count of {count} cannot fit in the {left} bytes left")]
    Count {
        /// The count read.
        count: i32,
        /// The bytes after it.
        left: usize,
    },
    /// A topic name is not UTF-8.
    #[error("a topic name is not UTF-8")]
    NotUtf8,
}

/// A `ConsumerProtocolSubscription` (v0) to one topic, with its version prefix.
pub fn subscription(topic: &str) -> Bytes {
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_string(topic.to_string())]);
    encode_versioned(&subscription)
}

/// A `ConsumerProtocolAssignment` (v0) of these partitions per topic, with its version prefix.
pub fn assignment(topics: &Partitions) -> Bytes {
    let assigned = topics
        .iter()
        .map(|(topic, partitions)| {
            AssignedTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(partitions.iter().map(|&p| p as i32).collect())
        })
        .collect();
    encode_versioned(&ConsumerProtocolAssignment::default().with_assigned_partitions(assigned))
}

fn encode_versioned<M: Encodable>(message: &M) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    // Encoding a message built here into memory cannot fail at version 0.
    if let Err(err) = message.encode(&mut buf, 0) {
        panic!("encoding consumer protocol data failed: {err}");
    }
    buf.freeze()
}

/// The topics of a member's subscription metadata (none when it is empty). Only members of
/// protocol type `consumer` reach here: the coordinator checks the type.
///
/// # Errors
/// [`Malformed`] when the bytes are not a subscription.
pub fn subscribed_topics(metadata: &[u8]) -> Result<Vec<String>, Malformed> {
    if metadata.is_empty() {
        return Ok(Vec::new());
    }
    Reader::versioned(metadata)?.topics()
}

/// The topics of a member's subscription metadata and the partitions it says it owns (Kafka's
/// `owned_partitions`, sent from version 1 by cooperative consumers; none in version 0 or when
/// the metadata is empty), read in one pass.
///
/// # Errors
/// [`Malformed`] when the bytes are not a subscription.
pub fn subscription_with_owned(metadata: &[u8]) -> Result<(Vec<String>, Partitions), Malformed> {
    if metadata.is_empty() {
        return Ok((Vec::new(), BTreeMap::new()));
    }
    let mut reader = Reader::versioned(metadata)?;
    let topics = reader.topics()?;
    if reader.version == 0 {
        return Ok((topics, BTreeMap::new()));
    }
    reader.nullable_bytes()?;
    Ok((topics, reader.topic_partitions()?))
}

/// The partitions of `topic` in an assignment, sorted and without repeats (none when it is
/// empty: the leader gave this member nothing).
///
/// # Errors
/// [`Malformed`] when the bytes are not an assignment.
pub fn assigned_partitions(assignment: &[u8], topic: &str) -> Result<Vec<u32>, Malformed> {
    Ok(assigned_topics(assignment)?
        .remove(topic)
        .unwrap_or_default())
}

/// Every topic of an assignment with its partitions, sorted and without repeats (none when it
/// is empty). A topic named twice has the partitions of both.
///
/// # Errors
/// [`Malformed`] when the bytes are not an assignment.
pub fn assigned_topics(assignment: &[u8]) -> Result<Partitions, Malformed> {
    if assignment.is_empty() {
        return Ok(BTreeMap::new());
    }
    Reader::versioned(assignment)?.topic_partitions()
}

/// Reads big-endian fields from the front of a byte slice, refusing what does not fit.
struct Reader<'a> {
    rest: &'a [u8],
    /// The message's version.
    version: i16,
}

impl<'a> Reader<'a> {
    /// A reader after the version prefix of `bytes`.
    fn versioned(bytes: &'a [u8]) -> Result<Self, Malformed> {
        let mut reader = Self {
            rest: bytes,
            version: 0,
        };
        reader.version = reader.i16()?;
        if reader.version < 0 {
            return Err(Malformed::Version(reader.version));
        }
        Ok(reader)
    }

    /// A subscription's array of topic names.
    fn topics(&mut self) -> Result<Vec<String>, Malformed> {
        let count = self.count(STRING_BYTES_MIN)?;
        let mut topics = Vec::with_capacity(count);
        for _ in 0..count {
            topics.push(self.string()?.to_string());
        }
        Ok(topics)
    }

    /// An array of topics with their partitions, sorted and without repeats; a topic named
    /// twice has the partitions of both.
    fn topic_partitions(&mut self) -> Result<Partitions, Malformed> {
        let mut topics: Partitions = BTreeMap::new();
        for _ in 0..self.count(ASSIGNED_TOPIC_BYTES_MIN)? {
            let name = self.string()?;
            let count = self.count(PARTITION_BYTES)?;
            let partitions = topics.entry(name.to_owned()).or_default();
            for _ in 0..count {
                // A negative partition names none: skip it, as the sender's slip.
                if let Ok(partition) = u32::try_from(self.i32()?) {
                    partitions.push(partition);
                }
            }
        }
        for partitions in topics.values_mut() {
            partitions.sort_unstable();
            partitions.dedup();
        }
        Ok(topics)
    }

    /// Nullable bytes (`i32` length, -1 for null), skipped.
    fn nullable_bytes(&mut self) -> Result<(), Malformed> {
        let length = self.i32()?;
        let Ok(length) = usize::try_from(length) else {
            return if length == -1 {
                Ok(())
            } else {
                Err(Malformed::Negative(length))
            };
        };
        let rest = self.rest.get(length..).ok_or(Malformed::Truncated)?;
        self.rest = rest;
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let (field, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(Malformed::Truncated)?;
        self.rest = rest;
        Ok(*field)
    }

    fn i16(&mut self) -> Result<i16, Malformed> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, Malformed> {
        self.take().map(i32::from_be_bytes)
    }

    /// An array's count, each element taking at least `element_bytes_min`: never more
    /// elements than the bytes left can hold.
    fn count(&mut self, element_bytes_min: usize) -> Result<usize, Malformed> {
        let count = self.i32()?;
        let elements = usize::try_from(count).map_err(|_| Malformed::Negative(count))?;
        if elements > self.rest.len() / element_bytes_min {
            return Err(Malformed::Count {
                count,
                left: self.rest.len(),
            });
        }
        Ok(elements)
    }

    /// A non-null string: `i16` length, then UTF-8.
    fn string(&mut self) -> Result<&'a str, Malformed> {
        let length = self.i16()?;
        let length = usize::try_from(length).map_err(|_| Malformed::Negative(length.into()))?;
        if self.rest.len() < length {
            return Err(Malformed::Truncated);
        }
        let (text, rest) = self.rest.split_at(length);
        self.rest = rest;
        std::str::from_utf8(text).map_err(|_| Malformed::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;

    fn versioned<M: Encodable>(message: &M, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        message.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    #[test]
    fn what_the_gateway_writes_reads_back() {
        assert_eq!(
            subscribed_topics(&subscription("orders")),
            Ok(vec!["orders".into()])
        );
        let topics = BTreeMap::from([
            ("orders".to_string(), vec![2, 0]),
            ("x".to_string(), vec![1]),
        ]);
        assert_eq!(
            assigned_partitions(&assignment(&topics), "orders"),
            Ok(vec![0, 2])
        );
        assert_eq!(assigned_partitions(&assignment(&topics), "y"), Ok(vec![]));
        assert_eq!(subscribed_topics(b""), Ok(vec![]));
        assert_eq!(assigned_partitions(b"", "orders"), Ok(vec![]));
    }

    #[test]
    fn every_version_kafka_clients_write_reads() {
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(vec![
                StrBytes::from_static_str("a"),
                StrBytes::from_static_str("b"),
            ])
            .with_user_data(Some(Bytes::from_static(b"user")))
            .with_owned_partitions(vec![OwnedTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("a")))
                .with_partitions(vec![1, 2])])
            .with_generation_id(7)
            .with_rack_id(Some(StrBytes::from_static_str("rack")));
        let assigned = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("a")))
                    .with_partitions(vec![3, 1, 3, -1]),
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("b")))
                    .with_partitions(vec![0]),
            ])
            .with_user_data(Some(Bytes::from_static(b"user")));
        for version in 0..=3 {
            let topics = subscribed_topics(&versioned(&subscription, version));
            assert_eq!(topics, Ok(vec!["a".into(), "b".into()]), "v{version}");
            let owned =
                subscription_with_owned(&versioned(&subscription, version)).map(|(_, owned)| owned);
            let expected = match version {
                0 => BTreeMap::new(),
                _ => BTreeMap::from([("a".to_string(), vec![1, 2])]),
            };
            assert_eq!(owned, Ok(expected), "v{version}");
            let partitions = assigned_partitions(&versioned(&assigned, version), "a");
            assert_eq!(partitions, Ok(vec![1, 3]), "v{version}");
        }
        // A newer version whose new fields follow the known ones.
        let mut newer = versioned(&subscription, 3);
        newer[..2].copy_from_slice(&9i16.to_be_bytes());
        newer.extend_from_slice(b"later fields");
        assert_eq!(subscribed_topics(&newer), Ok(vec!["a".into(), "b".into()]));
        // Null user data, and user data that claims more bytes than there are.
        let no_user_data = subscription.clone().with_user_data(None);
        assert_eq!(
            subscription_with_owned(&versioned(&no_user_data, 1)).map(|(_, owned)| owned),
            Ok(BTreeMap::from([("a".to_string(), vec![1, 2])]))
        );
        let cut = versioned(&subscription, 1);
        assert!(subscription_with_owned(&cut[..cut.len() - 20]).is_err());
    }

    #[test]
    fn hostile_bytes_are_refused_without_allocating_for_them() {
        // A count of 2^31 - 1 topics in a few bytes: refused before any vector is sized.
        let huge = [0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a'];
        assert_eq!(
            subscribed_topics(&huge),
            Err(Malformed::Count {
                count: i32::MAX,
                left: 3
            })
        );
        assert!(matches!(
            assigned_partitions(&huge, "a"),
            Err(Malformed::Count { .. })
        ));
        // One topic whose partitions' count is huge.
        let partitions = [
            0, 0, 0, 0, 0, 1, 0, 1, b'a', 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1,
        ];
        assert!(matches!(
            assigned_partitions(&partitions, "a"),
            Err(Malformed::Count { .. })
        ));
        assert!(matches!(
            assigned_topics(&partitions),
            Err(Malformed::Count { .. })
        ));
        assert_eq!(subscribed_topics(b"\x00"), Err(Malformed::Truncated));
        assert_eq!(assigned_partitions(b"\x00", "a"), Err(Malformed::Truncated));
        assert_eq!(
            subscribed_topics(b"\xff\xff\0\0\0\0"),
            Err(Malformed::Version(-1))
        );
        assert_eq!(
            subscribed_topics(b"\0\0\xff\xff\xff\xff"),
            Err(Malformed::Negative(-1))
        );
        assert_eq!(
            subscribed_topics(b"\0\0\0\0\0\x01\xff\xff"),
            Err(Malformed::Negative(-1))
        );
        assert_eq!(
            subscribed_topics(b"\0\0\0\0\0\x01\0\x05ab"),
            Err(Malformed::Truncated)
        );
        assert_eq!(
            subscribed_topics(b"\0\0\0\0\0\x01\0\x02\xff\xfe"),
            Err(Malformed::NotUtf8)
        );
    }

    #[test]
    fn no_input_panics() {
        // Every prefix of valid messages, and seeded noise spliced into them.
        let valid = [
            subscription("orders"),
            assignment(&BTreeMap::from([("orders".to_string(), vec![0, 1, 2])])),
        ];
        let mut next = crate::group::noise(0x5eed);
        let (mut read, mut refused) = (0, 0);
        let mut count = |input: &[u8]| {
            for ok in [
                subscribed_topics(input).is_ok(),
                subscription_with_owned(input).is_ok(),
                assigned_partitions(input, "orders").is_ok(),
                assigned_topics(input).is_ok(),
            ] {
                if ok {
                    read += 1;
                } else {
                    refused += 1;
                }
            }
        };
        for bytes in &valid {
            for end in 0..=bytes.len() {
                count(&bytes[..end]);
            }
            for _ in 0..20_000 {
                let mut noisy = bytes.to_vec();
                let at = next() as usize % noisy.len();
                noisy[at] = next() as u8;
                noisy.truncate(next() as usize % (noisy.len() + 1));
                count(&noisy);
            }
        }
        assert!(read > 0 && refused > 0, "{read} read, {refused} refused");
    }
}
