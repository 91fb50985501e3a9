// Per-volume against per-host targets on tgt, in one run: attach 50 volumes to one compute host,
// then detach them, each layout in turn on the same tgtd.
//
//   npx tsx bench/host-target-bench.mts            # 50 volumes, 3 rounds per layout
//   CB_HT_VOLUMES=100 CB_HT_ROUNDS=5 npx tsx bench/host-target-bench.mts
//
// As root with tgt and libiscsi-bin installed. A private tgtd on 127.0.0.1; the exports as the
// agent builds them (TargetExports over TgtTarget, HostTargetExports over TgtHostTarget, the
// registry and the external lock files on disk); sparse files as backing stores. Per attach it
// times the agent's part (create_export + initialize_connection, what attachment_update runs) and
// the host's part: a login with the connection_info's CHAP and a read of the LUN's serial
// (libiscsi's iscsi-inq, the cheapest usable-device check this kernel allows: it has no SCSI
// initiator, the lab has one). Per detach: terminate_connection + remove_export. It prints, per
// layout, the targets (= sessions per portal a host holds), p50/p95 per operation and the totals,
// and for the per-host layout the agent's time per attach at the first five LUNs against the last
// five (flat in the number of LUNs already on the target is the goal: within 1.2×).
//
// What it does not measure: cinder-api and RabbitMQ (bench/attach-scale-bench.mts measures that
// path), and the kernel initiator's scan and multipath (the lab's LIO run does).
import { mkdtemp, rm, truncate, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import type { DriverVolume } from '../drivers/driver.js';
import { TargetExports, type VolumeExports } from '../drivers/exports.js';
import { HostTargetExports } from '../drivers/host-target-exports.js';
import { IscsiHostProtocol } from '../drivers/targets/iscsi-host-protocol.js';
import { HostTargetRegistry } from '../drivers/targets/host-target/host-target-registry.js';
import { TgtHostTarget } from '../drivers/targets/tgt/tgt-host-target.js';
import { TgtTarget } from '../drivers/targets/tgt/tgt-target.js';
import { createLogger, setRootLogger } from '../src/log.js';
import { iscsiSerial } from '../test/helpers/libiscsi.js';
import { startTgtd, tgtAvailable } from '../test/helpers/tgtd.js';

const N = Math.max(5, Number(process.env.CB_HT_VOLUMES ?? 50));
const ROUNDS = Math.max(1, Number(process.env.CB_HT_ROUNDS ?? 3));
setRootLogger(createLogger({ level: 'warn', destination: 2, pretty: false }));
const HOST = { host: 'bench-compute', initiator: 'iqn.1994-05.com.redhat:bench-compute' };

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;

interface LayoutResult {
  layout: string;
  targets_at_peak: number;
  attach_agent_ms: number[];
  attach_host_ms: number[];
  detach_agent_ms: number[];
  total_s: number;
}

if (!(await tgtAvailable())) {
  console.error('tgt is not installed: apt-get install tgt libiscsi-bin');
  process.exit(2);
}
const tgtd = await startTgtd({ port: 13400 });
const dir = await mkdtemp(join(tmpdir(), 'cb-ht-bench-'));
try {
  const iscsi = { targetPrefix: 'iqn.2010-10.org.openstack:', targetIpAddress: '127.0.0.1', targetSecondaryIpAddresses: [], targetPort: tgtd.port, targetProtocol: 'iscsi' as const };
  const tgtOpts = { ...iscsi, volumesDir: join(dir, 'volumes'), iscsiWriteCache: 'on' as const, iscsiTargetFlags: '', controlPort: tgtd.controlPort };
  await mkdir(tgtOpts.volumesDir, { recursive: true });
  const driver = { exportPath: (v: Pick<DriverVolume, 'name'>) => join(dir, v.name), prepareExport: async () => undefined };
  const perVolume = new TargetExports({ target: new TgtTarget(tgtOpts), supervisor: null, driver });
  const perHost = new HostTargetExports({
    protocol: new IscsiHostProtocol(iscsi, 'bench'),
    helper: new TgtHostTarget(tgtOpts),
    registry: new HostTargetRegistry({ path: join(dir, 'state', 'host-targets-bench.json'), backend: 'bench', lockPath: join(dir, 'locks') }),
    supervisor: null,
    lockPath: join(dir, 'locks'),
    driver,
    perVolume,
  });
  const volumes: DriverVolume[] = [];
  for (let i = 0; i < N; i++) {
    const id = randomUUID();
    const v: DriverVolume = { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: false };
    await writeFile(join(dir, v.name), '');
    await truncate(join(dir, v.name), 64 * 1024 * 1024);
    volumes.push(v);
  }
  const targetsNow = async (): Promise<number> => (await tgtd.tgtadm('--lld', 'iscsi', '--op', 'show', '--mode', 'target')).stdout.split('\n').filter((l) => l.startsWith('Target ')).length;

  const runLayout = async (layout: string, exports: VolumeExports): Promise<LayoutResult> => {
    const res: LayoutResult = { layout, targets_at_peak: 0, attach_agent_ms: [], attach_host_ms: [], detach_agent_ms: [], total_s: 0 };
    const t0 = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      const rows: DriverVolume[] = [];
      for (const v0 of volumes) {
        const a0 = performance.now();
        const model = await exports.createExport(v0);
        const v = { ...v0, providerLocation: model?.provider_location ?? v0.providerLocation, providerAuth: model?.provider_auth ?? v0.providerAuth };
        const ci = await exports.initializeConnection(v, { ...HOST });
        const a1 = performance.now();
        const d = ci.data as Record<string, any>;
        const s = await iscsiSerial({ portal: d.target_portal, iqn: d.target_iqn, lun: d.target_lun, initiator: HOST.initiator, user: d.auth_username, password: d.auth_password });
        const a2 = performance.now();
        if (s.exitCode !== 0) throw new Error(`${layout}: the host could not use ${d.target_iqn} LUN ${d.target_lun}: ${s.stderr}`);
        res.attach_agent_ms.push(a1 - a0);
        res.attach_host_ms.push(a2 - a1);
        rows.push(v);
      }
      res.targets_at_peak = Math.max(res.targets_at_peak, await targetsNow());
      for (const v of rows) {
        const d0 = performance.now();
        await exports.terminateConnection(v, { ...HOST }, { remaining: [] });
        await exports.removeExport(v);
        res.detach_agent_ms.push(performance.now() - d0);
      }
      if ((await targetsNow()) !== 0) throw new Error(`${layout}: targets left after detaching everything`);
    }
    res.total_s = (performance.now() - t0) / 1000;
    return res;
  };

  const results = [await runLayout('per-volume', perVolume), await runLayout('per-host', perHost)];
  console.log(`\n${N} volumes attached to one host then detached, ${ROUNDS} round(s) per layout, tgt on 127.0.0.1\n`);
  console.log('| layout | targets (sessions per portal) | attach p50 / p95, agent ms | attach p50 / p95, host ms | detach p50 / p95, agent ms | total s |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.layout} | ${r.targets_at_peak} | ${r1(pct(r.attach_agent_ms, 50))} / ${r1(pct(r.attach_agent_ms, 95))} | ${r1(pct(r.attach_host_ms, 50))} / ${r1(pct(r.attach_host_ms, 95))} | ${r1(pct(r.detach_agent_ms, 50))} / ${r1(pct(r.detach_agent_ms, 95))} | ${r1(r.total_s)} |`,
    );
  }
  const [pv, ph] = results as [LayoutResult, LayoutResult];
  const firstFive: number[] = [];
  const lastFive: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const xs = ph.attach_agent_ms.slice(round * N, (round + 1) * N);
    firstFive.push(...xs.slice(0, 5));
    lastFive.push(...xs.slice(-5));
  }
  const flat = pct(lastFive, 50) / pct(firstFive, 50);
  console.log(`\nper-host agent attach p50 at LUNs 1-5: ${r1(pct(firstFive, 50))} ms, at LUNs ${N - 4}-${N}: ${r1(pct(lastFive, 50))} ms: ${flat.toFixed(2)}× (target ≤ 1.2×)`);
  console.log(`end-to-end attach p50 (agent + host), per-host / per-volume: ${(pct(ph.attach_agent_ms.map((x, i) => x + ph.attach_host_ms[i]!), 50) / pct(pv.attach_agent_ms.map((x, i) => x + pv.attach_host_ms[i]!), 50)).toFixed(2)}× (target ≤ 1)`);
  if (process.env.CB_HT_JSON) await writeFile(process.env.CB_HT_JSON, `${JSON.stringify({ volumes: N, rounds: ROUNDS, flat_ratio: flat, results }, null, 1)}\n`);
} finally {
  await tgtd.stop();
  await rm(dir, { recursive: true, force: true });
}
