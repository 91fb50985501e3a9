// issue 13's benchmark: create-from-image and upload-to-image by the agent's image code against
// cinder's own (Debian's python3-cinder image_utils.fetch_to_raw and upload_volume), same
// glance-api, same images, same kind of destination, in the same run.
//
//   npx tsx bench/image/image-bench.mts         # root; glance-api and python3-cinder installed
//
// Images: 2 GiB raw with 30% data (1 MiB runs of random bytes between runs of zeros) and the same
// disk as qcow2. Destinations: a new sparse 2 GiB file each time (the file pool's volume; the
// agent writes around zero runs as it does on a new thin LV). Each side runs in its own process
// so its peak RSS is its own: the agent's code compiled by tsc and run by plain node, cinder's in
// /usr/bin/python3; the bench samples each one's process tree every 200 ms (the process alone, and
// with its qemu-img children). Every result is checked: the created volume
// against the raw image, the uploaded image against the volume (`qemu-img compare`).
// Env: CB_IMAGE_BENCH_GIB (2), CB_IMAGE_BENCH_ROUNDS (2), CB_IMAGE_BENCH_DIR (os.tmpdir()).
// Results: bench/results/image-bench.json and a table on stdout.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { startGlance, type GlanceHandle } from '../../test/helpers/glance.js';
import { treeMemory } from '../proc-stats.js';
import { compileProbe } from '../compile-probe.js';
import { launcherNodeFlags } from '../../test/helpers/launcher-node-flags.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SIZE_GIB = Number(process.env.CB_IMAGE_BENCH_GIB ?? 2);
const ROUNDS = Number(process.env.CB_IMAGE_BENCH_ROUNDS ?? 2);
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const PY = '/usr/bin/python3';
const GLANCE_PORT = 19296;

interface Probe {
  seconds: number;
  /** the process's own VmHWM */
  peakKiB: number;
  /** sampled: the process tree's largest sum of VmRSS (qemu-img included) */
  treePeakKiB?: number;
  how?: string;
}
interface Row {
  op: string;
  tool: 'cinderblock' | 'cinder';
  seconds: number[];
  peakMiB: number[];
  treePeakMiB: number[];
  allocatedMiB: number[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : Number.NaN;
};
const run = (file: string, args: string[], env: NodeJS.ProcessEnv = {}): string =>
  execFileSync(file, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * MiB, stdio: ['ignore', 'pipe', 'inherit'] });
const lastJson = (out: string): Probe => JSON.parse(out.trim().split('\n').at(-1)!) as Probe;

/** Runs one side's process, sampling its tree's memory, and returns what it printed plus the peak. */
function measured(file: string, args: string[]): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let treePeak = 0;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const sampler = setInterval(() => {
      if (child.pid) treePeak = Math.max(treePeak, treeMemory(child.pid).rssKiB);
    }, 200);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sampler);
      if (code !== 0) return reject(new Error(`${file} ${args.join(' ')} exited ${code}`));
      resolve({ ...lastJson(out), treePeakKiB: treePeak });
    });
  });
}

/** 30% data: a 1 MiB run of random bytes, then 7/3 MiB of zeros on average (3 of every 10 MiB). */
async function makeRaw(file: string): Promise<void> {
  const fh = await open(file, 'w');
  try {
    const block = randomBytes(MiB);
    for (let mib = 0; mib < SIZE_GIB * 1024; mib += 10) {
      for (let k = 0; k < 3; k++) {
        block.writeUInt32LE(mib * 16 + k, 0); // every run distinct, so a misplaced one is seen
        await fh.write(block, 0, MiB, (mib + k * 3) * MiB);
      }
    }
    await fh.truncate(SIZE_GIB * GiB);
  } finally {
    await fh.close();
  }
}

async function upload(glance: GlanceHandle, name: string, format: string, file: string): Promise<string> {
  const img = await glance.createImage({ name, disk_format: format, container_format: 'bare' });
  const r = await fetch(`${glance.url}/v2/images/${img.id}/file`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: Readable.toWeb(createReadStream(file, { highWaterMark: 4 * MiB })) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  if (r.status !== 204) throw new Error(`upload of ${name}: ${r.status} ${await r.text()}`);
  return img.id as string;
}

async function newVolume(dir: string, name: string): Promise<string> {
  const f = path.join(dir, name);
  await rm(f, { force: true });
  await writeFile(f, '');
  await truncate(f, SIZE_GIB * GiB);
  return f;
}
const allocatedMiB = async (f: string): Promise<number> => ((await stat(f)).blocks * 512) / MiB;
const sameDisk = (a: string, aFmt: string, b: string, bFmt: string): void => {
  execFileSync('qemu-img', ['compare', '-q', '-f', aFmt, '-F', bFmt, a, b]);
};

const work = await mkdtemp(path.join(process.env.CB_IMAGE_BENCH_DIR ?? tmpdir(), 'cb-image-bench-'));
const probeOut = await mkdtemp(path.join(ROOT, 'tmp', 'image-probe-'));
let glance: GlanceHandle | undefined;
const rows = new Map<string, Row>();
const record = (op: string, tool: Row['tool'], p: Probe, allocated: number): void => {
  const key = `${op}/${tool}`;
  const row = rows.get(key) ?? { op, tool, seconds: [], peakMiB: [], treePeakMiB: [], allocatedMiB: [] };
  row.seconds.push(p.seconds);
  row.peakMiB.push(p.peakKiB / 1024);
  row.treePeakMiB.push((p.treePeakKiB ?? 0) / 1024);
  row.allocatedMiB.push(allocated);
  rows.set(key, row);
  console.log(`  ${op} ${tool}: ${p.seconds.toFixed(1)} s, peak ${(p.peakKiB / 1024).toFixed(0)} MiB, with children ${((p.treePeakKiB ?? 0) / 1024).toFixed(0)} MiB${allocated ? `, ${allocated.toFixed(0)} MiB allocated` : ''}`);
};
const cleanup = async (): Promise<void> => {
  await glance?.stop().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
  await rm(probeOut, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

try {
  // the agent's image code compiled as the agent runs it (tsx's loader alone adds ~40 MiB)
  const probe = compileProbe(ROOT, probeOut, path.join(ROOT, 'bench', 'image', 'image-probe.ts'));

  const conversion = path.join(work, 'conversion');
  const volumes = path.join(work, 'volumes');
  await mkdir(conversion);
  await mkdir(volumes);
  glance = await startGlance({ port: GLANCE_PORT });
  const conf = path.join(work, 'cinder.conf');
  // what cinder-volume would read: noauth, this glance, the same conversion directory
  await writeFile(conf, `[DEFAULT]\nauth_strategy = noauth\nglance_api_servers = ${glance.url}\nimage_conversion_dir = ${conversion}\nstate_path = ${work}\nlock_path = ${work}\n`);

  const raw = path.join(work, 'disk.raw');
  const qcow2 = path.join(work, 'disk.qcow2');
  await makeRaw(raw);
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  console.log(`images: ${SIZE_GIB} GiB raw, ${(await allocatedMiB(raw)).toFixed(0)} MiB of data; qcow2 ${((await stat(qcow2)).size / MiB).toFixed(0)} MiB`);
  const ids = { raw: await upload(glance, 'bench-raw', 'raw', raw), qcow2: await upload(glance, 'bench-qcow2', 'qcow2', qcow2) };

  // the ceiling: glance-api alone moving the raw image's bytes, with nothing written (curl GET to
  // /dev/null) and nothing read from a volume (curl PUT of the file, page cache warm); both sides'
  // raw paths pass every byte of the 2 GiB disk through glance-api, zeros included
  const ceiling = { getSeconds: [] as number[], putSeconds: [] as number[] };
  for (let i = 0; i < ROUNDS; i++) {
    let t = performance.now();
    run('curl', ['-sSf', '-o', '/dev/null', `${glance.url}/v2/images/${ids.raw}/file`]);
    ceiling.getSeconds.push((performance.now() - t) / 1000);
    const img = await glance.createImage({ name: 'ceiling-put', disk_format: 'raw', container_format: 'bare' });
    t = performance.now();
    run('curl', ['-sSf', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '-T', raw, `${glance.url}/v2/images/${img.id}/file`]);
    ceiling.putSeconds.push((performance.now() - t) / 1000);
    await fetch(`${glance.url}/v2/images/${img.id}`, { method: 'DELETE' });
  }
  console.log(`glance-api alone (curl): GET ${median(ceiling.getSeconds).toFixed(1)} s, PUT ${median(ceiling.putSeconds).toFixed(1)} s for ${SIZE_GIB} GiB`);

  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round}/${ROUNDS}`);
    for (const format of ['raw', 'qcow2'] as const) {
      // each side in turn, order swapped every round so neither always meets a warm page cache
      const order: Array<Row['tool']> = round % 2 ? ['cinderblock', 'cinder'] : ['cinder', 'cinderblock'];
      for (const tool of order) {
        const dest = await newVolume(volumes, `create-${format}-${tool}`);
        const p = tool === 'cinderblock'
          ? await measured(process.execPath, [...launcherNodeFlags(), probe, 'fetch', glance.url, ids[format], dest, String(SIZE_GIB), conversion])
          : await measured(PY, [path.join(ROOT, 'bench', 'image', 'image_peer.py'), conf, 'fetch', ids[format], dest, String(SIZE_GIB)]);
        sameDisk(raw, 'raw', dest, 'raw');
        record(`create from ${format}`, tool, p, await allocatedMiB(dest));
        await rm(dest);
      }
    }
    for (const format of ['raw', 'qcow2'] as const) {
      const order: Array<Row['tool']> = round % 2 ? ['cinderblock', 'cinder'] : ['cinder', 'cinderblock'];
      for (const tool of order) {
        const img = await glance.createImage({ name: `up-${format}-${tool}`, disk_format: format, container_format: 'bare' });
        const p = tool === 'cinderblock'
          ? await measured(process.execPath, [...launcherNodeFlags(), probe, 'upload', glance.url, img.id, raw, String(SIZE_GIB), conversion, format])
          : await measured(PY, [path.join(ROOT, 'bench', 'image', 'image_peer.py'), conf, 'upload', img.id, raw]);
        const got = path.join(work, `uploaded.${format}`);
        // streamed to a file: a 2 GiB buffer here would only make this bench's own RSS the news
        run('curl', ['-sSf', '-o', got, `${glance.url}/v2/images/${img.id}/file`]);
        sameDisk(raw, 'raw', got, format);
        record(`upload as ${format}`, tool, p, 0);
        await rm(got);
        await fetch(`${glance.url}/v2/images/${img.id}`, { method: 'DELETE' });
      }
    }
  }

  const table: Array<Record<string, unknown>> = [];
  console.log(`\n${SIZE_GIB} GiB disk, 30% data, median of ${ROUNDS}\n`);
  console.log('| operation | cinder (image_utils) | cinderblock | speed-up | peak RSS, cinder: process / with qemu-img | peak RSS, cinderblock: process / with qemu-img | allocated, cinder / cinderblock |');
  console.log('|---|---|---|---|---|---|---|');
  for (const op of ['create from raw', 'create from qcow2', 'upload as raw', 'upload as qcow2']) {
    const c = rows.get(`${op}/cinder`)!;
    const b = rows.get(`${op}/cinderblock`)!;
    const speedup = median(c.seconds) / median(b.seconds);
    const alloc = op.startsWith('create') ? `${median(c.allocatedMiB).toFixed(0)} / ${median(b.allocatedMiB).toFixed(0)} MiB` : '–';
    console.log(`| ${op} | ${median(c.seconds).toFixed(1)} s | ${median(b.seconds).toFixed(1)} s | **${speedup.toFixed(2)}×** | ${Math.max(...c.peakMiB).toFixed(0)} / ${Math.max(...c.treePeakMiB).toFixed(0)} MiB | ${Math.max(...b.peakMiB).toFixed(0)} / ${Math.max(...b.treePeakMiB).toFixed(0)} MiB | ${alloc} |`);
    table.push({ op, cinder: c, cinderblock: b, speedup });
  }
  const bound = (op: string, s: number): string => `${op}: glance-api alone ${s.toFixed(1)} s, so at most ${(median(rows.get(`${op}/cinder`)!.seconds) / s).toFixed(2)}× over cinder`;
  console.log(`\nceiling (curl, no volume): ${bound('create from raw', median(ceiling.getSeconds))}; ${bound('upload as raw', median(ceiling.putSeconds))}`);
  await writeFile(path.join(ROOT, 'bench', 'results', 'image-bench.json'), `${JSON.stringify({ sizeGiB: SIZE_GIB, dataPct: 30, rounds: ROUNDS, date: new Date().toISOString(), ceiling, rows: table }, null, 1)}\n`);
} finally {
  await cleanup();
}
