// What the admin socket answers (admin-socket.ts carries it): the live part of `cinderblock
// status` (what only the running process knows: requests in flight, locks held, the target
// daemon as its supervisor sees it, the exports it finds) and the log level of the running agent
// (cinder's set_log_levels, per backend or for all). Reads only, except set-log-level.
import type { KeyedMutex } from '../concurrency/keyed-mutex.js';
import type { Logger } from '../log.js';
import { LogLevelControl } from '../manager/log-levels.js';
import type { AdminHandler } from './admin-socket.js';
import type { RunningBackend } from './agent.js';

/** One backend as the admin socket sees it: what the agent composed, plus its locks and logger. */
export interface AdminBackendView {
  running: RunningBackend;
  locks: KeyedMutex;
  logger: Logger;
}

export interface LiveBackendStatus {
  name: string;
  host: string;
  driverInitialized: boolean;
  serviceId: number | null;
  rpc: { inFlight: number; held: number; queues: string[] };
  /** keys of the in-process resource locks taken or waited for (cinder's lock names) */
  locks: string[];
  target: { up: boolean; armed: boolean; restoring: boolean; losses: number } | null;
  pools: Array<Record<string, unknown>>;
  poolsError?: string;
  exports: Array<{ volumeName: string; iqn: string; live: boolean }>;
  exportsError?: string;
  logLevels: Record<string, string>;
}

export interface LiveStatus {
  pid: number;
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  backends: LiveBackendStatus[];
  logLevels: Record<string, string>;
}

const POOL_FIELDS = [
  'pool_name',
  'total_capacity_gb',
  'free_capacity_gb',
  'provisioned_capacity_gb',
  'allocated_capacity_gb',
  'max_over_subscription_ratio',
  'thin_provisioning_support',
  'total_volumes',
  'backend_state',
] as const;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function backendStatus(v: AdminBackendView, levels: LogLevelControl): Promise<LiveBackendStatus> {
  const { running } = v;
  const out: LiveBackendStatus = {
    name: running.backend.name,
    host: running.backend.host,
    driverInitialized: running.service.driverInitialized,
    serviceId: running.service.serviceRecord?.id ?? null,
    rpc: { inFlight: running.server.inFlight, held: running.server.heldCount, queues: running.server.queueNames },
    locks: v.locks.busyKeys(),
    target: running.supervisor ? running.supervisor.status() : null,
    pools: [],
    exports: [],
    logLevels: levels.get(''),
  };
  try {
    const caps = await running.service.capabilities();
    const pools = Array.isArray(caps.pools) ? (caps.pools as Array<Record<string, unknown>>) : [];
    out.pools = pools.map((p) => Object.fromEntries(POOL_FIELDS.filter((k) => k in p).map((k) => [k, p[k]])));
  } catch (err) {
    out.poolsError = errorText(err);
  }
  try {
    out.exports = await running.exports.findExports();
  } catch (err) {
    out.exportsError = errorText(err);
  }
  return out;
}

export interface AdminOpsOptions {
  backends: () => readonly AdminBackendView[];
  /** the whole agent's level (root logger and every backend's) */
  logLevels: LogLevelControl;
  version: string;
  startedAt?: Date;
}

export function adminOps(opts: AdminOpsOptions): Record<string, AdminHandler> {
  const startedAt = opts.startedAt ?? new Date();
  const perBackend = new Map<string, LogLevelControl>();
  const levelsOf = (v: AdminBackendView) => {
    let c = perBackend.get(v.running.backend.name);
    if (!c) perBackend.set(v.running.backend.name, (c = new LogLevelControl(v.logger)));
    return c;
  };
  const pick = (backend: unknown): readonly AdminBackendView[] => {
    const all = opts.backends();
    if (backend === undefined || backend === null || backend === '') return all;
    const b = String(backend).toLowerCase();
    const found = all.filter((v) => v.running.backend.name.toLowerCase() === b || v.running.backend.host.toLowerCase() === b);
    if (found.length === 0) throw new Error(`no backend ${String(backend)} in this agent; it serves ${all.map((v) => v.running.backend.name).join(', ')}`);
    return found;
  };
  return {
    status: async (): Promise<LiveStatus> => ({
      pid: process.pid,
      version: opts.version,
      startedAt: startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      backends: await Promise.all(opts.backends().map((v) => backendStatus(v, levelsOf(v)))),
      logLevels: opts.logLevels.get(''),
    }),
    'get-log-levels': async (req) => {
      const views = pick(req.backend);
      return Object.fromEntries(views.map((v) => [v.running.backend.name, levelsOf(v).get(typeof req.prefix === 'string' ? req.prefix : '')]));
    },
    // cinder's set_log_levels: a prefix of logger names and a Python level name. Without a
    // backend every backend and the agent's own lines change, as if each cinder-volume process
    // of this host had been told.
    'set-log-level': async (req) => {
      const level = typeof req.level === 'string' ? req.level : '';
      const prefix = typeof req.prefix === 'string' ? req.prefix : '';
      const whole = req.backend === undefined || req.backend === null || req.backend === '';
      const views = pick(req.backend);
      for (const v of views) levelsOf(v).set(prefix, level);
      if (whole) opts.logLevels.set(prefix, level);
      return Object.fromEntries(views.map((v) => [v.running.backend.name, levelsOf(v).get('')]));
    },
  };
}
