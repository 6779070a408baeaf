"""The real `spindle serve` binary as a child process, shared by the end-to-end suites
(tests/e2e, tests/grpc).

Each server gets free loopback ports below the kernel's ephemeral range (so that no client
connection can take one as its local port before the server binds it) and a data directory on the real disk (pytest's tmp dir): tmpfs would hide O_DIRECT alignment bugs and
fsync costs. Readiness is the "spindle ready" line the server prints to its log, or, for a
server that prints none, its Kafka port accepting TCP for a while.

Only the PID we started is ever signalled (SIGTERM, then SIGKILL after a timeout), and the
server is asked to die with pytest (PR_SET_PDEATHSIG), so a killed test run leaves no orphan.
Every server a suite starts is listed in the pytest stash under `SERVERS`, so that the suite's
`pytest_runtest_makereport` hook can attach their log tails to a failed test's report.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_LINE = "spindle ready"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PORT_GRACE_S = 3.0
LOG_TAIL_LINES = 200

SERVERS = pytest.StashKey[list]()


def spindle_binary() -> Path:
    """The server binary under test: $SPINDLE_BIN, else the workspace's debug build."""
    if "SPINDLE_BIN" in os.environ:
        return Path(os.environ["SPINDLE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    return target / "debug" / "spindle"


# The lowest port handed to a test server; Linux's default ephemeral range starts at 32768.
TEST_PORT_LOW = 20000
HANDED_OUT: set[int] = set()


def ephemeral_low() -> int:
    """The lowest port the kernel picks for outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback TCP port below the ephemeral range that nothing listens on right now and that
    this process has not handed out before."""
    high = max(ephemeral_low(), TEST_PORT_LOW + 1000)
    for _ in range(10_000):
        port = random.randrange(TEST_PORT_LOW, high)
        if port in HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {TEST_PORT_LOW}..{high}")


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the test process dies first."""
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Spindle:
    """One `spindle serve` process and where to reach it; `base` holds its data directory, its
    log and its configuration file, if any."""

    base: Path
    # TOML given with --config; None: flags and defaults only.
    config_toml: str | None = None
    # --shards for the next start; None: SPINDLE_TEST_SHARDS if set, else the server's default.
    shards: int | None = None
    # RUST_LOG unless the environment sets it.
    rust_log: str = "info"
    kafka_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "spindle.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def args(self) -> list[str]:
        args = [
            str(spindle_binary()),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--kafka-listen",
            self.bootstrap,
            "--kafka-advertise",
            self.bootstrap,
            "--grpc-listen",
            self.grpc_addr,
        ]
        if self.config_toml is not None:
            args += ["--config", str(self.base / "spindle.toml")]
        if self.shards is not None:
            args += ["--shards", str(self.shards)]
        elif "SPINDLE_TEST_SHARDS" in os.environ:
            args += ["--shards", os.environ["SPINDLE_TEST_SHARDS"]]
        return args

    def start(self) -> None:
        binary = spindle_binary()
        if not binary.exists():
            pytest.fail(
                f"{binary} does not exist: build it first with "
                "`cargo build -p spindle-tools --bin spindle` (or set SPINDLE_BIN)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.config_toml is not None:
            (self.base / "spindle.toml").write_text(self.config_toml)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n---- start #{self.starts}: {' '.join(self.args())}\n".encode())
            log.flush()
            log_offset = log.tell()
            env = dict(os.environ)
            env.setdefault("RUST_LOG", self.rust_log)
            env.setdefault("RUST_BACKTRACE", "1")
            env.setdefault("NO_COLOR", "1")  # plain text in the log that failed tests show
            self.proc = subprocess.Popen(
                self.args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=die_with_parent,
            )
        self._wait_ready(log_offset)

    def _wait_ready(self, log_offset: int) -> None:
        """Waits for the ready line after `log_offset`; a server that accepts on its Kafka port
        but prints no ready line within PORT_GRACE_S is taken as ready too."""
        deadline = time.monotonic() + START_TIMEOUT_S
        port_open_since = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"spindle exited with {self.proc.returncode} before it was ready:\n" + self.log_tail()
                )
            with open(self.log_path, "rb") as log:
                log.seek(log_offset)
                if READY_LINE.encode() in log.read():
                    return
            if port_open_since is None and port_accepts(self.kafka_port):
                port_open_since = time.monotonic()
            if port_open_since is not None and time.monotonic() - port_open_since > PORT_GRACE_S:
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(
            f"spindle not ready after {START_TIMEOUT_S}s (no '{READY_LINE}' line, "
            f"port {self.kafka_port} closed):\n" + self.log_tail()
        )

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stops our own process: `sig`, then SIGKILL after a timeout. Returns its exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        return proc.returncode

    def restart(self, sig: int = signal.SIGTERM) -> int | None:
        """Stops the server with `sig` and starts it again on the same ports and data dir.

        Returns the exit code of the stopped process.
        """
        code = self.stop(sig)
        self.start()
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def attach_logs(item: pytest.Item, report: pytest.TestReport) -> None:
    """Adds the log tail of every server the suite is running to a failed test's report."""
    if report.failed:
        for server in item.config.stash.get(SERVERS, []):
            state = "running" if server.alive() else "not running"
            report.sections.append((f"spindle log ({server.bootstrap}, {state})", server.log_tail()))
