// kafkajs against the real server: topic administration, produce/consume with keys and
// headers, a consumer group that resumes from its commits, reading data that was already
// there before the consumer started, deleting records, and group administration. Run with
// `node --test tests/node/` (scripts/test does).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { Spindle } from './spindle.mjs';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const TEST_TIMEOUT_MS = 60_000;
const CONSUME_TIMEOUT_MS = 20_000;
const CONSUMER_OPTIONS = { sessionTimeout: 6_000, rebalanceTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 100 };

let server;
let kafka;

before(async () => {
  server = await Spindle.start();
  kafka = new Kafka({
    clientId: 'spindle-node-e2e',
    brokers: [server.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
});

// The server must exit with 0 on SIGTERM: a crash or hang on the way out fails the suite.
after(async () => {
  const status = await server?.stop();
  if (status && status.code !== 0) {
    throw new Error(`spindle exited ${JSON.stringify(status)} on SIGTERM; log tail:\n${server.logTail()}`);
  }
});

const topicName = (stem) => `${stem}-${randomUUID().slice(0, 8)}`;

async function createTopic(topic, numPartitions) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true, timeout: 10_000 }), true);
  } finally {
    await admin.disconnect();
  }
}

/** Runs a consumer until `count` messages arrived (or fails after a timeout); returns them. */
async function consume(consumer, topic, count, { fromBeginning = true } = {}) {
  const got = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning });
  let timer;
  try {
    await new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`consumed ${got.length} of ${count} in ${CONSUME_TIMEOUT_MS} ms`)), CONSUME_TIMEOUT_MS);
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          got.push({ partition, ...message });
          if (got.length >= count) resolve();
        },
      }).catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return got;
}

const headersOf = (message) =>
  Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, v.toString()]));

test('admin creates a topic and reads its metadata', { timeout: TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-admin');
  await createTopic(topic, 3);

  const admin = kafka.admin();
  await admin.connect();
  try {
    assert.ok((await admin.listTopics()).includes(topic));
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(topics.length, 1);
    assert.deepEqual(topics[0].partitions.map((p) => p.partitionId).sort(), [0, 1, 2]);
    for (const p of topics[0].partitions) assert.ok(p.leader >= 0, `partition ${p.partitionId} has no leader`);
    const offsets = await admin.fetchTopicOffsets(topic);
    assert.deepEqual(offsets.map((o) => [o.partition, o.low, o.high]).sort(), [[0, '0', '0'], [1, '0', '0'], [2, '0', '0']]);
  } finally {
    await admin.disconnect();
  }
});

test('produce and consume with keys and headers', { timeout: TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-keys');
  await createTopic(topic, 1);
  const messages = Array.from({ length: 20 }, (_, i) => ({
    key: `key-${i}`,
    value: `value-${i}-${'x'.repeat(i)}`,
    headers: { source: 'kafkajs', index: String(i) },
    timestamp: String(1_700_000_000_000 + i),
  }));

  const producer = kafka.producer();
  await producer.connect();
  const [meta] = await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
  assert.equal(meta.errorCode, 0);
  assert.equal(meta.baseOffset, '0');

  const got = await consume(kafka.consumer({ groupId: topicName('g'), ...CONSUMER_OPTIONS }), topic, messages.length);
  assert.deepEqual(
    got.map((m) => [m.offset, m.key.toString(), m.value.toString(), headersOf(m), m.timestamp]),
    messages.map((m, i) => [String(i), m.key, m.value, m.headers, m.timestamp]),
  );
});

test('a consumer group resumes from its committed offsets', { timeout: TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-group');
  await createTopic(topic, 2);
  const groupId = topicName('group');
  const producer = kafka.producer();
  await producer.connect();
  const send = (round) =>
    producer.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, key: `k${i}`, value: `round${round}-${i}` })),
    });

  await send(1);
  const first = await consume(kafka.consumer({ groupId, ...CONSUMER_OPTIONS }), topic, 10);
  assert.deepEqual(first.map((m) => m.value.toString()).sort(), Array.from({ length: 10 }, (_, i) => `round1-${i}`).sort());

  // kafkajs commits what it consumed when the consumer disconnects; a second member of the
  // same group must then see only the new round.
  await send(2);
  await producer.disconnect();
  const second = await consume(kafka.consumer({ groupId, ...CONSUMER_OPTIONS }), topic, 10);
  assert.deepEqual(second.map((m) => m.value.toString()).sort(), Array.from({ length: 10 }, (_, i) => `round2-${i}`).sort());

  const admin = kafka.admin();
  await admin.connect();
  try {
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.deepEqual(committed.partitions.map((p) => [p.partition, p.offset]).sort(), [[0, '10'], [1, '10']]);
  } finally {
    await admin.disconnect();
  }
});

test('a new consumer fetches data that was already there', { timeout: TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-existing');
  await createTopic(topic, 1);
  const producer = kafka.producer();
  await producer.connect();
  for (let batch = 0; batch < 5; batch += 1) {
    await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ value: `b${batch}-${i}` })) });
  }
  await producer.disconnect();

  const got = await consume(kafka.consumer({ groupId: topicName('late'), ...CONSUMER_OPTIONS }), topic, 50);

  assert.deepEqual(got.map((m) => m.offset), Array.from({ length: 50 }, (_, i) => String(i)));
  assert.deepEqual(got.map((m) => m.value.toString()).slice(0, 3), ['b0-0', 'b0-1', 'b0-2']);
});

test('admin deletes the records below an offset', { timeout: TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-delete-records');
  await createTopic(topic, 1);
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ value: `d${i}` })) });
  await producer.disconnect();

  const admin = kafka.admin();
  await admin.connect();
  try {
    // kafkajs looks the leader up in metadata it already has (against Kafka too).
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '6' }] });
    const offsets = await admin.fetchTopicOffsets(topic);
    assert.deepEqual(offsets.map((o) => [o.partition, o.low, o.high]), [[0, '6', '10']]);
  } finally {
    await admin.disconnect();
  }
  const got = await consume(kafka.consumer({ groupId: topicName('after-delete'), ...CONSUMER_OPTIONS }), topic, 4);
  assert.deepEqual(got.map((m) => [m.offset, m.value.toString()]), [['6', 'd6'], ['7', 'd7'], ['8', 'd8'], ['9', 'd9']]);
});

test('admin lists, describes, resets and deletes a consumer group', { timeout: TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-group-admin');
  await createTopic(topic, 2);
  const groupId = topicName('admin-group');
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `a${i}` })) });
  await producer.disconnect();

  const admin = kafka.admin();
  await admin.connect();
  const consumer = kafka.consumer({ groupId, ...CONSUMER_OPTIONS });
  try {
    // A running member: the group is listed and described with it.
    const seen = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${seen.length} of 10`)), CONSUME_TIMEOUT_MS);
      consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.offset);
          if (seen.length === 10) {
            clearTimeout(timer);
            resolve();
          }
        },
      }).catch(reject);
    });
    const { groups } = await admin.listGroups();
    assert.ok(groups.some((g) => g.groupId === groupId && g.protocolType === 'consumer'), JSON.stringify(groups));
    const { groups: [described] } = await admin.describeGroups([groupId]);
    assert.equal(described.state, 'Stable');
    assert.equal(described.members.length, 1);

    // Offsets cannot be set under a running member (kafkajs checks the state it describes).
    await assert.rejects(admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '1' }] }), /no running instances/);
    await consumer.disconnect();

    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '1' }, { partition: 1, offset: '2' }] });
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.deepEqual(offsets.partitions.map((p) => [p.partition, p.offset]).sort(), [[0, '1'], [1, '2']]);

    await admin.deleteGroups([groupId]);
    const { groups: after } = await admin.listGroups();
    assert.ok(!after.some((g) => g.groupId === groupId), JSON.stringify(after));
  } finally {
    await consumer.disconnect();
    await admin.disconnect();
  }
});
