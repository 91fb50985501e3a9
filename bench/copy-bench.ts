// Copy engine benchmark: cinderblock's copy()/clear() against cinder's exact dd commands and
// qemu-img convert, with fio's sequential read+write of the same devices as the ceiling.
//
//   npx tsx bench/copy-bench.ts                      # full run (4 GiB cases), needs root
//   CB_BENCH_SIZE_GIB=0.5 npx tsx bench/copy-bench.ts  # quick run
//   CB_BENCH_TUNE=1 npx tsx bench/copy-bench.ts      # block size x depth sweep (how defaults were chosen)
//
// Env: CB_BENCH_SIZE_GIB (default 4), CB_BENCH_DIR (default os.tmpdir(); needs ~3.5x size free),
// CB_BENCH_SHM_DIR (tmpfs for dense-split's source, default /dev/shm; needs the size in free RAM),
// CB_BENCH_SPARSE_DATA_PCT (default 10), CB_BENCH_CASES (comma list of
// dense,dense-split,sparse,clear), CB_BENCH_REPS (interleaved runs per tool in the dense cases,
// default 3; the median is shown), CB_BENCH_JSON (write the rows there too), CB_BENCH_TUNE_SPLIT=1
// (the sweep's source on tmpfs, as in dense-split). Loop devices use --direct-io=on so that every
// tool reaches the disk (or tmpfs) rather than the page cache. Everything is removed at the end.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
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
  qemuImgConvert,
  record as recordRow,
  Rounds,
  sh,
  timeAsync,
  timeCmd,
  writeDense,
  type Row,
} from './copy-common.js';
import { compileProbe } from './compile-probe.js';
import { launcherNodeFlags } from '../test/helpers/launcher-node-flags.js';
const sizeGiB = Number(process.env.CB_BENCH_SIZE_GIB ?? '4');
const SIZE = Math.round((sizeGiB * GiB) / MiB) * MiB;
const baseDir = process.env.CB_BENCH_DIR ?? tmpdir();
const dataPct = Number(process.env.CB_BENCH_SPARSE_DATA_PCT ?? '10');
const shmBase = process.env.CB_BENCH_SHM_DIR ?? '/dev/shm';
const cases = new Set((process.env.CB_BENCH_CASES ?? 'dense,dense-split,sparse,clear').split(','));
const tune = process.env.CB_BENCH_TUNE === '1';
const tuneSplit = process.env.CB_BENCH_TUNE_SPLIT === '1';
const reps = Number(process.env.CB_BENCH_REPS ?? '3');

const rows: Row[] = [];
const loops: Array<[dev: string, file: string]> = [];
let dir = '';
let shmDir = '';
// What is left to remove, kept in a file for the watchdog below.
const manifest = path.join(tmpdir(), `cinderblock-copy-bench-${process.pid}.cleanup`);

function writeManifest(): void {
  const lines = [...loops.map(([d, f]) => `loop ${d} ${f}`), ...[dir, shmDir].filter(Boolean).map((d) => `dir ${d}`)];
  writeFileSync(manifest, lines.map((l) => `${l}\n`).join(''));
}

/**
 * Ctrl-C under tsx: tsx relays the signal and SIGKILLs its child if the child has not answered
 * within ~60 ms, which this bench cannot while it waits in dd, fio or a 4 GiB fill, so its own
 * handler would never run. A watchdog in its own session (the terminal's Ctrl-C does not reach
 * it) waits for the bench to end and then removes what the manifest still lists: loop devices
 * (only if still backed by the file listed) and the bench's directories, with a 4 GiB tmpfs file.
 */
function startWatchdog(): void {
  writeManifest();
  const script = `while kill -0 "$1" 2>/dev/null; do sleep 1; done
[ -f "$2" ] || exit 0
while read -r kind rest; do
  case "$kind" in
    loop) dev=\${rest%% *}; file=\${rest#* }
          [ "$(losetup -n -O BACK-FILE "$dev" 2>/dev/null)" = "$file" ] && losetup -d "$dev" ;;
    dir) rm -rf -- "$rest" ;;
  esac
done < "$2"
rm -f -- "$2"`;
  spawn('sh', ['-c', script, 'cinderblock-copy-bench-watchdog', String(process.pid), manifest], { detached: true, stdio: 'ignore' }).unref();
}

const record = (c: string, tool: string, seconds: number, bytes: number, note?: string): Row => recordRow(rows, c, tool, seconds, bytes, note);
const printTable = (): void => void printRows(rows, process.env.CB_BENCH_JSON);

function attach(file: string): string {
  const dev = sh('losetup', ['-f', '--show', '--direct-io=on', file]).trim();
  loops.push([dev, file]);
  writeManifest();
  return dev;
}

/** Whether the loop device really does direct I/O (the kernel may refuse it for a backing file). */
function loopDio(dev: string): boolean {
  return readFileSync(`/sys/block/${path.basename(dev)}/loop/dio`, 'utf8').trim() === '1';
}

/** Detaches a case's loop devices and removes its files, before the next case. */
function release(devs: string[], files: string[]): void {
  for (const d of devs) {
    spawnSync('losetup', ['-d', d]);
    const i = loops.findIndex(([dev]) => dev === d);
    if (i >= 0) loops.splice(i, 1);
  }
  writeManifest();
  for (const f of files) rmSync(f);
}

function cleanup(): void {
  for (const [dev] of loops.splice(0)) spawnSync('losetup', ['-d', dev], { stdio: 'ignore' });
  for (const d of [dir, shmDir]) if (d) rmSync(d, { recursive: true, force: true });
  rmSync(manifest, { force: true });
}

/** Refuses to start a case with a tmpfs source unless RAM (and the tmpfs) can hold it with room to spare. */
function checkShm(): void {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  const avail = m ? Number(m[1]) * 1024 : 0;
  const needRam = SIZE + 4 * GiB; // the file itself, plus room for the rest of the machine (lab VMs)
  if (!(avail >= needRam)) throw new Error(`dense-split needs ~${(needRam / GiB).toFixed(1)} GiB of available memory for a ${SIZE / GiB} GiB tmpfs source; ${(avail / GiB).toFixed(1)} GiB available (set CB_BENCH_SIZE_GIB or leave dense-split out of CB_BENCH_CASES)`);
  const fs = statfsSync(shmBase);
  if (fs.bavail * fs.bsize < SIZE * 1.05) throw new Error(`${shmBase} has ${((fs.bavail * fs.bsize) / GiB).toFixed(1)} GiB free; dense-split needs ${(SIZE / GiB).toFixed(1)} GiB there`);
}

/** A file path on tmpfs (CB_BENCH_SHM_DIR), in a directory of this run that cleanup() removes. */
function shmFile(name: string): string {
  if (!shmDir) {
    checkShm();
    shmDir = mkdtempSync(path.join(shmBase, 'cinderblock-copy-bench-'));
    writeManifest();
  }
  return path.join(shmDir, name);
}

/**
 * Two loop devices over files of random data: the source, and the destination written once too,
 * so that no tool pays for first-touch allocation.
 */
function densePair(srcFile: string, dstFile: string): { src: string; dst: string } {
  writeDense(srcFile, SIZE);
  writeDense(dstFile, SIZE);
  return { src: attach(srcFile), dst: attach(dstFile) };
}

async function checkSame(c: string, a: string, b: string): Promise<void> {
  if ((await checksum(a)) !== (await checksum(b))) throw new Error(`${c} copy: destination differs from source`);
}

const FIO_READ = 'fio sequential read alone';
const FIO_WRITE = 'fio sequential write alone';
const FIO_AT_ONCE = 'fio read + write at once (slower job)';
const DD = 'dd (cinder copy_volume)';
const ENGINE = 'cinderblock copy (io_uring)';

/** fio's sequential read of the source and sequential write of the destination, each alone. */
function fioAlone(r: Rounds, src: string, dst: string): void {
  r.add(FIO_READ, SIZE / fio([{ name: 'rd', file: src, rw: 'read' }], SIZE).rd!);
  r.add(FIO_WRITE, SIZE / fio([{ name: 'wr', file: dst, rw: 'write' }], SIZE).wr!);
}

/** cinder's dd, qemu-img and the engine (its defaults), each copying src -> dst once. */
async function copiers(r: Rounds, src: string, dst: string): Promise<void> {
  r.add(DD, timeCmd('dd', ddCopy(src, dst, SIZE, false)));
  r.add('qemu-img convert -t none -T none', timeCmd('qemu-img', qemuImgConvert(src, dst)));
  r.add(ENGINE, (await engineCopy(src, dst, {})).s);
}

/**
 * A dense case's rows: each tool's median (per-round rates in the note, × dd for the copiers), the
 * ceiling min(read alone, write alone), and the engine against it; `more` adds to that last note.
 */
function report(c: string, r: Rounds, more: (pctOfEngine: (s: number) => string) => string): void {
  const ceiling = Math.max(r.median(FIO_READ), r.median(FIO_WRITE));
  const ddS = r.median(DD);
  for (const [k, ts] of r.times) {
    const row = record(c, k, median(ts), SIZE, `runs: ${ts.map((t) => (SIZE / MiB / t).toFixed(0)).join(', ')} MiB/s`);
    if (!k.startsWith('fio')) row.ratioToDd = ddS / row.seconds;
  }
  record(c, 'ceiling = min(fio read, fio write)', ceiling, SIZE);
  const eng = r.median(ENGINE);
  const pct = (s: number) => `${((s / eng) * 100).toFixed(0)}%`;
  console.error(`  engine/dd ${(ddS / eng).toFixed(2)}x, engine/ceiling ${pct(ceiling)}`);
  rows.push({ case: c, tool: 'cinderblock copy / ceiling', seconds: 0, mibps: 0, note: `${pct(ceiling)} of the fio ceiling (min of read alone, write alone); ${more(pct)}` });
}
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
  const { src, dst } = densePair(srcFile, dstFile);

  const r = new Rounds();
  for (let i = 0; i < reps; i++) {
    fioAlone(r, src, dst);
    // Both loop files live on one disk, so a copy's reads and writes share it: the read and the
    // write run at once is the other bound; and fio at the engine's own shape (4 MiB x 8).
    const both = fio([{ name: 'rd', file: src, rw: 'read' }, { name: 'wr', file: dst, rw: 'write' }], SIZE);
    r.add(FIO_AT_ONCE, SIZE / Math.min(both.rd!, both.wr!));
    r.add("fio read alone at the engine's 4 MiB x 8", SIZE / fio([{ name: 'rd', file: src, rw: 'read' }], SIZE, { depth: 8 }).rd!);
    await copiers(r, src, dst);
    r.add('cinderblock copy (threads backend)', (await engineCopy(src, dst, { ioBackend: 'threads' })).s);
    r.add('cinderblock copy --verify', (await engineCopy(src, dst, { verify: true })).s);
  }
  report('dense', r, (pct) => `${pct(r.median(FIO_AT_ONCE))} of fio's read + write at once`);
  // RSS of a process doing nothing but the copy (as the agent would), not of this bench with
  // its 64 MiB fill buffers: bench/copy-rss-probe.ts reports its own VmRSS/VmHWM.
  // Compiled by tsc and run by plain node, as the agent runs (tsx's loader alone adds ~40 MiB);
  // compiled into the repo's tmp/ so that node_modules resolves.
  const root = path.resolve(import.meta.dirname, '..');
  const out = mkdtempSync(path.join(root, 'tmp', 'copy-rss-probe-'));
  let probe: { rssBeforeKiB: number; rssDuringMaxKiB: number; peakKiB: number; seconds: number };
  try {
    const compiled = compileProbe(root, out, path.join(root, 'bench', 'copy-rss-probe.ts'));
    probe = JSON.parse(
      execFileSync(process.execPath, [...launcherNodeFlags(), compiled, src, dst], {
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
  await checkSame('dense', src, dst);
  release([dst, src], [srcFile, dstFile]);
}

/**
 * dense on independent media: the source on tmpfs (RAM), the destination on the root ext4, so a
 * copy's reads and writes do not share one disk and min(read alone, write alone) is a bound a
 * copier can reach.
 */
async function denseSplitCase(): Promise<void> {
  console.error(`dense-split: ${SIZE / GiB} GiB loop over tmpfs (${shmBase}) -> loop over ${dir}, ${reps} interleaved runs each (median)`);
  const srcFile = shmFile('split-src.img');
  const dstFile = path.join(dir, 'split-dst.img');
  const { src, dst } = densePair(srcFile, dstFile);
  const dio = `source loop direct I/O ${loopDio(src) ? 'on' : 'REFUSED'}, destination ${loopDio(dst) ? 'on' : 'REFUSED'}`;
  console.error(`  ${dio}`);
  const r = new Rounds();
  for (let i = 0; i < reps; i++) {
    fioAlone(r, src, dst);
    await copiers(r, src, dst);
  }
  report('dense-split', r, (pct) => `${pct(r.median(FIO_READ))} of read alone, ${pct(r.median(FIO_WRITE))} of write alone; ${dio}`);
  await checkSame('dense-split', src, dst);
  release([dst, src], [srcFile, dstFile]);
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
  record('sparse', 'qemu-img convert -t none -T none', timeCmd('qemu-img', qemuImgConvert(srcFile, dstFile)), SIZE);
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
  await checkSame('sparse', srcFile, dstFile);
  release([dst, src], [srcFile, dstFile]);
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
  release([dev], [file]);
}

async function tuneSweep(): Promise<void> {
  console.error(`tune: ${SIZE / GiB} GiB loop -> loop${tuneSplit ? ' (source on tmpfs)' : ''}, block size x depth`);
  const srcFile = tuneSplit ? shmFile('tune-src.img') : path.join(dir, 'tune-src.img');
  const dstFile = path.join(dir, 'tune-dst.img');
  const { src, dst } = densePair(srcFile, dstFile);
  const reps = Number(process.env.CB_BENCH_TUNE_REPS ?? '3');
  // CB_BENCH_TUNE_GRID="1024:8,4096:8" (KiB:depth) narrows the sweep. Each repetition runs
  // every configuration once (interleaved), so drift in a shared disk's speed hits them alike.
  const grid = process.env.CB_BENCH_TUNE_GRID
    ? process.env.CB_BENCH_TUNE_GRID.split(',').map((p) => p.split(':').map(Number) as [number, number])
    : [256, 1024, 4096].flatMap((k) => [1, 2, 4, 8, 16].map((d) => [k, d] as [number, number]));
  const r = new Rounds();
  for (let i = 0; i < reps; i++) {
    const f = fio([{ name: 'rd', file: src, rw: 'read' }, { name: 'wr', file: dst, rw: 'write' }], SIZE);
    r.add('fio read+write together (ceiling)', SIZE / Math.min(f.rd!, f.wr!));
    if (tuneSplit) r.add(FIO_WRITE, SIZE / fio([{ name: 'wr', file: dst, rw: 'write' }], SIZE).wr!);
    r.add(DD, timeCmd('dd', ddCopy(src, dst, SIZE, false)));
    for (const [kib, depth] of grid) r.add(`bs=${kib}K depth=${depth}`, (await engineCopy(src, dst, { blockSize: kib * 1024, depth })).s);
  }
  for (const [k, ts] of r.times) record('tune', `${k}, median of ${reps}`, median(ts), SIZE, ts.map((t) => (SIZE / MiB / t).toFixed(0)).join(' '));
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
  if (tune ? tuneSplit : cases.has('dense-split')) checkShm(); // before anything runs
  dir = mkdtempSync(path.join(baseDir, 'cinderblock-copy-bench-'));
  startWatchdog();
  console.error(`copy bench in ${dir}, ${SIZE / GiB} GiB per case, ${(free / GiB).toFixed(0)} GiB free`);
  try {
    if (tune) await tuneSweep();
    else {
      if (cases.has('dense')) await denseCase();
      if (cases.has('dense-split')) await denseSplitCase();
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
