// Declared objects on the real broker, inspected with rabbitmqctl, as oslo_messaging/_drivers/impl_rabbit.py declares them.
import { afterAll, describe, expect, it } from 'vitest';
import { AmqpConnection } from '../../../src/rpc/connection.js';
import { RpcServer } from '../../../src/rpc/server.js';
import { RpcClient } from '../../../src/rpc/client.js';
import { targetsForVolumeService } from '../../../src/rpc/topology.js';
import { argsOf, BROKER, cleanup, listBindings, listExchanges, listQueues, rabbitmqctl, uniq, withRawChannel } from './helpers.js';

describe('RPC topology on RabbitMQ', () => {
  const conns: AmqpConnection[] = [];
  afterAll(async () => {
    await Promise.allSettled(conns.map((c) => c.close()));
  });

  it('volume service queues, bindings and exchanges as oslo declares them (defaults)', async () => {
    const topic = uniq('t-vol');
    const host = `${uniq('t')}@lvm`;
    const hostPart = host.split('@')[0] as string;
    const conn = new AmqpConnection(BROKER);
    conns.push(conn);
    const server = new RpcServer({
      connection: conn,
      targets: targetsForVolumeService({ host, topic, cluster: `${hostPart}c@lvm` }),
      endpoints: [{ version: '3.18', methods: {} }],
    });
    await server.start(10_000);
    const client = new RpcClient({ connection: conn });
    await client.call({ topic: `${topic}.${host}`, server: hostPart }, 'nothing', {}, {}, '3.0').catch(() => undefined);
    const replyQ = client.replyQueueName as string;
    try {
      const names = server.queueNames;
      const fanouts = names.filter((n) => n.includes('_fanout_'));
      expect(names.filter((n) => !n.includes('_fanout_')).sort()).toEqual(
        [topic, `${topic}.${host}`, `${topic}.${host}.${hostPart}`, `${topic}.${hostPart}c@lvm`, `${topic}.${hostPart}c@lvm.${hostPart}c`].sort(),
      );
      expect(fanouts.map((n) => n.replace(/_[0-9a-f]{32}$/, '')).sort()).toEqual(
        [`${topic}_fanout`, `${topic}.${host}_fanout`, `${topic}.${hostPart}c@lvm_fanout`].sort(),
      );
      const queues = await listQueues('/');
      const mine = new Map(queues.filter((q) => names.includes(q.name) || q.name === replyQ).map((q) => [q.name, q]));
      for (const n of names) {
        const q = mine.get(n);
        expect(q, n).toBeDefined();
        expect(q?.durable).toBe(false);
        expect(q?.auto_delete).toBe(false);
        expect(argsOf(q!)).toEqual(n.includes('_fanout_') ? { 'x-expires': 1800000 } : {});
      }
      expect(mine.get(replyQ)).toMatchObject({ durable: false, auto_delete: false });
      expect(argsOf(mine.get(replyQ)!)).toEqual({ 'x-expires': 1800000 });

      const bindings = await listBindings('/');
      const b = (q: string): string[] => bindings.filter((x) => x.destination_name === q && x.source_name !== '').map((x) => `${x.source_name}:${x.routing_key}`);
      expect(b(topic)).toEqual([`openstack:${topic}`]);
      expect(b(`${topic}.${host}`)).toEqual([`openstack:${topic}.${host}`]);
      expect(b(`${topic}.${host}.${hostPart}`)).toEqual([`openstack:${topic}.${host}.${hostPart}`]);
      const fan = fanouts.find((n) => n.startsWith(`${topic}_fanout_`)) as string;
      expect(b(fan)).toEqual([`${topic}_fanout:${topic}`]);
      expect(b(replyQ)).toEqual([]); // default exchange only

      const exchanges = await listExchanges('/');
      expect(exchanges.find((e) => e.name === 'openstack')).toEqual({ name: 'openstack', type: 'topic', durable: false, auto_delete: false });
      expect(exchanges.find((e) => e.name === `${topic}_fanout`)).toEqual({ name: `${topic}_fanout`, type: 'fanout', durable: false, auto_delete: true });
    } finally {
      await client.close();
      await server.stop(5_000);
      // stop() deletes the fanout queues as oslo's Connection.close does
      const left = (await listQueues('/')).map((q) => q.name);
      expect(left.filter((n) => n.includes(`${topic}`) && n.includes('_fanout_'))).toEqual([]);
      await cleanup(server.queueNames, server.queueSpecs.filter((q) => q.kind === 'fanout').map((q) => q.exchange!.name));
    }
  });

  it.each([
    ['rabbit_ha_queues', { 'x-ha-policy': 'all' }, false],
    ['rabbit_quorum_queue', { 'x-queue-type': 'quorum' }, true],
  ] as const)('%s variant (own vhost)', async (option, topicArgs, durable) => {
    const vhost = uniq('t-vhost');
    await rabbitmqctl('add_vhost', vhost);
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    const conn = new AmqpConnection(`rabbit://guest:guest@127.0.0.1:5672/${vhost}?${option}=true`);
    conns.push(conn);
    try {
      const topic = uniq('t-vol');
      const server = new RpcServer({ connection: conn, targets: [{ topic, server: 'h1' }], endpoints: [{ version: '1.0', methods: { ping: () => 'pong' } }] });
      await server.start(10_000);
      const client = new RpcClient({ connection: conn });
      expect(await client.call({ topic, server: 'h1' }, 'ping', {}, {}, '1.0', { timeout: 10 })).toBe('pong');
      const queues = new Map((await listQueues(vhost)).map((q) => [q.name, q]));
      expect(queues.get(topic)?.durable).toBe(durable);
      expect(argsOf(queues.get(topic)!)).toEqual(topicArgs);
      expect(argsOf(queues.get(`${topic}.h1`)!)).toEqual(topicArgs);
      const fan = server.queueNames.find((n) => n.includes('_fanout_')) as string;
      // fanout and reply queues never become quorum; ha applies to them too
      const transient = option === 'rabbit_ha_queues' ? { 'x-ha-policy': 'all', 'x-expires': 1800000 } : { 'x-expires': 1800000 };
      expect(queues.get(fan)?.durable).toBe(false);
      expect(argsOf(queues.get(fan)!)).toEqual(transient);
      expect(argsOf(queues.get(client.replyQueueName as string)!)).toEqual(transient);
      const ex = (await listExchanges(vhost)).find((e) => e.name === 'openstack');
      expect(ex).toEqual({ name: 'openstack', type: 'topic', durable, auto_delete: false });
      // a consumer declaring the same queue with other arguments is refused (406)
      await withRawChannel(async (ch) => {
        await expect(ch.assertQueue(topic, { durable: !durable, arguments: {} })).rejects.toThrow(/PRECONDITION_FAILED|406/);
      }, vhost);
      await client.close();
      await server.stop(5_000);
    } finally {
      await conn.close();
      await rabbitmqctl('delete_vhost', vhost);
    }
  });
});
