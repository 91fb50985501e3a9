// The idle collection (src/agent/idle-gc.ts): only once the event loop has been quiet for two
// intervals in a row, and only when the committed heap grew by more than the threshold since the
// last one; and the real V8 gc() it takes from a fresh context works.
import { describe, expect, it } from 'vitest';
import { exposeGc, startIdleGc } from '../../../src/agent/idle-gc.js';
import { createLogger } from '../../../src/log.js';

const MiB = 1024 * 1024;
const logger = createLogger({ level: 'silent' });

function harness() {
  const s = { heap: 20 * MiB, util: 0.5, collected: 0 };
  const g = startIdleGc({
    logger,
    intervalMs: 3_600_000,
    growthBytes: 16 * MiB,
    gc: () => {
      s.collected += 1;
      s.heap = 24 * MiB;
    },
    heapTotal: () => s.heap,
    utilization: () => s.util,
  });
  return { s, g };
}

describe('idle collection', () => {
  it('collects after two quiet intervals when the heap grew, once, then waits for new growth', () => {
    const { s, g } = harness();
    s.heap = 90 * MiB;
    g.check(); // busy
    expect(s.collected).toBe(0);
    s.util = 0.01;
    g.check(); // quiet once
    expect(s.collected).toBe(0);
    g.check(); // quiet twice
    expect(s.collected).toBe(1);
    expect(g.runs).toBe(1);
    for (let i = 0; i < 5; i++) g.check();
    expect(s.collected).toBe(1); // 24 MiB now, no growth since
    s.heap = 41 * MiB; // +17 MiB
    g.check();
    g.check();
    expect(s.collected).toBe(2);
    g.stop();
  });

  it('never while busy, and not for a small growth', () => {
    const { s, g } = harness();
    s.heap = 200 * MiB;
    for (let i = 0; i < 10; i++) {
      s.util = i % 2 === 0 ? 0.01 : 0.4; // never two quiet intervals in a row
      g.check();
    }
    expect(s.collected).toBe(0);
    // quiet, but only 10 MiB above where it started: not worth a collection
    s.util = 0.01;
    s.heap = 30 * MiB;
    g.check();
    g.check();
    g.check();
    expect(s.collected).toBe(0);
    s.heap = 37 * MiB;
    g.check();
    expect(s.collected).toBe(1);
    g.stop();
  });

  it('the real gc() is there and collects', () => {
    const gc = exposeGc();
    expect(typeof gc).toBe('function');
    let garbage: unknown[] | null = Array.from({ length: 20000 }, (_, i) => ({ i, s: `x${i}`.repeat(20) }));
    expect((garbage as unknown[]).length).toBe(20000);
    garbage = null;
    const before = process.memoryUsage().heapUsed;
    gc!();
    expect(process.memoryUsage().heapUsed).toBeLessThan(before);
    void garbage;
  });
});
