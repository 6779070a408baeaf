//! Harness for Spindle's Rust end-to-end tests: runs the real `spindle serve` binary.
//!
//! The binary is the workspace's `target/debug/spindle` (or `$SPINDLE_BIN`). Cargo gives an
//! integration test the path of a binary only within its own package, so this crate finds it
//! by path; when it is missing, the tests say so and skip, and `scripts/test` builds it before
//! the end-to-end suites. Every server gets free loopback ports and a fresh data directory on
//! the real disk, and is stopped by its own PID (SIGTERM, then SIGKILL after a timeout).
#![deny(missing_docs)]

use bytes::BytesMut;
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to print its ready line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The `spindle` binary the tests run, if it has been built.
pub fn spindle_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SPINDLE_BIN") {
        return Some(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join("spindle");
    path.exists().then_some(path)
}

/// Where the kernel picks ports for outgoing connections when
/// `/proc/sys/net/ipv4/ip_local_port_range` cannot be read (Linux's default).
const DEFAULT_EPHEMERAL_LOW: u16 = 32768;
/// The lowest port handed to a test server.
const TEST_PORT_LOW: u16 = 20000;

/// A loopback address with a port nothing listens on right now, for a server a test starts.
///
/// The port lies below the kernel's ephemeral range, so no client connection of a concurrent
/// test can take it as its local port between this call and the server's bind (a port from
/// `bind(0)` can be taken so, which once stopped a test server with "Address already in use").
/// Within this process no port is handed out twice.
///
/// # Panics
/// If no port in the range can be bound on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// The port of [`free_addr`].
///
/// # Panics
/// If no port in the range can be bound on 127.0.0.1.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let ports = TEST_PORT_LOW..ephemeral_low().max(TEST_PORT_LOW + 1000);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..10_000 {
        let port = rand::thread_rng().gen_range(ports.clone());
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free loopback port in {ports:?}");
}

/// The lowest port of the kernel's ephemeral range.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_LOW)
}

/// One running `spindle serve`.
pub struct Server {
    child: Child,
    /// Where Kafka clients connect.
    pub kafka: SocketAddr,
    /// Where gRPC clients connect.
    pub grpc: SocketAddr,
    /// The ready line the server printed.
    pub ready_line: String,
    /// Holds the data dir and the server's log (its stderr) until the server is dropped.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `binary serve` on free ports and a fresh data dir, and waits for its ready line.
    ///
    /// # Panics
    /// If the server cannot be started or is not ready within [`START_TIMEOUT`].
    pub fn start(binary: &PathBuf) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("spindle-rust-e2e-")
            .tempdir_in(std::env::temp_dir())
            .expect("create a test dir");
        let log_path = dir.path().join("spindle.log");
        let log = std::fs::File::create(&log_path).expect("create the server log");
        let kafka = free_addr();
        let grpc = free_addr();
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--kafka-listen", &kafka.to_string()])
            .args(["--kafka-advertise", &kafka.to_string()])
            .args(["--grpc-listen", &grpc.to_string()])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn spindle serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads stdout to its end, so the server never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("spindle ready") && tx.send(line).is_err() {
                    return;
                }
            }
        });
        let ready_line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(err) => {
                // Kill by our own PID before failing, so no server outlives the test.
                let _killed = child.kill();
                let status = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!(
                    "spindle not ready within {START_TIMEOUT:?} ({err}); exit: {status:?}\n{log}"
                );
            }
        };
        Server {
            child,
            kafka,
            grpc,
            ready_line,
            _dir: dir,
        }
    }

    /// A new TCP connection to the Kafka port, with read and write timeouts.
    ///
    /// # Panics
    /// If the connection fails.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect_timeout(&self.kafka, Duration::from_secs(5))
            .expect("connect to the Kafka port");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .expect("set write timeout");
        stream
    }

    /// Sends SIGTERM and waits up to [`STOP_TIMEOUT`]; kills the process if it has not exited.
    /// Returns the exit status, or `None` if it had to be killed.
    pub fn stop(mut self) -> Option<ExitStatus> {
        self.terminate()
    }

    fn terminate(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// `request`'s header (with `client_id`) and body at `version`, without the length prefix;
/// `None` when the codec cannot encode it at that version.
pub fn request_bytes<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
) -> Option<BytesMut> {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)))
        .encode(&mut body, R::header_version(version))
        .ok()?;
    request.encode(&mut body, version).ok()?;
    Some(body)
}

/// `body` behind its 4-byte big-endian length: one Kafka frame.
pub fn length_prefixed(body: &[u8]) -> Vec<u8> {
    let len = i32::try_from(body.len()).expect("a test frame fits an i32 length");
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}
