#!/usr/bin/env python3
"""Peak resident memory of a running `spindle serve` while it answers requests that decode into
much more than their bytes (docs/BENCHMARKS.md, "Requests that decode into much more than their
bytes"). Sends, on fresh connections: one ListOffsets v1 naming N partitions of an unknown topic,
then PARALLEL ListOffsets of M partitions at once, then one Fetch v4 naming F partitions, and
prints the server's VmHWM (peak RSS) after each, and whether each request was answered.

Usage: benches/scripts/decode_memory.py PID [BOOTSTRAP]
  PID: the server's process id (its /proc/PID/status is read); BOOTSTRAP: 127.0.0.1:19092.
Environment: N (3000000), M (690000), PARALLEL (8), F (500000).
"""

import os
import socket
import struct
import sys
import threading
import time


def peak_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) // 1024
    return -1


def header(key: int, version: int) -> bytes:
    return struct.pack(">hhih", key, version, 1, 1) + b"x"


def list_offsets(partitions: int) -> bytes:
    body = struct.pack(">ii", -1, 1) + struct.pack(">h", 1) + b"t" + struct.pack(">i", partitions)
    return header(2, 1) + body + struct.pack(">iq", 0, -1) * partitions


def fetch(partitions: int) -> bytes:
    body = struct.pack(">iiii", -1, 100, 1, 1 << 20) + b"\x00" + struct.pack(">i", 1)
    body += struct.pack(">h", 1) + b"t" + struct.pack(">i", partitions)
    return header(1, 4) + body + struct.pack(">iqi", 0, 0, 1024) * partitions


def send(addr, request: bytes, out: list) -> None:
    """Sends one request and reads its answer; records "answered" or "closed"."""
    host, port = addr
    with socket.create_connection((host, port)) as s:
        s.settimeout(60)
        try:
            s.sendall(struct.pack(">i", len(request)) + request)
            prefix = s.recv(4)
            if len(prefix) < 4:
                out.append("closed")
                return
            left = struct.unpack(">i", prefix)[0]
            while left > 0:
                chunk = s.recv(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            out.append("answered")
        except OSError:
            out.append("closed")


def main() -> None:
    pid = int(sys.argv[1])
    host, port = (sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:19092").rsplit(":", 1)
    addr = (host, int(port))
    n, m = int(os.environ.get("N", 3_000_000)), int(os.environ.get("M", 690_000))
    parallel, f = int(os.environ.get("PARALLEL", 8)), int(os.environ.get("F", 500_000))
    print(f"peak before: {peak_mib(pid)} MiB")

    out: list = []
    request = list_offsets(n)
    send(addr, request, out)
    print(f"ListOffsets of {len(request) / 2**20:.1f} MiB: {out[-1]}; peak {peak_mib(pid)} MiB")

    out = []
    request = list_offsets(m)
    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(addr, request, out)) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{parallel} ListOffsets of {len(request) / 2**20:.1f} MiB at once: {out} in "
          f"{time.monotonic() - started:.1f} s; peak {peak_mib(pid)} MiB")

    out = []
    request = fetch(f)
    send(addr, request, out)
    print(f"Fetch of {len(request) / 2**20:.1f} MiB: {out[-1]}; peak {peak_mib(pid)} MiB")


if __name__ == "__main__":
    main()
