// The events client against a local HTTP sink standing in for nova: what goes on the wire, how
// the answer is read, and that nova down or refusing is `false` (never a throw), token unlogged.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { NovaEventsClient } from '../../../src/nova/nova-events-client.js';
import type { NovaAccess } from '../../../src/nova/nova-access.js';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

describe('NovaEventsClient', () => {
  let server: Server;
  let port = 0;
  let dir = '';
  const seen: Seen[] = [];
  let answer: { status: number; body: unknown } = { status: 207, body: null };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-nova-unit-'));
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) });
        res.writeHead(answer.status, { 'Content-Type': 'application/json' });
        res.end(answer.body === null ? '' : JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const access = (p = port): NovaAccess => ({
    usable: true,
    authType: 'admin_token',
    endpoint: `http://127.0.0.1:${p}/v2.1`,
    token: 'admin:s3cret',
    timeoutMs: 2000,
    tls: { caFile: null, certFile: null, keyFile: null, insecure: false },
  });

  it('posts volume-extended at 2.51 with the token and request id; a per-event 404 in a 207 is delivered', async () => {
    const logFile = join(dir, 'a.log');
    const client = new NovaEventsClient(access(), createLogger({ destination: logFile, level: 'debug', pretty: false }));
    answer = { status: 207, body: { events: [{ name: 'volume-extended', server_uuid: 's1', tag: 'v1', status: 'failed', code: 404 }] } };
    expect(await client.volumeExtended({ request_id: 'req-1', global_request_id: 'req-g' }, ['s1'], 'v1')).toBe(true);
    const s = seen.at(-1)!;
    expect(s.url).toBe('/v2.1/os-server-external-events');
    expect(s.headers['x-openstack-nova-api-version']).toBe('2.51');
    expect(s.headers['openstack-api-version']).toBe('compute 2.51');
    expect(s.headers['x-auth-token']).toBe('admin:s3cret');
    expect(s.headers['x-openstack-request-id']).toBe('req-g');
    expect(s.body).toEqual({ events: [{ name: 'volume-extended', server_uuid: 's1', tag: 'v1' }] });
    await new Promise((r) => setTimeout(r, 200));
    const logged = await readFile(logFile, 'utf8').catch(() => '');
    expect(logged).toMatch(/failed status/);
    expect(logged).not.toContain('s3cret');
  });

  it('volume-reimaged at 2.93', async () => {
    const client = new NovaEventsClient(access(), createLogger({ destination: join(dir, 'b.log'), pretty: false }));
    answer = { status: 200, body: { events: [{ name: 'volume-reimaged', server_uuid: 's', tag: 'v', code: 200 }] } };
    expect(await client.volumeReimaged({}, ['s'], 'v')).toBe(true);
    expect(seen.at(-1)!.headers['x-openstack-nova-api-version']).toBe('2.93');
  });

  it('refusing (403, 400) or down is false, never a throw', async () => {
    const client = new NovaEventsClient(access(), createLogger({ destination: join(dir, 'c.log'), pretty: false }));
    for (const status of [403, 400, 404]) {
      answer = { status, body: { forbidden: { code: status } } };
      expect(await client.volumeExtended({}, ['s'], 'v')).toBe(false);
    }
    const down = new NovaEventsClient(access(1), createLogger({ destination: join(dir, 'd.log'), pretty: false }));
    expect(await down.volumeExtended({}, ['s'], 'v')).toBe(false);
    const unconfigured = new NovaEventsClient({ usable: false, reason: 'no auth_type' }, createLogger({ destination: join(dir, 'e.log'), pretty: false }));
    expect(await unconfigured.volumeExtended({}, ['s'], 'v')).toBe(false);
  });
});
