// Child process of bench/copy-bench.ts: one copy, as the agent would run it, then prints this
// process's peak resident set (VmHWM) as JSON, so the bench's own buffers do not count.
import { readFileSync } from 'node:fs';

import { copy } from '../src/native/copy.js';

function kib(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

const [src, dst] = process.argv.slice(2);
if (!src || !dst) throw new Error('usage: copy-rss-probe.ts SRC DST');
const before = kib('VmRSS');
let during = 0;
const r = await copy(src, dst, { onProgress: () => (during = Math.max(during, kib('VmRSS'))), progressIntervalMs: 100 });
console.log(JSON.stringify({ rssBeforeKiB: before, rssDuringMaxKiB: during, peakKiB: kib('VmHWM'), seconds: r.elapsedMs / 1000 }));
