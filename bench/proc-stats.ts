// /proc readings shared by the benchmarks (rpc-bench.ts, fleet/fleet.mts): a process's tree, its
// resident memory (VmRSS, PSS) and its CPU seconds. Linux only; a process that exits between two
// reads is skipped, not an error, since benchmarks sample processes they may be stopping.
import { readFileSync, readdirSync } from 'node:fs';

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** pid → ppid for every process, from /proc/<pid>/stat (comm may contain spaces and parens). */
export function processTable(): Map<number, { ppid: number; comm: string }> {
  const out = new Map<number, { ppid: number; comm: string }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      out.set(Number(e), { ppid, comm });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** pid and all its descendants, parent first. */
export function processTree(pid: number): number[] {
  const table = processTable();
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [p, info] of table) if (info.ppid === tree[i] && !tree.includes(p)) tree.push(p);
  }
  return tree.filter((p) => table.has(p) || p === pid);
}

export interface ProcMem {
  pid: number;
  comm: string;
  rssKiB: number;
  pssKiB: number | null;
}
export interface TreeMem {
  rssKiB: number;
  pssKiB: number | null;
  processes: ProcMem[];
}

export function statusField(pid: number, field: string, file = 'status'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function treeMemory(pid: number): TreeMem {
  const table = processTable();
  const processes: ProcMem[] = [];
  for (const p of processTree(pid)) {
    const rss = statusField(p, 'VmRSS');
    if (rss === null) continue;
    processes.push({ pid: p, comm: table.get(p)?.comm ?? '?', rssKiB: rss, pssKiB: statusField(p, 'Pss', 'smaps_rollup') });
  }
  const pss = processes.every((x) => x.pssKiB !== null) ? processes.reduce((a, x) => a + (x.pssKiB ?? 0), 0) : null;
  return { rssKiB: processes.reduce((a, x) => a + x.rssKiB, 0), pssKiB: pss, processes };
}

export const CLK_TCK = 100; // Linux USER_HZ

/** CPU seconds (user + system) used so far by one process; 0 once it is gone. */
export function pidCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) used so far by the live processes of pid's tree. */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((a, p) => a + pidCpuSeconds(p), 0);
}
