// What the copy benchmarks share (bench/copy-bench.ts on this machine, bench/lab/copy-lv-bench.mts
// on LVs in the lab): timing a command or a copy, cinder's exact dd argv, fio as the ceiling,
// dense test data, and the result table.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { copy, type CopyOptions } from '../src/native/copy.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface Row {
  case: string;
  tool: string;
  seconds: number;
  mibps: number;
  ratioToDd?: number;
  note?: string;
}


export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}


export function timeCmd(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return s;
}

export async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}


/** Per-tool times over interleaved rounds: each round runs every tool once, so drift in a shared
 * disk's speed hits them alike; the median is what the table shows. */
export class Rounds {
  readonly times = new Map<string, number[]>();

  add(tool: string, seconds: number): void {
    this.times.set(tool, [...(this.times.get(tool) ?? []), seconds]);
  }

  median(tool: string): number {
    const ts = this.times.get(tool);
    if (!ts) throw new Error(`no times for ${tool}`);
    return median(ts);
  }
}

/** qemu-img convert as the benches run it: raw to raw, no page cache on either side. */
export function qemuImgConvert(src: string, dst: string): string[] {
  return ['convert', '-t', 'none', '-T', 'none', '-f', 'raw', '-O', 'raw', src, dst];
}

export function ddCopy(src: string, dst: string, bytes: number, sparse: boolean): string[] {
  // cinder's copy_volume: count in bytes, bs=1M (volume_dd_blocksize), direct both ways when
  // the probe succeeds, conv=sparse for thin destinations; no fdatasync with O_DIRECT.
  return [`if=${src}`, `of=${dst}`, `count=${bytes}`, 'bs=1M', 'iflag=count_bytes,direct', 'oflag=direct', ...(sparse ? ['conv=sparse'] : [])];
}

/** Fills `file` with `bytes` of incompressible, non-zero data. */
export function writeDense(file: string, bytes: number): void {
  const chunk = Buffer.alloc(64 * MiB);
  randomFillSync(chunk);
  const fd = openSync(file, 'w');
  try {
    for (let off = 0, i = 0; off < bytes; off += chunk.length, i++) {
      chunk.writeUInt32LE(i, 0); // no two chunks alike
      writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off), off);
    }
  } finally {
    closeSync(fd);
  }
}


export interface FioJob {
  jobname: string;
  read: { bw_bytes: number };
  write: { bw_bytes: number };
}

export function fio(
  jobs: Array<{ name: string; file: string; rw: 'read' | 'write' }>,
  bytes: number,
  shape: { bs?: string; depth?: number } = {},
): Record<string, number> {
  const args = ['--output-format=json'];
  for (const j of jobs) {
    // 4 MiB x 16 in flight by default: at least as much as any copier here, so it is a ceiling.
    args.push(`--name=${j.name}`, `--filename=${j.file}`, `--rw=${j.rw}`, `--bs=${shape.bs ?? '4M'}`, `--iodepth=${shape.depth ?? 16}`, '--ioengine=io_uring', '--direct=1', `--size=${bytes}`);
  }
  const out = JSON.parse(sh('fio', args)) as { jobs: FioJob[] };
  const res: Record<string, number> = {};
  for (const j of out.jobs) res[j.jobname] = Math.max(j.read.bw_bytes, j.write.bw_bytes);
  return res;
}

export async function engineCopy(src: string, dst: string, opts: CopyOptions): Promise<{ s: number; method: string }> {
  let method = '';
  const s = await timeAsync(async () => {
    const r = await copy(src, dst, { ...opts, onProgress: () => undefined, progressIntervalMs: 200 });
    method = r.method;
  });
  return { s, method };
}

/** Adds a row to `rows` and prints it as it comes (stderr), so a long run shows progress. */
export function record(rows: Row[], c: string, tool: string, seconds: number, bytes: number, note?: string): Row {
  const row: Row = { case: c, tool, seconds, mibps: bytes / MiB / seconds, ...(note ? { note } : {}) };
  rows.push(row);
  console.error(`  ${c.padEnd(8)} ${tool.padEnd(34)} ${seconds.toFixed(2).padStart(7)} s ${row.mibps.toFixed(0).padStart(7)} MiB/s${note ? `  ${note}` : ''}`);
  return row;
}

/** The rows as a markdown table on stdout; as JSON too when `jsonFile` is given. */
export function printTable(rows: Row[], jsonFile?: string): string {
  const lines = [
    '| case | tool | time (s) | MiB/s | × dd | note |',
    '| --- | --- | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.case} | ${r.tool} | ${r.seconds ? r.seconds.toFixed(2) : ''} | ${r.mibps ? r.mibps.toFixed(0) : ''} | ${r.ratioToDd ? `${r.ratioToDd.toFixed(2)}×` : ''} | ${r.note ?? ''} |`,
    ),
  ];
  const table = lines.join('\n');
  console.log(table);
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(rows, null, 2));
  return table;
}
