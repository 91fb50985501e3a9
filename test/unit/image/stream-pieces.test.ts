// The pieces the raw stream path is made of: re-cutting HTTP chunks on block boundaries, writing
// them with zero runs left as holes (or written, on a volume that holds old data), and the
// progress line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { rechunk } from '../../../src/image/rechunk.js';
import { ZeroSkippingWriter } from '../../../src/image/zero-skipping-writer.js';
import { transferProgress } from '../../../src/image/transfer-progress.js';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-stream-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function* pieces(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function writeThrough(path: string, data: Buffer, skipZeros: boolean): Promise<ZeroSkippingWriter> {
  const fh = await open(path, 'r+');
  try {
    const w = new ZeroSkippingWriter(fh, skipZeros);
    for await (const c of rechunk(pieces(data, [1000, 65537, 3]), MiB)) await w.write(c);
    return w;
  } finally {
    await fh.close();
  }
}

describe('rechunk', () => {
  it('cuts odd-sized pieces into whole chunks without losing or reusing bytes', async () => {
    const data = randomBytes(3 * MiB + 17);
    const out: Buffer[] = [];
    for await (const c of rechunk(pieces(data, [1000, 65537, 3]), MiB)) out.push(c);
    expect(out.map((c) => c.length)).toEqual([MiB, MiB, MiB, 17]);
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });
});

describe('ZeroSkippingWriter', () => {
  const data = Buffer.concat([randomBytes(MiB), Buffer.alloc(4 * MiB), randomBytes(MiB)]);

  it('leaves zero runs as holes on a destination that reads zeros', async () => {
    const p = join(dir, 'sparse');
    await (await open(p, 'w')).truncate(8 * MiB);
    const w = await writeThrough(p, data, true);
    expect(w.written).toBe(2 * MiB);
    expect((await readFile(p)).subarray(0, data.length).equals(data)).toBe(true);
    expect((await stat(p)).blocks * 512).toBeLessThanOrEqual(2 * MiB + 64 * 1024);
  });

  it('writes the zeros over old data', async () => {
    const p = join(dir, 'old');
    const fh = await open(p, 'w');
    await fh.write(Buffer.alloc(8 * MiB, 0xee));
    await fh.close();
    const w = await writeThrough(p, data, false);
    expect(w.written).toBe(data.length);
    const back = await readFile(p);
    expect(back.subarray(0, data.length).equals(data)).toBe(true);
    expect(back.subarray(data.length).every((b) => b === 0xee)).toBe(true);
  });
});

describe('transferProgress', () => {
  it('logs bytes, rate and time left at most once per interval', () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    let t = 0;
    const p = transferProgress(logger, 'downloading x', 100 * MiB, { intervalMs: 10_000, now: () => t });
    t = 5_000;
    p.add(10 * MiB);
    t = 10_000;
    p.add(10 * MiB);
    t = 12_000;
    p.add(MiB);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ bytes: 20 * MiB, total_bytes: 100 * MiB, bytes_per_second: 2 * MiB, eta_seconds: 40 });
  });
  it('hands every byte to the metric, between log lines too', () => {
    let counted = 0;
    const p = transferProgress(pino({ level: 'silent' }), 'uploading y', null, { count: (n) => (counted += n) });
    p.add(3);
    p.add(MiB);
    expect(counted).toBe(MiB + 3);
  });
});
