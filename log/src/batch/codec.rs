//! The codecs of stored batches: bounded decompression, and compression for the cleaner.
//!
//! The log bounds a batch by its stored size, which for a compressed batch says little about
//! what it expands to: a megabyte of zstd can hold tens of gigabytes of zeros. `kafka_protocol`'s
//! own codecs decompress into an unbounded buffer, so the cleaner and the gRPC gateway, which
//! share their process with the shards, decompress here instead: every codec stops with
//! [`DecompressError::TooLarge`] as soon as its output would pass the limit it is given, without
//! allocating for the excess. Compressing (the cleaner rewrites a batch it removed records from
//! with the batch's own codec) goes through `kafka_protocol`'s compressors, as clients write.
//!
//! The codecs read what Kafka producers write, as `kafka_protocol`'s do: gzip (concatenated
//! members too, as Java's `GZIPInputStream` reads them), snappy in the xerial framing of the Java
//! client or raw, lz4 frames and zstd frames. Their own working memory is bounded by their
//! formats: gzip's window is 32 KiB, an lz4 block at most 4 MiB, zstd's window at most 128 MiB
//! (the decoder's default `windowLogMax` of 27 refuses larger frames), and a snappy block's size
//! is read from its header and checked against the limit before anything is allocated.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::Compression;

/// Every codec a batch may name, `None` first.
pub const ALL: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Why a batch's records could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The output would pass the limit: nothing beyond it was produced.
    #[error("the records decompress to more than {limit_bytes} bytes")]
    TooLarge {
        /// The limit that was reached.
        limit_bytes: usize,
    },
    /// The compressed data is not valid for its codec.
    #[error("the {codec} records do not decompress: {source}")]
    Corrupt {
        /// The codec named by the batch's attributes.
        codec: &'static str,
        /// What the codec reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The xerial framing's header, as the Java client writes it: magic, version 1, compatible 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Decompresses the records section of a batch compressed with `compression`.
///
/// # Errors
/// [`DecompressError::TooLarge`] when the output would be longer than `limit_bytes` (an
/// uncompressed section longer than that too), [`DecompressError::Corrupt`] when the data is
/// not valid for the codec.
pub fn decompress(
    records: &Bytes,
    compression: Compression,
    limit_bytes: usize,
) -> Result<Bytes, DecompressError> {
    match compression {
        Compression::None => {
            if records.len() > limit_bytes {
                return Err(DecompressError::TooLarge { limit_bytes });
            }
            Ok(records.clone())
        }
        Compression::Gzip => read_to_limit(
            flate2::read::MultiGzDecoder::new(&records[..]),
            "gzip",
            limit_bytes,
        ),
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(&records[..]).map_err(|e| corrupt("lz4", e))?;
            read_to_limit(decoder, "lz4", limit_bytes)
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(&records[..])
                .map_err(|e| corrupt("zstd", e))?;
            read_to_limit(decoder, "zstd", limit_bytes)
        }
        Compression::Snappy => snappy(records, limit_bytes),
    }
}

/// A stream of the records section `records` decompressed with `compression`, to read a record
/// at a time; `None` for snappy (use [`decompress`]).
///
/// # Errors
/// [`DecompressError::Corrupt`] when the codec's frame header does not parse.
pub fn reader(
    records: &[u8],
    compression: Compression,
) -> Result<Option<Box<dyn Read + '_>>, DecompressError> {
    Ok(Some(match compression {
        Compression::None => Box::new(records),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(records)),
        Compression::Lz4 => Box::new(lz4::Decoder::new(records).map_err(|e| corrupt("lz4", e))?),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(records).map_err(|e| corrupt("zstd", e))?,
        ),
        Compression::Snappy => return Ok(None),
    }))
}

/// Compresses an uncompressed records section with `compression`, as Kafka clients do.
///
/// # Errors
/// The codec's error (none is expected for in-memory input).
pub fn compress(records: &[u8], compression: Compression) -> Result<Bytes, String> {
    fn with<C: Compressor<BytesMut, BufMut = BytesMut>>(data: &[u8]) -> Result<Bytes, String> {
        let mut out = BytesMut::new();
        C::compress(&mut out, |buf| {
            buf.extend_from_slice(data);
            Ok(())
        })
        .map_err(|e| format!("{e:#}"))?;
        Ok(out.freeze())
    }
    match compression {
        Compression::None => Ok(Bytes::copy_from_slice(records)),
        Compression::Gzip => with::<Gzip>(records),
        Compression::Snappy => with::<Snappy>(records),
        Compression::Lz4 => with::<Lz4>(records),
        Compression::Zstd => with::<Zstd>(records),
    }
}

fn corrupt(
    codec: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> DecompressError {
    DecompressError::Corrupt {
        codec,
        source: source.into(),
    }
}

/// Reads `decoder` to its end, or until one byte past `limit_bytes` proves the output too long.
fn read_to_limit(
    decoder: impl Read,
    codec: &'static str,
    limit_bytes: usize,
) -> Result<Bytes, DecompressError> {
    let past_limit = u64::try_from(limit_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut out = Vec::new();
    decoder
        .take(past_limit)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if out.len() > limit_bytes {
        return Err(DecompressError::TooLarge { limit_bytes });
    }
    // The records decoded from `out` share its allocation until they are sent: give back what
    // the vector's doubling reserved beyond the data.
    out.shrink_to_fit();
    Ok(Bytes::from(out))
}

/// Snappy in the xerial framing (blocks of `u32` length + raw snappy), else raw snappy, as the
/// Java client reads it. Each block's output length is in its header: the total is checked
/// before the block is decompressed.
fn snappy(records: &[u8], limit_bytes: usize) -> Result<Bytes, DecompressError> {
    let mut decoder = snap::raw::Decoder::new();
    let Some(mut rest) = records.strip_prefix(XERIAL_HEADER.as_slice()) else {
        let len = snap::raw::decompress_len(records).map_err(|e| corrupt("snappy", e))?;
        if len > limit_bytes {
            return Err(DecompressError::TooLarge { limit_bytes });
        }
        let mut out = vec![0; len];
        decoder
            .decompress(records, &mut out)
            .map_err(|e| corrupt("snappy", e))?;
        return Ok(Bytes::from(out));
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (length, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("snappy", "a block length is cut short"))?;
        let length = usize::try_from(u32::from_be_bytes(*length))
            .map_err(|_| corrupt("snappy", "a block length does not fit in memory"))?;
        if after.len() < length {
            return Err(corrupt("snappy", "a block is cut short"));
        }
        let (block, after) = after.split_at(length);
        let len = snap::raw::decompress_len(block).map_err(|e| corrupt("snappy", e))?;
        if len > limit_bytes - out.len() {
            return Err(DecompressError::TooLarge { limit_bytes });
        }
        let start = out.len();
        out.resize(start + len, 0);
        decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| corrupt("snappy", e))?;
        rest = after;
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data` compressed as Kafka clients do.
    fn compressed(compression: Compression, data: &[u8]) -> Bytes {
        compress(data, compression).unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect()
    }

    #[test]
    fn every_codec_reads_what_kafka_clients_write() {
        let data = sample(300_000);
        for &codec in &ALL[1..] {
            let out = decompress(&compressed(codec, &data), codec, data.len()).unwrap();
            assert_eq!(out, data, "{codec:?}");
        }
        let raw_snappy = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let out = decompress(&Bytes::from(raw_snappy), Compression::Snappy, data.len()).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn every_codec_stops_one_byte_past_the_limit() {
        let data = vec![0u8; 1 << 20];
        for &codec in &ALL[1..] {
            let input = compressed(codec, &data);
            assert!(input.len() < data.len() / 20, "{codec:?} compresses zeros");
            let limit_bytes = data.len() - 1;
            let err = decompress(&input, codec, limit_bytes).unwrap_err();
            assert!(
                matches!(err, DecompressError::TooLarge { limit_bytes: l } if l == limit_bytes),
                "{codec:?}: {err}"
            );
            let exact = decompress(&input, codec, data.len()).unwrap();
            assert_eq!(exact.len(), data.len(), "{codec:?}");
        }
        let err = decompress(&Bytes::from(data), Compression::None, 1000).unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { .. }));
    }

    #[test]
    fn snappy_lengths_are_checked_before_anything_is_allocated() {
        // One xerial block whose raw-snappy header claims 4 GiB - 1 of output.
        let mut input = XERIAL_HEADER.to_vec();
        let block = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        input.extend_from_slice(&(block.len() as u32).to_be_bytes());
        input.extend_from_slice(&block);
        let err = decompress(&Bytes::from(input), Compression::Snappy, 1 << 20).unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { .. }), "{err}");
        let raw = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
        let err = decompress(&raw, Compression::Snappy, 1 << 20).unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn garbage_is_corrupt_for_every_codec() {
        let garbage = Bytes::from(sample(1000));
        for &codec in &ALL[1..] {
            let err = decompress(&garbage, codec, 1 << 20).unwrap_err();
            assert!(matches!(err, DecompressError::Corrupt { .. }), "{codec:?}");
        }
        let mut cut = XERIAL_HEADER.to_vec();
        cut.extend_from_slice(&[0, 0, 0, 9, 1]);
        let err = decompress(&Bytes::from(cut), Compression::Snappy, 1 << 20).unwrap_err();
        assert!(matches!(err, DecompressError::Corrupt { .. }));
    }
}
