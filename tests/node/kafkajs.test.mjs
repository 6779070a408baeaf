// kafkajs against the real server: topic administration, produce/consume with keys and
// headers, a consumer group that resumes from its commits and one that rides out a server
// restart, reading data that was already there before the consumer started, deleting records,
// group administration, and reading a compacted topic to its end. Run with
// `node --test tests/node/` (scripts/test does).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { Spindle, stopAll } from './spindle.mjs';

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
after(() => stopAll(server));

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

/** The group's committed offsets of `topic`, as `[partition, offset]` pairs in order. */
async function committedOffsets(groupId, topic) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return committed.partitions.map((p) => [p.partition, p.offset]).sort();
  } finally {
    await admin.disconnect();
  }
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

for (const [name, compression] of [['uncompressed', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]) {
  test(`produce and consume with keys and headers, ${name}`, { timeout: TEST_TIMEOUT_MS }, async () => {
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
    const [meta] = await producer.send({ topic, acks: -1, messages, compression });
    await producer.disconnect();
    assert.equal(meta.errorCode, 0);
    assert.equal(meta.baseOffset, '0');

    const got = await consume(kafka.consumer({ groupId: topicName('g'), ...CONSUMER_OPTIONS }), topic, messages.length);
    assert.deepEqual(
      got.map((m) => [m.offset, m.key.toString(), m.value.toString(), headersOf(m), m.timestamp]),
      messages.map((m, i) => [String(i), m.key, m.value, m.headers, m.timestamp]),
    );
  });
}

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
  assert.deepEqual(await committedOffsets(groupId, topic), [[0, '10'], [1, '10']]);
});

test('a running consumer group rides out a server restart without joining again and commits to the end', { timeout: TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-restart');
  await createTopic(topic, 2);
  const groupId = topicName('group');
  const producer = kafka.producer();
  await producer.connect();
  const send = (round) =>
    producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `round${round}-${i}` })) });
  // More retries than the shared client's, to wait for the server through its restart.
  const consumer = kafka.consumer({ groupId, ...CONSUMER_OPTIONS, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1_000 } });
  const got = new Set();
  const crashes = [];
  consumer.on(consumer.events.CRASH, (event) => crashes.push(event.payload.error.message));
  const joins = [];
  consumer.on(consumer.events.GROUP_JOIN, (event) => joins.push(event.payload.groupId));
  const until = async (what, done) => {
    const deadline = Date.now() + CONSUME_TIMEOUT_MS;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`not within ${CONSUME_TIMEOUT_MS} ms: ${what} (crashes: ${crashes})`);
      await sleep(50);
    }
  };
  const round = (n) => () => Array.from({ length: 10 }, (_, i) => `round${n}-${i}`).every((v) => got.has(v));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void got.add(message.value.toString()) });
    await send(1);
    await until('round 1 consumed', round(1));
    // The group's membership outlives the restart (kept in the offsets log): the member
    // heartbeats on at its generation, without joining again.
    await server.restart();
    await send(2);
    await until('round 2 consumed after the restart', round(2));
    const atTheEnd = async () => JSON.stringify(await committedOffsets(groupId, topic)) === JSON.stringify([[0, '10'], [1, '10']]);
    await until('the commits reach the end of both partitions', atTheEnd);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
  assert.deepEqual(crashes, [], 'the consumer never crashed');
  assert.equal(joins.length, 1, 'the restart made the member join the group again');
});

test('a transactional producer commits and aborts; a read-committed consumer sees only the commits', { timeout: TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-txn');
  await createTopic(topic, 2);
  const producer = kafka.producer({ transactionalId: topicName('txn'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const round = async (name, commit) => {
    const transaction = await producer.transaction();
    await transaction.send({
      topic,
      messages: Array.from({ length: 4 }, (_, i) => ({ partition: i % 2, value: `${name}-${i}` })),
    });
    await (commit ? transaction.commit() : transaction.abort());
  };
  await round('first', true);
  await round('aborted', false);
  await round('second', true);
  await producer.disconnect();

  // kafkajs reads committed records only unless told otherwise: the aborted round, between the
  // two committed ones in both partitions, must not reach it.
  const got = await consume(kafka.consumer({ groupId: topicName('txn-reader'), ...CONSUMER_OPTIONS }), topic, 8);
  const expected = ['first', 'second'].flatMap((name) => Array.from({ length: 4 }, (_, i) => `${name}-${i}`));
  assert.deepEqual(got.map((m) => m.value.toString()).sort(), expected.sort());
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

// --- compacted topics ----------------------------------------------------------------------
// Compacted topics: kafkajs reads a compacted topic (`cleanup.policy=compact`) from the beginning to its end: the
// offsets rise with holes where the cleaner removed the older records of a key, every record read
// is the one produced at its offset, each key ends on its latest value, and the consumer does not
// stall at a hole. tests/e2e/test_compaction.py covers the rest (tombstones, codecs, restarts,
// the other clients).
//
// The cleaner touches only sealed segments, so the topic rolls every 4 KiB (`segment.bytes`, the
// smallest) and is cleaned as soon as a segment is sealed (`min.cleanable.dirty.ratio=0.01`); each
// round of keys is one send, one batch of about 2 KiB. The active segment holds at most
// RECORDS_PER_SEGMENT_MAX of these records (each at least VALUE_BYTES long), so everything below
// `high watermark - RECORDS_PER_SEGMENT_MAX` is sealed, and once cleaned holds each key at most once.

const COMPACTION_TEST_TIMEOUT_MS = 120_000;
const READ_TIMEOUT_MS = 20_000;
// The cleaner checks each partition about every 2 s.
const COMPACTION_TIMEOUT_MS = 45_000;

const SEGMENT_BYTES = 4096;
const VALUE_BYTES = 100;
const RECORDS_PER_SEGMENT_MAX = Math.floor(SEGMENT_BYTES / VALUE_BYTES);
const KEYS = 20;
const ROUNDS = 40;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const keyName = (i) => `key-${String(i).padStart(2, '0')}`;
const valueOf = (key, round) => `${key}:${round}:`.padEnd(VALUE_BYTES, '.');

async function createCompactedTopic(topic) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const configEntries = [
      { name: 'cleanup.policy', value: 'compact' },
      { name: 'segment.bytes', value: String(SEGMENT_BYTES) },
      { name: 'min.cleanable.dirty.ratio', value: '0.01' },
    ];
    assert.equal(
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries }], waitForLeaders: true, timeout: 10_000 }),
      true,
    );
  } finally {
    await admin.disconnect();
  }
}

/** Sends ROUNDS rounds of one value per key (one send, one batch, per round); returns what was sent with its offsets. */
async function produceRounds(topic) {
  const keys = Array.from({ length: KEYS }, (_, i) => keyName(i));
  const producer = kafka.producer();
  await producer.connect();
  const sent = [];
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      const [meta] = await producer.send({
        topic,
        acks: -1,
        messages: keys.map((key) => ({ key, value: valueOf(key, round), partition: 0 })),
      });
      assert.equal(meta.errorCode, 0);
      keys.forEach((key, i) => sent.push({ offset: Number(meta.baseOffset) + i, key, value: valueOf(key, round) }));
    }
  } finally {
    await producer.disconnect();
  }
  return sent;
}

/** The partition's watermarks and every record from its start to its high watermark, read by a new consumer. */
async function readAll(topic) {
  const admin = kafka.admin();
  await admin.connect();
  let offsets;
  try {
    offsets = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  const [{ low, high }] = offsets;
  const snap = { low: Number(low), high: Number(high), records: [] };
  if (snap.high === snap.low) return snap;
  const consumer = kafka.consumer({ groupId: topicName('compacted-reader'), ...CONSUMER_OPTIONS });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let timer;
  try {
    await new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        const last = snap.records.at(-1)?.offset;
        reject(new Error(`read ${snap.records.length} records in ${READ_TIMEOUT_MS} ms, the last at offset ${last}, `
          + `high watermark ${snap.high}: stuck at a hole in the offsets?`));
      }, READ_TIMEOUT_MS);
      consumer.run({
        eachMessage: async ({ message }) => {
          const offset = Number(message.offset);
          snap.records.push({ offset, key: message.key?.toString() ?? null, value: message.value?.toString() ?? null });
          // The record before the high watermark is in the active segment, which is never cleaned.
          if (offset >= snap.high - 1) resolve();
        },
      }).catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return snap;
}

/** Keys read more than once below the offsets that are surely sealed; empty once the cleaner has run. */
function repeatedInSealed(snap) {
  const counts = new Map();
  for (const r of snap.records) {
    if (r.offset < snap.high - RECORDS_PER_SEGMENT_MAX) counts.set(r.key, (counts.get(r.key) ?? 0) + 1);
  }
  return [...counts].filter(([, n]) => n > 1);
}

test('kafkajs reads a compacted topic to its end, holes in the offsets and all', { timeout: COMPACTION_TEST_TIMEOUT_MS }, async () => {
  const topic = topicName('node-compacted');
  await createCompactedTopic(topic);
  const sent = await produceRounds(topic);
  assert.deepEqual(sent.map((r) => r.offset), Array.from({ length: KEYS * ROUNDS }, (_, i) => i));

  const deadline = Date.now() + COMPACTION_TIMEOUT_MS;
  let snap = await readAll(topic);
  while (repeatedInSealed(snap).length > 0) {
    assert.ok(
      Date.now() < deadline,
      `not compacted within ${COMPACTION_TIMEOUT_MS} ms: ${snap.records.length} records read, `
        + `keys repeated below ${snap.high - RECORDS_PER_SEGMENT_MAX}: ${JSON.stringify(repeatedInSealed(snap).slice(0, 5))}`,
    );
    await sleep(1_000);
    snap = await readAll(topic);
  }

  const offsets = snap.records.map((r) => r.offset);
  assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]), `offsets not increasing: ${offsets.slice(0, 50)}`);
  const produced = new Map(sent.map((r) => [r.offset, r]));
  for (const r of snap.records) assert.deepEqual(r, produced.get(r.offset), `record at offset ${r.offset}`);
  assert.ok(snap.records.length < sent.length, `nothing removed: ${snap.records.length} of ${sent.length}`);
  const latest = new Map(snap.records.map((r) => [r.key, r.value]));
  assert.deepEqual(
    [...latest].sort(),
    Array.from({ length: KEYS }, (_, i) => [keyName(i), valueOf(keyName(i), ROUNDS - 1)]).sort(),
  );
  const read = new Set(snap.records.map((r) => r.offset));
  const lost = sent.slice(-KEYS).filter((r) => !read.has(r.offset));
  assert.deepEqual(lost, [], 'records of the active segment were removed');
  assert.deepEqual([snap.low, snap.high], [0, sent.length], 'the log start and the high watermark must not change');
});
