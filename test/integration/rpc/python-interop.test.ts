// Interoperability with the real thing: Debian's oslo.messaging + cinder (python3.11, /usr/bin/python3)
// over the real broker. (1) cinder's RPC client stack calls our server; (2) our client calls a
// real oslo.messaging server.
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpConnection } from '../../../src/rpc/connection.js';
import { RpcServer } from '../../../src/rpc/server.js';
import { RemoteError, RpcClient, SchedulerRpcClient } from '../../../src/rpc/client.js';
import { VersionedObject } from '../../../src/rpc/ovo.js';
import { invalidInput } from '../../../src/errors.js';
import { BROKER, captureLogs, cleanup, context, sleep, uniq, waitFor } from './helpers.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const PY = '/usr/bin/python3';
const logs = captureLogs();

describe('cinder python client → our server', () => {
  const topic = uniq('t-py');
  const host = 'pyhost';
  let conn: AmqpConnection;
  let server: RpcServer;
  const notes: string[] = [];
  const seenVolumes: VersionedObject[] = [];

  beforeAll(async () => {
    conn = new AmqpConnection(BROKER);
    server = new RpcServer({
      connection: conn,
      targets: [{ topic, server: host }],
      endpoints: [
        {
          version: '3.18',
          methods: {
            initialize_connection: (_ctx, args) => {
              const vol = args.volume as VersionedObject;
              seenVolumes.push(vol);
              const connector = args.connector as Record<string, unknown>;
              if (!connector.initiator) throw invalidInput("Connector doesn't have required information: initiator");
              return {
                driver_volume_type: 'iscsi',
                data: { target_discovered: false, target_portal: '127.0.0.1:3260', target_lun: 1, volume_id: vol.get('id'), access_mode: 'rw' },
              };
            },
            slow: async (_ctx, args) => {
              await sleep(Number(args.ms));
              return 'done-slow';
            },
            note: (_ctx, args) => {
              notes.push(String(args.v));
            },
          },
        },
      ],
    });
    await server.start(10_000);
  });

  afterAll(async () => {
    await server?.stop(5_000);
    await cleanup(server?.queueNames ?? [], [`${topic}_fanout`]);
    await conn?.close();
    logs.restore();
  });

  it('calls, failures, version errors, call-monitor and casts all behave as with cinder-volume', async () => {
    const { stdout } = await run(PY, [path.join(here, 'py', 'cinder_client.py'), BROKER, topic, host], { timeout: 90_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    expect(out.initialize_connection).toEqual({
      driver_volume_type: 'iscsi',
      data: { target_discovered: false, target_portal: '127.0.0.1:3260', target_lun: 1, volume_id: '2c1076de-91eb-42f7-916f-04100b105d61', access_mode: 'rw' },
    });
    // the Volume arrived as a versioned object
    expect(seenVolumes[0]).toBeInstanceOf(VersionedObject);
    expect(seenVolumes[0]?.name).toBe('Volume');
    expect(seenVolumes[0]?.get('host')).toBe('storage1@lvm#lvm');
    // the failure is rebuilt as cinder.exception.InvalidInput by oslo
    expect(out.failure).toEqual({
      type: 'InvalidInput_Remote',
      module: 'cinder.exception_Remote',
      is_invalid_input: true,
      kwargs: { reason: "Connector doesn't have required information: initiator", code: 400 },
      code: 400,
      first_line: "Invalid input received: Connector doesn't have required information: initiator",
    });
    expect(out.no_such_method).toEqual({ exc_type: 'NoSuchMethod', value: 'Endpoint does not support RPC method no_such_method' });
    for (const v of ['4.0', '3.19']) {
      expect(out[`unsupported_version_${v}`]).toEqual({
        exc_type: 'UnsupportedVersion',
        value: `Endpoint does not support RPC version ${v}. Attempted method: initialize_connection`,
      });
    }
    expect(out.call_monitor).toBe('done-slow');
    await waitFor('casts', async () => notes.includes('py-cast') && notes.includes('py-fanout'));
    // the request context of cinder's client reached the log scope; its auth_token did not reach the log
    await waitFor('log', async () => logs.read().includes('req-00000000-1111-2222-3333-444444444444'));
    expect(logs.read()).not.toContain('SECRET-TOKEN-4242');
  });
});

describe('our client → real oslo.messaging server', () => {
  it('casts, fanout casts and calls (result, failure, call-monitor) are understood by oslo', async () => {
    const topic = uniq('t-pysrv');
    const child = spawn(PY, [path.join(here, 'py', 'oslo_server.py'), BROKER, topic, 'srv1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const conn = new AmqpConnection(BROKER);
    const client = new RpcClient({ connection: conn });
    try {
      await waitFor('python server ready', async () => stdout.includes('READY'), 30_000).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${stderr}`);
      });
      const ctx = context();
      const sched = new SchedulerRpcClient(client, topic);
      const report = { host: 'storage1@lvm', clusterName: null, capabilities: { volume_backend_name: 'lvm', pools: [{ pool_name: 'lvm' }] }, timestamp: '2026-11-23T19:28:04.787697' };
      await sched.updateServiceCapabilities(ctx, report);
      await sched.notifyServiceCapabilities(ctx, report);
      const target = { topic, server: 'srv1' };
      expect(await client.call(target, 'add', { a: 2, b: 3 }, ctx, '3.0')).toEqual({ sum: 5, float: 1 });
      const err = (await client.call(target, 'boom', {}, ctx, '3.0').catch((e: unknown) => e)) as RemoteError;
      expect(err).toBeInstanceOf(RemoteError);
      expect(err.className).toBe('InvalidInput');
      expect(err.module).toBe('cinder.exception');
      expect(err.kwargs).toEqual({ reason: 'python says no', code: 400 });
      // oslo's server sends call-monitor heartbeats; our 2 s monitor survives a 3.5 s method
      expect(await client.call(target, 'slow', { seconds: 3.5 }, ctx, '3.0', { timeout: 30, callMonitorTimeout: 2 })).toBe('slept');
      await client.cast(target, 'done', {}, ctx, '3.0');
      expect(await exited).toBe(0);
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { kind: string; request_id: string; args: Record<string, unknown> });
      const upd = lines.find((l) => l.kind === 'update_service_capabilities');
      const ntf = lines.find((l) => l.kind === 'notify_service_capabilities');
      expect(upd).toEqual({
        kind: 'update_service_capabilities',
        request_id: ctx.request_id,
        args: { service_name: 'volume', host: 'storage1@lvm', capabilities: report.capabilities, cluster_name: null, timestamp: report.timestamp },
      });
      expect(ntf?.args).toEqual({ service_name: 'volume', backend: 'storage1@lvm', capabilities: report.capabilities, timestamp: report.timestamp });
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
      await client.close();
      await cleanup([topic, `${topic}.srv1`], [`${topic}_fanout`]);
      await conn.close();
    }
  });
});
