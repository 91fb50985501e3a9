// What the admin socket answers (admin-socket.ts carries it): the live part of `cinderblock
// status` (what only the running process knows: requests in flight, locks held, the target
// daemon as its supervisor sees it, the exports it finds) and the log level of the running agent
// (cinder's set_log_levels, per backend or for all). Reads only, except set-log-level.
import type { KeyedMutex } from '../concurrency/keyed-mutex.js';
import type { Logger } from '../log.js';
import { LogLevelControl } from '../manager/log-levels.js';
import type { Handler } from '../manager/volume-manager.js';
import type { AdminHandler } from './admin-socket.js';
import type { RunningBackend } from './agent.js';

export interface InFlightCall {
  method: string;
  /** the caller's request_id: `cinderblock logs --request-id` shows its lines */
  requestId: string | null;
  startedAt: string;
  seconds: number;
}

/**
 * The RPC calls a backend is running now, by method and request id: what `status` lists as
 * in-flight operations (the RPC server itself only counts them).
 */
export class InFlightCalls {
  private readonly calls = new Map<number, { method: string; requestId: string | null; started: number }>();
  private next = 0;

  wrap(methods: Record<string, Handler>): Record<string, Handler> {
    return Object.fromEntries(
      Object.entries(methods).map(([method, fn]) => [
        method,
        async (ctx: Record<string, unknown>, args: Record<string, unknown>) => {
          const id = this.next++;
          const rid = ctx.request_id;
          this.calls.set(id, { method, requestId: typeof rid === 'string' ? rid.slice(0, 128) : null, started: Date.now() });
          try {
            return await fn(ctx, args);
          } finally {
            this.calls.delete(id);
          }
        },
      ]),
    );
  }

  list(now = Date.now()): InFlightCall[] {
    return [...this.calls.values()].map((c) => ({ method: c.method, requestId: c.requestId, startedAt: new Date(c.started).toISOString(), seconds: Math.round((now - c.started) / 1000) }));
  }
}

/** One backend as the admin socket sees it: what the agent composed, plus its locks, calls and logger. */
export interface AdminBackendView {
  running: RunningBackend;
  locks: KeyedMutex;
  calls?: InFlightCalls;
  logger: Logger;
}

export interface LiveBackendStatus {
  name: string;
  host: string;
  driverInitialized: boolean;
  serviceId: number | null;
  rpc: { inFlight: number; held: number; queues: string[]; calls: InFlightCall[] };
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
    rpc: { inFlight: running.server.inFlight, held: running.server.heldCount, queues: running.server.queueNames, calls: v.calls?.list() ?? [] },
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
