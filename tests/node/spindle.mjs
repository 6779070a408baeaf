// Starts the real `spindle serve` binary for the kafkajs suites, as tests/e2e/conftest.py does
// for the Python ones: free loopback ports, a fresh data directory on the real disk (under the
// OS temp dir, which is not tmpfs here), readiness from the "spindle ready" line or the Kafka
// port accepting TCP, and a stop that signals only the PID it started (SIGTERM, then SIGKILL).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, closeSync } from 'node:fs';
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

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
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

export class Spindle {
  constructor(dir, kafkaPort, grpcPort) {
    this.dir = dir;
    this.dataDir = path.join(dir, 'data');
    this.logPath = path.join(dir, 'spindle.log');
    this.kafkaPort = kafkaPort;
    this.grpcPort = grpcPort;
    this.bootstrap = `127.0.0.1:${kafkaPort}`;
    this.proc = null;
    this.exit = null;
  }

  /** Starts a server on fresh ports and a fresh data dir; resolves once it is ready. */
  static async start() {
    const binary = spindleBinary();
    if (!existsSync(binary)) {
      throw new Error(`${binary} does not exist: build it with \`cargo build -p spindle-tools --bin spindle\``);
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spindle-node-'));
    const kafkaPort = await freePort();
    let grpcPort = await freePort();
    while (grpcPort === kafkaPort) grpcPort = await freePort();
    const server = new Spindle(dir, kafkaPort, grpcPort);
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
