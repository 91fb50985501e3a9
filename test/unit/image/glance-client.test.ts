// The Glance client against a small HTTP server that answers as glance-api does, or fails the way
// glance-api can (503, refusals, a body cut short, bytes that do not match the recorded hash).
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directFilePath } from '../../../src/image/direct-url.js';
import { GlanceClient } from '../../../src/image/glance-client.js';
import type { ImageMeta } from '../../../src/image/image-meta.js';
import { volumeImageMetadata } from '../../../src/image/image-meta.js';

const ID = '4f1c5b5e-7d0c-4a54-9f56-2b0f6d1e8a11';
const SCHEMA = { properties: { id: {}, name: {}, status: {}, disk_format: {}, size: {}, checksum: {}, os_hash_algo: {}, os_hash_value: {}, min_disk: {}, min_ram: {}, container_format: {}, os_distro: { is_base: false } } };

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
const servers: http.Server[] = [];
afterEach(async () => {
  // a test may leave a download waiting on purpose: its connection is dropped, not waited for
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.close(r), s.closeAllConnections()))));
});

async function serve(handler: Handler): Promise<{ url: string; seen: http.IncomingHttpHeaders[] }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/v2/schemas/image') return void res.end(JSON.stringify(SCHEMA));
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const client = (url: string, numRetries = 0) => new GlanceClient({ apiServers: [url], numRetries, requestTimeoutSec: 5, logger: pino({ level: 'silent' }), retryDelayMs: 10 });
const image = (data: Buffer, over: Partial<ImageMeta> = {}): ImageMeta => ({
  id: ID, name: 'x', status: 'active', disk_format: 'raw', container_format: 'bare', size: data.length, virtual_size: null,
  checksum: createHash('md5').update(data).digest('hex'), os_hash_algo: 'sha512', os_hash_value: createHash('sha512').update(data).digest('hex'),
  owner: null, min_disk: 0, min_ram: 0, updated_at: null, properties: {}, ...over,
});
async function drain(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe('GlanceClient', () => {
  it('shows an image split as cinder splits it, with the token and request id it was given', async () => {
    const { url, seen } = await serve((_req, res) => res.end(JSON.stringify({ id: ID, name: 'deb', status: 'active', disk_format: 'raw', size: 5, min_disk: 0, min_ram: 0, os_distro: 'debian', container_format: 'bare', checksum: 'c' })));
    const img = await client(url).show({ requestId: 'req-1', authToken: 'secret-token' }, ID);
    expect(img).toMatchObject({ id: ID, name: 'deb', size: 5, properties: { os_distro: 'debian' } });
    expect(volumeImageMetadata(img)).toEqual({ os_distro: 'debian', image_id: ID, image_name: 'deb', checksum: 'c', container_format: 'bare', disk_format: 'raw', min_disk: 0, min_ram: 0, size: 5 });
    expect(seen.at(-1)).toMatchObject({ 'x-auth-token': 'secret-token', 'x-openstack-request-id': 'req-1' });
    await client(url).show({}, ID);
    expect(seen.at(-1)?.['x-auth-token']).toBeUndefined();
  });

  it("maps glance's refusals to cinder's exceptions", async () => {
    const codes = [404, 403, 400, 413];
    const { url } = await serve((_req, res) => {
      res.statusCode = codes.shift()!;
      res.end('nope');
    });
    const c = client(url);
    await expect(c.show({}, ID)).rejects.toMatchObject({ className: 'ImageNotFound' });
    await expect(c.show({}, ID)).rejects.toMatchObject({ className: 'ImageNotAuthorized' });
    await expect(c.show({}, ID)).rejects.toMatchObject({ className: 'Invalid' });
    await expect(c.show({}, ID)).rejects.toMatchObject({ className: 'ImageLimitExceeded' });
  });

  it('retries a 503 on the next attempt, and gives up with GlanceConnectionFailed', async () => {
    let n = 0;
    const { url } = await serve((_req, res) => {
      if (n++ === 0) {
        res.statusCode = 503;
        return void res.end();
      }
      res.end(JSON.stringify({ id: ID, status: 'active' }));
    });
    expect((await client(url, 1).show({}, ID)).status).toBe('active');
    await expect(client('127.0.0.1:1', 2).show({}, ID)).rejects.toMatchObject({ className: 'GlanceConnectionFailed' });
  });

  it('streams a download checked against os_hash_value, and refuses one that does not match or stops short', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024, 9);
    const bad = Buffer.from(data);
    bad[100] = 1;
    let body = data;
    let cut = false;
    const { url } = await serve((_req, res) => {
      if (cut) {
        res.writeHead(200, { 'Content-Length': String(body.length) });
        // glance going away mid-body: headers and some bytes are out, then the connection drops
        res.write(body.subarray(0, 1000), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      res.end(body);
    });
    const c = client(url);
    expect((await drain(c.download({}, image(data)))).equals(data)).toBe(true);
    body = bad;
    await expect(drain(c.download({}, image(data)))).rejects.toMatchObject({ className: 'ImageDownloadFailed', message: expect.stringMatching(/Hash was/) });
    // md5 when glance recorded no os_hash
    await expect(drain(c.download({}, image(data, { os_hash_algo: null, os_hash_value: null })))).rejects.toMatchObject({ className: 'ImageDownloadFailed' });
    cut = true;
    body = data;
    await expect(drain(c.download({}, image(data)))).rejects.toMatchObject({ className: 'ImageDownloadFailed' });
  });

  it('ends a download that stops moving: glance_stall_timeout without glance_request_timeout, neither when both are off', async () => {
    const data = Buffer.alloc(64 * 1024, 7);
    // what glance-api does when its store lost the image's tail: the whole length announced, part
    // sent, the connection kept open
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(data.length) });
      res.write(data.subarray(0, 1000));
    });
    const stalling = new GlanceClient({ apiServers: [url], numRetries: 0, requestTimeoutSec: null, stallTimeoutSec: 1, logger: pino({ level: 'silent' }) });
    await expect(drain(stalling.download({}, image(data)))).rejects.toMatchObject({
      className: 'ImageDownloadFailed',
      message: expect.stringMatching(/after 1000 bytes.*glance_stall_timeout/),
    });
    const unlimited = new GlanceClient({ apiServers: [url], numRetries: 0, requestTimeoutSec: null, stallTimeoutSec: 0, logger: pino({ level: 'silent' }) });
    const outcome = await Promise.race([drain(unlimited.download({}, image(data))).then(() => 'ended', () => 'failed'), new Promise((r) => setTimeout(() => r('still waiting'), 1500))]);
    expect(outcome).toBe('still waiting');
  });

  it('reads the store file when allowed_direct_url_schemes has file, checked as a download; falls back to glance-api when it cannot', async () => {
    // small: a deep toEqual of megabytes blocks the loop for seconds (and keep-alive sockets go stale)
    const data = Buffer.alloc(256 * 1024, 5);
    let served = 0;
    const { url } = await serve((_req, res) => {
      served++;
      res.end(data);
    });
    const dir = await mkdtemp(join(tmpdir(), 'cb-direct-'));
    try {
      const store = join(dir, 'image file');
      await writeFile(store, data);
      const direct = new GlanceClient({ apiServers: [url], numRetries: 0, requestTimeoutSec: 5, allowedDirectUrlSchemes: ['file'], logger: pino({ level: 'silent' }) });
      const located = { ...image(data), direct_url: `file://${encodeURI(store)}`, locations: [] };
      expect((await drain(direct.download({}, located))).equals(data)).toBe(true);
      expect(served).toBe(0);
      // the file no longer holds what glance recorded: refused as a corrupt download
      const other = Buffer.from(data);
      other[7] = 1;
      await writeFile(store, other);
      await expect(drain(direct.download({}, located))).rejects.toMatchObject({ className: 'ImageDownloadFailed', message: expect.stringMatching(/Hash was/) });
      // a store this host does not have: glance-api sends the bytes
      expect((await drain(direct.download({}, { ...located, direct_url: 'file:///nonexistent/x', locations: [`file://${dir}/missing`] }))).equals(data)).toBe(true);
      expect(served).toBe(1);
      // not allowed: never read, whatever glance says
      expect((await drain(client(url).download({}, located))).equals(data)).toBe(true);
      expect(served).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes a store path only from a plain file:// URL', () => {
    const at = (direct_url: string | null, locations: string[] = []) => directFilePath({ direct_url, locations }, ['file']);
    expect(at('file:///var/lib/glance/images/abc')).toBe('/var/lib/glance/images/abc');
    expect(at('file:///var/lib/glance/images/a%20b')).toBe('/var/lib/glance/images/a b');
    expect(at('http://glance/x', ['swift://a/b', 'file:///srv/images/x'])).toBe('/srv/images/x');
    expect(at('file://otherhost/images/x')).toBeNull();
    expect(at('file:///images/x?y=1')).toBeNull();
    expect(at('file:///images/x%00y')).toBeNull();
    expect(at('not a url')).toBeNull();
    expect(directFilePath({ direct_url: 'file:///images/x' }, ['http'])).toBeNull();
  });

  it('uploads chunked and deletes an image left queued', async () => {
    let received = 0;
    let chunked = false;
    let deleted = false;
    const { url } = await serve((req, res) => {
      if (req.method === 'PUT') {
        chunked = req.headers['transfer-encoding'] === 'chunked';
        req.on('data', (d: Buffer) => (received += d.length));
        req.on('end', () => {
          res.statusCode = 204;
          res.end();
        });
        return;
      }
      if (req.method === 'DELETE') {
        deleted = true;
        res.statusCode = 204;
        return void res.end();
      }
      res.end(JSON.stringify({ id: ID, status: 'queued' }));
    });
    const c = client(url);
    await c.upload({}, ID, (async function* () {
      for (let i = 0; i < 4; i++) yield Buffer.alloc(65536, i);
    })());
    expect({ received, chunked }).toEqual({ received: 4 * 65536, chunked: true });
    expect(await c.deleteIfUnfinished({}, ID)).toBe(true);
    expect(deleted).toBe(true);
  });
});
