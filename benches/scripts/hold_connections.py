"""Opens N Kafka connections to ADDR, sends one ApiVersions v0 on each, holds them for SECS, then
checks every one still answers. With `fetch` among the options, each connection instead sends
a Fetch that long-polls partition 0 of the topic `hold` (created through Metadata first) for
longer than SECS, and the script checks after SECS that every Fetch is still waiting. With `tls`
the connections are TLS (the server's certificate is not verified).
Usage: hold_connections.py HOST:PORT N SECS [fetch] [tls]"""
import resource, socket, ssl, struct, sys, time
host, port = sys.argv[1].split(":"); n = int(sys.argv[2]); secs = float(sys.argv[3])
options = set(sys.argv[4:])
fetching = "fetch" in options
tls = None
if "tls" in options:
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))


def connect():
    s = socket.create_connection((host, int(port)), timeout=10)
    return tls.wrap_socket(s, server_hostname=host) if tls else s


def frame(api_key, version, body):
    req = struct.pack(">hhih", api_key, version, 1, 4) + b"hold" + body
    return struct.pack(">i", len(req)) + req


def recv_exact(s, n):
    got = b""
    while len(got) < n:
        more = s.recv(n - len(got))
        if not more:
            raise ConnectionError("connection closed")
        got += more
    return got


def answer(s):
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, size)


def waiting(socks):
    """How many of `socks` have nothing to read: their Fetch is still waiting."""
    count = 0
    for s in socks:
        s.setblocking(False)
        try:
            # TLS sockets cannot peek: a byte read there is a byte of an answer, which ends the
            # socket's wait anyway.
            s.recv(1) if tls else s.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, ssl.SSLWantReadError):
            count += 1
        s.setblocking(True)
    return count


topic = struct.pack(">ih", 1, 4) + b"hold"
api_versions = frame(18, 0, b"")
# Fetch v4: replica -1, max wait, min bytes 1, max bytes 1 MiB, read_uncommitted, one topic
# with partition 0 from offset 0 (the empty log's end), at most 1 MiB.
wait_ms = int(secs * 1000) + 60_000
fetch = frame(1, 4, struct.pack(">iiiib", -1, wait_ms, 1, 1 << 20, 0) + topic
              + struct.pack(">iiqi", 1, 0, 0, 1 << 20))
if fetching:
    with connect() as s:
        s.sendall(frame(3, 1, topic))  # Metadata v1 creates the topic
        answer(s)
socks, answered = [], 0
for i in range(n):
    s = connect()
    s.sendall(fetch if fetching else api_versions)
    socks.append(s)
if fetching:
    time.sleep(1)
    print(f"holding {len(socks)} connections, {waiting(socks)} Fetch requests waiting", flush=True)
    time.sleep(secs)
    print(f"after {secs:.0f} s: {waiting(socks)} of {len(socks)} Fetch requests still waiting",
          flush=True)
    sys.exit(0)
for s in socks:
    answer(s); answered += 1
print(f"holding {len(socks)} connections, {answered} answered ApiVersions", flush=True)
time.sleep(secs)
alive = 0
for s in socks:
    s.sendall(api_versions)
for s in socks:
    answer(s); alive += 1
print(f"after {secs:.0f} s: {alive} of {len(socks)} connections still answer", flush=True)
