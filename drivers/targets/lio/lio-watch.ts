// LIO as the target supervisor watches it. There is no daemon to restart: the kernel serves
// configfs, and what can be lost is our part of it (`targetctl clear`, a target module reloaded,
// someone's `targetcli clearconfig`). So the probe compares our record with configfs (a readdir,
// then one target read per IQN that looks missing), and recovery is only the restore of exports,
// which the supervisor has the manager run from the database.
//
// An IQN still missing after a restore (a record entry of a volume that needs no export any
// more) is not a new loss at every probe: it is noted after each restore (settle) and reported
// again only if it comes back and goes again.
import { someCause } from '../../../src/errors.js';
import { log } from '../../../src/log.js';
import type { DaemonWatch, ProbeOutcome } from '../target-supervisor.js';
import type { LioTarget } from './lio-target.js';
import { errno } from './configfs.js';

export class LioWatch implements DaemonWatch {
  private accepted = new Set<string>();
  private hostTargets: (() => Promise<string[]>) | null = null;

  /**
   * `lio` is any configfs helper that keeps its own record and can say what of it configfs lacks:
   * the nvmet helper (nvmet-target.ts) is watched the same way, under its own name.
   */
  constructor(
    private readonly lio: Pick<LioTarget, 'reconcile' | 'missingExports'>,
    readonly name: string = 'LIO (configfs)',
  ) {}

  /**
   * target_layout = per-host: host targets are not in our per-volume record (their registry is),
   * so the exports tell which of them are gone from configfs; a loss then gets the same restore.
   */
  watchHostTargets(missing: () => Promise<string[]>): void {
    this.hostTargets = missing;
  }

  private async missing(): Promise<string[]> {
    const perVolume = await this.lio.missingExports();
    return this.hostTargets ? [...perVolume, ...(await this.hostTargets())] : perVolume;
  }

  /** Before the first operation: mend our exports from the record (configfs is empty after a boot). */
  async prepare(): Promise<void> {
    const r = await this.lio.reconcile();
    if (r.mended.length > 0 || r.failed.length > 0) {
      log().info({ mended: r.mended.length, failed: r.failed.length }, `${this.name}: exports mended from our record`);
    }
    await this.settle();
  }

  async probe(): Promise<ProbeOutcome> {
    const missing = await this.missing();
    // back in configfs: if it goes again, that is a new loss
    const now = new Set(missing);
    for (const iqn of this.accepted) if (!now.has(iqn)) this.accepted.delete(iqn);
    const fresh = missing.filter((iqn) => !this.accepted.has(iqn));
    if (fresh.length === 0) return { state: 'up' };
    return { state: 'lost', detail: `${fresh.length} of our targets are gone from configfs or no longer serve (TPG disabled)` };
  }

  /** Nothing to restart: configfs is the kernel's. The restore rebuilds what is needed. */
  async recover(): Promise<{ ok: boolean; detail: string }> {
    return { ok: true, detail: 'configfs answers' };
  }

  /**
   * No daemon can go, but our part of configfs can vanish under a change (a `targetcli
   * clearconfig` while a LUN is unmapped): the change then fails with ENOENT. That asks the
   * supervisor for a probe, and the change is tried once more, on the rebuilt state, if the probe
   * found a loss. An ENOENT with nothing lost costs one probe and fails the same way again.
   */
  isDaemonGone(err: unknown): boolean {
    return someCause(err, (e) => errno(e) === 'ENOENT');
  }

  async settle(): Promise<void> {
    this.accepted = new Set(await this.missing());
  }
}
