import { describe, expect, it } from 'vitest';

import { forEachLimited } from '../../../src/concurrency/for-each-limited.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('forEachLimited', () => {
  it('runs every item, never more than the limit at once, starting in list order', async () => {
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    await forEachLimited([...Array(20).keys()], 4, async (x) => {
      started.push(x);
      running++;
      peak = Math.max(peak, running);
      await tick();
      running--;
    });
    expect(started).toEqual([...Array(20).keys()]);
    expect(peak).toBe(4);
  });

  it('a failing call stops nothing; the first error is thrown after all have settled', async () => {
    const done: number[] = [];
    await expect(
      forEachLimited([1, 2, 3, 4, 5], 2, async (x) => {
        await tick();
        if (x === 2 || x === 4) throw new Error(`failed ${x}`);
        done.push(x);
      }),
    ).rejects.toThrow('failed 2');
    expect(done.sort()).toEqual([1, 3, 5]);
  });

  it('an empty list resolves; a limit that is not a positive integer is refused', async () => {
    await forEachLimited([], 3, async () => undefined);
    await expect(forEachLimited([1], 0, async () => undefined)).rejects.toThrow(RangeError);
  });
});
