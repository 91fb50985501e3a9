// The driver's default copy function (used when no copy engine is injected), on plain files.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBlocksize, simpleCopy } from '../../../drivers/lvm/volume-copy.js';

const dir = mkdtempSync(join(tmpdir(), 'cb-copy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 ** 2;

describe('simpleCopy', () => {
  const src = join(dir, 'src');
  // 1 MiB data, 1 MiB zeros, 1 MiB data, a partial 100 KiB tail
  const data = Buffer.concat([randomBytes(MiB), Buffer.alloc(MiB), randomBytes(MiB), randomBytes(100 * 1024)]);
  writeFileSync(src, data);

  it('copies the first sizeBytes, overwriting zeros too when not sparse', async () => {
    const dst = join(dir, 'dst1');
    writeFileSync(dst, Buffer.alloc(data.length + MiB, 0xff));
    await simpleCopy(src, dst, { sizeBytes: data.length, sparse: false, blocksize: '1M', sync: true });
    const out = readFileSync(dst);
    expect(out.subarray(0, data.length).equals(data)).toBe(true);
    expect(out.subarray(data.length).every((b) => b === 0xff)).toBe(true);
  });

  it('sparse: all-zero blocks are left unwritten', async () => {
    const dst = join(dir, 'dst2');
    writeFileSync(dst, Buffer.alloc(data.length, 0xff));
    await simpleCopy(src, dst, { sizeBytes: data.length, sparse: true, blocksize: '1M', sync: false });
    const out = readFileSync(dst);
    expect(out.subarray(0, MiB).equals(data.subarray(0, MiB))).toBe(true);
    expect(out.subarray(MiB, 2 * MiB).every((b) => b === 0xff)).toBe(true);
    expect(out.subarray(2 * MiB).equals(data.subarray(2 * MiB))).toBe(true);
  });

  it('a short source is an error', async () => {
    const dst = join(dir, 'dst3');
    writeFileSync(dst, Buffer.alloc(0));
    await expect(simpleCopy(src, dst, { sizeBytes: data.length + 1, sparse: false, blocksize: '64k', sync: false })).rejects.toThrow(/ended at byte/);
  });

  it('volume_dd_blocksize with cinder\'s fallback to 1M', () => {
    expect(parseBlocksize('1M')).toBe(MiB);
    expect(parseBlocksize('4096')).toBe(4096);
    expect(parseBlocksize('64k')).toBe(65536);
    expect(parseBlocksize('0')).toBe(MiB);
    expect(parseBlocksize('-1M')).toBe(MiB);
    expect(parseBlocksize('1.5M')).toBe(MiB);
    expect(parseBlocksize('1Q')).toBe(MiB);
  });
});
