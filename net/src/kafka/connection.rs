//! One client connection: requests read continuously, handled concurrently, answered in order.
//!
//! The connection is two halves joined in one task. The reading half decodes each frame and
//! spawns its handling as a task of its own, so a slow request (a long-polling Fetch, a Produce
//! waiting for its write) does not hold up the ones behind it, and queues the task handle in a
//! bounded channel. The writing half takes the handles in the order they were queued and writes
//! each answer when its task finishes, so answers leave strictly in request order as the Kafka
//! protocol demands, and the channel's bound is the connection's limit on requests in flight.
//!
//! Requests are spawned in the order they arrive and glommio first polls tasks in spawn order,
//! so the produces of one connection reach the engine in the order the client sent them (an
//! idempotent producer's sequence numbers depend on it).
//!
//! Before it reads a frame's body the reading half reserves the frame's length from the shard's
//! memory budget ([`spindle_engine::MemoryBudget`]), [`DECODED_BYTES_PER_REQUEST_BYTE`] times
//! that for an API other than Produce (what decoding and answering it may take; it reads the
//! API key with the length to know), and gives it back once the request is
//! handled (its frame freed), not once the answer is written, so a client that does not read its
//! answers holds no memory others wait for. When the shard's request memory is spent, the reader
//! waits instead of reading: the socket's receive window fills and TCP pushes back on the client.
//! The reservation is FIFO, so a frame whose body never comes would keep its memory and every
//! connection queued behind it waiting: once the memory is reserved the body must arrive within
//! [`frame::body_timeout`] (the configured `frame_body_timeout_ms` plus the time of its bytes at
//! a modest minimum rate), or the connection is closed and the memory given back. The deadline
//! starts only once the memory is held, because waiting for memory is not the client's doing.
//!
//! With `[kafka.tls]` the socket is first wrapped in TLS (see `tls`): the handshake must finish
//! within [`TLS_HANDSHAKE_TIMEOUT`], and the halves below then read and write through it.
//!
//! A connection that sends no request for `connections_max_idle_ms` (Kafka's
//! `connections.max.idle.ms`, 10 minutes by default) is closed: its client reconnects when it
//! needs to, and a peer that vanished without closing stops holding the socket. The idle timer
//! starts only when the next request's length is not already buffered.
//!
//! A broken frame, a body that misses its deadline, an unknown API or an undecodable body (or
//! one followed by more than a few bytes it does not account for) ends the reading half with a
//! warning naming the peer; the answers already owed are still written, then the socket
//! closes. Nothing a client sends can fail another connection.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::OptionFuture;
use futures::FutureExt;
use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use spindle_engine::access::Principal;
use spindle_engine::{AnswerReservation, MemoryBudget, RequestReservation, Shard};

use crate::kafka::answer::EncodedAnswer;
use crate::kafka::api::produce;
use crate::kafka::connections::StopWatch;
use crate::kafka::context::{ConnectionState, RequestContext};
use crate::kafka::dispatch::{self, Answer, Decoded};
use crate::kafka::fetch_session::FetchSessionSlot;
use crate::kafka::frame::{self, FrameError, FrameHeader, FrameReader};
use crate::kafka::quota::{Muted, QuotaKind, ShardQuotas};
use crate::kafka::response_failure;
use crate::kafka::sasl::Session;
use crate::kafka::tls::TlsConfig;
use crate::kafka::KafkaConfig;
use crate::limits::{
    DECODED_BYTES_PER_REQUEST_BYTE, MAX_CONNECTIONS_MAX_IDLE_MS, MAX_FRAME_BODY_TIMEOUT_MS,
    MAX_IN_FLIGHT_PER_CONNECTION, MIN_CONNECTIONS_MAX_IDLE_MS, MIN_FRAME_BODY_TIMEOUT_MS,
    READ_BUFFER_BYTES, TLS_HANDSHAKE_TIMEOUT, WRITE_BUFFER_BYTES,
};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;

/// What a handled request leaves for the writer.
enum Outcome {
    /// An encoded answer, length prefix included, and the memory charged for it until it is
    /// written (Fetch answers).
    Answer(EncodedAnswer, Option<AnswerReservation>),
    /// No answer is owed (Produce with acks=0).
    Silent,
    /// The answer could not be encoded: the connection closes rather than skip an answer.
    Close,
}

/// A request queued for the writer, in arrival order.
enum Pending {
    /// Answered without a task (ApiVersions at an unsupported version).
    Ready(Outcome),
    /// Being handled.
    Running(glommio::Task<Outcome>),
}

/// Serves one accepted connection until the peer closes it, it misbehaves, or the engine stops.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shard: Shard,
    config: Arc<KafkaConfig>,
    stop: StopWatch,
    quotas: Rc<ShardQuotas>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    if let Err(e) = set_keepalive(&stream) {
        tracing::debug!(%peer, error = %e, "cannot set SO_KEEPALIVE");
    }
    tracing::debug!(%peer, shard = %shard.id(), "kafka connection opened");
    let _open = OpenConnection::new(&shard);
    match config.tls.clone() {
        None => serve_stream(stream, peer, &shard, config, stop, (None, quotas)).await,
        // Boxed: a TLS connection's future is larger (the handshake, the TLS stream), and
        // every plaintext connection's task would otherwise be as large.
        Some(tls) => Box::pin(serve_tls(tls, stream, peer, &shard, config, stop, quotas)).await,
    }
    tracing::debug!(%peer, "kafka connection closed");
}

/// Serves a connection over TLS: the handshake within [`TLS_HANDSHAKE_TIMEOUT`], the client's
/// certificate mapped to its principal where the listener asks for one, then its requests.
///
/// The two steps are chained, not awaited in turn in one `async fn`: that would keep the TLS
/// stream (1.3 KiB) twice, as the handshake's outcome and as what it was bound to, for as long
/// as the connection is served.
fn serve_tls<'a>(
    tls: TlsConfig,
    stream: TcpStream,
    peer: SocketAddr,
    shard: &'a Shard,
    config: Arc<KafkaConfig>,
    stop: StopWatch,
    quotas: Rc<ShardQuotas>,
) -> impl Future<Output = ()> + 'a {
    accept_tls(tls, stream, peer, stop).then(move |accepted| {
        let serve = accepted.map(|(stream, identity, stop)| {
            serve_stream(stream, peer, shard, config, stop, (identity, quotas))
        });
        OptionFuture::from(serve).map(drop)
    })
}

/// The TLS handshake of [`serve_tls`]: the TLS stream, the client's principal and `stop` back,
/// or `None` (with a warning) when the handshake failed, took too long or the client's
/// certificate was refused, or the shard stopped meanwhile.
async fn accept_tls(
    TlsConfig {
        server,
        client_auth,
    }: TlsConfig,
    stream: TcpStream,
    peer: SocketAddr,
    stop: StopWatch,
) -> Option<(TlsStream<TcpStream>, Option<Principal>, StopWatch)> {
    let handshake = within(
        TlsAcceptor::from(server).accept(stream),
        TLS_HANDSHAKE_TIMEOUT,
        || std::io::ErrorKind::TimedOut.into(),
    );
    let stopped = async {
        stop.stopped().await;
        None
    };
    match future::or(handshake.map(Some), stopped).await? {
        Ok(stream) => {
            let (_, session) = stream.get_ref();
            let identity = client_auth
                .map(|auth| auth.principal_of_peer(session.peer_certificates()))
                .transpose();
            match identity {
                Ok(identity) => Some((stream, identity, stop)),
                Err(reason) => {
                    tracing::warn!(%peer, %reason, "client certificate refused; closing kafka connection");
                    None
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            tracing::warn!(%peer, timeout_ms = TLS_HANDSHAKE_TIMEOUT.as_millis(), "TLS handshake too slow; closing kafka connection");
            None
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "TLS handshake failed; closing kafka connection");
            None
        }
    }
}

/// Serves the connection's requests over `stream` (the socket, or TLS over it).
async fn serve_stream(
    stream: impl AsyncRead + AsyncWrite + Unpin,
    peer: SocketAddr,
    shard: &Shard,
    config: Arc<KafkaConfig>,
    stop: StopWatch,
    (identity, quotas): (Option<Principal>, Rc<ShardQuotas>),
) {
    let (read_half, write_half) = futures_lite::io::split(stream);
    let (queue, answers) = local_channel::new_bounded(MAX_IN_FLIGHT_PER_CONNECTION);
    let session = Session::new(config.sasl.as_ref(), identity);
    let conn = ConnectionState {
        fetch_session: FetchSessionSlot::default(),
        muted: Muted::default(),
        quotas,
    };
    future::zip(
        read_requests(
            read_half,
            queue,
            peer,
            shard,
            &config,
            &stop,
            (session, conn),
        ),
        write_answers(write_half, answers, peer),
    )
    .await;
}

/// Counts a connection as open on its shard until dropped, however the connection ends.
struct OpenConnection<'a>(&'a Shard);

impl<'a> OpenConnection<'a> {
    fn new(shard: &'a Shard) -> Self {
        shard.metrics().connection_opened();
        Self(shard)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.metrics().connection_closed();
    }
}

/// Turns on TCP keepalive, as Kafka does for its connections: a client whose machine vanished
/// (power lost, cable pulled) sends no FIN, and without probes its connection, and a long poll
/// or answer memory it holds, would last until `connections_max_idle_ms`.
fn set_keepalive(stream: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    // SAFETY: the descriptor belongs to `stream`, which outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    socket2::SockRef::from(&fd).set_keepalive(true)
}

/// Reads, decodes and spawns requests until the stream ends, a request is refused, the writer
/// is gone or the engine stops.
async fn read_requests(
    read_half: impl AsyncRead + Unpin,
    queue: LocalSender<Pending>,
    peer: SocketAddr,
    shard: &Shard,
    config: &Arc<KafkaConfig>,
    stop: &StopWatch,
    (mut session, conn): (Session<'_>, ConnectionState),
) {
    let mut frames = FrameReader::new(read_half, READ_BUFFER_BYTES, config.max_frame_bytes);
    // `kafka::start` refuses a timeout outside the range (`KafkaConfig::validate`); the clamp
    // only keeps this function safe on its own.
    let timeouts = Timeouts {
        body: Duration::from_millis(
            config
                .frame_body_timeout_ms
                .clamp(MIN_FRAME_BODY_TIMEOUT_MS, MAX_FRAME_BODY_TIMEOUT_MS),
        ),
        idle: Duration::from_millis(
            config
                .connections_max_idle_ms
                .clamp(MIN_CONNECTIONS_MAX_IDLE_MS, MAX_CONNECTIONS_MAX_IDLE_MS),
        ),
    };
    loop {
        let next = future::or(
            async {
                // An answer over a quota holds the connection back (KIP-219).
                conn.muted.wait().await;
                Some(read_frame(&mut frames, shard.memory(), &timeouts).await)
            },
            async {
                stop.stopped().await;
                None
            },
        )
        .await;
        let (frame, memory) = match next {
            None => break,
            Some(Ok(read)) => read,
            Some(Err(FrameError::Closed)) => break,
            Some(Err(e @ FrameError::Idle { .. })) => {
                tracing::debug!(%peer, reason = %e, "closing idle kafka connection");
                break;
            }
            Some(Err(FrameError::Io(e))) => {
                // A client that resets its connection has done nothing wrong.
                tracing::debug!(%peer, error = %e, "kafka connection read failed");
                break;
            }
            Some(Err(e)) => {
                tracing::warn!(%peer, reason = %e, "closing kafka connection");
                break;
            }
        };
        let connection = (&mut session, &conn);
        let (pending, last) = match start_request(frame, memory, peer, shard, config, connection) {
            Step::Queue(pending) => (pending, false),
            Step::Last(pending) => (pending, true),
            Step::Stop => break,
        };
        if queue.send(pending).await.is_err() || last {
            break;
        }
    }
}

/// What the reader does after a frame.
enum Step {
    /// Queue the request and read on.
    Queue(Pending),
    /// Queue this answer, then stop reading: the connection closes once it is written.
    Last(Pending),
    /// Stop reading at once.
    Stop,
}

/// How long a connection may wait for the parts of a request.
struct Timeouts {
    /// For a body once its memory is reserved, before [`frame::body_timeout`] adds its bytes'
    /// time.
    body: Duration,
    /// For the next request to begin.
    idle: Duration,
}

/// Reads the next frame once its length is reserved from the shard's memory budget: the length
/// must come within the idle time, the body within [`frame::body_timeout`] (see the module doc).
async fn read_frame(
    frames: &mut FrameReader<impl AsyncRead + Unpin>,
    memory: &MemoryBudget,
    timeouts: &Timeouts,
) -> Result<(Bytes, RequestReservation), FrameError> {
    let idle = timeouts.idle;
    let header = within(frames.next_header(), idle, || FrameError::Idle {
        idle_ms: idle.as_millis(),
    })
    .await?;
    let len = header.len;
    let reservation = memory
        .reserve_request(request_charge(header, memory)?)
        .await;
    let timeout = frame::body_timeout(len, timeouts.body);
    // When the deadline wins, the partly read body is dropped here and the reservation on return.
    let frame = within(frames.read_body(header), timeout, || FrameError::SlowBody {
        len,
        timeout_ms: timeout.as_millis(),
    })
    .await?;
    Ok((frame, reservation))
}

/// What a request is charged to the shard's request memory: its bytes for Produce, whose
/// batches stay slices of the frame; [`DECODED_BYTES_PER_REQUEST_BYTE`] times that for the
/// others, which decode into far more than their bytes.
///
/// # Errors
/// [`FrameError::TooLargeToDecode`] for a request other than Produce whose charge exceeds the
/// whole request share: it could never be admitted.
fn request_charge(header: FrameHeader, memory: &MemoryBudget) -> Result<usize, FrameError> {
    if header.api_key == ApiKey::Produce as i16 {
        return Ok(header.len);
    }
    let max = memory.request_bytes() / DECODED_BYTES_PER_REQUEST_BYTE;
    if header.len > max {
        return Err(FrameError::TooLargeToDecode {
            api_key: header.api_key,
            len: header.len,
            max,
        });
    }
    Ok(header.len * DECODED_BYTES_PER_REQUEST_BYTE)
}

/// `read`'s outcome, or `late()` if it does not finish within `limit`. What is already in the
/// read buffer (a pipelining client's next length, small bodies) is taken without arming a timer.
async fn within<T, E>(
    read: impl Future<Output = Result<T, E>>,
    limit: Duration,
    late: impl FnOnce() -> E,
) -> Result<T, E> {
    let mut read = pin!(read);
    if let Some(done) = future::poll_once(read.as_mut()).await {
        return done;
    }
    future::or(read, async {
        glommio::timer::sleep(limit).await;
        Err(late())
    })
    .await
}

/// Decodes one frame and starts handling it, or answers it at once (the SASL steps); stops
/// when the request is refused and the connection must close.
fn start_request(
    frame: Bytes,
    memory: RequestReservation,
    peer: SocketAddr,
    shard: &Shard,
    config: &Arc<KafkaConfig>,
    (session, conn): (&mut Session, &ConnectionState),
) -> Step {
    // The frame reader strips the 4-byte length prefix; count it too.
    shard.metrics().bytes_in.add(frame.len() as u64 + 4);
    let (api_key, header, body, produce_frame) = match decode_request(frame, peer) {
        Ok(request) => request,
        Err(step) => return step,
    };
    if !session.admits(api_key) {
        tracing::warn!(%peer, api = ?api_key, "request before SASL authentication; closing kafka connection");
        return Step::Stop;
    }
    let version = header.request_api_version;
    let correlation_id = header.correlation_id;
    let started = Instant::now();
    let sasl = |response: ResponseKind, close: bool| {
        sasl_answer(
            shard,
            peer,
            api_key,
            (version, correlation_id, started),
            &response,
            close,
        )
    };
    match body {
        RequestKind::SaslHandshake(req) => {
            let reply = session.handshake(&req);
            sasl(ResponseKind::SaslHandshake(reply.response), reply.close)
        }
        RequestKind::SaslAuthenticate(req) => {
            let reply = session.authenticate(&req);
            if reply.close {
                tracing::warn!(%peer, "SASL authentication failed; closing kafka connection");
            } else if reply.response.error_code == 0 {
                tracing::debug!(%peer, principal = %session.principal().name(), "kafka connection authenticated");
            }
            sasl(ResponseKind::SaslAuthenticate(reply.response), reply.close)
        }
        body => {
            let ctx = RequestContext {
                shard: shard.clone(),
                api_version: version,
                correlation_id,
                client_id: header.client_id.map(|id| id.to_string()),
                peer,
                node_id: config.node_id,
                advertised_host: config.advertised_host.clone(),
                advertised_port: i32::from(config.advertised_port),
                config: Arc::clone(config),
                answer_memory: RefCell::new(None),
                principal: session.principal().clone(),
                conn: conn.clone(),
            };
            Step::Queue(Pending::Running(spawn_handler(
                ctx,
                api_key,
                body,
                produce_frame,
                memory,
            )))
        }
    }
}

/// A decoded request: its API, header, body and, for Produce, the frame its batches are
/// slices of.
type DecodedRequest = (ApiKey, RequestHeader, RequestKind, Option<Bytes>);

/// Decodes one frame into a request, or into the step to take instead: answer an ApiVersions
/// at a version not served with v0, or close the connection on a frame that cannot be read.
fn decode_request(frame: Bytes, peer: SocketAddr) -> Result<DecodedRequest, Step> {
    match dispatch::decode(frame) {
        Ok(Decoded::Request {
            api_key,
            header,
            body,
            produce_frame,
        }) => Ok((api_key, header, *body, produce_frame)),
        Ok(Decoded::UnsupportedApiVersions { correlation_id }) => Err(
            match dispatch::encode_unsupported_api_versions(correlation_id) {
                Ok(answer) => Step::Queue(Pending::Ready(Outcome::Answer(answer, None))),
                Err(e) => {
                    tracing::error!(%peer, error = %e, "closing kafka connection");
                    Step::Last(Pending::Ready(Outcome::Close))
                }
            },
        ),
        Err(e) => {
            tracing::warn!(%peer, reason = %e, "closing kafka connection");
            Err(Step::Stop)
        }
    }
}

/// Starts handling a request in a task of its own, which holds the request's memory until
/// it is answered. A Produce is charged to its client's quota here, as it is read (see
/// `Arrival`).
fn spawn_handler(
    ctx: RequestContext,
    api_key: ApiKey,
    body: RequestKind,
    produce_frame: Option<Bytes>,
    memory: RequestReservation,
) -> glommio::Task<Outcome> {
    let arrival = match &body {
        RequestKind::Produce(req) => Some(produce::Arrival {
            frame: produce_frame,
            throttle_ms: ctx.charge_quota(QuotaKind::Produce, produce::records_bytes(req)),
        }),
        _ => None,
    };
    tracing::trace!(
        peer = %ctx.peer,
        api = ?api_key,
        version = ctx.api_version,
        correlation_id = ctx.correlation_id,
        client = ?ctx.client_id,
        "request"
    );
    // The frame is freed with the request; a client that does not read its answers must not
    // keep the shard's other connections waiting for memory. (`map`, not an `async` block
    // awaiting `handle`, which would hold the request's arguments twice.)
    glommio::spawn_local(handle(ctx, api_key, body, arrival).map(move |outcome| {
        drop(memory);
        outcome
    }))
}

/// Encodes a SASL step's answer (`(version, correlation id)` of its request) and counts it.
fn sasl_answer(
    shard: &Shard,
    peer: SocketAddr,
    api_key: ApiKey,
    (version, correlation_id, started): (i16, i32, Instant),
    response: &ResponseKind,
    close: bool,
) -> Step {
    let failed = response_failure::is_failure(response);
    match dispatch::encode(api_key, version, correlation_id, response) {
        Ok(answer) => {
            let metrics = shard.metrics();
            metrics.bytes_out.add(answer.len() as u64);
            metrics.record_kafka_request(api_key as i16, started.elapsed(), failed);
            let pending = Pending::Ready(Outcome::Answer(answer, None));
            if close {
                Step::Last(pending)
            } else {
                Step::Queue(pending)
            }
        }
        Err(e) => {
            tracing::error!(%peer, error = %e, "closing kafka connection");
            Step::Last(Pending::Ready(Outcome::Close))
        }
    }
}

/// Handles one request to its encoded answer.
async fn handle(
    ctx: RequestContext,
    api_key: ApiKey,
    body: RequestKind,
    arrival: Option<produce::Arrival>,
) -> Outcome {
    let started = Instant::now();
    let (outcome, failed) = answer(&ctx, api_key, body, arrival).await;
    let metrics = ctx.shard.metrics();
    if let Outcome::Answer(answer, _) = &outcome {
        metrics.bytes_out.add(answer.len() as u64);
    }
    metrics.record_kafka_request(api_key as i16, started.elapsed(), failed);
    outcome
}

/// The request's outcome, and whether it failed: the connection closes on it, or the answer
/// carries an error code ([`response_failure::is_failure`]).
async fn answer(
    ctx: &RequestContext,
    api_key: ApiKey,
    body: RequestKind,
    arrival: Option<produce::Arrival>,
) -> (Outcome, bool) {
    let response = match dispatch::answer(ctx, body, arrival).await {
        Answer::Response(response) => response,
        Answer::Silent => return (Outcome::Silent, false),
        Answer::Unrouted => {
            tracing::error!(peer = %ctx.peer, api = ?api_key, "served API has no handler; closing kafka connection");
            return (Outcome::Close, true);
        }
    };
    match dispatch::encode(api_key, ctx.api_version, ctx.correlation_id, &response) {
        Ok(answer) => {
            // From now on the answer holds its encoded bytes, not what its reads were granted.
            let memory = ctx.answer_memory.borrow_mut().take().map(|mut memory| {
                memory.set(answer.len());
                memory
            });
            (
                Outcome::Answer(answer, memory),
                response_failure::is_failure(&response),
            )
        }
        Err(e) => {
            tracing::error!(peer = %ctx.peer, error = %e, "closing kafka connection");
            (Outcome::Close, true)
        }
    }
}

/// Writes answers in queue order, flushing whenever the next one is not ready yet, until the
/// reader is done and every owed answer is written, or the socket fails.
///
/// The write buffer is there only while answers are being written: once they are flushed and
/// the next is not ready (the client has sent nothing, or its request waits for a round or a
/// long poll), the buffer is freed, so that a connection waiting holds none.
async fn write_answers(
    write_half: impl AsyncWrite + Unpin,
    answers: LocalReceiver<Pending>,
    peer: SocketAddr,
) {
    let mut socket = write_half;
    // An answer received but not ready when the last burst ended.
    let mut waiting = None;
    loop {
        let next = match waiting.take() {
            Some(pending) => Some(pending),
            None => answers.recv().await,
        };
        let mut outcome = match next {
            None => break,
            Some(Pending::Ready(outcome)) => outcome,
            Some(Pending::Running(task)) => task.await,
        };
        let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, socket);
        // Write answers while the next is ready at once.
        loop {
            match outcome {
                // The answer's memory is given back once its bytes are in the socket (or the
                // buffer in front of it).
                Outcome::Answer(answer, _memory) => {
                    for piece in answer.pieces() {
                        if let Err(e) = out.write_all(piece).await {
                            tracing::debug!(%peer, error = %e, "kafka write failed");
                            return;
                        }
                    }
                }
                Outcome::Silent => {}
                Outcome::Close => return close(out, peer).await,
            }
            outcome = match future::poll_once(answers.recv()).await {
                None => break,
                Some(None) => return close(out, peer).await,
                Some(Some(Pending::Ready(outcome))) => outcome,
                Some(Some(Pending::Running(mut task))) => {
                    match future::poll_once(&mut task).await {
                        Some(outcome) => outcome,
                        None => {
                            waiting = Some(Pending::Running(task));
                            break;
                        }
                    }
                }
            };
        }
        if flush(&mut out, peer).await.is_err() {
            return;
        }
        socket = out.into_inner();
    }
    close(socket, peer).await;
}

/// Flushes `out` and closes the connection's sending side.
async fn close(mut out: impl AsyncWrite + Unpin, peer: SocketAddr) {
    if flush(&mut out, peer).await.is_ok() {
        if let Err(e) = out.close().await {
            tracing::debug!(%peer, error = %e, "kafka close failed");
        }
    }
}

async fn flush(out: &mut (impl AsyncWrite + Unpin), peer: SocketAddr) -> Result<(), ()> {
    out.flush().await.map_err(|e| {
        tracing::debug!(%peer, error = %e, "kafka flush failed");
    })
}
