// Calls, casts and fanout casts through the real broker, and the server's oslo semantics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumeMessage } from 'amqplib';
import amqp from 'amqplib';
import { AmqpConnection } from '../../../src/rpc/connection.js';
import { RpcServer } from '../../../src/rpc/server.js';
import { MessagingTimeout, RemoteError, RpcClient, SchedulerRpcClient } from '../../../src/rpc/client.js';
import { buildRequest, encodeEnvelope, decodeEnvelope } from '../../../src/rpc/envelope.js';
import { CinderError, invalidInput } from '../../../src/errors.js';
import { log, currentRequestScope } from '../../../src/log.js';
import type { RpcEndpoint } from '../../../src/rpc/dispatcher.js';
import { AMQP_URL, BROKER, captureLogs, cleanup, context, sleep, uniq, waitFor } from './helpers.js';

const logs = captureLogs();

describe('RPC round trips on RabbitMQ', () => {
  const topic = uniq('t-rt');
  const host = 'h1';
  const target = { topic, server: host };
  const casts: Array<{ method: string; args: Record<string, unknown>; ctx: Record<string, unknown> }> = [];
  const fanoutSeen: string[] = [];
  let slowStarts: number[] = [];
  let slowEnds: number[] = [];
  const endpoint: RpcEndpoint = {
    version: '3.18',
    methods: {
      echo: (_ctx, args) => ({ got: args, n: 1.5 }),
      whoami: () => ({ scope: currentRequestScope() ?? null }),
      note: (ctx, args) => {
        casts.push({ method: 'note', args, ctx });
        log().info({ probe: 'inside-handler' }, 'handler log line');
      },
      fanned: (_ctx, args) => {
        fanoutSeen.push(String(args.who));
      },
      fail: () => {
        throw invalidInput('bad connector');
      },
      failBuiltin: () => {
        throw new TypeError('plain js error');
      },
      failCast: () => {
        throw new CinderError('cast failure', { className: 'VolumeBackendAPIException', kwargs: { data: 'x' } });
      },
      slow: async (_ctx, args) => {
        slowStarts.push(Date.now());
        await sleep(Number(args.ms));
        slowEnds.push(Date.now());
        return args.id;
      },
      unserializable: () => new Map([[1, 2]]),
    },
  };

  let conn: AmqpConnection;
  let server: RpcServer;
  let server2: RpcServer;
  let client: RpcClient;
  const extraQueues: string[] = [];

  beforeAll(async () => {
    conn = new AmqpConnection(BROKER);
    server = new RpcServer({ connection: conn, targets: [target], endpoints: [endpoint], maxInFlight: 2, replyRetryTimeoutMs: 1500 });
    await server.start(10_000);
    // a second server on the same topic, other host: gets fanouts and shares the topic queue
    server2 = new RpcServer({ connection: conn, targets: [{ topic, server: 'h2' }], endpoints: [endpoint] });
    await server2.start(10_000);
    client = new RpcClient({ connection: conn });
  });

  afterAll(async () => {
    await client?.close();
    await server?.stop(5_000);
    await server2?.stop(5_000);
    await cleanup([...(server?.queueNames ?? []), ...(server2?.queueNames ?? []), ...extraQueues], [`${topic}_fanout`]);
    await conn?.close();
    logs.restore();
  });

  it('call returns the handler result; args and context arrive', async () => {
    const r = await client.call(target, 'echo', { a: 1, b: [true, null, 'x'] }, context(), '3.0');
    expect(r).toEqual({ got: { a: 1, b: [true, null, 'x'] }, n: 1.5 });
  });

  it('every dispatch runs inside the request scope of its context', async () => {
    const ctx = context();
    const r = (await client.call(target, 'whoami', {}, ctx, '3.0')) as { scope: Record<string, unknown> };
    expect(r.scope).toEqual({ request_id: ctx.request_id, global_request_id: ctx.global_request_id });
    // one line at start and one at end of dispatch, both carrying the ids
    await waitFor('end log line', async () =>
      logs.lines().some((l) => l.request_id === ctx.request_id && /RPC call whoami finished/.test(String(l.msg))),
    );
    const mine = logs.lines().filter((l) => l.request_id === ctx.request_id);
    expect(mine.map((l) => l.msg)).toEqual(expect.arrayContaining([expect.stringMatching(/RPC call whoami started/), expect.stringMatching(/RPC call whoami finished in \d+ ms: ok/)]));
    const end = mine.find((l) => /finished/.test(String(l.msg)));
    expect(end).toMatchObject({ method: 'whoami', outcome: 'ok', global_request_id: ctx.global_request_id });
    expect(typeof end?.duration_ms).toBe('number');
  });

  it('cast reaches the handler; a log line inside carries request_id', async () => {
    const ctx = context();
    await client.cast(target, 'note', { v: 42 }, ctx, '3.0');
    await waitFor('cast', async () => casts.find((c) => c.args.v === 42));
    const c = casts.find((x) => x.args.v === 42);
    expect(c?.ctx.request_id).toBe(ctx.request_id);
    const line = await waitFor('handler line', async () => logs.lines().find((l) => l.probe === 'inside-handler' && l.request_id === ctx.request_id));
    expect(line.global_request_id).toBe(ctx.global_request_id);
  });

  it('fanout cast reaches every server of the topic', async () => {
    await client.fanoutCast(topic, 'fanned', { who: 'all' }, context(), '3.0');
    await waitFor('two fanout deliveries', async () => fanoutSeen.filter((w) => w === 'all').length === 2);
    await sleep(200);
    expect(fanoutSeen.filter((w) => w === 'all')).toHaveLength(2);
  });

  it('request and reply carry the measured properties; reply body is the oslo envelope', async () => {
    // Fake nothing: a tap queue bound with the server routing key sees a copy of the request, and
    // a raw caller with its own reply queue sees the reply as published.
    const raw = await amqp.connect(AMQP_URL);
    const ch = await raw.createChannel();
    const tap = uniq('t-tap');
    const rq = `reply_${uniq('t').replace('-', '')}`;
    extraQueues.push(tap, rq);
    await ch.assertQueue(tap, { durable: false, autoDelete: true });
    await ch.bindQueue(tap, 'openstack', `${topic}.${host}`);
    await ch.assertQueue(rq, { durable: false, arguments: { 'x-expires': 1800000 } });
    try {
      await client.call(target, 'echo', { k: 'v' }, context(), '3.0', { timeout: 30 });
      const req = await waitFor('tapped request', async () => ch.get(tap, { noAck: true }));
      expect(req.properties).toMatchObject({ contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {}, expiration: '30000' });
      const inner = decodeEnvelope(req.content);
      expect(Object.keys(inner).slice(0, 7)).toEqual(['method', 'args', 'version', '_msg_id', '_reply_q', '_timeout', '_unique_id']);
      expect(inner._timeout).toBeNull();
      expect(JSON.parse(req.content.toString())).toHaveProperty(['oslo.version'], '2.0');

      // raw call → look at the reply exactly as the broker delivers it
      const msgId = 'a'.repeat(32);
      const body = encodeEnvelope(buildRequest({ method: 'echo', args: { z: 1 }, version: '3.0', context: context(), call: { msgId, replyQueue: rq, timeout: null } }));
      ch.publish('openstack', `${topic}.${host}`, Buffer.from(body), { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {} });
      const reply = await waitFor('raw reply', async () => ch.get(rq, { noAck: true }));
      expect(reply.fields.exchange).toBe('');
      expect(reply.fields.routingKey).toBe(rq);
      expect(reply.properties).toMatchObject({ contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {} });
      expect(reply.properties.expiration).toBeUndefined();
      const text = reply.content.toString();
      expect(text.startsWith('{"oslo.version": "2.0", "oslo.message": "{\\"result\\": {\\"got\\": {\\"z\\": 1}, \\"n\\": 1.5}, \\"failure\\": null, \\"ending\\": true, \\"_msg_id\\": \\"aaaa')).toBe(true);
      const ri = decodeEnvelope(reply.content);
      expect(Object.keys(ri)).toEqual(['result', 'failure', 'ending', '_msg_id', '_unique_id']);
    } finally {
      await raw.close();
    }
  });

  it('a duplicate _unique_id is dropped', async () => {
    const raw = await amqp.connect(AMQP_URL);
    const ch = await raw.createChannel();
    try {
      const body = encodeEnvelope(buildRequest({ method: 'note', args: { dup: 'once' }, version: '3.0', context: context() }));
      const props = { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {} };
      ch.publish('openstack', `${topic}.${host}`, Buffer.from(body), props);
      ch.publish('openstack', `${topic}.${host}`, Buffer.from(body), props);
      await waitFor('first copy', async () => casts.some((c) => c.args.dup === 'once'));
      await sleep(500);
      expect(casts.filter((c) => c.args.dup === 'once')).toHaveLength(1);
      await waitFor('duplicate logged', async () => logs.lines().some((l) => /ignoring duplicate message/.test(String(l.msg))));
    } finally {
      await raw.close();
    }
  });

  it('unknown method → NoSuchMethod failure', async () => {
    const err = (await client.call(target, 'nope', {}, context(), '3.0').catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.className).toBe('NoSuchMethod');
    expect(err.module).toBe('oslo_messaging.rpc.dispatcher');
    expect(err.remoteMessage).toBe('Endpoint does not support RPC method nope');
  });

  it('wrong major or too high minor → UnsupportedVersion failure', async () => {
    for (const v of ['4.0', '3.19', '2.0']) {
      const err = (await client.call(target, 'echo', {}, context(), v).catch((e: unknown) => e)) as RemoteError;
      expect(err).toBeInstanceOf(RemoteError);
      expect(err.className).toBe('UnsupportedVersion');
      expect(err.module).toBe('oslo_messaging.rpc.dispatcher');
      expect(err.remoteMessage).toBe(`Endpoint does not support RPC version ${v}. Attempted method: echo`);
    }
    expect(await client.call(target, 'echo', {}, context(), '3.18')).toBeTruthy();
  });

  it('a CinderError becomes a failure reply with class, module and kwargs', async () => {
    const err = (await client.call(target, 'fail', {}, context(), '3.0').catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.className).toBe('InvalidInput');
    expect(err.module).toBe('cinder.exception');
    // cinder's CinderException puts its class's code in kwargs (InvalidInput: 400), and so does the catalog
    expect(err.kwargs).toEqual({ reason: 'bad connector', code: 400 });
    expect(err.remoteMessage).toBe('Invalid input received: bad connector');
    expect(err.args).toEqual(['Invalid input received: bad connector']);
    expect(err.tb.length).toBeGreaterThan(0);
    const plain = (await client.call(target, 'failBuiltin', {}, context(), '3.0').catch((e: unknown) => e)) as RemoteError;
    expect(plain.module).toBe('builtins');
    // a result that cannot be serialized is a failure too, not a hung caller
    const ser = await client.call(target, 'unserializable', {}, context(), '3.0').catch((e: unknown) => e);
    expect(ser).toBeInstanceOf(RemoteError);
  });

  it('call-monitor: with _timeout set the server sends ending:false heartbeats every _timeout/2 s', async () => {
    const raw = await amqp.connect(AMQP_URL);
    const ch = await raw.createChannel();
    const rq = `reply_${uniq('t').replace('-', '')}`;
    extraQueues.push(rq);
    await ch.assertQueue(rq, { durable: false, arguments: { 'x-expires': 1800000 } });
    const got: Array<{ t: number; inner: Record<string, unknown> }> = [];
    await ch.consume(rq, (m: ConsumeMessage | null) => {
      if (m) got.push({ t: Date.now(), inner: decodeEnvelope(m.content) });
    }, { noAck: true });
    try {
      const msgId = 'b'.repeat(32);
      const t0 = Date.now();
      const body = encodeEnvelope(buildRequest({ method: 'slow', args: { ms: 3300, id: 'cm' }, version: '3.0', context: context(), call: { msgId, replyQueue: rq, timeout: 2 } }));
      ch.publish('openstack', `${topic}.${host}`, Buffer.from(body), { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {} });
      await waitFor('final reply', async () => got.some((g) => g.inner.ending === true), 10_000);
      const beats = got.filter((g) => g.inner.ending === false);
      expect(beats.length).toBeGreaterThanOrEqual(3);
      for (const b of beats) expect(b.inner).toMatchObject({ result: null, failure: null, ending: false, _msg_id: msgId });
      expect((beats[0] as { t: number }).t - t0).toBeGreaterThanOrEqual(900);
      const final = got.find((g) => g.inner.ending === true);
      expect(final?.inner.result).toBe('cm');
      expect(got.indexOf(final!)).toBe(got.length - 1);
    } finally {
      await raw.close();
    }
    // our client: the call-monitor timer (2 s) is renewed by the heartbeats, the handler takes 3.3 s
    expect(await client.call(target, 'slow', { ms: 3300, id: 'cm2' }, context(), '3.0', { timeout: 20, callMonitorTimeout: 2 })).toBe('cm2');
  });

  it('our client times out with MessagingTimeout', async () => {
    const err = await client.call({ topic: uniq('t-nobody'), server: 'x' }, 'echo', {}, context(), '3.0', { timeout: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessagingTimeout);
  });

  it('the in-flight bound holds: with maxInFlight 2 the third call starts only after one finished', async () => {
    slowStarts = [];
    slowEnds = [];
    // server2 shares the topic queue: address server (h1) directly
    const results = await Promise.all([0, 1, 2].map((i) => client.call(target, 'slow', { ms: 1000, id: i }, context(), '3.0', { timeout: 20 })));
    expect(results).toEqual([0, 1, 2]);
    const starts = [...slowStarts].sort((a, b) => a - b);
    const firstEnd = Math.min(...slowEnds);
    expect(starts[1]! - starts[0]!).toBeLessThan(500);
    expect(starts[2]!).toBeGreaterThanOrEqual(firstEnd - 5);
  });

  it('malformed envelope, missing args, unknown cast method: logged, dropped, server still serving', async () => {
    const raw = await amqp.connect(AMQP_URL);
    const ch = await raw.createChannel();
    const props = { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {} };
    const rk = `${topic}.${host}`;
    try {
      ch.publish('openstack', rk, Buffer.from('this is not json SECRET-TOKEN-4242'), props);
      ch.publish('openstack', rk, Buffer.from('{"oslo.version": "2.0", "oslo.message": "{\\"_context_auth_token\\": \\"SECRET-TOKEN-4242\\", broken'), props);
      ch.publish('openstack', rk, Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify({ _context_auth_token: 'SECRET-TOKEN-4242', version: '3.0' }) })), props);
      ch.publish('openstack', rk, Buffer.from(JSON.stringify({ 'oslo.version': '9.0', 'oslo.message': '{}' })), props);
      // missing args on a cast: oslo dispatches with no arguments
      ch.publish('openstack', rk, Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify({ method: 'note', version: '3.0', _unique_id: 'c'.repeat(32), _context_auth_token: 'SECRET-TOKEN-4242' }) })), props);
      await client.cast(target, 'no_such_cast', {}, context(), '3.0');
      await client.cast(target, 'failCast', {}, context(), '3.0');
      await waitFor('argless cast', async () => casts.some((c) => Object.keys(c.args).length === 0));
      expect(await client.call(target, 'echo', { still: 'alive' }, context(), '3.0')).toEqual({ got: { still: 'alive' }, n: 1.5 });
      await waitFor('logs', async () => {
        const text = logs.read();
        return /Dropping malformed RPC message/.test(text) && /Dropping malformed RPC request/.test(text) && /no_such_cast failed/.test(text) && /failCast failed/.test(text);
      });
      const text = logs.read();
      expect(text).toMatch(/cast dropped/);
      expect(text).not.toContain('SECRET-TOKEN-4242');
    } finally {
      await raw.close();
    }
  });

  it('a reply to a missing reply queue is retried, then dropped with an error; serving goes on', async () => {
    const raw = await amqp.connect(AMQP_URL);
    const ch = await raw.createChannel();
    try {
      const body = encodeEnvelope(
        buildRequest({ method: 'echo', args: {}, version: '3.0', context: context(), call: { msgId: 'd'.repeat(32), replyQueue: 'reply_doesnotexist0000000000000000', timeout: null } }),
      );
      ch.publish('openstack', `${topic}.${host}`, Buffer.from(body), { contentType: 'application/json', deliveryMode: 2 });
      // server configured with replyRetryTimeoutMs 1500 (oslo: 60 s)
      await waitFor("abandon log", async () => /failed to send after 2 seconds due to a missing queue \(reply_doesnotexist/.test(logs.read()), 8_000);
      expect(await client.call(target, 'echo', { x: 1 }, context(), '3.0')).toBeTruthy();
    } finally {
      await raw.close();
    }
  });

  it('scheduler capability messages have the fixture shape', async () => {
    // our own "scheduler" topic, consumed raw
    const sched = uniq('t-sched');
    const raw = await amqp.connect(AMQP_URL);
    const ch = await raw.createChannel();
    const fq = uniq('t-schedfan');
    extraQueues.push(sched, fq);
    try {
      await ch.assertQueue(sched, { durable: false });
      await ch.bindQueue(sched, 'openstack', sched);
      await ch.assertExchange(`${sched}_fanout`, 'fanout', { durable: false, autoDelete: true });
      await ch.assertQueue(fq, { durable: false, arguments: { 'x-expires': 1800000 } });
      await ch.bindQueue(fq, `${sched}_fanout`, sched);
      const sc = new SchedulerRpcClient(client, sched);
      const report = { host: 'storage1@lvm', clusterName: null, capabilities: { volume_backend_name: 'lvm', pools: [] }, timestamp: '2026-11-23T19:28:04.787697' };
      const ctx = context();
      await sc.updateServiceCapabilities(ctx, report);
      await sc.notifyServiceCapabilities(ctx, report);
      const f = await waitFor('fanout', async () => ch.get(fq, { noAck: true }));
      const n = await waitFor('notify', async () => ch.get(sched, { noAck: true }));
      expect(f.fields.exchange).toBe(`${sched}_fanout`);
      expect(f.fields.routingKey).toBe('');
      expect(n.fields).toMatchObject({ exchange: 'openstack', routingKey: sched });
      for (const m of [f, n]) {
        expect(m.properties).toMatchObject({ contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {} });
        expect(m.properties.expiration).toBeUndefined();
      }
      const fi = decodeEnvelope(f.content);
      const ni = decodeEnvelope(n.content);
      expect(Object.keys(fi).slice(0, 4)).toEqual(['method', 'args', 'version', '_unique_id']);
      expect(fi).toMatchObject({ method: 'update_service_capabilities', version: '3.3' });
      expect(Object.keys(fi.args as object)).toEqual(['service_name', 'host', 'capabilities', 'cluster_name', 'timestamp']);
      expect(ni).toMatchObject({ method: 'notify_service_capabilities', version: '3.5' });
      expect(Object.keys(ni.args as object)).toEqual(['service_name', 'backend', 'capabilities', 'timestamp']);
      expect(fi._context_request_id).toBe(ctx.request_id);
    } finally {
      await cleanup([], [`${sched}_fanout`]);
      await raw.close();
    }
  });

  it('stop() waits for running handlers and their replies', async () => {
    const topic2 = uniq('t-stop');
    const s = new RpcServer({ connection: conn, targets: [{ topic: topic2, server: 'x' }], endpoints: [endpoint] });
    await s.start(10_000);
    const pending = client.call({ topic: topic2, server: 'x' }, 'slow', { ms: 1500, id: 'late' }, context(), '3.0', { timeout: 20 });
    await waitFor('handler running', async () => s.inFlight === 1);
    const t0 = Date.now();
    await s.stop(10_000);
    expect(Date.now() - t0).toBeGreaterThan(1000);
    expect(await pending).toBe('late');
    await cleanup(s.queueNames, [`${topic2}_fanout`]);
  });
});
