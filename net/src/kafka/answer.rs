//! An encoded answer as a list of pieces, so that a Fetch answer's records go to the socket
//! from the buffers that hold them instead of from a copy.
//!
//! The `kafka-protocol` codec encodes a response into one buffer and copies each partition's
//! records into it: every byte of a Fetch answer was copied there once more before the kernel
//! copied it into the socket. [`AnswerBuf`] is the buffer the codec writes into here. It keeps
//! what the codec writes, except that when the codec puts one of the records buffers it was
//! told of (by their address and length, in the order the codec meets them), it ends the piece
//! it was filling and keeps a reference to the records instead of copying them. The answer is
//! those pieces, written one after the other: the bytes on the wire are exactly the codec's,
//! and a records buffer it does not recognise is simply copied, as before.
//!
//! Only records of at least [`STORED_PIECE_MIN_BYTES`] become pieces of their own: smaller ones
//! would be copied into the connection's write buffer anyway.

use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

use crate::limits::STORED_PIECE_MIN_BYTES;

/// An answer ready to write: its length prefix, header and body, in pieces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EncodedAnswer {
    pieces: Vec<Bytes>,
}

impl EncodedAnswer {
    /// The pieces, in the order they go on the wire.
    pub(crate) fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// Bytes on the wire.
    pub(crate) fn len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// The whole answer in one buffer (tests).
    #[cfg(test)]
    pub(crate) fn to_bytes(&self) -> Bytes {
        self.pieces.concat().into()
    }
}

/// The buffer a response is encoded into (see the module docs).
pub(crate) struct AnswerBuf {
    /// The first piece, once finished: it starts with the length prefix, written by `finish`.
    first: Option<BytesMut>,
    /// Pieces finished after the first.
    pieces: Vec<Bytes>,
    /// The piece being filled (the first one starts with room for the length prefix).
    piece: BytesMut,
    /// Bytes in the finished pieces.
    finished_bytes: usize,
    /// Records buffers to keep by reference, in the order the codec will put them.
    stored: Vec<Bytes>,
    /// The next of `stored` to look for.
    next_stored: usize,
}

impl AnswerBuf {
    /// A buffer for an answer that carries `records`, kept by reference wherever they are large
    /// enough ([`AnswerBuf::is_stored`]) and copied otherwise, and about `other_bytes` of
    /// everything else (headers, topic and partition fields).
    pub(crate) fn new<'a>(other_bytes: usize, records: impl Iterator<Item = &'a Bytes>) -> Self {
        let mut stored = Vec::new();
        let mut copied_bytes = 0;
        for r in records {
            if Self::is_stored(r) {
                stored.push(r.clone());
            } else {
                copied_bytes += r.len();
            }
        }
        let mut piece = BytesMut::with_capacity(other_bytes + copied_bytes + 4);
        piece.put_i32(0);
        AnswerBuf {
            first: None,
            pieces: Vec::new(),
            piece,
            finished_bytes: 0,
            stored,
            next_stored: 0,
        }
    }

    /// The piece being filled, for encoders that take a `BytesMut`: what they write is copied,
    /// nothing is kept by reference.
    pub(crate) fn piece_mut(&mut self) -> &mut BytesMut {
        &mut self.piece
    }

    /// Whether a records buffer this large becomes a piece of its own.
    fn is_stored(records: &Bytes) -> bool {
        records.len() >= STORED_PIECE_MIN_BYTES
    }

    /// The finished answer with its length prefix written; `None` if it exceeds `i32::MAX`.
    pub(crate) fn finish(self) -> Option<EncodedAnswer> {
        let len = i32::try_from(self.finished_bytes + self.piece.len() - 4).ok()?;
        let prefix = len.to_be_bytes();
        let pieces = match self.first {
            // Nothing was kept by reference: one piece.
            None => {
                let mut whole = self.piece;
                whole[..4].copy_from_slice(&prefix);
                vec![whole.freeze()]
            }
            Some(mut first) => {
                first[..4].copy_from_slice(&prefix);
                let mut pieces = Vec::with_capacity(self.pieces.len() + 2);
                pieces.push(first.freeze());
                pieces.extend(self.pieces);
                if !self.piece.is_empty() {
                    pieces.push(self.piece.freeze());
                }
                pieces
            }
        };
        Some(EncodedAnswer { pieces })
    }

    /// Whether `src` is the next records buffer to keep by reference.
    fn is_next_stored(&self, src: &[u8]) -> bool {
        self.stored
            .get(self.next_stored)
            .is_some_and(|r| r.as_ptr() == src.as_ptr() && r.len() == src.len())
    }

    /// Ends the piece being filled and adds the next stored records as a piece.
    fn keep_next_stored(&mut self) {
        let done = self.piece.split();
        self.finished_bytes += done.len();
        if self.first.is_none() {
            // Kept apart until `finish` knows the length for its prefix.
            self.first = Some(done);
        } else if !done.is_empty() {
            self.pieces.push(done.freeze());
        }
        let records = self.stored[self.next_stored].clone();
        self.finished_bytes += records.len();
        self.pieces.push(records);
        self.next_stored += 1;
    }
}

// SAFETY: the methods that hand out or advance over uninitialised memory are `BytesMut`'s own,
// called on `self.piece` with the caller's arguments, so `BytesMut`'s guarantees are these.
// `put_slice` either writes through them or records a reference and writes nothing here.
unsafe impl BufMut for AnswerBuf {
    fn remaining_mut(&self) -> usize {
        self.piece.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: forwarded with the caller's guarantee that `cnt` bytes were initialised.
        unsafe { self.piece.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.piece.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if self.is_next_stored(src) {
            self.keep_next_stored();
        } else {
            self.piece.put_slice(src);
        }
    }
}

impl ByteBufMut for AnswerBuf {
    fn offset(&self) -> usize {
        self.finished_bytes + self.piece.len()
    }

    // The codec seeks and reads back only while encoding record batches (sizes and CRCs),
    // never while encoding a response's messages; were it to, it would be within the piece
    // being filled.
    fn seek(&mut self, offset: usize) {
        assert!(
            offset >= self.finished_bytes,
            "an answer is not sought back into a finished piece"
        );
        self.piece.resize(offset - self.finished_bytes, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        assert!(
            r.start >= self.finished_bytes,
            "an answer's finished pieces are not read back"
        );
        let base = self.finished_bytes;
        &mut self.piece[r.start - base..r.end - base]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn response(records: &[Bytes]) -> FetchResponse {
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(
                records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        PartitionData::default()
                            .with_partition_index(i as i32)
                            .with_records(Some(r.clone()))
                    })
                    .collect(),
            )])
    }

    /// The answer as the codec writes it into one buffer, length prefix first.
    fn plain(response: &FetchResponse, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        response.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf.freeze()
    }

    fn pieced(response: &FetchResponse, version: i16) -> EncodedAnswer {
        let records: Vec<&Bytes> = response
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.records.as_ref())
            .collect();
        let mut buf = AnswerBuf::new(64, records.into_iter());
        response.encode(&mut buf, version).unwrap();
        buf.finish().unwrap()
    }

    #[test]
    fn large_records_are_pieces_of_their_own_and_the_bytes_are_the_codecs() {
        let big = |fill: u8| Bytes::from(vec![fill; STORED_PIECE_MIN_BYTES + 5]);
        let small = Bytes::from(vec![9u8; 100]);
        for version in [4, 11, 12, 13] {
            for records in [
                vec![big(1), small.clone(), big(2)],
                vec![big(1)],
                vec![small.clone()],
                vec![small.clone(), big(3)],
                vec![],
            ] {
                let response = response(&records);
                let answer = pieced(&response, version);
                assert_eq!(answer.to_bytes(), plain(&response, version), "v{version}");
                assert_eq!(answer.len(), plain(&response, version).len());
                // Each large records buffer is written from where it is stored.
                for r in records.iter().filter(|r| AnswerBuf::is_stored(r)) {
                    assert!(
                        answer.pieces().iter().any(|p| p.as_ptr() == r.as_ptr()),
                        "v{version}: records not kept by reference"
                    );
                }
                assert!(answer.pieces().iter().all(|p| !p.is_empty()));
            }
        }
    }

    #[test]
    fn records_met_out_of_order_are_copied() {
        let a = Bytes::from(vec![1u8; STORED_PIECE_MIN_BYTES]);
        let b = Bytes::from(vec![2u8; STORED_PIECE_MIN_BYTES]);
        let response = response(&[a.clone(), b.clone()]);
        // Told of them in the wrong order: the codec meets `a` first, looked for is `b`.
        let mut buf = AnswerBuf::new(64, [&b, &a].into_iter());
        response.encode(&mut buf, 12).unwrap();
        let answer = buf.finish().unwrap();
        assert_eq!(answer.to_bytes(), plain(&response, 12));
        assert!(answer.pieces().iter().all(|p| p.as_ptr() != a.as_ptr()));
    }
}
