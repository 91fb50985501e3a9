// Connection manager faults that can be produced without restarting the shared broker.
import { afterAll, describe, expect, it } from 'vitest';
import { AmqpConnection } from '../../../src/rpc/connection.js';
import { RpcServer } from '../../../src/rpc/server.js';
import { RpcClient } from '../../../src/rpc/client.js';
import { BROKER, captureLogs, cleanup, context, rabbitmqctl, sleep, uniq, waitFor, withRawChannel } from './helpers.js';

const logs = captureLogs();

describe('AmqpConnection', () => {
  afterAll(() => logs.restore());

  it('fails over to the next host (round-robin) and never logs a password', async () => {
    // 127.0.0.1:5999 has no broker: a real refused connection, not a fake
    const conn = new AmqpConnection('rabbit://baduser:SECRETPW1@127.0.0.1:5999,guest:guest@127.0.0.1:5672/', { shuffleHosts: false });
    const connected: string[] = [];
    conn.on('connected', (i: { label: string }) => connected.push(i.label));
    try {
      const t0 = Date.now();
      await conn.start(10_000);
      expect(Date.now() - t0).toBeLessThan(3_000); // no back-off sleep before trying the second host
      expect(connected).toEqual(['127.0.0.1:5672']);
      expect(conn.endpoint).toMatchObject({ host: '127.0.0.1', port: 5672, vhost: '/' });
      const text = logs.read();
      expect(text).toMatch(/AMQP server on 127\.0\.0\.1:5999 is unreachable: .*ECONNREFUSED.*Trying the next host/);
      expect(text).not.toContain('SECRETPW1');
    } finally {
      await conn.close();
    }
  });

  it('wrong credentials: retried with back-off, logged without the password', async () => {
    const conn = new AmqpConnection('rabbit://guest:WRONGPW2@127.0.0.1:5672/', { rabbit: { rabbit_retry_interval: 1 } });
    const started = conn.start(2_500).catch((e: unknown) => e);
    expect(await started).toBeInstanceOf(Error);
    await conn.close();
    const text = logs.read();
    expect(text).toMatch(/AMQP server on 127\.0\.0\.1:5672 is unreachable: .*ACCESS.REFUSED.*Trying again in \d+ seconds/);
    expect(text).not.toContain('WRONGPW2');
  });

  it('negotiates the AMQP heartbeat from heartbeat_timeout_threshold and logs in with AMQPLAIN', async () => {
    const name = uniq('t-hb');
    const conn = new AmqpConnection('rabbit://guest:guest@127.0.0.1:5672/?heartbeat_timeout_threshold=17', { connectionName: name });
    try {
      await conn.start(10_000);
      const rows = await waitFor('connection listed', async () =>
        (await rabbitmqctl('list_connections', 'client_properties', 'timeout', 'auth_mechanism')).split('\n').find((l) => l.includes(name)),
      );
      expect(rows).toMatch(/\t17\tAMQPLAIN$/);
    } finally {
      await conn.close();
    }
  });

  it('back-off: retry interval 1 s, +2 s per round, at most 30 s', () => {
    const conn = new AmqpConnection(BROKER);
    expect([0, 1, 2, 3, 14, 15, 40].map((r) => conn.retryInterval(r))).toEqual([1, 3, 5, 7, 29, 30, 30]);
    void conn.close();
  });

  it('a deleted queue (consumer cancelled by the broker) is re-declared and served again', async () => {
    const conn = new AmqpConnection(BROKER);
    const topic = uniq('t-cancel');
    const server = new RpcServer({ connection: conn, targets: [{ topic, server: 'h' }], endpoints: [{ version: '1.0', methods: { ping: () => 'pong' } }] });
    const client = new RpcClient({ connection: conn });
    try {
      await server.start(10_000);
      expect(await client.call({ topic, server: 'h' }, 'ping', {}, context(), '1.0', { timeout: 5 })).toBe('pong');
      await withRawChannel(async (ch) => {
        await ch.deleteQueue(`${topic}.h`);
      });
      await sleep(200);
      await waitFor(
        'served again',
        async () => (await client.call({ topic, server: 'h' }, 'ping', {}, context(), '1.0', { timeout: 1 }).catch(() => null)) === 'pong',
        10_000,
        50,
      );
      expect(logs.read()).toMatch(new RegExp(`Consumer of ${topic}\\.h cancelled by the broker`));
    } finally {
      await client.close();
      await server.stop(5_000);
      await cleanup(server.queueNames, [`${topic}_fanout`]);
      await conn.close();
    }
  });

  it('a cast waits for a channel and fails only after its bound', async () => {
    // Nothing listens on 5999: publishing "while disconnected" must wait, then fail loudly.
    const conn = new AmqpConnection('rabbit://guest:guest@127.0.0.1:5999/');
    const client = new RpcClient({ connection: conn, castTimeoutMs: 1500 });
    const t0 = Date.now();
    const err = await client.cast({ topic: 'nobody' }, 'x', {}, context(), '1.0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toMatch(/no usable AMQP channel/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    await client.close();
    await conn.close();
  });
});
