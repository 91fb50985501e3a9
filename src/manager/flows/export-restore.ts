// The restore of exports, run in the background while RPC is served (the PendingRestore of
// common.ts). Two kinds of round feed it:
//  - start-up (init-host.ts): every volume of the host, with init_host's rules;
//  - a lost target daemon (the target supervisor calls restoreAll): every volume that should be
//    exported gets ensure_export with exactly the initiators the database says are attached.
// A volume is restored holding its connection lock (connection-locks.ts), taken directly: the
// connection flows call restoreFirst before they take that lock, so a connection call for a
// volume the round has not reached yet restores that volume first (or waits for its restore in
// flight), and a restore never runs beside an attach or a detach of the same volume.
import { forEachLimited } from '../../concurrency/for-each-limited.js';
import { attachedInitiators } from './attached-initiators.js';
import { driverVolume, errorMessage, isOurs, type FlowDeps, type PendingRestore } from './common.js';
import { volumeConnectionLockName } from './connection-locks.js';

// Volumes restored at once. Each is a few DB queries and a check (or a rebuild) of its export,
// mostly waiting on the database and the target.
export const RECOVERY_CONCURRENCY = 8;

export type RestoreOutcome = 'restored' | 'failed' | 'skipped';

export interface RestoreCounts {
  /** volumes looked at */
  volumes: number;
  /** exports checked or rebuilt */
  restored: number;
  failed: number;
}

export interface RestoreJob {
  volumeId: string;
  /** restores this one volume; runs holding its connection lock; never throws on purpose */
  run(): Promise<RestoreOutcome>;
}

export interface ExportRestoreOptions {
  /** volumes restored at once by a background round; default RECOVERY_CONCURRENCY */
  concurrency?: number;
  /**
   * Injection point for tests: awaited before each volume's restore, holding its connection lock,
   * with how the volume was reached (`background` order, or `first` through restoreFirst).
   */
  beforeVolume?: (volumeId: string, how: 'background' | 'first') => Promise<void>;
}

interface Round {
  counts: RestoreCounts;
}

interface Pending {
  /** start-up jobs carry init_host's recovery, which a later loss round must not drop */
  kind: 'start' | 'loss';
  run: () => Promise<RestoreOutcome>;
  round: Round;
}

// Statuses in which a volume never has an export a lost daemon must get back. A volume that is
// attached later gets its export from that attach, which waits for the daemon.
const NEVER_EXPORTED = new Set(['available', 'creating', 'downloading', 'deleting', 'deleted', 'error', 'error_deleting', 'error_managing']);

export class ExportRestore implements PendingRestore {
  private readonly pending = new Map<string, Pending>();
  private readonly inFlight = new Map<string, Promise<void>>();
  /** work every restore waits for (the start-up sweep of leftovers) */
  private gate: Promise<void> = Promise.resolve();
  private readonly concurrency: number;
  private closed = false;

  constructor(
    private readonly deps: FlowDeps,
    private readonly opts: ExportRestoreOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? RECOVERY_CONCURRENCY;
  }

  /** Volumes queued and not started yet (tests, diagnostics). */
  pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Queue `jobs` and work through them in the background, `before` first (every restore, the
   * ones restoreFirst asks for included, waits for it). Resolves with the round's counts.
   */
  startRound(kind: 'start' | 'loss', jobs: readonly RestoreJob[], opts: { before?: () => Promise<void> } = {}): Promise<RestoreCounts> {
    const round: Round = { counts: { volumes: 0, restored: 0, failed: 0 } };
    for (const j of jobs) {
      const queued = this.pending.get(j.volumeId);
      if (queued?.kind === 'start') queued.round = round;
      else this.pending.set(j.volumeId, { kind, run: () => j.run(), round });
    }
    const before = opts.before;
    if (before) {
      this.gate = this.gate.then(before).catch((err: unknown) => {
        this.deps.logger.error({ err }, `start-up sweep of leftover exports failed: ${errorMessage(err)}; restoring exports anyway`);
      });
    }
    const gate = this.gate;
    return (async () => {
      await gate;
      await forEachLimited(jobs, this.concurrency, (j) => this.visit(j.volumeId, 'background'));
      return round.counts;
    })();
  }

  /** Stop starting restores (the agent is stopping) and wait for those in flight. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    await Promise.all([...this.inFlight.values()]);
  }

  /** PendingRestore: resolves once `volumeId` needs no restore (now, or after restoring it). */
  async restoreFirst(volumeId: string): Promise<void> {
    await this.gate;
    await this.visit(volumeId, 'first');
  }

  /**
   * After a lost target daemon: ensure_export, with the database's initiators, for every volume
   * of this backend that should have an export.
   */
  async restoreAll(reason: string): Promise<RestoreCounts> {
    const deps = this.deps;
    if (!deps.service.driverInitialized) return { volumes: 0, restored: 0, failed: 0 };
    const volumes = (await deps.db.volumes.listByHost(deps.service.host)).filter((v) => !NEVER_EXPORTED.has(v.status ?? ''));
    deps.logger.warn({ volumes: volumes.length, reason }, `restoring the exports of ${volumes.length} volume(s): ${reason}`);
    return this.startRound(
      'loss',
      volumes.map((v) => ({ volumeId: v.id, run: () => restoreAfterLoss(deps, v.id) })),
    );
  }

  private async visit(volumeId: string, how: 'background' | 'first'): Promise<void> {
    while (!this.closed) {
      const running = this.inFlight.get(volumeId);
      if (running) {
        await running;
        continue; // a later round may have queued it again meanwhile
      }
      const job = this.pending.get(volumeId);
      if (!job) return;
      this.pending.delete(volumeId);
      const p = this.execute(volumeId, job, how).finally(() => this.inFlight.delete(volumeId));
      this.inFlight.set(volumeId, p);
      await p;
    }
  }

  private async execute(volumeId: string, job: Pending, how: 'background' | 'first'): Promise<void> {
    let outcome: RestoreOutcome;
    try {
      outcome = await this.deps.locks.run(volumeConnectionLockName(volumeId), async () => {
        await this.opts.beforeVolume?.(volumeId, how);
        return job.run();
      });
    } catch (err) {
      this.deps.logger.error({ err, volume_id: volumeId }, `restoring the export of volume ${volumeId} failed: ${errorMessage(err)}`);
      outcome = 'failed';
    }
    const c = job.round.counts;
    c.volumes += 1;
    if (outcome === 'restored') c.restored += 1;
    else if (outcome === 'failed') c.failed += 1;
  }
}

/**
 * One volume after its target daemon lost everything: export it again when it is in use or has
 * attached initiators, admitting exactly those. A failure changes no status (the daemon may come
 * back fully at the next try); the supervisor retries.
 */
export async function restoreAfterLoss(deps: FlowDeps, volumeId: string): Promise<RestoreOutcome> {
  const vol = await deps.db.volumes.find(volumeId);
  if (!vol || !isOurs(deps, vol.host)) return 'skipped';
  const { initiators, hostNqns, connectors, given } = await attachedInitiators(deps, volumeId);
  if (vol.status !== 'in-use' && initiators.length === 0 && hostNqns.length === 0) return 'skipped';
  try {
    await deps.exports.ensureExport(driverVolume(vol), initiators, connectors, given);
    return 'restored';
  } catch (err) {
    deps.logger.error(
      { err, volume_id: volumeId },
      `Could not restore the export of volume ${volumeId} after the target daemon's loss (${errorMessage(err)}); it is retried, and its initiators cannot log in until then`,
    );
    return 'failed';
  }
}
