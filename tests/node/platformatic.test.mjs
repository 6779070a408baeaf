// @platformatic/kafka, a pure-JavaScript client written for Kafka 3.5 and later, against the
// real server: it names topics by id in Fetch (v13+), so it needs the topic ids Metadata
// reports. Idempotent produce under every codec, a consumer group that resumes from its
// commits, and topic administration. Run with `node --test tests/node/` (scripts/test does).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { Spindle, stopAll } from './spindle.mjs';

// The client runs on Node.js 20.19 and later (Debian's own nodejs is older; the machines'
// Node.js is 20.20): on an older one these tests say so and skip.
const [major, minor] = process.versions.node.split('.').map(Number);
const tooOld = major < 20 || (major === 20 && minor < 19);
const TEST_TIMEOUT_MS = 60_000;
const CONSUME_TIMEOUT_MS = 20_000;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

let server;

before(async () => {
  if (!tooOld) server = await Spindle.start();
});

after(() => stopAll(server));

const topicName = (stem) => `${stem}-${randomUUID().slice(0, 8)}`;
const options = (clientId) => ({ clientId, bootstrapBrokers: [server.bootstrap], retries: 5, retryDelay: 200 });

async function withAdmin(use) {
  const admin = new Admin(options('platformatic-admin'));
  try {
    return await use(admin);
  } finally {
    await admin.close();
  }
}

/** Reads `count` messages of `topic` as a member of `groupId`, committing each. */
async function consume(groupId, topic, count) {
  const consumer = new Consumer({
    ...options('platformatic-consumer'),
    groupId,
    deserializers: stringDeserializers,
    maxWaitTime: 200,
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
  });
  const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false });
  const got = [];
  const timer = setTimeout(() => stream.destroy(new Error(`only ${got.length} of ${count} messages arrived`)), CONSUME_TIMEOUT_MS);
  try {
    for await (const message of stream) {
      await message.commit();
      got.push(message);
      if (got.length === count) break;
    }
  } finally {
    clearTimeout(timer);
    await stream.close();
    await consumer.close();
  }
  return got;
}

test('metadata reports a topic id per topic, and Fetch by topic id reads every codec an idempotent producer wrote', { timeout: TEST_TIMEOUT_MS, skip: tooOld && `Node.js ${process.versions.node} is older than 20.19` }, async () => {
  const topic = topicName('plt-codecs');
  const ids = await withAdmin(async (admin) => {
    const created = await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
    const metadata = await admin.metadata({ topics: [topic] });
    return { created: created[0].id, listed: metadata.topics.get(topic).id };
  });
  assert.notEqual(ids.listed, NIL_UUID);
  assert.equal(ids.created, ids.listed, 'CreateTopics and Metadata give the same id');

  const producer = new Producer({ ...options('platformatic-producer'), serializers: stringSerializers, idempotent: true });
  const sent = [];
  try {
    // zstd needs Node.js 22's zlib in this client; the other clients' tests cover it.
    for (const compression of ['none', 'gzip', 'snappy', 'lz4']) {
      const messages = Array.from({ length: 6 }, (_, i) => ({
        topic,
        partition: i % 2,
        key: `${compression}-${i}`,
        value: `value ${i} in ${compression}`,
        headers: { codec: compression },
      }));
      await producer.send({ messages, compression });
      sent.push(...messages);
    }
  } finally {
    await producer.close();
  }

  const got = await consume(`plt-group-${randomUUID()}`, topic, sent.length);
  const seen = got.map((m) => `${m.partition}/${m.key}/${m.value}/${m.headers.get('codec')}`).sort();
  const want = sent.map((m) => `${m.partition}/${m.key}/${m.value}/${m.headers.codec}`).sort();
  assert.deepEqual(seen, want);
  for (const partition of [0, 1]) {
    const offsets = got.filter((m) => m.partition === partition).map((m) => Number(m.offset));
    assert.deepEqual(offsets, Array.from({ length: 12 }, (_, i) => i), `partition ${partition} in order`);
  }
});

test('a group resumes from its committed offsets', { timeout: TEST_TIMEOUT_MS, skip: tooOld && `Node.js ${process.versions.node} is older than 20.19` }, async () => {
  const topic = topicName('plt-resume');
  await withAdmin((admin) => admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 }));
  const producer = new Producer({ ...options('platformatic-producer'), serializers: stringSerializers });
  const send = (from, to) =>
    producer.send({ messages: Array.from({ length: to - from }, (_, i) => ({ topic, partition: 0, value: `m${from + i}` })) });
  const groupId = `plt-resume-${randomUUID()}`;
  try {
    await send(0, 5);
    const first = await consume(groupId, topic, 5);
    assert.deepEqual(first.map((m) => m.value), ['m0', 'm1', 'm2', 'm3', 'm4']);
    await send(5, 8);
    const second = await consume(groupId, topic, 3);
    assert.deepEqual(second.map((m) => m.value), ['m5', 'm6', 'm7'], 'nothing read twice');
  } finally {
    await producer.close();
  }
});

test('topics are deleted, and gone from metadata', { timeout: TEST_TIMEOUT_MS, skip: tooOld && `Node.js ${process.versions.node} is older than 20.19` }, async () => {
  const topic = topicName('plt-delete');
  await withAdmin(async (admin) => {
    await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
    const listed = await admin.listTopics();
    assert.ok(listed.includes(topic), `${topic} listed`);
    await admin.deleteTopics({ topics: [topic] });
    assert.ok(!(await admin.listTopics()).includes(topic), `${topic} gone`);
  });
});
