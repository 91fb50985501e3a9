// Where an attach's time goes in the tgt helper, with few and with many targets on one tgtd.
//
//   npx tsx bench/tgt-scale-probe.mts                 # 10 and 300 targets, 20 rounds each
//   CB_PROBE_SIZES=10,300,600 CB_PROBE_ROUNDS=30 npx tsx bench/tgt-scale-probe.mts
//
// As root with tgt installed. A private tgtd (its own control port and portal on 127.0.0.1, started
// in the foreground by this script and killed by pid at the end), a TgtTarget on it as the agent
// builds it (execa runner, a volumes_dir of its own), and sparse 1 GiB files as backing stores. The
// targets that make up the scale are created by the helper itself (createExport +
// initializeConnection), so they look exactly like the agent's. Each round then times, on one more
// volume, the helper's part of an attach (createExport + initializeConnection) and of a detach
// (terminateConnection + removeExport), and an ensureExport of an existing export (what a restart's
// restore does per volume), counting the tgtadm calls each makes and the time spent in them by kind
// (`show target`, `show account`, the rest), and the CPU time a round (attach + ensure + detach)
// costs this process (the helper), the tgtadm processes and tgtd: unlike the times, CPU time does
// not grow when other work on the machine makes them wait. The manager, the database and RabbitMQ
// are not involved: bench/attach-scale-bench.mts measures the whole path.
//
// Env: CB_PROBE_SIZES (10,300), CB_PROBE_ROUNDS (20), CB_PROBE_JSON (write the rows there too).
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { processRunner, type CommandRunner } from '../src/exec/run-command.js';
import { TgtTarget } from '../drivers/targets/tgt/tgt-target.js';
import { servingTgtdPid } from '../drivers/targets/tgt/tgtd-pid.js';
import type { ExportedVolume } from '../drivers/targets/target.js';
import { startTgtd, tgtAvailable, type TgtdHandle } from '../test/helpers/tgtd.js';
import { createLogger, setRootLogger } from '../src/log.js';

const SIZES = (process.env.CB_PROBE_SIZES ?? '10,300').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b);
const ROUNDS = Math.max(1, Number(process.env.CB_PROBE_ROUNDS ?? 20));
setRootLogger(createLogger({ level: 'warn', destination: 2, pretty: false }));

type Kind = 'show target' | 'show account' | 'show sys' | 'other';
interface Tally {
  calls: Record<Kind, number>;
  ms: Record<Kind, number>;
}
const fresh = (): Tally => ({ calls: { 'show target': 0, 'show account': 0, 'show sys': 0, other: 0 }, ms: { 'show target': 0, 'show account': 0, 'show sys': 0, other: 0 } });
let tally = fresh();
function kindOf(argv: readonly string[]): Kind {
  const op = argv[argv.indexOf('--op') + 1];
  const mode = argv[argv.indexOf('--mode') + 1];
  if (op === 'show' && mode === 'target' && !argv.includes('--tid')) return 'show target';
  if (op === 'show' && mode === 'account') return 'show account';
  if (op === 'show' && mode === 'sys') return 'show sys';
  return 'other';
}
function counting(inner: CommandRunner): CommandRunner {
  return async (argv) => {
    const t0 = performance.now();
    try {
      return await inner(argv);
    } finally {
      const k = kindOf(argv);
      tally.calls[k] += 1;
      tally.ms[k] += performance.now() - t0;
    }
  };
}

/** CPU ms so far: this process (the helper), its reaped children (tgtadm) and tgtd (/proc/<pid>/stat, 10 ms ticks). */
async function cpu(tgtdPid: number | null): Promise<{ helper: number; tgtadm: number; tgtd: number }> {
  const ticks = async (pid: number | string) => {
    const st = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ').map(Number);
    return { self: (f[11]! + f[12]!) * 10, children: (f[13]! + f[14]!) * 10 };
  };
  const me = await ticks('self');
  const t = tgtdPid ? await ticks(tgtdPid).catch(() => ({ self: 0, children: 0 })) : { self: 0, children: 0 };
  return { helper: me.self, tgtadm: me.children, tgtd: t.self };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const r1 = (x: number) => Math.round(x * 10) / 10;

let tgtd: TgtdHandle | null = null;
let dir = '';
const rows: Array<Record<string, unknown>> = [];
try {
  if (process.getuid?.() !== 0 || !(await tgtAvailable())) throw new Error('needs root and tgt');
  dir = await mkdtemp(join(tmpdir(), 'cb-tgt-probe-'));
  tgtd = await startTgtd({ port: 13650, logDir: dir });
  const volumesDir = join(dir, 'volumes');
  const target = new TgtTarget({
    targetPrefix: 'iqn.2010-10.org.openstack:',
    targetIpAddress: '127.0.0.1',
    targetSecondaryIpAddresses: [],
    targetPort: tgtd.port,
    targetProtocol: 'iscsi',
    volumesDir,
    iscsiWriteCache: 'on',
    iscsiTargetFlags: '',
    controlPort: tgtd.controlPort,
    runner: counting(processRunner()),
    // as the agent runs it: with the runner of its own it would otherwise not know tgtd's pid
    servingPid: () => servingTgtdPid(tgtd!.controlPort),
  });
  await writeFile(join(dir, '.keep'), '');
  const volume = async (): Promise<ExportedVolume> => {
    const id = randomUUID();
    const backingPath = join(dir, `volume-${id}`);
    await writeFile(backingPath, '');
    await truncate(backingPath, 1024 ** 3);
    return { id, name: `volume-${id}`, providerLocation: null, providerAuth: null, backingPath, multiattach: false };
  };
  const attachOne = async (v: ExportedVolume, host: string): Promise<ExportedVolume> => {
    const m = await target.createExport(v);
    const row = { ...v, providerLocation: m.provider_location, providerAuth: m.provider_auth };
    await target.initializeConnection(row, { initiator: `iqn.1994-05.com.redhat:${host}`, host });
    return row;
  };
  let have = 0;
  const existing: ExportedVolume[] = [];
  for (const size of SIZES) {
    while (have < size) {
      existing.push(await attachOne(await volume(), `probe-h${have % 30}`));
      have += 1;
    }
    const attachMs: number[] = [];
    const detachMs: number[] = [];
    const ensureMs: number[] = [];
    const tallies = { attach: fresh(), detach: fresh(), ensure: fresh() };
    const add = (into: Tally, t: Tally) => {
      for (const k of Object.keys(t.calls) as Kind[]) {
        into.calls[k] += t.calls[k];
        into.ms[k] += t.ms[k];
      }
    };
    const sample = await volume();
    const cpu0 = await cpu(tgtd.pid());
    for (let i = 0; i < ROUNDS; i++) {
      tally = fresh();
      let t0 = performance.now();
      const row = await attachOne(sample, 'probe-sample');
      attachMs.push(performance.now() - t0);
      add(tallies.attach, tally);

      tally = fresh();
      t0 = performance.now();
      const e = existing[i % existing.length]!;
      await target.ensureExport(e, { initiators: [`iqn.1994-05.com.redhat:probe-h${(i % existing.length) % 30}`] });
      ensureMs.push(performance.now() - t0);
      add(tallies.ensure, tally);

      tally = fresh();
      t0 = performance.now();
      await target.terminateConnection(row, { initiator: 'iqn.1994-05.com.redhat:probe-sample', host: 'probe-sample' }, {});
      await target.removeExport(row);
      detachMs.push(performance.now() - t0);
      add(tallies.detach, tally);
    }
    const cpu1 = await cpu(tgtd.pid());
    const cpuPerRound = {
      helper: r1((cpu1.helper - cpu0.helper) / ROUNDS),
      tgtadm: r1((cpu1.tgtadm - cpu0.tgtadm) / ROUNDS),
      tgtd: r1((cpu1.tgtd - cpu0.tgtd) / ROUNDS),
    };
    const per = (t: Tally) =>
      Object.fromEntries((Object.keys(t.calls) as Kind[]).filter((k) => t.calls[k] > 0).map((k) => [k, `${r1(t.calls[k] / ROUNDS)} calls, ${r1(t.ms[k] / ROUNDS)} ms`]));
    const row = {
      targets: size,
      rounds: ROUNDS,
      attach_p50_ms: r1(median(attachMs)),
      detach_p50_ms: r1(median(detachMs)),
      ensure_p50_ms: r1(median(ensureMs)),
      cpu_ms_per_round: cpuPerRound,
      attach_tgtadm: per(tallies.attach),
      detach_tgtadm: per(tallies.detach),
      ensure_tgtadm: per(tallies.ensure),
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
} catch (err) {
  console.error(err);
  process.exitCode = 2;
} finally {
  await tgtd?.stop().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
}
if (process.env.CB_PROBE_JSON) await writeFile(process.env.CB_PROBE_JSON, `${JSON.stringify(rows, null, 2)}\n`);
console.log('');
console.log('| targets | attach p50 ms | detach p50 ms | ensure_export p50 ms | CPU ms per round: helper / tgtadm / tgtd | attach: tgtadm per op | detach: tgtadm per op |');
console.log('|---:|---:|---:|---:|---:|---|---|');
for (const r of rows) {
  const fmt = (o: unknown) => Object.entries(o as Record<string, string>).map(([k, v]) => `${k}: ${v}`).join('; ');
  const c = r.cpu_ms_per_round as { helper: number; tgtadm: number; tgtd: number };
  console.log(`| ${String(r.targets)} | ${String(r.attach_p50_ms)} | ${String(r.detach_p50_ms)} | ${String(r.ensure_p50_ms)} | ${c.helper} / ${c.tgtadm} / ${c.tgtd} | ${fmt(r.attach_tgtadm)} | ${fmt(r.detach_tgtadm)} |`);
}
