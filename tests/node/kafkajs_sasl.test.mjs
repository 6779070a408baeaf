// kafkajs against a Spindle whose Kafka listener asks for SASL (PLAIN, SCRAM-SHA-256): user names and passwords
// are the principals and tokens of `[[grpc.auth.tokens]]`, and each principal's grants decide
// per topic.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { Spindle, stopAll } from './spindle.mjs';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const TEST_TIMEOUT_MS = 60_000;
const CONFIG = `
[kafka]
sasl_mechanisms = ["SCRAM-SHA-256", "PLAIN"]

[[grpc.auth.tokens]]
principal = "ops"
token = "ops-secret"
permissions = [{ topic = "*", ops = ["admin", "read"] }]

[[grpc.auth.tokens]]
principal = "events-app"
token = "events-secret"
permissions = [{ topic = "events*", ops = ["read", "write"] }]
`;

let server;

before(async () => {
  server = await Spindle.start(CONFIG);
});

after(() => stopAll(server));

const client = (username, password, mechanism = 'plain') => new Kafka({
  clientId: 'spindle-node-sasl',
  brokers: [server.bootstrap],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3_000,
  requestTimeout: 10_000,
  retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
  sasl: { mechanism, username, password },
});

test('principals authenticate with PLAIN and their grants decide per topic', { timeout: TEST_TIMEOUT_MS }, async () => {
  const events = `events-${randomUUID().slice(0, 8)}`;
  const other = `other-${randomUUID().slice(0, 8)}`;
  const admin = client('ops', 'ops-secret').admin();
  await admin.connect();
  try {
    assert.equal(await admin.createTopics({ topics: [{ topic: events }, { topic: other }], waitForLeaders: true }), true);
  } finally {
    await admin.disconnect();
  }

  const app = client('events-app', 'events-secret');
  const producer = app.producer();
  await producer.connect();
  try {
    const [sent] = await producer.send({ topic: events, messages: [{ key: 'k', value: 'v1' }, { key: 'k', value: 'v2' }] });
    assert.equal(sent.errorCode, 0);
    await assert.rejects(
      producer.send({ topic: other, messages: [{ value: 'x' }] }),
      (e) => /authoriz/i.test(`${e.type} ${e.message}`),
    );
  } finally {
    await producer.disconnect();
  }

  const appAdmin = app.admin();
  await appAdmin.connect();
  try {
    const topics = await appAdmin.listTopics();
    assert.ok(topics.includes(events), `${topics}`);
    assert.ok(!topics.includes(other), `${topics}`);
    const offsets = await appAdmin.fetchTopicOffsets(events);
    assert.equal(offsets.reduce((sum, p) => sum + Number(p.high), 0), 2);
  } finally {
    await appAdmin.disconnect();
  }
});

test('a wrong password is refused with an authentication error', { timeout: TEST_TIMEOUT_MS }, async () => {
  const producer = client('events-app', 'not-the-token').producer();
  await assert.rejects(producer.connect(), (e) => /SASL|authentic/i.test(`${e.name} ${e.message}`));
  await producer.disconnect();
});

test('SCRAM-SHA-256 authenticates without sending the password', { timeout: TEST_TIMEOUT_MS }, async () => {
  const admin = client('events-app', 'events-secret', 'scram-sha-256').admin();
  await admin.connect();
  try {
    assert.ok(Array.isArray(await admin.listTopics()));
  } finally {
    await admin.disconnect();
  }
  const bad = client('events-app', 'wrong', 'scram-sha-256').producer();
  await assert.rejects(bad.connect(), (e) => /SASL|authentic/i.test(`${e.name} ${e.message}`));
  await bad.disconnect();
});
