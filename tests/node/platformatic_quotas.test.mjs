// Client quotas read back and changed with @platformatic/kafka's admin client
// (DescribeClientQuotas, AlterClientQuotas), as `kafka-configs.sh --describe|--alter
// --entity-type clients|users` does: the configured ones, changes that outlive a restart, and
// the changes that cannot be kept refused with the reason. (tests/e2e/test_quotas.py shows a
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

const withAdmin = async (fn) => {
  const admin = new Admin({ clientId: 'quota-admin', bootstrapBrokers: [server.bootstrap], retries: 2 });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
};

test('quotas read back as Kafka quota entities, change at run time and keep their changes across a restart', { skip: tooOld && 'Node.js too old' }, async () => {
  await withAdmin(async (admin) => {
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

    // Change a configured entity, add one, and remove a configured one's only rate.
    await admin.alterClientQuotas({
      entries: [
        { entities: [{ entityType: 'client-id', entityName: 'loader' }], ops: [{ key: 'consumer_byte_rate', value: 65536, remove: false }] },
        { entities: [{ entityType: 'user', entityName: 'app' }, { entityType: 'client-id', entityName: 'etl' }], ops: [{ key: 'producer_byte_rate', value: 8192, remove: false }] },
        { entities: [{ entityType: 'user', entityName: 'anonymous' }], ops: [{ key: 'consumer_byte_rate', value: 0, remove: true }] },
      ],
    });
    // A default user has no counterpart here: refused, with the reason.
    await assert.rejects(
      admin.alterClientQuotas({
        entries: [{ entities: [{ entityType: 'user' }], ops: [{ key: 'producer_byte_rate', value: 1, remove: false }] }],
      }),
      (err) => {
        // The client wraps the answer: INVALID_REQUEST (42) for the entry, with the reason.
        const [entry] = err.errors[0].response.entries;
        assert.equal(entry.errorCode, 42);
        assert.match(entry.errorMessage, /default user/);
        return true;
      },
    );
  });
  const changed = {
    'client-id=loader': { producer_byte_rate: 1048576, consumer_byte_rate: 65536 },
    'user=app,client-id=etl': { producer_byte_rate: 8192 },
    'client-id=<default>': { producer_byte_rate: 4194304, consumer_byte_rate: 4194304 },
  };
  const described = () => withAdmin(async (admin) => byEntity(await admin.describeClientQuotas({ components: [] })));
  assert.deepEqual(await described(), changed);
  await server.restart();
  assert.deepEqual(await described(), changed, 'the changes outlive a restart');
});
