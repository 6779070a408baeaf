// Client quotas read back with @platformatic/kafka's admin client (DescribeClientQuotas), as
// `kafka-configs.sh --describe --entity-type clients|users` shows them, and AlterClientQuotas
// refused: quotas are configured in `[[kafka.quotas]]`. (tests/e2e/test_quotas.py shows a
// quota slowing librdkafka clients.)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Admin } from '@platformatic/kafka';
import { Spindle, stopAll } from './spindle.mjs';

const [major, minor] = process.versions.node.split('.').map(Number);
const tooOld = major < 20 || (major === 20 && minor < 19);

const CONFIG = `
[[kafka.quotas]]
client_id = "loader"
producer_byte_rate = 1048576

[[kafka.quotas]]
user = "anonymous"
consumer_byte_rate = 2097152

[[kafka.quotas]]
producer_byte_rate = 4194304
consumer_byte_rate = 4194304
`;
// Kafka's component match types.
const EXACT = 0;
const DEFAULT = 1;

let server;

before(async () => {
  if (!tooOld) server = await Spindle.start(CONFIG);
});

after(() => stopAll(server));

/** Entries as `entity -> {key: value}`, entity as "type=name" parts joined with ",". */
const byEntity = (entries) =>
  Object.fromEntries(
    entries.map(({ entity, values }) => [
      entity.map((e) => `${e.entityType}=${e.entityName ?? '<default>'}`).join(','),
      Object.fromEntries(values.map((v) => [v.key, v.value])),
    ]),
  );

test('the configured quotas read back as Kafka quota entities and cannot be altered', { skip: tooOld && 'Node.js too old' }, async () => {
  const admin = new Admin({ clientId: 'quota-admin', bootstrapBrokers: [server.bootstrap], retries: 2 });
  try {
    const all = byEntity(await admin.describeClientQuotas({ components: [] }));
    assert.deepEqual(all, {
      'client-id=loader': { producer_byte_rate: 1048576 },
      'user=anonymous': { consumer_byte_rate: 2097152 },
      'client-id=<default>': { producer_byte_rate: 4194304, consumer_byte_rate: 4194304 },
    });
    const loader = await admin.describeClientQuotas({
      components: [{ entityType: 'client-id', matchType: EXACT, match: 'loader' }],
    });
    assert.deepEqual(Object.keys(byEntity(loader)), ['client-id=loader']);
    const defaults = await admin.describeClientQuotas({
      components: [{ entityType: 'client-id', matchType: DEFAULT }],
      strict: true,
    });
    assert.deepEqual(Object.keys(byEntity(defaults)), ['client-id=<default>']);

    await assert.rejects(
      admin.alterClientQuotas({
        entries: [{ entities: [{ entityType: 'client-id', entityName: 'loader' }], ops: [{ key: 'producer_byte_rate', value: 1, remove: false }] }],
      }),
      (err) => {
        // The client wraps the answer: INVALID_REQUEST (42) for the entry, with the reason.
        const [entry] = err.errors[0].response.entries;
        assert.equal(entry.errorCode, 42);
        assert.match(entry.errorMessage, /configuration file/);
        return true;
      },
    );
    const unchanged = byEntity(await admin.describeClientQuotas({ components: [] }));
    assert.equal(unchanged['client-id=loader'].producer_byte_rate, 1048576);
  } finally {
    await admin.close();
  }
});
