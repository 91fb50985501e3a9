// Gives the V8 heap a burst of work grew back to the system once the agent is idle again.
//
// Measured (bench/attach-scale-bench.mts, issue 10 item 8): after 300 attaches and detaches, or
// the creation of 300 volumes, the agent's live heap is back to within a few MiB of where it
// started, but V8 keeps the old-generation pages the burst made it commit (60-110 MiB of them):
// an idle agent allocates too little to reach the next full collection, and V8's own memory
// reducer ran within 60 s of quiet in only some of the runs. So RSS stayed 50-80 MiB above idle.
// A full collection, once the event loop has been quiet for two intervals in a row and only when
// the committed heap grew by more than `growthBytes` since the last one, returns those pages (it
// takes 5-60 ms, while nothing else runs). Node does not expose V8's gc() without --expose-gc on
// its command line; setting the flag at run time and taking gc() from a fresh context is the
// documented-as-unsupported but long-standing way (it changes nothing else). When that fails, this
// does nothing.
import v8 from 'node:v8';
import vm from 'node:vm';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';

export interface IdleGcOptions {
  logger: Logger;
  /** how often the event loop's utilisation is looked at; default 10 s */
  intervalMs?: number;
  /** utilisation below which an interval counts as idle; default 0.05 */
  idleUtilization?: number;
  /** committed heap growth since the last collection that makes one worth it; default 16 MiB */
  growthBytes?: number;
  /** tests: stand-ins for V8 and the event loop */
  gc?: (() => void) | null;
  heapTotal?: () => number;
  /** utilisation of the event loop since the previous call (0..1) */
  utilization?: () => number;
}

export interface IdleGc {
  /** collections done so far */
  readonly runs: number;
  /** one interval's check, as the timer does it (tests) */
  check(): void;
  stop(): void;
}

/** V8's gc(), or null when it cannot be had. */
export function exposeGc(): (() => void) | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

function eluSampler(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

export function startIdleGc(opts: IdleGcOptions): IdleGc {
  const gc = opts.gc === undefined ? exposeGc() : opts.gc;
  const heapTotal = opts.heapTotal ?? (() => v8.getHeapStatistics().total_heap_size);
  const utilization = opts.utilization ?? eluSampler();
  const idleUtilization = opts.idleUtilization ?? 0.05;
  const growth = opts.growthBytes ?? 16 * 1024 * 1024;
  let base = heapTotal();
  let quiet = 0;
  let runs = 0;
  const check = () => {
    quiet = utilization() < idleUtilization ? quiet + 1 : 0;
    if (!gc || quiet < 2) return;
    const before = heapTotal();
    if (before < base + growth) {
      // shrunk by itself (V8's memory reducer): measure growth from there
      base = Math.min(base, before);
      return;
    }
    const t0 = performance.now();
    gc();
    const after = heapTotal();
    base = after;
    quiet = 0;
    runs += 1;
    const mib = (b: number) => Math.round((b / 1048576) * 10) / 10;
    opts.logger.info(
      { heap_total_before_mib: mib(before), heap_total_after_mib: mib(after), gc_ms: Math.round(performance.now() - t0) },
      `idle: returned ${mib(before - after)} MiB of V8 heap a burst of work had grown`,
    );
  };
  const timer = gc ? setInterval(check, opts.intervalMs ?? 10_000) : null;
  timer?.unref();
  if (!gc) opts.logger.debug('V8 gc() not available; the heap is left to V8 when idle');
  return {
    get runs() {
      return runs;
    },
    check,
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
