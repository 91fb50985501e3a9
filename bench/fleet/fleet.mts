// A fleet on one machine (issue 16 item 4): one real cinder-api + cinder-scheduler (Debian's cinder
// 21.3) on a MariaDB database and a RabbitMQ vhost of this bench's own, N volume services with
// distinct hosts, and M volumes driven through cinder-api: create, attach (v3 attachment create with
// a fake compute host's connector, which has the volume's service run initialize_connection; then
// attachment complete), detach (attachment delete) and delete, C at a time.
//
//   node --import tsx bench/fleet/fleet.mts --agents 3 --volumes 20 --concurrency 4
//   node --import tsx bench/fleet/fleet.mts --agents 50 --volumes 1000 --concurrency 16
//   node --import tsx bench/fleet/fleet.mts --agents 50 --volumes 200 --concurrency 16 --peer cinder-volume
//
// Options: --idle-s (120: two capability reports at cinder's periodic_interval of 60 s) the idle window, --settle-s (20) quiet before it, --report-interval (10,
// cinder's default; service_down_time is 6x, cinder's 60), --deadline-min (25) for the whole run:
// no new volume is started once the load phase has used its share, and the report says how many
// ran; --json (bench/results/fleet-bench.json, -peer.json with --peer), --compute-hosts (8),
// --scheduler-weight-handler ordered|stochastic (cinder's default is ordered).
//
// What runs, and why so:
//  - cinderblock agents: `bin/cinderblock.js serve` (the built dist, as an operator runs it), one
//    process each, each with its own cinder.conf (host fleet-cb-<i>, state_path, lock_path and a
//    file pool in its own directory) and its own tgtd (test/helpers/tgtd.ts: control port and
//    portal 127.0.0.1:<port>, ports from 19501 up). Not one shared tgtd: tid allocation and the
//    per-target locks are per agent process (drivers/targets/tgt/tgtd-state.ts), so 50 agents on
//    one tgtd would race on tids (5 retries, then the export fails) and every attach would read a
//    listing holding all 50 agents' targets; and a storage host has its own target daemon anyway.
//    tgtd's memory is reported apart from the agents'.
//  - `--peer cinder-volume`: after the agents' phase, N real /usr/bin/cinder-volume services
//    (host fleet-cv-<i>) in their place, on cinder's FakeLoggingVolumeDriver
//    (cinder/tests/fake_driver.py, shipped in Debian's python3-cinder): an LVMVolumeDriver whose
//    commands are logged, not run, so the service heartbeats, reports capabilities and answers
//    every RPC with no LVM, device-mapper or target daemon. Its round trips are cinder-volume's
//    manager, RPC and database work with no storage work at all, so they flatter cinder-volume
//    against agents that create files and tgt targets; the idle figures are like for like.
//    Each fleet gets its own volume type (volume_backend_name file / fake), so the scheduler never
//    places one fleet's volume on the other's (stopped) services.
//  - Heartbeats: the services table read every second (updated_at, report_count); the largest
//    gap between two successive updated_at values of a host, or from the last one to now, against
//    report_interval; a gap above service_down_time means the scheduler saw the host down.
//  - Capability traffic: a queue of the bench's own bound to the scheduler's fanout exchange
//    (cinder-scheduler_fanout) counts update_service_capabilities casts per host; heartbeat
//    traffic is the report_count increments (one UPDATE of the services row each).
//  - RSS: VmRSS from /proc/<pid>/status every 2 s (cinder-volume: parent and its per-backend child);
//    CPU: utime+stime from /proc/<pid>/stat at the edges of the idle window and the load phase.
//  - Broker: `rabbitmqctl list_connections` (this vhost's) and `list_queues -p <vhost>` at idle and
//    every 30 s under load (each rabbitmqctl costs about a CPU second on this 2-core machine).
//
// Everything started here is stopped by pid, the vhost and database dropped, the temp directory
// removed, in a finally block and on SIGINT/SIGTERM (test/helpers/soak-watchdog.ts); a watchdog
// shell does the same if this process is SIGKILLed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import amqplib from 'amqplib';
import mysql from 'mysql2/promise';
import { cinderApi, startCinderStack, waitFor, WaitAborted, writeCinderConf, type CinderApi, type CinderStack } from '../../test/helpers/cinder-stack.js';
import { startAgentProcess, type AgentProcess } from '../../test/helpers/agent-process.js';
import { startTgtd, type TgtdHandle } from '../../test/helpers/tgtd.js';
import { createVhost, type OwnVhost } from '../../test/helpers/rabbit-vhost.js';
import { MYSQL } from '../../test/helpers/cinder-db.js';
import { CleanupManifest, stopOnSignalsOrDeadline } from '../../test/helpers/soak-watchdog.js';
import { repoRoot } from '../../test/helpers/fixtures.js';
import { pidCpuSeconds, processTree, statusField } from '../proc-stats.js';

// ---------------------------------------------------------------------------------------------
// Options

const { values: argv } = parseArgs({
  options: {
    agents: { type: 'string', default: '3' },
    volumes: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '4' },
    peer: { type: 'string' },
    'idle-s': { type: 'string', default: '120' },
    'settle-s': { type: 'string', default: '20' },
    'report-interval': { type: 'string', default: '10' },
    'deadline-min': { type: 'string', default: '25' },
    'compute-hosts': { type: 'string', default: '8' },
    'scheduler-weight-handler': { type: 'string' },
    json: { type: 'string' },
  },
});
const num = (name: keyof typeof argv, min: number): number => {
  const n = Number(argv[name]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} ${String(argv[name])}: an integer >= ${min}`);
  return n;
};
const N = num('agents', 1);
const M = num('volumes', 0);
const C = num('concurrency', 1);
const IDLE_S = num('idle-s', 5);
const SETTLE_S = num('settle-s', 0);
const REPORT_INTERVAL = num('report-interval', 1);
const SERVICE_DOWN_TIME = REPORT_INTERVAL * 6;
const DEADLINE_MS = num('deadline-min', 1) * 60_000;
const COMPUTE_HOSTS = num('compute-hosts', 1);
if (argv.peer !== undefined && argv.peer !== 'cinder-volume') throw new Error(`--peer ${argv.peer}: only cinder-volume`);
const PEER = argv.peer === 'cinder-volume';
// cinder's [DEFAULT] scheduler_weight_handler: the default (OrderedHostWeightHandler) always takes
// the top-weighed pool, and identical pools tie, so the first hosts in the scheduler's order get
// every volume; StochasticHostWeightHandler draws a pool with odds in proportion to its weight.
const WEIGHT_HANDLERS: Record<string, string> = {
  ordered: 'cinder.scheduler.weights.OrderedHostWeightHandler',
  stochastic: 'cinder.scheduler.weights.stochastic.StochasticHostWeightHandler',
};
const WEIGHT_HANDLER = argv['scheduler-weight-handler'];
if (WEIGHT_HANDLER !== undefined && !(WEIGHT_HANDLER in WEIGHT_HANDLERS)) throw new Error(`--scheduler-weight-handler ${WEIGHT_HANDLER}: ordered or stochastic`);
const JSON_OUT = argv.json ?? join(repoRoot, 'bench', 'results', PEER ? 'fleet-bench-peer.json' : 'fleet-bench.json');

// The brief's names: one vhost and one database of this bench, ports 19500-19599.
const VHOST = 'cb-fleet';
const DB_NAME = 'cb_fleet';
const API_PORT = 19500;
const TGT_PORT_BASE = 19501;
if (TGT_PORT_BASE + N > 19600) throw new Error(`--agents ${N}: the tgt ports 19501.. would leave 19500-19599`);
const DB_URL = `mysql+pymysql://${MYSQL.user}@${MYSQL.host}:${MYSQL.port}/${DB_NAME}?charset=utf8`;
const SYS_PATH = `/usr/bin:/usr/sbin:/bin:/sbin:${process.env.PATH ?? ''}`;

const t0 = Date.now();
const say = (msg: string) => console.error(`[fleet ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
const stop = stopOnSignalsOrDeadline(DEADLINE_MS + 5 * 60_000);
const aborted = () => stop.signal.aborted;
const checkAbort = () => {
  if (aborted()) throw new Error('interrupted');
};

// ---------------------------------------------------------------------------------------------
// Statistics

/** Nearest-rank percentile of a sample (null when empty). */
function pct(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
function spread(xs: number[]): { min: number; max: number; mean: number; stddev: number } {
  if (xs.length === 0) return { min: 0, max: 0, mean: 0, stddev: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const stddev = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  return { min: Math.min(...xs), max: Math.max(...xs), mean: round(mean, 2), stddev: round(stddev, 2) };
}
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const MiB = (kib: number) => round(kib / 1024, 1);

// ---------------------------------------------------------------------------------------------
// The fleet's members: cinderblock agents (with their tgtd) or cinder-volume services

interface Member {
  host: string;
  /** the service's processes (cinder-volume: the parent and its per-backend child) */
  pids: number[];
  /** what the service needs beside itself (the agent's tgtd): measured apart */
  sidePids: number[];
  stop(): Promise<void>;
}

type Kind = 'cinderblock' | 'cinder-volume';

const manifest = new CleanupManifest('cb-fleet');
const workDir = mkdtempSync(join(tmpdir(), 'cb-fleet-'));
manifest.add({ kind: 'dir', path: workDir });
manifest.startWatchdog();

function memberConf(dir: string, host: string, backends: Record<string, Record<string, string>>, extra: Record<string, Record<string, string>> = {}): string {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  mkdirSync(join(dir, 'locks'), { recursive: true });
  const confPath = join(dir, 'cinder.conf');
  writeFileSync(
    confPath,
    writeCinderConf(dir, {
      host,
      apiPort: API_PORT,
      transportUrl: `rabbit://guest:guest@127.0.0.1:5672/${VHOST}`,
      databaseUrl: DB_URL,
      backends,
      defaults: { report_interval: String(REPORT_INTERVAL), service_down_time: String(SERVICE_DOWN_TIME) },
      extraSections: extra,
    }),
  );
  return confPath;
}

async function startAgent(i: number): Promise<Member> {
  const host = `fleet-cb-${i}`;
  const dir = join(workDir, host);
  mkdirSync(dir, { recursive: true });
  const tgtd: TgtdHandle = await startTgtd({ port: TGT_PORT_BASE + i, logDir: dir });
  manifest.add({ kind: 'pid', pid: tgtd.pid()!, word: 'tgtd' });
  for (const f of [`/var/run/tgtd/socket.${tgtd.controlPort}`, `/var/run/tgtd/socket.${tgtd.controlPort}.lock`]) manifest.add({ kind: 'file', path: f });
  const confPath = memberConf(
    dir,
    host,
    { file: { volume_driver: 'file', volume_backend_name: 'file', target_helper: 'tgtadm', target_ip_address: '127.0.0.1', target_port: String(tgtd.port) } },
    // no metrics endpoint: 50 agents would want 50 ports, and nothing here reads them
    { cinderblock: { tgt_control_port: String(tgtd.controlPort), metrics_listen: '' } },
  );
  let agent: AgentProcess | null = null;
  const member: Member = {
    host,
    pids: [],
    sidePids: [tgtd.pid()!],
    async stop() {
      await agent?.stop().catch(() => undefined);
      await tgtd.stop().catch(() => undefined);
    },
  };
  try {
    agent = startAgentProcess(confPath);
    manifest.add({ kind: 'pid', pid: agent.child.pid!, word: confPath });
    member.pids = [agent.child.pid!];
    await agent.waitForLog(/serving 1 backend/, 180_000);
    // keep only what a failure report needs: 50 agents' full logs would grow this process
    agent.lines.length = 0;
    return member;
  } catch (err) {
    await member.stop();
    throw new Error(`${host}: ${(err as Error).message}`);
  }
}

async function startCinderVolume(i: number): Promise<Member> {
  const host = `fleet-cv-${i}`;
  const dir = join(workDir, host);
  mkdirSync(dir, { recursive: true });
  const confPath = memberConf(dir, host, { fake: { volume_driver: 'cinder.tests.fake_driver.FakeLoggingVolumeDriver', volume_backend_name: 'fake' } });
  const child: ChildProcess = spawn('/usr/bin/cinder-volume', ['--config-file', confPath], { stdio: 'ignore', env: { ...process.env, PATH: SYS_PATH } });
  child.on('error', (err) => say(`${host}: ${err.message}`));
  manifest.add({ kind: 'pid', pid: child.pid!, word: confPath });
  return {
    host,
    pids: [child.pid!],
    sidePids: [],
    async stop() {
      // the parent stops its per-backend child on SIGTERM; whatever is left is SIGKILLed by pid
      const tree = processTree(child.pid!);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(15_000)]);
      }
      for (const p of tree) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
    },
  };
}

/** Starts members `batch` at a time (a start costs a few CPU seconds; two cores). */
async function startMembers(kind: Kind, n: number, batch: number, members: Member[]): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    checkAbort();
    const started = await Promise.allSettled(Array.from({ length: Math.min(batch, n - i) }, (_, k) => (kind === 'cinderblock' ? startAgent(i + k) : startCinderVolume(i + k))));
    for (const s of started) if (s.status === 'fulfilled') members.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    say(`${members.length}/${n} ${kind} started`);
  }
}

// ---------------------------------------------------------------------------------------------
// Observers: RSS sampler, services table (heartbeats), scheduler fanout, broker

interface MemberSample {
  /** KiB, last sample */
  rss: number;
  peak: number;
  sideRss: number;
  sidePeak: number;
}

class RssSampler {
  readonly samples = new Map<string, MemberSample>();
  /** KiB: the highest sum over all members of one sampling pass (what the fleet held at once). */
  instantPeak = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(private members: Member[]) {}
  sample(): void {
    let sum = 0;
    for (const m of this.members) {
      const rss = m.pids.reduce((a, p) => a + (statusField(p, 'VmRSS') ?? 0), 0);
      const side = m.sidePids.reduce((a, p) => a + (statusField(p, 'VmRSS') ?? 0), 0);
      const s = this.samples.get(m.host) ?? { rss: 0, peak: 0, sideRss: 0, sidePeak: 0 };
      s.rss = rss;
      s.peak = Math.max(s.peak, rss);
      s.sideRss = side;
      s.sidePeak = Math.max(s.sidePeak, side);
      this.samples.set(m.host, s);
      sum += rss;
    }
    this.instantPeak = Math.max(this.instantPeak, sum);
  }
  /** Sets each peak to the current value: peaks from here on. */
  resetPeaks(): void {
    this.sample();
    this.instantPeak = 0;
    for (const s of this.samples.values()) {
      s.peak = s.rss;
      s.sidePeak = s.sideRss;
      this.instantPeak += s.rss;
    }
  }
  start(): void {
    this.timer = setInterval(() => this.sample(), 2000);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

interface HostBeat {
  lastUpdated: number | null;
  maxGapS: number;
  reportCount: number;
  seenDown: boolean;
}

/** Reads the services table every second: heartbeat gaps and report counts per volume host. */
class HeartbeatWatch {
  readonly hosts = new Map<string, HostBeat>();
  private running = false;
  private loop: Promise<void> | null = null;
  errors = 0;
  constructor(private prefix: string) {}
  async read(conn: mysql.Connection): Promise<void> {
    // DB time on both sides: cinder writes updated_at in UTC from the services' clocks (this machine)
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      "SELECT host, UNIX_TIMESTAMP(COALESCE(updated_at, created_at)) AS u, report_count AS c, UNIX_TIMESTAMP(UTC_TIMESTAMP()) AS now FROM services WHERE deleted = 0 AND topic = 'cinder-volume' AND host LIKE ?",
      [`${this.prefix}%`],
    );
    for (const r of rows) {
      const host = String(r.host);
      const u = Number(r.u);
      const now = Number(r.now);
      const b = this.hosts.get(host) ?? { lastUpdated: null, maxGapS: 0, reportCount: 0, seenDown: false };
      if (b.lastUpdated !== null && u !== b.lastUpdated) b.maxGapS = Math.max(b.maxGapS, u - b.lastUpdated);
      b.maxGapS = Math.max(b.maxGapS, now - u);
      if (now - u > SERVICE_DOWN_TIME) b.seenDown = true;
      b.lastUpdated = u;
      b.reportCount = Number(r.c);
      this.hosts.set(host, b);
    }
  }
  /** Starts watching; the gaps seen before `start` (service start-up) do not count. */
  start(): void {
    this.running = true;
    this.loop = (async () => {
      const conn = await mysql.createConnection({ ...MYSQL, database: DB_NAME });
      try {
        await this.read(conn);
        for (const b of this.hosts.values()) b.maxGapS = 0;
        while (this.running) {
          await sleep(1000);
          await this.read(conn).catch(() => {
            this.errors += 1;
          });
        }
      } finally {
        await conn.end();
      }
    })();
  }
  counts(): Map<string, number> {
    return new Map([...this.hosts].map(([h, b]) => [h, b.reportCount]));
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** Counts the casts on the scheduler's fanout exchange per sending host (capability reports). */
class FanoutCounter {
  readonly perHost = new Map<string, { msgs: number; bytes: number }>();
  readonly methods = new Map<string, number>();
  private conn: Awaited<ReturnType<typeof amqplib.connect>> | null = null;
  async start(): Promise<void> {
    this.conn = await amqplib.connect(`amqp://guest:guest@127.0.0.1:5672/${VHOST}`, { clientProperties: { connection_name: 'fleet-bench-fanout-counter' } });
    const ch = await this.conn.createChannel();
    const q = await ch.assertQueue('', { exclusive: true, autoDelete: true });
    // the exchange the scheduler declared; bind, never declare (its type and flags are oslo's)
    await ch.bindQueue(q.queue, 'cinder-scheduler_fanout', '');
    await ch.consume(
      q.queue,
      (msg) => {
        if (!msg) return;
        let method = '?';
        let host = '?';
        try {
          const env = JSON.parse(msg.content.toString()) as Record<string, unknown>;
          const inner = (typeof env['oslo.message'] === 'string' ? JSON.parse(env['oslo.message']) : env) as { method?: string; args?: { host?: string } };
          method = inner.method ?? '?';
          host = String(inner.args?.host ?? '?');
        } catch {
          // not oslo's envelope: counted under '?'
        }
        this.methods.set(method, (this.methods.get(method) ?? 0) + 1);
        const h = this.perHost.get(host) ?? { msgs: 0, bytes: 0 };
        h.msgs += 1;
        h.bytes += msg.content.length;
        this.perHost.set(host, h);
      },
      { noAck: true },
    );
  }
  snapshot(): Map<string, { msgs: number; bytes: number }> {
    return new Map([...this.perHost].map(([h, v]) => [h, { ...v }]));
  }
  async stop(): Promise<void> {
    await this.conn?.close().catch(() => undefined);
  }
}

interface BrokerSnapshot {
  connections: number;
  /** connections per client kind, from the name the client gave (oslo: <host>:<process>:<pid>) */
  byClient: Record<string, number>;
  queues: number;
  consumers: number;
  messagesReady: number;
  maxQueueDepth: number;
}

async function brokerSnapshot(): Promise<BrokerSnapshot> {
  const conns = await execa('rabbitmqctl', ['-q', 'list_connections', '--no-table-headers', 'vhost', 'client_properties'], { reject: false, timeout: 60_000 });
  const mine = String(conns.stdout)
    .split('\n')
    .map((l) => l.split('\t'))
    .filter((f) => f[0] === VHOST);
  const byClient: Record<string, number> = {};
  for (const f of mine) {
    // oslo.messaging and cinderblock name a connection "<process>:<pid>:<uuid>"
    const name = /\{"connection_name","([^"]*)"\}/.exec(f[1] ?? '')?.[1] ?? '(unnamed)';
    const kind = name.split(':')[0]!;
    byClient[kind] = (byClient[kind] ?? 0) + 1;
  }
  const qs = await execa('rabbitmqctl', ['-q', 'list_queues', '-p', VHOST, '--no-table-headers', 'name', 'messages_ready', 'consumers'], { reject: false, timeout: 60_000 });
  const rows = String(qs.stdout)
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => l.split('\t'));
  const depths = rows.map((r) => Number(r[1] ?? 0));
  return {
    connections: mine.length,
    byClient,
    queues: rows.length,
    consumers: rows.reduce((a, r) => a + Number(r[2] ?? 0), 0),
    messagesReady: depths.reduce((a, b) => a + b, 0),
    maxQueueDepth: depths.length ? Math.max(...depths) : 0,
  };
}

// ---------------------------------------------------------------------------------------------
// The workload

const OPS = ['create', 'attach', 'complete', 'detach', 'delete'] as const;
type Op = (typeof OPS)[number];

interface LoadResult {
  requested: number;
  started: number;
  completed: number;
  elapsedS: number;
  latMs: Record<Op, number[]>;
  perHost: Map<string, number>;
  errors: Array<{ op: Op | 'cleanup'; volume: string; message: string }>;
  leftovers: number;
  stoppedByDeadline: boolean;
}

function connector(k: number) {
  const host = `fleet-compute-${k}`;
  return { initiator: `iqn.1994-05.com.example:${host}`, ip: '127.0.0.1', host, platform: 'x86_64', os_type: 'linux2', multipath: false };
}

async function runLoad(api: CinderApi, typeName: string, m: number, c: number, budgetMs: number, onTick: () => Promise<void>): Promise<LoadResult> {
  const latMs = Object.fromEntries(OPS.map((o) => [o, [] as number[]])) as Record<Op, number[]>;
  const res: LoadResult = { requested: m, started: 0, completed: 0, elapsedS: 0, latMs, perHost: new Map(), errors: [], leftovers: 0, stoppedByDeadline: false };
  // polling every 500 ms: C waits at once against one cinder-api worker; adds up to 0.5 s to a
  // create/detach/delete figure (attach and complete are the API calls themselves)
  const POLL_MS = 500;
  const volumeStatus = (id: string, want: string) =>
    waitFor(
      `volume ${id} ${want}`,
      300_000,
      async () => {
        const r = await api('GET', `/volumes/${id}`);
        const st = r.body?.volume?.status as string | undefined;
        if (st?.startsWith('error')) throw new WaitAborted(`volume ${id} went to ${st}`);
        return st === want ? (r.body.volume as Record<string, any>) : undefined;
      },
      POLL_MS,
    );
  const gone = (id: string) => waitFor(`volume ${id} deleted`, 300_000, async () => ((await api('GET', `/volumes/${id}`)).status === 404 ? true : undefined), POLL_MS);
  const timed = async <T,>(op: Op, fn: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    const v = await fn();
    latMs[op].push(performance.now() - s);
    return v;
  };
  const expectStatus = (what: string, r: { status: number; body: any }, want: number) => {
    if (r.status !== want) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  };

  const one = async (i: number) => {
    let id = '';
    let attachmentId = '';
    let op: Op = 'create';
    try {
      await timed('create', async () => {
        const r = await api('POST', '/volumes', { volume: { size: 1, name: `fleet-${i}`, volume_type: typeName } });
        expectStatus('create', r, 202);
        id = r.body.volume.id;
        const v = await volumeStatus(id, 'available');
        const host = String(v['os-vol-host-attr:host'] ?? '?').split('#')[0]!;
        res.perHost.set(host, (res.perHost.get(host) ?? 0) + 1);
      });
      op = 'attach';
      await timed('attach', async () => {
        const r = await api('POST', '/attachments', { attachment: { volume_uuid: id, connector: connector(i % COMPUTE_HOSTS), mode: 'rw' } });
        expectStatus('attachment create', r, 200);
        attachmentId = r.body.attachment.id;
        if (!r.body.attachment.connection_info?.driver_volume_type) throw new Error(`attachment create: no connection_info ${JSON.stringify(r.body).slice(0, 300)}`);
      });
      op = 'complete';
      await timed('complete', async () => expectStatus('attachment complete', await api('POST', `/attachments/${attachmentId}/action`, { 'os-complete': null }), 204));
      op = 'detach';
      await timed('detach', async () => {
        expectStatus('attachment delete', await api('DELETE', `/attachments/${attachmentId}`), 200);
        attachmentId = '';
        await volumeStatus(id, 'available');
      });
      op = 'delete';
      await timed('delete', async () => {
        expectStatus('delete', await api('DELETE', `/volumes/${id}`), 202);
        await gone(id);
      });
      res.completed += 1;
    } catch (err) {
      res.errors.push({ op, volume: id || `#${i}`, message: (err as Error).message.slice(0, 500) });
      // leave nothing behind: the volume's attachment, then the volume (force: it may be in error)
      if (attachmentId) await api('DELETE', `/attachments/${attachmentId}`).catch(() => undefined);
      if (id) {
        const r = await api('POST', `/volumes/${id}/action`, { 'os-force_delete': null }).catch((e: Error) => ({ status: 0, body: e.message }));
        if (r.status !== 202 && r.status !== 404) res.errors.push({ op: 'cleanup', volume: id, message: `force delete: HTTP ${r.status}` });
      }
    }
  };

  const start = Date.now();
  let next = 0;
  let ticking = true;
  // first look 5 s in (a short run would otherwise have none), then every 30 s
  const ticker = (async () => {
    for (let wait = 5; ticking; wait = 30) {
      for (let k = 0; k < wait && ticking; k++) await sleep(1000);
      if (ticking) await onTick().catch(() => undefined);
    }
  })();
  let lastReport = Date.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < m && !aborted()) {
        if (Date.now() - start > budgetMs) {
          res.stoppedByDeadline = true;
          break;
        }
        const i = next++;
        res.started += 1;
        await one(i);
        if (Date.now() - lastReport > 30_000) {
          lastReport = Date.now();
          say(`load: ${res.completed}/${m} done, ${res.started - res.completed - res.errors.length} in flight, ${res.errors.length} errors`);
        }
      }
    }),
  );
  res.elapsedS = (Date.now() - start) / 1000;
  ticking = false;
  await ticker;
  // what is left of this fleet's type (a failure's volume whose force delete did not finish)
  await sleep(3000);
  const left = await api('GET', `/volumes/detail?all_tenants=1&limit=1000`);
  res.leftovers = ((left.body?.volumes ?? []) as Array<{ volume_type: string }>).filter((v) => v.volume_type === typeName).length;
  return res;
}

// ---------------------------------------------------------------------------------------------
// One fleet's phase: start, idle window, load, stop

interface PhaseReport {
  kind: Kind;
  services: number;
  startS: number;
  /** from all known to the scheduler to the end of the load */
  capabilityMsgsPerServicePerMinWholePhase: number;
  idle: {
    windowS: number;
    rssMiB: { perService: ReturnType<typeof spread>; total: number; pssPerService: ReturnType<typeof spread>; pssTotal: number; sidePerService?: ReturnType<typeof spread>; sideTotal?: number };
    cpuS: { perService: ReturnType<typeof spread>; total: number; perServicePerMin: number };
    heartbeatsPerServicePerMin: number;
    capabilityMsgsPerServicePerMin: number;
    capabilityBytesPerServicePerMin: number;
    /** every cast seen on the scheduler's fanout exchange in the window, by method */
    fanoutMethods: Record<string, number>;
    broker: BrokerSnapshot;
  };
  load: null | {
    volumes: number;
    started: number;
    completed: number;
    stoppedByDeadline: boolean;
    elapsedS: number;
    volumesPerMin: number;
    apiOpsPerS: number;
    latencyMs: Record<Op, { n: number; p50: number | null; p95: number | null; p99: number | null; max: number | null }>;
    placement: { hosts: number; perHost: Record<string, number>; stats: ReturnType<typeof spread> };
    rssPeakMiB: { perService: ReturnType<typeof spread>; total: number; atOneInstant: number; sidePerService?: ReturnType<typeof spread>; sideTotal?: number };
    cpuS: { perService: ReturnType<typeof spread>; total: number };
    brokerPeak: { connections: number; queues: number; maxQueueDepth: number; messagesReady: number };
    errors: LoadResult['errors'];
    errorCount: number;
    leftovers: number;
  };
  heartbeat: { reportIntervalS: number; serviceDownTimeS: number; largestGapS: number; hostOfLargestGap: string; hostsSeenDown: string[]; missed: number; watchErrors: number };
  perService: Array<{ host: string; idleRssMiB: number; peakRssMiB: number; idleCpuS: number; loadCpuS: number; volumes: number; tgtdRssMiB?: number }>;
}

async function runPhase(kind: Kind, api: CinderApi, typeName: string, backendName: string, m: number, budgetMs: number): Promise<PhaseReport> {
  const members: Member[] = [];
  const prefix = kind === 'cinderblock' ? 'fleet-cb-' : 'fleet-cv-';
  const beats = new HeartbeatWatch(prefix);
  const fanout = new FanoutCounter();
  const rss = new RssSampler(members);
  try {
    await fanout.start();
    const s0 = Date.now();
    await startMembers(kind, N, kind === 'cinderblock' ? 5 : 4, members);
    // cinder-volume forks its per-backend child after start-up: read the tree once it reports
    await waitFor(
      `the scheduler to know ${N} ${backendName} pools`,
      600_000,
      async () => {
        checkAbort();
        const r = await api('GET', '/scheduler-stats/get_pools?detail=true');
        const pools = ((r.body?.pools ?? []) as Array<{ name: string; capabilities?: { volume_backend_name?: string } }>).filter((p) => p.name.startsWith(prefix) && p.capabilities?.volume_backend_name === backendName);
        return pools.length >= N ? true : undefined;
      },
      2000,
    );
    const startS = (Date.now() - s0) / 1000;
    // capability casts over the whole phase too: an idle window shorter than two report periods
    // (cinder's first periodic report comes up to 60 s + periodic_fuzzy_delay after start) may see none
    const fanKnown = fanout.snapshot();
    const knownAt = Date.now();
    for (const mem of members) mem.pids = processTree(mem.pids[0]!);
    say(`${N} ${kind} known to the scheduler after ${round(startS)} s; settling ${SETTLE_S} s`);
    rss.start();
    beats.start();
    await sleep(SETTLE_S * 1000);
    checkAbort();

    // idle window
    say(`idle window ${IDLE_S} s`);
    rss.sample();
    const cpuIdle0 = new Map(members.map((mm) => [mm.host, mm.pids.reduce((a, p) => a + pidCpuSeconds(p), 0)]));
    const beats0 = beats.counts();
    const fan0 = fanout.snapshot();
    const fan0Methods = new Map(fanout.methods);
    const w0 = Date.now();
    const idleRssSum = new Map<string, { n: number; sum: number; side: number }>();
    const idleBroker = brokerSnapshot();
    while (Date.now() - w0 < IDLE_S * 1000) {
      await sleep(2000);
      rss.sample();
      for (const [h, s] of rss.samples) {
        const a = idleRssSum.get(h) ?? { n: 0, sum: 0, side: 0 };
        a.n += 1;
        a.sum += s.rss;
        a.side += s.sideRss;
        idleRssSum.set(h, a);
      }
      checkAbort();
    }
    const windowS = (Date.now() - w0) / 1000;
    // PSS once at the window's end: cinder-volume's per-backend child is a fork whose pages the
    // RSS sum counts twice; PSS counts shared pages once (smaps_rollup is too dear to read every 2 s)
    const idlePss = members.map((mm) => mm.pids.reduce((a, p) => a + (statusField(p, 'Pss', 'smaps_rollup') ?? 0), 0));
    const cpuIdle1 = new Map(members.map((mm) => [mm.host, mm.pids.reduce((a, p) => a + pidCpuSeconds(p), 0)]));
    const beats1 = beats.counts();
    const fan1 = fanout.snapshot();
    const broker = await idleBroker;
    const idleRss = new Map([...idleRssSum].map(([h, a]) => [h, { rss: a.sum / a.n, side: a.side / a.n }]));
    const idleCpu = new Map(members.map((mm) => [mm.host, cpuIdle1.get(mm.host)! - cpuIdle0.get(mm.host)!]));
    const hb = [...beats1].filter(([h]) => h.startsWith(prefix)).map(([h, c]) => c - (beats0.get(h) ?? c));
    const fanHosts = [...fan1].filter(([h]) => h.startsWith(prefix));
    const fanMsgs = fanHosts.reduce((a, [h, v]) => a + v.msgs - (fan0.get(h)?.msgs ?? 0), 0);
    const fanBytes = fanHosts.reduce((a, [h, v]) => a + v.bytes - (fan0.get(h)?.bytes ?? 0), 0);
    const perMin = (x: number) => round((x / N / windowS) * 60, 2);
    const idle: PhaseReport['idle'] = {
      windowS: round(windowS),
      rssMiB: {
        perService: spread([...idleRss.values()].map((v) => MiB(v.rss))),
        total: MiB([...idleRss.values()].reduce((a, v) => a + v.rss, 0)),
        pssPerService: spread(idlePss.map(MiB)),
        pssTotal: MiB(idlePss.reduce((a, b) => a + b, 0)),
        ...(kind === 'cinderblock' ? { sidePerService: spread([...idleRss.values()].map((v) => MiB(v.side))), sideTotal: MiB([...idleRss.values()].reduce((a, v) => a + v.side, 0)) } : {}),
      },
      cpuS: { perService: spread([...idleCpu.values()].map((x) => round(x, 2))), total: round([...idleCpu.values()].reduce((a, b) => a + b, 0), 2), perServicePerMin: round(([...idleCpu.values()].reduce((a, b) => a + b, 0) / N / windowS) * 60, 3) },
      heartbeatsPerServicePerMin: perMin(hb.reduce((a, b) => a + b, 0)),
      capabilityMsgsPerServicePerMin: perMin(fanMsgs),
      capabilityBytesPerServicePerMin: round(perMin(fanBytes)),
      fanoutMethods: Object.fromEntries([...fanout.methods].map(([k, v]) => [k, v - (fan0Methods.get(k) ?? 0)])),
      broker,
    };
    say(`idle: RSS total ${idle.rssMiB.total} MiB, CPU ${idle.cpuS.total} s in ${idle.windowS} s, ${broker.connections} connections, ${broker.queues} queues`);

    // load
    let load: PhaseReport['load'] = null;
    const cpuLoad = new Map<string, number>();
    if (m > 0) {
      checkAbort();
      rss.resetPeaks();
      const cpuL0 = new Map(members.map((mm) => [mm.host, mm.pids.reduce((a, p) => a + pidCpuSeconds(p), 0)]));
      const brokerPeak = { connections: 0, queues: 0, maxQueueDepth: 0, messagesReady: 0 };
      const tick = async () => {
        const b = await brokerSnapshot();
        brokerPeak.connections = Math.max(brokerPeak.connections, b.connections);
        brokerPeak.queues = Math.max(brokerPeak.queues, b.queues);
        brokerPeak.maxQueueDepth = Math.max(brokerPeak.maxQueueDepth, b.maxQueueDepth);
        brokerPeak.messagesReady = Math.max(brokerPeak.messagesReady, b.messagesReady);
      };
      say(`load: ${m} volumes, ${C} at a time, budget ${round(budgetMs / 60_000)} min`);
      const r = await runLoad(api, typeName, m, C, budgetMs, tick);
      rss.sample();
      for (const mm of members) cpuLoad.set(mm.host, mm.pids.reduce((a, p) => a + pidCpuSeconds(p), 0) - cpuL0.get(mm.host)!);
      const placed = [...members.map((mm) => `${mm.host}@${backendName}`)].map((h) => r.perHost.get(h) ?? 0);
      const peaks = [...rss.samples.values()];
      const lat = Object.fromEntries(
        OPS.map((o) => {
          const xs = r.latMs[o];
          const f = (p: number) => (pct(xs, p) === null ? null : Math.round(pct(xs, p)!));
          return [o, { n: xs.length, p50: f(50), p95: f(95), p99: f(99), max: xs.length ? Math.round(Math.max(...xs)) : null }];
        }),
      ) as Record<Op, { n: number; p50: number | null; p95: number | null; p99: number | null; max: number | null }>;
      load = {
        volumes: m,
        started: r.started,
        completed: r.completed,
        stoppedByDeadline: r.stoppedByDeadline,
        elapsedS: round(r.elapsedS),
        volumesPerMin: round((r.completed / r.elapsedS) * 60, 1),
        // create, attachment create, attachment complete, attachment delete, delete
        apiOpsPerS: round((OPS.reduce((a, o) => a + r.latMs[o].length, 0) / r.elapsedS), 2),
        latencyMs: lat,
        placement: { hosts: [...r.perHost.keys()].length, perHost: Object.fromEntries([...r.perHost].sort()), stats: spread(placed) },
        rssPeakMiB: {
          perService: spread(peaks.map((p) => MiB(p.peak))),
          total: MiB(peaks.reduce((a, p) => a + p.peak, 0)),
          atOneInstant: MiB(rss.instantPeak),
          ...(kind === 'cinderblock' ? { sidePerService: spread(peaks.map((p) => MiB(p.sidePeak))), sideTotal: MiB(peaks.reduce((a, p) => a + p.sidePeak, 0)) } : {}),
        },
        cpuS: { perService: spread([...cpuLoad.values()].map((x) => round(x, 2))), total: round([...cpuLoad.values()].reduce((a, b) => a + b, 0), 2) },
        brokerPeak,
        errors: r.errors.slice(0, 20),
        errorCount: r.errors.length,
        leftovers: r.leftovers,
      };
      say(`load done: ${r.completed}/${m} in ${round(r.elapsedS)} s, ${r.errors.length} errors`);
    }
    const fanEnd = fanout.snapshot();
    const phaseMin = (Date.now() - knownAt) / 60_000;
    const fanPhase = [...fanEnd].filter(([h]) => h.startsWith(prefix)).reduce((a, [h, v]) => a + v.msgs - (fanKnown.get(h)?.msgs ?? 0), 0);
    const capabilityMsgsPerServicePerMinWholePhase = round(fanPhase / N / phaseMin, 2);
    await beats.stop();
    const gaps = [...beats.hosts].filter(([h]) => h.startsWith(prefix));
    const worst = gaps.reduce<[string, HostBeat] | null>((w, g) => (!w || g[1].maxGapS > w[1].maxGapS ? g : w), null);
    const heartbeat = {
      reportIntervalS: REPORT_INTERVAL,
      serviceDownTimeS: SERVICE_DOWN_TIME,
      largestGapS: worst?.[1].maxGapS ?? 0,
      hostOfLargestGap: worst?.[0] ?? '',
      hostsSeenDown: gaps.filter(([, b]) => b.seenDown).map(([h]) => h),
      missed: gaps.filter(([, b]) => b.seenDown || b.maxGapS > SERVICE_DOWN_TIME).length,
      watchErrors: beats.errors,
    };
    const perService = members.map((mm) => ({
      host: mm.host,
      idleRssMiB: MiB(idleRss.get(mm.host)?.rss ?? 0),
      peakRssMiB: MiB(rss.samples.get(mm.host)?.peak ?? 0),
      idleCpuS: round(idleCpu.get(mm.host) ?? 0, 2),
      loadCpuS: round(cpuLoad.get(mm.host) ?? 0, 2),
      volumes: load?.placement.perHost[`${mm.host}@${backendName}`] ?? 0,
      ...(kind === 'cinderblock' ? { tgtdRssMiB: MiB(rss.samples.get(mm.host)?.sidePeak ?? 0) } : {}),
    }));
    return { kind, services: N, startS: round(startS), idle, capabilityMsgsPerServicePerMinWholePhase, load, heartbeat, perService };
  } finally {
    rss.stop();
    await beats.stop().catch(() => undefined);
    await fanout.stop();
    say(`stopping ${members.length} ${kind}`);
    for (let i = 0; i < members.length; i += 10) await Promise.all(members.slice(i, i + 10).map((mm) => mm.stop()));
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function table(rows: string[][]): string {
  return rows.map((r) => `| ${r.join(' | ')} |`).join('\n').replace(/\n/, `\n|${rows[0]!.map(() => '---').join('|')}|\n`);
}

function printPhase(p: PhaseReport): void {
  const s = (x: { min: number; max: number; mean: number; stddev: number }) => `${x.mean} (min ${x.min}, max ${x.max}, sd ${x.stddev})`;
  console.log(`\n## ${p.kind}: ${p.services} services (all known to the scheduler ${p.startS} s after the first start)\n`);
  const rows: string[][] = [
    ['figure', 'value'],
    ['idle RSS per service, MiB', s(p.idle.rssMiB.perService)],
    ['idle RSS total, MiB', String(p.idle.rssMiB.total)],
    ['idle PSS per service / total, MiB', `${s(p.idle.rssMiB.pssPerService)} / ${p.idle.rssMiB.pssTotal}`],
  ];
  if (p.idle.rssMiB.sideTotal !== undefined) rows.push(['idle tgtd RSS total (one per agent), MiB', String(p.idle.rssMiB.sideTotal)]);
  rows.push(
    [`idle CPU per service in ${p.idle.windowS} s, s`, s(p.idle.cpuS.perService)],
    ['idle CPU per service per minute, s', String(p.idle.cpuS.perServicePerMin)],
    ['heartbeats per service per minute', String(p.idle.heartbeatsPerServicePerMin)],
    ['capability reports per service per minute (msgs / bytes)', `${p.idle.capabilityMsgsPerServicePerMin} / ${p.idle.capabilityBytesPerServicePerMin}`],
    ['capability reports per service per minute, whole phase', String(p.capabilityMsgsPerServicePerMinWholePhase)],
    ['broker at idle: connections / queues / consumers', `${p.idle.broker.connections} / ${p.idle.broker.queues} / ${p.idle.broker.consumers} (${Object.entries(p.idle.broker.byClient).map(([k, v]) => `${k} ${v}`).join(', ')})`],
  );
  if (p.load) {
    const l = p.load;
    rows.push(
      ['volumes completed / started / asked', `${l.completed} / ${l.started} / ${l.volumes}${l.stoppedByDeadline ? ' (stopped by the time budget)' : ''}`],
      ['load elapsed, s', String(l.elapsedS)],
      ['throughput: volumes (full cycle) per minute', String(l.volumesPerMin)],
      ['throughput: API operations per second', String(l.apiOpsPerS)],
      ['placement per service (volumes)', `${s(l.placement.stats)} over ${l.placement.hosts} hosts`],
      ['peak RSS per service under load, MiB', s(l.rssPeakMiB.perService)],
      ['peak RSS total under load (sum of per-service peaks), MiB', String(l.rssPeakMiB.total)],
      ['peak RSS total under load at one instant (one 2 s sampling pass), MiB', String(l.rssPeakMiB.atOneInstant)],
    );
    if (l.rssPeakMiB.sideTotal !== undefined) rows.push(['peak tgtd RSS total, MiB', String(l.rssPeakMiB.sideTotal)]);
    rows.push(
      ['CPU per service under load, s', s(l.cpuS.perService)],
      ['CPU total under load, s', String(l.cpuS.total)],
      ['broker peak: connections / queues / deepest queue / ready msgs', `${l.brokerPeak.connections} / ${l.brokerPeak.queues} / ${l.brokerPeak.maxQueueDepth} / ${l.brokerPeak.messagesReady}`],
      ['errors / volumes left behind', `${l.errorCount} / ${l.leftovers}`],
    );
  }
  rows.push([
    'heartbeat: largest gap (report_interval / service_down_time), hosts missed',
    `${p.heartbeat.largestGapS} s on ${p.heartbeat.hostOfLargestGap} (${p.heartbeat.reportIntervalS} / ${p.heartbeat.serviceDownTimeS} s), ${p.heartbeat.missed} missed${p.heartbeat.hostsSeenDown.length ? `: ${p.heartbeat.hostsSeenDown.join(', ')}` : ''}`,
  ]);
  console.log(table(rows));
  if (p.load) {
    console.log('');
    console.log(table([['operation', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'], ...OPS.map((o) => [o, ...Object.values(p.load!.latencyMs[o]).map((v) => String(v ?? '-'))])]));
    for (const e of p.load.errors.slice(0, 5)) console.log(`- error (${e.op}, ${e.volume}): ${e.message}`);
  }
}

function printSideBySide(cb: PhaseReport, cv: PhaseReport): void {
  const ratio = (a: number, b: number) => (b > 0 ? `${round(a / b, 2)}x` : '-');
  const row = (name: string, a: number, b: number): string[] => [name, String(a), String(b), ratio(b, a)];
  const rows: string[][] = [
    ['per service (same window, same settings)', 'cinderblock', 'cinder-volume', 'cinder-volume / cinderblock'],
    row('idle RSS, MiB (mean)', cb.idle.rssMiB.perService.mean, cv.idle.rssMiB.perService.mean),
    row('idle RSS total, MiB', cb.idle.rssMiB.total, cv.idle.rssMiB.total),
    row('idle PSS, MiB (mean)', cb.idle.rssMiB.pssPerService.mean, cv.idle.rssMiB.pssPerService.mean),
    row(`idle CPU per minute, s`, cb.idle.cpuS.perServicePerMin, cv.idle.cpuS.perServicePerMin),
    row('heartbeats per minute', cb.idle.heartbeatsPerServicePerMin, cv.idle.heartbeatsPerServicePerMin),
    row('capability reports per minute', cb.idle.capabilityMsgsPerServicePerMin, cv.idle.capabilityMsgsPerServicePerMin),
    row('capability reports per minute, whole phase', cb.capabilityMsgsPerServicePerMinWholePhase, cv.capabilityMsgsPerServicePerMinWholePhase),
    row('capability bytes per minute', cb.idle.capabilityBytesPerServicePerMin, cv.idle.capabilityBytesPerServicePerMin),
    row('broker connections (all, idle)', cb.idle.broker.connections, cv.idle.broker.connections),
    row('broker queues (all, idle)', cb.idle.broker.queues, cv.idle.broker.queues),
    row('start-up until the scheduler knows all, s', cb.startS, cv.startS),
  ];
  if (cb.load && cv.load) {
    for (const o of OPS) rows.push(row(`${o} p50 ms`, cb.load.latencyMs[o].p50 ?? 0, cv.load.latencyMs[o].p50 ?? 0), row(`${o} p95 ms`, cb.load.latencyMs[o].p95 ?? 0, cv.load.latencyMs[o].p95 ?? 0));
    rows.push(
      row('peak RSS under load, MiB (mean)', cb.load.rssPeakMiB.perService.mean, cv.load.rssPeakMiB.perService.mean),
      row('CPU per volume cycle, s (all services)', round(cb.load.cpuS.total / Math.max(1, cb.load.completed), 3), round(cv.load.cpuS.total / Math.max(1, cv.load.completed), 3)),
      row('volumes per minute', cb.load.volumesPerMin, cv.load.volumesPerMin),
    );
  }
  console.log('\n## cinderblock against cinder-volume (FakeLoggingVolumeDriver: no storage work on its side)\n');
  console.log(table(rows));
}

// ---------------------------------------------------------------------------------------------
// Main

let stack = null as CinderStack | null;
let vhost = null as OwnVhost | null;
let raisedMaxConnections = null as { from: number; to: number } | null;

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

async function rootQuery(sql: string): Promise<mysql.RowDataPacket[]> {
  const conn = await mysql.createConnection({ ...MYSQL });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(sql);
    return rows;
  } finally {
    await conn.end();
  }
}

async function main(): Promise<void> {
  say(`fleet: ${N} services, ${M} volumes, ${C} at a time${PEER ? ', then cinder-volume in their place' : ''}; work dir ${workDir}`);
  // Every service keeps a few database connections (oslo.db's pool: 5 idle, cinderblock's the
  // same); 50 hosts + cinder-api + scheduler need more than MariaDB's default 151. A real
  // deployment of this size raises it too. Put back at the end if nobody changed it meanwhile.
  const [mc] = await rootQuery("SHOW VARIABLES LIKE 'max_connections'");
  const current = Number(mc?.Value ?? 151);
  const need = 100 + N * 8;
  if (current < need) {
    await rootQuery(`SET GLOBAL max_connections = ${need}`);
    raisedMaxConnections = { from: current, to: need };
    say(`MariaDB max_connections ${current} -> ${need} for this run`);
  }
  await rootQuery(`DROP DATABASE IF EXISTS ${DB_NAME}`);
  await rootQuery(`CREATE DATABASE ${DB_NAME} CHARACTER SET utf8mb3`);
  manifest.add({ kind: 'db', name: DB_NAME });
  vhost = await createVhost(VHOST);
  manifest.add({ kind: 'vhost', name: VHOST });
  checkAbort();

  // cinder-api and scheduler (schema by cinder-manage db sync, done by the helper); their conf's
  // backend section is never read by them
  stack = await startCinderStack({
    host: 'fleet-control',
    apiPort: API_PORT,
    transportUrl: vhost.transportUrl,
    databaseUrl: DB_URL,
    backends: { unused: { volume_driver: 'file' } },
    defaults: {
      report_interval: String(REPORT_INTERVAL),
      service_down_time: String(SERVICE_DOWN_TIME),
      ...(WEIGHT_HANDLER ? { scheduler_weight_handler: WEIGHT_HANDLERS[WEIGHT_HANDLER]! } : {}),
    },
    startTimeoutMs: 180_000,
  });
  manifest.add({ kind: 'dir', path: stack.dir });
  // cinder-api and the scheduler by pid for the watchdog (the helper holds their handles)
  for (const pid of processTree(process.pid)) {
    const cmd = readCmdline(pid);
    if (cmd.includes(stack.confPath)) manifest.add({ kind: 'pid', pid, word: stack.confPath });
  }
  say(`cinder-api ${stack.apiUrl} and scheduler up`);
  const api = cinderApi(stack.apiUrl, { timeoutMs: 180_000 });
  // cinder's default quota is 10 volumes a project
  const q = await api('PUT', '/os-quota-class-sets/default', { quota_class_set: { volumes: -1, gigabytes: -1, per_volume_gigabytes: -1 } });
  if (q.status !== 200) throw new Error(`quota class: ${q.status} ${JSON.stringify(q.body).slice(0, 300)}`);
  const mkType = async (name: string, backend: string) => {
    const r = await api('POST', '/types', { volume_type: { name, extra_specs: { volume_backend_name: backend } } });
    if (r.status !== 200) throw new Error(`volume type ${name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  };
  await mkType('fleet-cb', 'file');
  if (PEER) await mkType('fleet-cv', 'fake');

  const budget = (share: number) => Math.max(60_000, (DEADLINE_MS - (Date.now() - t0)) * share);
  const report: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, memTotalGiB: round(totalmem() / 1024 ** 3, 1) },
    options: { agents: N, volumes: M, concurrency: C, peer: PEER ? 'cinder-volume' : null, idleS: IDLE_S, settleS: SETTLE_S, reportInterval: REPORT_INTERVAL, serviceDownTime: SERVICE_DOWN_TIME, computeHosts: COMPUTE_HOSTS, schedulerWeightHandler: WEIGHT_HANDLER ?? 'ordered' },
    mariadbMaxConnections: raisedMaxConnections,
  };
  // the agents' phase takes the larger share of the time left; the peer's start-up is slower
  const cb = await runPhase('cinderblock', api, 'fleet-cb', 'file', M, budget(PEER ? 0.45 : 0.85));
  report.cinderblock = cb;
  printPhase(cb);
  writeReport(report);
  if (PEER) {
    checkAbort();
    const cv = await runPhase('cinder-volume', api, 'fleet-cv', 'fake', M, budget(0.75));
    report['cinder-volume'] = cv;
    printPhase(cv);
    printSideBySide(cb, cv);
    writeReport(report);
  }
  say(`report: ${JSON_OUT}`);
}

function writeReport(report: Record<string, unknown>): void {
  mkdirSync(dirname(JSON_OUT), { recursive: true });
  writeFileSync(JSON_OUT, `${JSON.stringify(report, null, 2)}\n`);
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`fleet bench failed: ${(err as Error).stack ?? String(err)}`);
  if (stack) console.error((await stack.logs()).slice(-3000));
} finally {
  stop.clear();
  say('cleaning up');
  await stack?.stop().catch(() => undefined);
  await vhost?.drop().catch(() => undefined);
  await rootQuery(`DROP DATABASE IF EXISTS ${DB_NAME}`).catch(() => undefined);
  if (raisedMaxConnections) {
    const [mc] = await rootQuery("SHOW VARIABLES LIKE 'max_connections'").catch(() => []);
    if (Number(mc?.Value) === raisedMaxConnections.to) await rootQuery(`SET GLOBAL max_connections = ${raisedMaxConnections.from}`).catch(() => undefined);
  }
  rmSync(workDir, { recursive: true, force: true });
  manifest.done();
}
process.exit(failed || stop.interrupted() ? 1 : 0);
