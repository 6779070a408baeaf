//! `spindle serve` and `spindle config check` as an operator runs them: the real binary, real
//! sockets, real signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod spindle_server;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn spindle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
}

/// A running `spindle serve` and its Kafka address.
struct Server {
    child: Child,
    kafka: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_on("127.0.0.1:0")
    }

    /// A two-shard node listening for Kafka on `kafka_listen`, once it reports ready.
    fn start_on(kafka_listen: &str) -> Server {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let mut child = spindle()
            .args(["serve", "--kafka-listen", kafka_listen, "--shards", "2"])
            .args(["--placement", "unbound", "--grpc-enabled", "false"])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("spindle ready:") && tx.send(line).is_err() {
                    return;
                }
            }
        });
        let line = rx.recv_timeout(START_TIMEOUT).expect("the ready line");
        let kafka = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("kafka="))
            .and_then(|a| a.parse().ok())
            .expect("kafka=ADDR in the ready line");
        Server {
            child,
            kafka,
            _dir: dir,
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.kafka).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }

    /// Sends SIGTERM and returns the exit status code.
    fn terminate(&mut self) -> Option<i32> {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("spindle did not stop within {STOP_TIMEOUT:?} of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave its server running.
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Err(e) = self.child.kill() {
                eprintln!("cannot kill spindle {}: {e}", self.child.id());
            }
            // Reap it; its status no longer matters.
            drop(self.child.wait());
        }
    }
}

/// An ApiVersions v0 request frame.
fn api_versions(correlation_id: i32) -> Vec<u8> {
    let mut frame = 10i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&18i16.to_be_bytes());
    frame.extend_from_slice(&0i16.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    frame
}

fn answers(stream: &mut TcpStream, correlation_id: i32) -> bool {
    let mut len = [0u8; 4];
    if stream.write_all(&api_versions(correlation_id)).is_err()
        || stream.read_exact(&mut len).is_err()
    {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    stream.read_exact(&mut body).is_ok() && body.get(..4) == Some(&correlation_id.to_be_bytes()[..])
}

#[test]
fn serves_until_sigterm_and_survives_hostile_array_lengths() {
    let mut server = Server::start();
    let mut healthy = server.connect();
    assert!(answers(&mut healthy, 1));

    // A Metadata v1 header followed by a topic count of 0x41414141: the codec would size a
    // vector of a billion topics from it.
    let mut hostile = server.connect();
    let mut frame = 14i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 3, 0, 1, 0, 0, 0, 9, 0xff, 0xff]);
    frame.extend_from_slice(b"AAAA");
    hostile.write_all(&frame).unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(hostile.read(&mut buf), Ok(0) | Err(_)),
        "connection left open"
    );

    let mut other = server.connect();
    assert!(answers(&mut other, 2), "a new connection is served");
    assert!(answers(&mut healthy, 3), "an old connection is served");
    assert_eq!(server.terminate(), Some(0));
}

#[test]
fn config_check_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "node_id = 3\n[kafka]\nlisten = \"127.0.0.1:19092\"\n[grpc]\nenabled = false\n",
    )
    .unwrap();
    let out = spindle()
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for (text, key) in [
        ("[kafka]\nlisen = \"127.0.0.1:1\"\n", "lisen"),
        ("[kafka]\nlisten = \"nowhere\"\n", "kafka.listen"),
        ("placement = \"spread\"\n", "placement"),
        ("cpuset = \"3-1\"\n", "cpuset"),
        ("log_level = \"loud\"\n", "log_level"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let out = spindle()
            .args(["config", "check"])
            .arg(&bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
}

/// docs/OPERATIONS.md is the reference of every option: each flag and variable that
/// `spindle serve --help` lists is named there.
#[test]
fn every_flag_and_variable_of_serve_is_documented() {
    let help = spindle().args(["serve", "--help"]).output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let operations = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/OPERATIONS.md");
    let operations = std::fs::read_to_string(operations).unwrap();
    let mut names: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '=' | ',' | ':'))
        .filter(|word| {
            (word.starts_with("--") && word.len() > 2 && word != &"--help")
                || word.starts_with("SPINDLE_")
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() > 20, "the options of `serve --help`: {names:?}");
    let missing: Vec<&&str> = names
        .iter()
        .filter(|name| !operations.contains(&format!("`{name}")))
        .collect();
    assert!(missing.is_empty(), "not in docs/OPERATIONS.md: {missing:?}");
}

#[test]
fn flags_win_over_the_environment() {
    let out = spindle()
        .args(["serve", "--kafka-listen", "not-an-address"])
        .env("SPINDLE_KAFKA_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--kafka-listen"), "{stderr}");
}

#[test]
fn a_gateway_that_cannot_start_stops_the_node_with_the_cause() {
    let certificates = spindle_server::Certificates::new("gateway-refused");
    let good = format!(
        "cert_path = {:?}\nkey_path = {:?}\n",
        certificates.cert.to_str().unwrap(),
        certificates.key.to_str().unwrap()
    );
    for (tls, file) in [
        (
            "cert_path = \"/nonexistent/server.pem\"\nkey_path = \"/nonexistent/server.key\"\n"
                .to_owned(),
            "server.pem",
        ),
        (
            format!("{good}client_ca_path = \"/nonexistent/clients-ca.pem\"\n"),
            "clients-ca.pem",
        ),
    ] {
        let stderr = refused_gateway(&format!(
            "[grpc]\nlisten = \"127.0.0.1:0\"\n[grpc.tls]\n{tls}"
        ));
        assert!(stderr.contains("gRPC gateway"), "cause not named: {stderr}");
        assert!(stderr.contains(file), "file not named: {stderr}");
    }
}

/// Starts a node configured by `toml`, whose gateway must refuse to start; its stderr.
fn refused_gateway(toml: &str) -> String {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("spindle.toml");
    std::fs::write(&config, toml).unwrap();
    let out = spindle()
        .args([
            "serve",
            "--kafka-listen",
            "127.0.0.1:0",
            "--placement",
            "unbound",
        ])
        .arg("--admin-listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    refused_start(&out, "despite the bad TLS files")
}

#[test]
fn a_second_node_on_a_kafka_port_in_use_refuses_to_start() {
    // Both nodes bind with SO_REUSEPORT, which alone would let the second share the port and
    // take half of the first one's new connections.
    let first = spindle_server::Server::start("port-taken");
    let other_dir = tempfile::tempdir().unwrap();
    let out = second_node(other_dir.path(), &first.kafka);
    let stderr = refused_start(&out, "on a port in use");
    assert!(
        stderr.contains(&format!("cannot listen on {}", first.kafka)),
        "{stderr}"
    );
}

#[test]
fn a_kafka_address_released_soon_after_the_start_is_taken_once_free() {
    // A listener holds the address for half a second, as a killed node's sockets do for a few
    // milliseconds while the kernel tears its rings down.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(holder);
    });
    let mut server = Server::start_on(&addr.to_string());
    release.join().unwrap();
    assert_eq!(server.kafka, addr);
    assert!(answers(&mut server.connect(), 1));
    assert_eq!(server.terminate(), Some(0));
}

#[test]
fn a_second_node_on_a_data_directory_in_use_refuses_to_start_and_the_first_keeps_serving() {
    let first = spindle_server::Server::start("lock");
    let out = second_node(&first.data_dir, "127.0.0.1:0");
    let stderr = refused_start(&out, "on a data directory in use");
    assert!(
        stderr.contains(&format!(
            "is in use by another Spindle process (pid {})",
            first.pid()
        )),
        "{stderr}"
    );
    assert!(
        answers_api_versions(&mut kafka_connection(&first)),
        "the first node still answers"
    );
}

#[test]
fn a_node_serves_from_the_cpu_its_cpuset_names_and_refuses_one_that_is_not_online() {
    let last = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let server = spindle_server::Server::start_with("cpuset", &["--cpuset", &last.to_string()]);
    assert!(answers_api_versions(&mut kafka_connection(&server)));
    // The shard's threads (glommio's helper threads take its name and its CPU): (name, CPUs).
    let shard_threads: Vec<(String, String)> =
        std::fs::read_dir(format!("/proc/{}/task", server.pid()))
            .unwrap()
            .filter_map(|task| {
                let task = task.unwrap().path();
                let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
                let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
                let cpus = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
                    .trim()
                    .to_owned();
                comm.starts_with("spindle-shard")
                    .then(|| (comm.trim().to_owned(), cpus))
            })
            .collect();
    assert!(!shard_threads.is_empty());
    for (name, cpus) in &shard_threads {
        assert_eq!(name, "spindle-shard-0", "one shard: {shard_threads:?}");
        assert_eq!(
            cpus,
            &last.to_string(),
            "pinned to CPU {last}: {shard_threads:?}"
        );
    }

    let stderr = refused_serve(&["--cpuset", "1023"], "on an offline CPU");
    assert!(stderr.contains("are not online"), "{stderr}");

    // More pinned shards than CPUs (256, the most a node runs, is more than any test machine
    // has): the refusal says how many fit, and the way out.
    let stderr = refused_serve(&["--shards", "256"], "with more pinned shards than CPUs");
    assert!(
        stderr.contains("256 pinned shards asked for") && stderr.contains("or unbound placement"),
        "{stderr}"
    );
}

#[test]
fn a_node_whose_shards_poll_before_sleeping_serves_and_a_bad_poll_time_stops_the_start() {
    let server = spindle_server::Server::start_with("idle-poll", &["--idle-poll-us", "50"]);
    let mut conn = kafka_connection(&server);
    for _ in 0..3 {
        assert!(answers_api_versions(&mut conn));
        std::thread::sleep(Duration::from_millis(20));
    }

    let stderr = refused_serve(
        &["--idle-poll-us", "20000"],
        "with a poll time past its bound",
    );
    assert!(
        stderr.contains("idle_poll_us") && stderr.contains("0..=10000"),
        "{stderr}"
    );
    let stderr = refused_serve(
        &["--idle-poll-us", "50", "--placement", "unbound"],
        "polling with unbound shards",
    );
    assert!(
        stderr.contains("idle_poll_us") && stderr.contains("pinned"),
        "{stderr}"
    );
}

#[test]
fn connections_beyond_the_per_shard_limit_are_refused_and_the_others_keep_serving() {
    let server = spindle_server::Server::start_with(
        "connection-limit",
        &["--shards", "1", "--max-connections-per-shard", "2"],
    );
    let mut first = kafka_connection(&server);
    let mut second = kafka_connection(&server);
    assert!(answers_api_versions(&mut first));
    assert!(answers_api_versions(&mut second));
    assert!(
        !answers_api_versions(&mut kafka_connection(&server)),
        "a third connection is closed"
    );
    assert!(
        answers_api_versions(&mut second),
        "the connections within the limit still work"
    );
    drop(first);
    // The shard frees the slot once it reads the end of the first connection.
    let served = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        answers_api_versions(&mut kafka_connection(&server))
    });
    assert!(served, "a connection after one closed is served");
}

/// Runs `spindle serve` on a fresh data directory and loopback ports with `extra` flags, asserts
/// that it ended without serving (as [`refused_start`]) and returns its stderr.
fn refused_serve(extra: &[&str], situation: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = spindle()
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--kafka-listen", "127.0.0.1:0", "--grpc-enabled", "false"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .args(extra)
        .output()
        .unwrap();
    refused_start(&out, situation)
}

/// Asserts that a `spindle serve` run ended without serving (a failure exit, no ready line);
/// returns its stderr, which names the cause.
fn refused_start(out: &Output, situation: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "started {situation}: {stdout}");
    assert!(!stdout.contains("spindle ready"), "{stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn kafka_connection(server: &spindle_server::Server) -> TcpStream {
    let conn = TcpStream::connect(&server.kafka).unwrap();
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    conn
}

/// Sends ApiVersions v0 (correlation id 1, no client id); whether an answer to it came back
/// rather than the end of the connection.
fn answers_api_versions(conn: &mut TcpStream) -> bool {
    if conn
        .write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .is_err()
    {
        return false;
    }
    let mut len = [0u8; 4];
    if conn.read_exact(&mut len).is_err() {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    conn.read_exact(&mut body).is_ok() && body.starts_with(&[0, 0, 0, 1])
}

/// Runs a second `spindle serve` (no gRPC, its own admin port) on `data_dir` and `kafka_listen`
/// until it exits, which a refused start does at once.
fn second_node(data_dir: &std::path::Path, kafka_listen: &str) -> std::process::Output {
    spindle()
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--kafka-listen", kafka_listen, "--grpc-enabled", "false"])
        .args([
            "--admin-listen",
            &format!("127.0.0.1:{}", spindle_server::free_port()),
        ])
        .output()
        .unwrap()
}

/// A child process killed (SIGKILL) when dropped, also when the test fails.
struct KilledOnDrop(Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _killed = self.0.kill();
            let _reaped = self.0.wait();
        }
    }
}

/// Runs `spindle serve` (one shard, info logs to `log`) on `data_dir` and `kafka_listen`, and
/// waits for its ready line.
fn logged_node(
    data_dir: &std::path::Path,
    kafka_listen: &str,
    log: &std::path::Path,
) -> KilledOnDrop {
    let mut child = spindle()
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--kafka-listen",
            kafka_listen,
            "--grpc-enabled",
            "false",
            "--shards",
            "1",
        ])
        .args([
            "--admin-listen",
            &format!("127.0.0.1:{}", spindle_server::free_port()),
        ])
        .env("SPINDLE_LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let node = KilledOnDrop(child);
    let mut ready = String::new();
    BufReader::new(stdout).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("spindle ready"), "{ready:?}");
    node
}

#[test]
fn recovery_of_a_large_segment_reports_its_progress() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let kafka = format!("127.0.0.1:{}", spindle_server::free_port());
    let (first_log, second_log) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let data = dir.path().join("data");
    let node = logged_node(&data, &kafka, &first_log);
    // About 300 MiB in one partition: its active segment passes one progress step (256 MiB).
    spindle_server::bench_json(
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .args(["kafka", "--bootstrap", &kafka, "--topic", "big", "--json"])
            .args([
                "--count",
                "300000",
                "--acks",
                "1",
                "--producers",
                "2",
                "--in-flight",
                "8",
            ]),
    );
    // A crash: the active segment is recovered by a scan on the next start.
    drop(node);

    let mut node = logged_node(&data, &kafka, &second_log);
    let log = std::fs::read_to_string(&second_log).unwrap();
    let progress = log
        .lines()
        .find(|l| l.contains("recovering: scanning a segment"))
        .unwrap_or_else(|| panic!("no progress line in the restart's log:\n{log}"));
    assert!(progress.contains("scanned_mib=256"), "{progress}");
    assert!(progress.contains("00000000000000000000.log"), "{progress}");
    assert!(
        log.lines()
            .any(|l| l.contains("segment scanned") && l.contains("elapsed_ms=")),
        "{log}"
    );
    spindle_server::stop(&mut node.0, STOP_TIMEOUT);
}
