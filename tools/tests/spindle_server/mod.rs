//! A real `spindle serve` child process for the tools' end-to-end tests: Kafka, gRPC and the
//! admin HTTP endpoint on free loopback ports, its own data directory, and a stop by SIGTERM to
//! its PID (SIGKILL if it does not exit in time) when dropped, also when the test fails.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `spindle serve`, stopped on drop.
pub struct Server {
    child: Child,
    /// Its data directory, removed on drop.
    pub data_dir: PathBuf,
    /// The Kafka listener, host:port.
    pub kafka: String,
    /// The gRPC listener, host:port.
    pub grpc: String,
    /// The admin HTTP listener, host:port.
    pub admin: String,
    /// The `spindle ready: …` line the server printed.
    pub ready: String,
}

pub use spindle_tests::free_port;

/// Two principals: `ops` (password `ops-token`) may do anything to any topic, `app` (password
/// `app-token`) may read and write topics named `app.*`.
pub const PRINCIPALS: &str = "\
[[grpc.auth.tokens]]
principal = \"ops\"
token = \"ops-token\"
permissions = [{ topic = \"*\", ops = [\"admin\", \"read\", \"write\"] }]
[[grpc.auth.tokens]]
principal = \"app\"
token = \"app-token\"
permissions = [{ topic = \"app.*\", ops = [\"read\", \"write\"] }]
";

/// A CA and a certificate it signed for 127.0.0.1, as PEM files in a directory of their own
/// (removed on drop).
pub struct Certificates {
    dir: PathBuf,
    /// The CA's certificate, for clients to trust.
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// A client certificate the CA signed for common name `ops`, and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certificates {
    /// Makes a fresh CA and server certificate; `name` keeps concurrent tests apart.
    pub fn new(name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!(
            "spindle-{name}-certs-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ops");
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &ca).unwrap();
        let certificates = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_cert: dir.join("ops.pem"),
            client_key: dir.join("ops.key"),
            dir,
        };
        std::fs::write(&certificates.ca, ca.pem()).unwrap();
        std::fs::write(&certificates.cert, cert.pem()).unwrap();
        std::fs::write(&certificates.key, key.serialize_pem()).unwrap();
        std::fs::write(&certificates.client_cert, client_cert.pem()).unwrap();
        std::fs::write(&certificates.client_key, client_key.serialize_pem()).unwrap();
        certificates
    }

    /// The `[kafka.tls]` table that serves these certificates.
    pub fn kafka_tls_table(&self) -> String {
        format!(
            "[kafka.tls]\ncert_path = {:?}\nkey_path = {:?}\n",
            self.cert.to_str().unwrap(),
            self.key.to_str().unwrap()
        )
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// A one-shard node with every other setting at its default; `name` keeps concurrent
    /// tests' data directories apart.
    pub fn start(name: &str) -> Self {
        Self::start_with(name, &["--shards", "1"])
    }

    /// A node started with `extra` flags after the listen addresses and the data directory.
    pub fn start_with(name: &str, extra: &[&str]) -> Self {
        let data_dir = std::env::temp_dir().join(format!(
            "spindle-{name}-test-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&data_dir).unwrap();
        let kafka = format!("127.0.0.1:{}", free_port());
        let grpc = format!("127.0.0.1:{}", free_port());
        let admin = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--kafka-listen", &kafka, "--grpc-listen", &grpc])
            .args(["--admin-listen", &admin])
            .args(extra)
            .env("SPINDLE_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.starts_with("spindle ready") && tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Self {
            child,
            data_dir,
            kafka,
            grpc,
            admin,
            ready: String::new(),
        };
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => {
                server.ready = line;
                server
            }
            Err(_) => panic!("spindle serve printed no ready line within {READY_TIMEOUT:?}"),
        }
    }

    /// A one-shard node whose Kafka listener asks for SASL with `mechanisms` (comma-separated
    /// names), with the principals of [`PRINCIPALS`].
    pub fn start_sasl(name: &str, mechanisms: &str) -> Self {
        Self::start_with_config(name, PRINCIPALS, &["--kafka-sasl-mechanisms", mechanisms])
    }

    /// A one-shard node configured by the TOML `config` (written to a file the node reads at
    /// its start), then `extra` flags.
    pub fn start_with_config(name: &str, config: &str, extra: &[&str]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "spindle-{name}-config-{}-{}.toml",
            std::process::id(),
            free_port()
        ));
        std::fs::write(&path, config).unwrap();
        let mut flags = vec!["--shards", "1", "--config", path.to_str().unwrap()];
        flags.extend_from_slice(extra);
        let server = Self::start_with(name, &flags);
        // The configuration is read once, at the start.
        std::fs::remove_file(&path).unwrap();
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `spindle ARGS… --bootstrap KAFKA` (an admin command against this node), which must
    /// succeed.
    pub fn admin(&self, args: &[&str]) {
        self.run_admin(Command::new(env!("CARGO_BIN_EXE_spindle")).args(args), args);
    }

    /// As [`Server::admin`], logged in as `user` with SASL/PLAIN.
    pub fn admin_as(&self, user: &str, password: &str, args: &[&str]) {
        self.run_admin(
            Command::new(env!("CARGO_BIN_EXE_spindle"))
                .args(args)
                .args(["--sasl-username", user])
                .env("SPINDLE_SASL_PASSWORD", password),
            args,
        );
    }

    fn run_admin(&self, command: &mut Command, args: &[&str]) {
        let out = command.args(["--bootstrap", &self.kafka]).output().unwrap();
        assert!(
            out.status.success(),
            "spindle {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The resident memory of process `pid` in bytes, from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child, STOP_TIMEOUT);
        if let Err(e) = std::fs::remove_dir_all(&self.data_dir) {
            eprintln!("cannot remove {}: {e}", self.data_dir.display());
        }
    }
}

/// SIGTERM to `child` by its PID, then SIGKILL if it has not exited within `timeout`.
pub fn stop(child: &mut Child, timeout: Duration) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("process {pid} ignored SIGTERM for {timeout:?}; killing it");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs a `spindle-bench … --json` command line, asserts that it exits 0 (showing its stderr
/// if not) and that stdout is one line, and returns that line's JSON object.
pub fn bench_json(command: &mut Command) -> serde_json::Value {
    let output = command.output().expect("spindle-bench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    let stdout = String::from_utf8(output.stdout).expect("utf8 stdout");
    assert_eq!(stdout.trim().lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(stdout.trim()).expect("stdout is one JSON object")
}
