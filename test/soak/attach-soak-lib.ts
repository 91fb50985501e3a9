// The attach soak (issues 10 and 12): random concurrent attachment operations through the real
// cinder-api (on MariaDB, its own RabbitMQ vhost) against cinderblock as a process, while one
// watcher per host keeps logging in and reading with the credentials it last got, and the agent is
// killed with SIGKILL and then the target side fails in the middle of it. Where it runs is given:
// the stack (soak-stack.ts: started here on a file pool, or the lab host's for LVM in the guest)
// and the target side (soak-tgt-side.ts: a real tgtd, killed; soak-lio-side.ts: LIO through
// configfs, all of its state lost). What it checks:
//   - no read of a volume by a host that is not attached to it, at any sample (exposure);
//   - no read returning another volume's (or no) pattern (corruption);
//   - at quiescence: every target ACL names only initiators the database has attached;
//   - at the end: no target and no CHAP account left, no volume left reserved / attaching /
//     detaching / error_*, every volume's data pattern intact;
//   - the agent comes back after kill -9, and the exports after the target-side fault (tgtd
//     restarted by the agent; LIO restored by the agent's watch).
// Entry points: attach-soak.mts (the script, figures for the README) and attach-soak.test.ts (a
// short run under its own vitest config). Both call runAttachSoak().
//
// The model of who is attached comes from the API's answers only: an attachment is live from the
// 200 of its create until the 200 of its delete; a delete that failed leaves it "maybe" (live for
// the model, but nothing is expected of it); a create that failed with 5xx (or no answer) leaves its
// host/volume "maybe" until the reconciler has found and deleted, through the API, every attachment
// row of that volume the model does not know (cinder-api leaves the row `reserved` when its RPC
// fails). A watcher sample [t0, t1] is "unattached" when its host had nothing live, maybe or in
// flight on that volume at t0 and at t1 and nothing changed in between; only those samples can be
// exposures. "Attached" samples (a live, completed-or-not attachment, no delete in flight, nothing
// changed) should read the pattern; a refusal there is counted (and listed when it happens outside
// a fault window). Everything else is "ambiguous".
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { cinderApi, waitFor, type CinderApi } from '../helpers/cinder-stack.js';
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { qemuIo, type IscsiLogin } from '../helpers/libiscsi.js';
import { hostTargetIqn } from '../../drivers/targets/host-target/host-target-name.js';
import { repoRoot } from '../helpers/fixtures.js';
import { CleanupManifest } from '../helpers/soak-watchdog.js';
import { serialIsVolume, type SoakTargetSide } from './soak-target-side.js';
import { classifyQemuRead, hex, isRefusal, libiscsiInitiator, reachedData, type ReadOutcome, type SoakHost, type SoakInitiator } from './soak-initiator.js';
import { localSoakStack, type SoakStack, type SoakStackFactory } from './soak-stack.js';

export interface SoakOptions {
  ops: number;
  concurrency: number;
  volumes: number;
  seed: number;
  /** the whole run (setup to teardown) must end by then; the op phase stops issuing early enough */
  deadlineMs: number;
  /** kill -9 the agent at ~1/3 and fail the target side at ~2/3 of the ops */
  faults: boolean;
  /** the target side: tgtd (soak-tgt-side.ts) or LIO (soak-lio-side.ts) */
  target: SoakTargetSide;
  /** how the watchers reach the targets (default libiscsi; the kernel's in the lab: soak-kernel-initiator.ts) */
  initiator?: SoakInitiator;
  /** where cinder-api runs (default: started here, on a file pool) */
  stack?: SoakStackFactory;
  /**
   * The backend's target_layout (default per-volume). per-host adds: every watcher now and then
   * discovers and lists its host's LUNs by serial (a LUN of a volume the host has no attachment
   * of is an exposure), LUN numbers a host is given must never serve two volumes, and the
   * quiescence check reads host targets (LUN serials and ACLs against the database) and runs
   * `cinderblock audit`.
   */
  targetLayout?: 'per-volume' | 'per-host';
  /** where JSON-lines logs go; a temp directory when omitted */
  logDir?: string;
  /** keep logDir even when the run passes */
  keepLogs?: boolean;
  /** a cleanup watchdog for a run that is SIGKILLed */
  watchdog?: boolean;
  signal?: AbortSignal;
  progress?: (line: string) => void;
}

export const HOSTS = {
  a: { initiator: 'iqn.1994-05.com.redhat:soak-a', host: 'soak-a' },
  b: { initiator: 'iqn.1994-05.com.redhat:soak-b', host: 'soak-b' },
  c: { initiator: 'iqn.1994-05.com.redhat:soak-c', host: 'soak-c' },
} as const;
export type HostName = keyof typeof HOSTS;
const HOST_NAMES = Object.keys(HOSTS) as HostName[];
const IQN_PREFIX = 'iqn.2010-10.org.openstack:volume-';
const HOST_IQN_MARK = 'iqn.2010-10.org.openstack:cb-';

type OpKind = 'create' | 'complete' | 'delete' | 'reconcile-delete' | 'final-delete';
type OpOutcome = 'ok' | 'rejected' | 'failed' | 'no-answer';

interface OpRecord {
  i: number;
  kind: OpKind;
  host?: HostName;
  vol?: number;
  attachment?: string;
  status: number | null;
  outcome: OpOutcome;
  t0: number;
  t1: number;
  inFault: boolean;
  detail?: string;
}

type SampleClass = 'unattached' | 'attached' | 'ambiguous';

interface Sample {
  host: HostName;
  vol: number;
  t0: number;
  t1: number;
  cls: SampleClass;
  read: ReadOutcome;
  credentials: 'own' | 'other-host';
  inFault: boolean;
  ms: number;
  /** what qemu-io said, when it did not read the pattern and was not refused */
  out?: string;
}

interface Att {
  id: string;
  host: HostName;
  vol: number;
  completed: boolean;
  /** live: the API answered 200 and no delete failed; maybe: a delete failed */
  state: 'live' | 'maybe';
  /** an op works on it now */
  busy: boolean;
  deleting: boolean;
}

interface Pair {
  live: Set<string>;
  inflightCreate: number;
  /** creates that failed with 5xx / no answer and are not reconciled yet */
  failedCreates: number;
  lastFailedCreateAt: number;
  changes: number;
  lastChangeAt: number;
}

interface Snapshot {
  busy: boolean;
  attached: boolean;
  changes: number;
}

export interface FaultRecord {
  kind: 'agent-kill' | 'tgtd-kill' | 'lio-loss';
  at_op: number;
  at_s: number;
  old_pid: number | null;
  new_pid: number | null;
  /** agent: serving again; tgtd: a new tgtd answers on the control port; LIO: 0 (the kernel stays) */
  back_after_s: number | null;
  /** tgtd only: who started the new tgtd */
  restarted_by?: 'agent' | 'script' | null;
  /** target side: every live attachment's initiator back in its target's ACL (and its LUN, per host) */
  exports_restored_after_s?: number | null;
  /** the window ends 15 s (agent) / 10 s (target side) after the recovery */
  window_end_s: number | null;
  /** random ops that overlapped the window; failed = 5xx or no answer */
  ops_in_window: { total: number; failed: number };
  notes: string[];
}

export interface SoakResult {
  config: Record<string, unknown>;
  started_at: string;
  duration_s: number;
  phases_s: Record<string, number>;
  ops: {
    issued: number;
    by_kind: Record<string, Record<OpOutcome, number>>;
    http_status: Record<string, number>;
    during_faults: { total: number; not_ok: number };
  };
  watcher: {
    samples: number;
    ok_reads: number;
    /** tgtd refused the login (ACL 515 / CHAP 513) */
    refused: number;
    /** no target of that IQN (or no tgtd) */
    no_target: number;
    errors: number;
    ambiguous: number;
    unattached_samples: number;
    attached_samples: number;
    attached_refused_outside_faults: number;
    attached_refused_in_faults: number;
    with_other_hosts_credentials: number;
    /** per-host layout: discoveries with every LUN's serial read */
    discovery_samples: number;
    /** per-host layout on tgt: LUNs seen between their creation and their serial (tgt's default serial) */
    unidentified_luns_seen: number;
    per_host: Record<string, { samples: number; ok_reads: number; refused: number; no_target: number; errors: number; ambiguous: number }>;
    p50_ms: number;
  };
  exposures: Array<Record<string, unknown>>;
  corruptions: Array<Record<string, unknown>>;
  faults: FaultRecord[];
  reconcile: { orphans_found: number; orphans_deleted: number };
  quiescence_audit: { stale_acls: string[]; missing_acls: string[]; targets_without_attachment: string[]; converged_after_s: number | null; cinderblock_audit_exit?: number };
  final: {
    attachments_deleted: number;
    attachments_left: number;
    leftover_targets: string[];
    orphan_accounts: string[];
    stuck_volumes: string[];
    /** discoveries: the hosts' new discoveries after giving up their lost sessions (hosts that keep sessions) */
    post_detach_sweep: { samples: number; refused: number; no_target: number; errors: number; exposures: number; discoveries: number; error_examples: string[] };
    /** every host's disconnect at the end (the kernel initiator: its logouts): what was left */
    host_disconnect: { sessions_left: number; disks_left: number; notes: string[] } | null;
    patterns: { checked: number; intact: number; bad: string[] };
    after_pattern_check: { leftover_targets: string[]; orphan_accounts: string[]; stuck_volumes: string[] };
  };
  /** the agent's own RPC timings (its "RPC call X finished in N ms" lines), ms */
  agent_rpc_ms: Record<string, { n: number; p50: number; p90: number; max: number }>;
  /** /proc/loadavg (1 min) at the start and at the end of the op phase: other work on the machine */
  loadavg: { start: number; end_of_ops: number | null };
  findings: string[];
  agent_log_excerpts: string[];
  log_dir: string | null;
  pass: boolean;
}

// ---------------------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const patternOf = (vol: number): number => 0x10 + (vol % 0xe0);

function loadavg(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return -1;
  }
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

// ---------------------------------------------------------------------------------------------

export async function runAttachSoak(o: SoakOptions): Promise<SoakResult> {
  const T0 = Date.now();
  const startedAt = new Date(T0).toISOString();
  const now = () => (Date.now() - T0) / 1000;
  const say = (s: string) => o.progress?.(`[${now().toFixed(1).padStart(6)} s] ${s}`);
  const aborted = () => o.signal?.aborted === true;
  const checkAbort = () => {
    if (aborted()) throw new Error('aborted');
  };
  const rng = mulberry32(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  // watchers have their own random streams, so the op sequence stays the same for one seed
  const wrng = HOST_NAMES.map((_, i) => mulberry32(o.seed * 31 + i + 1));
  const layout = o.targetLayout ?? 'per-volume';
  /** per-host: the LUN numbers each host was given, and for which volume (never two volumes per number) */
  const lunsGiven = new Map<string, string>();

  const phases: Record<string, number> = {};
  let phaseStart = now();
  const phase = (name: string) => {
    const t = now();
    phases[name] = Math.round((t - phaseStart) * 10) / 10;
    phaseStart = t;
  };

  const logDir = o.logDir ?? (await mkdtemp(join(tmpdir(), 'cb-soak-')));
  const manifest = new CleanupManifest('cinderblock-attach-soak');
  if (o.watchdog) {
    manifest.add({ kind: 'dir', path: logDir });
    manifest.startWatchdog();
  }
  const opLog = createWriteStream(join(logDir, 'ops.jsonl'));
  const sampleLog = createWriteStream(join(logDir, 'samples.jsonl'));
  const agentLog = createWriteStream(join(logDir, 'agent.log'));
  const findings: string[] = [];
  const finding = (s: string) => {
    findings.push(s);
    say(`FINDING: ${s}`);
  };

  const side = o.target;
  const initiator = o.initiator ?? libiscsiInitiator();
  const soakHost = (h: HostName): SoakHost => ({ name: h, initiator: HOSTS[h].initiator });
  const dataOf = (ci: Record<string, any>): Record<string, any> => (ci.data ?? ci) as Record<string, any>;
  const sideCtx = { logDir, manifest: o.watchdog ? manifest : null, say, finding };
  let stack: SoakStack | undefined;
  let agent: AgentProcess | undefined;
  let agentGen = 0;
  const agentLines: string[] = [];
  const rpcMs: Record<string, number[]> = {};

  const result: SoakResult = {
    config: {
      ops: o.ops,
      concurrency: o.concurrency,
      volumes: o.volumes,
      seed: o.seed,
      hosts: HOST_NAMES.length,
      faults: o.faults,
      target: '',
      initiator: initiator.label,
      layout: o.targetLayout ?? 'per-volume',
      deadline_s: o.deadlineMs / 1000,
      volume_size_gib: 1,
      database: 'mysql',
    },
    started_at: startedAt,
    duration_s: 0,
    phases_s: phases,
    ops: { issued: 0, by_kind: {}, http_status: {}, during_faults: { total: 0, not_ok: 0 } },
    watcher: {
      samples: 0,
      ok_reads: 0,
      refused: 0,
      no_target: 0,
      errors: 0,
      ambiguous: 0,
      unattached_samples: 0,
      attached_samples: 0,
      attached_refused_outside_faults: 0,
      attached_refused_in_faults: 0,
      with_other_hosts_credentials: 0,
      discovery_samples: 0,
      unidentified_luns_seen: 0,
      per_host: {},
      p50_ms: 0,
    },
    exposures: [],
    corruptions: [],
    faults: [],
    reconcile: { orphans_found: 0, orphans_deleted: 0 },
    quiescence_audit: { stale_acls: [], missing_acls: [], targets_without_attachment: [], converged_after_s: null },
    final: {
      attachments_deleted: 0,
      attachments_left: 0,
      leftover_targets: [],
      orphan_accounts: [],
      stuck_volumes: [],
      post_detach_sweep: { samples: 0, refused: 0, no_target: 0, errors: 0, exposures: 0, discoveries: 0, error_examples: [] },
      host_disconnect: null,
      patterns: { checked: 0, intact: 0, bad: [] },
      after_pattern_check: { leftover_targets: [], orphan_accounts: [], stuck_volumes: [] },
    },
    agent_rpc_ms: {},
    loadavg: { start: loadavg(), end_of_ops: null },
    findings,
    agent_log_excerpts: [],
    log_dir: logDir,
    pass: false,
  };

  // --- processes --------------------------------------------------------------------------------

  const startAgent = async (): Promise<AgentProcess> => {
    agentGen++;
    const gen = agentGen;
    const a = startAgentProcess(stack!.confPath, [], { CINDERBLOCK_LOG_LEVEL: process.env.CB_SOAK_AGENT_LOG_LEVEL ?? 'info' });
    const pid = a.child.pid!;
    if (o.watchdog) manifest.add({ kind: 'pid', pid, word: stack!.confPath });
    let buf = '';
    const onData = (d: Buffer) => {
      agentLog.write(d);
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const rpc = /RPC call (attachment_update|attachment_delete|attachment_complete) finished in (\d+) ms/.exec(line);
        if (rpc) (rpcMs[rpc[1]!] ??= []).push(Number(rpc[2]));
        if (/"level":(40|50|60)|tgtd|restor|lost|exposure|leftover|serving/i.test(line)) agentLines.push(`[agent#${gen} ${now().toFixed(1)}s] ${line.slice(0, 600)}`);
      }
    };
    a.child.stdout!.on('data', onData);
    a.child.stderr!.on('data', onData);
    a.child.once('exit', (code, sig) => {
      agentLog.write(`--- agent #${gen} (pid ${pid}) exited: ${code ?? sig} at ${now().toFixed(1)} s ---\n`);
      if (o.watchdog) manifest.remove((e) => e.kind === 'pid' && e.pid === pid);
    });
    agentLog.write(`--- agent #${gen} (pid ${pid}) started at ${now().toFixed(1)} s ---\n`);
    return a;
  };

  let api: CinderApi;
  const volumeIds: string[] = [];
  const volIndex = new Map<string, number>();

  // --- the model ----------------------------------------------------------------------------------

  const atts = new Map<string, Att>();
  const pairs = new Map<string, Pair>();
  const pairKey = (h: HostName, v: number) => `${h}/${v}`;
  const pair = (h: HostName, v: number): Pair => {
    const k = pairKey(h, v);
    let p = pairs.get(k);
    if (!p) {
      p = { live: new Set(), inflightCreate: 0, failedCreates: 0, lastFailedCreateAt: 0, changes: 0, lastChangeAt: 0 };
      pairs.set(k, p);
    }
    return p;
  };
  const touch = (p: Pair) => {
    p.changes++;
    p.lastChangeAt = Date.now();
  };
  const snapshot = (h: HostName, v: number): Snapshot => {
    const p = pair(h, v);
    const liveAtts = [...p.live].map((id) => atts.get(id)!);
    return {
      busy: p.live.size > 0 || p.inflightCreate > 0 || p.failedCreates > 0,
      attached: liveAtts.some((a) => a.state === 'live' && !a.deleting),
      changes: p.changes,
    };
  };
  const ciOwn = new Map<string, Record<string, any>>();
  const ciAny = new Map<number, { host: HostName; ci: Record<string, any> }>();
  const reconciling = new Set<number>();

  const faultWindows: Array<{ start: number; end: number | null }> = [];
  const inFault = (t0: number, t1: number) => faultWindows.some((w) => t1 >= w.start && (w.end === null || t0 <= w.end));
  let agentUpSince = 0;
  let agentUp = false;

  const ops: OpRecord[] = [];
  const recordOp = (r: OpRecord) => {
    ops.push(r);
    opLog.write(`${JSON.stringify(r)}\n`);
  };
  const outcomeOf = (status: number | null): OpOutcome => (status === null ? 'no-answer' : status < 300 ? 'ok' : status < 500 ? 'rejected' : 'failed');
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number | null; body: any; error?: string }> => {
    try {
      const r = await api(method, path, body);
      return r;
    } catch (err) {
      return { status: null, body: null, error: String((err as Error).message ?? err) };
    }
  };
  const connector = (h: HostName) => ({ initiator: HOSTS[h].initiator, ip: '127.0.0.1', host: HOSTS[h].host, platform: 'x86_64', os_type: 'linux2', multipath: false });
  const loginOf = (ci: Record<string, any>, h: HostName): IscsiLogin => {
    const d = (ci.data ?? ci) as Record<string, any>;
    return { portal: d.target_portal, iqn: d.target_iqn, lun: d.target_lun, initiator: HOSTS[h].initiator, user: d.auth_username, password: d.auth_password };
  };
  const iqnOf = (volumeId: string) => `${IQN_PREFIX}${volumeId}`;
  const hostIqn = (host: string) => hostTargetIqn('iqn.2010-10.org.openstack:', stack!.backendName, host);

  // --- API helpers used outside the random ops ---------------------------------------------------

  const volume = async (id: string) => (await call('GET', `/volumes/${id}`)).body?.volume as Record<string, any> | undefined;
  const waitStatus = (id: string, status: string, ms = 120_000) =>
    waitFor(`volume ${id} to be ${status}`, ms, async () => {
      const v = await volume(id);
      return v?.status === status ? v : undefined;
    });
  const attachOnce = async (v: number, h: HostName) => {
    const r = await call('POST', '/attachments', { attachment: { volume_uuid: volumeIds[v], connector: connector(h), mode: 'rw' } });
    if (r.status !== 200) throw new Error(`attach of volume ${v} by ${h}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    const att = r.body.attachment as { id: string; connection_info: Record<string, any> };
    const c = await call('POST', `/attachments/${att.id}/action`, { 'os-complete': null });
    if (c.status !== 204) throw new Error(`os-complete of ${att.id}: ${c.status}`);
    return att;
  };
  const detachOnce = async (id: string) => {
    const r = await call('DELETE', `/attachments/${id}`);
    if (r.status !== 200) throw new Error(`delete of attachment ${id}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  };
  const dbAttachments = (volumeId?: string) => stack!.attachmentRows(volumeId);
  const mapLimit = async <T>(xs: T[], n: number, fn: (x: T, i: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(n, xs.length) }, async () => {
        while (next < xs.length) {
          const i = next++;
          await fn(xs[i]!, i);
        }
      }),
    );
  };

  // --- the random operations --------------------------------------------------------------------

  let issued = 0;
  const opsDeadline = T0 + o.deadlineMs * 0.65;
  /** cinder-api reserves a multiattach volume only when it is available or in-use: not while an attachment of it is not completed yet or a create runs. */
  const volumeReady = (v: number) =>
    !reconciling.has(v) &&
    HOST_NAMES.every((h) => pair(h, v).inflightCreate === 0 && pair(h, v).failedCreates === 0 && [...pair(h, v).live].every((id) => atts.get(id)!.completed));
  /** Something worth an op number: a volume cinder-api would reserve, an attachment to complete or delete. */
  const somethingToDo = () => [...atts.values()].some((a) => !a.busy) || [...Array(o.volumes).keys()].some(volumeReady);
  const runOp = async (i: number): Promise<void> => {
    const completable = [...atts.values()].filter((a) => a.state === 'live' && !a.completed && !a.busy);
    const deletable = [...atts.values()].filter((a) => !a.busy);
    const ready = [...Array(o.volumes).keys()].filter(volumeReady);
    const liveCount = atts.size;
    let wCreate = ready.length === 0 ? 0.05 : liveCount > o.volumes * 1.5 ? 0.2 : 0.4;
    const wComplete = completable.length ? 0.35 : 0;
    const wDelete = deletable.length ? (liveCount > o.volumes ? 0.45 : 0.25) : 0;
    if (!wComplete && !wDelete) wCreate = 1;
    const r = rng() * (wCreate + wComplete + wDelete);
    const kind: OpKind = r < wCreate ? 'create' : r < wCreate + wComplete ? 'complete' : 'delete';
    const t0 = now();
    if (kind === 'create') {
      // mostly a volume cinder-api will reserve; one in ten anywhere (cinder-api refuses it, or it races)
      let v = ready.length && rng() < 0.9 ? pick(ready) : Math.floor(rng() * o.volumes);
      for (let k = 0; k < o.volumes && reconciling.has(v); k++) v = (v + 1) % o.volumes;
      const h = pick(HOST_NAMES);
      for (let k = 0; k < o.volumes && reconciling.has(v); k++) v = (v + 1) % o.volumes;
      const p = pair(h, v);
      p.inflightCreate++;
      touch(p);
      const res = await call('POST', '/attachments', { attachment: { volume_uuid: volumeIds[v], connector: connector(h), mode: 'rw' } });
      const outcome = outcomeOf(res.status);
      const t1 = now();
      let id: string | undefined;
      if (outcome === 'ok') {
        const att = res.body.attachment as { id: string; connection_info: Record<string, any> };
        id = att.id;
        atts.set(att.id, { id: att.id, host: h, vol: v, completed: false, state: 'live', busy: false, deleting: false });
        p.live.add(att.id);
        ciOwn.set(pairKey(h, v), att.connection_info);
        if (layout === 'per-host') {
          const d = (att.connection_info.data ?? att.connection_info) as Record<string, any>;
          const k = `${h}/${String(d.target_iqn)}/${String(d.target_lun)}`;
          const before = lunsGiven.get(k);
          if (before !== undefined && before !== volumeIds[v]) finding(`LUN number reused: host ${h} was given LUN ${String(d.target_lun)} of ${String(d.target_iqn)} for volume ${v} after volume ${volIndex.get(before) ?? before}`);
          lunsGiven.set(k, volumeIds[v]!);
          if (d.target_iqn !== hostIqn(HOSTS[h].host)) finding(`host ${h} was given target ${String(d.target_iqn)}, not its own host target`);
        }
        ciAny.set(v, { host: h, ci: att.connection_info });
      } else if (outcome === 'failed' || outcome === 'no-answer') {
        p.failedCreates++;
        p.lastFailedCreateAt = Date.now();
      }
      p.inflightCreate--;
      touch(p);
      recordOp({ i, kind, host: h, vol: v, attachment: id, status: res.status, outcome, t0, t1, inFault: inFault(t0, t1), ...(outcome === 'ok' ? {} : { detail: (res.error ?? JSON.stringify(res.body)).slice(0, 300) }) });
      return;
    }
    const a = pick(kind === 'complete' ? completable : deletable);
    a.busy = true;
    const p = pair(a.host, a.vol);
    if (kind === 'complete') {
      const res = await call('POST', `/attachments/${a.id}/action`, { 'os-complete': null });
      const outcome = outcomeOf(res.status);
      if (outcome === 'ok') a.completed = true;
      a.busy = false;
      const t1 = now();
      recordOp({ i, kind, host: a.host, vol: a.vol, attachment: a.id, status: res.status, outcome, t0, t1, inFault: inFault(t0, t1), ...(outcome === 'ok' ? {} : { detail: (res.error ?? JSON.stringify(res.body)).slice(0, 300) }) });
      return;
    }
    a.deleting = true;
    touch(p);
    const res = await call('DELETE', `/attachments/${a.id}`);
    const outcome = outcomeOf(res.status);
    const t1 = now();
    if (outcome === 'ok' || res.status === 404) {
      atts.delete(a.id);
      p.live.delete(a.id);
    } else if (outcome === 'rejected') {
      // refused by cinder-api before anything was done
      a.deleting = false;
    } else {
      a.state = 'maybe';
      a.deleting = false;
    }
    a.busy = false;
    touch(p);
    recordOp({ i, kind, host: a.host, vol: a.vol, attachment: a.id, status: res.status, outcome, t0, t1, inFault: inFault(t0, t1), ...(outcome === 'ok' ? {} : { detail: (res.error ?? JSON.stringify(res.body)).slice(0, 300) }) });
  };

  /**
   * A create that failed with 5xx or no answer may have left a row (cinder-api reserves it before
   * the RPC and does not remove it when the RPC fails): once no create runs on that volume, delete
   * every row the model does not know, through the API, and the host/volume is clean again.
   */
  const reconcile = async (final = false): Promise<void> => {
    for (let v = 0; v < o.volumes; v++) {
      const ps = HOST_NAMES.map((h) => pair(h, v));
      if (!ps.some((p) => p.failedCreates > 0)) continue;
      if (!final && (!agentUp || Date.now() - agentUpSince < 10_000 || ps.some((p) => p.failedCreates > 0 && Date.now() - p.lastFailedCreateAt < 10_000))) continue;
      if (ps.some((p) => p.inflightCreate > 0)) continue;
      reconciling.add(v);
      try {
        // creates pick another volume from now on; wait for one that picked this one just before
        for (let k = 0; k < 600 && ps.some((p) => p.inflightCreate > 0); k++) await sleep(100);
        const snap = ps.map((p) => p.failedCreates);
        const rows = await dbAttachments(volumeIds[v]);
        const orphans = rows.filter((r) => !atts.has(r.id));
        result.reconcile.orphans_found += orphans.length;
        let allGone = true;
        for (const row of orphans) {
          const t0 = now();
          const res = await call('DELETE', `/attachments/${row.id}`);
          const t1 = now();
          const outcome = outcomeOf(res.status);
          recordOp({ i: -1, kind: 'reconcile-delete', vol: v, attachment: row.id, status: res.status, outcome, t0, t1, inFault: inFault(t0, t1), detail: `db row ${row.status} host ${row.host ?? '-'}` });
          if (outcome === 'ok' || res.status === 404) result.reconcile.orphans_deleted++;
          else allGone = false;
        }
        if (allGone) {
          ps.forEach((p, k) => {
            p.failedCreates -= snap[k]!;
            touch(p);
          });
        }
      } finally {
        reconciling.delete(v);
      }
    }
  };

  // --- watchers ---------------------------------------------------------------------------------

  const samples: Sample[] = [];
  let watching = false;
  /**
   * per-host: what host h discovers on its own host target, LUN by LUN, by serial. A serial of a
   * volume h had no attachment of, before and after the listing with nothing changed in between,
   * is an exposure; so is one that belongs to no volume of the run.
   */
  /** The volume (by id) is attached to h, or an op on it is in flight: its LUN may be mapped. */
  const pairBusyOrAttached = (h: HostName, volumeId: string): boolean => {
    const v = volIndex.get(volumeId);
    if (v === undefined) return false;
    const snap = snapshot(h, v);
    return snap.busy || snap.attached;
  };
  const discoverySample = async (h: HostName): Promise<void> => {
    const own = [...ciOwn.entries()].filter(([k]) => k.startsWith(`${h}/`)).map(([, ci]) => (ci.data ?? ci) as Record<string, any>);
    const d = own[own.length - 1];
    if (!d) return;
    const before = volumeIds.map((_, v) => snapshot(h, v));
    const t0 = now();
    const ls = await initiator.discover(soakHost(h), d, side.controllerLun);
    const seen: Array<{ iqn: string; lun: number; serial: string | null }> = [];
    for (const t of ls.targets) {
      if (t.iqn !== d.target_iqn) {
        // LIO's SendTargets names every target on the portal, whatever its ACLs (tgt's names only
        // those admitting the initiator); what must hold everywhere is that the login is refused,
        // so no LUN of another host's target is ever listed
        if (!side.sendTargetsListsAll) finding(`host ${h} discovered ${t.iqn}, which is not its own host target`);
        else if (t.luns.length > 0) finding(`exposure: host ${h} listed LUNs ${t.luns.map((l) => l.lun).join(',')} of ${t.iqn}, which is not its own host target`);
        if (t.luns.length > 0) result.exposures.push({ host: h, phase: 'discovery of another host target', iqn: t.iqn, luns: t.luns.map((l) => l.lun), t0 });
        continue;
      }
      for (const l of t.luns) seen.push({ iqn: t.iqn, lun: l.lun, serial: l.serial });
    }
    const t1 = now();
    const after = volumeIds.map((_, v) => snapshot(h, v));
    result.watcher.discovery_samples++;
    for (const x of seen) {
      if (x.serial === null) continue;
      const v = volumeIds.findIndex((id) => serialIsVolume(x.serial!, id));
      if (v < 0 && /^beaf\d+$/.test(x.serial)) {
        // tgt's default serial ("beaf" + tid + LUN): the LUN is being made and its serial is set by
        // the next tgtadm request (tgtadm cannot give it at creation). Its number must still be new
        // to this host: one it was given for another volume would be the aliasing we guard against.
        result.watcher.unidentified_luns_seen++;
        const given = lunsGiven.get(`${h}/${x.iqn}/${x.lun}`);
        if (given !== undefined && !pairBusyOrAttached(h, given)) finding(`host ${h} sees LUN ${x.lun} with tgt's default serial where it had volume ${volIndex.get(given) ?? given} before`);
        continue;
      }
      if (v < 0) {
        finding(`host ${h} discovered LUN ${x.lun} with serial ${x.serial}, which is no volume of this run`);
        continue;
      }
      const s0 = before[v]!;
      const s1 = after[v]!;
      if (s0.changes === s1.changes && !s0.busy && !s1.busy) {
        result.exposures.push({ host: h, vol: v, volume_id: volumeIds[v], phase: 'discovery', lun: x.lun, t0, t1 });
        finding(`exposure: host ${h} discovered volume ${v} as LUN ${x.lun} at ${t0.toFixed(1)}-${t1.toFixed(1)} s with no attachment of it`);
      }
      const k = `${h}/${x.iqn}/${x.lun}`;
      const given = lunsGiven.get(k);
      if (given !== undefined && given !== volumeIds[v]) finding(`host ${h} sees LUN ${x.lun} serving volume ${v}, but that number was given to it for volume ${volIndex.get(given) ?? given}`);
    }
  };

  const watcher = async (h: HostName, idx: number) => {
    const r = wrng[idx]!;
    let round = 0;
    while (watching && !aborted()) {
      if (layout === 'per-host' && round++ % 4 === 3) {
        await discoverySample(h).catch((err: unknown) => say(`discovery sample of ${h} failed: ${String(err)}`));
        continue;
      }
      // half the time a volume this host touched in the last 5 s (just attached or detached)
      const recent = [...Array(o.volumes).keys()].filter((v) => Date.now() - pair(h, v).lastChangeAt < 5000);
      const v = recent.length && r() < 0.5 ? recent[Math.floor(r() * recent.length)]! : Math.floor(r() * o.volumes);
      const own = ciOwn.get(pairKey(h, v));
      const ci = own ?? ciAny.get(v)?.ci;
      if (!ci) {
        await sleep(50);
        continue;
      }
      const s0 = snapshot(h, v);
      const t0 = now();
      const res = await initiator.read(soakHost(h), dataOf(ci), patternOf(v));
      const t1 = now();
      const s1 = snapshot(h, v);
      const read = res.read;
      const same = s0.changes === s1.changes;
      const cls: SampleClass = same && !s0.busy && !s1.busy ? 'unattached' : same && s0.attached && s1.attached ? 'attached' : 'ambiguous';
      const sample: Sample = { host: h, vol: v, t0, t1, cls, read, credentials: own ? 'own' : 'other-host', inFault: inFault(t0, t1), ms: res.ms };
      if (read !== 'read-ok' && read !== 'refused' && read !== 'no-target') sample.out = res.text.replace(/\s+/g, ' ').slice(0, 240);
      samples.push(sample);
      sampleLog.write(`${JSON.stringify(sample)}\n`);
      if (cls === 'unattached' && reachedData(read)) {
        const e = { ...sample, volume_id: volumeIds[v], output: res.text.slice(0, 400), model: { ...pair(h, v), live: [...pair(h, v).live] } };
        result.exposures.push(e);
        finding(`exposure: host ${h} (${HOSTS[h].initiator}) read volume ${v} (${volumeIds[v]}) at ${t0.toFixed(1)}-${t1.toFixed(1)} s with no attachment of it (${read}, ${sample.credentials} credentials)`);
      }
      if (read === 'read-mismatch') {
        result.corruptions.push({ ...sample, volume_id: volumeIds[v], output: res.text.slice(0, 400) });
        finding(`corruption: host ${h} read volume ${v} at ${t0.toFixed(1)} s and the pattern ${hex(patternOf(v))} did not match`);
      }
      await sleep(20 + Math.floor(r() * 150));
    }
  };

  // --- faults -----------------------------------------------------------------------------------

  const killAgent = async (atOp: number): Promise<void> => {
    const old = agent!;
    const oldPid = old.child.pid ?? null;
    const win = { start: now(), end: null as number | null };
    faultWindows.push(win);
    const rec: FaultRecord = { kind: 'agent-kill', at_op: atOp, at_s: win.start, old_pid: oldPid, new_pid: null, back_after_s: null, window_end_s: null, ops_in_window: { total: 0, failed: 0 }, notes: [] };
    result.faults.push(rec);
    say(`FAULT: kill -9 of the agent (pid ${oldPid}) at op ${atOp}`);
    agentUp = false;
    const exited = new Promise<void>((r) => (old.child.exitCode !== null || old.child.signalCode !== null ? r() : old.child.once('exit', () => r())));
    old.child.kill('SIGKILL');
    await exited;
    agent = await startAgent();
    rec.new_pid = agent.child.pid ?? null;
    try {
      await agent.waitForLog(/serving \d+ backend/, 180_000);
      rec.back_after_s = Math.round((now() - win.start) * 10) / 10;
      agentUp = true;
      agentUpSince = Date.now();
      say(`agent serving again after ${rec.back_after_s} s (pid ${rec.new_pid})`);
    } catch (err) {
      finding(`the agent restarted after kill -9 did not log "serving" within 180 s: ${(err as Error).message.split('\n')[0]}`);
    }
    // the window covers the redelivered RPCs and the restore: 15 s past serving
    await sleep(15_000);
    win.end = now();
    rec.window_end_s = win.end;
  };

  /** Every definitely-live attachment's initiator in its volume's ACL (what a restore must bring back). */
  const exportsMatchModel = async (): Promise<{ ok: boolean; missing: string[] }> => {
    const ts = await side.targets();
    if (!ts) return { ok: false, missing: ['the target side does not answer'] };
    const missing: string[] = [];
    for (const a of atts.values()) {
      if (a.state !== 'live' || a.deleting) continue;
      if (layout === 'per-host') {
        // the host's own target, admitting it, with a LUN carrying this volume's serial under the
        // number the host was given (a restore must put back the same numbers)
        const t = ts.find((x) => x.iqn === hostIqn(HOSTS[a.host].host));
        const lun = t?.luns.find((l) => serialIsVolume(l.serial, volumeIds[a.vol]!));
        const ci = ciOwn.get(pairKey(a.host, a.vol));
        const given = ((ci?.data ?? ci) as Record<string, unknown> | undefined)?.target_lun;
        const problem = !t ? 'no target' : !t.serving ? 'target not serving' : !lun ? 'no LUN' : !t.acls.includes(HOSTS[a.host].initiator) ? 'no ACL' : typeof given === 'number' && given !== lun.lun ? `LUN ${lun.lun}, given ${given}` : null;
        if (problem) missing.push(`${a.host}/vol${a.vol} (${problem})`);
        continue;
      }
      const t = ts.find((x) => x.iqn === iqnOf(volumeIds[a.vol]!));
      if (!t || !t.serving || !t.acls.includes(HOSTS[a.host].initiator)) missing.push(`${a.host}/vol${a.vol}${t ? (t.serving ? '' : ' (target not serving)') : ' (no target)'}`);
    }
    return { ok: missing.length === 0, missing: [...new Set(missing)] };
  };

  const failTargetSide = async (atOp: number): Promise<void> => {
    const win = { start: now(), end: null as number | null };
    faultWindows.push(win);
    say(`FAULT at op ${atOp}: ${side.faultWords}; ${atts.size} attachments live in the model`);
    const out = await side.injectFault(sideCtx, now);
    const rec: FaultRecord = { kind: side.faultKind, at_op: atOp, at_s: win.start, ...out, exports_restored_after_s: null, window_end_s: null, ops_in_window: { total: 0, failed: 0 } };
    delete (rec as { skipped?: string }).skipped;
    result.faults.push(rec);
    if (out.skipped) {
      finding(`target-side fault skipped: ${out.skipped}`);
      win.end = now();
      rec.window_end_s = win.end;
      return;
    }
    // the restore: every live attachment's initiator back in its ACL
    const restoreDeadline = Date.now() + 90_000;
    let last: string[] = [];
    while (Date.now() < restoreDeadline) {
      const m = await exportsMatchModel();
      if (m.ok) {
        rec.exports_restored_after_s = Math.round((now() - win.start) * 10) / 10;
        break;
      }
      last = m.missing;
      await sleep(500);
    }
    if (rec.exports_restored_after_s === null) finding(`after the ${side.faultWords}, exports of live attachments were not restored within 90 s: missing ${last.slice(0, 10).join(', ')}`);
    else say(`exports restored ${rec.exports_restored_after_s} s after the fault`);
    await sleep(10_000);
    win.end = now();
    rec.window_end_s = win.end;
  };

  // --- the run ----------------------------------------------------------------------------------

  const teardown = async () => {
    watching = false;
    await agent?.stop().catch(() => undefined);
    await stack?.stop().catch(() => undefined);
    await side.teardown().catch(() => undefined);
    await Promise.all([opLog, sampleLog, agentLog].map((s: WriteStream) => new Promise<void>((r) => s.end(() => r()))));
  };

  let failure: unknown = null;
  try {
    // setup
    const prepared = await side.prepare(sideCtx);
    result.config.target = side.label;
    await initiator.prepare(HOST_NAMES.map(soakHost));
    checkAbort();
    stack = await (o.stack ?? localSoakStack)({ target: prepared, layout, manifest: o.watchdog ? manifest : null });
    api = cinderApi(stack.apiUrl, { timeoutMs: 180_000 });
    agent = await startAgent();
    await agent.waitForLog(/serving \d+ backend/, 120_000);
    agentUp = true;
    agentUpSince = Date.now();
    await waitFor('the scheduler to know the pool', 60_000, async () => ((await call('GET', '/scheduler-stats/get_pools')).body?.pools?.length ? true : undefined));
    const t = await call('POST', '/types', { volume_type: { name: 'multiattach', extra_specs: { multiattach: '<is> True' } } });
    if (t.status !== 200) throw new Error(`volume type: ${t.status} ${JSON.stringify(t.body)}`);
    const typeId = t.body.volume_type.id as string;
    // cinder's default quota is 10 volumes a project
    const q = await call('PUT', '/os-quota-class-sets/default', { quota_class_set: { volumes: -1, gigabytes: -1, per_volume_gigabytes: -1 } });
    if (q.status !== 200) throw new Error(`quota class: ${q.status} ${JSON.stringify(q.body).slice(0, 300)}`);
    await side.afterAgentStart();
    say(`stack up: ${stack.label}, agent pid ${agent.child.pid}, ${side.label}; logs in ${logDir}`);
    phase('setup');

    // volumes and their patterns
    const created = await Promise.all(
      Array.from({ length: o.volumes }, async (_, v) => {
        const r = await call('POST', '/volumes', { volume: { size: 1, name: `soak-${v}`, volume_type: typeId } });
        if (r.status !== 202) throw new Error(`volume create ${v}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body.volume.id as string;
      }),
    );
    volumeIds.push(...created);
    created.forEach((id, v) => volIndex.set(id, v));
    await Promise.all(created.map((id) => waitStatus(id, 'available', 180_000)));
    checkAbort();
    await mapLimit(created, 4, async (_, v) => {
      const h = HOST_NAMES[v % HOST_NAMES.length]!;
      const att = await attachOnce(v, h);
      const l = loginOf(att.connection_info, h);
      const w = await qemuIo(l, `write -P ${hex(patternOf(v))} 0 1M`);
      if (w.exitCode !== 0) throw new Error(`pattern write on volume ${v}: ${w.stdout} ${w.stderr}`);
      const rd = await qemuIo(l, `read -P ${hex(patternOf(v))} 0 1M`);
      if (rd.exitCode !== 0) throw new Error(`pattern read-back on volume ${v}: ${rd.stdout} ${rd.stderr}`);
      ciOwn.set(pairKey(h, v), att.connection_info);
      ciAny.set(v, { host: h, ci: att.connection_info });
      await detachOnce(att.id);
    });
    await Promise.all(created.map((id) => waitStatus(id, 'available')));
    await side.afterAgentStart();
    say(`${o.volumes} volumes created and patterned`);
    phase('volumes_and_patterns');

    // the soak
    watching = true;
    const watchers = HOST_NAMES.map((h, k) => watcher(h, k));
    const agentAt = Math.floor(o.ops / 3);
    const targetAt = Math.floor((2 * o.ops) / 3);
    let agentFault: Promise<void> | null = null;
    let targetFault: Promise<void> | null = null;
    let reconciling_ = true;
    const reconciler = (async () => {
      while (reconciling_ && !aborted()) {
        await reconcile().catch((err: unknown) => say(`reconcile: ${String(err)}`));
        await sleep(2000);
      }
    })();
    let lastReport = Date.now();
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (issued < o.ops && !aborted()) {
          if (Date.now() > opsDeadline) {
            if (issued < o.ops) say(`op phase deadline reached after ${issued} ops`);
            issued = o.ops;
            break;
          }
          // nothing but doomed creates (every volume reserved by a create in flight or left by a
          // failed one, every attachment busy): wait rather than spend op numbers on 400s
          for (let k = 0; k < 600 && !somethingToDo() && !aborted(); k++) await sleep(100);
          if (issued >= o.ops) break;
          const i = issued++;
          if (o.faults && i === agentAt) agentFault = killAgent(i);
          if (o.faults && i === targetAt) targetFault = (async () => {
            await agentFault;
            await failTargetSide(i);
          })();
          await runOp(i);
          if (Date.now() - lastReport > 15_000) {
            lastReport = Date.now();
            say(`${ops.length}/${o.ops} ops done, ${atts.size} attachments live, ${samples.length} watcher samples, ${result.exposures.length} exposures`);
          }
        }
      }),
    );
    result.ops.issued = ops.filter((x) => x.i >= 0).length;
    await agentFault;
    await targetFault;
    result.loadavg.end_of_ops = loadavg();
    say(`op phase done: ${result.ops.issued} ops`);
    phase('ops');

    // quiescence: nothing queued for the volume service, failed creates reconciled
    reconciling_ = false;
    await reconciler;
    await waitFor('the volume service queues to drain', 120_000, async () => ((await stack!.volumeQueueDepth()) === 0 ? true : undefined)).catch((err: unknown) => finding(`queues did not drain: ${String(err)}`));
    await reconcile(true);
    await sleep(5000);
    watching = false;
    await Promise.all(watchers);
    phase('quiesce');

    // audit at quiescence: ACLs against the database's attachments
    const auditStart = now();
    for (;;) {
      const rows = await dbAttachments();
      const ts = (await side.targets()) ?? [];
      const stale: string[] = [];
      const missing: string[] = [];
      const without: string[] = [];
      if (layout === 'per-host') {
        // host targets: each LUN's serial and each ACL backed by an attachment of that host
        for (const h of HOST_NAMES) {
          const iqn = hostIqn(HOSTS[h].host);
          const t = ts.find((x) => x.iqn === iqn);
          const mine = rows.filter((r) => r.host === HOSTS[h].host && ['attaching', 'attached'].includes(r.status));
          if (t) {
            for (const acl of t.acls) if (!mine.some((r) => r.initiator === acl)) stale.push(`${h}: ACL ${acl} with no attachment of that host in the database`);
            for (const l of t.luns) {
              const vid = volumeIds.find((id) => serialIsVolume(l.serial, id));
              if (!vid || !mine.some((r) => r.volumeId === vid)) stale.push(`${h}: LUN ${l.lun} (serial ${l.serial}) with no attachment of its volume from that host`);
            }
            if (mine.length === 0) without.push(`${h} ${iqn} luns=[${t.luns.map((x) => x.lun).join(',')}]`);
          }
          for (const r of mine) {
            if (!t?.serving || !t.luns.some((l) => serialIsVolume(l.serial, r.volumeId))) missing.push(`vol${volIndex.get(r.volumeId) ?? '?'}: attachment ${r.id} (${r.status}, ${r.host}) has no LUN in a serving host target${t ? '' : ' (no target)'}`);
          }
        }
        for (const t of ts.filter((x) => x.iqn.startsWith(HOST_IQN_MARK) && !HOST_NAMES.some((h) => hostIqn(HOSTS[h].host) === x.iqn))) without.push(`unknown host target ${t.iqn}`);
      }
      for (const t of ts.filter((x) => x.iqn.startsWith(IQN_PREFIX))) {
        const vid = t.iqn.slice(IQN_PREFIX.length);
        const mine = rows.filter((r) => r.volumeId === vid);
        const allowed = new Set(mine.map((r) => r.initiator).filter(Boolean));
        if (mine.length === 0) without.push(`vol${volIndex.get(vid) ?? '?'} ${t.iqn} acl=[${t.acls.join(',')}]`);
        for (const acl of t.acls) if (!allowed.has(acl)) stale.push(`vol${volIndex.get(vid) ?? '?'}: ACL ${acl} with no attachment of that initiator in the database`);
      }
      for (const r of rows) {
        if (layout === 'per-host' || !r.initiator || !['attaching', 'attached'].includes(r.status)) continue;
        const t = ts.find((x) => x.iqn === iqnOf(r.volumeId));
        if (!t || !t.serving || !t.acls.includes(r.initiator)) missing.push(`vol${volIndex.get(r.volumeId) ?? '?'}: attachment ${r.id} (${r.status}, ${r.host}) has no ACL on a serving target${t ? '' : ' (no target)'}`);
      }
      Object.assign(result.quiescence_audit, { stale_acls: stale, missing_acls: missing, targets_without_attachment: without });
      if (!stale.length && !missing.length && !without.length) {
        result.quiescence_audit.converged_after_s = Math.round((now() - auditStart) * 10) / 10;
        break;
      }
      if (now() - auditStart > 60) {
        for (const s of stale) finding(`stale ACL at quiescence: ${s}`);
        for (const s of missing) finding(`missing ACL at quiescence: ${s}`);
        for (const s of without) finding(`target without any attachment at quiescence: ${s}`);
        break;
      }
      await sleep(1000);
    }
    {
      // the agent's own audit, as an operator runs it, must agree: nothing found (per volume it
      // checks whom each target admits; per host, LUNs, serials and ACLs too)
      const au = await execa(process.execPath, [join(repoRoot, 'bin', 'cinderblock.js'), 'audit', '--config-file', stack.confPath, '--json'], { reject: false, timeout: 120_000 });
      result.quiescence_audit.cinderblock_audit_exit = au.exitCode ?? -1;
      if (au.exitCode !== 0) finding(`cinderblock audit at quiescence exited ${String(au.exitCode)}: ${String(au.stdout).slice(0, 1500)} ${String(au.stderr).slice(0, 500)}`);
    }
    phase('audit');

    // final: delete every attachment left, through the API
    let left = await dbAttachments();
    for (let round = 0; round < 4 && left.length; round++) {
      await mapLimit(left, 4, async (row) => {
        const t0 = now();
        const res = await call('DELETE', `/attachments/${row.id}`);
        const t1 = now();
        const outcome = outcomeOf(res.status);
        recordOp({ i: -1, kind: 'final-delete', vol: volIndex.get(row.volumeId), attachment: row.id, status: res.status, outcome, t0, t1, inFault: false, ...(outcome === 'ok' ? {} : { detail: (res.error ?? JSON.stringify(res.body)).slice(0, 300) }) });
        if (outcome === 'ok') {
          result.final.attachments_deleted++;
          const a = atts.get(row.id);
          if (a) {
            pair(a.host, a.vol).live.delete(a.id);
            atts.delete(a.id);
          }
        }
      });
      left = await dbAttachments();
      if (left.length) await sleep(5000);
    }
    result.final.attachments_left = left.length;
    if (left.length) finding(`${left.length} attachment(s) could not be deleted through the API: ${left.map((r) => `${r.id} (${r.status})`).join(', ')}`);
    for (const p of pairs.values()) {
      p.failedCreates = 0;
      touch(p);
    }

    const leftovers = async () => {
      const ts = (await side.targets()) ?? [];
      const accs = await side.unboundAccounts();
      const vols = await Promise.all(volumeIds.map(async (id, v) => ({ v, id, vol: await volume(id) })));
      return {
        targets: ts.filter((x) => x.iqn.startsWith(IQN_PREFIX) || x.iqn.startsWith(HOST_IQN_MARK)).map((x) => `vol${volIndex.get(x.iqn.slice(IQN_PREFIX.length)) ?? '?'} ${x.iqn} acl=[${x.acls.join(',')}] accounts=[${x.accounts.length}]`),
        accounts: accs.map((a) => `${a.slice(0, 4)}…`),
        stuck: vols.filter((x) => x.vol?.status !== 'available').map((x) => `vol${x.v} ${x.id}: ${x.vol?.status ?? 'unknown'} (attach_status ${x.vol?.attach_status ?? '?'}, ${x.vol?.attachments?.length ?? '?'} attachments)`),
      };
    };
    // volumes settle to available after the last delete
    await waitFor('every volume to be available', 60_000, async () => ((await leftovers()).stuck.length === 0 ? true : undefined)).catch(() => undefined);
    const lo = await leftovers();
    result.final.leftover_targets = lo.targets;
    result.final.orphan_accounts = lo.accounts;
    result.final.stuck_volumes = lo.stuck;
    for (const s of lo.targets) finding(`leftover target after every attachment was deleted: ${s}`);
    if (lo.accounts.length) finding(`${lo.accounts.length} CHAP account(s) bound to no target after every attachment was deleted`);
    for (const s of lo.stuck) finding(`volume not available after every attachment was deleted: ${s}`);

    // post-detach sweep: every host, every volume, with the credentials it last had: refused. Hosts
    // that keep sessions (the kernel's) are swept twice: as they are (stale disks, sessions in
    // recovery), then after logging out of what they lost, with fresh logins and a new discovery
    const sweep = () =>
      mapLimit(
        HOST_NAMES.flatMap((h) => volumeIds.map((_, v) => [h, v] as const)),
        3,
        async ([h, v]) => {
          const ci = ciOwn.get(pairKey(h, v)) ?? ciAny.get(v)?.ci;
          if (!ci) return;
          const res = await initiator.read(soakHost(h), dataOf(ci), patternOf(v));
          const read = res.read;
          result.final.post_detach_sweep.samples++;
          if (isRefusal(read)) result.final.post_detach_sweep.refused++;
          if (read === 'no-target') result.final.post_detach_sweep.no_target++;
          if (read === 'error') {
            result.final.post_detach_sweep.errors++;
            if (result.final.post_detach_sweep.error_examples.length < 3) result.final.post_detach_sweep.error_examples.push(`${h}/vol${v}: ${res.text.replace(/\s+/g, ' ').slice(0, 240)}`);
          }
          if (reachedData(read)) {
            result.final.post_detach_sweep.exposures++;
            result.exposures.push({ host: h, vol: v, volume_id: volumeIds[v], phase: 'post-detach sweep', read, output: res.text.slice(0, 400) });
            finding(`exposure after every attachment was deleted: host ${h} reads volume ${v} (${read})`);
          }
        },
      );
    await sweep();
    if (initiator.keepsSessions) {
      await initiator.dropLostSessions();
      await sweep();
      for (const h of HOST_NAMES) {
        const ci = [...ciOwn.entries()].find(([k]) => k.startsWith(`${h}/`))?.[1];
        if (!ci) continue;
        const listed = (await initiator.discover(soakHost(h), dataOf(ci), side.controllerLun)).targets.filter((t) => t.luns.length > 0);
        result.final.post_detach_sweep.discoveries++;
        for (const t of listed) {
          result.exposures.push({ host: h, phase: 'post-detach discovery', iqn: t.iqn, luns: t.luns });
          finding(`exposure after every attachment was deleted: host ${h} lists LUNs ${t.luns.map((l) => l.lun).join(',')} of ${t.iqn}`);
        }
      }
    }
    phase('final_cleanup');

    // patterns intact
    await mapLimit(volumeIds, 4, async (id, v) => {
      const h = HOST_NAMES[(v + 1) % HOST_NAMES.length]!;
      result.final.patterns.checked++;
      try {
        const att = await attachOnce(v, h);
        const rd = await qemuIo(loginOf(att.connection_info, h), `read -P ${hex(patternOf(v))} 0 1M`);
        if (rd.exitCode === 0) result.final.patterns.intact++;
        else result.final.patterns.bad.push(`vol${v} ${id}: ${classifyQemuRead(rd)} ${`${rd.stdout} ${rd.stderr}`.trim().slice(0, 200)}`);
        await detachOnce(att.id);
      } catch (err) {
        result.final.patterns.bad.push(`vol${v} ${id}: ${(err as Error).message.slice(0, 300)}`);
      }
    });
    for (const b of result.final.patterns.bad) finding(`pattern check failed: ${b}`);
    await waitFor('every volume to be available', 60_000, async () => ((await leftovers()).stuck.length === 0 ? true : undefined)).catch(() => undefined);
    const lo2 = await leftovers();
    result.final.after_pattern_check = { leftover_targets: lo2.targets, orphan_accounts: lo2.accounts, stuck_volumes: lo2.stuck };
    for (const s of lo2.targets) finding(`leftover target after the pattern check: ${s}`);
    if (lo2.accounts.length) finding(`${lo2.accounts.length} CHAP account(s) bound to no target after the pattern check`);
    for (const s of lo2.stuck) finding(`volume not available after the pattern check: ${s}`);
    phase('pattern_check');

    // the hosts disconnect: nothing of theirs may be left
    const gone = await initiator.disconnectAll();
    result.final.host_disconnect = gone;
    if (gone.sessions_left || gone.disks_left) finding(`after every host's disconnect: ${gone.sessions_left} session(s) and ${gone.disks_left} disk(s) left (${gone.notes.join('; ')})`);
    phase('host_disconnect');
  } catch (err) {
    failure = err;
    finding(`the run stopped: ${(err as Error).message?.split('\n')[0] ?? String(err)}`);
  } finally {
    watching = false;
    say('teardown');
    await teardown();
    phase('teardown');
  }

  // figures
  const byKind: SoakResult['ops']['by_kind'] = {};
  for (const x of ops) {
    const k = (byKind[x.kind] ??= { ok: 0, rejected: 0, failed: 0, 'no-answer': 0 });
    k[x.outcome]++;
    const s = String(x.status ?? 'none');
    result.ops.http_status[`${x.kind} ${s}`] = (result.ops.http_status[`${x.kind} ${s}`] ?? 0) + 1;
  }
  result.ops.by_kind = byKind;
  // each random op counts for the first fault window it overlaps (in flight at the kill, or started in it)
  const claimed = new Set<OpRecord>();
  for (const f of [...result.faults].sort((a, b) => a.at_s - b.at_s)) {
    const inWin = ops.filter((x) => x.i >= 0 && !claimed.has(x) && x.t1 >= f.at_s && (f.window_end_s === null || x.t0 <= f.window_end_s));
    inWin.forEach((x) => claimed.add(x));
    f.ops_in_window = { total: inWin.length, failed: inWin.filter((x) => x.outcome === 'failed' || x.outcome === 'no-answer').length };
  }
  const rand = ops.filter((x) => x.i >= 0);
  result.ops.during_faults = { total: rand.filter((x) => x.inFault).length, not_ok: rand.filter((x) => x.inFault && x.outcome !== 'ok').length };
  const w = result.watcher;
  w.samples = samples.length;
  for (const s of samples) {
    const ph = (w.per_host[s.host] ??= { samples: 0, ok_reads: 0, refused: 0, no_target: 0, errors: 0, ambiguous: 0 });
    ph.samples++;
    const outcome = s.read === 'read-ok' ? 'ok_reads' : isRefusal(s.read) ? 'refused' : s.read === 'no-target' ? 'no_target' : 'errors';
    w[outcome]++;
    ph[outcome]++;
    if (s.cls === 'ambiguous') {
      w.ambiguous++;
      ph.ambiguous++;
    }
    if (s.cls === 'unattached') w.unattached_samples++;
    if (s.cls === 'attached') {
      w.attached_samples++;
      if (s.read !== 'read-ok') {
        if (s.inFault) w.attached_refused_in_faults++;
        else w.attached_refused_outside_faults++;
      }
    }
    if (s.credentials === 'other-host') w.with_other_hosts_credentials++;
  }
  w.p50_ms = percentile(samples.map((s) => s.ms), 50);
  for (const [k, v] of Object.entries(rpcMs)) result.agent_rpc_ms[k] = { n: v.length, p50: percentile(v, 50), p90: percentile(v, 90), max: Math.max(...v) };
  const attachedBad = samples.filter((s) => s.cls === 'attached' && s.read !== 'read-ok' && !s.inFault);
  if (attachedBad.length) {
    finding(
      `${attachedBad.length} sample(s) of an attached host that could not read its volume outside the fault windows, e.g. ${attachedBad
        .slice(0, 5)
        .map((s) => `${s.host}/vol${s.vol} at ${s.t0.toFixed(1)} s (${s.read})`)
        .join('; ')}`,
    );
  }
  result.agent_log_excerpts = agentLines.filter((l) => /"level":(40|50|60)|tgtd|restor|serving/.test(l)).slice(0, 200);
  result.duration_s = Math.round(now() * 10) / 10;
  result.pass = failure === null && findings.length === 0;
  if (result.pass && !o.keepLogs) {
    await rm(logDir, { recursive: true, force: true });
    result.log_dir = null;
  }
  if (o.watchdog) {
    if (result.log_dir) manifest.remove((e) => e.kind === 'dir' && e.path === logDir);
    manifest.done();
  }
  return result;
}

/** The summary table the script prints. */
export function summaryTable(r: SoakResult): string {
  const lines: string[] = [];
  const row = (k: string, v: string | number) => lines.push(`| ${k} | ${v} |`);
  lines.push('| | |', '|---|---|');
  row('result', r.pass ? 'PASS' : `FAIL (${r.findings.length} finding(s))`);
  row('duration', `${r.duration_s} s (${Object.entries(r.phases_s).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  row('config', `${r.config.volumes} volumes, ${r.config.hosts} hosts (${r.config.initiator}), ${r.config.ops} ops at concurrency ${r.config.concurrency}, seed ${r.config.seed}, ${r.config.target}, ${r.config.layout}`);
  for (const [k, v] of Object.entries(r.ops.by_kind)) row(`ops ${k}`, `ok ${v.ok}, rejected ${v.rejected}, failed ${v.failed}, no answer ${v['no-answer']}`);
  row('ops during fault windows', `${r.ops.during_faults.total} (${r.ops.during_faults.not_ok} not ok)`);
  const w = r.watcher;
  row('watcher samples', `${w.samples}: ok reads ${w.ok_reads}, refused ${w.refused} (the login by the ACL, or the LUN not mapped), no target ${w.no_target}, other errors ${w.errors}; ambiguous ${w.ambiguous}; p50 ${w.p50_ms} ms a login + read`);
  row('clean samples', `${w.unattached_samples} unattached (host had no attachment), ${w.attached_samples} attached`);
  if (w.discovery_samples > 0) row('discovery samples', `${w.discovery_samples} (every LUN of the host's target listed and its serial read); ${w.unidentified_luns_seen} LUN(s) seen while being made, before their serial`);
  if (r.quiescence_audit.cinderblock_audit_exit !== undefined) row('cinderblock audit at quiescence', r.quiescence_audit.cinderblock_audit_exit === 0 ? 'clean (exit 0)' : `exit ${r.quiescence_audit.cinderblock_audit_exit}`);
  row('attached but not read', `${w.attached_refused_outside_faults} outside fault windows, ${w.attached_refused_in_faults} in them`);
  row('exposures', `${r.exposures.length}`);
  row('corruptions', `${r.corruptions.length}`);
  for (const f of r.faults) {
    row(
      `fault ${f.kind} at op ${f.at_op}`,
      `${f.kind === 'agent-kill' ? 'serving again' : `back (${f.restarted_by ?? 'nobody'})`} after ${f.back_after_s ?? '-'} s${f.kind !== 'agent-kill' ? `, exports restored after ${f.exports_restored_after_s ?? '-'} s` : ''}; ops in window ${f.ops_in_window.total} (${f.ops_in_window.failed} failed)`,
    );
  }
  for (const [k, v] of Object.entries(r.agent_rpc_ms)) row(`agent RPC ${k}`, `${v.n} calls, p50 ${v.p50} ms, p90 ${v.p90} ms, max ${v.max} ms`);
  row('load average (1 min)', `${r.loadavg.start} at the start, ${r.loadavg.end_of_ops ?? '-'} at the end of the ops (${cpus().length} vCPUs)`);
  row('reconciled orphan attachments', `${r.reconcile.orphans_found} found, ${r.reconcile.orphans_deleted} deleted`);
  const q = r.quiescence_audit;
  row('ACL audit at quiescence', q.converged_after_s !== null ? `consistent (after ${q.converged_after_s} s)` : `${q.stale_acls.length} stale, ${q.missing_acls.length} missing, ${q.targets_without_attachment.length} targets without attachment`);
  const f = r.final;
  row('final deletes', `${f.attachments_deleted} deleted, ${f.attachments_left} left`);
  row('leftover targets / accounts / stuck volumes', `${f.leftover_targets.length} / ${f.orphan_accounts.length} / ${f.stuck_volumes.length} (after the pattern check: ${f.after_pattern_check.leftover_targets.length} / ${f.after_pattern_check.orphan_accounts.length} / ${f.after_pattern_check.stuck_volumes.length})`);
  row('post-detach sweep', `${f.post_detach_sweep.samples} logins: ${f.post_detach_sweep.refused} refused, ${f.post_detach_sweep.no_target} no target, ${f.post_detach_sweep.errors} other errors, ${f.post_detach_sweep.exposures} exposures${f.post_detach_sweep.discoveries ? `; ${f.post_detach_sweep.discoveries} new discoveries` : ''}`);
  row('patterns intact', `${f.patterns.intact}/${f.patterns.checked}`);
  if (f.host_disconnect) row('hosts disconnected', `${f.host_disconnect.sessions_left} sessions and ${f.host_disconnect.disks_left} disks left`);
  return lines.join('\n');
}
