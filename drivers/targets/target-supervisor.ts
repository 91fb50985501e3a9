// Keeps watching the target daemon once a backend has used it, because its readiness does not
// last: tgtd can be killed (and with it every target, CHAP account and ACL the agent made), and
// LIO's configfs can be cleared under us. Every few seconds the supervisor asks the daemon's
// watch (tgt: one tgtadm call; LIO: our record against configfs) whether it still serves what we
// made. On a loss it logs one line for the operator, gets the daemon back where the agent may
// (the watch decides: tgtd is restarted when cinderblock started it), then has every export
// restored by the restore hook, which the composition root wires to the manager: only the
// manager knows, from the database, which initiators are attached. Which argv, which files and
// which daemon stay on this side.
//
// An operation that meets a dead daemon between two probes does not wait for the next one: it
// reports it (`troubleNoticed`), which probes at once.
import type { Logger } from '../../src/log.js';

export type ProbeOutcome =
  /** serving what we made */
  | { state: 'up' }
  /** answers but is not ready yet (tgt.service holds tgtd offline while tgt-admin loads targets) */
  | { state: 'starting'; detail: string }
  /** does not answer in time: stopped or overloaded, not dead; nothing is restarted */
  | { state: 'unresponsive'; detail: string }
  /** nothing answers */
  | { state: 'down'; detail: string }
  /** answers, but without our exports (restarted, configuration cleared) */
  | { state: 'lost'; detail: string };

/** One target daemon as the supervisor sees it. */
export interface DaemonWatch {
  /** For log lines: `tgtd on control port 3260`, `LIO (configfs)`. */
  readonly name: string;
  /** Before the first operation: make the daemon answer (start tgtd, mend LIO from our record). */
  prepare(): Promise<void>;
  probe(): Promise<ProbeOutcome>;
  /**
   * The daemon is down: bring it back if the agent may. `ok: false` says why not yet (someone
   * else's daemon, which its owner restarts); the supervisor tries again at the next probe.
   */
  recover(downForMs: number): Promise<{ ok: boolean; detail: string }>;
  /** Does an operation's error mean the daemon went away under it? */
  isDaemonGone(err: unknown): boolean;
  /** After a restore: what is still missing now is not a new loss (exports no volume needs). */
  settle?(): Promise<void>;
}

export interface RestoreCounts {
  /** volumes looked at */
  volumes: number;
  /** exports rebuilt or checked */
  restored: number;
  failed: number;
}

/** Restores every export of the backend with the initiators the database says are attached. */
export type RestoreExports = (reason: string) => Promise<RestoreCounts>;

export interface TargetSupervisorOptions {
  logger: Logger;
  /** between probes; default 3 s */
  intervalMs?: number;
  /** first retry of a restore that left failures; doubles up to 60 s. Default 5 s. */
  retryMs?: number;
}

export const DEFAULT_PROBE_INTERVAL_MS = 3000;
const MAX_RETRY_MS = 60_000;

export class TargetSupervisor {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly retryBaseMs: number;
  private restore: RestoreExports | null = null;
  private preparing: Promise<void> | null = null;
  private armed = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private down: { since: number; detail: string; reported: string | null } | null = null;
  private unresponsiveSince: number | null = null;
  private restoring: Promise<void> | null = null;
  /** a restore is owed (loss not fully repaired): when to try it next */
  private restoreDue: { at: number; delayMs: number; reason: string; lostAt: number } | null = null;
  private losses = 0;
  /** bumped at every return of the daemon: a restore that began before the last one is stale */
  private generation = 0;

  constructor(
    readonly watch: DaemonWatch,
    opts: TargetSupervisorOptions,
  ) {
    this.log = opts.logger;
    this.intervalMs = opts.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.retryBaseMs = opts.retryMs ?? 5000;
  }

  /** Wire the manager's restore (the composition root does, once the manager exists). */
  setRestore(fn: RestoreExports): void {
    this.restore = fn;
  }

  /** How many losses were seen, and whether the daemon counts as up now (tests, diagnostics). */
  status(): { armed: boolean; up: boolean; losses: number; restoring: boolean } {
    return { armed: this.armed, up: this.down === null, losses: this.losses, restoring: this.restoring !== null };
  }

  /**
   * Resolves when the daemon may be used. The first call prepares it and starts the probes; later
   * calls return at once while it is up. While it is down this probes (and restarts it where the
   * agent may) and throws, with what the operator can do, if it is still down. Never waits for
   * the restore of exports: that takes the volumes' connection locks, which a caller may hold.
   */
  async ready(): Promise<void> {
    if (!this.armed) {
      this.preparing ??= this.watch.prepare().then(
        () => this.arm(),
        (err: unknown) => {
          this.preparing = null; // try again next time
          throw err;
        },
      );
      await this.preparing;
      return;
    }
    if (this.down === null) return;
    await this.checkNow();
    if (this.down !== null) {
      throw new Error(`${this.watch.name} is not answering (${this.down.detail}); exports come back by themselves once it does`);
    }
  }

  /** An operation failed as if the daemon were gone: probe now rather than at the next tick. */
  async troubleNoticed(): Promise<void> {
    if (this.armed) await this.checkNow();
  }

  /** One probe and what follows from it; concurrent callers share it. */
  checkNow(): Promise<void> {
    this.ticking ??= this.tick().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  /** The restore in flight, if any (tests wait for it). */
  async idle(): Promise<void> {
    while (this.ticking || this.restoring) {
      await this.ticking;
      await this.restoring;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.armed || this.stopped) return;
    this.armed = true;
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => void this.checkNow(), this.intervalMs);
      this.timer.unref();
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let outcome: ProbeOutcome;
    try {
      outcome = await this.watch.probe();
    } catch (err) {
      outcome = { state: 'unresponsive', detail: err instanceof Error ? err.message : String(err) };
    }
    if (outcome.state !== 'unresponsive' && this.unresponsiveSince !== null) {
      this.log.info({ target: this.watch.name }, `${this.watch.name} answers again`);
      this.unresponsiveSince = null;
    }
    switch (outcome.state) {
      case 'up':
        if (this.down) this.back('it answers again');
        else this.maybeRetryRestore();
        return;
      case 'starting':
        this.log.debug({ target: this.watch.name, detail: outcome.detail }, 'target daemon is starting');
        return;
      case 'unresponsive':
        if (this.unresponsiveSince === null) {
          this.unresponsiveSince = Date.now();
          this.log.warn(
            { target: this.watch.name, detail: outcome.detail },
            `${this.watch.name} does not answer in time (${outcome.detail}); it is not restarted while it may still be running. Check it (stopped? overloaded?)`,
          );
        }
        return;
      case 'lost':
        this.lost(outcome.detail);
        this.back('it answers, without our exports');
        return;
      case 'down':
        this.lost(outcome.detail);
        await this.tryRecover();
        return;
    }
  }

  private lost(detail: string): void {
    if (this.down) {
      this.down.detail = detail;
      return;
    }
    this.losses += 1;
    this.down = { since: Date.now(), detail, reported: null };
    this.log.error(
      { target: this.watch.name, reason: detail, event: 'target-daemon-lost' },
      `target daemon lost: ${this.watch.name}: ${detail}. Initiators cannot log in until it is back; cinderblock restores every export with the initiators the database says are attached`,
    );
  }

  private async tryRecover(): Promise<void> {
    const down = this.down;
    if (!down) return;
    let r: { ok: boolean; detail: string };
    try {
      r = await this.watch.recover(Date.now() - down.since);
    } catch (err) {
      r = { ok: false, detail: `restarting it failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (r.ok) {
      this.back(r.detail);
      return;
    }
    if (down.reported !== r.detail) {
      down.reported = r.detail;
      this.log.error({ target: this.watch.name, reason: r.detail }, `${this.watch.name} is still down: ${r.detail}`);
    }
  }

  /** The daemon serves again: restore every export (in the background; see ready()). */
  private back(detail: string): void {
    const lostAt = this.down?.since ?? Date.now();
    const reason = this.down?.detail ?? detail;
    this.down = null;
    this.generation += 1;
    this.log.warn({ target: this.watch.name, detail, event: 'target-daemon-back' }, `${this.watch.name} is back (${detail}); restoring exports`);
    this.restoreDue = { at: 0, delayMs: this.retryBaseMs, reason, lostAt };
    this.maybeRetryRestore();
  }

  private maybeRetryRestore(): void {
    const due = this.restoreDue;
    if (!due || this.restoring || Date.now() < due.at) return;
    const restore = this.restore;
    if (!restore) {
      this.log.error({ target: this.watch.name }, `${this.watch.name} lost its exports but no restore is wired; restart cinderblock to restore them`);
      this.restoreDue = null;
      return;
    }
    const generation = this.generation;
    this.restoring = (async () => {
      const t0 = Date.now();
      try {
        const c = await restore(`${this.watch.name} lost: ${due.reason}`);
        if (generation !== this.generation) return; // lost again meanwhile: the next restore counts
        await this.watch.settle?.().catch((err: unknown) => this.log.warn({ err, target: this.watch.name }, 'could not re-read the target after the restore'));
        const fields = { target: this.watch.name, volumes: c.volumes, restored: c.restored, failed: c.failed, restore_ms: Date.now() - t0, outage_ms: Date.now() - due.lostAt, event: 'target-exports-restored' };
        if (c.failed === 0) {
          this.restoreDue = null;
          this.log.info(fields, `target daemon recovered: ${this.watch.name} serves again; ${c.restored} export(s) restored for ${c.volumes} volume(s) in ${Date.now() - t0} ms`);
        } else {
          this.restoreDue = { ...due, at: Date.now() + due.delayMs, delayMs: Math.min(due.delayMs * 2, MAX_RETRY_MS) };
          this.log.error(
            fields,
            `${this.watch.name} serves again but ${c.failed} export(s) could not be restored (${c.restored} restored); retrying in ${Math.round(due.delayMs / 1000)} s. The volumes' log lines say why`,
          );
        }
      } catch (err) {
        this.restoreDue = { ...due, at: Date.now() + due.delayMs, delayMs: Math.min(due.delayMs * 2, MAX_RETRY_MS) };
        this.log.error({ err, target: this.watch.name }, `restoring the exports after the loss of ${this.watch.name} failed; retrying in ${Math.round(due.delayMs / 1000)} s`);
      } finally {
        this.restoring = null;
        if (generation !== this.generation) this.maybeRetryRestore();
      }
    })();
  }
}
