"""Opens N Kafka connections to ADDR, sends one ApiVersions v0 on each, holds them for SECS, then
checks every one still answers. Usage: hold_connections.py HOST:PORT N SECS"""
import resource, socket, struct, sys, time
host, port = sys.argv[1].split(":"); n = int(sys.argv[2]); secs = float(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
req = struct.pack(">hhih", 18, 0, 1, 4) + b"hold"
frame = struct.pack(">i", len(req)) + req
socks, answered = [], 0
for i in range(n):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(frame)
    socks.append(s)
for s in socks:
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    s.recv(size, socket.MSG_WAITALL); answered += 1
print(f"holding {len(socks)} connections, {answered} answered ApiVersions", flush=True)
time.sleep(secs)
alive = 0
for s in socks:
    s.sendall(frame)
for s in socks:
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    s.recv(size, socket.MSG_WAITALL); alive += 1
print(f"after {secs:.0f} s: {alive} of {len(socks)} connections still answer", flush=True)
