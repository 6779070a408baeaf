//! Where a record without an explicit partition goes: Kafka's default partitioner, so a key
//! lands in the same partition whether a gRPC or a Kafka client produced it.
//!
//! Kafka hashes the key bytes with murmur2 (seed `0x9747b28c`), clears the sign bit and takes
//! the remainder by the partition count. Records without a key are spread round-robin.

use std::sync::atomic::{AtomicU32, Ordering};

/// Kafka's murmur2 of `data` (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a record with `key` in a topic of `partitions` partitions, as Kafka's Java
/// clients place it: murmur2 of the key, sign bit cleared, modulo the count.
///
/// # Panics
/// When `partitions` is zero (a topic always has at least one).
pub fn key_partition(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) as u32 % partitions
}

/// Chooses partitions for records that name none.
#[derive(Debug, Default)]
pub struct Partitioner {
    next_unkeyed: AtomicU32,
}

impl Partitioner {
    /// The partition of a record with `key` in a topic of `partitions` partitions.
    ///
    /// # Panics
    /// When `partitions` is zero (a topic always has at least one).
    pub fn partition(&self, key: Option<&[u8]>, partitions: u32) -> u32 {
        assert!(partitions > 0, "a topic has at least one partition");
        match key {
            Some(key) => key_partition(key, partitions),
            None => self.next_unkeyed.fetch_add(1, Ordering::Relaxed) % partitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn keys_are_stable_and_unkeyed_records_round_robin() {
        let p = Partitioner::default();
        let first = p.partition(Some(b"user-1"), 7);
        assert_eq!(p.partition(Some(b"user-1"), 7), first);
        let spread: Vec<u32> = (0..4).map(|_| p.partition(None, 3)).collect();
        assert_eq!(spread, [0, 1, 2, 0]);
    }
}
