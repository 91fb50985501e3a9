// `cinderblock copy` as an operator runs it (the installed command: node starting, the CLI loading,
// the engine copying, the process exiting) against cinder's exact dd command on the same files,
// in alternating rounds. Measures the whole command, not the engine: the engine's own time is in
// the result line and shown beside it, so the start-up cost is visible.
//
// cinder's dd writes with O_DIRECT and no flush; the engine ends with an fdatasync (a copy onto a
// fresh volume file is durable, extents included, when the command returns). So dd with
// conv=fdatasync, the same durability, runs in each round too, and the table shows both ratios.
//
//   npx tsx bench/copy-cli-bench.ts              # 1 GiB dense file -> preallocated file, 3 rounds
//   CB_BENCH_SIZE_GIB=4 CB_BENCH_REPS=5 npx tsx bench/copy-cli-bench.ts
//
// Needs `npm run build` (the command runs from dist/). Writes bench/results/copy-cli-bench.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { GiB, ddCopy, median, writeDense } from './copy-common.js';

const sizeGib = Number(process.env.CB_BENCH_SIZE_GIB ?? 1);
const reps = Number(process.env.CB_BENCH_REPS ?? 3);
const bytes = Math.round(sizeGib * GiB);
const root = join(import.meta.dirname, '..');
const dir = join(root, 'tmp', 'copy-cli-bench');
const src = join(dir, 'src.img');
const dst = join(dir, 'dst.img');

function run(cmd: string, args: string[]): { seconds: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { seconds, stdout: r.stdout };
}

/** A volume exists before anything is copied onto it: both tools get a preallocated destination. */
function freshDestination(): void {
  rmSync(dst, { force: true });
  run('fallocate', ['-l', String(bytes), dst]);
}

mkdirSync(dir, { recursive: true });
console.error(`writing ${sizeGib} GiB of dense data to ${src}`);
writeDense(src, bytes);
const dd: number[] = [];
const ddSync: number[] = [];
const cli: number[] = [];
const engine: number[] = [];
try {
  for (let i = 0; i < reps; i++) {
    // Alternate which goes first, so a disk's drift within a round hits both alike.
    const order = i % 2 === 0 ? ['dd', 'cli', 'dd-sync'] : ['dd-sync', 'cli', 'dd'];
    for (const tool of order) {
      freshDestination();
      if (tool === 'dd') {
        dd.push(run('dd', [...ddCopy(src, dst, bytes, false), 'status=none']).seconds);
      } else if (tool === 'dd-sync') {
        ddSync.push(run('dd', [...ddCopy(src, dst, bytes, false), 'conv=fdatasync', 'status=none']).seconds);
      } else {
        const r = run(process.execPath, [join(root, 'bin', 'cinderblock.js'), 'copy', src, dst]);
        cli.push(r.seconds);
        const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { elapsedMs?: number };
        engine.push((result.elapsedMs ?? Number.NaN) / 1000);
      }
      console.error(`round ${i + 1} ${tool}: ${(tool === 'dd' ? dd : tool === 'dd-sync' ? ddSync : cli).at(-1)!.toFixed(2)} s`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const out = {
  date: new Date().toISOString(),
  bytes,
  reps,
  dd_s: dd,
  dd_fdatasync_s: ddSync,
  cinderblock_copy_s: cli,
  engine_s: engine,
  median: { dd: median(dd), dd_fdatasync: median(ddSync), cinderblock_copy: median(cli), engine: median(engine) },
  ratio_whole_command: median(dd) / median(cli),
  ratio_whole_command_same_durability: median(ddSync) / median(cli),
  outside_engine_s: median(cli) - median(engine),
};
console.log(`| tool | median (s) | runs (s) |`);
console.log(`|---|---:|---|`);
console.log(`| cinder's dd | ${out.median.dd.toFixed(2)} | ${dd.map((s) => s.toFixed(2)).join(', ')} |`);
console.log(`| cinder's dd + conv=fdatasync (same durability) | ${out.median.dd_fdatasync.toFixed(2)} | ${ddSync.map((s) => s.toFixed(2)).join(', ')} |`);
console.log(`| cinderblock copy (whole command) | ${out.median.cinderblock_copy.toFixed(2)} | ${cli.map((s) => s.toFixed(2)).join(', ')} |`);
console.log(`| of which the engine | ${out.median.engine.toFixed(2)} | ${engine.map((s) => s.toFixed(2)).join(', ')} |`);
console.log(`ratio dd / cinderblock copy: ${out.ratio_whole_command.toFixed(2)}x (target 1.3x); with the same durability: ${out.ratio_whole_command_same_durability.toFixed(2)}x; outside the engine: ${out.outside_engine_s.toFixed(2)} s`);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'copy-cli-bench.json'), `${JSON.stringify(out, null, 2)}\n`);
