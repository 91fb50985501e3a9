// nvmet against LIO, the two target helpers side by side in one lab guest on one volume group, at
// the exports level (no cinder-api, no RabbitMQ): what an operator choosing `target_helper = nvmet`
// over `lioadm` gains or loses on attach/detach latency, on restoring exports after a reboot, and
// on I/O through the protocol.
//
//   CBLAB_SUITE_TIMEOUT=1500 bash test/lab/run-lab.sh bench/lab/nvmet-vs-lio-bench.mts
//
// Both backends are built as the agent builds them (cinder.conf text -> createTargetSide ->
// createDriver -> createExports), each with its own state_path and volumes_dir, on the same thin
// pool of `cinder-volumes`. The guest is the storage node and the compute host at once, over
// 127.0.0.1: open-iscsi for LIO (per-volume targets, CHAP), nvme-cli for nvmet (port 4420).
//
// 1. attach = createExport + initializeConnection + the host's login/connect until its block
//    device is there (iSCSI: the session's disk; NVMe: the namespace whose nguid is the volume id),
//    detach = logout/disconnect + terminateConnection + removeExport; the helpers alternate sample
//    by sample on one volume, so a drift of the emulated machine hits both alike.
// 2. restore: N exports each admitting a connector, our configfs objects removed as a reboot
//    removes them, then ensureExport of every one with its connector, as the manager's restore
//    calls it (src/manager/flows/export-restore.ts), timed until all are back.
// 3. fio over the same LV through both protocols: 4k random read IOPS (iodepth 32) and 1 MiB
//    sequential read MiB/s (iodepth 8), on a region filled first so reads hit real blocks.
//
// Env: CB_BENCH_SAMPLES (20, plus 1 warm-up each), CB_BENCH_RESTORE (100), CB_BENCH_FIO_S (20),
// CB_BENCH_FIO_MIB (256, the region read), set on the host: nvmet-vs-lio-bench.host.mts hands them
// to the guest (which sees no host environment). Results: $CBLAB_OUT/nvmet-vs-lio.json (rewritten after each phase) and a table on
// stdout. A benchmark: it measures, it never asserts timing targets.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import type { DriverVolume, VolumeDriver } from '../../drivers/driver.js';
import type { VolumeExports } from '../../drivers/exports.js';
import { Configfs } from '../../drivers/targets/lio/configfs.js';
import { NvmetConfigfs } from '../../drivers/targets/nvmet/nvmet-configfs.js';
import type { ConnectionInfo, Connector } from '../../drivers/targets/target.js';
import { connectArgv, disconnectArgv, findByNguid } from '../../src/connector/nvme-commands.js';
import { diskOf, login, loginFrom, logout, sessions } from '../../test/helpers/iscsiadm.js';
import { nvmeNamespaces, pattern, readAt, sh, shTry, until, writeAt } from '../../test/lab/lab-io.js';
import { LAB_VG, freshLabBenchHost, labScratchDiskOrExit, lioLabBackend, lioLabConf } from '../../test/lab/lio-lab-backend.js';

const SAMPLES = Math.max(1, Number(process.env.CB_BENCH_SAMPLES ?? 20));
const RESTORE = Math.max(1, Number(process.env.CB_BENCH_RESTORE ?? 100));
const FIO_S = Math.max(2, Number(process.env.CB_BENCH_FIO_S ?? 20));
const FIO_MIB = Math.max(16, Number(process.env.CB_BENCH_FIO_MIB ?? 256));
const DISK = labScratchDiskOrExit();
const OUT = process.env.CBLAB_OUT ?? '/tmp/cblab-nvmet-vs-lio-out';
const WORK = '/tmp/cblab-nvmet-vs-lio';
const INITIATOR = 'iqn.2024-01.org.example:bench-compute';
const HOST_ID = '0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b00b1';
const HOST_NQN = `nqn.2014-08.org.nvmexpress:uuid:${HOST_ID}`;
/** the one compute host, as each protocol's connector names it */
const ISCSI_HOST: Connector = { host: 'bench-compute', initiator: INITIATOR, ip: '127.0.0.1' };
const NVME_HOST: Connector = { host: 'bench-compute', nqn: HOST_NQN };

type Helper = 'lio' | 'nvmet';
interface Backend {
  helper: Helper;
  driver: VolumeDriver;
  exports: VolumeExports;
  connector: Connector;
}
/** What a host connection left behind, for its detach. */
interface Attached {
  v: DriverVolume;
  /** the iSCSI portal logged into; '' for NVMe */
  portal: string;
  target: string;
  device: string;
}

const t0 = performance.now();
const results: Record<string, unknown> = { samples: SAMPLES, restore_exports: RESTORE, fio_seconds: FIO_S, fio_region_mib: FIO_MIB };
const save = (): void => writeFileSync(`${OUT}/nvmet-vs-lio.json`, `${JSON.stringify({ ...results, elapsed_s: r1((performance.now() - t0) / 1000) }, null, 1)}\n`);
const progress = (line: string): void => void process.stdout.write(`bench: ${line}\n`);
const r1 = (x: number): number => Math.round(x * 10) / 10;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0;
};

/** A step that has not finished in `ms` fails the run with its name: a silent hang tells nothing. */
async function step<T>(name: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not finish within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function vol(i: number): DriverVolume {
  const id = `${i.toString(16).padStart(8, '0')}-0000-4000-8000-00000000b0b0`;
  return { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: false };
}

/** The nvmet backend's cinder.conf: LIO's lab conf with only the target lines changed, so the two differ in nothing else. */
function nvmetConf(p: { workDir: string; statePath: string }): string {
  return lioLabConf({ ...p, layout: 'per-volume', lvmType: 'thin' })
    .replace('target_helper = lioadm', 'target_helper = nvmet')
    .replace('target_protocol = iscsi', 'target_protocol = nvmet_tcp\ntarget_port = 4420');
}

async function backend(helper: Helper): Promise<Backend> {
  const paths = { workDir: WORK, statePath: `${WORK}/${helper}` };
  const conf = helper === 'lio' ? lioLabConf({ ...paths, layout: 'per-volume', lvmType: 'thin' }) : nvmetConf(paths);
  const { driver, exports } = await lioLabBackend(conf, paths);
  return { helper, driver, exports, connector: helper === 'lio' ? ISCSI_HOST : NVME_HOST };
}

/** What attachment_update runs in the agent: create_export, then initialize_connection. */
async function agentAttach(b: Backend, v0: DriverVolume): Promise<{ v: DriverVolume; ci: ConnectionInfo }> {
  const mu = await b.exports.createExport(v0);
  const v = { ...v0, providerLocation: (mu?.provider_location as string | undefined) ?? v0.providerLocation, providerAuth: (mu?.provider_auth as string | undefined) ?? v0.providerAuth };
  return { v, ci: await b.exports.initializeConnection(v, { ...b.connector }) };
}

const namespaces = nvmeNamespaces;

/** The host's half of an attach: login or connect, until the volume's block device is there. */
async function hostConnect(b: Backend, v: DriverVolume, ci: ConnectionInfo): Promise<Attached> {
  if (b.helper === 'lio') {
    // login() writes the node record discovery would have written, with the CHAP the attach gave
    const t = loginFrom(ci.data);
    const r = await login(t);
    if (r.code !== 0) throw new Error(`iscsiadm login ${t.iqn}: ${r.out}`);
    return { v, portal: t.portal, target: t.iqn, device: await diskOf(t.iqn) };
  }
  const [addr, port] = (ci.data.portals as string[][])[0]!;
  const nqn = ci.data.target_nqn as string;
  const r = shTry(connectArgv({ transport: 'tcp', traddr: addr!, trsvcid: Number(port), subnqn: nqn, hostnqn: HOST_NQN, hostid: HOST_ID, ctrlLossTmo: 5, reconnectDelay: 1 }));
  if (r.code !== 0) throw new Error(`nvme connect ${nqn}: ${r.out}`);
  const name = await until(`the namespace of ${v.id}`, 30_000, () => findByNguid(namespaces(), v.id), 50);
  // diskOf settles udev before it answers; the same here, so both devices are equally usable
  await execa('udevadm', ['settle', '-t', '30'], { reject: false });
  return { v, portal: '', target: nqn, device: `/dev/${name}` };
}

/** The host's half of a detach: logout (iSCSI, deleting the node record) or disconnect (NVMe). */
async function hostDisconnect(b: Backend, a: Attached): Promise<void> {
  if (b.helper === 'lio') return logout({ portal: a.portal, iqn: a.target });
  const r = shTry(disconnectArgv(a.target));
  if (r.code !== 0) throw new Error(`nvme disconnect ${a.target}: ${r.out}`);
}

/** What the agent runs for a detach of the volume's last attachment. */
async function agentDetach(b: Backend, v: DriverVolume): Promise<void> {
  await b.exports.terminateConnection(v, { ...b.connector }, { remaining: [] });
  await b.exports.removeExport(v);
}

async function attach(b: Backend, v0: DriverVolume): Promise<Attached> {
  const { v, ci } = await step(`${b.helper} createExport + initializeConnection`, 120_000, agentAttach(b, v0));
  return step(`${b.helper} host connect`, 120_000, hostConnect(b, v, ci));
}

async function detach(b: Backend, a: Attached): Promise<void> {
  await step(`${b.helper} host disconnect`, 120_000, hostDisconnect(b, a));
  await step(`${b.helper} terminateConnection + removeExport`, 120_000, agentDetach(b, a.v));
}

// ---- set-up: one VG, its thin pool, both backends, the volumes --------------------------------

freshLabBenchHost({ disk: DISK, workDir: WORK, outDir: OUT, initiator: INITIATOR });
const lio = await backend('lio');
const nvmet = await backend('nvmet');
const both = [lio, nvmet] as const;
// V0 carries the latency samples and fio; the restore volumes are shared by the two helpers in turn
const V0 = vol(1);
const restoreVols = Array.from({ length: RESTORE }, (_, i) => vol(i + 2));
let t = performance.now();
for (const v of [V0, ...restoreVols]) await lio.driver.createVolume(v);
results.setup = { create_volumes: 1 + RESTORE, create_s: r1((performance.now() - t) / 1000) };
progress(`${1 + RESTORE} thin volumes in ${r1((performance.now() - t) / 1000)} s`);
save();

// ---- 1. attach/detach latency, alternating ---------------------------------------------------

const latency: Record<Helper, { attach_ms: number[]; detach_ms: number[] }> = { lio: { attach_ms: [], detach_ms: [] }, nvmet: { attach_ms: [], detach_ms: [] } };
for (let i = 0; i <= SAMPLES; i++) {
  for (const b of i % 2 ? [...both].reverse() : both) {
    const a0 = performance.now();
    const a = await attach(b, V0);
    const a1 = performance.now();
    await detach(b, a);
    const a2 = performance.now();
    // sample 0 warms up each path (module code, udev rules, nvme-cli's first run)
    if (i === 0) continue;
    latency[b.helper].attach_ms.push(a1 - a0);
    latency[b.helper].detach_ms.push(a2 - a1);
  }
  if (i % 5 === 0) progress(`latency sample ${i}/${SAMPLES}: lio ${latency.lio.attach_ms.map(Math.round).slice(-1).join('')} ms, nvmet ${latency.nvmet.attach_ms.map(Math.round).slice(-1).join('')} ms attach`);
}
const summary = (xs: number[]) => ({ p50: r1(pct(xs, 50)), p95: r1(pct(xs, 95)) });
results.latency = Object.fromEntries(both.map((b) => [b.helper, { attach_ms: summary(latency[b.helper].attach_ms), detach_ms: summary(latency[b.helper].detach_ms), raw: latency[b.helper] }]));
save();

// ---- 2. restore after a configfs loss ----------------------------------------------------------

const lioFs = new Configfs();
const nvmetFs = new NvmetConfigfs();

/** Removes our objects from configfs, as a reboot leaves it. */
async function wipe(b: Backend, target: string): Promise<void> {
  if (b.helper === 'nvmet') return nvmetFs.removeSubsystem(target);
  await lioFs.removeTarget(target);
  const store = await lioFs.findBackstore(target);
  if (store) await lioFs.removeBackstore(store);
}

/** True when the export of `target` is back in configfs and admits our host. */
async function restored(b: Backend, target: string): Promise<boolean> {
  if (b.helper === 'nvmet') return ((await nvmetFs.readSubsystem(target))?.hosts ?? []).includes(HOST_NQN);
  return shTry(['ls', `/sys/kernel/config/target/iscsi/${target}/tpgt_1/acls`]).out.includes(INITIATOR);
}

const restore: Record<string, unknown> = {};
for (const b of both) {
  const exported: Array<{ v: DriverVolume; target: string }> = [];
  t = performance.now();
  for (const v0 of restoreVols) {
    const { v, ci } = await step(`${b.helper} restore export ${exported.length + 1}`, 120_000, agentAttach(b, v0));
    exported.push({ v, target: String(b.helper === 'lio' ? ci.data.target_iqn : ci.data.target_nqn) });
  }
  const exportS = (performance.now() - t) / 1000;
  t = performance.now();
  for (const e of exported) await wipe(b, e.target);
  const wipeS = (performance.now() - t) / 1000;
  const missing = (await Promise.all(exported.map((e) => restored(b, e.target)))).filter((x) => x).length;
  if (missing !== 0) throw new Error(`${b.helper}: ${missing} exports still in configfs after the wipe`);
  // the manager's restore: ensure_export with the attachments' initiators (iSCSI) and connectors
  t = performance.now();
  for (const e of exported) {
    await step(`${b.helper} ensureExport`, 120_000, b.exports.ensureExport(e.v, b.helper === 'lio' ? [INITIATOR] : [], [{ ...b.connector }]));
  }
  const ensureS = (performance.now() - t) / 1000;
  const back = (await Promise.all(exported.map((e) => restored(b, e.target)))).filter((x) => x).length;
  t = performance.now();
  for (const e of exported) await step(`${b.helper} restore cleanup`, 120_000, agentDetach(b, e.v));
  restore[b.helper] = { exports: RESTORE, export_and_admit_s: r1(exportS), wipe_s: r1(wipeS), ensure_all_s: r1(ensureS), per_export_ms: r1((ensureS * 1000) / RESTORE), restored: back, cleanup_s: r1((performance.now() - t) / 1000) };
  progress(`${b.helper}: ${back}/${RESTORE} exports restored in ${r1(ensureS)} s`);
  if (back !== RESTORE) throw new Error(`${b.helper}: only ${back} of ${RESTORE} exports restored`);
  results.restore = restore;
  save();
}

// ---- 3. fio over the same LV through both protocols ---------------------------------------------

interface FioJob {
  read: { iops: number; bw_bytes: number };
}
/** One time-based fio read job on `device`; fio's own JSON, the read side. */
async function fio(device: string, job: { rw: 'randread' | 'read'; bs: string; iodepth: number }): Promise<FioJob['read']> {
  const r = await execa('fio', [
    '--name=bench', `--filename=${device}`, `--rw=${job.rw}`, `--bs=${job.bs}`, `--iodepth=${job.iodepth}`, '--numjobs=1', '--direct=1', '--ioengine=libaio',
    '--time_based', `--runtime=${FIO_S}`, `--size=${FIO_MIB}M`, '--readonly', '--output-format=json',
  ], { timeout: (FIO_S + 120) * 1000 });
  return (JSON.parse(String(r.stdout)) as { jobs: FioJob[] }).jobs[0]!.read;
}

const lv = `/dev/${LAB_VG}/${V0.name}`;
// fill the region read, so a thin LV's unprovisioned zeros (no I/O at all) are not what is measured;
// then a tagged block at 0 that each protocol's device must show, so fio reads this LV and no other
sh(['fio', '--name=fill', `--filename=${lv}`, '--rw=write', '--bs=1M', '--iodepth=8', '--direct=1', '--ioengine=libaio', `--size=${FIO_MIB}M`, '--output-format=terse']);
const tag = pattern('nvmet-vs-lio', 4096);
await writeAt(lv, 0, tag);
const fioRes: Record<string, unknown> = {};
for (const b of both) {
  const a = await attach(b, V0);
  if (!(await readAt(a.device, 0, tag.length)).equals(tag)) throw new Error(`${b.helper}: ${a.device} does not show the LV's data`);
  const rand = await fio(a.device, { rw: 'randread', bs: '4k', iodepth: 32 });
  const seq = await fio(a.device, { rw: 'read', bs: '1M', iodepth: 8 });
  await detach(b, a);
  fioRes[b.helper === 'lio' ? 'iscsi' : 'nvme_tcp'] = { randread_4k_iops: Math.round(rand.iops), seqread_1m_mib_s: r1(seq.bw_bytes / 1024 ** 2) };
  progress(`${b.helper}: ${Math.round(rand.iops)} IOPS 4k random, ${r1(seq.bw_bytes / 1024 ** 2)} MiB/s 1M sequential`);
  results.fio = fioRes;
  save();
}
if ((await sessions()).length !== 0) throw new Error('iSCSI sessions left at the end');

// ---- the table ----------------------------------------------------------------------------------

const L = results.latency as Record<Helper, { attach_ms: { p50: number; p95: number }; detach_ms: { p50: number; p95: number } }>;
const R = restore as Record<Helper, { ensure_all_s: number }>;
const F = fioRes as Record<'iscsi' | 'nvme_tcp', { randread_4k_iops: number; seqread_1m_mib_s: number }>;
const ratio = (n: number, d: number): number => Math.round((n / d) * 100) / 100;
const rows: Array<[string, number, number]> = [
  ['attach p50, ms', L.lio.attach_ms.p50, L.nvmet.attach_ms.p50],
  ['attach p95, ms', L.lio.attach_ms.p95, L.nvmet.attach_ms.p95],
  ['detach p50, ms', L.lio.detach_ms.p50, L.nvmet.detach_ms.p50],
  ['detach p95, ms', L.lio.detach_ms.p95, L.nvmet.detach_ms.p95],
  [`restore of ${RESTORE} exports, s`, R.lio.ensure_all_s, R.nvmet.ensure_all_s],
  ['4k random read, IOPS (qd 32)', F.iscsi.randread_4k_iops, F.nvme_tcp.randread_4k_iops],
  ['1 MiB sequential read, MiB/s (qd 8)', F.iscsi.seqread_1m_mib_s, F.nvme_tcp.seqread_1m_mib_s],
];
results.ratios_nvmet_over_lio = Object.fromEntries(rows.map(([k, l, n]) => [k, ratio(n, l)]));
save();
console.log(`\nnvmet against LIO on one VG (${SAMPLES} samples each, alternating; restore of ${RESTORE}; fio ${FIO_S} s over ${FIO_MIB} MiB)\n`);
console.log('| measure | LIO (iSCSI) | nvmet (NVMe/TCP) | nvmet / LIO |');
console.log('|---|---|---|---|');
for (const [k, l, n] of rows) console.log(`| ${k} | ${l} | ${n} | ${ratio(n, l)}× |`);
console.log(`\ntotal ${r1((performance.now() - t0) / 1000)} s`);
