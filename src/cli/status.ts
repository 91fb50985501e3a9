// `cinderblock status`: the state of this host's backends at a glance. The services rows (up or
// down by cinder's own rule: a heartbeat within service_down_time), volumes by status,
// attachments and cinder's in-flight workers rows come from the database; requests in flight,
// locks held, pools, exports and the target daemon as the agent sees it come from the running
// agent over its admin socket. With the agent down, the status says so and probes the target
// daemon itself. Exit 0 when the agent runs and every backend is up, 1 otherwise, 3 when neither
// the agent nor the database answers.
import type { BackendConfig, CinderConfig, ConfigSourceArg } from '../config/index.js';
import { isUp, type CinderDb } from '../db/index.js';
import { AdminSocketError, adminRequest, adminSocketPath } from '../agent/admin-socket.js';
import type { LiveBackendStatus, LiveStatus } from '../agent/admin-ops.js';
import { CliFailure, emit, EXIT, keyValues, loadCliConfig, openCliDatabase, reportCloseFailure, runCli, table, type OutputOptions } from './output.js';
import { findBackendExports, heldLockFiles, targetDaemonState, type TargetDaemonState } from './inspect-backend.js';

export interface ServiceState {
  /** `missing`: no services row for this backend (the agent never started it) */
  state: 'up' | 'down' | 'missing';
  disabled: boolean | null;
  disabledReason: string | null;
  lastHeartbeat: Date | null;
  /** seconds since the last heartbeat, by the database's clock for the row */
  heartbeatAgeSeconds: number | null;
  reportCount: number | null;
  rpcVersion: string | null;
  objectVersion: string | null;
}

export interface BackendReport {
  name: string;
  host: string;
  service: ServiceState | null;
  volumes: Record<string, number> | null;
  /** what the database counts against the backend's capacity (cinder's allocated_capacity_gb) */
  allocated: { count: number; gigabytes: number } | null;
  attachments: Record<string, number> | null;
  /** cinder's workers rows for the service: cleanable operations not finished (or left by a crash) */
  workers: Array<{ resource_type: string; resource_id: string; status: string }> | null;
  live: LiveBackendStatus | null;
  target: TargetDaemonState | null;
  /** with the agent down: the exports found on the daemon and in the helper's record */
  exports: Array<{ volumeName: string; iqn: string; live: boolean; admitted?: string[] }> | null;
  exportsError?: string;
}

/** what the database says of a backend */
type DbPart = Omit<BackendReport, 'live' | 'target' | 'exports' | 'exportsError'>;

export interface StatusReport {
  agent: { running: boolean; socket: string; detail: string; pid?: number; version?: string; uptimeSeconds?: number };
  database: { reachable: boolean; url: string | null; error?: string };
  serviceDownTime: number;
  /** lock files under lock_path held now, by the agent or any cinder process on this host */
  externalLocks: string[];
  backends: BackendReport[];
}

export function serviceState(row: { updated_at: Date | null; created_at?: Date | null; disabled: boolean | null; disabled_reason: string | null; report_count: number; rpc_current_version: string | null; object_current_version: string | null } | undefined, now: Date, serviceDownTime: number): ServiceState {
  if (!row) return { state: 'missing', disabled: null, disabledReason: null, lastHeartbeat: null, heartbeatAgeSeconds: null, reportCount: null, rpcVersion: null, objectVersion: null };
  // cinder's is_up reads updated_at, or created_at for a row never heartbeat since
  const last = row.updated_at ?? row.created_at ?? null;
  return {
    state: isUp({ updated_at: last }, now, serviceDownTime) ? 'up' : 'down',
    disabled: row.disabled,
    disabledReason: row.disabled_reason,
    lastHeartbeat: last,
    heartbeatAgeSeconds: last ? Math.round((now.getTime() - last.getTime()) / 1000) : null,
    reportCount: row.report_count,
    rpcVersion: row.rpc_current_version,
    objectVersion: row.object_current_version,
  };
}

async function fromDatabase(db: CinderDb, backends: readonly BackendConfig[], serviceDownTime: number): Promise<Map<string, DbPart>> {
  const rows = await db.inspect.volumeServices(backends.map((b) => b.host));
  // the heartbeat was written with the agent host's clock, as cinder-api reads it with its own
  const now = new Date();
  const out = new Map<string, DbPart>();
  for (const b of backends) {
    const row = rows.find((r) => r.host === b.host);
    const attachments: Record<string, number> = {};
    for (const a of await db.inspect.attachmentsOnBackend(b.host)) attachments[a.attach_status ?? 'null'] = (attachments[a.attach_status ?? 'null'] ?? 0) + 1;
    out.set(b.name, {
      name: b.name,
      host: b.host,
      service: serviceState(row, now, serviceDownTime),
      volumes: await db.inspect.volumeCountsByStatus(b.host),
      allocated: await db.volumes.dataGetForHost(b.host),
      attachments,
      workers: row ? (await db.inspect.workersOfService(row.id)).map(({ resource_type, resource_id, status }) => ({ resource_type, resource_id, status })) : [],
    });
  }
  return out;
}

export async function collectStatus(config: CinderConfig, opts: { socket?: string } = {}): Promise<StatusReport> {
  const socket = opts.socket ?? adminSocketPath(config.default.state_path);
  const report: StatusReport = {
    agent: { running: false, socket, detail: '' },
    database: { reachable: false, url: null },
    serviceDownTime: config.default.service_down_time,
    externalLocks: await heldLockFiles(config.concurrency.lock_path ?? null),
    backends: [],
  };
  let live: LiveStatus | null = null;
  try {
    live = (await adminRequest(socket, { op: 'status' })) as LiveStatus;
    report.agent = { running: true, socket, detail: `pid ${live.pid}, up ${live.uptimeSeconds} s`, pid: live.pid, version: live.version, uptimeSeconds: live.uptimeSeconds };
  } catch (err) {
    const unreachable = err instanceof AdminSocketError && err.unreachable;
    report.agent.detail = unreachable
      ? `not running (nothing listens on ${socket}): pools, RPC in flight and locks are unknown; the rest comes from the database, the target daemon and the helper's records`
      : err instanceof Error
        ? err.message
        : String(err);
  }
  let dbRows: Map<string, DbPart> | null = null;
  let db: CinderDb | null = null;
  try {
    db = await openCliDatabase(config);
    report.database = { reachable: true, url: db.redactedUrl };
    dbRows = await fromDatabase(db, config.backends, config.default.service_down_time);
  } catch (err) {
    report.database = { reachable: false, url: null, error: err instanceof Error ? err.message : String(err) };
  } finally {
    await db?.close().catch(reportCloseFailure('the database connection'));
  }
  for (const b of config.backends) {
    const fromDb = dbRows?.get(b.name);
    const l = live?.backends.find((x) => x.name === b.name) ?? null;
    let exports: BackendReport['exports'] = null;
    let exportsError: string | undefined;
    if (!l) {
      try {
        exports = await findBackendExports(config, b);
      } catch (err) {
        exportsError = err instanceof Error ? err.message : String(err);
      }
    }
    report.backends.push({
      ...(exportsError ? { exportsError } : {}),
      exports,
      name: b.name,
      host: b.host,
      service: fromDb?.service ?? null,
      volumes: fromDb?.volumes ?? null,
      allocated: fromDb?.allocated ?? null,
      attachments: fromDb?.attachments ?? null,
      workers: fromDb?.workers ?? null,
      live: l,
      // the agent's supervisor knows best; without it, ask the daemon directly
      target: l ? null : await targetDaemonState(config, b),
    });
  }
  return report;
}

export function statusExitCode(r: StatusReport): number {
  if (!r.agent.running && !r.database.reachable) return EXIT.unreachable;
  if (!r.agent.running) return EXIT.problems;
  if (r.backends.some((b) => b.service?.state !== 'up' || (b.live && !b.live.driverInitialized))) return EXIT.problems;
  return EXIT.ok;
}

function counts(c: Record<string, number> | null): string {
  if (!c) return '-';
  const e = Object.entries(c);
  return e.length === 0 ? 'none' : e.map(([k, n]) => `${k}=${n}`).join(' ');
}

function targetText(b: BackendReport): string {
  if (b.live) {
    const t = b.live.target;
    if (!t) return 'none (target_helper = fake or not set up)';
    if (!t.armed) return 'not used yet (no export since start)';
    return `${t.up ? 'up' : 'DOWN'}${t.restoring ? ', restoring exports' : ''}${t.losses ? `, ${t.losses} loss(es) since start` : ''}`;
  }
  return b.target ? `${b.target.state} (${b.target.detail}; probed directly)` : '-';
}

export function formatStatus(r: StatusReport): string {
  let out = '';
  out += keyValues([
    ['agent', r.agent.running ? `running, ${r.agent.detail}, version ${r.agent.version ?? '?'}` : r.agent.detail],
    ['admin socket', r.agent.socket],
    ['database', r.database.reachable ? r.database.url : `UNREACHABLE: ${r.database.error ?? ''}`],
    ['service_down_time', `${r.serviceDownTime} s`],
    ['file locks held', r.externalLocks.length ? r.externalLocks.join(', ') : 'none'],
  ]);
  out += '\nservices\n';
  out += table(
    ['BACKEND', 'HOST', 'STATE', 'DISABLED', 'LAST HEARTBEAT', 'AGE', 'RPC', 'OBJECTS'],
    r.backends.map((b) => [
      b.name,
      b.host,
      !b.service ? '?' : b.service.state === 'up' ? 'up' : b.service.state.toUpperCase(),
      b.service?.disabled ? `yes${b.service.disabledReason ? ` (${b.service.disabledReason})` : ''}` : b.service ? 'no' : '-',
      b.service?.lastHeartbeat ?? null,
      b.service?.heartbeatAgeSeconds !== null && b.service?.heartbeatAgeSeconds !== undefined ? `${b.service.heartbeatAgeSeconds}s` : null,
      b.service?.rpcVersion ?? null,
      b.service?.objectVersion ?? null,
    ]),
  );
  const pools = r.backends.flatMap((b) => (b.live?.pools ?? []).map((p) => [b.name, p.pool_name, p.total_capacity_gb, p.free_capacity_gb, p.provisioned_capacity_gb, p.max_over_subscription_ratio, p.total_volumes, p.backend_state] as unknown[]));
  out += '\npools (from the agent)\n';
  out += pools.length ? table(['BACKEND', 'POOL', 'TOTAL GB', 'FREE GB', 'PROVISIONED GB', 'OVERSUB', 'VOLUMES', 'STATE'], pools) : '  (agent not running: no live capacity)\n';
  out += '\nbackends\n';
  for (const b of r.backends) {
    out += `  ${b.name} (${b.host})\n`;
    const pairs: Array<[string, unknown]> = [
      ['volumes', counts(b.volumes)],
      ['allocated', b.allocated ? `${b.allocated.gigabytes} GiB in ${b.allocated.count} volume(s) (database)` : '-'],
      ['attachments', counts(b.attachments)],
      ['target daemon', targetText(b)],
    ];
    if (b.live) {
      pairs.push(['driver', b.live.driverInitialized ? 'initialized' : 'NOT initialized (see the agent log)']);
      pairs.push(['exports', b.live.exportsError ? `unknown: ${b.live.exportsError}` : `${b.live.exports.length} (${b.live.exports.filter((e) => !e.live).length} recorded but not live)`]);
      pairs.push(['rpc in flight', `${b.live.rpc.inFlight} running, ${b.live.rpc.held} held back`]);
      for (const c of b.live.rpc.calls ?? []) pairs.push(['', `${c.method} ${c.requestId ?? '-'} for ${c.seconds}s`]);
      pairs.push(['locks held', b.live.locks.length ? b.live.locks.join(', ') : 'none']);
      pairs.push(['log level', Object.values(b.live.logLevels).join(',')]);
    }
    else pairs.push(['exports', b.exportsError ? `unknown: ${b.exportsError}` : b.exports ? `${b.exports.length} (${b.exports.filter((e) => !e.live).length} recorded but not live; read without the agent)` : '-']);
    pairs.push(['workers rows', b.workers === null ? '-' : b.workers.length ? b.workers.map((w) => `${w.resource_type} ${w.resource_id} ${w.status}`).join('; ') : 'none']);
    out += keyValues(pairs, '    ');
  }
  return out;
}

export async function statusCommand(sources: ConfigSourceArg[], opts: OutputOptions & { socket?: string }): Promise<void> {
  await runCli(async () => {
    const config = await loadCliConfig(sources);
    if (config.backends.length === 0) throw new CliFailure('enabled_backends is empty in cinder.conf: there is nothing to show', EXIT.usage);
    const report = await collectStatus(config, opts);
    emit(opts, report, () => formatStatus(report));
    return statusExitCode(report);
  });
}
