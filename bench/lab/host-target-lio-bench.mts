// Per-volume against per-host targets on LIO with the kernel's initiator, in one lab guest (issue 12's
// benchmark): attach 50 volumes to one compute host, each carried through to a usable block device
// by the project's connector (src/connector/iscsi-connector.ts: login or the existing session, the
// targeted LUN scan, the device), then detach them through to no device; both layouts in turn, on
// the same volume group, built as the agent builds them (cinder.conf text -> createTargetSide ->
// createDriver -> createExports).
//
//   CBLAB_SUITE_TIMEOUT=1500 bash test/lab/run-lab.sh bench/lab/host-target-lio-bench.mts
//
// Per attach it times the agent's part (create_export + initialize_connection, what
// attachment_update runs) and the host's (connectVolume up to a device that reads); per detach,
// the host's (disconnectVolume) and the agent's (terminate_connection + remove_export). It counts
// the host's iSCSI sessions once every volume is attached. cinder-api and RabbitMQ are not in this
// path (bench/lab/attach-bench.mts measures them against cinder-volume).
//
// Env: CB_HT_VOLUMES (50). Results: $CBLAB_OUT/host-target-lio-bench.json and a table on stdout.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { DriverVolume, VolumeDriver } from '../../drivers/driver.js';
import type { VolumeExports } from '../../drivers/exports.js';
import { agentAttach, freshLabBenchHost, labScratchDiskOrExit, lioLabBackend, lioLabConf, readFirstBlock } from '../../test/lab/lio-lab-backend.js';

const N = Math.max(5, Number(process.env.CB_HT_VOLUMES ?? 50));
const DISK = labScratchDiskOrExit();
const OUT = process.env.CBLAB_OUT ?? '/tmp/cblab-ht-bench-out';
const WORK = '/tmp/cblab-ht-bench';
const HOST = { host: 'bench-compute', initiator: 'iqn.2024-01.org.example:bench-compute' };

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;
/** A step that has not finished in `ms` fails the run with its name: a silent hang tells nothing. */
async function step<T>(name: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not finish within ${ms / 1000} s; sessions now: ${sessionsNow()}`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
const progress = (line: string): void => void process.stdout.write(`bench: ${line}\n`);
const sessionsNow = (): number => {
  try {
    return execFileSync('iscsiadm', ['-m', 'session'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter((l) => l.trim()).length;
  } catch {
    return 0; // exit 21: no sessions
  }
};
interface Row {
  layout: string;
  sessions_at_peak: number;
  attach_agent_ms: number[];
  attach_host_ms: number[];
  detach_host_ms: number[];
  detach_agent_ms: number[];
  total_s: number;
}

// storage node and compute host at once
const connector = freshLabBenchHost({ disk: DISK, workDir: WORK, outDir: OUT, initiator: HOST.initiator });

async function backend(layout: 'per-volume' | 'per-host'): Promise<{ driver: VolumeDriver; exports: VolumeExports }> {
  const paths = { workDir: WORK, statePath: `${WORK}/${layout}` };
  return lioLabBackend(lioLabConf({ ...paths, layout, lvmType: 'thin' }), paths);
}

const layouts = ['per-volume', 'per-host'] as const;
const rows: Row[] = [];
const first = await backend(layouts[0]!);
const volumes: DriverVolume[] = [];
for (let i = 0; i < N; i++) {
  const id = `${(i + 1).toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
  const v: DriverVolume = { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: false };
  await first.driver.createVolume(v);
  volumes.push(v);
}
for (const layout of layouts) {
  const { exports } = layout === layouts[0] ? first : await backend(layout);
  const row: Row = { layout, sessions_at_peak: 0, attach_agent_ms: [], attach_host_ms: [], detach_host_ms: [], detach_agent_ms: [], total_s: 0 };
  const t0 = performance.now();
  const attached: Array<{ v: DriverVolume; ci: unknown }> = [];
  for (const v0 of volumes) {
    const a0 = performance.now();
    const what = `${layout} attach ${attached.length + 1}/${N}`;
    const { v, ci } = await step(`${what}: createExport + initializeConnection`, 240_000, agentAttach(exports, v0, HOST));
    const a1 = performance.now();
    readFirstBlock((await step(`${what}: connectVolume`, 300_000, connector.connectVolume(ci, { multipath: false }))).path);
    const a2 = performance.now();
    row.attach_agent_ms.push(a1 - a0);
    row.attach_host_ms.push(a2 - a1);
    attached.push({ v, ci });
    if (attached.length % 10 === 0 || attached.length <= 2) progress(`${what}: agent ${Math.round(a1 - a0)} ms, host ${Math.round(a2 - a1)} ms`);
  }
  row.sessions_at_peak = sessionsNow();
  for (const [i, { v, ci }] of attached.entries()) {
    const what = `${layout} detach ${i + 1}/${N}`;
    const d0 = performance.now();
    await step(`${what}: disconnectVolume`, 300_000, connector.disconnectVolume(ci));
    const d1 = performance.now();
    await step(`${what}: terminateConnection`, 120_000, exports.terminateConnection(v, { ...HOST }, { remaining: [] }));
    await step(`${what}: removeExport`, 120_000, exports.removeExport(v));
    row.detach_host_ms.push(d1 - d0);
    row.detach_agent_ms.push(performance.now() - d1);
    if ((i + 1) % 10 === 0) progress(`${what}: host ${Math.round(d1 - d0)} ms, agent ${Math.round(performance.now() - d1)} ms`);
  }
  row.total_s = (performance.now() - t0) / 1000;
  if (sessionsNow() !== 0) throw new Error(`${layout}: sessions left after detaching everything`);
  rows.push(row);
  writeFileSync(`${OUT}/host-target-lio-bench.json`, `${JSON.stringify({ volumes: N, rows }, null, 1)}\n`);
}

console.log(`\n${N} volumes attached to one host (kernel initiator, LIO, thin LVM), then detached\n`);
console.log('| layout | iSCSI sessions | attach p50 / p95, agent | attach p50 / p95, host (to a readable device) | detach p50 / p95, host | detach p50 / p95, agent | total s |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const f = (xs: number[]) => `${r1(pct(xs, 50))} / ${r1(pct(xs, 95))} ms`;
  console.log(`| ${r.layout} | ${r.sessions_at_peak} | ${f(r.attach_agent_ms)} | ${f(r.attach_host_ms)} | ${f(r.detach_host_ms)} | ${f(r.detach_agent_ms)} | ${r1(r.total_s)} |`);
}
const [pv, ph] = rows as [Row, Row];
const e2e = (r: Row) => pct(r.attach_agent_ms.map((x, i) => x + r.attach_host_ms[i]!), 50);
const flat = pct(ph.attach_agent_ms.slice(-5), 50) / pct(ph.attach_agent_ms.slice(0, 5), 50);
console.log(`\nend-to-end attach p50, per-host / per-volume: ${(e2e(ph) / e2e(pv)).toFixed(2)}× (target ≤ 1)`);
console.log(`per-host agent attach p50 at LUNs ${N - 4}..${N} against 1..5: ${flat.toFixed(2)}× (target ≤ 1.2×)`);
writeFileSync(`${OUT}/host-target-lio-bench.json`, `${JSON.stringify({ volumes: N, rows, e2e_ratio: e2e(ph) / e2e(pv), flat_ratio: flat }, null, 1)}\n`);
