// Copy engine benchmark: cinderblock's copy()/clear() against cinder's exact dd commands and
// qemu-img convert, with fio's sequential read+write of the same devices as the ceiling.
//
//   npx tsx bench/copy-bench.ts                      # full run (4 GiB cases), needs root
//   CB_BENCH_SIZE_GIB=0.5 npx tsx bench/copy-bench.ts  # quick run
//   CB_BENCH_TUNE=1 npx tsx bench/copy-bench.ts      # block size x depth sweep (how defaults were chosen)
//
// Env: CB_BENCH_SIZE_GIB (default 4), CB_BENCH_DIR (default os.tmpdir(); needs ~3.5x size free),
// CB_BENCH_SPARSE_DATA_PCT (default 10), CB_BENCH_CASES (comma list of dense,sparse,clear),
// CB_BENCH_REPS (interleaved runs per tool in the dense case, default 3; the median is shown),
// CB_BENCH_JSON (write the rows there too). Loop devices use --direct-io=on so that every tool
// reaches the disk rather than the page cache. Everything is removed at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { checksum, clear } from '../src/native/copy.js';
import {
  GiB,
  MiB,
  ddCopy,
  engineCopy,
  fio,
  have,
  median,
  printTable as printRows,
  record as recordRow,
  sh,
  timeAsync,
  timeCmd,
  writeDense,
  type Row,
} from './copy-common.js';
const sizeGiB = Number(process.env.CB_BENCH_SIZE_GIB ?? '4');
const SIZE = Math.round((sizeGiB * GiB) / MiB) * MiB;
const baseDir = process.env.CB_BENCH_DIR ?? tmpdir();
const dataPct = Number(process.env.CB_BENCH_SPARSE_DATA_PCT ?? '10');
const cases = new Set((process.env.CB_BENCH_CASES ?? 'dense,sparse,clear').split(','));
const tune = process.env.CB_BENCH_TUNE === '1';
const reps = Number(process.env.CB_BENCH_REPS ?? '3');

const rows: Row[] = [];
const loops: string[] = [];
let dir = '';

const record = (c: string, tool: string, seconds: number, bytes: number, note?: string): Row => recordRow(rows, c, tool, seconds, bytes, note);
const printTable = (): void => void printRows(rows, process.env.CB_BENCH_JSON);

function attach(file: string): string {
  const dev = sh('losetup', ['-f', '--show', '--direct-io=on', file]).trim();
  loops.push(dev);
  return dev;
}

function cleanup(): void {
  for (const dev of loops.splice(0)) spawnSync('losetup', ['-d', dev], { stdio: 'ignore' });
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Times a command; throws with its stderr if it fails. */
/** A sparse file of `bytes` with `pct`% data: 1 MiB data extents spread evenly, the rest holes. */
function writeSparse(file: string, bytes: number, pct: number): number {
  const chunk = Buffer.alloc(MiB);
  randomFillSync(chunk);
  const fd = openSync(file, 'w');
  let data = 0;
  try {
    const stride = Math.max(1, Math.round(100 / pct)) * MiB;
    for (let off = 0; off < bytes; off += stride) {
      chunk.writeUInt32LE(off / MiB, 0);
      writeSync(fd, chunk, 0, MiB, off);
      data += MiB;
    }
  } finally {
    closeSync(fd);
  }
  execFileSync('truncate', ['-s', String(bytes), file]);
  return data;
}

function fresh(file: string, bytes: number, prealloc: boolean): void {
  rmSync(file, { force: true });
  writeFileSync(file, '');
  if (prealloc) execFileSync('fallocate', ['-l', String(bytes), file]);
  else execFileSync('truncate', ['-s', String(bytes), file]);
}

async function denseCase(): Promise<void> {
  console.error(`dense: ${SIZE / GiB} GiB loop device -> loop device, ${reps} interleaved runs each (median)`);
  const srcFile = path.join(dir, 'dense-src.img');
  const dstFile = path.join(dir, 'dense-dst.img');
  writeDense(srcFile, SIZE);
  writeDense(dstFile, SIZE); // written once, so no tool below pays for first-touch allocation
  const src = attach(srcFile);
  const dst = attach(dstFile);

  const times = new Map<string, number[]>();
  const add = (k: string, t: number) => times.set(k, [...(times.get(k) ?? []), t]);
  for (let i = 0; i < reps; i++) {
    add('fio sequential read alone', SIZE / fio([{ name: 'rd', file: src, rw: 'read' }], SIZE).rd!);
    add('fio sequential write alone', SIZE / fio([{ name: 'wr', file: dst, rw: 'write' }], SIZE).wr!);
    // Both loop files live on one disk, so a copy's reads and writes share it: the read and the
    // write run at once is the other bound; and fio at the engine's own shape (4 MiB x 8).
    const both = fio([{ name: 'rd', file: src, rw: 'read' }, { name: 'wr', file: dst, rw: 'write' }], SIZE);
    add('fio read + write at once (slower job)', SIZE / Math.min(both.rd!, both.wr!));
    add("fio read alone at the engine's 4 MiB x 8", SIZE / fio([{ name: 'rd', file: src, rw: 'read' }], SIZE, { depth: 8 }).rd!);
    add('dd (cinder copy_volume)', timeCmd('dd', ddCopy(src, dst, SIZE, false)));
    add('qemu-img convert -t none -T none', timeCmd('qemu-img', ['convert', '-t', 'none', '-T', 'none', '-f', 'raw', '-O', 'raw', src, dst]));
    add('cinderblock copy (io_uring)', (await engineCopy(src, dst, {})).s);
    add('cinderblock copy (threads backend)', (await engineCopy(src, dst, { ioBackend: 'threads' })).s);
    add('cinderblock copy --verify', (await engineCopy(src, dst, { verify: true })).s);
  }
  const med = new Map([...times].map(([k, ts]) => [k, median(ts)] as const));
  const ceiling = Math.max(med.get('fio sequential read alone')!, med.get('fio sequential write alone')!);
  const ddS = med.get('dd (cinder copy_volume)')!;
  for (const [k, ts] of times) {
    const r = record('dense', k, med.get(k)!, SIZE, `runs: ${ts.map((t) => (SIZE / MiB / t).toFixed(0)).join(', ')} MiB/s`);
    if (!k.startsWith('fio')) r.ratioToDd = ddS / r.seconds;
  }
  record('dense', 'ceiling = min(fio read, fio write)', ceiling, SIZE);
  const eng = med.get('cinderblock copy (io_uring)')!;
  console.error(`  engine/dd ${(ddS / eng).toFixed(2)}x, engine/ceiling ${((ceiling / eng) * 100).toFixed(0)}%`);
  rows.push({
    case: 'dense',
    tool: 'cinderblock copy / ceiling',
    seconds: 0,
    mibps: 0,
    note: `${((ceiling / eng) * 100).toFixed(0)}% of the fio ceiling (min of read alone, write alone); ${((med.get('fio read + write at once (slower job)')! / eng) * 100).toFixed(0)}% of fio's read + write at once`,
  });
  // RSS of a process doing nothing but the copy (as the agent would), not of this bench with
  // its 64 MiB fill buffers: bench/copy-rss-probe.ts reports its own VmRSS/VmHWM.
  // Compiled by tsc and run by plain node, as the agent runs (tsx's loader alone adds ~40 MiB);
  // compiled into the repo's tmp/ so that node_modules resolves.
  const root = path.resolve(import.meta.dirname, '..');
  const out = mkdtempSync(path.join(root, 'tmp', 'copy-rss-probe-'));
  let probe: { rssBeforeKiB: number; rssDuringMaxKiB: number; peakKiB: number; seconds: number };
  try {
    execFileSync(
      process.execPath,
      [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--outDir', out, '--rootDir', root, '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
        '--target', 'ES2022', '--skipLibCheck', '--types', 'node', path.join(root, 'bench', 'copy-rss-probe.ts')],
      { stdio: 'inherit' },
    );
    probe = JSON.parse(
      execFileSync(process.execPath, [path.join(out, 'bench', 'copy-rss-probe.js'), src, dst], {
        encoding: 'utf8',
        env: { ...process.env, CINDERBLOCK_NATIVE_ADDON: path.join(root, 'build', 'Release', 'cinderblock_native.node') },
      }),
    ) as typeof probe;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  rows.push({
    case: 'rss',
    tool: `RSS of a node process copying ${SIZE / GiB} GiB (compiled JS + addon)`,
    seconds: probe.seconds,
    mibps: SIZE / MiB / probe.seconds,
    note: `peak ${(probe.peakKiB / 1024).toFixed(0)} MiB (VmHWM); ${(probe.rssBeforeKiB / 1024).toFixed(0)} MiB before the copy, ${(probe.rssDuringMaxKiB / 1024).toFixed(0)} MiB max during`,
  });
  if ((await checksum(src)) !== (await checksum(dst))) throw new Error('dense copy: destination differs from source');
  for (const d of [dst, src]) {
    spawnSync('losetup', ['-d', d]);
    loops.splice(loops.indexOf(d), 1);
  }
  rmSync(srcFile);
  rmSync(dstFile);
}

async function sparseCase(): Promise<void> {
  console.error(`sparse: ${SIZE / GiB} GiB file, ${dataPct}% data -> fresh sparse file`);
  const srcFile = path.join(dir, 'sparse-src.img');
  const dstFile = path.join(dir, 'sparse-dst.img');
  const data = writeSparse(srcFile, SIZE, dataPct);
  const note = `${(data / MiB).toFixed(0)} MiB of data`;
  fresh(dstFile, SIZE, false);
  const dd = record('sparse', 'dd conv=sparse (cinder, thin)', timeCmd('dd', ddCopy(srcFile, dstFile, SIZE, true)), SIZE, note);
  fresh(dstFile, SIZE, false);
  record('sparse', 'qemu-img convert -t none -T none', timeCmd('qemu-img', ['convert', '-t', 'none', '-T', 'none', '-f', 'raw', '-O', 'raw', srcFile, dstFile]), SIZE);
  fresh(dstFile, SIZE, false);
  const a = await engineCopy(srcFile, dstFile, { sparse: true });
  record('sparse', `cinderblock copy --sparse (picked ${a.method})`, a.s, SIZE);
  // Through loop devices (no SEEK_DATA on a device: every block is read, zero blocks skipped).
  fresh(dstFile, SIZE, false);
  const src = attach(srcFile);
  const dst = attach(dstFile);
  const ddDev = record('sparse', 'dd conv=sparse, loop -> thin-like loop', timeCmd('dd', ddCopy(src, dst, SIZE, true)), SIZE);
  const l = await engineCopy(src, dst, { destinationIsZeroed: true });
  record('sparse', 'cinderblock copy, loop -> loop (zeroed)', l.s, SIZE);
  // The same with a map of the source, as a thin LV's pool metadata gives one (drivers/lvm/
  // thin-map.ts; measured for real in the lab: bench/lab/copy-lv-bench.mts). Here the map is the
  // layout writeSparse made, so this row shows what a map is worth, not what finding one costs.
  const stride = Math.max(1, Math.round(100 / dataPct)) * MiB;
  const map: Array<[number, number]> = [];
  for (let off = 0; off < SIZE; off += stride) map.push([off, Math.min(MiB, SIZE - off)]);
  const m = await engineCopy(src, dst, { destinationIsZeroed: true, sourceExtents: map });
  record('sparse', 'cinderblock copy, loop -> loop (zeroed), with a map of the source', m.s, SIZE);
  for (const r of rows.filter((x) => x.case === 'sparse')) r.ratioToDd = (r.tool.includes('loop') ? ddDev : dd).seconds / r.seconds;
  if ((await checksum(srcFile)) !== (await checksum(dstFile))) throw new Error('sparse copy: destination differs from source');
  for (const d of [dst, src]) {
    spawnSync('losetup', ['-d', d]);
    loops.splice(loops.indexOf(d), 1);
  }
  rmSync(srcFile);
  rmSync(dstFile);
}

async function clearCase(): Promise<void> {
  console.error(`clear: ${SIZE / GiB} GiB loop device`);
  const file = path.join(dir, 'clear.img');
  fresh(file, SIZE, true);
  const dev = attach(file);
  const dd = record('clear', 'dd if=/dev/zero oflag=direct (cinder)', timeCmd('dd', ['if=/dev/zero', `of=${dev}`, `count=${SIZE}`, 'bs=1M', 'iflag=count_bytes', 'oflag=direct']), SIZE);
  let method = '';
  const s = await timeAsync(async () => {
    method = (await clear(dev, SIZE)).method;
  });
  const e = record('clear', `cinderblock clear (${method})`, s, SIZE);
  const w = await timeAsync(() => clear(file, SIZE, { keepAllocated: true }));
  record('clear', 'cinderblock clear of the file (zero_range)', w, SIZE);
  for (const r of rows.filter((x) => x.case === 'clear')) r.ratioToDd = dd.seconds / r.seconds;
  console.error(`  clear/dd ${(dd.seconds / e.seconds).toFixed(1)}x`);
  spawnSync('losetup', ['-d', dev]);
  loops.splice(loops.indexOf(dev), 1);
  rmSync(file);
}

async function tuneSweep(): Promise<void> {
  console.error(`tune: ${SIZE / GiB} GiB loop -> loop, block size x depth`);
  const srcFile = path.join(dir, 'tune-src.img');
  const dstFile = path.join(dir, 'tune-dst.img');
  writeDense(srcFile, SIZE);
  writeDense(dstFile, SIZE);
  const src = attach(srcFile);
  const dst = attach(dstFile);
  const reps = Number(process.env.CB_BENCH_TUNE_REPS ?? '3');
  // CB_BENCH_TUNE_GRID="1024:8,4096:8" (KiB:depth) narrows the sweep. Each repetition runs
  // every configuration once (interleaved), so drift in a shared disk's speed hits them alike.
  const grid = process.env.CB_BENCH_TUNE_GRID
    ? process.env.CB_BENCH_TUNE_GRID.split(',').map((p) => p.split(':').map(Number) as [number, number])
    : [256, 1024, 4096].flatMap((k) => [1, 2, 4, 8, 16].map((d) => [k, d] as [number, number]));
  const times = new Map<string, number[]>();
  const add = (k: string, t: number) => times.set(k, [...(times.get(k) ?? []), t]);
  for (let i = 0; i < reps; i++) {
    const f = fio([{ name: 'rd', file: src, rw: 'read' }, { name: 'wr', file: dst, rw: 'write' }], SIZE);
    add('fio read+write together (ceiling)', SIZE / Math.min(f.rd!, f.wr!));
    add('dd (cinder copy_volume)', timeCmd('dd', ddCopy(src, dst, SIZE, false)));
    for (const [kib, depth] of grid) add(`bs=${kib}K depth=${depth}`, (await engineCopy(src, dst, { blockSize: kib * 1024, depth })).s);
  }
  for (const [k, ts] of times) record('tune', `${k}, median of ${reps}`, median(ts), SIZE, ts.map((t) => (SIZE / MiB / t).toFixed(0)).join(' '));
}


async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the copy bench needs root (loop devices)');
  for (const cmd of ['losetup', 'dd', 'fio', 'qemu-img', 'fallocate', 'truncate']) {
    if (!have(cmd)) throw new Error(`the copy bench needs ${cmd} (apt-get install -y fio qemu-utils util-linux coreutils)`);
  }
  const fs = statfsSync(baseDir);
  const free = fs.bavail * fs.bsize;
  const need = SIZE * 2.2;
  if (free < need) throw new Error(`${baseDir} has ${(free / GiB).toFixed(1)} GiB free; the bench needs ~${(need / GiB).toFixed(1)} GiB (set CB_BENCH_SIZE_GIB or CB_BENCH_DIR)`);
  dir = mkdtempSync(path.join(baseDir, 'cinderblock-copy-bench-'));
  console.error(`copy bench in ${dir}, ${SIZE / GiB} GiB per case, ${(free / GiB).toFixed(0)} GiB free`);
  try {
    if (tune) await tuneSweep();
    else {
      if (cases.has('dense')) await denseCase();
      if (cases.has('sparse')) await sparseCase();
      if (cases.has('clear')) await clearCase();
    }
    printTable();
  } finally {
    cleanup();
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

main().catch((err: unknown) => {
  cleanup();
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
