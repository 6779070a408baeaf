//! The admin HTTP endpoint: `/metrics` (Prometheus text), `/health` (the process is alive) and
//! `/ready` (the engine started and every listener is bound).
//!
//! It is deliberately small and off the data path: plain `std::net` threads, `httparse` for the
//! request line, one request per connection (`Connection: close`). It binds before the engine
//! starts so `/health` answers during recovery; `/ready` answers 503 until [`AdminServer::
//! mark_ready`], and `/metrics` 503 until the engine exists. A scrape gathers the shards'
//! counters by message ([`spindle_engine::metrics::gather`]); no shard state is shared.
//!
//! Limits: at most [`CONNECTIONS_MAX`] connections are served at once (others are closed at
//! once), a request head may be at most [`REQUEST_BYTES_MAX`] bytes, and a client that sends
//! or reads nothing for [`IO_TIMEOUT`] is dropped, so a stuck scraper cannot pile up threads.
//! After answering, the endpoint closes its side and drops what the client still sends (up to
//! 64 KiB, one second): closing a socket with unread input resets it, and the client would
//! lose the answer (a 431 to an oversize request, for one).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use spindle_engine::metrics::{self, CONTENT_TYPE};
use spindle_engine::EngineHandle;
use spindle_gateway::CallMetrics;

/// Connections served at once; more are closed without an answer.
pub const CONNECTIONS_MAX: usize = 16;
/// Largest request head (request line and headers) read.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Read and write timeout of one connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Headers parsed at most.
const HEADERS_MAX: usize = 32;
/// Bytes read and dropped after answering a request that was not read whole, so the close does
/// not reset the connection (and lose the answer) while the client is still sending.
const DRAIN_BYTES_MAX: usize = 64 * 1024;
/// How long that draining may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// What the endpoint knows of the node.
#[derive(Default)]
struct NodeState {
    engine: OnceLock<EngineHandle>,
    calls: OnceLock<Arc<CallMetrics>>,
    ready: AtomicBool,
    serving: AtomicUsize,
}

/// The running admin endpoint; its threads live as long as the process.
pub struct AdminServer {
    addr: SocketAddr,
    state: Arc<NodeState>,
}

impl AdminServer {
    /// Binds `listen` and starts answering in a background thread.
    ///
    /// # Errors
    /// The address cannot be bound or the thread cannot start.
    pub fn start(listen: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .with_context(|| format!("cannot bind the admin HTTP address {listen}"))?;
        let addr = listener.local_addr().context("admin HTTP address")?;
        let state = Arc::new(NodeState::default());
        let accepting = Arc::clone(&state);
        std::thread::Builder::new()
            .name("spindle-admin".to_owned())
            .spawn(move || accept_loop(&listener, &accepting))
            .context("cannot start the admin HTTP thread")?;
        Ok(Self { addr, state })
    }

    /// The bound address (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Gives `/metrics` the engine to gather from.
    pub fn set_engine(&self, engine: EngineHandle) {
        if self.state.engine.set(engine).is_err() {
            tracing::debug!("admin endpoint already has an engine");
        }
    }

    /// Adds the gateway's gRPC call counts to `/metrics`.
    pub fn set_call_metrics(&self, calls: Arc<CallMetrics>) {
        if self.state.calls.set(calls).is_err() {
            tracing::debug!("admin endpoint already has the gRPC call counts");
        }
    }

    /// `/ready` answers 200 from now on.
    pub fn mark_ready(&self) {
        self.state.ready.store(true, Ordering::SeqCst);
    }

    /// `/ready` answers 503 from now on (shutdown began).
    pub fn mark_stopping(&self) {
        self.state.ready.store(false, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &TcpListener, state: &Arc<NodeState>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "admin HTTP accept failed");
                continue;
            }
        };
        if state.serving.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS_MAX {
            state.serving.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!("admin HTTP connection refused: too many open");
            continue;
        }
        let serving = Arc::clone(state);
        let spawned = std::thread::Builder::new()
            .name("spindle-admin-conn".to_owned())
            .spawn(move || {
                serve(stream, &serving);
                serving.serving.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            state.serving.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(error = %e, "cannot start an admin HTTP connection thread");
        }
    }
}

/// An answer: status line, content type, body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

fn serve(mut stream: TcpStream, state: &NodeState) {
    let timeouts = stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)));
    if let Err(e) = timeouts {
        tracing::debug!(error = %e, "admin HTTP socket setup failed");
        return;
    }
    let response = match read_request(&mut stream) {
        Ok(Some((method, path))) => route(&method, &path, state),
        Ok(None) => return,
        Err(response) => response,
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    let written = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(response.body.as_bytes()))
        .and_then(|()| stream.flush());
    if let Err(e) = written {
        tracing::debug!(error = %e, "admin HTTP write failed");
        return;
    }
    drain(&mut stream);
}

/// Ends our side and reads what the client still sends (bounded in bytes and time) until it
/// closes, so that unread input does not turn the close into a reset.
fn drain(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err()
        || stream.set_read_timeout(Some(DRAIN_TIMEOUT)).is_err()
    {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_BYTES_MAX {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Reads one request head: `Ok(Some((method, path)))`, `Ok(None)` when the peer left without
/// one, or the error answer to send.
fn read_request(stream: &mut TcpStream) -> Result<Option<(String, String)>, Response> {
    let mut buf = vec![0u8; REQUEST_BYTES_MAX];
    let mut filled = 0;
    loop {
        let n = match stream.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = request.method.unwrap_or_default().to_owned();
                let path = request.path.unwrap_or_default().to_owned();
                return Ok(Some((method, path)));
            }
            Ok(httparse::Status::Partial) if filled < buf.len() => {}
            Ok(httparse::Status::Partial) => {
                return Err(Response::text(
                    "431 Request Header Fields Too Large",
                    "request head too large\n",
                ))
            }
            Err(e) => return Err(Response::text("400 Bad Request", format!("{e}\n"))),
        }
    }
}

fn route(method: &str, path: &str, state: &NodeState) -> Response {
    // Scrapers may add a query string; it selects nothing here.
    let path = path.split('?').next().unwrap_or(path);
    if method != "GET" {
        return Response::text("405 Method Not Allowed", "only GET\n");
    }
    match path {
        "/health" => Response::text("200 OK", "alive\n"),
        "/ready" if state.ready.load(Ordering::SeqCst) => Response::text("200 OK", "ready\n"),
        "/ready" => Response::text("503 Service Unavailable", "not ready\n"),
        "/metrics" => scrape(state),
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

fn scrape(state: &NodeState) -> Response {
    let Some(engine) = state.engine.get() else {
        return Response::text("503 Service Unavailable", "engine starting\n");
    };
    match futures::executor::block_on(metrics::gather(engine)) {
        Ok(scrape) => {
            let mut body = scrape.render();
            if let Some(calls) = state.calls.get() {
                body.push_str(&calls.render());
            }
            Response {
                status: "200 OK",
                content_type: CONTENT_TYPE,
                body,
            }
        }
        Err(e) => Response::text("503 Service Unavailable", format!("{e}\n")),
    }
}
