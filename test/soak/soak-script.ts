// What the attach soak's scripts share (attach-soak.mts on the host's tgtd, lio-attach-soak.mts in
// the lab): the run's options from CB_SOAK_* and the report and exit code at its end.
import type { RunStop } from '../helpers/soak-watchdog.js';
import { summaryTable, type SoakResult } from './attach-soak-lib.js';

/** A non-negative number from the environment, or `def` when unset. */
export function envNumber(name: string, def: number, env: Readonly<Record<string, string | undefined>> = process.env): number {
  const v = env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number, got ${v}`);
  return n;
}

/** CB_SOAK_OPS, _CONCURRENCY, _VOLUMES, _SEED, _DEADLINE_S, _FAULTS and _LAYOUT (default `defaultLayout`). */
export function soakOptionsFromEnv(defaultLayout: 'per-volume' | 'per-host', env: Readonly<Record<string, string | undefined>> = process.env) {
  const layout = env.CB_SOAK_LAYOUT === 'per-host' || env.CB_SOAK_LAYOUT === 'per-volume' ? env.CB_SOAK_LAYOUT : defaultLayout;
  return {
    ops: envNumber('CB_SOAK_OPS', 200, env),
    concurrency: Math.max(1, envNumber('CB_SOAK_CONCURRENCY', 8, env)),
    volumes: Math.max(1, envNumber('CB_SOAK_VOLUMES', 20, env)),
    seed: envNumber('CB_SOAK_SEED', 1, env),
    deadlineMs: envNumber('CB_SOAK_DEADLINE_S', 2400, env) * 1000,
    faults: env.CB_SOAK_FAULTS !== '0',
    targetLayout: layout,
  };
}

/** The summary table and the findings, on stdout. */
export function printSoakReport(result: SoakResult): void {
  console.log('');
  console.log(summaryTable(result));
  if (result.findings.length) {
    console.log('\nFindings:');
    for (const f of result.findings) console.log(`  - ${f}`);
  }
}

/** 0 pass, 1 findings, 2 the run itself failed, 3 deadline, 130 interrupted. */
export function soakExitCode(result: SoakResult, stop: RunStop): number {
  const stoppedEarly = result.findings.some((f) => f.startsWith('the run stopped'));
  return stop.interrupted() ? 130 : stop.deadlineHit() ? 3 : stoppedEarly ? 2 : result.pass ? 0 : 1;
}
