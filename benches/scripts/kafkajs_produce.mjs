// Produces MIB mebibytes of 1 KiB messages with kafkajs over the partitions of a topic, in
// sends of one batch per partition, which kafkajs puts in one Produce request per broker: each
// request carries every partition (as the Java client, kafka-python and kafkajs send; librdkafka
// 2.16 sends one partition per request). Several sends are in flight at once. Prints one JSON
// line: bytes, seconds, MB/s.
//
// Usage: node kafkajs_produce.mjs BOOTSTRAP TOPIC [MIB (1024)] [PARTITIONS (8)]
// kafkajs comes from tests/node (installed by scripts/test-deps).

import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/node/package.json', import.meta.url));
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic] = process.argv.slice(2, 4);
const mib = Number(process.argv[4] ?? 1024);
const partitions = Number(process.argv[5] ?? 8);
// Per partition per send: 64 messages of 1 KiB, a 64 KiB batch.
const PER_BATCH = 64;
const IN_FLIGHT = 4;

const kafka = new Kafka({ clientId: 'kafkajs-produce', brokers: [bootstrap], logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
await admin.disconnect();

const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: IN_FLIGHT });
await producer.connect();
const value = Buffer.alloc(1024, 'x');
const messages = [];
for (let p = 0; p < partitions; p++) {
  for (let i = 0; i < PER_BATCH; i++) messages.push({ partition: p, value });
}
const sendBytes = messages.length * 1024;
const sends = Math.ceil((mib * 1024 * 1024) / sendBytes);
const deadline = Date.now() + 300_000;
const start = process.hrtime.bigint();
let next = 0;
async function worker() {
  while (next < sends && Date.now() < deadline) {
    next += 1;
    await producer.send({ topic, acks: 1, messages });
  }
}
await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
await producer.disconnect();
if (next < sends) {
  console.error(`gave up after 300 s, ${next} of ${sends} sends`);
  process.exit(1);
}
const bytes = sends * sendBytes;
console.log(JSON.stringify({ bytes, seconds: Number(seconds.toFixed(3)), mb_per_sec: Number((bytes / seconds / 1e6).toFixed(1)) }));
