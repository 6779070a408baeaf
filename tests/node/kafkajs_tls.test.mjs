// kafkajs over TLS (`[kafka.tls]`), with SASL/PLAIN inside it (Kafka's SASL_SSL), and with a
// client certificate naming the principal (`client_ca_path`). The certificates are made at test
// time with the openssl CLI; without it the tests are skipped.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { Spindle, stopAll } from './spindle.mjs';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const TEST_TIMEOUT_MS = 60_000;

function hasOpenssl() {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A CA and a server certificate for localhost and 127.0.0.1 signed by it, in a fresh dir. */
function makeCerts() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spindle-certs-'));
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=spindle-test-ca',
    '-keyout', 'ca.key', '-out', 'ca.pem');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
    '-extfile', 'san.ext', '-out', 'server.pem');
  return { dir, ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') };
}

/** A client certificate for common name `name`, signed by the CA of `makeCerts`' dir. */
function makeClientCert(dir, name) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
  writeFileSync(path.join(dir, `${name}.ext`), 'extendedKeyUsage=clientAuth\n');
  run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
    '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

const skip = hasOpenssl() ? false : 'needs the openssl CLI';
let server;
let mtlsServer;
let certs;

before(async () => {
  if (skip) return;
  certs = makeCerts();
  // The listener's TLS table (asking for client certificates or not), and the principal "app"
  // with every operation on `topics`.
  const tls = (clientCerts) => `
[kafka.tls]
cert_path = "${certs.cert}"
key_path = "${certs.key}"
${clientCerts ? `client_ca_path = "${certs.ca}"` : ''}
`;
  const app = (topics) => `
[[grpc.auth.tokens]]
principal = "app"
token = "app-secret"
permissions = [{ topic = "${topics}", ops = ["admin", "read", "write"] }]
`;
  server = await Spindle.start(`[kafka]\nsasl_mechanisms = ["PLAIN"]\n${tls(false)}${app('*')}`);
  mtlsServer = await Spindle.start(`${tls(true)}${app('app.*')}`);
});

after(async () => {
  await stopAll(server, mtlsServer);
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

const client = (ssl) => new Kafka({
  clientId: 'spindle-node-tls',
  brokers: [server.bootstrap],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3_000,
  requestTimeout: 10_000,
  retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
  ssl,
  sasl: { mechanism: 'plain', username: 'app', password: 'app-secret' },
});

test('produce and consume over TLS with SASL/PLAIN inside it', { timeout: TEST_TIMEOUT_MS, skip }, async () => {
  const kafka = client({ ca: [readFileSync(certs.ca, 'utf8')] });
  const topic = `tls-${randomUUID().slice(0, 8)}`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    assert.equal(await admin.createTopics({ topics: [{ topic }], waitForLeaders: true }), true);
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }] });
  } finally {
    await producer.disconnect();
  }
  const consumer = kafka.consumer({ groupId: `g-${topic}`, maxWaitTimeInMs: 100 });
  const got = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${got.length} of 2`)), 20_000);
      consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message.value.toString());
          if (got.length >= 2) { clearTimeout(timer); resolve(); }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  assert.deepEqual(got, ['a', 'b']);
});

test('a client that does not trust the certificate is refused', { timeout: TEST_TIMEOUT_MS, skip }, async () => {
  const producer = client(true).producer();
  await assert.rejects(producer.connect());
  await producer.disconnect();
});

test('a client certificate names the principal, whose grants apply', { timeout: TEST_TIMEOUT_MS, skip }, async () => {
  const app = makeClientCert(path.dirname(certs.ca), 'app');
  const kafka = new Kafka({
    clientId: 'spindle-node-mtls',
    brokers: [mtlsServer.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
    ssl: { ca: [readFileSync(certs.ca, 'utf8')], cert: readFileSync(app.cert, 'utf8'), key: readFileSync(app.key, 'utf8') },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topic = `app.${randomUUID().slice(0, 8)}`;
    assert.equal(await admin.createTopics({ topics: [{ topic }], waitForLeaders: true }), true);
    assert.ok((await admin.listTopics()).includes(topic));
    // Outside its grants the same principal is refused.
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: `other.${randomUUID().slice(0, 8)}` }] }),
      (e) => e.errors?.some((inner) => inner.type === 'TOPIC_AUTHORIZATION_FAILED'),
    );
  } finally {
    await admin.disconnect();
  }
  // Without a certificate the handshake fails.
  const anonymous = new Kafka({
    clientId: 'spindle-node-mtls',
    brokers: [mtlsServer.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    retry: { retries: 0 },
    ssl: { ca: [readFileSync(certs.ca, 'utf8')] },
  }).admin();
  await assert.rejects(anonymous.connect());
  await anonymous.disconnect();
});
