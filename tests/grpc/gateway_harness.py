"""Harness for the gRPC gateway suite: the real `spindle serve` binary and generated stubs.

Stubs are generated at collection time from gateway/proto with grpc_tools.protoc into a temp
dir (nothing generated is checked in), together with the standard grpc.health.v1 definition.

Servers run on free loopback ports with a fresh data dir under pytest's tmp dir (the real disk,
not tmpfs). A server with auth, quotas or TLS is started from a TOML file given with --config.
Only the PIDs we started are signalled; the child dies with pytest (PR_SET_PDEATHSIG). When a
test fails, the tail of its server's log is attached to the report.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "gateway" / "proto"
READY_LINE = "spindle ready"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
RPC_TIMEOUT_S = 15.0

HEALTH_PROTO = """
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
}
"""

# The parts of grpc.reflection.v1 the suite uses (field numbers as in the standard definition).
REFLECTION_PROTO = """
syntax = "proto3";
package grpc.reflection.v1;
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ServiceResponse { string name = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);
}
"""


def _generate_stubs() -> Path:
    """Compiles spindle.v1 and grpc.health.v1 into Python modules in a temp dir on sys.path."""
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="spindle-grpc-stubs-"))
    health_dir = out / "health_src" / "grpc" / "health" / "v1"
    health_dir.mkdir(parents=True)
    (health_dir / "health.proto").write_text(HEALTH_PROTO)
    reflection_dir = out / "health_src" / "grpc" / "reflection" / "v1"
    reflection_dir.mkdir(parents=True)
    (reflection_dir / "reflection.proto").write_text(REFLECTION_PROTO)
    well_known = Path(importlib.import_module("grpc_tools").__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    for root, files in ((PROTO_ROOT, protos), (out / "health_src", ["grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto"])):
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{root}",
                f"-I{well_known}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                *files,
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed on {files} with {code}")
    for package in ("spindle", "spindle/v1", "grpc_health_stub"):
        (out / package).mkdir(parents=True, exist_ok=True)
    # The health stubs are generated under a `grpc/` package, which would shadow grpcio itself:
    # move them to a package of their own.
    for package, names in (
        ("health", ("health_pb2.py", "health_pb2_grpc.py")),
        ("reflection", ("reflection_pb2.py", "reflection_pb2_grpc.py")),
    ):
        for name in names:
            text = (out / "grpc" / package / "v1" / name).read_text()
            text = text.replace(f"from grpc.{package}.v1 import", "from grpc_health_stub import")
            (out / "grpc_health_stub" / name).write_text(text)
    subprocess.run(["rm", "-rf", str(out / "grpc")], check=True)
    sys.path.insert(0, str(out))
    return out


_generate_stubs()

from grpc_health_stub import (  # noqa: E402
    health_pb2,
    health_pb2_grpc,
    reflection_pb2,
    reflection_pb2_grpc,
)
from spindle.v1 import (  # noqa: E402
    admin_pb2,
    admin_pb2_grpc,
    consumer_pb2,
    consumer_pb2_grpc,
    producer_pb2,
    producer_pb2_grpc,
    record_pb2,
)

__all__ = [
    "admin_pb2",
    "consumer_pb2",
    "health_pb2",
    "producer_pb2",
    "record_pb2",
    "reflection_pb2",
]


def spindle_binary() -> Path:
    """The server binary under test: $SPINDLE_BIN, else the workspace's debug build."""
    if "SPINDLE_BIN" in os.environ:
        return Path(os.environ["SPINDLE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    return target / "debug" / "spindle"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Clients:
    """Stubs on one channel, with the metadata (token) every call carries."""

    channel: grpc.Channel
    metadata: tuple = ()

    def __post_init__(self) -> None:
        self.producer = producer_pb2_grpc.ProducerStub(self.channel)
        self.consumer = consumer_pb2_grpc.ConsumerStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.reflection = reflection_pb2_grpc.ServerReflectionStub(self.channel)

    def call(self, method, request, **kwargs):
        kwargs.setdefault("timeout", RPC_TIMEOUT_S)
        kwargs.setdefault("metadata", self.metadata)
        return method(request, **kwargs)

    def close(self) -> None:
        self.channel.close()


@dataclass
class Spindle:
    """One running `spindle serve` process."""

    base: Path
    config_toml: str | None = None
    kafka_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        return self.base / "spindle.log"

    def start(self) -> None:
        binary = spindle_binary()
        if not binary.exists():
            pytest.fail(f"{binary} does not exist: `cargo build -p spindle-tools --bin spindle`")
        self.base.mkdir(parents=True, exist_ok=True)
        while self.grpc_port == self.kafka_port:
            self.grpc_port = free_port()
        args = [
            str(binary),
            "serve",
            "--data-dir",
            str(self.base / "data"),
            "--kafka-listen",
            self.bootstrap,
            "--kafka-advertise",
            self.bootstrap,
            "--grpc-listen",
            self.grpc_addr,
        ]
        if self.config_toml is not None:
            config = self.base / "spindle.toml"
            config.write_text(self.config_toml)
            args += ["--config", str(config)]
        if "SPINDLE_TEST_SHARDS" in os.environ:
            args += ["--shards", os.environ["SPINDLE_TEST_SHARDS"]]
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info,spindle_gateway=debug")
        env.setdefault("RUST_BACKTRACE", "1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"spindle exited with {self.proc.returncode}:\n{self.log_tail()}")
            if READY_LINE in self.log_text():
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"spindle not ready after {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 150) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def clients(self, token: str | None = None, credentials=None) -> Clients:
        if credentials is None:
            channel = grpc.insecure_channel(self.grpc_addr)
        else:
            channel = grpc.secure_channel(self.grpc_addr, credentials)
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        return Clients(channel, metadata)


_SERVERS = pytest.StashKey[list]()


def start_server(request: pytest.FixtureRequest, base: Path, config_toml: str | None = None) -> Spindle:
    server = Spindle(base=base, config_toml=config_toml)
    request.config.stash.setdefault(_SERVERS, []).append(server)
    request.addfinalizer(server.stop)
    server.start()
    return server


@pytest.fixture(scope="module")
def spindle(request, tmp_path_factory) -> Spindle:
    """A server without auth, shared by the tests of one module."""
    return start_server(request, tmp_path_factory.mktemp("spindle"))


@pytest.fixture
def grpc_clients(spindle):
    clients = spindle.clients()
    yield clients
    clients.close()


@pytest.fixture
def topic(request) -> str:
    """A topic name unique to the test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")
    return f"{name}-{time.monotonic_ns() % 1_000_000}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in item.config.stash.get(_SERVERS, []):
            report.sections.append((f"spindle log {server.base}", server.log_tail()))


def create_topic(clients: Clients, name: str, partitions: int = 1):
    return clients.call(
        clients.admin.CreateTopic,
        admin_pb2.CreateTopicRequest(name=name, partitions=partitions),
    )


def wait_until(predicate, timeout_s: float = 10.0, interval_s: float = 0.05):
    """Polls `predicate` until it returns a truthy value or the time is up; returns its last value."""
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval_s)
        value = predicate()
    return value
