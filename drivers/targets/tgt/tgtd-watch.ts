// tgtd as the target supervisor watches it.
//
// Probe: `tgtadm --op show --mode sys` (one cheap request on the control port, 5 s timeout) and
// the pid holding tgtd's control lock (tgtd-pid.ts). Nothing answering is a loss; a new pid is a
// loss too (tgtd restarted between two probes: it answers, but without our targets); a timeout is
// not (a stopped or overloaded tgtd is still there, and starting another beside it would fail).
//
// Recover: cinderblock restarts tgtd when it owns it — it started it, now or in an earlier run
// (the pid file ensureTgtd has tgtd write names the tgtd that served) — through ensureTgtd, which
// starts one when nothing answers. A tgtd someone else runs (Debian's tgt.service restarts its
// own on failure) is left to its owner for a grace period; if it is still dead after that,
// cinderblock starts its own rather than leave every export down.
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { someCause } from '../../../src/errors.js';
import { processRunner, type CommandRunner } from '../../../src/exec/run-command.js';
import type { DaemonWatch, ProbeOutcome } from '../target-supervisor.js';
import { isTgtadmError, Tgtadm, TgtadmError } from './tgtadm.js';
import { ensureTgtd, type EnsureTgtdOptions, type EnsureTgtdResult } from './tgtd.js';
import { cinderblockTgtdPidFile, readPidFile, servingTgtdPid } from './tgtd-pid.js';

export interface TgtdWatchOptions {
  /** the portals tgtd must listen on (target_ip_address + iscsi_secondary_ip_addresses, with target_port) */
  portals: string[];
  controlPort?: number;
  /** runs the probe; default the one process runner with a 5 s timeout */
  runner?: CommandRunner;
  /** how long a tgtd cinderblock did not start may stay dead before cinderblock starts its own; default 30 s */
  foreignGraceMs?: number;
  /** tests: stand-ins for starting tgtd and for finding its pid */
  ensure?: (opts: EnsureTgtdOptions) => Promise<EnsureTgtdResult>;
  servingPid?: (controlPort: number) => Promise<number | null>;
  pidFile?: string;
}

export const PROBE_TIMEOUT_MS = 5000;
const DEFAULT_FOREIGN_GRACE_MS = 30_000;

// Two backends on one tgtd must not both start one.
const startLocks = new KeyedMutex();

/** Walks an error's causes for tgtadm's "no tgtd on this control port". */
export function isNoTgtd(err: unknown): boolean {
  return someCause(err, (e) => isTgtadmError(e, 'no-daemon'));
}

export class TgtdWatch implements DaemonWatch {
  readonly name: string;
  private readonly controlPort: number;
  private readonly adm: Tgtadm;
  private readonly ensure: (opts: EnsureTgtdOptions) => Promise<EnsureTgtdResult>;
  private readonly servingPid: (controlPort: number) => Promise<number | null>;
  private readonly pidFile: string;
  private readonly graceMs: number;
  /** the tgtd that serves our targets, as last seen */
  private pid: number | null = null;
  private owned = false;

  constructor(private readonly o: TgtdWatchOptions) {
    this.controlPort = o.controlPort ?? 0;
    this.name = `tgtd on control port ${this.controlPort}`;
    this.adm = new Tgtadm(o.runner ?? processRunner({ timeoutMs: PROBE_TIMEOUT_MS }), { controlPort: this.controlPort });
    this.ensure = o.ensure ?? ensureTgtd;
    this.servingPid = o.servingPid ?? ((p) => servingTgtdPid(p));
    this.pidFile = o.pidFile ?? cinderblockTgtdPidFile(this.controlPort);
    this.graceMs = o.foreignGraceMs ?? DEFAULT_FOREIGN_GRACE_MS;
  }

  /** Whether cinderblock started the tgtd that serves now (tests, diagnostics). */
  ownership(): { pid: number | null; owned: boolean } {
    return { pid: this.pid, owned: this.owned };
  }

  async prepare(): Promise<void> {
    await this.start();
  }

  private async start(): Promise<EnsureTgtdResult> {
    const r = await startLocks.run(String(this.controlPort), () =>
      this.ensure({ portal: this.o.portals, ...(this.controlPort ? { controlPort: this.controlPort } : {}), pidFile: this.pidFile }),
    );
    this.pid = (await this.servingPid(this.controlPort)) ?? r.pid;
    this.owned = r.started || (this.pid !== null && (await readPidFile(this.pidFile)) === this.pid);
    return r;
  }

  async probe(): Promise<ProbeOutcome> {
    let state: string | null;
    try {
      state = (await this.adm.showSystem()).state;
    } catch (err) {
      if (isTgtadmError(err, 'no-daemon')) return { state: 'down', detail: `nothing answers on its control port${this.pid ? ` (pid ${this.pid} gone)` : ''}` };
      return { state: 'unresponsive', detail: err instanceof TgtadmError ? err.stderr.trim().split('\n').pop() || err.message : String(err) };
    }
    if (state !== null && state !== 'ready') return { state: 'starting', detail: `system state ${state}` };
    const now = await this.servingPid(this.controlPort);
    if (now !== null && this.pid !== null && now !== this.pid) {
      const before = this.pid;
      this.pid = now;
      this.owned = (await readPidFile(this.pidFile)) === now;
      return { state: 'lost', detail: `tgtd was restarted (pid ${before} is gone, pid ${now} serves now) and has none of our targets` };
    }
    if (now !== null) this.pid = now;
    return { state: 'up' };
  }

  async recover(downForMs: number): Promise<{ ok: boolean; detail: string }> {
    if (!this.owned && downForMs < this.graceMs) {
      // Someone else's tgtd (systemd's tgt.service restarts it on failure): see whether it is back.
      if (await this.adm.isRunning().catch(() => false)) {
        this.pid = await this.servingPid(this.controlPort);
        return { ok: true, detail: `restarted by its owner${this.pid ? ` (pid ${this.pid})` : ''}` };
      }
      return {
        ok: false,
        detail: `cinderblock did not start this tgtd, so its owner should restart it (systemctl restart tgt); cinderblock starts its own if none answers within ${Math.round(this.graceMs / 1000)} s`,
      };
    }
    const r = await this.start();
    if (!r.started) return { ok: true, detail: `it answers again${this.pid ? ` (pid ${this.pid})` : ''}` };
    return { ok: true, detail: `cinderblock restarted it (pid ${r.pid ?? '?'}, answering after ${r.readyMs ?? '?'} ms)` };
  }

  isDaemonGone(err: unknown): boolean {
    return isNoTgtd(err);
  }
}
