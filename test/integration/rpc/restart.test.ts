// Broker restarts for real (rabbitmqctl stop_app && start_app).
// CAUTION: the broker is shared with other engineers' tests; each restart drops their connections
// for a few seconds. Keep this file to these two restarts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpConnection } from '../../../src/rpc/connection.js';
import { RpcServer } from '../../../src/rpc/server.js';
import { RpcClient } from '../../../src/rpc/client.js';
import { targetsForVolumeService } from '../../../src/rpc/topology.js';
import { BROKER, captureLogs, cleanup, context, listBindings, listQueues, rabbitmqctl, sleep, uniq, waitFor } from './helpers.js';

const logs = captureLogs();

async function restartBroker(): Promise<void> {
  try {
    await rabbitmqctl('stop_app');
  } finally {
    await rabbitmqctl('start_app');
  }
}

describe('broker restart', () => {
  const topic = uniq('t-rs');
  const host = `${uniq('t')}@lvm`;
  const hostPart = host.split('@')[0] as string;
  const target = { topic: `${topic}.${host}`, server: hostPart };
  let conn: AmqpConnection;
  let clientConn: AmqpConnection;
  let server: RpcServer;
  let client: RpcClient;
  let calls = 0;

  beforeAll(async () => {
    conn = new AmqpConnection(BROKER);
    clientConn = new AmqpConnection(BROKER);
    server = new RpcServer({
      connection: conn,
      targets: targetsForVolumeService({ host, topic }),
      endpoints: [
        {
          version: '3.18',
          methods: {
            ping: () => ++calls,
            slow: async (_ctx, args) => {
              await sleep(Number(args.ms));
              return 'survived';
            },
          },
        },
      ],
    });
    await server.start(10_000);
    client = new RpcClient({ connection: clientConn });
    expect(await client.call(target, 'ping', {}, context(), '3.0', { timeout: 10 })).toBe(1);
  });

  afterAll(async () => {
    await client?.close();
    await server?.stop(5_000);
    await cleanup(server?.queueNames ?? [], [`${topic}_fanout`, `${topic}.${host}_fanout`]);
    await conn?.close();
    await clientConn?.close();
    logs.restore();
  });

  it('idle: serving again within 10 s of the restart, every queue and binding re-declared', async () => {
    const gen = conn.connectionGeneration;
    await restartBroker();
    const t0 = Date.now();
    await waitFor(
      'a call to succeed',
      async () => (await client.call(target, 'ping', {}, context(), '3.0', { timeout: 2 }).catch(() => null)) !== null,
      10_000,
      50,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(conn.connectionGeneration).toBeGreaterThan(gen);
    const names = new Set((await listQueues('/')).map((q) => q.name));
    for (const q of server.queueNames) expect(names.has(q), q).toBe(true);
    expect(names.has(client.replyQueueName as string)).toBe(true);
    const bindings = await listBindings('/');
    for (const spec of server.queueSpecs) {
      expect(
        bindings.some((b) => b.destination_name === spec.name && b.source_name === spec.exchange?.name && b.routing_key === spec.routingKey),
        `binding of ${spec.name}`,
      ).toBe(true);
    }
    // a fanout cast reaches the re-declared fanout queue too
    const before = calls;
    await client.fanoutCast(topic, 'ping', {}, context(), '3.0');
    await waitFor('fanout after restart', async () => calls > before, 5_000);
    const text = logs.read();
    expect(text).toMatch(/Lost the connection to AMQP server on 127\.0\.0\.1:5672/);
    expect(text).toMatch(/Connected to AMQP server on 127\.0\.0\.1:5672 \(vhost \/\)/);
    expect(text).not.toMatch(/guest:guest/);
  });

  it('a call in flight during the restart still gets its reply', async () => {
    const pending = client.call(target, 'slow', { ms: 3000 }, context(), '3.0', { timeout: 45 });
    await waitFor('handler running', async () => server.inFlight === 1, 5_000);
    await restartBroker();
    expect(await pending).toBe('survived');
    // and the server goes on serving (a request published before the server re-declared its
    // queue is unroutable and lost, exactly as with oslo: hence short retried calls)
    await waitFor(
      'a call to succeed',
      async () => (await client.call(target, 'ping', {}, context(), '3.0', { timeout: 2 }).catch(() => null)) !== null,
      10_000,
      50,
    );
  });
});
