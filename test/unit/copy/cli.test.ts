// `cinderblock copy`: rate parsing, the terminal bar, and what goes to stdout/stderr with and
// without a terminal (small temp files; no root needed).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { copyCommand, parseByteRate, progressBar } from '../../../src/cli/copy.js';

class Sink {
  text = '';
  constructor(readonly isTTY: boolean) {}
  columns = 100;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-copy-cli-'));
  writeFileSync(path.join(dir, 'src'), randomBytes(12 * 1024 * 1024)); // 3 engine blocks
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('parseByteRate', () => {
  it('reads bytes, binary and decimal suffixes, and an optional /s', () => {
    expect(parseByteRate(1048576)).toBe(1048576);
    expect(parseByteRate('1048576')).toBe(1048576);
    expect(parseByteRate('100M')).toBe(100 * 1024 ** 2);
    expect(parseByteRate('100MiB/s')).toBe(100 * 1024 ** 2);
    expect(parseByteRate('100MB')).toBe(100e6);
    expect(parseByteRate('1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseByteRate('512k')).toBe(512 * 1024);
  });

  it('says what it accepts when it cannot read a rate', () => {
    expect(() => parseByteRate('fast')).toThrow(/not a rate: use bytes per second, e.g. 104857600, 100M/);
    expect(() => parseByteRate('10X')).toThrow(RangeError);
    expect(() => parseByteRate(-1)).toThrow(/non-negative/);
  });
});

describe('progressBar', () => {
  it('shows fraction, amounts, rate and ETA within the terminal width', () => {
    const line = progressBar({ bytesDone: 512 * 1024 ** 2, bytesTotal: 1024 ** 3, bytesWritten: 0, bytesSkipped: 0, elapsedMs: 2000 }, 80);
    expect(line).toMatch(/^\[#+\.+\]\s+50\.0% 512\.0 MiB\/1\.0 GiB 256\.0 MiB\/s ETA 2s$/);
    expect(line.length).toBeLessThanOrEqual(80);
  });
});

describe('copyCommand', () => {
  it('without a terminal: JSON progress lines on stderr, one JSON result line on stdout', async () => {
    const out = new Sink(false);
    const err = new Sink(false);
    const r = await copyCommand(path.join(dir, 'src'), path.join(dir, 'dst1'), { verify: true, bpsLimit: '24M' }, {
      stdout: out,
      stderr: err,
      progressIntervalMs: 50,
      handleSignals: false,
    });
    expect(readFileSync(path.join(dir, 'dst1')).equals(readFileSync(path.join(dir, 'src')))).toBe(true);
    const lines = err.text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; bytesDone: number });
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.every((l) => l.type === 'progress')).toBe(true);
    expect(lines.at(-1)!.bytesDone).toBe(12 * 1024 * 1024);
    const result = JSON.parse(out.text) as { type: string; checksum: string; bytesCopied: number };
    expect(result).toMatchObject({ type: 'result', bytesCopied: 12 * 1024 * 1024, checksum: r.checksum });
    expect(out.text.endsWith('\n')).toBe(true);
  });

  it('on a terminal: a bar redrawn in place on stderr and a summary line', async () => {
    const out = new Sink(false);
    const err = new Sink(true);
    await copyCommand(path.join(dir, 'src'), path.join(dir, 'dst2'), { sparse: true, bpsLimit: 24 * 1024 * 1024 }, {
      stdout: out,
      stderr: err,
      progressIntervalMs: 50,
      handleSignals: false,
    });
    expect(err.text).toMatch(/\r\[#+/);
    expect(err.text).toMatch(/\ncopied 12\.0 MiB in .* by (engine|copy_file_range|ficlone); wrote/);
    expect(JSON.parse(out.text)).toMatchObject({ type: 'result' });
  });

  it('an aborted command rejects with AbortError and prints no result', async () => {
    const out = new Sink(false);
    const err = new Sink(true);
    const ac = new AbortController();
    const p = copyCommand(path.join(dir, 'src'), path.join(dir, 'dst3'), { bpsLimit: 1024 * 1024 }, {
      stdout: out,
      stderr: err,
      signal: ac.signal,
      handleSignals: false,
    });
    setTimeout(() => ac.abort(), 200);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(out.text).toBe('');
  });

  it('a bad --bps-limit is refused before copying', async () => {
    await expect(copyCommand(path.join(dir, 'src'), path.join(dir, 'dst4'), { bpsLimit: 'lots' }, { handleSignals: false })).rejects.toThrow(/--bps-limit/);
  });
});
