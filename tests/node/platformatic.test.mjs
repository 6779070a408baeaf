// @platformatic/kafka, a pure-JavaScript client written for Kafka 3.5 and later, against the
// real server: it names topics by id in Fetch (v13+), so it needs the topic ids Metadata
// reports. Idempotent produce under every codec, a consumer group that resumes from its
// commits, a KIP-848 group (the coordinator assigns), and topic administration. Run with
// `node --test tests/node/` (scripts/test does).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** Polls `done` every 50 ms until it holds, or fails naming `what` (or what it returns) after `ms`. */
async function until(what, done, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${typeof what === 'function' ? what() : what}`);
    await sleep(50);
  }
}

test('a KIP-848 group shares its partitions, hands them to the member left, and keeps committing after a restart', { timeout: 120_000, skip: tooOld && `Node.js ${process.versions.node} is older than 20.19` }, async () => {
  const topic = topicName('plt-848');
  await withAdmin((admin) => admin.createTopics({ topics: [topic], partitions: 4, replicas: 1 }));
  const producer = new Producer({ ...options('platformatic-producer'), serializers: stringSerializers });
  const send = (round, count) =>
    producer.send({ messages: Array.from({ length: count }, (_, i) => ({ topic, partition: i % 4, value: `r${round}-${i}` })) });
  const groupId = `plt-848-${randomUUID()}`;
  const seen = { a: [], b: [], c: [] };
  const committed = [];
  // The coordinator assigns the partitions (`groupProtocol: 'consumer'`). Enough retries to
  // ride out the restart.
  const join = async (name) => {
    const consumer = new Consumer({ ...options(name), retries: 40, groupId, groupProtocol: 'consumer', deserializers: stringDeserializers, maxWaitTime: 200 });
    const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false });
    stream.on('data', (message) => {
      seen[name].push(message.value);
      message.commit().then(() => committed.push(message.value), () => {});
    });
    return { consumer, stream, owned: () => (consumer.assignments ?? []).flatMap((a) => a.partitions).sort() };
  };
  // What `name` read (or what was committed) of round `round`; a record may come twice (a
  // member goes back to the last commit when its assignment changes), so these are sets.
  const ofRound = (values, round) => new Set(values.filter((v) => v.startsWith(`r${round}-`)));
  const leave = async (member) => {
    await member.stream.close();
    await member.consumer.close();
  };
  const a = await join('a');
  try {
    await until('a owns every partition', () => a.owned().length === 4);
    const b = await join('b');
    await until('a and b share the partitions', () => a.owned().length > 0 && b.owned().length > 0 && a.owned().length + b.owned().length === 4);
    assert.deepEqual([...a.owned(), ...b.owned()].sort(), [0, 1, 2, 3], 'each partition to one member');
    await send(1, 40);
    await until('round 1 read', () => seen.a.length + seen.b.length >= 40);
    const first = [...seen.a, ...seen.b];
    assert.equal(new Set(first).size, 40, 'each record of round 1 read once');
    assert.ok(seen.a.length > 0 && seen.b.length > 0, 'both members read');
    await leave(b);
    await until('a owns every partition again', () => a.owned().length === 4);
    await send(2, 8);
    await until(() => `round 2 read by a (a owns ${a.owned()}, read ${seen.a})`, () => ofRound(seen.a, 2).size === 8);

    // The restart forgets the membership: a is fenced at its next heartbeat, joins again and
    // its commits are taken again.
    await server.restart();
    await send(3, 8);
    await until('a commits round 3 after the restart', () => ofRound(committed, 3).size === 8, 60_000);
  } finally {
    await leave(a);
  }
  // A new member starts from the commits: after round 3, nothing of it again.
  await send(4, 4);
  const c = await join('c');
  try {
    await until('c reads round 4', () => seen.c.length >= 4);
    await sleep(500);
    assert.deepEqual(seen.c.sort(), ['r4-0', 'r4-1', 'r4-2', 'r4-3'], 'c resumes after what a committed');
  } finally {
    await leave(c);
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
