"""Test certificates made with the openssl CLI, shared by the TLS tests of tests/e2e (Kafka) and
tests/grpc (the gateway): a CA, and a server certificate for localhost and 127.0.0.1 that it
signed, valid for a day."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

HAVE_OPENSSL = shutil.which("openssl") is not None


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca_and_cert(d: Path) -> tuple[Path, Path, Path]:
    """Writes the CA and the server's certificate and key into `d`; (ca.pem, server.pem, server.key)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=spindle-test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    return d / "ca.pem", d / "server.pem", d / "server.key"


def make_client_cert(d: Path, name: str) -> tuple[Path, Path]:
    """Writes a client certificate for common name `name`, signed by the CA that
    make_ca_and_cert(d) wrote, and its key; (name.pem, name.key)."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    (d / f"{name}.ext").write_text("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"
