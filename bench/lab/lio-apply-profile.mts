// Where the LIO per-host target's time per change goes as the target grows (issue 12: the agent's
// per-host attach grew 2.79x from 1 to 50 LUNs). Lab only: real configfs, the guest's kernel.
//
//   bash test/lab/run-lab.sh bench/lab/lio-apply-profile.mts
//
// One host target, LioHostTarget.apply() alone (no LVM, no RPC): LUNs added one by one up to
// CB_PROFILE_LUNS (50), then taken away one by one, each apply timed. The devices are dm-linear
// slices of the scratch disk (created in a second, unlike 50 LVs). Also times one configfs read
// done through the event loop's thread pool against the same read done synchronously, since that
// ratio decides what a read costs here. Results: $CBLAB_OUT/lio-apply-profile.json and stdout.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { lstat, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HostTargetRecord, LunMapping } from '../../drivers/targets/host-target/host-target-registry.js';
import { hostTargetIqn } from '../../drivers/targets/host-target/host-target-name.js';
import { LioHostTarget } from '../../drivers/targets/lio/lio-host-target.js';
import { createLogger, setRootLogger } from '../../src/log.js';
import { generateChapCredentials } from '../../src/iscsi/index.js';

const N = Math.max(5, Number(process.env.CB_PROFILE_LUNS ?? 50));
const DISK = (process.env.CBLAB_DISKS ?? '').split(' ')[0] ?? '';
const OUT = process.env.CBLAB_OUT ?? '/tmp/cblab-lio-profile-out';
if (!DISK) {
  console.error('run through test/lab/run-lab.sh (no scratch disk)');
  process.exit(2);
}
setRootLogger(createLogger({ level: 'warn' }));
mkdirSync(OUT, { recursive: true });

const run = (argv: string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const r2 = (x: number): number => Math.round(x * 100) / 100;

const devices: string[] = [];
for (let i = 0; i < N; i++) {
  const name = `cbprof-${i}`;
  run(['dmsetup', 'create', name, '--table', `0 2048 linear ${DISK} ${i * 2048}`]);
  devices.push(`/dev/mapper/${name}`);
}

const helper = new LioHostTarget({
  targetPrefix: 'iqn.2010-10.org.openstack:',
  targetIpAddress: '127.0.0.1',
  targetSecondaryIpAddresses: [],
  targetPort: 3260,
  targetProtocol: 'iscsi',
});
const iqn = hostTargetIqn('iqn.2010-10.org.openstack:', 'lvm', 'profile-compute');
const record: HostTargetRecord = { host: 'profile-compute', iqn, chap: generateChapCredentials(), nextLun: 0, generation: 0, released: {}, luns: [] };
const initiator = 'iqn.2024-01.org.example:profile-compute';
const mapping = (i: number): LunMapping => {
  const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  return { lun: i, volumeId: id, volumeName: `volume-${id}`, backingPath: devices[i]!, serial: id, initiators: [initiator] };
};

const attachMs: number[] = [];
for (let i = 0; i < N; i++) {
  record.luns.push(mapping(i));
  const t = performance.now();
  await helper.apply(record);
  attachMs.push(performance.now() - t);
}

// one configfs read, through the thread pool and synchronously, on the grown target
const tpg = join('/sys/kernel/config/target/iscsi', iqn, 'tpgt_1');
const attr = join(tpg, 'attrib', 'authentication');
const reps = 300;
const time = async (fn: () => unknown): Promise<number> => {
  const t = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return ((performance.now() - t) * 1000) / reps;
};
const micro = {
  readFileAsyncUs: r2(await time(() => readFile(attr, 'utf8'))),
  readFileSyncUs: r2(await time(() => readFileSync(attr, 'utf8'))),
  lstatAsyncUs: r2(await time(() => lstat(attr))),
  lstatSyncUs: r2(await time(() => lstatSync(attr))),
  readdirLunAsyncUs: r2(await time(() => readdir(join(tpg, 'lun')))),
  readdirLunSyncUs: r2(await time(() => readdirSync(join(tpg, 'lun')))),
  readdirTypedAsyncUs: r2(await time(() => readdir(join(tpg, 'lun', 'lun_0'), { withFileTypes: true }))),
};

const detachMs: number[] = [];
while (record.luns.length > 0) {
  record.luns.pop();
  const t = performance.now();
  await helper.apply(record);
  detachMs.push(performance.now() - t);
}
for (let i = 0; i < N; i++) run(['dmsetup', 'remove', `cbprof-${i}`]);

const first = (xs: number[]): number => median(xs.slice(0, 5));
const last = (xs: number[]): number => median(xs.slice(-5));
// detachMs runs from N LUNs down to 1: its first entries are the big target
const result = {
  luns: N,
  attachMs: attachMs.map(r2),
  detachMs: detachMs.map(r2),
  attachFirst5Median: r2(first(attachMs)),
  attachLast5Median: r2(last(attachMs)),
  attachGrowth: r2(last(attachMs) / first(attachMs)),
  detachAtMostLunsMedian: r2(first(detachMs)),
  detachAtFewestLunsMedian: r2(last(detachMs)),
  detachGrowth: r2(first(detachMs) / last(detachMs)),
  micro,
};
writeFileSync(join(OUT, 'lio-apply-profile.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify({ ...result, attachMs: undefined, detachMs: undefined }, null, 2));
