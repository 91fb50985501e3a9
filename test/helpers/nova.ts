// Debian's nova-api started without keystone (CONTRACT-WAVE2 D): noauth2, SQLite API and cell
// databases in a temporary directory, only osapi_compute. Enough for os-server-external-events:
// the token `admin:admin` is an admin, unknown servers answer 207 with a per-event 404.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const NOVA_API = '/usr/bin/nova-api';
export const novaAvailable = (): boolean => existsSync(NOVA_API) && existsSync('/usr/bin/nova-manage') && existsSync('/etc/nova/api-paste.ini');

export interface NovaApi {
  /** http://127.0.0.1:<port>/v2.1, what [nova] endpoint names */
  endpoint: string;
  port: number;
  logPath: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

export async function startNovaApi(opts: { port: number }): Promise<NovaApi> {
  const dir = await mkdtemp(join(tmpdir(), 'cb-nova-'));
  await mkdir(join(dir, 'lock'));
  const conf = join(dir, 'nova.conf');
  await writeFile(
    conf,
    [
      '[DEFAULT]',
      'enabled_apis = osapi_compute',
      'osapi_compute_listen = 127.0.0.1',
      `osapi_compute_listen_port = ${opts.port}`,
      'osapi_compute_workers = 1',
      // not contacted by the external-events path; nova only needs the option to parse
      'transport_url = rabbit://guest:guest@127.0.0.1:5672/',
      `log_dir = ${dir}`,
      'debug = true',
      '[api]',
      'auth_strategy = noauth2',
      '[api_database]',
      `connection = sqlite:///${join(dir, 'nova_api.sqlite')}`,
      '[database]',
      `connection = sqlite:///${join(dir, 'nova.sqlite')}`,
      '[wsgi]',
      'api_paste_config = /etc/nova/api-paste.ini',
      '[oslo_concurrency]',
      `lock_path = ${join(dir, 'lock')}`,
      '',
    ].join('\n'),
  );
  const env = { PATH: '/usr/bin:/bin' };
  // both databases: without the cell one nova-api dies registering its service
  await execa('/usr/bin/nova-manage', ['--config-file', conf, 'api_db', 'sync'], { env });
  await execa('/usr/bin/nova-manage', ['--config-file', conf, 'db', 'sync', '--local_cell'], { env });
  const logPath = join(dir, 'nova-api.out');
  const out = openSync(logPath, 'a');
  const child: ChildProcess = spawn(NOVA_API, ['--config-file', conf], { stdio: ['ignore', out, out], env, detached: false });
  const endpoint = `http://127.0.0.1:${opts.port}/v2.1`;
  const log = async () => {
    const parts = await Promise.all([readFile(logPath, 'utf8').catch(() => ''), readFile(join(dir, 'nova-api.log'), 'utf8').catch(() => '')]);
    return parts.join('\n');
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (!process.env.CINDERBLOCK_KEEP_STACK) await rm(dir, { recursive: true, force: true });
  };
  // ~15 s to listen: it answers its version document without a token
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) {
      const text = await log();
      await stop();
      throw new Error(`nova-api exited (${child.exitCode}) before listening\n${text.slice(-3000)}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${opts.port}/`);
      if (res.status < 500) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      const text = await log();
      await stop();
      throw new Error(`nova-api did not listen within 90 s\n${text.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { endpoint, port: opts.port, logPath, log, stop };
}
