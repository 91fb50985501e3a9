// Runs Debian's glance-api without keystone for end-to-end tests (CONTRACT-WAVE2 B8): sqlite,
// file store, the paste pipeline with unauthenticated-context (every request is admin), in a
// temporary directory. Plus the few image calls the tests make themselves (create, upload, show).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { waitFor } from './cinder-stack.js';

export const glanceAvailable = (): boolean => existsSync('/usr/bin/glance-api') && existsSync('/usr/bin/glance-manage');

export interface GlanceHandle {
  url: string;
  dir: string;
  createImage(meta: Record<string, unknown>): Promise<Record<string, any>>;
  uploadImage(id: string, data: Buffer): Promise<void>;
  /** create + upload, returning the image as glance shows it afterwards */
  addImage(meta: Record<string, unknown>, data: Buffer): Promise<Record<string, any>>;
  show(id: string): Promise<{ status: number; body: Record<string, any> }>;
  download(id: string): Promise<Buffer>;
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
    url,
    dir,
    async createImage(meta) {
      const r = await fetch(`${url}/v2/images`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(meta) });
      if (r.status !== 201) throw new Error(`POST /v2/images: ${r.status} ${await r.text()}`);
      return (await r.json()) as Record<string, any>;
    },
    async uploadImage(id, data) {
      const r = await fetch(`${url}/v2/images/${id}/file`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: data });
      if (r.status !== 204) throw new Error(`PUT /v2/images/${id}/file: ${r.status} ${await r.text()}`);
    },
    async addImage(meta, data) {
      const img = await handle.createImage(meta);
      await handle.uploadImage(img.id, data);
      return (await handle.show(img.id)).body;
    },
    async show(id) {
      const r = await fetch(`${url}/v2/images/${id}`);
      return { status: r.status, body: r.status === 200 ? ((await r.json()) as Record<string, any>) : { text: await r.text() } };
    },
    async download(id) {
      const r = await fetch(`${url}/v2/images/${id}/file`);
      if (r.status !== 200) throw new Error(`GET /v2/images/${id}/file: ${r.status}`);
      return Buffer.from(await r.arrayBuffer());
    },
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
