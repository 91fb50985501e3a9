// `cinderblock audit [--fix] [--json] [--backend NAME]`: the export audit (src/manager/audit.ts)
// run from the same cinder.conf as `serve`, beside a running agent or without one. It reads the
// target daemon, the host target registry and the database; with --fix it takes the same locks as
// the agent (the host target's, in lock_path) and removes what the findings say, printing each
// action.
//
// Exit codes: 0 clean (or everything found was fixed), 3 findings remain, 1 the audit could not run.
import type { CinderConfig, ConfigSourceArg } from '../config/index.js';
import { loadConfig } from '../config/index.js';
import { openDatabase } from '../db/index.js';
import { createLogger, setRootLogger } from '../log.js';
import { fixFindings, runAudit, type Finding, type FixAction } from '../manager/audit.js';
import { createDriver } from '../agent/driver-factory.js';
import { configuredTgtControlPort, createExports, createTargetSide } from '../agent/target-factory.js';

export interface AuditCommandOptions {
  fix?: boolean;
  json?: boolean;
  backend?: string;
  /** the second look's delay (ms); default the audit's */
  settleMs?: number;
}

export const AUDIT_EXIT = { clean: 0, error: 1, findings: 3 } as const;

function describe(f: Finding): string {
  const where = [f.iqn, f.lun !== undefined ? `LUN ${f.lun}` : null, f.volumeId ? `volume ${f.volumeId}` : null, f.host ? `host ${f.host}` : null].filter(Boolean).join(', ');
  return `${f.kind.toUpperCase().padEnd(11)} ${f.class}\n    ${f.meaning}\n    at: ${where || '-'}\n    --fix: ${f.fix ?? 'nothing (look at it)'}`;
}

/** Runs the audit of every backend (or one); returns the exit code. */
export async function auditBackends(config: CinderConfig, opts: AuditCommandOptions, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const logger = createLogger({ level: 'warn', pretty: false, destination: 2 });
  setRootLogger(logger);
  const backends = config.backends.filter((b) => !opts.backend || b.name === opts.backend);
  if (backends.length === 0) throw new Error(opts.backend ? `no enabled backend named ${opts.backend}` : 'no enabled_backends in the configuration');
  const db = await openDatabase(config.database.connection, { logger, maxPoolSize: 2 });
  const report: Array<{ backend: string; findings: Finding[]; actions: FixAction[] }> = [];
  try {
    for (const backend of backends) {
      const port = configuredTgtControlPort(config);
      const side = createTargetSide(backend, { logger, probeIntervalMs: 0, ...(port ? { tgtControlPort: port } : {}) });
      const driver = createDriver(config, backend);
      const exports = createExports(driver, side, { backend, statePath: config.default.state_path, lockPath: config.concurrency.lock_path ?? null });
      const ports = { backend: backend.name, host: backend.host, db, exports, driver };
      const findings = await runAudit(ports, opts.settleMs !== undefined ? { settleMs: opts.settleMs } : {});
      const actions = opts.fix ? await fixFindings(ports, findings) : [];
      side?.supervisor.stop();
      report.push({ backend: backend.name, findings, actions });
    }
  } finally {
    await db.close();
  }
  const remaining = report.flatMap((r) => r.findings.filter((f) => !r.actions.some((a) => a.finding === f && a.done)));
  if (opts.json) {
    out(`${JSON.stringify({ backends: report, remaining: remaining.length }, null, 2)}\n`);
  } else {
    for (const r of report) {
      out(`[${r.backend}] ${r.findings.length === 0 ? 'clean' : `${r.findings.length} finding(s)`}\n`);
      for (const f of r.findings) out(`  ${describe(f)}\n`);
      for (const a of r.actions) out(`  ${a.done ? 'FIXED' : 'FAILED'}: ${a.finding.fix}${a.error ? ` (${a.error})` : ''}\n`);
    }
  }
  return remaining.length === 0 ? AUDIT_EXIT.clean : AUDIT_EXIT.findings;
}

export async function auditCommand(sources: ConfigSourceArg[], opts: AuditCommandOptions): Promise<void> {
  const config = await loadConfig({ sources });
  process.exitCode = await auditBackends(config, opts);
}
