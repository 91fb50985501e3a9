// volume_copy_bps_limit semantics: one limit per device, shared fairly between the copies on it;
// and the I/O priority of the copy's threads (ionice). Timings are asserted loosely: a limited
// copy must not be faster than its limit allows (with slack), never that it is exactly on time.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { copy, type CopyProgress } from '../../../src/native/copy.js';
import { hasCommand } from '../native/helpers.js';
import { MiB, sha256, sleep, threadsNamed, writeRandom } from './helpers.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-copy-bps-'));
  writeRandom(path.join(dir, 'a.src'), 20 * MiB);
  writeRandom(path.join(dir, 'b.src'), 10 * MiB);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('bandwidth limit', () => {
  it('a 20 MiB copy at 10 MiB/s takes well over a second (and is still exact)', async () => {
    const t0 = Date.now();
    const r = await copy(path.join(dir, 'a.src'), path.join(dir, 'a.dst'), { bpsLimit: 10 * MiB, blockSize: MiB, offload: false });
    const s = (Date.now() - t0) / 1000;
    expect(s).toBeGreaterThan(1.5); // 2 s at the limit
    expect(s).toBeLessThan(10);
    expect(r.bytesWritten).toBe(20 * MiB);
    expect(sha256(path.join(dir, 'a.dst'))).toBe(sha256(path.join(dir, 'a.src')));
  });

  it('two concurrent copies on one device share the limit: each gets about half', async () => {
    // Both read from and write to the same filesystem (same st_dev): one timeline per direction.
    const last: Record<string, CopyProgress> = {};
    const done: Record<string, number> = {};
    const t0 = Date.now();
    const one = (name: string) =>
      copy(path.join(dir, 'a.src'), path.join(dir, `fair-${name}.dst`), {
        length: 10 * MiB,
        bpsLimit: 10 * MiB,
        blockSize: MiB,
        offload: false,
        progressIntervalMs: 50,
        onProgress: (p) => (last[name] = p),
      }).then(() => (done[name] = (Date.now() - t0) / 1000));
    const both = Promise.all([one('x'), one('y')]);
    await sleep(1000);
    // One second in: 10 MiB/s shared, so about 5 MiB each; unfair would be ~10 and ~0.
    const x = last.x?.bytesDone ?? 0;
    const y = last.y?.bytesDone ?? 0;
    expect(x + y).toBeLessThanOrEqual(14 * MiB);
    expect(x).toBeGreaterThanOrEqual(2 * MiB);
    expect(y).toBeGreaterThanOrEqual(2 * MiB);
    await both;
    // 20 MiB in total through a 10 MiB/s device: about 2 s, and both finish near the end.
    expect(Math.max(done.x!, done.y!)).toBeGreaterThan(1.5);
    expect(Math.min(done.x!, done.y!)).toBeGreaterThan(1.3);
  });
});

describe('I/O priority', () => {
  it.skipIf(!hasCommand('ionice'))('the copy threads run with the requested class (seen with ionice -p)', async () => {
    for (const [ioBackend, threadName] of [
      ['io_uring', 'cb-copy'],
      ['threads', 'cb-copy-wr'],
    ] as const) {
      const p = copy(path.join(dir, 'a.src'), path.join(dir, `ionice-${ioBackend}.dst`), {
        ioPriority: { class: 'idle' },
        bpsLimit: 20 * MiB,
        blockSize: MiB,
        offload: false,
        ioBackend,
      });
      await sleep(300);
      const tids = threadsNamed(threadName);
      expect(tids.length).toBeGreaterThan(0);
      const seen = execFileSync('ionice', ['-p', String(tids[0])], { encoding: 'utf8' }).trim();
      await p;
      expect(seen).toBe('idle');
    }
    const be = copy(path.join(dir, 'b.src'), path.join(dir, 'ionice-be.dst'), {
      ioPriority: { class: 'best-effort', level: 7 },
      bpsLimit: 20 * MiB,
      offload: false,
    });
    await sleep(200);
    const seen = execFileSync('ionice', ['-p', String(threadsNamed('cb-copy')[0])], { encoding: 'utf8' }).trim();
    await be;
    expect(seen).toBe('best-effort: prio 7');
  });
});
