// The agent's own export audit (src/manager/audit.ts): once the start-up restore has finished, then
// every [cinderblock] audit_interval seconds. Each finding is logged (an exposure as an error, with
// what `cinderblock audit --fix` would do) and counted in cinderblock_audit_findings; nothing is
// fixed here: a person, or a script they chose, runs the fix.
import type { Logger } from '../log.js';
import type { AgentMetrics } from '../metrics.js';
import { FINDING_CLASSES, runAudit, type AuditPorts, type Finding } from '../manager/audit.js';

export interface AuditLoopOptions {
  ports: AuditPorts;
  /** 0: only the start-up audit */
  intervalMs: number;
  logger: Logger;
  metrics: AgentMetrics | null;
  /** the first audit waits for this (the start-up restore) */
  after: Promise<unknown>;
}

export interface AuditLoop {
  stop(): void;
  /** the audit in progress or the last one (tests) */
  last(): Promise<Finding[] | null>;
}

export function startAuditLoop(o: AuditLoopOptions): AuditLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let current: Promise<Finding[] | null> = Promise.resolve(null);
  const once = async (): Promise<Finding[] | null> => {
    if (stopped) return null;
    try {
      const findings = await runAudit(o.ports);
      for (const c of FINDING_CLASSES) o.metrics?.auditFindings.set({ backend: o.ports.backend, class: c }, findings.filter((f) => f.class === c).length);
      o.metrics?.auditTimestamp.set({ backend: o.ports.backend }, Date.now() / 1000);
      for (const f of findings) {
        const line = { audit: f.class, iqn: f.iqn, lun: f.lun, volume_id: f.volumeId, host: f.host, initiator: f.initiator };
        const advice = f.fix ? `\`cinderblock audit --fix\` would ${f.fix}` : 'look at it: --fix does not touch this';
        if (f.kind === 'exposure') o.logger.error(line, `export audit: ${f.meaning}; ${advice}`);
        else o.logger.warn(line, `export audit: ${f.meaning}; ${advice}`);
      }
      if (findings.length === 0) o.logger.debug('export audit: clean');
      return findings;
    } catch (err) {
      o.logger.warn({ err }, 'export audit could not run; it is tried again at the next interval');
      return null;
    }
  };
  const schedule = (): void => {
    if (stopped || o.intervalMs <= 0) return;
    timer = setTimeout(() => {
      current = once().finally(schedule);
    }, o.intervalMs);
    timer.unref();
  };
  current = o.after.then(once, once).finally(schedule);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    last: () => current,
  };
}
