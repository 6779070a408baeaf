//! A child process appends with fsync=Batch and is killed with SIGKILL at random moments; after
//! each reopen every acknowledged batch is intact and the log ends on a batch boundary.
//!
//! The child is this test binary re-invoked with `SPINDLE_LOG_CRASH_DIR` set, running only
//! `crash_child`, which appends from several tasks at once (so flushes group-commit) and prints
//! `ACK base last crc` for each batch whose flush returned.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use spindle_log::batch::BatchHeader;
use spindle_log::testing::BatchBuilder;
use spindle_log::{FsyncPolicy, LogConfig, Offset};

const ENV_DIR: &str = "SPINDLE_LOG_CRASH_DIR";
const ROUNDS: usize = 20;
const WRITERS: usize = 4;
/// A step that takes longer has hung: the test fails saying which, rather than waiting forever.
const STEP_LIMIT: Duration = Duration::from_secs(120);

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 << 10,
        index_interval_bytes: 1024,
        fsync: FsyncPolicy::Batch,
        ..LogConfig::default()
    }
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return; // Only does something when the crash test starts it.
    };
    let seed: u64 = std::env::var("SPINDLE_LOG_CRASH_SEED")
        .unwrap()
        .parse()
        .unwrap();
    run(move || async move {
        let (log, _) = open(std::path::Path::new(&dir), config()).await;
        let log = std::rc::Rc::new(log);
        let deadline = Instant::now() + Duration::from_secs(5);
        let tasks: Vec<_> = (0..WRITERS as u64)
            .map(|w| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 31 + w);
                    while Instant::now() < deadline {
                        let b = BatchBuilder::new(rng.gen_range(0..1_000_000))
                            .records(rng.gen_range(1..8), rng.gen_range(10..1500))
                            .build();
                        let crc = BatchHeader::parse(&b).unwrap().crc();
                        let info = log.append(b).unwrap();
                        log.flush().await.unwrap();
                        let line = format!("ACK {} {} {crc}\n", info.base_offset, info.last_offset);
                        std::io::stdout().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
    });
}

#[test]
fn acknowledged_batches_survive_sigkill() {
    let dir = tempdir();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut acked: BTreeMap<u64, (u64, u32)> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(ENV_DIR, dir.path())
            .env("SPINDLE_LOG_CRASH_SEED", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(80..600)));
        child.kill().unwrap(); // SIGKILL
        let pid = child.id();
        let out = within(
            STEP_LIMIT,
            &format!("round {round}: child {pid} exiting"),
            pid,
            {
                move || {
                    let mut out = String::new();
                    let mut stdout = child.stdout.take().unwrap();
                    stdout.read_to_string(&mut out).unwrap();
                    child.wait().unwrap();
                    out
                }
            },
        );
        // Only whole lines: the kill may cut the last one.
        let whole = &out[..out.rfind('\n').map_or(0, |i| i + 1)];
        for line in whole.lines().filter(|l| l.starts_with("ACK ")) {
            let f: Vec<&str> = line.split(' ').collect();
            let (base, last, crc) = (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            );
            // A batch acknowledged twice at one offset would mean a lost batch was overwritten.
            assert!(
                acked.insert(base, (last, crc)).is_none(),
                "offset {base} acknowledged twice"
            );
        }
        let path = dir.path().to_path_buf();
        let expect = acked.clone();
        let reopen = move || {
            run(move || async move {
                let (log, _) = open(&path, config()).await;
                let end = log.next_offset();
                assert_eq!(log.high_watermark(), end);
                // Ends on a batch boundary: the batches from the start check and tile the log.
                let all = read_all(&log, log.start_offset()).await;
                let last_batch_end = all.last().map_or(Offset(0), |b| {
                    Offset(BatchHeader::parse(b).unwrap().last_offset() as u64 + 1)
                });
                assert_eq!(last_batch_end, end, "round {round}");
                let stored: BTreeMap<u64, (u64, u32)> = all
                    .iter()
                    .map(|b| {
                        let h = BatchHeader::parse(b).unwrap();
                        (h.base_offset() as u64, (h.last_offset() as u64, h.crc()))
                    })
                    .collect();
                for (&base, &(last, crc)) in &expect {
                    assert!(
                        Offset(last) < end,
                        "round {round}: acknowledged {base}..={last} lost (end {end})"
                    );
                    assert_eq!(
                        stored.get(&base),
                        Some(&(last, crc)),
                        "round {round}: batch {base}"
                    );
                }
                // Spot-check reads that start inside batches.
                for (&base, &(last, _)) in expect.iter().step_by(97) {
                    let got = log.read(Offset(last), 1).await.unwrap();
                    assert_eq!(
                        BatchHeader::parse(&got[0]).unwrap().base_offset() as u64,
                        base
                    );
                }
                // Closed, not dropped: a file dropped open is closed by the executor later,
                // which this thread's executor, ending here, would never do.
                log.close().await.unwrap();
            })
        };
        within(
            STEP_LIMIT,
            &format!("round {round}: reopen"),
            std::process::id(),
            reopen,
        );
    }
    assert!(
        acked.len() > ROUNDS,
        "the children acknowledged only {} batches",
        acked.len()
    );
}

/// Runs `step` on a thread of its own and returns its result; if it takes longer than `limit`,
/// fails naming the step and showing the scheduler state of process `pid`'s threads.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    pid: u32,
    step: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = done.send(step());
    });
    match result.recv_timeout(limit) {
        Ok(value) => {
            thread.join().unwrap();
            value
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The step panicked: pass its panic on.
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done after {limit:?}\n{}", threads_of(pid))
        }
    }
}

/// Each thread of process `pid`: its state and where in the kernel it waits.
fn threads_of(pid: u32) -> String {
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("process {pid} is gone");
    };
    tasks
        .flatten()
        .map(|task| {
            // `pid (name) state ...`
            let stat = read(task.path().join("stat"));
            let head: Vec<&str> = stat.split_whitespace().take(3).collect();
            let wchan = read(task.path().join("wchan"));
            format!("{} wchan={wchan}", head.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
