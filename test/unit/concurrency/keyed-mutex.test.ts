import { describe, expect, it } from 'vitest';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';

const tick = (ms = 2) => new Promise((r) => setTimeout(r, ms));

describe('KeyedMutex', () => {
  it('runs one key at a time in arrival order, other keys in parallel', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const job = (key: string, name: string) =>
      m.run(key, async () => {
        log.push(`${name}+`);
        await tick();
        log.push(`${name}-`);
        return name;
      });
    const r = await Promise.all([job('a', 'a1'), job('a', 'a2'), job('b', 'b1'), job('a', 'a3')]);
    expect(r).toEqual(['a1', 'a2', 'b1', 'a3']);
    const a = log.filter((x) => x.startsWith('a'));
    expect(a).toEqual(['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-']);
    expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
    expect(m.busyKeys()).toEqual([]);
  });

  it('releases the lock when an operation fails', async () => {
    const m = new KeyedMutex();
    await expect(m.run('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await m.run('k', async () => 7)).toBe(7);
    expect(m.busyKeys()).toEqual([]);
  });
});
