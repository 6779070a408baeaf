// Starts the real `spindle serve` binary for the kafkajs suites, as tests/e2e/conftest.py does
// for the Python ones: free loopback ports, a fresh data directory on the real disk (under the
// OS temp dir, which is not tmpfs here), readiness from the "spindle ready" line or the Kafka
// port accepting TCP, and a stop that signals only the PID it started (SIGTERM, then SIGKILL).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_LINE = 'spindle ready';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export function spindleBinary() {
  if (process.env.SPINDLE_BIN) return process.env.SPINDLE_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? path.join(repoRoot, 'target');
  return path.join(target, 'debug', 'spindle');
}

// The lowest port handed to a test server; Linux's default ephemeral range starts at 32768.
const TEST_PORT_LOW = 20000;
const handedOut = new Set();

function ephemeralLow() {
  try {
    const low = Number.parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), 10);
    return Number.isNaN(low) ? 32768 : low;
  } catch {
    return 32768;
  }
}

function canListen(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// A loopback port below the kernel's ephemeral range (so that no client connection can take it
// as its local port before the server binds it), free now and not handed out before.
async function freePort() {
  const high = Math.max(ephemeralLow(), TEST_PORT_LOW + 1000);
  for (let attempt = 0; attempt < 10_000; attempt += 1) {
    const port = TEST_PORT_LOW + Math.floor(Math.random() * (high - TEST_PORT_LOW));
    if (!handedOut.has(port) && await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port in ${TEST_PORT_LOW}..${high}`);
}

function portAccepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Stops each server (SIGTERM) and removes its directory. A server that did not exit cleanly
 * fails the suite with its log tail, and its directory is kept for a look.
 */
export async function stopAll(...servers) {
  for (const server of servers) {
    if (!server) continue;
    const status = await server.stop();
    if (status && status.code !== 0) {
      throw new Error(`spindle exited ${JSON.stringify(status)} on SIGTERM; log tail:\n${server.logTail()}`);
    }
    rmSync(server.dir, { recursive: true, force: true });
  }
}

export class Spindle {
  constructor(dir, kafkaPort, grpcPort) {
    this.dir = dir;
    this.dataDir = path.join(dir, 'data');
    this.logPath = path.join(dir, 'spindle.log');
    this.kafkaPort = kafkaPort;
    this.grpcPort = grpcPort;
    this.bootstrap = `127.0.0.1:${kafkaPort}`;
    this.configPath = null;
    this.proc = null;
    this.exit = null;
  }

  /**
   * Starts a server on fresh ports and a fresh data dir, with `configToml` (if given) as its
   * configuration file; resolves once it is ready.
   */
  static async start(configToml = null) {
    const binary = spindleBinary();
    if (!existsSync(binary)) {
      throw new Error(`${binary} does not exist: build it with \`cargo build -p spindle-tools --bin spindle\``);
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spindle-node-'));
    const kafkaPort = await freePort();
    const grpcPort = await freePort();
    const server = new Spindle(dir, kafkaPort, grpcPort);
    if (configToml !== null) {
      server.configPath = path.join(dir, 'spindle.toml');
      writeFileSync(server.configPath, configToml);
    }
    await server.#launch(binary);
    return server;
  }

  async #launch(binary) {
    const log = openSync(this.logPath, 'a');
    const args = [
      'serve',
      '--data-dir', this.dataDir,
      '--kafka-listen', this.bootstrap,
      '--kafka-advertise', this.bootstrap,
      '--grpc-listen', `127.0.0.1:${this.grpcPort}`,
      ...(this.configPath ? ['--config', this.configPath] : []),
    ];
    this.proc = spawn(binary, args, {
      stdio: ['ignore', log, log],
      env: { RUST_LOG: 'info', NO_COLOR: '1', ...process.env },
    });
    closeSync(log);
    this.exit = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    let exited = null;
    this.exit.then((status) => { exited = status; });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`spindle exited (${JSON.stringify(exited)}) before it was ready:\n${this.logTail()}`);
      if (this.logText().includes(READY_LINE) || (await portAccepts(this.kafkaPort))) return;
      await sleep(50);
    }
    await this.stop();
    throw new Error(`spindle not ready after ${START_TIMEOUT_MS} ms:\n${this.logTail()}`);
  }

  logText() {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  logTail(lines = 100) {
    return this.logText().split('\n').slice(-lines).join('\n');
  }

  /** Stops the server (SIGTERM) and starts it again, on the same ports and data directory. */
  async restart() {
    const status = await this.stop();
    if (status && status.code !== 0) {
      throw new Error(`spindle exited ${JSON.stringify(status)} on SIGTERM; log tail:\n${this.logTail()}`);
    }
    await this.#launch(spindleBinary());
  }

  /** SIGTERM, then SIGKILL after a timeout; resolves with the exit status. */
  async stop() {
    if (!this.proc) return null;
    const proc = this.proc;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const status = await this.exit;
      clearTimeout(timer);
      return status;
    }
    return this.exit;
  }
}
