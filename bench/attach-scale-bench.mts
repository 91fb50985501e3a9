// Attach, restart and memory at scale (issue 10 item 8): cinderblock with 10 and with 300 exports.
//
//   npm run build:ts                               # the agent runs from dist/
//   npx tsx bench/attach-scale-bench.mts           # full run (300 exports; 25-35 min on 2 cores)
//   CB_BENCH_EXPORTS=40 CB_BENCH_SAMPLES=8 CB_BENCH_SETTLE_S=5 npx tsx bench/attach-scale-bench.mts   # quick
//
// As root, with RabbitMQ, MariaDB (127.0.0.1:3306, root), Debian's cinder-api/scheduler and tgt.
// The real cinder-api and cinder-scheduler on a MariaDB database of the run's own (schema by the
// real `cinder-manage db sync`), a RabbitMQ vhost of its own, cinderblock as a process (the built
// `bin/cinderblock.js serve`, as an operator runs it) on the file pool (1 GiB volumes, sparse
// files), exporting through a tgtd this script starts (its own control port and portal).
//
// Phases (a volume is attached through cinder-api: POST /attachments with a connector, then
// os-complete; detached with DELETE /attachments/<id>):
//   1. idle: VmRSS of the agent (/proc/<pid>/status, every 5 s of CB_BENCH_SETTLE_S of quiet; the
//      last one counts), the V8 heap figures of its Prometheus endpoint (prom-client's nodejs_*
//      metrics, taken without a GC: they include garbage) and RSS by mapping (/proc/<pid>/smaps);
//      then the 300 + 2 volumes are created, CB_BENCH_WARMUP attaches and detaches of one volume
//      run (no export left), and idle is read again ("after a warm-up");
//   2. CB_BENCH_BASE (10) volumes attached (30 initiator hosts in all); CB_BENCH_SAMPLES attach
//      samples of one more volume (attach, os-complete, detach: each builds a new export, as a
//      first attach does), timed at cinder-api (the POST /attachments round trip) and in the agent
//      (its line "RPC call attachment_update finished in N ms", duration_ms), with the CPU time a
//      sample costs the agent, its tgtadm children and tgtd (/proc/<pid>/stat);
//   3. grow to CB_BENCH_EXPORTS (300) attached volumes, the same samples;
//   4. memory with 300 exports; every attachment deleted; memory back at 0 (same process);
//   5. the samples again: 10 attached, samples, grow to 300, samples. The samples run in the order
//      10, 300, 10, 300, so a load that drifts over the run falls on both sizes; the ratios are
//      taken over both rounds pooled;
//   6. restart A: SIGTERM, then a new agent, tgtd and its 300 targets kept (an upgrade or a crash
//      of the agent); restart B: SIGTERM, tgtd killed and started empty, new agent (a host reboot:
//      every target is rebuilt). For each: "serving" = from the spawn of the new process to the
//      first reply to get_log_levels, which this script sends to the backend's topic through
//      RabbitMQ every 250 ms (1 s timeout each) from the moment of spawn (the agent's "cinderblock
//      serving" line is reported too); "first attach" = an attachment of a fresh volume created at
//      the spawn (cinder-api's call waits in the queue) answered; "restored" = the agent's
//      "init_host recovery done" line. Then tgtadm is read: every volume attached must have its
//      target, LUN 1, one CHAP account and exactly its initiator in the ACL, and nothing else ours;
//   7. memory with 300 exports in the restarted process; every attachment deleted; memory back.
// The tgtadm ceiling is measured at 10 and at 300 targets: `tgtadm --op show --mode target` (the
// listing of every target, which a lookup has to read) with its parse, and `--mode sys` (one small
// request), spawned as the agent spawns them.
//
// Targets (issue 10 item 8): attach p50/p95 at 300 within 1.2x of 10; serving within 5 s of start;
// RSS back within 10 MiB of idle. The table prints each ratio and whether it holds.
//
// Env: CB_BENCH_EXPORTS (300), CB_BENCH_BASE (10), CB_BENCH_SAMPLES (30 per round),
// CB_BENCH_WARMUP (3 attach/detach cycles with no export, then the warmed-up idle reading; 0 =
// neither), CB_BENCH_SETTLE_S (60), CB_BENCH_CONCURRENCY (6: creates, attaches and detaches of the
// grow and shrink phases), CB_BENCH_RESTARTS ("A,B"; "" = none), CB_BENCH_AGENT_DEBUG (1 = agent at
// debug level: per-tgtadm timing in its log, slower), CB_BENCH_INSPECT (1 = the agent runs with
// --inspect on a free loopback port, and every memory reading also asks it, through
// bench/cdp-heap.mjs, for a full GC and process.memoryUsage() after it: the live heap; the GC
// changes what follows, so leave it off for the RSS figures), CB_BENCH_HEAP_SNAPSHOTS (a directory:
// with CB_BENCH_INSPECT, a heap snapshot at every memory reading, for bench/heap-snapshot-diff.mjs;
// taking one grows the agent's RSS), CB_BENCH_JSON (bench/results/attach-scale-bench.json; "" =
// none), CB_BENCH_KEEP_LOG (1 = keep the agent's log file even on success), CB_BENCH_DEADLINE_S
// (5400: past it the run stops and cleans up).
//
// Everything it starts (cinder-api, cinder-scheduler, the agent, tgtd, the vhost, the database, temp
// dirs) is removed at the end, on failure and on Ctrl-C too; a watchdog in its own session removes
// what is left if the script is killed (test/helpers/soak-watchdog.ts).
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { startAgentProcess, type AgentProcess } from '../test/helpers/agent-process.js';
import { createCinderDatabase, type TestCinderDb } from '../test/helpers/cinder-db.js';
import { cinderApi, startCinderStack, waitFor, WaitAborted, type CinderApi, type CinderStack } from '../test/helpers/cinder-stack.js';
import { freePort } from '../test/helpers/free-port.js';
import { createOwnVhost, type OwnVhost } from '../test/helpers/rabbit-vhost.js';
import { CleanupManifest, stopOnSignalsOrDeadline } from '../test/helpers/soak-watchdog.js';
import { startTgtd, tgtAvailable, type TgtdHandle } from '../test/helpers/tgtd.js';
import { parseShowTargets, type TgtTargetInfo } from '../drivers/targets/tgt/tgtadm-parse.js';
import { AmqpConnection, RpcClient } from '../src/rpc/index.js';
import { adminContext } from '../src/rpc/context.js';
import { VersionedObject } from '../src/rpc/ovo.js';
import { createLogger, setRootLogger } from '../src/log.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const num = (name: string, def: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${v}`);
  return n;
};
const EXPORTS = Math.max(2, Math.round(num('CB_BENCH_EXPORTS', 300)));
const BASE = Math.min(EXPORTS - 1, Math.max(1, Math.round(num('CB_BENCH_BASE', 10))));
const SAMPLES = Math.max(1, Math.round(num('CB_BENCH_SAMPLES', 30)));
const WARMUP = Math.round(num('CB_BENCH_WARMUP', 3));
const SETTLE_MS = num('CB_BENCH_SETTLE_S', 60) * 1000;
const CONCURRENCY = Math.max(1, Math.round(num('CB_BENCH_CONCURRENCY', 6)));
const RESTARTS = (process.env.CB_BENCH_RESTARTS ?? 'A,B').split(',').map((s) => s.trim()).filter(Boolean);
const AGENT_DEBUG = process.env.CB_BENCH_AGENT_DEBUG === '1';
const JSON_OUT = process.env.CB_BENCH_JSON ?? join(repoRoot, 'bench', 'results', 'attach-scale-bench.json');
const KEEP_LOG = process.env.CB_BENCH_KEEP_LOG === '1';
const DEADLINE_MS = num('CB_BENCH_DEADLINE_S', 5400) * 1000;
const INSPECT = process.env.CB_BENCH_INSPECT === '1';
const SNAPSHOT_DIR = process.env.CB_BENCH_HEAP_SNAPSHOTS ?? '';
const HOSTS = 30;
const PREFIX = 'iqn.2010-10.org.openstack:';
for (const r of RESTARTS) if (r !== 'A' && r !== 'B') throw new Error(`CB_BENCH_RESTARTS: unknown restart ${r} (A, B)`);

setRootLogger(createLogger({ level: 'warn', destination: 2, pretty: false }));

const T0 = Date.now();
const say = (s: string) => console.log(`[${((Date.now() - T0) / 1000).toFixed(1).padStart(7)} s] ${s}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

// ---- abort: Ctrl-C, SIGTERM, the deadline ---------------------------------------------------------

const stop = stopOnSignalsOrDeadline(DEADLINE_MS);
const checkAbort = () => {
  if (stop.signal.aborted) throw new Error(stop.deadlineHit() ? 'deadline reached' : 'interrupted');
};

// ---- statistics ---------------------------------------------------------------------------------

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  // nearest rank: p95 of 30 samples is the 29th
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

interface Summary {
  n: number;
  p50: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}
function summary(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    p50: r1(quantile(xs, 0.5)),
    p95: r1(quantile(xs, 0.95)),
    min: r1(Math.min(...xs)),
    max: r1(Math.max(...xs)),
    mean: r1(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)),
  };
}

// ---- the run ------------------------------------------------------------------------------------

interface MemReading {
  label: string;
  exports: number;
  rss_mib: number;
  /** prom-client, from the agent's /metrics */
  heap_used_mib: number | null;
  heap_total_mib: number | null;
  external_mib: number | null;
  /** VmRSS every 5 s of the settle period (MiB) */
  rss_series: number[];
  /** RSS by kind of mapping (/proc/<pid>/smaps): brk heap (glibc's main arena), anonymous, files */
  smaps_mib: Record<string, number>;
  /** CB_BENCH_INSPECT: after a full GC (process.memoryUsage() in the agent) */
  gc: { heap_used_mib: number; heap_total_mib: number; external_mib: number; array_buffers_mib: number; rss_mib: number } | null;
  loadavg: number[];
}

interface SampleSet {
  exports: number;
  /**
   * CPU time per sample (attach + os-complete + detach, and what the agent did meanwhile), from
   * /proc/<pid>/stat: the agent itself, its reaped children (the tgtadm processes) and tgtd. Unlike
   * the times, this does not grow when other work on the machine makes the agent wait for a CPU.
   */
  cpu_ms_per_sample: { agent: number; tgtadm: number; tgtd: number };
  api_ms: number[];
  agent_ms: number[];
  detach_api_ms: number[];
  api: Summary;
  agent: Summary;
  detach_api: Summary;
  loadavg_before: number[];
  loadavg_after: number[];
}

interface RestartResult {
  kind: 'A' | 'B';
  what: string;
  exports: number;
  /** spawn to the first get_log_levels reply */
  serving_ms: number;
  /** spawn to the agent's "cinderblock serving" line */
  serving_log_ms: number;
  /** spawn to the answer of an attachment created at spawn */
  first_attach_ms: number | null;
  first_attach_status: number | null;
  /** spawn to "init_host recovery done" */
  restored_ms: number;
  /** the ms field of that line (from init_host's start) */
  restore_log_ms: number | null;
  restore_counts: Record<string, unknown>;
  /** what tgtadm shows once restored */
  targets_ok: number;
  targets_bad: string[];
  loadavg: number[];
}

interface TgtadmCost {
  targets: number;
  show_targets_ms: Summary;
  show_targets_bytes: number;
  parse_ms: Summary;
  show_sys_ms: Summary;
}

const result = {
  bench: 'attach-scale-bench',
  started_at: new Date(T0).toISOString(),
  host: { cpus: (await import('node:os')).cpus().length, node: process.version },
  settings: { exports: EXPORTS, base: BASE, samples: SAMPLES, warmup: WARMUP, settle_s: SETTLE_MS / 1000, concurrency: CONCURRENCY, restarts: RESTARTS, agent_debug: AGENT_DEBUG, inspect: INSPECT },
  memory: [] as MemReading[],
  samples: [] as SampleSet[],
  grow: [] as Array<{ exports_before: number; api_ms: number }>,
  /** every sample of both rounds, per number of exports */
  pooled: {} as Record<number, { api: Summary; agent: Summary }>,
  restarts: [] as RestartResult[],
  tgtadm: [] as TgtadmCost[],
  targets: {} as Record<string, { value: number; target: string; met: boolean }>,
  phases_s: {} as Record<string, number>,
  error: null as string | null,
  log_file: null as string | null,
};

const manifest = new CleanupManifest('cinderblock-attach-scale-bench');
let db: TestCinderDb | null = null;
let vhost: OwnVhost | null = null;
let tgtd: TgtdHandle | null = null;
let stack: CinderStack | null = null;
let agent: AgentProcess | null = null;
let api: CinderApi;
let workDir = '';
let agentLog: WriteStream | null = null;
let rpcConn: AmqpConnection | null = null;
let rpc: RpcClient | null = null;
let metricsPort = 0;
let inspectPort = 0;
let phaseT = Date.now();
const phase = (name: string) => {
  result.phases_s[name] = r1((Date.now() - phaseT) / 1000);
  phaseT = Date.now();
};

function startAgent(): AgentProcess {
  const a = startAgentProcess(stack!.confPath, [], INSPECT ? { NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}` } : {});
  const pid = a.child.pid!;
  manifest.add({ kind: 'pid', pid, word: stack!.confPath });
  const out = (d: Buffer) => agentLog?.write(d);
  a.child.stdout!.on('data', out);
  a.child.stderr!.on('data', out);
  a.child.once('exit', () => manifest.remove((e) => e.kind === 'pid' && e.pid === pid));
  return a;
}

async function stopAgent(): Promise<void> {
  if (!agent) return;
  const code = await agent.stop('SIGTERM');
  say(`agent stopped (exit ${code})`);
  agent = null;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return r1(Number(m[1]) / 1024);
}

/**
 * Resident memory by mapping kind: `[heap]` (glibc's main arena, brk), `anon` (anonymous mappings:
 * V8's heap pages, glibc's thread arenas and mmapped chunks, thread stacks), `file` (the node binary,
 * libraries, ICU data), others by name.
 */
async function smaps(pid: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let kind = 'anon';
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1]!.trim();
      kind = name === '' ? 'anon' : name.startsWith('[') ? name : 'file';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]);
  }
  return Object.fromEntries(Object.entries(out).filter(([, kb]) => kb >= 1024).map(([k, kb]) => [k, r1(kb / 1024)]));
}

async function metrics(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) });
    for (const line of (await res.text()).split('\n')) {
      const m = /^(cinderblock_nodejs_(?:heap_size_used_bytes|heap_size_total_bytes|external_memory_bytes)|cinderblock_process_resident_memory_bytes)\s+([0-9.e+]+)$/.exec(line);
      if (m) out[m[1]!] = Number(m[2]);
    }
  } catch {
    // metrics are a bonus: RSS comes from /proc
  }
  return out;
}

/** A full GC in the agent through the inspector (bench/cdp-heap.mjs), and its figures after it. */
async function gcFigures(label: string): Promise<MemReading['gc']> {
  const args = ['--experimental-websocket', join(repoRoot, 'bench', 'cdp-heap.mjs'), `127.0.0.1:${inspectPort}`];
  if (SNAPSHOT_DIR) {
    mkdirSync(SNAPSHOT_DIR, { recursive: true });
    args.push(join(SNAPSHOT_DIR, `${String(result.memory.length).padStart(2, '0')}-${label.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}.heapsnapshot`));
  }
  const r = await execa(process.execPath, args, { reject: false, timeout: 180_000, env: { NODE_OPTIONS: '' } });
  if (r.exitCode !== 0) {
    say(`  (no GC figures: ${String(r.stderr).trim().slice(0, 200)})`);
    return null;
  }
  const { after } = JSON.parse(String(r.stdout).trim().split('\n').pop()!) as { after: Record<string, number> };
  const m = (k: string) => r1((after[k] ?? 0) / MiB);
  return { heap_used_mib: m('heapUsed'), heap_total_mib: m('heapTotal'), external_mib: m('external'), array_buffers_mib: m('arrayBuffers'), rss_mib: m('rss') };
}

async function memory(label: string, exports: number): Promise<MemReading> {
  checkAbort();
  say(`${label}: settling ${SETTLE_MS / 1000} s`);
  const pid = agent!.child.pid!;
  const series: number[] = [];
  for (let waited = 0; waited < SETTLE_MS; waited += 5000) {
    await sleep(Math.min(5000, SETTLE_MS - waited));
    checkAbort();
    series.push(await rssMiB(pid));
  }
  const rss = await rssMiB(pid);
  const m = await metrics();
  const mib = (k: string) => (m[k] === undefined ? null : r1(m[k]! / MiB));
  const reading: MemReading = {
    label,
    exports,
    rss_mib: rss,
    rss_series: series,
    heap_used_mib: mib('cinderblock_nodejs_heap_size_used_bytes'),
    heap_total_mib: mib('cinderblock_nodejs_heap_size_total_bytes'),
    external_mib: mib('cinderblock_nodejs_external_memory_bytes'),
    smaps_mib: await smaps(pid),
    gc: INSPECT ? await gcFigures(label) : null,
    loadavg: loadavg().map(r2),
  };
  result.memory.push(reading);
  say(`${label}: RSS ${rss} MiB, heap used ${reading.heap_used_mib} MiB of ${reading.heap_total_mib}, external ${reading.external_mib} MiB`);
  say(`${label}: RSS by mapping ${JSON.stringify(reading.smaps_mib)}; every 5 s: ${series.join(' ')}`);
  if (reading.gc) say(`${label}: after a full GC: heap used ${reading.gc.heap_used_mib} MiB of ${reading.gc.heap_total_mib}, external ${reading.gc.external_mib} MiB, RSS ${reading.gc.rss_mib} MiB`);
  return reading;
}

// ---- cinder-api operations ----------------------------------------------------------------------

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  checkAbort();
  return api(method, path, body);
}

async function waitStatus(id: string, status: string, timeoutMs = 120_000): Promise<Record<string, any>> {
  return waitFor(`volume ${id} to be ${status}`, timeoutMs, async () => {
    checkAbort();
    const v = (await api('GET', `/volumes/${id}`)).body?.volume;
    if (typeof v?.status === 'string' && v.status.startsWith('error')) throw new WaitAborted(`volume ${id} went to ${v.status}`);
    return v?.status === status ? (v as Record<string, any>) : undefined;
  });
}

async function createVolume(name: string): Promise<string> {
  const r = await call('POST', '/volumes', { volume: { size: 1, name } });
  if (r.status !== 202) throw new Error(`create volume ${name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  await waitStatus(r.body.volume.id, 'available');
  return r.body.volume.id as string;
}

function connector(host: string) {
  return { initiator: `iqn.1994-05.com.redhat:${host}`, ip: '127.0.0.1', host, platform: 'x86_64', os_type: 'linux2', multipath: false };
}

interface Attached {
  volumeId: string;
  attachmentId: string;
  host: string;
}

/** attachment create with a connector (timed), then os-complete. */
async function attach(volumeId: string, host: string): Promise<{ att: Attached; apiMs: number }> {
  const t0 = performance.now();
  const r = await call('POST', '/attachments', { attachment: { volume_uuid: volumeId, connector: connector(host), mode: 'rw' } });
  const apiMs = performance.now() - t0;
  if (r.status !== 200) throw new Error(`attach ${volumeId} for ${host}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}\n${agent?.text().slice(-2000) ?? ''}`);
  const id = r.body.attachment.id as string;
  const c = await call('POST', `/attachments/${id}/action`, { 'os-complete': null });
  if (c.status !== 204) throw new Error(`os-complete ${id}: ${c.status} ${JSON.stringify(c.body).slice(0, 300)}`);
  return { att: { volumeId, attachmentId: id, host }, apiMs };
}

async function detach(a: Attached): Promise<number> {
  const t0 = performance.now();
  const r = await call('DELETE', `/attachments/${a.attachmentId}`);
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`detach ${a.attachmentId}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}\n${agent?.text().slice(-2000) ?? ''}`);
  await waitStatus(a.volumeId, 'available');
  return ms;
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const worker = async () => {
    while (next < items.length && failed === null) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== null) throw failed;
}

/** The agent's duration_ms of the attachment_update that finished after line `from`. */
function agentAttachMs(from: number): number | null {
  const lines = agent!.lines;
  for (let i = lines.length - 1; i >= from; i--) {
    const l = lines[i]!;
    if (typeof l.msg === 'string' && l.msg.startsWith('RPC call attachment_update finished') && typeof l.duration_ms === 'number') return l.duration_ms;
  }
  return null;
}

/** utime+stime and cutime+cstime of a process, in ms (clock ticks of 10 ms). */
async function cpuMs(pid: number | null | undefined): Promise<{ self: number; children: number }> {
  if (!pid) return { self: 0, children: 0 };
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    // after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return { self: (f[11]! + f[12]!) * 10, children: (f[13]! + f[14]!) * 10 };
  } catch {
    return { self: 0, children: 0 };
  }
}

async function sampleAttaches(volumeId: string, exports: number, count: number, record: boolean): Promise<SampleSet | null> {
  const api_ms: number[] = [];
  const agent_ms: number[] = [];
  const detach_api_ms: number[] = [];
  const before = loadavg().map(r2);
  const agentCpu0 = await cpuMs(agent!.child.pid);
  const tgtdCpu0 = await cpuMs(tgtd!.pid());
  for (let i = 0; i < count; i++) {
    const from = agent!.lines.length;
    const { att, apiMs } = await attach(volumeId, 'scale-sample');
    // the agent's line is written after its reply is sent: give it a moment
    let agentMs = agentAttachMs(from);
    for (let k = 0; agentMs === null && k < 50; k++) {
      await sleep(20);
      agentMs = agentAttachMs(from);
    }
    await waitStatus(volumeId, 'in-use');
    const dMs = await detach(att);
    api_ms.push(apiMs);
    if (agentMs !== null) agent_ms.push(agentMs);
    detach_api_ms.push(dMs);
  }
  if (!record) return null;
  const agentCpu1 = await cpuMs(agent!.child.pid);
  const tgtdCpu1 = await cpuMs(tgtd!.pid());
  const set: SampleSet = {
    exports,
    cpu_ms_per_sample: {
      agent: r1((agentCpu1.self - agentCpu0.self) / count),
      tgtadm: r1((agentCpu1.children - agentCpu0.children) / count),
      tgtd: r1((tgtdCpu1.self - tgtdCpu0.self) / count),
    },
    api_ms: api_ms.map(r1),
    agent_ms,
    detach_api_ms: detach_api_ms.map(r1),
    api: summary(api_ms),
    agent: summary(agent_ms),
    detach_api: summary(detach_api_ms),
    loadavg_before: before,
    loadavg_after: loadavg().map(r2),
  };
  result.samples.push(set);
  say(
    `attach at ${exports} exports: cinder-api p50 ${set.api.p50} ms p95 ${set.api.p95} ms; agent p50 ${set.agent.p50} ms p95 ${set.agent.p95} ms (n=${set.api.n}); detach p50 ${set.detach_api.p50} ms; ` +
      `CPU per sample: agent ${set.cpu_ms_per_sample.agent} ms, tgtadm ${set.cpu_ms_per_sample.tgtadm} ms, tgtd ${set.cpu_ms_per_sample.tgtd} ms`,
  );
  return set;
}

// ---- tgtd as tgtadm shows it --------------------------------------------------------------------

async function showTargets(): Promise<TgtTargetInfo[]> {
  const r = await tgtd!.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show');
  if (r.exitCode !== 0) throw new Error(`tgtadm show: ${r.stderr}`);
  return parseShowTargets(r.stdout);
}

async function tgtadmCost(targets: number): Promise<TgtadmCost> {
  const show: number[] = [];
  const parse: number[] = [];
  const sys: number[] = [];
  let bytes = 0;
  const args = ['-C', String(tgtd!.controlPort), '--lld', 'iscsi', '--mode', 'target', '--op', 'show'];
  for (let i = 0; i < 20; i++) {
    // as the agent runs it: execa, LC_ALL=C, output collected
    let t0 = performance.now();
    const r = await execa('tgtadm', args, { reject: false, stdin: 'ignore', env: { LC_ALL: 'C' } });
    show.push(performance.now() - t0);
    const text = String(r.stdout);
    bytes = text.length;
    t0 = performance.now();
    parseShowTargets(text);
    parse.push(performance.now() - t0);
    t0 = performance.now();
    await execa('tgtadm', ['-C', String(tgtd!.controlPort), '--op', 'show', '--mode', 'sys'], { reject: false, stdin: 'ignore', env: { LC_ALL: 'C' } });
    sys.push(performance.now() - t0);
  }
  const c: TgtadmCost = { targets, show_targets_ms: summary(show), show_targets_bytes: bytes, parse_ms: summary(parse), show_sys_ms: summary(sys) };
  result.tgtadm.push(c);
  say(`tgtadm at ${targets} targets: show target p50 ${c.show_targets_ms.p50} ms (${bytes} bytes, parse p50 ${c.parse_ms.p50} ms), show sys p50 ${c.show_sys_ms.p50} ms`);
  return c;
}

/** Every attached volume has its target with LUN 1, a CHAP account and exactly its initiator. */
async function checkTargets(attached: readonly Attached[]): Promise<{ ok: number; bad: string[] }> {
  const byIqn = new Map((await showTargets()).map((t) => [t.iqn, t]));
  const bad: string[] = [];
  let ok = 0;
  for (const a of attached) {
    const iqn = `${PREFIX}volume-${a.volumeId}`;
    const t = byIqn.get(iqn);
    const want = connector(a.host).initiator;
    if (!t) bad.push(`${a.volumeId}: no target`);
    else if (!t.luns.some((l) => l.lun === 1 && l.backingStorePath)) bad.push(`${a.volumeId}: no LUN 1`);
    else if (t.accounts.length !== 1) bad.push(`${a.volumeId}: ${t.accounts.length} CHAP accounts`);
    else if (t.acls.length !== 1 || t.acls[0] !== want) bad.push(`${a.volumeId}: ACL [${t.acls.join(', ')}], want [${want}]`);
    else ok += 1;
    byIqn.delete(iqn);
  }
  for (const iqn of byIqn.keys()) if (iqn.startsWith(PREFIX)) bad.push(`${iqn}: a target no attachment needs`);
  return { ok, bad };
}

// ---- restart ------------------------------------------------------------------------------------

function volumeTarget() {
  const host = `${stack!.host}@file`;
  return { topic: `cinder-volume.${host}`, server: stack!.host };
}

async function firstRpcAnswer(t0: number, timeoutMs: number): Promise<number> {
  const args = { log_request: new VersionedObject('LogLevel', {}).set('prefix', 'cinder') };
  const ctx = adminContext().toDict();
  for (;;) {
    checkAbort();
    try {
      await rpc!.call(volumeTarget(), 'get_log_levels', args, ctx, '3.12', { timeout: 1 });
      return performance.now() - t0;
    } catch {
      if (performance.now() - t0 > timeoutMs) throw new Error(`the agent did not answer get_log_levels within ${timeoutMs} ms`);
      await sleep(250);
    }
  }
}

async function restart(kind: 'A' | 'B', attached: readonly Attached[], fresh: string): Promise<RestartResult> {
  checkAbort();
  const what = kind === 'A' ? `agent restarted, tgtd and its ${attached.length} targets kept` : `agent restarted after tgtd was restarted empty (a host reboot: every target rebuilt)`;
  say(`restart ${kind}: ${what}`);
  await stopAgent();
  if (kind === 'B') {
    await tgtd!.kill();
    await tgtd!.start();
    manifest.remove((e) => e.kind === 'pid' && e.word === `portal=127.0.0.1:${tgtd!.port}`);
    manifest.add({ kind: 'pid', pid: tgtd!.pid()!, word: `portal=127.0.0.1:${tgtd!.port}` });
    if ((await showTargets()).length !== 0) throw new Error('tgtd restarted with targets');
  }
  const t0 = performance.now();
  agent = startAgent();
  const a = agent;
  const serving = firstRpcAnswer(t0, 600_000);
  const servingLog = a.waitForLog(/^cinderblock serving/, 600_000).then(() => performance.now() - t0);
  const firstAttach = (async () => {
    const r = await api('POST', '/attachments', { attachment: { volume_uuid: fresh, connector: connector('scale-restart'), mode: 'rw' } });
    return { ms: performance.now() - t0, status: r.status, id: (r.body?.attachment?.id as string | undefined) ?? null };
  })();
  const restoredLine = a.waitForLog(/^init_host recovery done/, 1_200_000);
  const [servingMs, servingLogMs, fa, line] = await Promise.all([serving, servingLog, firstAttach, restoredLine]);
  const restoredMs = performance.now() - t0;
  // the line arrives a little after the restore ended; its own ms is from init_host's start
  const check = await checkTargets([...attached, ...(fa.id ? [{ volumeId: fresh, attachmentId: fa.id, host: 'scale-restart' }] : [])]);
  if (fa.id) {
    await call('POST', `/attachments/${fa.id}/action`, { 'os-complete': null });
    await detach({ volumeId: fresh, attachmentId: fa.id, host: 'scale-restart' });
  }
  const res: RestartResult = {
    kind,
    what,
    exports: attached.length,
    serving_ms: Math.round(servingMs),
    serving_log_ms: Math.round(servingLogMs),
    first_attach_ms: Math.round(fa.ms),
    first_attach_status: fa.status,
    restored_ms: Math.round(restoredMs),
    restore_log_ms: typeof line.ms === 'number' ? line.ms : null,
    restore_counts: { exported: line.exported, failures: line.failures, volumes: line.volumes },
    targets_ok: check.ok,
    targets_bad: check.bad.slice(0, 20),
    loadavg: loadavg().map(r2),
  };
  result.restarts.push(res);
  say(
    `restart ${kind}: serving after ${res.serving_ms} ms (log line ${res.serving_log_ms} ms), first attach answered after ${res.first_attach_ms} ms (${fa.status}), ` +
      `restored after ${res.restored_ms} ms (${JSON.stringify(res.restore_counts)}); tgtadm: ${check.ok} targets right, ${check.bad.length} wrong`,
  );
  if (check.bad.length) say(`  wrong: ${check.bad.slice(0, 5).join('; ')}`);
  return res;
}

// ---- main ---------------------------------------------------------------------------------------

async function run(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (tgtd, /var/run/tgtd)');
  if (!(await tgtAvailable())) throw new Error('tgtd is not installed');
  workDir = await mkdtemp(join(tmpdir(), 'cb-scale-bench-'));
  manifest.add({ kind: 'dir', path: workDir });
  manifest.startWatchdog();
  const logFile = join(workDir, 'agent.log');
  agentLog = createWriteStream(logFile);

  db = await createCinderDatabase('mysql');
  manifest.add({ kind: 'db', name: db.database! });
  vhost = await createOwnVhost('cb-scale');
  manifest.add({ kind: 'vhost', name: vhost.name });
  tgtd = await startTgtd({ port: 13600, logDir: workDir });
  manifest.add({ kind: 'pid', pid: tgtd.pid()!, word: `portal=127.0.0.1:${tgtd.port}` });
  for (const f of [`/var/run/tgtd/socket.${tgtd.controlPort}`, `/var/run/tgtd/socket.${tgtd.controlPort}.lock`]) manifest.add({ kind: 'file', path: f });
  checkAbort();
  metricsPort = await freePort();
  inspectPort = await freePort();
  stack = await startCinderStack({
    apiPort: await freePort(),
    transportUrl: vhost.transportUrl,
    databaseUrl: db.url,
    defaults: AGENT_DEBUG ? { debug: 'true' } : {},
    backends: {
      file: { volume_driver: 'file', volume_backend_name: 'file', target_helper: 'tgtadm', target_ip_address: '127.0.0.1', target_port: String(tgtd.port) },
    },
    extraSections: { cinderblock: { tgt_control_port: String(tgtd.controlPort), metrics_listen: `127.0.0.1:${metricsPort}` } },
  });
  manifest.add({ kind: 'dir', path: stack.dir });
  api = cinderApi(stack.apiUrl, { timeoutMs: 300_000 });
  rpcConn = new AmqpConnection(vhost.transportUrl, { connectionName: `attach-scale-bench:${process.pid}` });
  await rpcConn.start(10_000);
  rpc = new RpcClient({ connection: rpcConn, name: 'attach-scale-bench' });

  agent = startAgent();
  await agent.waitForLog(/serving \d+ backend/, 120_000);
  await waitFor('the scheduler to know the pool', 60_000, async () => ((await api('GET', '/scheduler-stats/get_pools')).body?.pools?.length ? true : undefined));
  // cinder's default quota class (from db sync) allows 10 volumes and 1000 GiB
  const q = await api('PUT', '/os-quota-sets/admin', { quota_set: { volumes: -1, gigabytes: -1 } });
  if (q.status !== 200) throw new Error(`quota: ${q.status} ${JSON.stringify(q.body).slice(0, 300)}`);
  phase('setup');
  say(`stack up: cinder-api ${stack.apiUrl}, tgtd control port ${tgtd.controlPort}, agent pid ${agent.child.pid}`);

  // 1. idle
  const idle = await memory('idle (0 exports, fresh start)', 0);
  phase('idle');

  // volumes: the base, the rest, one for the samples, one for the restart's first attach
  say(`creating ${EXPORTS + 2} volumes of 1 GiB (concurrency ${CONCURRENCY})`);
  const ids: string[] = new Array<string>(EXPORTS);
  await forEachLimited([...Array(EXPORTS).keys()], CONCURRENCY, async (i) => {
    ids[i] = await createVolume(`scale-${i}`);
    if ((i + 1) % 50 === 0) say(`  ${i + 1} created`);
  });
  const sampleVol = await createVolume('scale-sample');
  const freshVol = await createVolume('scale-fresh');
  phase('create volumes');

  // warm-up: a few attaches and detaches with no export left, so that what the first attaches load
  // (code, the tgt helper's first use, tgtd's start-up) is in both idle readings
  if (WARMUP > 0) {
    await sampleAttaches(sampleVol, 0, WARMUP, false);
    await memory('idle (0 exports, after a warm-up)', 0);
    phase('warm-up');
  }

  // 2. the base, then samples at BASE exports
  const attached: Attached[] = [];
  const hostOf = (i: number) => `scale-h${String(i % HOSTS).padStart(2, '0')}`;
  for (let i = 0; i < BASE; i++) attached.push((await attach(ids[i]!, hostOf(i))).att);
  await tgtadmCost(BASE);
  await sampleAttaches(sampleVol, BASE, SAMPLES, true);
  phase(`samples at ${BASE}`);

  // 3. grow, then samples at EXPORTS
  const grow = async (from: number) => {
    say(`attaching volumes ${from}..${EXPORTS - 1} (concurrency ${CONCURRENCY})`);
    await forEachLimited([...Array(EXPORTS - from).keys()].map((k) => k + from), CONCURRENCY, async (i) => {
      const before = attached.length;
      const { att, apiMs } = await attach(ids[i]!, hostOf(i));
      attached.push(att);
      result.grow.push({ exports_before: before, api_ms: r1(apiMs) });
      if (attached.length % 50 === 0) say(`  ${attached.length} attached`);
    });
  };
  await grow(BASE);
  phase(`grow to ${EXPORTS}`);
  await tgtadmCost(EXPORTS);
  await sampleAttaches(sampleVol, EXPORTS, SAMPLES, true);
  phase(`samples at ${EXPORTS}`);

  // 4. memory with EXPORTS, then all removed
  const full1 = await memory(`${EXPORTS} exports`, EXPORTS);
  const shrink = async () => {
    say(`detaching all ${attached.length} (concurrency ${CONCURRENCY})`);
    await forEachLimited([...attached], CONCURRENCY, async (a) => {
      await detach(a);
    });
    attached.length = 0;
    const left = (await showTargets()).filter((t) => t.iqn.startsWith(PREFIX));
    if (left.length) throw new Error(`${left.length} targets left after every attachment was deleted`);
  };
  await shrink();
  phase('detach all');
  const back1 = await memory('back to 0 exports (same process)', 0);

  // 5. the samples again, at BASE then at EXPORTS (ABAB: a load that drifts over the run falls on both)
  for (let i = 0; i < BASE; i++) attached.push((await attach(ids[i]!, hostOf(i))).att);
  await sampleAttaches(sampleVol, BASE, SAMPLES, true);
  phase(`samples at ${BASE} (second round)`);
  await grow(BASE);
  phase(`grow to ${EXPORTS} again`);
  await sampleAttaches(sampleVol, EXPORTS, SAMPLES, true);
  phase(`samples at ${EXPORTS} (second round)`);

  // 6. restarts with EXPORTS
  const restartResults: RestartResult[] = [];
  let backAfterRestart: MemReading | null = null;
  if (RESTARTS.length) {
    for (const k of RESTARTS) {
      restartResults.push(await restart(k as 'A' | 'B', attached, freshVol));
      phase(`restart ${k}`);
    }
    // 7. memory in the restarted process
    await memory(`${EXPORTS} exports (restarted process, after its restore)`, EXPORTS);
    await shrink();
    phase('detach all (restarted process)');
    backAfterRestart = await memory('back to 0 exports (restarted process)', 0);
  }

  // targets: both rounds of samples pooled per scale
  const t = result.targets;
  const pooled = (exports: number) => {
    const sets = result.samples.filter((x) => x.exports === exports);
    return { api: summary(sets.flatMap((x) => x.api_ms)), agent: summary(sets.flatMap((x) => x.agent_ms)) };
  };
  const at10 = pooled(BASE);
  const atN = pooled(EXPORTS);
  result.pooled = { [BASE]: at10, [EXPORTS]: atN };
  const ratio = (a: number, b: number) => r2(a / b);
  for (const [what, q] of [['p50', 'p50'], ['p95', 'p95']] as const) {
    t[`attach ${what} at ${EXPORTS} / at ${BASE} (cinder-api, both rounds)`] = { value: ratio(atN.api[q], at10.api[q]), target: '<= 1.2', met: atN.api[q] / at10.api[q] <= 1.2 };
  }
  const cpu = (exports: number) => {
    const sets = result.samples.filter((x) => x.exports === exports);
    return sets.reduce((a, x) => a + x.cpu_ms_per_sample.agent + x.cpu_ms_per_sample.tgtadm + x.cpu_ms_per_sample.tgtd, 0) / Math.max(1, sets.length);
  };
  t[`CPU per sample (agent + tgtadm + tgtd) at ${EXPORTS} / at ${BASE}`] = { value: ratio(cpu(EXPORTS), cpu(BASE)), target: 'measured', met: true };
  for (const [what, q] of [['p50', 'p50'], ['p95', 'p95']] as const) {
    t[`attach ${what} at ${EXPORTS} / at ${BASE} (agent, both rounds)`] = { value: ratio(atN.agent[q], at10.agent[q]), target: '<= 1.2', met: atN.agent[q] / at10.agent[q] <= 1.2 };
  }
  for (const r of restartResults) {
    t[`restart ${r.kind}: spawn to serving (s)`] = { value: r2(r.serving_ms / 1000), target: '<= 5', met: r.serving_ms <= 5000 };
    t[`restart ${r.kind}: exports right after the restore`] = { value: r.targets_ok, target: `= ${r.exports + 1}`, met: r.targets_bad.length === 0 && r.targets_ok === r.exports + 1 };
  }
  t['RSS back - idle, same process (MiB)'] = { value: r1(back1.rss_mib - idle.rss_mib), target: '<= 10', met: back1.rss_mib - idle.rss_mib <= 10 };
  const warm = result.memory.find((m) => m.label.startsWith('idle (0 exports, after'));
  if (warm) t['RSS back - warmed-up idle, same process (MiB)'] = { value: r1(back1.rss_mib - warm.rss_mib), target: 'measured', met: true };
  if (backAfterRestart) t['RSS back - idle, restarted process (MiB)'] = { value: r1(backAfterRestart.rss_mib - idle.rss_mib), target: '<= 10', met: backAfterRestart.rss_mib - idle.rss_mib <= 10 };
  t[`RSS per export at ${EXPORTS} (KiB)`] = { value: Math.round(((full1.rss_mib - idle.rss_mib) * 1024) / EXPORTS), target: 'measured', met: true };
}

function table(): string {
  const lines: string[] = [];
  const row = (...cells: Array<string | number | null>) => lines.push(`| ${cells.map((c) => (c === null ? '' : String(c))).join(' | ')} |`);
  lines.push('', `attach-scale-bench, ${result.started_at}, ${result.host.cpus} CPUs, node ${result.host.node}`, '');
  row('attach', 'exports', 'n', 'cinder-api p50 ms', 'cinder-api p95 ms', 'agent p50 ms', 'agent p95 ms', 'detach p50 ms', 'CPU ms per sample: agent / tgtadm / tgtd', 'load before/after');
  row('---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---');
  result.samples.forEach((s, i) => {
    const c = s.cpu_ms_per_sample;
    row(`round ${i < 2 ? 1 : 2}`, s.exports, s.api.n, s.api.p50, s.api.p95, s.agent.p50, s.agent.p95, s.detach_api.p50, `${c.agent} / ${c.tgtadm} / ${c.tgtd}`, `${s.loadavg_before[0]} / ${s.loadavg_after[0]}`);
  });
  for (const [exports, p] of Object.entries(result.pooled)) row('both rounds', exports, p.api.n, p.api.p50, p.api.p95, p.agent.p50, p.agent.p95, null, null, null);
  lines.push('');
  row('tgtadm', 'targets', 'show target p50 ms', 'show target p95 ms', 'bytes', 'parse p50 ms', 'show sys p50 ms');
  row('---', '---:', '---:', '---:', '---:', '---:', '---:');
  for (const c of result.tgtadm) row('', c.targets, c.show_targets_ms.p50, c.show_targets_ms.p95, c.show_targets_bytes, c.parse_ms.p50, c.show_sys_ms.p50);
  lines.push('');
  row('restart', 'exports', 'serving s', 'log "serving" s', 'first attach s', 'restored s', 'restore (log) s', 'targets right', 'load');
  row('---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---');
  for (const r of result.restarts) {
    row(`${r.kind}: ${r.what}`, r.exports, r2(r.serving_ms / 1000), r2(r.serving_log_ms / 1000), r.first_attach_ms === null ? null : r2(r.first_attach_ms / 1000), r2(r.restored_ms / 1000), r.restore_log_ms === null ? null : r2(r.restore_log_ms / 1000), `${r.targets_ok}${r.targets_bad.length ? ` (${r.targets_bad.length} wrong)` : ''}`, r.loadavg[0] ?? null);
  }
  lines.push('');
  row('memory', 'exports', 'RSS MiB', 'heap used MiB', 'heap total MiB', 'external MiB', 'after GC: heap used / total MiB', 'after GC: RSS MiB', 'load');
  row('---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---');
  for (const m of result.memory) {
    row(m.label, m.exports, m.rss_mib, m.heap_used_mib, m.heap_total_mib, m.external_mib, m.gc ? `${m.gc.heap_used_mib} / ${m.gc.heap_total_mib}` : null, m.gc?.rss_mib ?? null, m.loadavg[0] ?? null);
  }
  lines.push('');
  row('target', 'value', 'wanted', 'met');
  row('---', '---:', '---', '---');
  for (const [k, v] of Object.entries(result.targets)) row(k, v.value, v.target, v.target === 'measured' ? '' : v.met ? 'yes' : 'NO');
  if (result.error) lines.push('', `run failed: ${result.error}`);
  return lines.join('\n');
}

async function cleanup(): Promise<void> {
  say('cleaning up');
  await stopAgent().catch((err: unknown) => console.error(`stopping the agent: ${String(err)}`));
  await rpc?.close().catch(() => undefined);
  await rpcConn?.close().catch(() => undefined);
  await stack?.stop().catch((err: unknown) => console.error(`stopping cinder: ${String(err)}`));
  await tgtd?.stop().catch((err: unknown) => console.error(`stopping tgtd: ${String(err)}`));
  await vhost?.drop().catch(() => undefined);
  await db?.drop().catch(() => undefined);
  await new Promise<void>((r) => (agentLog ? agentLog.end(() => r()) : r()));
}

let exitCode = 0;
try {
  await run();
} catch (err) {
  result.error = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 500) : String(err);
  console.error(err);
  exitCode = stop.interrupted() ? 130 : stop.deadlineHit() ? 3 : 2;
} finally {
  await cleanup();
}
if (workDir) {
  if (exitCode !== 0 || KEEP_LOG) {
    const kept = join(tmpdir(), `cb-scale-bench-agent-${process.pid}.log`);
    await execa('cp', [join(workDir, 'agent.log'), kept], { reject: false });
    result.log_file = kept;
    console.log(`agent log kept in ${kept}`);
  }
  await rm(workDir, { recursive: true, force: true });
}
manifest.done();
stop.clear();
console.log(table());
if (JSON_OUT) {
  mkdirSync(dirname(JSON_OUT), { recursive: true });
  writeFileSync(JSON_OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nresult: ${JSON_OUT}`);
}
process.exit(exitCode);
