// Attach/detach/restore benchmark (issue 4): the real cinder-volume (Debian's /usr/bin/cinder-volume,
// LVMVolumeDriver, target_helper = lioadm) against cinderblock, one after the other in ONE lab guest,
// on the same volume group, the same RabbitMQ, MariaDB database, cinder-api and cinder-scheduler
// (started on the host by attach-bench.host.mts), with the same cinder.conf and host name: each
// service takes over the other's volumes, as an operator swapping them would see.
//
//   CBLAB_SLOTS=2 CBLAB_MEM=4096 CBLAB_DISK_SIZE=200G CBLAB_SUITE_TIMEOUT=3300 CBLAB_TOTAL_TIMEOUT=3500 \
//     bash test/lab/run-lab.sh bench/lab/attach-bench.mts
//
// Measured at cinder-api (the REST calls nova makes), one call at a time:
//   attach = PUT /v3/{project}/attachments/{id} with a connector (attachment_update: create_export
//            + initialize_connection, an RPC call cinder-api waits for);
//   detach = DELETE /v3/{project}/attachments/{id} (attachment_delete: terminate_connection +
//            remove_export, also an RPC call).
// Each sample first reserves the attachment (POST /attachments without connector; API only, not
// timed) and waits for the volume to be `available` again afterwards (not timed).
// Restore: with CB_BENCH_RESTORE volumes in-use (exports + ACLs in LIO), the service is stopped,
// LIO is emptied (`targetctl clear`: configfs as after a reboot) and the service started again; the
// time runs from the spawn until every one of those targets is back in configfs (TPG enabled,
// LUN 0, the initiator's ACL with its mapped LUN) AND the service answers an RPC
// (get_log_levels, which both serve only after init_host).
//
// Phases (order chosen so that the two services see the same LIO state for the same measurement):
//   1. VG on the scratch disk; cinderblock starts; all volumes are created through cinder-api.
//   2. cinderblock: attach/detach samples (no other export present).
//   3. cinderblock stopped, cinder-volume started (its cold start is recorded), attach/detach
//      samples (no other export present), as many as the time budget allows (at least MIN).
//   4. cinder-volume stopped, cinderblock started; CB_BENCH_RESTORE volumes attached and completed
//      (in-use); cinderblock restore measured.
//   5. `cinder-rtstool save` (what cinder-volume runs after each export change, so rtslib's save
//      file, /etc/rtslib-fb-target/saveconfig.json on Debian, describes those exports), cinderblock
//      stopped, LIO emptied, cinder-volume restore measured. A restore cut by the time budget is
//      reported as "> after_s", and the ratio as a lower bound.
// Results: $CBLAB_OUT/attach-bench.json (rewritten after every phase, so a cut-short run still
// reports what it measured), the services' logs in $CBLAB_OUT/logs.
//
// Env: CB_BENCH_SAMPLES (20 per service), CB_BENCH_MIN_SAMPLES (5), CB_BENCH_WARMUP (1),
// CB_BENCH_RESTORE (100), CB_BENCH_RESERVE_S (seconds kept for phases 4-5 while sampling
// cinder-volume; 1500), CB_BENCH_PEER (1; 0 skips phases 3 and 5, for a quick cinderblock-only
// run: the figures then have no peer to compare with and the table says n/a; CB_BENCH_SAMPLES=0
// with CB_BENCH_WARMUP=0 skips phases 2 and 3, for a restore-only run), plus what the host hook exports (CB_BENCH_HOST, _API_URL, _DB_URL,
// _TRANSPORT_URL).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, closeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmqpConnection, RpcClient } from '../../src/rpc/index.js';
import { adminContext } from '../../src/rpc/context.js';
import { VersionedObject } from '../../src/rpc/ovo.js';
import { createLogger, setRootLogger } from '../../src/log.js';
import { cinderApi } from '../../test/helpers/cinder-stack.js';
import { launcherNodeFlags, launcherPath } from '../../test/helpers/launcher-node-flags.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = (k: string, d?: string): string => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set (run through test/lab/run-lab.sh, which runs the host hook)`);
  return v;
};
const num = (k: string, d: number): number => Number(process.env[k] ?? d);
const SAMPLES = num('CB_BENCH_SAMPLES', 20);
const MIN_SAMPLES = num('CB_BENCH_MIN_SAMPLES', 5);
const WARMUP = num('CB_BENCH_WARMUP', 1);
const RESTORE_N = num('CB_BENCH_RESTORE', 100);
const RESERVE_S = num('CB_BENCH_RESERVE_S', 1500);
const PEER = process.env.CB_BENCH_PEER !== '0';
const HOST = env('CB_BENCH_HOST');
const API = env('CB_BENCH_API_URL');
const DB_URL = env('CB_BENCH_DB_URL');
const TRANSPORT = env('CB_BENCH_TRANSPORT_URL');
const OUT = env('CBLAB_OUT', '/tmp/attach-bench-out');
const LOGS = path.join(OUT, 'logs');
const STATE = '/var/lib/cinder-bench';
const CONF = '/etc/cinder/cinder-bench.conf';
const VG = 'cinder-volumes';
const IQN_PREFIX = 'iqn.2010-10.org.openstack:volume-';
const CONFIGFS = '/sys/kernel/config/target';
const SYS_ENV = { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LC_ALL: 'C.UTF-8' };
const CONNECTOR = { initiator: 'iqn.1993-08.org.debian:01:cbbench-compute', ip: '127.0.0.1', host: 'cbbench-compute', platform: 'x86_64', os_type: 'linux', multipath: false, do_local_attach: false };

// The guest powers itself off cblab.timeout seconds after boot, without returning what this
// script has not yet written: every phase checks what is left.
const guestLimit = Number(/cblab\.timeout=(\d+)/.exec(readFileSync('/proc/cmdline', 'utf8'))?.[1] ?? 900);
const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
// CB_BENCH_END_BY (epoch seconds; the guest's clock is the host's through qemu's RTC) ends the run
// earlier than the guest limit, e.g. when it started late after waiting for a VM slot.
const END_BY = Number(process.env.CB_BENCH_END_BY ?? 0);
const secondsLeft = () => Math.min(guestLimit - uptime() - 45, END_BY > 0 ? END_BY - Date.now() / 1000 : Infinity);

const T0 = Date.now();
const log = (m: string) => console.log(`[bench +${((Date.now() - T0) / 1000).toFixed(1)}s up ${uptime().toFixed(0)}s] ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Svc = 'cinder-volume' | 'cinderblock';
interface Sample { volume: string; attach_ms: number; detach_ms: number }
const results: Record<string, any> = {
  bench: 'attach-bench',
  started: new Date().toISOString(),
  host: HOST,
  guest: { limit_s: guestLimit, cpus: readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length, mem_kib: Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]) },
  config: { samples: SAMPLES, warmup: WARMUP, restore: RESTORE_N },
  services: { 'cinder-volume': {}, cinderblock: {} } as Record<Svc, Record<string, any>>,
  notes: [] as string[],
};
function save(): void {
  results.updated = new Date().toISOString();
  results.guest.elapsed_s = (Date.now() - T0) / 1000;
  writeFileSync(path.join(OUT, 'attach-bench.json'), JSON.stringify(results, null, 2));
}

// ---------------------------------------------------------------------------------------------
// Commands and processes

function run(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): { code: number; out: string; ms: number } {
  const t = Date.now();
  const r = spawnSync(cmd, args, { env: SYS_ENV, encoding: 'utf8', timeout: opts.timeoutMs ?? 600_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const code = r.status ?? -1;
  if (code !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${code}): ${out.slice(-2000)}`);
  return { code, out, ms: Date.now() - t };
}

function children(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}
function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]!));
  return all;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Running { svc: Svc; proc: ChildProcess; startedAt: number; logFile: string }
let current: Running | null = null;
let starts = 0;

function startService(svc: Svc): Running {
  starts += 1;
  const logFile = path.join(LOGS, `${String(starts).padStart(2, '0')}-${svc}.out`);
  const fd = openSync(logFile, 'a');
  const [cmd, args] = svc === 'cinder-volume' ? ['/usr/bin/cinder-volume', ['--config-file', CONF]] : [process.execPath, [...launcherNodeFlags(), launcherPath, 'serve', '--config-file', CONF]];
  const proc = spawn(cmd as string, args as string[], { env: SYS_ENV, stdio: ['ignore', fd, fd], cwd: repoRoot });
  closeSync(fd);
  proc.on('error', (e) => log(`${svc}: spawn error ${String(e)}`));
  current = { svc, proc, startedAt: Date.now(), logFile };
  log(`${svc} started (pid ${proc.pid}), output in ${path.basename(logFile)}`);
  return current;
}

async function stopService(r: Running, graceMs = 30_000): Promise<void> {
  const pid = r.proc.pid!;
  const pids = tree(pid);
  if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGTERM');
  const t = Date.now();
  while (pids.some(alive) && Date.now() - t < graceMs) await sleep(250);
  for (const p of tree(pid).concat(pids)) if (alive(p)) process.kill(p, 'SIGKILL');
  while (pids.some(alive) && Date.now() - t < graceMs + 10_000) await sleep(100);
  log(`${r.svc} stopped after ${((Date.now() - t) / 1000).toFixed(1)}s`);
  if (current === r) current = null;
}

/** The last lines the running service logged, for progress lines on the console (streamed live). */
function serviceTail(lines = 2): string {
  if (!current) return '';
  const file = current.svc === 'cinder-volume' ? path.join(LOGS, 'cinder-volume.log') : current.logFile;
  try {
    const all = readFileSync(file, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).map((l) => `\n    ${current!.svc}> ${l.slice(0, 400)}`).join('');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// cinder-api

// the same noauth client the e2e tests use; an attach through cinder-volume under emulation takes minutes
const api = cinderApi(API, { timeoutMs: 1_200_000 });
async function apiOk(method: string, p: string, body: unknown, want: number[]): Promise<any> {
  const r = await api(method, p, body);
  if (!want.includes(r.status)) throw new Error(`${method} ${p} -> ${r.status}: ${JSON.stringify(r.body).slice(0, 1500)}`);
  return r.body;
}
async function volumeStatuses(): Promise<Map<string, string>> {
  const b = await apiOk('GET', '/volumes/detail?limit=1000', undefined, [200]);
  return new Map((b.volumes as any[]).map((v) => [v.id as string, v.status as string]));
}
async function waitVolumes(ids: string[], status: string, timeoutMs: number, what: string): Promise<void> {
  const t = Date.now();
  let lastReport = 0;
  for (;;) {
    const st = await volumeStatuses();
    const bad = ids.filter((id) => st.get(id)?.startsWith('error'));
    if (bad.length) throw new Error(`${what}: ${bad.length} volumes went to error (${bad.slice(0, 3).join(', ')}: ${st.get(bad[0]!)})`);
    const done = ids.filter((id) => st.get(id) === status).length;
    if (done === ids.length) return;
    if (Date.now() - t > timeoutMs) throw new Error(`${what}: only ${done}/${ids.length} ${status} after ${timeoutMs / 1000}s`);
    if (Date.now() - lastReport > 30_000) {
      lastReport = Date.now();
      log(`${what}: ${done}/${ids.length} ${status}${serviceTail()}`);
    }
    await sleep(ids.length > 1 ? 2000 : 300);
  }
}

// ---------------------------------------------------------------------------------------------
// RPC: "is it serving" = answers get_log_levels (3.12), addressed as cinder.volume.rpcapi does.

let rpcConn: AmqpConnection | null = null;
let rpc: RpcClient | null = null;
async function rpcAnswers(): Promise<boolean> {
  if (!rpc) {
    rpcConn = new AmqpConnection(TRANSPORT, { connectionName: `attach-bench:${process.pid}` });
    await rpcConn.start(30_000);
    rpc = new RpcClient({ connection: rpcConn, name: 'attach-bench', rpcResponseTimeout: 60 });
  }
  try {
    await rpc.call({ topic: `cinder-volume.${HOST}@lvm`, server: HOST }, 'get_log_levels', { log_request: new VersionedObject('LogLevel', {}).set('prefix', 'cinder.volume.manager') }, adminContext().toDict(), '3.12', { timeout: 3 });
    return true;
  } catch {
    return false;
  }
}
async function waitServing(r: Running, timeoutS: number): Promise<number> {
  let lastLog = Date.now();
  for (;;) {
    if (Date.now() - lastLog > 30_000) {
      lastLog = Date.now();
      log(`${r.svc}: not answering yet after ${((Date.now() - r.startedAt) / 1000).toFixed(0)}s${serviceTail()}`);
    }
    if (r.proc.exitCode !== null || r.proc.signalCode !== null) throw new Error(`${r.svc} exited (${r.proc.exitCode ?? r.proc.signalCode}); see ${r.logFile}`);
    if (await rpcAnswers()) return (Date.now() - r.startedAt) / 1000;
    if ((Date.now() - r.startedAt) / 1000 > timeoutS) throw new Error(`${r.svc} did not answer RPC within ${timeoutS}s`);
    await sleep(500);
  }
}

// ---------------------------------------------------------------------------------------------
// LIO

/** IQNs (of `want`) whose export is complete in configfs: TPG enabled, LUN 0, an ACL mapping LUN 0. */
function completeExports(want: Set<string>): number {
  let n = 0;
  let iqns: string[];
  try {
    iqns = readdirSync(path.join(CONFIGFS, 'iscsi'));
  } catch {
    return 0;
  }
  for (const iqn of iqns) {
    if (!want.has(iqn)) continue;
    const tpg = path.join(CONFIGFS, 'iscsi', iqn, 'tpgt_1');
    try {
      if (readFileSync(path.join(tpg, 'enable'), 'utf8').trim() !== '1') continue;
      if (!existsSync(path.join(tpg, 'lun', 'lun_0'))) continue;
      const acls = readdirSync(path.join(tpg, 'acls'));
      if (!acls.some((a) => existsSync(path.join(tpg, 'acls', a, 'lun_0')))) continue;
      n += 1;
    } catch {
      /* being built right now */
    }
  }
  return n;
}
function targetCount(): number {
  try {
    return readdirSync(path.join(CONFIGFS, 'iscsi')).filter((n) => n.startsWith('iqn.')).length;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

const pct = (xs: number[], p: number): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  // nearest-rank
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};

async function sampleOne(volumeId: string): Promise<Sample> {
  const reserved = await apiOk('POST', '/attachments', { attachment: { volume_uuid: volumeId } }, [200]);
  const attId = reserved.attachment.id as string;
  let t = performance.now();
  const up = await apiOk('PUT', `/attachments/${attId}`, { attachment: { connector: CONNECTOR } }, [200]);
  const attach = performance.now() - t;
  if (!up.attachment?.connection_info?.target_iqn) throw new Error(`attachment_update returned no connection_info: ${JSON.stringify(up).slice(0, 500)}`);
  t = performance.now();
  await apiOk('DELETE', `/attachments/${attId}`, undefined, [200]);
  const detach = performance.now() - t;
  await waitVolumes([volumeId], 'available', 300_000, `volume ${volumeId} back to available`);
  return { volume: volumeId, attach_ms: attach, detach_ms: detach };
}

async function samples(svc: Svc, volumes: string[], stopWhenLeftS: number): Promise<void> {
  const rec = results.services[svc];
  rec.samples = [] as Sample[];
  rec.warmup = [] as Sample[];
  for (let i = 0; i < WARMUP + SAMPLES && i < volumes.length; i++) {
    const measured = i - WARMUP;
    if (measured >= MIN_SAMPLES && secondsLeft() < stopWhenLeftS) {
      results.notes.push(`${svc}: stopped after ${measured} attach/detach samples (time budget of the guest)`);
      log(`${svc}: time budget reached after ${measured} samples`);
      break;
    }
    const s = await sampleOne(volumes[i]!);
    (i < WARMUP ? rec.warmup : rec.samples).push(s);
    log(`${svc} ${i < WARMUP ? 'warm-up' : `sample ${measured + 1}`}: attach ${s.attach_ms.toFixed(0)} ms, detach ${s.detach_ms.toFixed(0)} ms`);
    const a = rec.samples.map((x: Sample) => x.attach_ms);
    const d = rec.samples.map((x: Sample) => x.detach_ms);
    rec.attach = { n: a.length, p50_ms: pct(a, 50), p95_ms: pct(a, 95), min_ms: a.length ? Math.min(...a) : null, max_ms: a.length ? Math.max(...a) : null };
    rec.detach = { n: d.length, p50_ms: pct(d, 50), p95_ms: pct(d, 95), min_ms: d.length ? Math.min(...d) : null, max_ms: d.length ? Math.max(...d) : null };
    save();
  }
}

/**
 * The service's own time per call (cinderblock logs `duration_ms` for every RPC it served), over
 * the measured samples (the warm-up is the first of each): the rest of the API figure is
 * cinder-api, the broker and the network.
 */
function rpcDurations(logFile: string): Record<string, unknown> {
  const by: Record<string, number[]> = { attachment_update: [], attachment_delete: [] };
  try {
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      if (!line.includes('duration_ms')) continue;
      try {
        const j = JSON.parse(line) as { method?: string; duration_ms?: number };
        if (j.method && j.method in by && typeof j.duration_ms === 'number') by[j.method]!.push(j.duration_ms);
      } catch {
        /* not JSON */
      }
    }
  } catch {
    return {};
  }
  const out: Record<string, unknown> = {};
  for (const [m, xs] of Object.entries(by)) {
    const measured = xs.slice(WARMUP);
    out[m] = { n: measured.length, p50_ms: pct(measured, 50), p95_ms: pct(measured, 95) };
  }
  return out;
}

/** cinder-volume's lio.py logs one of these per in-use volume in init_host (ensure_export). */
function ensureExportsLogged(): number | null {
  if (current?.svc !== 'cinder-volume') return null;
  try {
    const text = readFileSync(path.join(LOGS, 'cinder-volume.log'), 'utf8');
    const since = text.lastIndexOf('Starting cinder-volume node');
    return (text.slice(Math.max(0, since)).match(/Skipping ensure_export|Restoring iSCSI target from configuration file/g) ?? []).length;
  } catch {
    return null;
  }
}

async function measureRestore(svc: Svc, want: Set<string>, prev: Running, budgetS: number): Promise<Running> {
  const rec = results.services[svc];
  await stopService(prev);
  const c = run('targetctl', ['clear'], { allowFail: true });
  log(`LIO cleared (targetctl clear, ${(c.ms / 1000).toFixed(1)}s, exit ${c.code}${c.code ? `: ${c.out.trim().slice(0, 300)}` : ''}); targets left: ${targetCount()}`);
  if (targetCount() !== 0) throw new Error('LIO still has targets after targetctl clear');
  const r = startService(svc);
  let exportsS: number | null = null;
  let servingS: number | null = null;
  let lastLog = 0;
  let lastPing = 0;
  let n = 0;
  for (;;) {
    const el = (Date.now() - r.startedAt) / 1000;
    if (r.proc.exitCode !== null || r.proc.signalCode !== null) throw new Error(`${svc} exited during restore; see ${r.logFile}`);
    n = completeExports(want);
    if (exportsS === null && n === want.size) {
      exportsS = el;
      log(`${svc}: all ${n} exports back after ${el.toFixed(1)}s`);
    }
    if (servingS === null && Date.now() - lastPing > 1000) {
      lastPing = Date.now();
      if (await rpcAnswers()) {
        servingS = (Date.now() - r.startedAt) / 1000;
        log(`${svc}: answers RPC after ${servingS.toFixed(1)}s (${n}/${want.size} exports back)`);
      }
    }
    if (exportsS !== null && servingS !== null) break;
    if (el > budgetS || secondsLeft() < 20) {
      rec.restore = { complete: false, after_s: el, exports_back: n, of: want.size, exports_s: exportsS, serving_s: servingS, ensure_export_logged: ensureExportsLogged() };
      results.notes.push(`${svc}: restore NOT finished within its budget: ${n}/${want.size} exports back, ${servingS === null ? 'not answering RPC' : `answering RPC after ${servingS.toFixed(1)} s`}, after ${el.toFixed(0)} s`);
      log(`${svc}: restore cut at ${el.toFixed(0)}s with ${n}/${want.size} exports`);
      save();
      return r;
    }
    if (Date.now() - lastLog > 30_000) {
      lastLog = Date.now();
      log(`${svc}: restoring, ${n}/${want.size} exports back after ${el.toFixed(0)}s; ensure_export logged: ${ensureExportsLogged() ?? 'n/a'}${serviceTail()}`);
    }
    await sleep(200);
  }
  rec.restore = { complete: true, restore_s: Math.max(exportsS, servingS), exports_s: exportsS, serving_s: servingS, of: want.size, ensure_export_logged: ensureExportsLogged() };
  save();
  return r;
}

// ---------------------------------------------------------------------------------------------

function writeConf(): void {
  const conf = `[DEFAULT]
transport_url = ${TRANSPORT}
host = ${HOST}
enabled_backends = lvm
state_path = ${STATE}
my_ip = 127.0.0.1
auth_strategy = noauth
report_interval = ${env('CB_BENCH_REPORT_INTERVAL', '5')}
service_down_time = ${env('CB_BENCH_SERVICE_DOWN_TIME', '120')}
rpc_response_timeout = 900
rootwrap_config = /etc/cinder/rootwrap.conf
log_dir = ${LOGS}
debug = false

[database]
connection = ${DB_URL}

[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_backend_name = lvm
volume_group = ${VG}
lvm_type = default
target_helper = lioadm
target_protocol = iscsi
target_ip_address = 127.0.0.1
volume_clear = none

[oslo_concurrency]
lock_path = ${STATE}/locks

[coordination]
backend_url = file://${STATE}/coord

[oslo_messaging_notifications]
driver = noop

[cinderblock]
metrics_listen =
`;
  writeFileSync(CONF, conf);
}

function setupGuest(): void {
  mkdirSync(LOGS, { recursive: true });
  for (const d of [STATE, `${STATE}/locks`, `${STATE}/coord`, `${STATE}/volumes`, '/etc/target', '/run/dbus', '/etc/iscsi']) mkdirSync(d, { recursive: true });
  // sudo (cinder's root_helper) looks the host name up; the guest's /etc/hosts does not have it.
  const hosts = readFileSync('/etc/hosts', 'utf8');
  if (!hosts.includes('cblab-guest')) writeFileSync('/etc/hosts', `${hosts}\n127.0.1.1 cblab-guest\n`);
  writeFileSync('/etc/iscsi/initiatorname.iscsi', `InitiatorName=${CONNECTOR.initiator}\n`);
  run('dbus-daemon', ['--system', '--fork'], { allowFail: true });
  const disk = (process.env.CBLAB_DISKS ?? '').split(' ').filter(Boolean)[0];
  if (!disk) throw new Error('no scratch disk (CBLAB_DISKS)');
  run('pvcreate', ['-ff', '-y', disk]);
  run('vgcreate', [VG, disk]);
  log(`VG ${VG} on ${disk}: ${run('vgs', ['--noheadings', '--units', 'g', '-o', 'vg_size,vg_free', VG]).out.trim()}`);
  writeConf();
  const sudo = run('sudo', ['-n', 'cinder-rootwrap', '/etc/cinder/rootwrap.conf', 'cinder-rtstool', 'get-targets'], { allowFail: true });
  log(`rootwrap check (sudo cinder-rootwrap … cinder-rtstool get-targets): exit ${sudo.code} in ${(sudo.ms / 1000).toFixed(1)}s ${sudo.out.trim().slice(0, 300)}`);
  results.rootwrap_call_s = sudo.ms / 1000;
}

async function main(): Promise<void> {
  setRootLogger(createLogger({ level: 'warn', destination: 2, pretty: false }));
  mkdirSync(OUT, { recursive: true });
  log(`guest limit ${guestLimit}s, ${secondsLeft().toFixed(0)}s left; host ${HOST}, api ${API}`);
  setupGuest();
  save();

  // 1. cinderblock creates every volume (not measured).
  let svc = startService('cinderblock');
  results.services.cinderblock.cold_start_s = await waitServing(svc, 300);
  log(`cinderblock answers RPC after ${results.services.cinderblock.cold_start_s.toFixed(1)}s`);
  for (let i = 0; ; i++) {
    const pools = await apiOk('GET', '/scheduler-stats/get_pools', undefined, [200]);
    if (pools.pools?.length) break;
    if (i > 120) throw new Error('the scheduler never learned the pool');
    await sleep(1000);
  }
  // cinder's default quota is 10 volumes per project: lift it for the bench's project
  await apiOk('PUT', '/os-quota-sets/admin', { quota_set: { volumes: -1, gigabytes: -1, per_volume_gigabytes: -1 } }, [200]);
  const total = WARMUP + SAMPLES + RESTORE_N;
  const ids: string[] = [];
  const tc = Date.now();
  for (let i = 0; i < total; i++) {
    const b = await apiOk('POST', '/volumes', { volume: { size: 1, name: `bench-${i}` } }, [202]);
    ids.push(b.volume.id);
    if (i % 10 === 9) await waitVolumes(ids, 'available', 900_000, 'creating');
  }
  await waitVolumes(ids, 'available', 900_000, 'creating');
  results.create_s = (Date.now() - tc) / 1000;
  log(`${total} volumes available after ${results.create_s.toFixed(0)}s`);
  const sampleVols = ids.slice(0, WARMUP + SAMPLES);
  const restoreVols = ids.slice(WARMUP + SAMPLES);
  save();

  // 2. cinderblock samples.
  const sampling = sampleVols.length > 0;
  if (sampling) {
    await samples('cinderblock', sampleVols, 0);
    results.services.cinderblock.server_side = rpcDurations(svc.logFile);
    save();
  } else {
    results.notes.push('CB_BENCH_SAMPLES=0 and CB_BENCH_WARMUP=0: no attach/detach samples, restore only');
  }

  // 3. cinder-volume takes over: cold start, then samples within the budget.
  await stopService(svc);
  if (PEER && sampling) {
    svc = startService('cinder-volume');
    try {
      results.services['cinder-volume'].cold_start_s = await waitServing(svc, 900);
      log(`cinder-volume answers RPC after ${results.services['cinder-volume'].cold_start_s.toFixed(1)}s`);
      await samples('cinder-volume', sampleVols, RESERVE_S);
    } catch (err) {
      results.services['cinder-volume'].error = String(err);
      results.notes.push(`cinder-volume samples failed: ${String(err)}`);
      log(`cinder-volume phase failed: ${String(err)}`);
      save();
    }
  }

  // 4. cinderblock back; RESTORE_N volumes in-use; cinderblock restore.
  if (PEER && sampling) await stopService(svc);
  svc = startService('cinderblock');
  await waitServing(svc, 300);
  const ta = Date.now();
  const attIds: string[] = [];
  for (const v of restoreVols) {
    const b = await apiOk('POST', '/attachments', { attachment: { volume_uuid: v, connector: CONNECTOR, mode: 'rw' } }, [200]);
    attIds.push(b.attachment.id);
    await apiOk('POST', `/attachments/${b.attachment.id}/action`, { 'os-complete': null }, [204]);
  }
  await waitVolumes(restoreVols, 'in-use', 600_000, 'attaching for restore');
  const want = new Set(restoreVols.map((v) => `${IQN_PREFIX}${v}`));
  results.restore_setup = { attached: restoreVols.length, attach_s: (Date.now() - ta) / 1000, complete_exports: completeExports(want) };
  log(`${restoreVols.length} volumes in-use in ${results.restore_setup.attach_s.toFixed(0)}s; complete exports ${results.restore_setup.complete_exports}`);
  save();
  svc = await measureRestore('cinderblock', want, svc, 900);
  log(`cinderblock restore: ${JSON.stringify(results.services.cinderblock.restore)}`);

  if (!PEER) {
    results.notes.push('CB_BENCH_PEER=0: cinder-volume not run');
    await stopService(svc, 20_000);
    return;
  }
  // 5. cinder-volume restore from its saveconfig.json. `cinder-rtstool save` and `restore` use
  // rtslib's default file, which Debian's python3-rtslib-fb moves to /etc/rtslib-fb-target/
  // (upstream: /etc/target/): ask rtslib rather than guess, or the count below reads the wrong file.
  const s = run('cinder-rtstool', ['save'], { allowFail: true });
  const saveFile = run('python3', ['-c', 'import rtslib_fb.root as r; print(r.default_save_file)']).out.trim();
  let saved = 0;
  try {
    saved = (JSON.parse(readFileSync(saveFile, 'utf8')).targets ?? []).length;
  } catch {
    /* reported below */
  }
  results.restore_setup.saveconfig = { exit: s.code, seconds: s.ms / 1000, file: saveFile, targets: saved };
  log(`cinder-rtstool save: exit ${s.code} in ${(s.ms / 1000).toFixed(1)}s, ${saved} targets in ${saveFile}`);
  if (saved < want.size) throw new Error(`${saveFile} lists ${saved} targets, fewer than the ${want.size} exports: cinder-volume could not restore them`);
  svc = await measureRestore('cinder-volume', want, svc, Math.max(60, secondsLeft() - 60));
  log(`cinder-volume restore: ${JSON.stringify(results.services['cinder-volume'].restore)}`);
  await stopService(svc, 20_000);
}

try {
  await main();
  log('done');
} catch (err) {
  results.error = String((err as Error).stack ?? err);
  log(`FAILED: ${results.error}`);
  process.exitCode = 1;
} finally {
  if (current) await stopService(current, 15_000).catch(() => undefined);
  await (rpc as RpcClient | null)?.close().catch(() => undefined);
  await (rpcConn as AmqpConnection | null)?.close().catch(() => undefined);
  save();
  // print the summary table
  const cv = results.services['cinder-volume'];
  const cb = results.services.cinderblock;
  const f = (x: number | null | undefined, unit = 'ms') => (x === null || x === undefined ? 'n/a' : unit === 'ms' ? `${x.toFixed(0)} ms` : `${x.toFixed(1)} s`);
  const ratio = (a?: number | null, b?: number | null) => (a && b ? `${(a / b).toFixed(1)}x` : 'n/a');
  const rs = (r: any) => (r?.complete ? r.restore_s : null);
  console.log('\n| | attach p50 | attach p95 | detach p50 | detach p95 | restore |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [name, r] of [['cinder-volume', cv], ['cinderblock', cb]] as const) {
    console.log(`| ${name} | ${f(r.attach?.p50_ms)} | ${f(r.attach?.p95_ms)} | ${f(r.detach?.p50_ms)} | ${f(r.detach?.p95_ms)} | ${r.restore?.complete ? f(rs(r.restore), 's') : r.restore ? `> ${f(r.restore.after_s, 's')} (${r.restore.exports_back}/${r.restore.of})` : 'n/a'} |`);
  }
  // A cinder-volume restore cut by the budget still bounds the ratio from below: it took longer
  // than after_s, so the ratio is more than after_s / cinderblock's time (no extrapolation).
  const restoreRatio = cv.restore?.complete
    ? ratio(rs(cv.restore), rs(cb.restore))
    : cv.restore && rs(cb.restore)
      ? `> ${(cv.restore.after_s / rs(cb.restore)).toFixed(1)}x`
      : 'n/a';
  results.restore_ratio = restoreRatio;
  save();
  console.log(`| cinder-volume / cinderblock | ${ratio(cv.attach?.p50_ms, cb.attach?.p50_ms)} | ${ratio(cv.attach?.p95_ms, cb.attach?.p95_ms)} | ${ratio(cv.detach?.p50_ms, cb.detach?.p50_ms)} | ${ratio(cv.detach?.p95_ms, cb.detach?.p95_ms)} | ${restoreRatio} |`);
  console.log(`samples: cinder-volume ${cv.attach?.n ?? 0}, cinderblock ${cb.attach?.n ?? 0}; notes: ${results.notes.join(' | ') || 'none'}`);
  process.exit(process.exitCode ?? 0);
}
