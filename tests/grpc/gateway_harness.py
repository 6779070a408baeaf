"""Harness for the gRPC gateway suite: the real `spindle serve` binary and generated stubs.

Stubs are generated at collection time from gateway/proto with grpc_tools.protoc into a temp
dir (nothing generated is checked in), together with the standard grpc.health.v1 definition.

Servers are tests/spindle_process.py's, shared with tests/e2e: free loopback ports, a fresh data
dir on the real disk, only our own PIDs signalled. A server with auth, quotas or TLS is started
from a TOML file given with --config. When a test fails, the tail of its server's log is attached
to the report.
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spindle_process import REPO_ROOT, SERVERS, Spindle, attach_logs  # noqa: E402

PROTO_ROOT = REPO_ROOT / "gateway" / "proto"
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
    atexit.register(shutil.rmtree, out, ignore_errors=True)
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


class GatewaySpindle(Spindle):
    """A server whose gateway the suite talks to."""

    def clients(self, token: str | None = None, credentials=None) -> Clients:
        if credentials is None:
            channel = grpc.insecure_channel(self.grpc_addr)
        else:
            channel = grpc.secure_channel(self.grpc_addr, credentials)
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        return Clients(channel, metadata)


def start_server(
    request: pytest.FixtureRequest, base: Path, config_toml: str | None = None
) -> GatewaySpindle:
    server = GatewaySpindle(base=base, config_toml=config_toml, rust_log="info,spindle_gateway=debug")
    request.config.stash.setdefault(SERVERS, []).append(server)
    request.addfinalizer(server.stop)
    server.start()
    return server


@pytest.fixture(scope="module")
def spindle(request, tmp_path_factory) -> GatewaySpindle:
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
    attach_logs(item, outcome.get_result())


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
