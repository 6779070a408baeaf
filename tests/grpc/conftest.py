"""pytest wiring for tests/grpc: the fixtures and hooks live in gateway_harness.py."""

from gateway_harness import (  # noqa: F401
    grpc_clients,
    pytest_runtest_makereport,
    spindle,
    topic,
)
