// Runs Debian's glance-api without keystone for end-to-end tests (CONTRACT-WAVE2 B8): sqlite,
// file store, the paste pipeline with unauthenticated-context (every request is admin), in a
// temporary directory. Plus the few image calls the tests make themselves (create, upload, show).
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { waitFor } from './cinder-stack.js';

export const glanceAvailable = (): boolean => existsSync('/usr/bin/glance-api') && existsSync('/usr/bin/glance-manage');

/** The image calls the tests make themselves, on glance-api at `url` (the lab guest's is the host's). */
export interface GlanceApi {
  url: string;
  createImage(meta: Record<string, unknown>): Promise<Record<string, any>>;
  uploadImage(id: string, data: Buffer): Promise<void>;
  /** the image data streamed from a file (for images too large to hold in memory) */
  uploadFile(id: string, path: string): Promise<void>;
  /** create + upload, returning the image as glance shows it afterwards */
  addImage(meta: Record<string, unknown>, data: Buffer): Promise<Record<string, any>>;
  show(id: string): Promise<{ status: number; body: Record<string, any> }>;
  /** PATCH /v2/images/<id> with a JSON patch (glance moves updated_at) */
  patchImage(id: string, ops: Array<Record<string, unknown>>): Promise<Record<string, any>>;
  download(id: string): Promise<Buffer>;
}

export interface GlanceHandle extends GlanceApi {
  dir: string;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

export async function startGlance(opts: { port: number }): Promise<GlanceHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'cb-glance-'));
  for (const d of ['images', 'staging', 'lock']) await mkdir(join(dir, d));
  const conf = join(dir, 'glance-api.conf');
  await writeFile(
    conf,
    [
      '[DEFAULT]',
      'bind_host = 127.0.0.1',
      `bind_port = ${opts.port}`,
      'workers = 1',
      `log_file = ${join(dir, 'glance-api.log')}`,
      'show_image_direct_url = true',
      'show_multiple_locations = true',
      `node_staging_uri = file://${join(dir, 'staging')}`,
      '[database]',
      `connection = sqlite:///${join(dir, 'glance.sqlite')}`,
      '[glance_store]',
      'stores = file,http',
      'default_store = file',
      `filesystem_store_datadir = ${join(dir, 'images')}`,
      '[paste_deploy]',
      'flavor =',
      'config_file = /etc/glance/glance-api-paste.ini',
      '[oslo_concurrency]',
      `lock_path = ${join(dir, 'lock')}`,
      '',
    ].join('\n'),
  );
  const env = { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' };
  await execa('/usr/bin/glance-manage', ['--config-file', conf, 'db_sync'], { env });
  const child: ChildProcess = spawn('/usr/bin/glance-api', ['--config-file', conf], { stdio: 'ignore', env });
  child.on('error', () => undefined);
  const url = `http://127.0.0.1:${opts.port}`;

  const handle: GlanceHandle = {
    ...glanceApi(url),
    dir,
    logs: () => readFile(join(dir, 'glance-api.log'), 'utf8').catch(() => '(no log)'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (!process.env.CINDERBLOCK_KEEP_STACK) await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('glance-api to listen', 90_000, async () => ((await fetch(`${url}/versions`)).status < 500 ? true : undefined));
  } catch (err) {
    const logs = await handle.logs();
    await handle.stop();
    throw new Error(`${(err as Error).message}\n${logs.slice(-4000)}`);
  }
  return handle;
}

export function glanceApi(url: string): GlanceApi {
  const api: GlanceApi = {
    url,
    async createImage(meta) {
      const r = await fetch(`${url}/v2/images`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(meta) });
      if (r.status !== 201) throw new Error(`POST /v2/images: ${r.status} ${await r.text()}`);
      return (await r.json()) as Record<string, any>;
    },
    async uploadImage(id, data) {
      const r = await fetch(`${url}/v2/images/${id}/file`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: data });
      if (r.status !== 204) throw new Error(`PUT /v2/images/${id}/file: ${r.status} ${await r.text()}`);
    },
    async uploadFile(id, path) {
      const body = Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
      const init = { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body, duplex: 'half' };
      const r = await fetch(`${url}/v2/images/${id}/file`, init as RequestInit);
      if (r.status !== 204) throw new Error(`PUT /v2/images/${id}/file: ${r.status} ${await r.text()}`);
    },
    async addImage(meta, data) {
      const img = await api.createImage(meta);
      await api.uploadImage(img.id, data);
      return (await api.show(img.id)).body;
    },
    async show(id) {
      const r = await fetch(`${url}/v2/images/${id}`);
      return { status: r.status, body: r.status === 200 ? ((await r.json()) as Record<string, any>) : { text: await r.text() } };
    },
    async patchImage(id, ops) {
      const r = await fetch(`${url}/v2/images/${id}`, { method: 'PATCH', headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' }, body: JSON.stringify(ops) });
      if (r.status !== 200) throw new Error(`PATCH /v2/images/${id}: ${r.status} ${await r.text()}`);
      return (await r.json()) as Record<string, any>;
    },
    async download(id) {
      const r = await fetch(`${url}/v2/images/${id}/file`);
      if (r.status !== 200) throw new Error(`GET /v2/images/${id}/file: ${r.status}`);
      return Buffer.from(await r.arrayBuffer());
    },
  };
  return api;
}
