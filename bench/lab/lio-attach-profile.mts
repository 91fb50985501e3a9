// Where the LIO per-host attach's time goes as the host target grows, with the host logged in
// (issue 12: the agent's per-host attach p50 was 1.26x at LUNs 46-50 against 1-5 in
// host-target-lio-bench.mts, while apply() alone, with no session, stayed flat in
// lio-apply-profile.mts). Lab only: real LVM, configfs and the kernel's initiator.
//
//   CBLAB_SUITE_TIMEOUT=1200 bash test/lab/run-lab.sh bench/lab/lio-attach-profile.mts
//
// The same path as the bench (cinder.conf text -> createTargetSide -> createDriver ->
// createExports; createExport + initializeConnection, then connectVolume to a readable device),
// per-host layout only. The agent's own methods are wrapped in this script, not in the product,
// and each attach records the inclusive time of every wrapped call (summed when called more than
// once). Printed: the median of each step at LUNs 1-5, 21-25 and 46-50, and the ratio last/first.
// Results: $CBLAB_OUT/lio-attach-profile.json.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { DriverVolume } from '../../drivers/driver.js';
import { HostTargetExports } from '../../drivers/host-target-exports.js';
import { LvmVolumeDriver } from '../../drivers/lvm/lvm-driver.js';
import { HostTargetRegistry } from '../../drivers/targets/host-target/host-target-registry.js';
import { Configfs } from '../../drivers/targets/lio/configfs.js';
import { LioHostTarget } from '../../drivers/targets/lio/lio-host-target.js';
import { agentAttach, freshLabBenchHost, labScratchDiskOrExit, lioLabBackend, lioLabConf, readFirstBlock } from '../../test/lab/lio-lab-backend.js';

const N = Math.max(10, Number(process.env.CB_PROFILE_LUNS ?? 50));
const DISK = labScratchDiskOrExit();
const OUT = process.env.CBLAB_OUT ?? '/tmp/cblab-attach-profile-out';
const WORK = '/tmp/cblab-attach-profile';
const HOST = { host: 'profile-compute', initiator: 'iqn.2024-01.org.example:profile-compute' };

// ---- timing wrappers: one bucket per attach, keyed "Class.method" ----------------------------
let bucket: Record<string, number> | null = null;
function wrap(proto: object, label: string, names: string[]): void {
  const p = proto as Record<string, unknown>;
  for (const name of names) {
    const orig = p[name];
    if (typeof orig !== 'function') throw new Error(`${label}.${name} is not a method: the profile is out of date`);
    p[name] = async function (this: unknown, ...args: unknown[]) {
      const b = bucket;
      const t = performance.now();
      try {
        return await (orig as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      } finally {
        if (b) b[`${label}.${name}`] = (b[`${label}.${name}`] ?? 0) + performance.now() - t;
      }
    };
  }
}
wrap(HostTargetExports.prototype, 'exports', ['createExport', 'initializeConnection', 'withHostTarget', 'apply']);
wrap(LvmVolumeDriver.prototype, 'lvm', ['prepareExport']);
wrap(HostTargetRegistry.prototype, 'registry', ['update']);
wrap(LioHostTarget.prototype, 'lio', ['apply', 'reconcile', 'verify', 'mapVolume', 'writable']);
wrap(Configfs.prototype, 'configfs', [
  'readHostTarget', 'readHostTargetOutline', 'readHostLunAt', 'readMappedLun', 'scanIblock',
  'createIblockBackstore', 'createLun', 'mapLun', 'ensureAcl', 'setTpgEnabled', 'setTpgAttribs', 'addPortal',
]);

// storage node and compute host at once
const connector = freshLabBenchHost({ disk: DISK, workDir: WORK, outDir: OUT, initiator: HOST.initiator });
const paths = { workDir: WORK, statePath: `${WORK}/state` };
const { driver, exports } = await lioLabBackend(lioLabConf({ ...paths, layout: 'per-host', lvmType: 'thin' }), paths);

const volumes: DriverVolume[] = [];
for (let i = 0; i < N; i++) {
  const id = `${(i + 1).toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
  const v: DriverVolume = { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: false };
  await driver.createVolume(v);
  volumes.push(v);
}

const rows: Array<Record<string, number>> = [];
for (const [i, v0] of volumes.entries()) {
  const row: Record<string, number> = {};
  bucket = row;
  const a0 = performance.now();
  const { ci } = await agentAttach(exports, v0, HOST);
  const a1 = performance.now();
  bucket = null;
  readFirstBlock((await connector.connectVolume(ci, { multipath: false })).path);
  row['agent attach'] = a1 - a0;
  row['host attach'] = performance.now() - a1;
  rows.push(row);
  if ((i + 1) % 10 === 0) process.stdout.write(`profile: ${i + 1}/${N} attached, agent ${Math.round(a1 - a0)} ms\n`);
}

const median = (xs: number[]): number => [...xs].sort((a, c) => a - c)[Math.floor(xs.length / 2)] ?? 0;
const steps = [...new Set(rows.flatMap((r) => Object.keys(r)))];
const at = (from: number, step: string): number => median(rows.slice(from, from + 5).map((r) => r[step] ?? 0));
const mid = Math.floor(N / 2) - 5;
const table = steps.map((s) => ({ step: s, first: at(0, s), middle: at(mid, s), last: at(N - 5, s) }));
console.log(`\nper-host attach, one logged-in host, medians of 5 attaches (ms)\n`);
console.log(`| step | LUNs 1-5 | LUNs ${mid + 1}-${mid + 5} | LUNs ${N - 4}-${N} | last / first |`);
console.log('|---|---|---|---|---|');
for (const t of table) console.log(`| ${t.step} | ${t.first.toFixed(1)} | ${t.middle.toFixed(1)} | ${t.last.toFixed(1)} | ${t.first > 0 ? (t.last / t.first).toFixed(2) : '-'} |`);
writeFileSync(`${OUT}/lio-attach-profile.json`, `${JSON.stringify({ luns: N, table, rows }, null, 1)}\n`);

for (const [i, v] of volumes.entries()) {
  void i;
  await exports.terminateConnection(v, { ...HOST }, { remaining: [] });
  await exports.removeExport(v);
}
