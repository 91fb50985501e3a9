// RPC benchmark: cinderblock against the real cinder-volume (Debian's cinder 21.3), in one run.
//
//   npx tsx bench/rpc-bench.ts                           # full run (2000 calls per cell)
//   CB_BENCH_CALLS=300 CB_BENCH_IDLE_S=5 npx tsx bench/rpc-bench.ts   # quick run
//
// One SQLite cinder DB (schema by the real `cinder-manage db sync`) and two cinder.conf files on
// it: /usr/bin/cinder-volume serves `<run>cv@lvm` (LVMVolumeDriver; there is no volume group, so
// the driver fails to initialize, but the manager's RPC server starts and answers
// get_log_levels) and `node bin/cinderblock.js serve` serves `<run>cb@file` (file pool). Both
// are driven through the machine's RabbitMQ with get_log_levels v3.12 addressed as
// cinder.volume.rpcapi does (topic cinder-volume.<host>@<backend>, server <host>), by the SAME
// client for both services: our RpcClient (src/rpc) in this process and cinder's own
// VolumeAPI in a Python helper (bench/rpc_bench_client.py, eventlet like cinder-api). Each cell
// (client x concurrency x service) is CB_BENCH_CALLS calls split into CB_BENCH_ROUNDS rounds,
// the two services alternating ABBA so that noise from other work on the machine falls on both.
// Idle RSS is read after start-up and CB_BENCH_IDLE_S seconds of quiet, summed over each
// service's process tree (cinder-volume forks a child per backend); the services' CPU time per
// call is read from /proc around every round. Everything started is stopped by pid (with its
// process tree), this run's queues are deleted and the temp dir removed, also on failure/Ctrl-C.
//
// Env: CB_BENCH_CALLS (2000), CB_BENCH_WARMUP (200), CB_BENCH_CONCURRENCY (16), CB_BENCH_ROUNDS
// (4), CB_BENCH_IDLE_S (30), CB_BENCH_PREFIX ('cinder'; 'null' sends prefix None), CB_BENCH_CLIENTS
// ('ts,py'), CB_BENCH_JSON (bench/results/rpc-bench.json), CB_BENCH_TRANSPORT_URL
// (rabbit://guest:guest@127.0.0.1:5672/), CB_BENCH_KEEP=1 keeps the temp dir (logs) for a look.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import amqplib from 'amqplib';

import { alive, processTree, treeCpuSeconds, treeMemory, type TreeMem } from './proc-stats.js';
import { AmqpConnection, RpcClient, type Target } from '../src/rpc/index.js';
import { adminContext } from '../src/rpc/context.js';
import { createLogger, setRootLogger } from '../src/log.js';
import { VersionedObject } from '../src/rpc/ovo.js';
import { launcherNodeFlags, launcherPath } from '../test/helpers/launcher-node-flags.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SYSTEM_PYTHON = '/usr/bin/python3';
const SYS_PATH = `/usr/bin:/usr/sbin:/bin:/sbin:${process.env.PATH ?? ''}`;

const envNum = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v} is not a non-negative number`);
  return n;
};
const CALLS = Math.max(1, Math.round(envNum('CB_BENCH_CALLS', 2000)));
const WARMUP = Math.round(envNum('CB_BENCH_WARMUP', 200));
const CONC = Math.max(2, Math.round(envNum('CB_BENCH_CONCURRENCY', 16)));
const ROUNDS = Math.max(1, Math.round(envNum('CB_BENCH_ROUNDS', 4)));
const IDLE_S = envNum('CB_BENCH_IDLE_S', 30);
const PREFIX: string | null = (process.env.CB_BENCH_PREFIX ?? 'cinder') === 'null' ? null : (process.env.CB_BENCH_PREFIX ?? 'cinder');
const CLIENTS = (process.env.CB_BENCH_CLIENTS ?? 'ts,py').split(',').map((s) => s.trim()).filter(Boolean) as ClientKind[];
const JSON_OUT = process.env.CB_BENCH_JSON ?? path.join(repoRoot, 'bench', 'results', 'rpc-bench.json');
const TRANSPORT_URL = process.env.CB_BENCH_TRANSPORT_URL ?? 'rabbit://guest:guest@127.0.0.1:5672/';
const KEEP = process.env.CB_BENCH_KEEP === '1';

type ClientKind = 'ts' | 'py';
type ServiceKind = 'cinder-volume' | 'cinderblock';
const SERVICES: ServiceKind[] = ['cinder-volume', 'cinderblock'];
for (const c of CLIENTS) if (c !== 'ts' && c !== 'py') throw new Error(`CB_BENCH_CLIENTS: unknown client ${c} (ts, py)`);

// ---------------------------------------------------------------------------------------------
// Processes, and their cleanup whatever happens.

const children = new Set<ChildProcess>();
let workDir = '';
/** host@backend of this run's services, for deleting their queues at the end. */
const runHosts: string[] = [];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function spawnTracked(cmd: string, args: string[], opts: { log: string; env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'log' }): ChildProcess {
  const fd = openSync(opts.log, 'a');
  const child = spawn(cmd, args, {
    cwd: repoRoot,
    stdio: [opts.stdin ?? 'ignore', opts.stdout === 'pipe' ? 'pipe' : fd, fd],
    env: { ...process.env, PATH: SYS_PATH, ...opts.env },
  });
  closeSync(fd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.on('error', (err) => process.stderr.write(`rpc-bench: ${cmd}: ${err.message}\n`));
  return child;
}

/** SIGTERM the process, wait up to graceMs, then SIGKILL what is left of its tree (by pid). */
async function stopTree(child: ChildProcess, graceMs: number): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const tree = processTree(pid);
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(graceMs)]);
  }
  for (const p of tree) {
    if (alive(p)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/** Last resort on a synchronous exit: SIGKILL every tracked process tree. */
function killAllNow(): void {
  for (const child of children) {
    if (child.pid === undefined) continue;
    for (const p of processTree(child.pid)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  children.clear();
  if (workDir && !KEEP) rmSync(workDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Configuration

function ini(sections: Record<string, Record<string, string>>): string {
  return Object.entries(sections)
    .map(([name, opts]) => `[${name}]\n${Object.entries(opts).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`)
    .join('\n');
}

function cinderConf(dir: string, host: string, backends: Record<string, Record<string, string>>): string {
  return ini({
    DEFAULT: {
      transport_url: TRANSPORT_URL,
      auth_strategy: 'noauth',
      my_ip: '127.0.0.1',
      host,
      enabled_backends: Object.keys(backends).join(','),
      state_path: dir,
      log_dir: path.join(dir, 'logs'),
      rpc_response_timeout: '60',
    },
    database: { connection: `sqlite:///${path.join(dir, 'cinder.sqlite')}` },
    ...backends,
    oslo_concurrency: { lock_path: path.join(dir, 'locks') },
    coordination: { backend_url: `file://${path.join(dir, 'coord')}` },
    oslo_messaging_notifications: { driver: 'noop' },
  });
}

// Memory: bench/proc-stats.ts

// ---------------------------------------------------------------------------------------------
// Clients

interface RunResult {
  elapsedS: number;
  /** CPU seconds the service's process tree used during the run (warm-up included). */
  serviceCpuS?: number;
  clientCpuS?: number;
  latMs: number[];
  errors: number;
  firstError: string | null;
  entries: number;
}

interface BenchClient {
  kind: ClientKind;
  run(host: string, n: number, warmup: number, concurrency: number): Promise<RunResult>;
  /** CPU seconds the client has used so far (this process for ts, the python process for py). */
  cpuSeconds(): number;
  close(): Promise<void>;
}

function logRequest(prefix: string | null): VersionedObject {
  // objects.LogLevel(context, prefix=prefix) as cinder-api builds it: prefix set (so changed).
  return new VersionedObject('LogLevel', {}).set('prefix', prefix);
}

function volumeTarget(host: string): Target {
  // cinder.volume.rpcapi.VolumeAPI._get_cctxt(host=service.host) at cap >= 3.6.
  const [hostPart] = host.split('@');
  return { topic: `cinder-volume.${host.split('#')[0]}`, server: hostPart };
}

function countEntries(reply: unknown): number {
  if (reply instanceof VersionedObject) {
    const objs = reply.get<unknown[]>('objects');
    return Array.isArray(objs) ? objs.length : -1;
  }
  return -1;
}

async function tsClient(): Promise<BenchClient> {
  const conn = new AmqpConnection(TRANSPORT_URL, { connectionName: `rpc-bench:${process.pid}` });
  await conn.start(10_000);
  const client = new RpcClient({ connection: conn, name: 'rpc-bench', rpcResponseTimeout: 60 });
  const ctx = adminContext().toDict();
  const args = { log_request: logRequest(PREFIX) };
  return {
    kind: 'ts',
    cpuSeconds: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    },
    async run(host, n, warmup, concurrency) {
      const target = volumeTarget(host);
      let errors = 0;
      let firstError: string | null = null;
      let last: unknown = null;
      const batch = async (count: number): Promise<number[]> => {
        const lat: number[] = [];
        let remaining = count;
        const worker = async (): Promise<void> => {
          while (remaining > 0) {
            remaining--;
            const t0 = performance.now();
            try {
              last = await client.call(target, 'get_log_levels', args, ctx, '3.12');
            } catch (err) {
              errors++;
              firstError ??= err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 300) : String(err);
            }
            lat.push(performance.now() - t0);
          }
        };
        await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
        return lat;
      };
      await batch(warmup);
      errors = 0;
      firstError = null;
      const t0 = performance.now();
      const latMs = await batch(n);
      return { elapsedS: (performance.now() - t0) / 1000, latMs, errors, firstError, entries: countEntries(last) };
    },
    async close() {
      await client.close().catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}

/** Pings until the service answers get_log_levels (each try expires after 2 s). */
async function waitUntilAnswering(host: string, what: string, proc: ChildProcess, timeoutMs: number): Promise<number> {
  const conn = new AmqpConnection(TRANSPORT_URL, { connectionName: `rpc-bench-ping:${process.pid}` });
  await conn.start(10_000);
  const client = new RpcClient({ connection: conn, name: 'rpc-bench-ping' });
  const t0 = Date.now();
  try {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}) before answering`);
      try {
        const reply = await client.call(volumeTarget(host), 'get_log_levels', { log_request: logRequest(PREFIX) }, adminContext().toDict(), '3.12', { timeout: 2 });
        return countEntries(reply);
      } catch (err) {
        if (Date.now() - t0 > timeoutMs) throw new Error(`${what} (${host}) did not answer get_log_levels within ${timeoutMs} ms: ${String(err)}`);
        await sleep(250);
      }
    }
  } finally {
    await client.close().catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
}

async function pyClient(confPath: string, logPath: string): Promise<BenchClient> {
  const child = spawnTracked(SYSTEM_PYTHON, [path.join(repoRoot, 'bench', 'rpc_bench_client.py'), '--config-file', confPath], {
    log: logPath,
    stdin: 'pipe',
    stdout: 'pipe',
    env: { PYTHONWARNINGS: 'ignore' },
  });
  const rl: Interface = createInterface({ input: child.stdout! });
  const lines: string[] = [];
  const waiters: Array<(l: string | null) => void> = [];
  rl.on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else lines.push(l);
  });
  child.once('exit', () => {
    for (const w of waiters.splice(0)) w(null);
  });
  const next = (timeoutMs: number): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const done = (l: string | null) => {
        clearTimeout(timer);
        if (l === null) reject(new Error(`python client exited (${child.exitCode ?? child.signalCode}); see ${logPath}`));
        else resolve(JSON.parse(l) as Record<string, unknown>);
      };
      const timer = setTimeout(() => {
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`python client: no answer within ${timeoutMs} ms; see ${logPath}`));
      }, timeoutMs);
      const buffered = lines.shift();
      if (buffered !== undefined) done(buffered);
      else if (child.exitCode !== null || child.signalCode !== null) done(null);
      else waiters.push(done);
    });
  const hello = await next(60_000);
  if (hello.ready !== true) throw new Error(`python client did not start: ${JSON.stringify(hello)}`);
  if (hello.rpc_cap !== '3.18') throw new Error(`python client's VolumeAPI cap is ${String(hello.rpc_cap)}, expected 3.18`);
  const send = (o: unknown) => child.stdin!.write(`${JSON.stringify(o)}\n`);
  return {
    kind: 'py',
    cpuSeconds: () => treeCpuSeconds(child.pid!),
    async run(host, n, warmup, concurrency) {
      send({ cmd: 'run', host, n, warmup, concurrency, prefix: PREFIX });
      const r = await next(30 * 60_000);
      if (r.ok !== true) throw new Error(`python client: ${String(r.error)}`);
      return {
        elapsedS: r.elapsed_s as number,
        latMs: r.lat_ms as number[],
        errors: r.errors as number,
        firstError: (r.first_error as string | null) ?? null,
        entries: r.entries as number,
      };
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        send({ cmd: 'quit' });
        child.stdin!.end();
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
      }
      await stopTree(child, 2000);
      rl.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

interface Cell {
  client: ClientKind;
  concurrency: number;
  service: ServiceKind;
  calls: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  roundCallsPerSec: number[];
  replyEntries: number;
  /** Service CPU (user+sys, whole tree) per call, warm-up calls counted; 10 ms tick resolution. */
  serviceCpuMsPerCall: number;
  /** The client's CPU per call (same counting). */
  clientCpuMsPerCall: number;
}

function summarize(client: ClientKind, concurrency: number, service: ServiceKind, rounds: RunResult[], callsWithWarmup: number): Cell {
  const lat = rounds.flatMap((r) => r.latMs).sort((a, b) => a - b);
  const seconds = rounds.reduce((a, r) => a + r.elapsedS, 0);
  const calls = lat.length;
  return {
    client,
    concurrency,
    service,
    calls,
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    firstError: rounds.find((r) => r.firstError)?.firstError ?? null,
    seconds,
    callsPerSec: calls / seconds,
    p50Ms: pct(lat, 0.5),
    p99Ms: pct(lat, 0.99),
    meanMs: lat.reduce((a, x) => a + x, 0) / calls,
    roundCallsPerSec: rounds.map((r) => r.latMs.length / r.elapsedS),
    replyEntries: rounds[rounds.length - 1]?.entries ?? -1,
    serviceCpuMsPerCall: (rounds.reduce((a, r) => a + (r.serviceCpuS ?? 0), 0) * 1000) / callsWithWarmup,
    clientCpuMsPerCall: (rounds.reduce((a, r) => a + (r.clientCpuS ?? 0), 0) * 1000) / callsWithWarmup,
  };
}

const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const mib = (kib: number | null): string => (kib === null ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`);

function table(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(headers), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function deleteHostQueues(hosts: string[]): Promise<void> {
  // The per-host queues are durable=false, auto_delete=false, so they outlive their consumers.
  // Only this run's hosts are touched; the shared `cinder-volume` queue is left alone.
  const conn = await amqplib.connect(TRANSPORT_URL.replace(/^rabbit:/, 'amqp:'));
  try {
    for (const h of hosts) {
      const [hostPart] = h.split('@');
      for (const q of [`cinder-volume.${h}`, `cinder-volume.${h}.${hostPart}`]) {
        const ch = await conn.createChannel();
        await ch.deleteQueue(q).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  // This process's own transport logs (connects) go to stderr, warnings only; stdout is the table.
  setRootLogger(createLogger({ level: 'warn', destination: 2, pretty: false }));
  if (!existsSync(path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'))) throw new Error('run `npm run build` first (bin/cinderblock.js needs dist/)');
  for (const f of ['/usr/bin/cinder-volume', '/usr/bin/cinder-manage', SYSTEM_PYTHON]) if (!existsSync(f)) throw new Error(`${f} is missing (Debian's cinder packages)`);

  workDir = mkdtempSync(path.join(tmpdir(), 'cb-rpc-bench-'));
  for (const d of ['logs', 'locks', 'coord']) mkdirSync(path.join(workDir, d));
  const tag = `rpcb${process.pid}${Math.random().toString(36).slice(2, 6)}`;
  const cvHost = `${tag}cv@lvm`;
  const cbHost = `${tag}cb@file`;
  runHosts.push(cvHost, cbHost);
  const cvConf = path.join(workDir, 'cinder-volume.conf');
  const cbConf = path.join(workDir, 'cinderblock.conf');
  writeFileSync(
    cvConf,
    cinderConf(workDir, `${tag}cv`, {
      lvm: { volume_driver: 'cinder.volume.drivers.lvm.LVMVolumeDriver', volume_group: 'cinder-volumes', target_helper: 'tgtadm', volume_backend_name: 'lvm' },
    }),
  );
  writeFileSync(cbConf, cinderConf(workDir, `${tag}cb`, { file: { volume_driver: 'file', volume_backend_name: 'file' } }));
  const logs = path.join(workDir, 'logs');
  const sync = spawnSync('/usr/bin/cinder-manage', ['--config-file', cvConf, 'db', 'sync'], { env: { PATH: SYS_PATH }, encoding: 'utf8' });
  if (sync.status !== 0) throw new Error(`cinder-manage db sync failed: ${sync.stderr}`);
  log(`work dir ${workDir}; cinder-manage db sync done`);

  const cv = spawnTracked('/usr/bin/cinder-volume', ['--config-file', cvConf], { log: path.join(logs, 'cinder-volume.stderr') });
  const cb = spawnTracked(process.execPath, [...launcherNodeFlags(), launcherPath, 'serve', '--config-file', cbConf], { log: path.join(logs, 'cinderblock.log') });
  const procs: Record<ServiceKind, ChildProcess> = { 'cinder-volume': cv, cinderblock: cb };
  const hosts: Record<ServiceKind, string> = { 'cinder-volume': cvHost, cinderblock: cbHost };
  try {
    const [cvEntries, cbEntries] = await Promise.all([
      waitUntilAnswering(cvHost, 'cinder-volume', cv, 120_000),
      waitUntilAnswering(cbHost, 'cinderblock', cb, 120_000),
    ]);
    log(`both answer get_log_levels (prefix ${JSON.stringify(PREFIX)}): cinder-volume ${cvEntries} LogLevel entries, cinderblock ${cbEntries}`);

    // What cinder-volume's driver did: the bench relies on its RPC server running regardless.
    const cvLog = readFileSync(path.join(logs, 'cinder-volume.log'), 'utf8');
    const driverFailed = /Failed to initialize driver/.test(cvLog);
    log(`cinder-volume driver: ${driverFailed ? 'LVMVolumeDriver failed to initialize (no volume group), RPC server up' : 'initialized'}`);

    log(`idle ${IDLE_S} s before reading RSS`);
    await sleep(IDLE_S * 1000);
    const idle: Record<ServiceKind, TreeMem> = { 'cinder-volume': treeMemory(cv.pid!), cinderblock: treeMemory(cb.pid!) };
    for (const s of SERVICES) log(`idle ${s}: ${idle[s].processes.map((p) => `${p.pid} ${p.comm} ${mib(p.rssKiB)}`).join(', ')}`);

    const clients: BenchClient[] = [];
    try {
      for (const kind of CLIENTS) clients.push(kind === 'ts' ? await tsClient() : await pyClient(cvConf, path.join(logs, 'python-client.log')));
      const cells: Cell[] = [];
      const perRound = Math.max(1, Math.floor(CALLS / ROUNDS));
      for (const client of clients) {
        for (const conc of [1, CONC]) {
          const rounds: Record<ServiceKind, RunResult[]> = { 'cinder-volume': [], cinderblock: [] };
          const sent: Record<ServiceKind, number> = { 'cinder-volume': 0, cinderblock: 0 };
          for (let r = 0; r < ROUNDS; r++) {
            const order: ServiceKind[] = r % 2 === 0 ? ['cinder-volume', 'cinderblock'] : ['cinderblock', 'cinder-volume'];
            for (const s of order) {
              const n = r === ROUNDS - 1 ? CALLS - perRound * (ROUNDS - 1) : perRound;
              const warm = r === 0 ? WARMUP : Math.min(WARMUP, 2 * conc + 10);
              const cpu0 = treeCpuSeconds(procs[s].pid!);
              const ccpu0 = client.cpuSeconds();
              const res = await client.run(hosts[s], n, warm, conc);
              res.serviceCpuS = treeCpuSeconds(procs[s].pid!) - cpu0;
              res.clientCpuS = client.cpuSeconds() - ccpu0;
              sent[s] += n + warm;
              rounds[s].push(res);
              if (procs[s].exitCode !== null || procs[s].signalCode !== null) throw new Error(`${s} exited during the run`);
            }
          }
          for (const s of SERVICES) {
            const cell = summarize(client.kind, conc, s, rounds[s], sent[s]);
            cells.push(cell);
            log(
              `${client.kind} c=${conc} ${s}: ${fmt(cell.callsPerSec)} calls/s, p50 ${fmt(cell.p50Ms, 2)} ms, p99 ${fmt(cell.p99Ms, 2)} ms, ` +
                `CPU ms/call service ${fmt(cell.serviceCpuMsPerCall, 2)} client ${fmt(cell.clientCpuMsPerCall, 2)}, errors ${cell.errors}${cell.firstError ? ` (${cell.firstError})` : ''}, rounds ${cell.roundCallsPerSec.map((x) => fmt(x, 0)).join('/')}`,
            );
          }
        }
      }
      const afterLoad: Record<ServiceKind, TreeMem> = { 'cinder-volume': treeMemory(cv.pid!), cinderblock: treeMemory(cb.pid!) };
      report(cells, idle, afterLoad, { cvHost, cbHost, driverFailed, entries: { 'cinder-volume': cvEntries, cinderblock: cbEntries } });
    } finally {
      for (const c of clients) await c.close().catch(() => undefined);
    }
  } catch (err) {
    for (const f of readdirSync(logs)) {
      const text = readFileSync(path.join(logs, f), 'utf8');
      process.stderr.write(`==> ${f} (last lines)\n${text.split('\n').slice(-15).join('\n')}\n`);
    }
    throw err;
  } finally {
    await Promise.all([stopTree(cv, 20_000), stopTree(cb, 20_000)]);
    await deleteHostQueues([cvHost, cbHost]).catch((err: unknown) => log(`could not delete this run's queues: ${String(err)}`));
  }
}

function log(msg: string): void {
  process.stderr.write(`[rpc-bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function report(
  cells: Cell[],
  idle: Record<ServiceKind, TreeMem>,
  afterLoad: Record<ServiceKind, TreeMem>,
  meta: { cvHost: string; cbHost: string; driverFailed: boolean; entries: Record<ServiceKind, number> },
): void {
  const get = (client: ClientKind, conc: number, s: ServiceKind) => cells.find((c) => c.client === client && c.concurrency === conc && c.service === s);
  const out: string[] = [];
  const headers = ['service', 'calls/s c=1', `calls/s c=${CONC}`, 'p50 c=1', 'p99 c=1', `p50 c=${CONC}`, `p99 c=${CONC}`, `CPU/call c=${CONC}`, 'idle RSS', 'idle PSS'];
  const clientsRun = [...new Set(cells.map((c) => c.client))];
  for (const client of clientsRun) {
    const rows: string[][] = [];
    const vals = (s: ServiceKind): number[] => {
      const a = get(client, 1, s)!;
      const b = get(client, CONC, s)!;
      return [a.callsPerSec, b.callsPerSec, a.p50Ms, a.p99Ms, b.p50Ms, b.p99Ms, b.serviceCpuMsPerCall, idle[s].rssKiB, idle[s].pssKiB ?? NaN];
    };
    for (const s of SERVICES) {
      const v = vals(s);
      rows.push([
        s,
        fmt(v[0]!),
        fmt(v[1]!),
        `${fmt(v[2]!, 2)} ms`,
        `${fmt(v[3]!, 2)} ms`,
        `${fmt(v[4]!, 2)} ms`,
        `${fmt(v[5]!, 2)} ms`,
        `${fmt(v[6]!, 2)} ms`,
        mib(v[7]!),
        mib(Number.isNaN(v[8]!) ? null : v[8]!),
      ]);
    }
    const a = vals('cinderblock');
    const b = vals('cinder-volume');
    rows.push(['cinderblock / cinder-volume', ...a.map((x, i) => `${fmt(x / b[i]!, 2)}x`)]);
    out.push(`client: ${client === 'ts' ? "cinderblock's RpcClient (src/rpc), in the bench process" : "cinder's VolumeAPI (cinder.volume.rpcapi), /usr/bin/python3 + eventlet"}`);
    out.push(table(headers, rows));
    out.push('');
  }
  const cpuModel = cpus()[0]?.model ?? '?';
  out.push(
    `get_log_levels v3.12, prefix ${JSON.stringify(PREFIX)}: reply has ${meta.entries['cinder-volume']} LogLevel entries from cinder-volume, ` +
      `${meta.entries.cinderblock} from cinderblock. ${CALLS} calls per cell in ${ROUNDS} ABBA-alternated rounds, warm-up ${WARMUP}. ` +
      `CPU/call = the service's user+sys CPU time (whole process tree) per call at c=${CONC}. ` +
      `RSS = sum of VmRSS over the process tree after ${IDLE_S} s idle (PSS from smaps_rollup counts shared pages once). ` +
      `${cpus().length} CPUs (${cpuModel}), shared with other work.`,
  );
  out.push(
    `cinder-volume tree: ${idle['cinder-volume'].processes.map((p) => `${p.comm}[${p.pid}] ${mib(p.rssKiB)}`).join(' + ')}; ` +
      `cinderblock tree: ${idle.cinderblock.processes.map((p) => `${p.comm}[${p.pid}] ${mib(p.rssKiB)}`).join(' + ')}. ` +
      `RSS after the load: cinder-volume ${mib(afterLoad['cinder-volume'].rssKiB)}, cinderblock ${mib(afterLoad.cinderblock.rssKiB)}.`,
  );
  const failed = cells.filter((c) => c.errors > 0);
  if (failed.length > 0) {
    out.push(
      `WARNING: calls failed in ${failed.map((c) => `${c.client} c=${c.concurrency} ${c.service} (${c.errors})`).join(', ')}; ` +
        `first: ${failed[0]!.firstError}. Something disturbed the run (a broker restart?); its figures are not comparable. Run it again.`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);

  mkdirSync(path.dirname(JSON_OUT), { recursive: true });
  const json = {
    benchmark: 'rpc-bench',
    date: new Date().toISOString(),
    method: 'get_log_levels',
    version: '3.12',
    prefix: PREFIX,
    calls: CALLS,
    warmup: WARMUP,
    rounds: ROUNDS,
    concurrency: [1, CONC],
    idleSeconds: IDLE_S,
    disturbed: failed.length > 0,
    machine: { cpus: cpus().length, cpuModel, node: process.version },
    services: {
      'cinder-volume': { host: meta.cvHost, binary: '/usr/bin/cinder-volume', driver: 'cinder.volume.drivers.lvm.LVMVolumeDriver', driverInitialized: !meta.driverFailed, replyEntries: meta.entries['cinder-volume'] },
      cinderblock: { host: meta.cbHost, binary: 'node bin/cinderblock.js serve', driver: 'file', replyEntries: meta.entries.cinderblock },
    },
    idleMemory: idle,
    memoryAfterLoad: afterLoad,
    cells,
    ratios: Object.fromEntries(
      clientsRun.map((client) => [
        client,
        Object.fromEntries(
          [1, CONC].map((conc) => {
            const a = get(client, conc, 'cinderblock')!;
            const b = get(client, conc, 'cinder-volume')!;
            return [
              `c${conc}`,
              { callsPerSec: a.callsPerSec / b.callsPerSec, p50: a.p50Ms / b.p50Ms, p99: a.p99Ms / b.p99Ms, serviceCpuPerCall: a.serviceCpuMsPerCall / b.serviceCpuMsPerCall },
            ];
          }),
        ),
      ]),
    ),
    idleRssRatio: idle.cinderblock.rssKiB / idle['cinder-volume'].rssKiB,
    idlePssRatio: idle.cinderblock.pssKiB !== null && idle['cinder-volume'].pssKiB !== null ? idle.cinderblock.pssKiB / idle['cinder-volume'].pssKiB : null,
  };
  writeFileSync(JSON_OUT, `${JSON.stringify(json, null, 2)}\n`);
  log(`results written to ${path.relative(repoRoot, JSON_OUT)}`);
}

let finishing = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (finishing) {
      killAllNow();
      process.exit(130);
    }
    finishing = true;
    log(`${sig}: stopping everything this run started`);
    // Give the services a moment to stop and the run's queues to be deleted, then force it.
    setTimeout(() => {
      killAllNow();
      process.exit(130);
    }, 8000).unref();
    void Promise.all([...children].map((c) => stopTree(c, 5000)))
      .then(() => (runHosts.length ? deleteHostQueues(runHosts) : undefined))
      .catch(() => undefined)
      .finally(() => {
        killAllNow();
        process.exit(130);
      });
  });
}
process.on('exit', () => killAllNow());

main().then(
  () => {
    finishing = true;
    if (workDir && !KEEP) rmSync(workDir, { recursive: true, force: true });
    else if (KEEP) log(`kept ${workDir}`);
    process.exit(0);
  },
  (err: unknown) => {
    finishing = true;
    process.stderr.write(`rpc-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (workDir && !KEEP) rmSync(workDir, { recursive: true, force: true });
    process.exitCode = 1;
    process.exit(1);
  },
);
