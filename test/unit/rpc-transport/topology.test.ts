import { describe, expect, it } from 'vitest';
import {
  fanoutQueue,
  listenQueues,
  replyQueue,
  routingKeyFor,
  targetsForVolumeService,
  topicExchange,
  topologyOptions,
} from '../../../src/rpc/topology.js';

describe('topology (impl_rabbit.py declare_*_consumer)', () => {
  it('volume service targets mirror cinder/service.py start()', () => {
    expect(targetsForVolumeService({ host: 'storage1@lvm' })).toEqual([
      { topic: 'cinder-volume', server: 'storage1@lvm' },
      { topic: 'cinder-volume.storage1@lvm', server: 'storage1' },
    ]);
    expect(targetsForVolumeService({ host: 'storage1@lvm', cluster: 'mycluster@lvm' })[2]).toEqual({
      topic: 'cinder-volume.mycluster@lvm',
      server: 'mycluster',
    });
    expect(routingKeyFor({ topic: 'cinder-volume.storage1@lvm', server: 'storage1' })).toBe('cinder-volume.storage1@lvm.storage1');
    expect(routingKeyFor({ topic: 'cinder-scheduler' })).toBe('cinder-scheduler');
  });

  it('default queues and exchanges', () => {
    const o = topologyOptions();
    const qs = listenQueues(o, { topic: 'cinder-volume', server: 'storage1@lvm' }, 'abc');
    expect(qs.map((q) => [q.name, q.durable, q.autoDelete, q.arguments, q.exchange?.name, q.exchange?.type, q.routingKey])).toEqual([
      ['cinder-volume', false, false, {}, 'openstack', 'topic', 'cinder-volume'],
      ['cinder-volume.storage1@lvm', false, false, {}, 'openstack', 'topic', 'cinder-volume.storage1@lvm'],
      ['cinder-volume_fanout_abc', false, false, { 'x-expires': 1800000 }, 'cinder-volume_fanout', 'fanout', 'cinder-volume'],
    ]);
    expect(topicExchange(o)).toEqual({ name: 'openstack', type: 'topic', durable: false, autoDelete: false });
    expect(qs[2]?.exchange).toEqual({ name: 'cinder-volume_fanout', type: 'fanout', durable: false, autoDelete: true });
    const r = replyQueue(o);
    expect(r.name).toMatch(/^reply_[0-9a-f]{32}$/);
    expect(r).toMatchObject({ durable: false, autoDelete: false, arguments: { 'x-expires': 1800000 }, exchange: null });
  });

  it('amqp_durable_queues / amqp_auto_delete apply to topic queues and exchange only', () => {
    const o = topologyOptions({ amqp_durable_queues: true, amqp_auto_delete: true });
    const [t, , f] = listenQueues(o, { topic: 'x', server: 's' }, 'u');
    expect(t).toMatchObject({ durable: true, autoDelete: true, exchange: { durable: true, autoDelete: true } });
    expect(f).toMatchObject({ durable: false, autoDelete: false, exchange: { durable: false, autoDelete: true } });
  });

  it('ha adds x-ha-policy everywhere; quorum only on topic queues, and makes them durable', () => {
    const ha = topologyOptions({ rabbit_ha_queues: true });
    const qs = listenQueues(ha, { topic: 'x', server: 's' }, 'u');
    expect(qs.map((q) => q.arguments)).toEqual([
      { 'x-ha-policy': 'all' },
      { 'x-ha-policy': 'all' },
      { 'x-ha-policy': 'all', 'x-expires': 1800000 },
    ]);
    expect(replyQueue(ha).arguments).toEqual({ 'x-ha-policy': 'all', 'x-expires': 1800000 });
    const qq = topologyOptions({ rabbit_quorum_queue: true, rabbit_quorum_delivery_limit: 5, rabbit_transient_queues_ttl: 60 });
    const [t, s, f] = listenQueues(qq, { topic: 'x', server: 's' }, 'u');
    expect(t).toMatchObject({ durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 } });
    expect(s).toMatchObject({ durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 } });
    expect(f).toMatchObject({ durable: false, arguments: { 'x-expires': 60000 } });
    expect(fanoutQueue(qq, 'x', 'u').arguments).not.toHaveProperty('x-queue-type');
    expect(replyQueue(qq).arguments).toEqual({ 'x-expires': 60000 });
    expect(topicExchange(qq).durable).toBe(true);
  });
});
