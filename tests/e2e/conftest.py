"""Fixtures that run the real `spindle serve` binary for the end-to-end suite (the process
itself is tests/spindle_process.py, shared with tests/grpc).

Two scopes:
  - `spindle`: one server per test module, for tests that only need a working broker (each uses
    its own topic names, see `topic_name`);
  - `fresh_spindle`: one server per test, for tests that restart it or feed it garbage, so that a
    crash is blamed on the test that caused it.

When a test fails, the tail of the server's log is attached to its report.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spindle_process import (  # noqa: E402  (after the path that finds it)
    READY_LINE,
    SERVERS,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Spindle,
    attach_logs,
    die_with_parent,
)

__all__ = ["READY_LINE", "START_TIMEOUT_S", "STOP_TIMEOUT_S", "Spindle", "die_with_parent"]


def _run(request: pytest.FixtureRequest, server: Spindle):
    """Runs `server` for the fixture's scope. At teardown the server must exit with 0 on
    SIGTERM: a crash or a hang on the way out fails the test (or module) that used it."""
    servers = request.config.stash.setdefault(SERVERS, [])
    servers.append(server)
    try:
        server.start()
        yield server
    finally:
        code = server.stop()
        servers.remove(server)
    if code not in (0, None):
        pytest.fail(f"spindle exited with {code} when stopped with SIGTERM:\n{server.log_tail()}")


@pytest.fixture(scope="module")
def spindle(request, tmp_path_factory):
    """A server shared by the tests of one module."""
    yield from _run(request, Spindle(base=tmp_path_factory.mktemp("spindle")))


@pytest.fixture
def fresh_spindle(request, tmp_path):
    """A server of this test's own, for restarts and hostile input."""
    yield from _run(request, Spindle(base=tmp_path / "spindle"))


@pytest.fixture
def topic_name(request) -> str:
    """A topic name no other test uses."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the running servers' log tails to a failed test's report."""
    outcome = yield
    attach_logs(item, outcome.get_result())
