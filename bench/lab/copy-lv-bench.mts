// Copy engine against cinder's dd between real LVs (the lab guest: device-mapper, LVM, thin
// pools), in one run on the same devices: thick → thick dense, thin 90%-sparse → fresh thin,
// clear of a thick LV. Each against cinder's exact dd (cinder/volume/volume_utils.py copy_volume), `qemu-img convert -t
// none -T none`, and fio's sequential read of the source / write of the destination as the
// ceiling. Runs in the guest as a script:
//
//   CBLAB_SLOTS=2 CBLAB_DISK_SIZE=24G CBLAB_SUITE_TIMEOUT=1500 CBLAB_TOTAL_TIMEOUT=1800 \
//     bash test/lab/run-lab.sh bench/lab/copy-lv-bench.mts
//
// The table, the rows as JSON and the raw dmsetup/thin_dump output (test fixtures) come back in
// tmp/lab-out/copy-lv-bench/. Size: CB_LAB_BENCH_GIB below (4 GiB: every copy takes seconds to
// tens of seconds in the emulated guest; the whole run about 10 minutes).
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { checksum, clear, copy } from '../../src/native/copy.js';
import { splitDevT, thinDeviceMap } from '../../drivers/lvm/thin-map.js';
import { lvmCommandRunner } from '../../drivers/lvm/lvm-runner.js';
import {
  dmNameArgv,
  dmTableArgv,
  parseThinPoolTable,
  parseThinTable,
  releaseMetadataSnapArgv,
  reserveMetadataSnapArgv,
  thinDumpArgv,
} from '../../drivers/lvm/thin-map-commands.js';
import { GiB, MiB, ddCopy, fio, median, printTable, record, timeAsync, timeCmd, writeDense, type Row } from '../copy-common.js';

const SIZE_GIB = Number(process.env.CB_LAB_BENCH_GIB ?? '4');
const SIZE = SIZE_GIB * GiB;
const REPS = Number(process.env.CB_LAB_BENCH_REPS ?? '2');
const DATA_EVERY = 10 * MiB; // 1 MiB of data every 10 MiB: 10% data, 90% never written
const VG = 'cbbench';
const OUT = process.env.CBLAB_OUT ?? path.resolve('tmp/lab-out/copy-lv-bench');
const rows: Row[] = [];
const rec = (c: string, tool: string, s: number, note?: string): Row => record(rows, c, tool, s, SIZE, note);

function run(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const lv = (name: string) => `/dev/${VG}/${name}`;
const mb = (bytes: number) => `${bytes / MiB}m`;

function freshThin(name: string): string {
  spawnSync('lvremove', ['-f', `${VG}/${name}`], { stdio: 'ignore' });
  run('lvcreate', '-T', `${VG}/pool`, '-V', mb(SIZE), '-n', name, '--yes');
  run('udevadm', 'settle');
  return lv(name);
}

/** `1 MiB every 10 MiB` of random data, plus one lone 4 KiB block (a single_mapping in thin_dump). */
function writeSparseDevice(dev: string): number {
  const chunk = Buffer.alloc(MiB);
  randomFillSync(chunk);
  const fd = openSync(dev, 'w');
  let data = 0;
  try {
    for (let off = 0; off < SIZE; off += DATA_EVERY) {
      chunk.writeUInt32LE(off / MiB, 0);
      writeSync(fd, chunk, 0, MiB, off);
      data += MiB;
    }
    writeSync(fd, chunk, 0, 4096, 5 * MiB + 256 * 1024);
    data += 4096;
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return data;
}

/** The real command output the unit tests parse (test/unit/lvm/fixtures/thin-*). */
async function captureFixtures(src: string, other: string): Promise<void> {
  const runner = lvmCommandRunner();
  const dir = path.join(OUT, 'fixtures');
  mkdirSync(dir, { recursive: true });
  const save = (name: string, text: string) => writeFileSync(path.join(dir, name), text);
  const thin = parseThinTable((await runner(dmTableArgv(splitDevT(statSync(src, { bigint: true }).rdev)))).stdout);
  if (!thin) throw new Error(`${src} is not a dm-thin device`);
  save('thin-dmsetup-table.txt', (await runner(dmTableArgv(splitDevT(statSync(src, { bigint: true }).rdev)))).stdout);
  save('thin-dmsetup-table-other.txt', (await runner(dmTableArgv(splitDevT(statSync(other, { bigint: true }).rdev)))).stdout);
  const poolOut = (await runner(dmTableArgv(thin.pool))).stdout;
  save('thin-pool-dmsetup-table.txt', poolOut);
  const pool = parseThinPoolTable(poolOut)!;
  const poolName = (await runner(dmNameArgv(thin.pool))).stdout.trim();
  const metaName = (await runner(dmNameArgv(pool.metadata))).stdout.trim();
  save('thin-names.txt', `pool=${poolName}\nmetadata=${metaName}\ndev_id=${thin.devId}\n`);
  save('thin_dump-help.txt', spawnSync('thin_dump', ['--help'], { encoding: 'utf8' }).stdout + spawnSync('thin_dump', ['-V'], { encoding: 'utf8' }).stdout);
  await runner(reserveMetadataSnapArgv(poolName));
  try {
    save('thin_dump-dev.xml', (await runner(thinDumpArgv(`/dev/mapper/${metaName}`, thin.devId))).stdout);
    // Every device of the pool (no --dev-id): the parser must pick the right one.
    save('thin_dump-all.xml', run('thin_dump', '--metadata-snap', '--format', 'xml', `/dev/mapper/${metaName}`));
  } finally {
    await runner(releaseMetadataSnapArgv(poolName));
  }
}

async function engine(src: string, dst: string, opts: Parameters<typeof copy>[2]): Promise<number> {
  return timeAsync(() => copy(src, dst, { length: SIZE, ...opts }));
}

async function dense(): Promise<void> {
  console.error(`dense: ${SIZE_GIB} GiB thick LV -> thick LV, ${REPS} interleaved rounds (median)`);
  const src = lv('thick-src');
  const dst = lv('thick-dst');
  writeDense(src, SIZE);
  writeDense(dst, SIZE); // both written once: the scratch disk is a sparse file on the host
  run('sync');
  const times = new Map<string, number[]>();
  const add = (k: string, t: number) => times.set(k, [...(times.get(k) ?? []), t]);
  for (let i = 0; i < REPS; i++) {
    add('fio sequential read of the source', SIZE / fio([{ name: 'rd', file: src, rw: 'read' }], SIZE).rd!);
    add('fio sequential write of the destination', SIZE / fio([{ name: 'wr', file: dst, rw: 'write' }], SIZE).wr!);
    // Both LVs sit on one virtio disk: a copy's reads and writes share it, so fio doing both at
    // once is the bound a copy can actually reach.
    const both = fio([{ name: 'rd', file: src, rw: 'read' }, { name: 'wr', file: dst, rw: 'write' }], SIZE);
    add('fio read + write at once (slower job)', SIZE / Math.min(both.rd!, both.wr!));
    add('dd (cinder copy_volume)', timeCmd('dd', ddCopy(src, dst, SIZE, false)));
    add('qemu-img convert -t none -T none', timeCmd('qemu-img', ['convert', '-t', 'none', '-T', 'none', '-f', 'raw', '-O', 'raw', src, dst]));
    add('cinderblock copy', await engine(src, dst, {}));
  }
  const med = new Map([...times].map(([k, ts]) => [k, median(ts)] as const));
  const ddS = med.get('dd (cinder copy_volume)')!;
  for (const [k, ts] of times) {
    const r = rec('dense', k, med.get(k)!, `runs: ${ts.map((t) => (SIZE / MiB / t).toFixed(0)).join(', ')} MiB/s`);
    if (!k.startsWith('fio')) r.ratioToDd = ddS / r.seconds;
  }
  const ceiling = Math.max(med.get('fio sequential read of the source')!, med.get('fio sequential write of the destination')!);
  rec('dense', 'ceiling = min(fio read, fio write)', ceiling);
  const eng = med.get('cinderblock copy')!;
  const atOnce = med.get('fio read + write at once (slower job)')!;
  rows.push({
    case: 'dense',
    tool: 'cinderblock copy / ceiling',
    seconds: 0,
    mibps: 0,
    note: `${((ceiling / eng) * 100).toFixed(0)}% of min(fio read alone, write alone); ${((atOnce / eng) * 100).toFixed(0)}% of fio's read + write at once`,
  });
  if ((await checksum(src, { length: SIZE })) !== (await checksum(dst, { length: SIZE }))) throw new Error('dense: destination differs from the source');
}

async function thinSparse(): Promise<void> {
  console.error(`thin: ${SIZE_GIB} GiB thin LV with 10% data -> a fresh thin LV each time (cinder: conv=sparse)`);
  const src = freshThin('thin-src');
  const data = writeSparseDevice(src);
  const want = await checksum(src, { length: SIZE });
  const note = `${(data / MiB).toFixed(0)} MiB of data`;
  const check = async (tool: string, dst: string) => {
    if ((await checksum(dst, { length: SIZE })) !== want) throw new Error(`thin: ${tool} left a destination that differs from the source`);
  };
  const times = new Map<string, number[]>();
  const add = (k: string, t: number) => times.set(k, [...(times.get(k) ?? []), t]);
  let mapNote = '';
  const lookupParts: string[] = [];
  for (let i = 0; i < REPS; i++) {
    add('fio sequential read of the source', SIZE / fio([{ name: 'rd', file: src, rw: 'read' }], SIZE).rd!);
    let dst = freshThin('thin-dst');
    add('fio sequential write of the destination', SIZE / fio([{ name: 'wr', file: dst, rw: 'write' }], SIZE).wr!);
    dst = freshThin('thin-dst');
    add('dd conv=sparse (cinder, thin)', timeCmd('dd', ddCopy(src, dst, SIZE, true)));
    await check('dd', dst);
    dst = freshThin('thin-dst');
    add('qemu-img convert -t none -T none', timeCmd('qemu-img', ['convert', '-t', 'none', '-T', 'none', '-f', 'raw', '-O', 'raw', src, dst]));
    dst = freshThin('thin-dst');
    // What the agent did before the map: every block read, zero blocks not written.
    add('cinderblock copy, no map (reads all)', await engine(src, dst, { destinationIsZeroed: true }));
    await check('engine without map', dst);
    dst = freshThin('thin-dst');
    // The agent's path now (drivers/lvm/volume-copy.ts withThinSourceMap): the lookup is timed too.
    const t0 = performance.now();
    const map = await thinDeviceMap(src);
    const lookupS = (performance.now() - t0) / 1000;
    if (!map) throw new Error(`${src}: no thin map`);
    // read in-process from the metadata (no process at all), unless the reader fell back to thin_dump
    add(`thin map lookup alone (dm ioctls + ${map.readBy === 'thin_dump' ? 'thin_dump' : 'metadata read in-process'})`, lookupS);
    const copyS = await engine(src, dst, { destinationIsZeroed: true, sourceExtents: map.extents });
    add('cinderblock copy with the thin map (copy alone)', copyS);
    add('cinderblock copy with the thin map (lookup + copy)', lookupS + copyS);
    await check('engine with map', dst);
    const lk = map.lookupMs;
    lookupParts.push(lk ? `find ${lk.find}, reserve ${lk.reserve}, read ${lk.read}, release ${lk.release} ms` : 'n/a');
    mapNote = `${map.extents.length} extents, ${(map.mappedBytes / MiB).toFixed(1)} MiB mapped, ${map.blockBytes / 1024} KiB blocks; lookup parts per run: ${lookupParts.join(' / ')}`;
    if (i === 0) await captureFixtures(src, dst);
  }
  const med = new Map([...times].map(([k, ts]) => [k, median(ts)] as const));
  const ddS = med.get('dd conv=sparse (cinder, thin)')!;
  for (const [k, ts] of times) {
    const extra = k.startsWith('dd') ? `${note}; ` : k.startsWith('thin map') ? `${mapNote}; ` : '';
    const r = rec('thin', k, med.get(k)!, `${extra}runs: ${ts.map((t) => t.toFixed(2)).join(', ')} s`);
    if (!k.startsWith('fio') && !k.startsWith('thin map')) r.ratioToDd = ddS / r.seconds;
  }
}

async function clearCase(): Promise<void> {
  console.error(`clear: ${SIZE_GIB} GiB thick LV`);
  const dev = lv('clear');
  const times = new Map<string, number[]>();
  const add = (k: string, t: number) => times.set(k, [...(times.get(k) ?? []), t]);
  let method = '';
  for (let i = 0; i < REPS; i++) {
    add('dd if=/dev/zero oflag=direct (cinder)', timeCmd('dd', ['if=/dev/zero', `of=${dev}`, `count=${SIZE}`, 'bs=1M', 'iflag=count_bytes', 'oflag=direct']));
    add('cinderblock clear', await timeAsync(async () => (method = (await clear(dev, SIZE)).method)));
  }
  const ddS = median(times.get('dd if=/dev/zero oflag=direct (cinder)')!);
  for (const [k, ts] of times) {
    const r = rec('clear', k === 'cinderblock clear' ? `cinderblock clear (${method})` : k, median(ts), `runs: ${ts.map((t) => t.toFixed(2)).join(', ')} s`);
    r.ratioToDd = ddS / r.seconds;
  }
  const wz = run('cat', `/sys/dev/block/${run('stat', '-Lc', '%t:%T', dev).trim().split(':').map((h) => parseInt(h, 16)).join(':')}/queue/write_zeroes_max_bytes`).trim();
  rows.push({ case: 'clear', tool: 'LV write_zeroes_max_bytes', seconds: 0, mibps: 0, note: wz });
}

async function main(): Promise<void> {
  const disk = (process.env.CBLAB_DISKS ?? '').split(/\s+/).filter(Boolean)[0];
  if (process.env.CINDERBLOCK_LAB !== '1' || !disk) throw new Error('runs in the lab guest only: bash test/lab/run-lab.sh bench/lab/copy-lv-bench.mts');
  mkdirSync(OUT, { recursive: true });
  const t0 = performance.now();
  run('pvcreate', '-ff', '-y', disk);
  run('vgcreate', VG, disk);
  for (const name of ['thick-src', 'thick-dst', 'clear']) run('lvcreate', '-L', mb(SIZE), '-n', name, VG, '--yes', '-Wy');
  // Room for the source's 10%, a fully written destination (fio, qemu-img) and slack.
  run('lvcreate', '-T', `${VG}/pool`, '-L', mb(2 * SIZE + 512 * MiB), '--yes');
  run('udevadm', 'settle');
  console.error(`lab copy bench: ${SIZE_GIB} GiB per case on ${disk}; ${run('nproc').trim()} vCPU; fio ${run('fio', '--version').trim()}, ${run('qemu-img', '--version').split('\n')[0]}`);
  const cases = new Set((process.env.CB_LAB_BENCH_CASES ?? 'thin,dense,clear').split(','));
  if (cases.has('thin')) await thinSparse();
  if (cases.has('dense')) await dense();
  if (cases.has('clear')) await clearCase();
  const table = printTable(rows, path.join(OUT, 'copy-lv-bench.json'));
  writeFileSync(path.join(OUT, 'copy-lv-bench.md'), `${table}\n\n${SIZE_GIB} GiB per case, ${REPS} rounds, ${((performance.now() - t0) / 1000).toFixed(0)} s in all\n`);
  console.error(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
