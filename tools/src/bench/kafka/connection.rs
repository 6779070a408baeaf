//! [`Connection`]: one blocking connection (TCP, or TLS over it: [`crate::transport`]) to a
//! broker speaking the Kafka wire protocol.
//!
//! Frames are a 4-byte big-endian size followed by a request (header + body) or a response
//! (header + body), encoded and decoded with the `kafka-protocol` crate. Admin calls use
//! [`Connection::call`] (one request, wait for its answer). Producers pipeline instead: they
//! [`Connection::split`] the connection into a writing and a reading half and keep several
//! requests outstanding; Kafka answers requests on a connection in the order it received them,
//! so the reader matches responses to requests with a FIFO and checks the correlation ids.
//!
//! Blocking sockets on plain threads are enough here and keep the generator lean: each
//! producer is a writer thread and a reader thread, and there is no runtime between the
//! socket and the clock that measures latency.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use crate::bench::limits;
use crate::sasl::SaslCall;
use crate::transport::{ReadHalf, Security, Stream, WriteHalf};

/// The client id every request carries.
pub const CLIENT_ID: &str = "spindle-bench";

/// Longest an admin call waits for its answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to one broker.
pub struct Connection {
    stream: Stream,
    next_correlation_id: i32,
}

/// The half of a split connection that sends.
pub struct Writer {
    half: WriteHalf,
    next_correlation_id: i32,
}

/// The half of a split connection that receives.
pub struct Reader {
    half: ReadHalf,
}

impl Connection {
    /// Connects to `addr` (host:port), over TLS with `security.tls`, and with
    /// `security.login` logs in with SASL before anything else is sent.
    ///
    /// # Errors
    /// Resolution, connection and TLS handshake errors, a refused login.
    pub fn connect(addr: &str, security: &Security) -> anyhow::Result<Self> {
        let stream = Stream::connect(addr, security.tls.as_ref(), limits::CONNECT_TIMEOUT)
            .with_context(|| format!("connecting to {addr}"))?;
        let mut conn = Self {
            stream,
            next_correlation_id: 1,
        };
        if let Some(login) = &security.login {
            login
                .authenticate(&mut conn)
                .with_context(|| format!("logging in to {addr}"))?;
        }
        Ok(conn)
    }

    /// Sends `request` at `version` and waits for its response.
    ///
    /// # Errors
    /// I/O errors, a timeout, an undecodable or mismatched response.
    pub fn call<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<R::Response> {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, id)?;
        self.stream
            .socket()
            .set_read_timeout(Some(CALL_TIMEOUT))
            .context("setting a read timeout")?;
        self.stream.write_all(&frame).context("sending a request")?;
        let response = read_frame(&mut self.stream)?;
        let (got, body) = decode_response::<R>(response, version)?;
        ensure!(got == id, "response correlation id {got}, expected {id}");
        Ok(body)
    }

    /// Splits into a writing and a reading half over the same socket. The reader gives up on
    /// an answer after [`limits::DRAIN_TIMEOUT_SECS`].
    ///
    /// # Errors
    /// Failure to duplicate the socket.
    pub fn split(self) -> anyhow::Result<(Writer, Reader)> {
        let (write, read) = self.stream.split().context("duplicating the socket")?;
        read.socket()
            .set_read_timeout(Some(Duration::from_secs(limits::DRAIN_TIMEOUT_SECS)))
            .context("setting the read timeout")?;
        Ok((
            Writer {
                half: write,
                next_correlation_id: self.next_correlation_id,
            },
            Reader { half: read },
        ))
    }
}

impl SaslCall for Connection {
    type Error = anyhow::Error;

    fn sasl_call<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<R::Response> {
        self.call(request, version)
    }
}

impl Writer {
    /// The correlation id the next frame must carry; each call hands out a new one.
    pub fn take_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        id
    }

    /// Sends one encoded frame.
    ///
    /// # Errors
    /// I/O errors.
    pub fn send(&mut self, frame: &[u8]) -> anyhow::Result<()> {
        self.half.send(frame).context("sending a request")
    }
}

impl Reader {
    /// Receives the next response and decodes it as the answer to `R` at `version`.
    ///
    /// # Errors
    /// I/O errors, a closed connection, an undecodable response.
    pub fn receive<R: Request>(&mut self, version: i16) -> anyhow::Result<(i32, R::Response)> {
        let frame = read_frame(&mut self.half)?;
        decode_response::<R>(frame, version)
    }
}

/// Encodes `request` as a whole frame (size prefix, header, body).
///
/// # Errors
/// Encoding errors (a field out of range for `version`).
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> anyhow::Result<BytesMut> {
    let api_key = ApiKey::try_from(R::KEY).map_err(|()| anyhow::anyhow!("unknown API key"))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let header_version = api_key.request_header_version(version);
    let size = header.compute_size(header_version)? + request.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.extend_from_slice(
        &i32::try_from(size)
            .context("request too large")?
            .to_be_bytes(),
    );
    header.encode(&mut buf, header_version)?;
    request.encode(&mut buf, version)?;
    ensure!(
        buf.len() == 4 + size,
        "encoded size differs from computed size"
    );
    Ok(buf)
}

/// Decodes one response frame (without its size prefix) as the answer to `R`.
///
/// # Errors
/// A frame that does not decode.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> anyhow::Result<(i32, R::Response)> {
    let api_key = ApiKey::try_from(R::KEY).map_err(|()| anyhow::anyhow!("unknown API key"))?;
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))
        .context("decoding a response header")?;
    let body = R::Response::decode(&mut frame, version)
        .with_context(|| format!("decoding a {api_key:?} v{version} response"))?;
    Ok((header.correlation_id, body))
}

/// Reads one size-prefixed frame and returns it without the prefix.
///
/// # Errors
/// I/O errors, end of stream, a size above [`limits::FRAME_BYTES_MAX`] or negative.
pub fn read_frame(stream: &mut impl Read) -> anyhow::Result<Bytes> {
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .context("reading a response size (connection closed?)")?;
    let size = i32::from_be_bytes(size);
    let Ok(len) = usize::try_from(size) else {
        bail!("negative response size {size}");
    };
    ensure!(
        len <= limits::FRAME_BYTES_MAX,
        "response of {len} bytes exceeds {}",
        limits::FRAME_BYTES_MAX
    );
    let mut buf = vec![0u8; len];
    stream
        .read_exact(&mut buf)
        .context("reading a response body")?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

    #[test]
    fn request_frames_carry_their_size_and_header() {
        let frame = encode_request(&ApiVersionsRequest::default(), 0, 42).expect("encodes");
        let size = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
        assert_eq!(size as usize, frame.len() - 4);
        assert_eq!(
            i16::from_be_bytes([frame[4], frame[5]]),
            ApiKey::ApiVersions as i16
        );
        assert_eq!(i32::from_be_bytes(frame[8..12].try_into().expect("4")), 42);
    }

    #[test]
    fn responses_decode_with_their_correlation_id() {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut buf, 0)
            .expect("header");
        ApiVersionsResponse::default()
            .encode(&mut buf, 0)
            .expect("body");
        let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&buf);
        let frame = read_frame(&mut &framed[..]).expect("reads");
        let (id, _) = decode_response::<ApiVersionsRequest>(frame, 0).expect("decodes");
        assert_eq!(id, 7);
    }

    #[test]
    fn oversized_and_truncated_frames_are_refused() {
        let huge = (i32::MAX).to_be_bytes();
        assert!(read_frame(&mut &huge[..]).is_err());
        let short = [0, 0, 0, 10, 1, 2];
        assert!(read_frame(&mut &short[..]).is_err());
    }
}
