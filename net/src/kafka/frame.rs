//! Kafka framing: every request is a 4-byte big-endian length followed by that many bytes.
//!
//! The body is read into memory that grows with the bytes that actually arrive, so a client that
//! announces a large frame and sends nothing holds no more than its read buffer; unless the
//! connection has reserved the frame's length from the shard's memory budget first (it does,
//! between [`FrameReader::next_length`] and [`FrameReader::read_body`]), then the whole body is
//! allocated at once. The connection therefore gives the body a deadline, [`body_timeout`]: a
//! client that announces a frame and stalls would otherwise hold the reserved memory forever,
//! and keep every request queued behind it for the shard's memory waiting too.

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncReadExt};
use kafka_protocol::messages::ApiKey;

use crate::limits::{
    DECODED_BYTES_PER_REQUEST_BYTE, FRAME_BODY_MIN_BYTES_PER_SEC, IDLE_READ_BYTES, MIN_FRAME_BYTES,
};

/// Why a frame could not be read. Every variant but [`FrameError::Closed`] is the client's fault
/// or the network's, and ends the connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The peer closed the connection between frames (the normal end).
    #[error("connection closed")]
    Closed,
    /// The length prefix exceeds the configured maximum, or is negative.
    #[error("frame length {len} outside {MIN_FRAME_BYTES}..={max}")]
    BadLength {
        /// The announced length.
        len: i64,
        /// The configured maximum.
        max: usize,
    },
    /// The connection ended inside a frame.
    #[error("truncated frame: expected {expected} bytes, got {got}")]
    Truncated {
        /// Bytes announced (or 4 for the length prefix itself).
        expected: usize,
        /// Bytes received before the end.
        got: usize,
    },
    /// A request of an API other than Produce too large for the memory decoding it may take
    /// (see [`crate::limits::DECODED_BYTES_PER_REQUEST_BYTE`]).
    #[error(
        "a {api} request of {len} bytes is more than {max}, the most a request other than \
         Produce may have (decoding one takes up to {DECODED_BYTES_PER_REQUEST_BYTE} times its \
         bytes, from a request memory of {share})",
        api = api_name(*api_key),
        share = max * DECODED_BYTES_PER_REQUEST_BYTE
    )]
    TooLargeToDecode {
        /// The request's API key.
        api_key: i16,
        /// The announced length.
        len: usize,
        /// The most such a request may have.
        max: usize,
    },
    /// The body did not arrive within its [`body_timeout`].
    #[error("frame body of {len} bytes not received within {timeout_ms} ms")]
    SlowBody {
        /// The announced length.
        len: usize,
        /// The deadline it missed.
        timeout_ms: u128,
    },
    /// No request began within the connection's idle time (the normal end of a quiet client).
    #[error("no request for {idle_ms} ms")]
    Idle {
        /// The idle time that passed.
        idle_ms: u128,
    },
    /// The socket failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

/// An API's name for messages (`ListOffsets`), or its number when it has none.
fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|()| format!("API key {key}"), |api| format!("{api:?}"))
}

/// How long the body of a frame of `len` bytes may take to arrive: `base` (the configured frame
/// body timeout) plus the time its bytes take at [`FRAME_BODY_MIN_BYTES_PER_SEC`].
pub(crate) fn body_timeout(len: usize, base: Duration) -> Duration {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    let transfer_ms = len.saturating_mul(1000) / FRAME_BODY_MIN_BYTES_PER_SEC;
    base.saturating_add(Duration::from_millis(transfer_ms))
}

/// Reads whole frames from a byte stream, through a read buffer of its own.
///
/// The buffer gathers small frames (and every length prefix) into few reads; a body longer
/// than what the buffer holds is completed by reads straight into the body, so the bulk of a
/// large Produce is copied once, by the kernel, and only its part not yet received is zeroed
/// before the read fills it.
///
/// The buffer is small while the connection waits: a read that would block gives the large
/// buffer back to the shard's spares ([`SpareBuffers`]) and waits with [`IDLE_READ_BYTES`]
/// inline. A wait ends in a read into that small buffer; only when it comes back full (more
/// is probably waiting: a client pipelining small requests) does the reader take a large
/// buffer again, from the spares where one is kept. Ten thousand idle connections therefore
/// hold no read buffer at all, and a busy one takes a spare only while it keeps reading.
pub(crate) struct FrameReader<R> {
    inner: R,
    /// The large buffer, while the connection is busy.
    large: Option<Box<[u8]>>,
    /// The buffer a waiting connection reads into.
    small: [u8; IDLE_READ_BYTES],
    /// The unread bytes are `pos..end` of the buffer in use (`large` if any, else `small`).
    pos: usize,
    end: usize,
    large_bytes: usize,
    max_frame_bytes: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads frames of at most `max_frame_bytes` from `inner`, with a read buffer of
    /// `buffer_bytes` (at least [`IDLE_READ_BYTES`]) while the connection is busy.
    pub(crate) fn new(inner: R, buffer_bytes: usize, max_frame_bytes: usize) -> Self {
        Self {
            inner,
            large: None,
            small: [0; IDLE_READ_BYTES],
            pos: 0,
            end: 0,
            large_bytes: buffer_bytes.max(IDLE_READ_BYTES),
            max_frame_bytes,
        }
    }

    /// The next frame's body, without its length prefix.
    ///
    /// # Errors
    /// [`FrameError::Closed`] at a clean end of stream, any other variant for a broken frame.
    #[cfg(test)]
    pub(crate) async fn next(&mut self) -> Result<Bytes, FrameError> {
        let header = self.next_header().await?;
        self.read_body(header).await
    }

    /// The next frame's length prefix, validated, and the API key that begins its body; read
    /// the rest with [`FrameReader::read_body`] (a connection reserves the memory in between,
    /// how much depending on the API).
    ///
    /// # Errors
    /// As [`FrameReader::next`].
    pub(crate) async fn next_header(&mut self) -> Result<FrameHeader, FrameError> {
        let len = self.next_length().await?;
        let mut key = [0u8; 2];
        let got = self.read_buffered(&mut key).await?;
        if got < key.len() {
            return Err(FrameError::Truncated { expected: len, got });
        }
        Ok(FrameHeader {
            len,
            api_key: i16::from_be_bytes(key),
        })
    }

    async fn next_length(&mut self) -> Result<usize, FrameError> {
        let mut prefix = [0u8; 4];
        let got = self.read_buffered(&mut prefix).await?;
        if got == 0 {
            return Err(FrameError::Closed);
        }
        if got < prefix.len() {
            return Err(FrameError::Truncated { expected: 4, got });
        }
        let len = i32::from_be_bytes(prefix);
        let len = usize::try_from(len)
            .ok()
            .filter(|len| (MIN_FRAME_BYTES..=self.max_frame_bytes).contains(len))
            .ok_or(FrameError::BadLength {
                len: i64::from(len),
                max: self.max_frame_bytes,
            })?;
        Ok(len)
    }

    /// The body of the frame [`FrameReader::next_header`] began, its API key included, read
    /// straight into a buffer of its length (the connection has reserved the memory for it).
    ///
    /// # Errors
    /// [`FrameError::Truncated`] or [`FrameError::Io`].
    pub(crate) async fn read_body(&mut self, header: FrameHeader) -> Result<Bytes, FrameError> {
        let len = header.len;
        let mut body = Vec::with_capacity(len);
        body.extend_from_slice(&header.api_key.to_be_bytes());
        let buffered = self.buffered();
        let from_buffer = buffered.len().min(len - body.len());
        body.extend_from_slice(&buffered[..from_buffer]);
        self.pos += from_buffer;
        let have = body.len();
        if have < len {
            // The buffer is empty now: read the rest past it, into the body.
            body.resize(len, 0);
            let got = have + read_full(&mut self.inner, &mut body[have..]).await?;
            if got < len {
                return Err(FrameError::Truncated { expected: len, got });
            }
        }
        Ok(Bytes::from(body))
    }

    /// The bytes read and not yet consumed.
    fn buffered(&self) -> &[u8] {
        let buffer = self.large.as_deref().unwrap_or(&self.small);
        &buffer[self.pos..self.end]
    }

    /// Fills `out` from the buffer, reading more as needed; returns how many bytes it holds
    /// (fewer only where the stream ended).
    async fn read_buffered(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < out.len() {
            if self.pos == self.end && self.fill().await? == 0 {
                break;
            }
            let buffered = self.buffered();
            let n = buffered.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&buffered[..n]);
            self.pos += n;
            filled += n;
        }
        Ok(filled)
    }

    /// Reads into the empty buffer; returns how many bytes came (0 at the end of the stream).
    async fn fill(&mut self) -> io::Result<usize> {
        debug_assert_eq!(self.pos, self.end, "fill with bytes unread");
        self.pos = 0;
        self.end = 0;
        let n = if let Some(large) = self.large.as_deref_mut() {
            match future::poll_once(read_once(&mut self.inner, large)).await {
                Some(read) => read?,
                None => {
                    // Nothing to read: wait without the large buffer.
                    SpareBuffers::give_back(self.large.take());
                    read_once(&mut self.inner, &mut self.small).await?
                }
            }
        } else {
            read_once(&mut self.inner, &mut self.small).await?
        };
        if self.large.is_none() && n == self.small.len() {
            // The small buffer came back full: more is probably waiting.
            let mut large = SpareBuffers::take(self.large_bytes);
            large[..n].copy_from_slice(&self.small);
            self.large = Some(large);
        }
        self.end = n;
        Ok(n)
    }
}

impl<R> Drop for FrameReader<R> {
    fn drop(&mut self) {
        SpareBuffers::give_back(self.large.take());
    }
}

/// Large read buffers that connections gave back when they went quiet, kept per thread (each
/// shard's own; no other thread touches them) so that a connection waking up takes one
/// instead of allocating and zeroing it. At most [`SpareBuffers::MAX`] are kept.
struct SpareBuffers;

thread_local! {
    static SPARE_READ_BUFFERS: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

impl SpareBuffers {
    /// Buffers kept at most per thread: as many as connections that are typically busy at
    /// once on a shard, 512 KiB with the default size.
    const MAX: usize = 32;

    /// A buffer of `bytes`, a spare if one of that size is kept.
    fn take(bytes: usize) -> Box<[u8]> {
        SPARE_READ_BUFFERS
            .with_borrow_mut(|spares| match spares.last() {
                Some(spare) if spare.len() == bytes => spares.pop(),
                _ => None,
            })
            .unwrap_or_else(|| vec![0; bytes].into_boxed_slice())
    }

    /// Keeps `buffer` for the next [`SpareBuffers::take`], unless enough are kept already.
    fn give_back(buffer: Option<Box<[u8]>>) {
        let Some(buffer) = buffer else { return };
        SPARE_READ_BUFFERS.with_borrow_mut(|spares| {
            if spares.len() < Self::MAX {
                spares.push(buffer);
            }
        });
    }
}

/// What a frame's first bytes say: its length and its API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// The body's length (the prefix), within the configured bounds.
    pub(crate) len: usize,
    /// The API key, the body's first two bytes (not checked here).
    pub(crate) api_key: i16,
}

/// One read, retried if interrupted; returns how many bytes were read (0 at the end of the
/// stream).
async fn read_once<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf).await {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => return read,
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
async fn read_full<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read_once(reader, &mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    fn frames(bytes: &[u8], max: usize) -> Vec<Result<Bytes, String>> {
        let mut reader = FrameReader::new(bytes, 64, max);
        let mut out = Vec::new();
        block_on(async {
            loop {
                match reader.next().await {
                    Ok(frame) => out.push(Ok(frame)),
                    Err(FrameError::Closed) => break,
                    Err(e) => {
                        out.push(Err(e.to_string()));
                        break;
                    }
                }
            }
        });
        out
    }

    #[test]
    fn reads_consecutive_frames() {
        let mut wire = Vec::new();
        for body in [&b"12345678"[..], &b"abcdefghij"[..]] {
            wire.extend_from_slice(&(body.len() as i32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        let got = frames(&wire, 100);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1].as_ref().ok().map(|b| &b[..]),
            Some(&b"abcdefghij"[..])
        );
    }

    #[test]
    fn oversize_negative_and_tiny_lengths_are_refused() {
        for len in [101i32, -1, 3, i32::MIN] {
            let got = frames(&len.to_be_bytes(), 100);
            assert!(
                matches!(&got[..], [Err(e)] if e.contains("outside")),
                "{len}: {got:?}"
            );
        }
    }

    #[test]
    fn a_request_too_large_to_decode_is_named_by_its_api() {
        let err = FrameError::TooLargeToDecode {
            api_key: 2,
            len: 9 << 20,
            max: 8 << 20,
        };
        assert!(
            err.to_string()
                .starts_with("a ListOffsets request of 9437184 bytes"),
            "{err}"
        );
        assert!(api_name(999).contains("API key 999"));
    }

    #[test]
    fn truncated_prefix_and_body_are_reported() {
        let got = frames(&[0, 0], 100);
        assert!(matches!(&got[..], [Err(e)] if e.contains("truncated")));
        let mut wire = 20i32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"only ten b");
        let got = frames(&wire, 100);
        assert!(matches!(&got[..], [Err(e)] if e.contains("expected 20 bytes, got 10")));
    }

    /// A stream that hands out at most `step` bytes per read, as a socket may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(self.step).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            std::task::Poll::Ready(Ok(n))
        }
    }

    /// Bodies of the given lengths, each with bytes of its own, and the frames that carry them.
    fn numbered_frames(lens: &[usize]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let bodies: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| (0..len).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let mut wire = Vec::new();
        for body in &bodies {
            wire.extend_from_slice(&(body.len() as i32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        (bodies, wire)
    }

    #[test]
    fn bodies_longer_than_the_buffer_and_frames_split_across_reads_arrive_whole() {
        let (bodies, wire) = numbered_frames(&[10, 5000, 8, 64, 65, 200, 70_000, 9]);
        for (buffer, step) in [(64, usize::MAX), (64, 7), (4096, 1000), (16, 3)] {
            let mut reader = FrameReader::new(Trickle { bytes: &wire, step }, buffer, 1 << 20);
            block_on(async {
                for body in &bodies {
                    let got = reader.next().await.unwrap();
                    assert_eq!(&got[..], &body[..], "buffer {buffer}, reads of {step}");
                }
                assert!(matches!(reader.next().await, Err(FrameError::Closed)));
            });
        }
    }

    /// A stream that hands out its chunks one read at a time (each read at most `step` bytes of
    /// the chunk), and has nothing to read (`Pending`, waking its reader at once) between them.
    struct Chunks {
        chunks: Vec<Vec<u8>>,
        step: usize,
        waited: bool,
    }

    impl AsyncRead for Chunks {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let step = self.step;
            let Some(chunk) = self.chunks.first_mut() else {
                return std::task::Poll::Ready(Ok(0));
            };
            if chunk.is_empty() {
                if !self.waited {
                    self.waited = true;
                    cx.waker().wake_by_ref();
                    return std::task::Poll::Pending;
                }
                self.waited = false;
                self.chunks.remove(0);
                return self.poll_read(cx, buf);
            }
            let n = buf.len().min(step).min(chunk.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            std::task::Poll::Ready(Ok(n))
        }
    }

    fn frame_of(len: usize, fill: u8) -> Vec<u8> {
        let mut wire = (len as i32).to_be_bytes().to_vec();
        wire.extend(std::iter::repeat_n(fill, len));
        wire
    }

    #[test]
    fn a_waiting_reader_gives_its_large_buffer_back_and_takes_one_when_busy() {
        // Chunk 1: 40 small frames pipelined (more than the small buffer holds); chunk 2: one
        // small frame after a wait; chunk 3: a frame larger than the large buffer.
        let busy: Vec<u8> = (0..40u8).flat_map(|i| frame_of(100, i)).collect();
        let chunks = vec![
            busy,
            Vec::new(),
            frame_of(50, 99),
            Vec::new(),
            frame_of(70_000, 7),
        ];
        let wait = Chunks {
            chunks,
            step: usize::MAX,
            waited: false,
        };
        let mut reader = FrameReader::new(wait, 4096, 1 << 20);
        block_on(async {
            for i in 0..40u8 {
                let got = reader.next().await.unwrap();
                assert_eq!(&got[..], &[i; 100][..]);
                assert!(
                    reader.large.is_some(),
                    "frame {i}: a full small read takes one"
                );
            }
            let got = reader.next().await.unwrap();
            assert_eq!(&got[..], &[99; 50][..]);
            assert!(reader.large.is_none(), "given back while waiting");
            let spares = SPARE_READ_BUFFERS.with_borrow(Vec::len);
            assert!(spares >= 1);
            let got = reader.next().await.unwrap();
            assert_eq!(got.len(), 70_000);
            assert!(got.iter().all(|&b| b == 7));
            assert_eq!(
                SPARE_READ_BUFFERS.with_borrow(Vec::len),
                spares - 1,
                "a spare reused"
            );
            assert!(matches!(reader.next().await, Err(FrameError::Closed)));
        });
        drop(reader);
        assert!(
            SPARE_READ_BUFFERS.with_borrow(Vec::len) >= 1,
            "given back when dropped"
        );
    }

    #[test]
    fn frames_split_across_waits_arrive_whole() {
        let (bodies, wire) = numbered_frames(&[10, 1500, 8, 1019, 1020, 1021, 5000, 9]);
        for cut in [1, 3, 5, 700, 1023, 1024, 1025, 2048] {
            for step in [usize::MAX, 7] {
                // The stream in pieces of `cut` bytes, with a wait between each.
                let wait = Chunks {
                    chunks: wire
                        .chunks(cut)
                        .flat_map(|piece| [piece.to_vec(), Vec::new()])
                        .collect(),
                    step,
                    waited: false,
                };
                let mut reader = FrameReader::new(wait, 2048, 1 << 20);
                block_on(async {
                    for body in &bodies {
                        let got = reader.next().await.unwrap();
                        assert_eq!(&got[..], &body[..], "pieces of {cut}, reads of {step}");
                    }
                    assert!(matches!(reader.next().await, Err(FrameError::Closed)));
                });
            }
        }
    }

    #[test]
    fn a_body_has_the_base_timeout_plus_its_bytes_at_the_minimum_rate() {
        let base = Duration::from_secs(30);
        assert_eq!(body_timeout(100, base), base);
        assert_eq!(
            body_timeout(100 << 20, base),
            Duration::from_secs(30 + 100 * (1 << 20) / FRAME_BODY_MIN_BYTES_PER_SEC)
        );
        assert_eq!(
            body_timeout(usize::MAX, Duration::MAX),
            Duration::MAX,
            "saturates"
        );
    }

    #[test]
    fn a_long_body_is_read_whole_or_reported_truncated() {
        let body = vec![7u8; 5000];
        let mut wire = (body.len() as i32).to_be_bytes().to_vec();
        wire.extend_from_slice(&body);
        block_on(async {
            let mut reader = FrameReader::new(&wire[..], 64, 1 << 20);
            let header = reader.next_header().await.unwrap();
            assert_eq!(
                header,
                FrameHeader {
                    len: 5000,
                    api_key: 0x0707
                }
            );
            let got = reader.read_body(header).await.unwrap();
            assert_eq!(&got[..], &body[..]);

            let mut reader = FrameReader::new(&wire[..4000], 64, 1 << 20);
            let header = reader.next_header().await.unwrap();
            let err = reader.read_body(header).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    FrameError::Truncated {
                        expected: 5000,
                        got: 3996
                    }
                ),
                "{err}"
            );
        });
    }
}
