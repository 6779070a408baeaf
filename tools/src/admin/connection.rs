//! [`Connection`]: one blocking TCP connection to a Kafka broker, with the API versions both
//! sides support negotiated on connect.
//!
//! A frame is a 4-byte big-endian size, then a request header and body (or a response header
//! and body). The header's own version depends on the API and its version (flexible versions
//! use header v2 with tagged fields), so it comes from `ApiKey::request_header_version` and
//! `response_header_version` rather than being fixed.
//!
//! Version choice: the first request on every connection is ApiVersions; each later request
//! goes at the highest version in both the server's advertised range and the range the
//! `kafka-protocol` crate can encode. Traps:
//! - A server that does not serve our ApiVersions version answers UNSUPPORTED_VERSION with a
//!   v0-shaped body (which may not even decode as the version we sent); we then decode that
//!   body as v0, read the server's range, and ask again at its highest version.
//! - Produce and Fetch stop at v12: from v13 they name topics by id, and this client names
//!   them by name (`NAMES_TOPICS_UNTIL`).
//! - A response's size prefix is checked against [`limits::RESPONSE_BYTES_MAX`] before any
//!   allocation: pointing `--bootstrap` at an HTTP or TLS port must fail cleanly, not allocate
//!   gigabytes.
//!
//! The admin client is synchronous on purpose: one command, a handful of round trips, no
//! runtime to start.

use std::collections::HashMap;
use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Request, StrBytes, VersionRange,
};

use crate::admin::error::AdminError;
use crate::admin::limits;
use crate::sasl::SaslCall;
use crate::transport::{Security, Stream};

/// The client id every request carries.
const CLIENT_ID: &str = "spindle-admin";

/// The ApiVersions version asked first; v3 and later carry the client's name.
const API_VERSIONS_FIRST: i16 = 3;

/// The last version of each API that names topics by name: this client sends names, so it never
/// goes past them.
const NAMES_TOPICS_UNTIL: [(ApiKey, i16); 2] = [(ApiKey::Produce, 12), (ApiKey::Fetch, 12)];

/// Kafka's UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// A connection to one broker.
pub struct Connection {
    addr: String,
    stream: Stream,
    next_correlation_id: i32,
    /// The server's advertised range for each API key.
    served: HashMap<i16, VersionRange>,
}

impl Connection {
    /// Connects to `addr` (host:port) and negotiates API versions.
    ///
    /// # Errors
    /// [`AdminError::Unreachable`] when no resolved address accepts the connection within
    /// [`limits::CONNECT_TIMEOUT`]; the errors of [`Connection::call`] for ApiVersions.
    pub fn connect(addr: &str) -> Result<Self, AdminError> {
        Self::connect_as(addr, &Security::default())
    }

    /// Connects to `addr`, over TLS with `security.tls`, negotiates API versions and, with
    /// `security.login`, logs in with SASL.
    ///
    /// # Errors
    /// As [`Connection::connect`] (a failed TLS handshake included); [`AdminError::Kafka`]
    /// when the server refuses the mechanism or the credentials.
    pub fn connect_as(addr: &str, security: &Security) -> Result<Self, AdminError> {
        let stream = Stream::connect(addr, security.tls.as_ref(), limits::CONNECT_TIMEOUT)
            .map_err(|source| AdminError::Unreachable {
                addr: addr.to_owned(),
                source,
            })?;
        let io = |source| AdminError::Io {
            addr: addr.to_owned(),
            doing: "configuring the connection",
            source,
        };
        let socket = stream.socket();
        socket
            .set_read_timeout(Some(limits::CALL_TIMEOUT))
            .map_err(io)?;
        socket
            .set_write_timeout(Some(limits::CALL_TIMEOUT))
            .map_err(io)?;
        let mut conn = Self {
            addr: addr.to_owned(),
            stream,
            next_correlation_id: 1,
            served: HashMap::new(),
        };
        conn.negotiate()?;
        if let Some(login) = &security.login {
            login.authenticate(&mut conn)?;
        }
        Ok(conn)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The version to send `R` at: the highest both this client and the server support.
    ///
    /// # Errors
    /// [`AdminError::Unsupported`] when the ranges do not overlap.
    pub fn version<R: Request>(&self) -> Result<i16, AdminError> {
        let unsupported = || AdminError::Unsupported {
            addr: self.addr.clone(),
            api: api_name(R::KEY),
        };
        let served = self.served.get(&R::KEY).ok_or_else(unsupported)?;
        let mut both = served.intersect(&R::VERSIONS);
        if let Some((_, last)) = NAMES_TOPICS_UNTIL
            .iter()
            .find(|(key, _)| *key as i16 == R::KEY)
        {
            both.max = both.max.min(*last);
        }
        if both.is_empty() {
            return Err(unsupported());
        }
        Ok(both.max)
    }

    /// Sends `request` at the negotiated version and waits for its response.
    ///
    /// # Errors
    /// As [`Connection::version`] and [`Connection::call_at`].
    pub fn call<R: Request>(&mut self, request: &R) -> Result<R::Response, AdminError> {
        let version = self.version::<R>()?;
        self.call_at(request, version)
    }

    /// Sends `request` at `version` and waits for its response.
    ///
    /// # Errors
    /// [`AdminError::Io`] on a broken or silent connection, [`AdminError::Protocol`] on a
    /// response that does not decode or answers another request.
    pub fn call_at<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, AdminError> {
        let (correlation_id, mut body) = self.round_trip(request, version)?;
        let header = self.decode_header::<R>(&mut body, version)?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol(format!(
                "{} response for request {} arrived for request {correlation_id}",
                api_name(R::KEY),
                header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| {
            self.protocol(format!(
                "cannot decode a {} v{version} response: {e}",
                api_name(R::KEY)
            ))
        })
    }

    /// Asks the server which versions it serves and records them.
    fn negotiate(&mut self) -> Result<(), AdminError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response = self.api_versions(&request, API_VERSIONS_FIRST)?;
        if response.error_code == UNSUPPORTED_VERSION {
            let server_max = response
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiVersionsRequest::KEY)
                .map_or(0, |k| k.max_version);
            let retry = server_max.clamp(0, API_VERSIONS_FIRST);
            response = self.api_versions(&request, retry)?;
        }
        AdminError::check(response.error_code, None, || {
            format!("asking {} for its API versions", self.addr)
        })?;
        self.served = response
            .api_keys
            .iter()
            .map(|k| {
                let range = VersionRange {
                    min: k.min_version,
                    max: k.max_version,
                };
                (k.api_key, range)
            })
            .collect();
        Ok(())
    }

    /// One ApiVersions round trip at `version`; an UNSUPPORTED_VERSION answer is decoded as v0.
    fn api_versions(
        &mut self,
        request: &ApiVersionsRequest,
        version: i16,
    ) -> Result<ApiVersionsResponse, AdminError> {
        let (correlation_id, mut body) = self.round_trip(request, version)?;
        let header = self.decode_header::<ApiVersionsRequest>(&mut body, version)?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol("ApiVersions answered another request".to_owned()));
        }
        let as_asked = ApiVersionsResponse::decode(&mut body.clone(), version);
        match as_asked {
            Ok(response) if response.error_code != UNSUPPORTED_VERSION => Ok(response),
            _ => ApiVersionsResponse::decode(&mut body, 0)
                .map_err(|e| self.protocol(format!("cannot decode an ApiVersions response: {e}"))),
        }
    }

    /// Sends one request frame and reads one response frame; returns the correlation id used.
    fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<(i32, Bytes), AdminError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, correlation_id)
            .map_err(|e| self.protocol(format!("cannot encode {}: {e}", api_name(R::KEY))))?;
        self.stream
            .write_all(&frame)
            .map_err(|source| self.io("sending a request", source))?;
        let body = self.read_frame()?;
        Ok((correlation_id, body))
    }

    fn decode_header<R: Request>(
        &self,
        body: &mut Bytes,
        version: i16,
    ) -> Result<ResponseHeader, AdminError> {
        let header_version = R::Response::header_version(version);
        ResponseHeader::decode(body, header_version)
            .map_err(|e| self.protocol(format!("cannot decode a response header: {e}")))
    }

    /// Reads one size-prefixed frame.
    fn read_frame(&mut self) -> Result<Bytes, AdminError> {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|source| self.io("waiting for a response", source))?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= limits::RESPONSE_BYTES_MAX)
            .ok_or_else(|| {
                self.protocol(format!(
                    "a response frame of {size} bytes (the limit is {})",
                    limits::RESPONSE_BYTES_MAX
                ))
            })?;
        let mut body = vec![0u8; size];
        self.stream
            .read_exact(&mut body)
            .map_err(|source| self.io("reading a response", source))?;
        Ok(Bytes::from(body))
    }

    fn io(&self, doing: &'static str, source: std::io::Error) -> AdminError {
        AdminError::Io {
            addr: self.addr.clone(),
            doing,
            source,
        }
    }

    fn protocol(&self, reason: String) -> AdminError {
        AdminError::Protocol {
            addr: self.addr.clone(),
            reason,
        }
    }
}

/// Encodes a whole request frame: size prefix, header, body.
fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> anyhow::Result<BytesMut> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let header_version = R::header_version(version);
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header.encode(&mut frame, header_version)?;
    request.encode(&mut frame, version)?;
    let size = i32::try_from(frame.len() - 4)?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// The API's name for messages, e.g. `Metadata`.
fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::CreateTopics) => "CreateTopics",
        Ok(ApiKey::DeleteTopics) => "DeleteTopics",
        Ok(ApiKey::CreatePartitions) => "CreatePartitions",
        Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
        Ok(ApiKey::IncrementalAlterConfigs) => "IncrementalAlterConfigs",
        Ok(ApiKey::ListOffsets) => "ListOffsets",
        Ok(ApiKey::ListGroups) => "ListGroups",
        Ok(ApiKey::DescribeGroups) => "DescribeGroups",
        Ok(ApiKey::FindCoordinator) => "FindCoordinator",
        Ok(ApiKey::OffsetFetch) => "OffsetFetch",
        Ok(ApiKey::OffsetCommit) => "OffsetCommit",
        Ok(ApiKey::DescribeCluster) => "DescribeCluster",
        _ => "requested",
    }
}

impl SaslCall for Connection {
    type Error = AdminError;

    fn sasl_call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, AdminError> {
        self.call_at(request, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    #[test]
    fn frames_carry_their_size_and_a_decodable_header() {
        let frame = encode_request(&MetadataRequest::default(), 12, 7).unwrap();
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(size as usize, frame.len() - 4);
        let mut rest = Bytes::copy_from_slice(&frame[4..]);
        let header =
            kafka_protocol::protocol::decode_request_header_from_buffer(&mut rest).unwrap();
        assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
        assert_eq!(header.request_api_version, 12);
        assert_eq!(header.correlation_id, 7);
        assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
    }

    #[test]
    fn an_unreachable_server_is_named() {
        // Bind then drop a listener: its port is very likely closed for the next instant.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let Err(e) = Connection::connect(&addr) else {
            panic!("connected to a closed port")
        };
        assert!(matches!(e, AdminError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains(&addr), "{e}");
    }

    #[test]
    fn a_server_that_is_not_kafka_is_refused_without_allocating() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
        });
        let Err(e) = Connection::connect(&addr) else {
            panic!("accepted an HTTP answer")
        };
        assert!(matches!(e, AdminError::Protocol { .. }), "{e}");
        server.join().unwrap();
    }
}
