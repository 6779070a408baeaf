#!/usr/bin/env bash
# The server's resident memory per Kafka connection: a fresh one-shard `spindle serve`, its
# resident memory at rest, then while hold_connections.py holds N connections (each answered an
# ApiVersions, or with FETCH=1 each waiting in a long-polling Fetch), and after they close; with
# TLS=1 over TLS (a self-signed ECDSA certificate made with the openssl CLI). Prints one line.
# Run from the repository root after `cargo build --release --bin spindle`.
# Environment: B (target/release), N (10000), FETCH (unset), TLS (unset), WORK
# (/tmp/spindle-connection-memory).
set -u
B=${B:-target/release}; N=${N:-10000}; WORK=${WORK:-/tmp/spindle-connection-memory}
. "$(dirname "$0")/common.sh"
# hold_connections.py raises its own descriptor limit to 20,000.
ulimit -n $(( N + 10000 > 20000 ? N + 10000 : 20000 ))
rm -rf "$WORK"; mkdir -p "$WORK"
tls_config=()
if [ -n "${TLS:-}" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
    printf '[kafka.tls]\ncert_path = "%s"\nkey_path = "%s"\n' "$WORK/cert.pem" "$WORK/key.pem" \
        > "$WORK/spindle.toml"
    tls_config=(--config "$WORK/spindle.toml")
fi
start_spindle "$WORK/server.log" "${tls_config[@]}" --data-dir "$WORK/data" \
    --kafka-listen 127.0.0.1:19092 --grpc-enabled false --admin-listen 127.0.0.1:19094 --shards 1
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
at_rest=$(rss)
python3 "$(dirname "$0")/hold_connections.py" 127.0.0.1:19092 "$N" 8 ${FETCH:+fetch} ${TLS:+tls} \
    > "$WORK/hold.log" 2>&1 &
hold=$!
wait_for "$WORK/hold.log" holding 60
if ! grep -q holding "$WORK/hold.log"; then
    cat "$WORK/hold.log"; kill -TERM $SERVER; wait $SERVER; exit 1
fi
sleep 1; held=$(rss)
wait $hold; after=$(rss)
echo "$N ${TLS:+TLS }connections${FETCH:+ in a long-polling Fetch}: at rest $at_rest KiB, held $held KiB" \
    "($(( (held - at_rest) * 1024 / N )) bytes each), after $after KiB; $(tail -1 "$WORK/hold.log")"
kill -TERM $SERVER; wait $SERVER; rm -rf "$WORK"
