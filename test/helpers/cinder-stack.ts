// Runs the real cinder-api and cinder-scheduler (Debian's cinder 21.3) for end-to-end tests:
// noauth, SQLite schema from the real `cinder-manage db sync`, the machine's RabbitMQ. The
// volume service is whatever the test starts on the same cinder.conf (cinderblock).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** Debian's python: a pyenv python3 may come first on PATH and has none of cinder's packages. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface StackOptions {
  /** host = in [DEFAULT]; queue names derive from it, so parallel stacks must differ. */
  host?: string;
  /** Extra lines for [DEFAULT]. */
  defaults?: Record<string, string>;
  /** Backend sections: name → options. enabled_backends lists them in order. */
  backends: Record<string, Record<string, string>>;
  apiPort?: number;
  transportUrl?: string;
  /** A `[database] connection` URL; SQLite in the stack's directory when omitted. */
  databaseUrl?: string;
  /** Further sections, e.g. { cinderblock: { tgt_control_port: '13261' } }. */
  extraSections?: Record<string, Record<string, string>>;
  /** How long cinder-api may take to listen (default 60 s; a loaded 2-core machine needs more). */
  startTimeoutMs?: number;
}

export interface CinderStack {
  dir: string;
  confPath: string;
  host: string;
  apiUrl: string;
  /** Runs python-cinderclient's `cinder` CLI against the API (noauth, admin, API 3.70). */
  cinder(args: string[]): Promise<string>;
  /** GET/POST/... on the v3 API with noauth headers; returns the parsed JSON body. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
  logs(): Promise<string>;
}

function ini(sections: Record<string, Record<string, string>>): string {
  return Object.entries(sections)
    .map(([name, opts]) => `[${name}]\n${Object.entries(opts).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`)
    .join('\n');
}

export function writeCinderConf(dir: string, opts: StackOptions & { host: string; apiPort: number }): string {
  const sections: Record<string, Record<string, string>> = {
    DEFAULT: {
      transport_url: opts.transportUrl ?? 'rabbit://guest:guest@127.0.0.1:5672/',
      auth_strategy: 'noauth',
      my_ip: '127.0.0.1',
      host: opts.host,
      enabled_backends: Object.keys(opts.backends).join(','),
      state_path: dir,
      osapi_volume_listen: '127.0.0.1',
      osapi_volume_listen_port: String(opts.apiPort),
      osapi_volume_workers: '1',
      log_dir: join(dir, 'logs'),
      report_interval: '2',
      service_down_time: '10',
      rpc_response_timeout: '60',
      ...opts.defaults,
    },
    database: { connection: opts.databaseUrl ?? `sqlite:///${join(dir, 'cinder.sqlite')}` },
    ...opts.backends,
    oslo_concurrency: { lock_path: join(dir, 'locks') },
    coordination: { backend_url: `file://${join(dir, 'coord')}` },
    oslo_messaging_notifications: { driver: 'noop' },
    ...opts.extraSections,
  };
  return ini(sections);
}

/** Thrown by a waitFor probe when waiting longer is pointless (a volume went to `error`). */
export class WaitAborted extends Error {}

/**
 * Polls `probe` until it returns a value. A probe that throws is retried (the API may not be up
 * yet), except with WaitAborted, which ends the wait at once. `intervalMs` between probes: many
 * waits at once (a fleet bench polling hundreds of volumes) would load cinder-api at 250 ms.
 */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof WaitAborted) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export { waitFor };

function startDaemon(cmd: string, args: string[], logPath: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: 'ignore', detached: false, env: { ...process.env, PATH: `/usr/bin:/usr/sbin:/bin:/sbin:${process.env.PATH ?? ''}` } });
  child.on('error', () => undefined);
  void logPath;
  return child;
}

async function stopDaemon(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export type CinderApi = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

/**
 * A v3 API client with noauth admin headers (API 3.70) for a cinder-api at `apiUrl` (…/v3), e.g.
 * one a lab guest reaches on the host at 10.0.2.2.
 */
/** `timeoutMs` bounds each request (a slow peer under emulation may need minutes); none by default. */
export function cinderApi(apiUrl: string, opts: { timeoutMs?: number } = {}): CinderApi {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/json',
    // noauth: the token is "user:project"; admin gets the admin role.
    'X-Auth-Token': 'admin:admin',
    'X-Auth-Project-Id': 'admin',
    'OpenStack-API-Version': 'volume 3.70',
  };
  return async (method, path, body) => {
    const res = await fetch(`${apiUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed };
  };
}

export async function startCinderStack(opts: StackOptions): Promise<CinderStack> {
  const dir = await mkdtemp(join(tmpdir(), 'cb-stack-'));
  const host = opts.host ?? `cbtest${Math.random().toString(36).slice(2, 8)}`;
  const apiPort = opts.apiPort ?? 8776;
  await mkdir(join(dir, 'logs'), { recursive: true });
  await mkdir(join(dir, 'locks'), { recursive: true });
  const confPath = join(dir, 'cinder.conf');
  await writeFile(confPath, writeCinderConf(dir, { ...opts, host, apiPort }));
  await execa('/usr/bin/cinder-manage', ['--config-file', confPath, 'db', 'sync'], { env: { PATH: '/usr/bin:/bin' } });

  const scheduler = startDaemon('/usr/bin/cinder-scheduler', ['--config-file', confPath], join(dir, 'logs', 'cinder-scheduler.log'));
  const api = startDaemon('/usr/bin/cinder-api', ['--config-file', confPath], join(dir, 'logs', 'cinder-api.log'));
  const apiUrl = `http://127.0.0.1:${apiPort}/v3`;

  const stack: CinderStack = {
    dir,
    confPath,
    host,
    apiUrl,
    api: cinderApi(apiUrl),
    async cinder(args) {
      const r = await execa(
        '/usr/bin/cinder',
        ['--os-auth-type', 'noauth', '--os-user-id', 'admin', '--os-project-id', 'admin', '--os-endpoint', apiUrl, '--os-volume-api-version', '3.70', ...args],
        { env: { PATH: '/usr/bin:/bin' }, reject: false },
      );
      if (r.exitCode !== 0) throw new Error(`cinder ${args.join(' ')} failed (${r.exitCode}): ${r.stderr || r.stdout}`);
      return r.stdout;
    },
    async logs() {
      const parts: string[] = [];
      for (const f of ['cinder-api.log', 'cinder-scheduler.log']) {
        parts.push(`==> ${f}\n${await readFile(join(dir, 'logs', f), 'utf8').catch(() => '(none)')}`);
      }
      return parts.join('\n');
    },
    async stop() {
      await Promise.all([stopDaemon(api), stopDaemon(scheduler)]);
      if (!process.env.CINDERBLOCK_KEEP_STACK) await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('cinder-api to listen', opts.startTimeoutMs ?? 60_000, async () => {
      const res = await fetch(`http://127.0.0.1:${apiPort}/`);
      return res.status < 500 ? true : undefined;
    });
  } catch (err) {
    const logs = await stack.logs();
    await stack.stop();
    throw new Error(`${(err as Error).message}\n${logs.slice(-4000)}`);
  }
  return stack;
}

/** Parses python-cinderclient's prettytable output into rows of {header: value}. */
export function parseTable(out: string): Array<Record<string, string>> {
  const lines = out.split('\n').filter((l) => l.startsWith('|'));
  if (lines.length === 0) return [];
  const cells = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
  const header = cells(lines[0]!);
  return lines.slice(1).map((l) => Object.fromEntries(cells(l).map((c, i) => [header[i] ?? String(i), c])));
}
