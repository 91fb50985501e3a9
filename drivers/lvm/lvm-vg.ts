// One volume group, as cinder's brick LVM class sees it: its state read with ONE JSON report per
// refresh (cached briefly, dropped by every command that changes the VG) and the operations the
// driver needs, with cinder's retries. No policy here (which type, when to clear, what is busy):
// that is the driver's (lvm-driver.ts). Commands come from lvm-commands.ts, parsing from
// lvm-report.ts, execution from the runner (lvm-runner.ts).
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../src/log.js';
import { log } from '../../src/log.js';
import {
  activateArgv,
  createSnapshotArgv,
  createOnExtentsArgv,
  createThinPoolArgv,
  createVolumeArgv,
  deactivateArgv,
  extendArgv,
  fullReportArgv,
  lvmVersionArgv,
  mergeSnapshotArgv,
  pvSegmentsArgv,
  removeArgv,
  renameArgv,
  tagsArgv,
  udevSettleArgv,
  type ExtentRange,
} from './lvm-commands.js';
import { volumeDeviceNotFound, volumeGroupNotFound, volumeNotDeactivated } from '../../src/errors.js';
import { assertVgName, escapeSnapshotName } from './lvm-names.js';
import {
  LVM_IGNORE_SKIP_ACTIVATION_MIN,
  LVM_SNAPSHOT_ACTIVATION_MIN,
  LVM_THIN_MIN,
  LvmReportError,
  formatLvmGiB,
  hasThickSnapshots,
  lvmGiB,
  parseFullReport,
  parseLvmVersion,
  parsePvSegments,
  pyFloatRepr,
  versionAtLeast,
  type LvInfo,
  type LvmVersion,
  type PvSegment,
  type VgReport,
} from './lvm-report.js';
import { LvmCommandError, lvmMissing, runChecked, withSegfaultRetry, type LvmRunner } from './lvm-runner.js';

export interface LvmVolumeGroupOptions {
  vgName: string;
  runner: LvmRunner;
  /** How long a report stays good when nothing changed the VG through this object (default 1500 ms). */
  cacheTtlMs?: number;
  /** Injected for tests: waits between retries. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  logger?: Logger;
}

/** cinder's utils.retry waits: interval * backoff^(attempt-1). */
function backoff(intervalMs: number, rate: number, attempt: number): number {
  return intervalMs * rate ** (attempt - 1);
}

export class LvmVolumeGroup {
  readonly vgName: string;
  private readonly run: LvmRunner;
  private readonly ttl: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly logger: Logger | undefined;
  private generation = 0;
  private cached: { generation: number; at: number; report: VgReport } | undefined;
  private inflight: { generation: number; promise: Promise<VgReport> } | undefined;
  private versionPromise: Promise<LvmVersion> | undefined;
  /** Reports read from LVM so far (tests and metrics: one per refresh, never one per LV). */
  reportsRead = 0;

  constructor(opts: LvmVolumeGroupOptions) {
    assertVgName(opts.vgName);
    this.vgName = opts.vgName;
    this.sleep = opts.sleep ?? ((ms: number) => delay(ms));
    this.run = withSegfaultRetry(opts.runner, {
      sleep: this.sleep,
      onRetry: (argv, attempt) => this.log().warn({ argv, attempt }, 'LVM command crashed with exit code 139; retrying'),
    });
    this.ttl = opts.cacheTtlMs ?? 1500;
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger;
  }

  private log(): Logger {
    return this.logger ?? log();
  }

  get thinPoolName(): string {
    return `${this.vgName}-pool`;
  }

  // -------------------------------------------------------------------------------------------
  // Version and features

  /** `lvm version`, read once. */
  version(): Promise<LvmVersion> {
    this.versionPromise ??= runChecked(this.run, lvmVersionArgv()).then((r) => {
      const v = parseLvmVersion(r.stdout);
      if (!v) throw new LvmReportError(`lvm version: no "LVM version" line in ${JSON.stringify(r.stdout.slice(0, 200))}`);
      return v;
    });
    this.versionPromise.catch(() => {
      this.versionPromise = undefined;
    });
    return this.versionPromise;
  }

  async supportsThin(): Promise<boolean> {
    return versionAtLeast(await this.version(), LVM_THIN_MIN);
  }

  async supportsIgnoreSkipActivation(): Promise<boolean> {
    return versionAtLeast(await this.version(), LVM_IGNORE_SKIP_ACTIVATION_MIN);
  }

  async supportsSnapshotActivation(): Promise<boolean> {
    return versionAtLeast(await this.version(), LVM_SNAPSHOT_ACTIVATION_MIN);
  }

  // -------------------------------------------------------------------------------------------
  // State

  /** Forget the cached report: the next read runs LVM again. */
  invalidate(): void {
    this.generation++;
    this.cached = undefined;
  }

  /**
   * The VG, its PVs and visible LVs from one `lvm fullreport`. Served from the cache when it is
   * younger than the TTL and nothing changed the VG since; `fresh` always reads anew.
   * Throws VolumeGroupNotFound when the VG does not exist.
   */
  async report(opts: { fresh?: boolean } = {}): Promise<VgReport> {
    const gen = this.generation;
    if (!opts.fresh) {
      if (this.cached && this.cached.generation === gen && this.now() - this.cached.at < this.ttl) return this.cached.report;
      if (this.inflight && this.inflight.generation === gen) return this.inflight.promise;
    }
    const promise = this.readReport().then((report) => {
      if (this.generation === gen) this.cached = { generation: gen, at: this.now(), report };
      return report;
    });
    this.inflight = { generation: gen, promise };
    const clear = (): void => {
      if (this.inflight?.promise === promise) this.inflight = undefined;
    };
    promise.then(clear, clear);
    return promise;
  }

  private async readReport(): Promise<VgReport> {
    const argv = fullReportArgv(this.vgName);
    const r = await this.run(argv);
    this.reportsRead++;
    if (r.exitCode !== 0) {
      // Only LVM's own "Volume group "<vg>" not found" with exit code 5 means the VG is gone; any
      // other failure (a WARNING about a missing PV included) is reported as it is.
      if (lvmMissing(r, { vg: this.vgName }) === 'vg') throw volumeGroupNotFound(this.vgName);
      throw new LvmCommandError(argv, r);
    }
    const report = parseFullReport(r.stdout, this.vgName);
    if (!report) throw volumeGroupNotFound(this.vgName);
    return report;
  }

  async exists(): Promise<boolean> {
    try {
      await this.report({ fresh: true });
      return true;
    } catch (err) {
      if (err instanceof Error && err.name === 'VolumeGroupNotFound') return false;
      throw err;
    }
  }

  /** The visible LV called `name`, or null (cinder's get_volume). */
  async getLv(name: string, opts: { fresh?: boolean } = {}): Promise<LvInfo | null> {
    const report = await this.report(opts);
    return report.lvs.find((lv) => lv.name === name) ?? null;
  }

  /** Every run of extents on the VG's PVs, held or free (`pvs --segments`); never cached. */
  async pvSegments(): Promise<PvSegment[]> {
    return parsePvSegments((await runChecked(this.run, pvSegmentsArgv(this.vgName))).stdout);
  }

  /**
   * Waits until the VG no longer has an LV called `name` (a snapshot whose merge LVM finishes in
   * the background). Looks again after 0.5, 1, 2, 4 and then every 5 s; false if `timeoutMs`
   * passed with the LV still there.
   */
  async waitGone(name: string, timeoutMs: number): Promise<boolean> {
    const deadline = this.now() + timeoutMs;
    for (let wait = 500; ; wait = Math.min(wait * 2, 5000)) {
      if (!(await this.getLv(name, { fresh: true }))) return true;
      if (this.now() >= deadline) return false;
      await this.sleep(wait);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Changes. Each drops the cached report before and after it runs.

  private async mutate(argv: string[], opts?: { timeoutMs?: number }): Promise<void> {
    this.invalidate();
    const started = this.now();
    try {
      await runChecked(this.run, argv, opts);
      this.log().debug({ argv, ms: this.now() - started }, 'LVM command done');
    } catch (err) {
      this.log().debug({ argv, err }, 'LVM command failed');
      throw err;
    } finally {
      this.invalidate();
    }
  }

  /**
   * cinder's create_thin_pool: `lvcreate -T -L <size> <vg>/<pool>`, size by default 95% of the
   * VG's free space as cinder computes it ("%sg" % (vg_free * 0.95), Python float repr).
   * Returns the size string used.
   */
  async createThinPool(pool: string = this.thinPoolName, size?: string): Promise<string> {
    let sizeStr = size;
    if (sizeStr === undefined) {
      const report = await this.report({ fresh: true });
      sizeStr = `${pyFloatRepr(lvmGiB(report.freeBytes) * 0.95)}g`;
    }
    await this.mutate(createThinPoolArgv(this.vgName, pool, sizeStr));
    return sizeStr;
  }

  /** cinder's create_volume: thick, thin (in `thinPool`) and/or mirrored. */
  async createVolume(name: string, sizeGb: number, opts: { thinPool?: string | null; mirrors?: number } = {}): Promise<void> {
    await this.mutate(createVolumeArgv({ vg: this.vgName, name, sizeGb, thinPool: opts.thinPool ?? null, mirrors: opts.mirrors ?? 0 }));
  }

  /**
   * cinder's create_lv_snapshot (tried 3 times, 1 s then 2 s apart): a thick snapshot gets
   * `-L <origin size>g`, a thin one shares the pool. VolumeDeviceNotFound if `source` is absent.
   */
  async createSnapshot(name: string, source: string, opts: { thin: boolean }): Promise<void> {
    await this.retry(3, 1000, 2, async () => {
      const src = await this.getLv(source, { fresh: true });
      if (!src) {
        this.log().error({ source }, 'Trying to create snapshot by non-existent LV');
        throw volumeDeviceNotFound(source);
      }
      const size = opts.thin ? null : `${formatLvmGiB(src.sizeBytes)}g`;
      await this.mutate(createSnapshotArgv(this.vgName, name, source, size));
    }, (err) => err instanceof LvmCommandError);
  }

  /**
   * cinder's activate_lv (tried 5 times, 1/2/4/8 s apart): `lvchange -a y --yes -K`, or `-k n`
   * when `permanent` (thin clones: activate at boot from now on). Names starting `snapshot` are
   * escaped as cinder's _mangle_lv_name does.
   */
  async activate(name: string, opts: { permanent?: boolean; isSnapshot?: boolean } = {}): Promise<void> {
    if (opts.isSnapshot && !(await this.supportsSnapshotActivation())) return;
    const ignoreSkip = await this.supportsIgnoreSkipActivation();
    const argv = activateArgv(this.vgName, escapeSnapshotName(name), { permanent: opts.permanent, ignoreSkipActivationSupported: ignoreSkip });
    await this.retry(5, 1000, 2, () => this.mutate(argv), (err) => err instanceof LvmCommandError);
  }

  /** cinder's deactivate_lv: `lvchange -a n`, then wait until LVM reports the LV inactive. */
  async deactivate(name: string): Promise<void> {
    const lv = escapeSnapshotName(name);
    await this.mutate(deactivateArgv(this.vgName, lv));
    await this.waitInactive(lv);
  }

  /** cinder's _wait_for_volume_deactivation: 5 looks, 1/2/4/8 s apart; VolumeNotDeactivated after. */
  private async waitInactive(name: string): Promise<void> {
    await this.retry(5, 1000, 2, async () => {
      const lv = await this.getLv(name, { fresh: true });
      if (lv?.active) throw volumeNotDeactivated(name);
    }, (err) => err instanceof Error && err.name === 'VolumeNotDeactivated');
  }

  /**
   * cinder's extend_volume: an LV with thick snapshots (attr o/O) can only grow while inactive,
   * so it is deactivated around `lvextend -L <size>`. Thin origins (attr V) are not.
   */
  async extend(name: string, size: string): Promise<void> {
    const lv = await this.getLv(name, { fresh: true });
    const hasSnapshot = lv !== null && hasThickSnapshots(lv);
    if (hasSnapshot) await this.deactivate(name);
    await this.mutate(extendArgv(this.vgName, name, size));
    if (hasSnapshot) await this.activate(name);
  }

  /**
   * cinder's delete (tried 3 times, 1 s then 2 s apart): `lvremove --config 'activation {
   * retry_deactivation = 1} ' -f`; when that fails, `udevadm settle` and once more with
   * `devices { ignore_suspended_devices = 1}` added.
   */
  async remove(name: string): Promise<void> {
    await this.retry(3, 1000, 2, async () => {
      try {
        await this.mutate(removeArgv(this.vgName, name));
      } catch (err) {
        if (!(err instanceof LvmCommandError)) throw err;
        this.log().debug({ argv: err.argv, stderr: err.stderr }, 'lvremove failed; udevadm settle and retry');
        await this.udevSettle();
        await this.mutate(removeArgv(this.vgName, name, { retry: true }));
        this.log().debug({ name }, 'deleted volume after udev settle');
      }
    }, (err) => err instanceof LvmCommandError);
  }

  /** `udevadm settle` (cinder runs it through privsep; its failure is an error there too). */
  async udevSettle(): Promise<void> {
    await runChecked(this.run, udevSettleArgv());
  }

  /**
   * cinder's revert: `lvconvert --merge <vg>/<snapshot>`. With the origin closed LVM merges now
   * and removes the snapshot; with it open the merge waits for the origin's next activation.
   * No time limit: lvconvert waits for the merge to finish.
   */
  async mergeSnapshot(snapshot: string): Promise<void> {
    await this.mutate(mergeSnapshotArgv(this.vgName, snapshot), { timeoutMs: 0 });
  }

  /** A linear LV on exactly `ranges` (createOnExtentsArgv): only free extents can be taken. */
  async createOnExtents(name: string, ranges: readonly ExtentRange[]): Promise<void> {
    await this.mutate(createOnExtentsArgv(this.vgName, name, ranges));
  }

  /** Adds `tags` to LV `name` in one `lvchange` (one metadata commit). */
  async addTags(name: string, tags: readonly string[]): Promise<void> {
    await this.mutate(tagsArgv(this.vgName, name, 'add', tags));
  }

  /** Removes `tags` from LV `name` in one `lvchange`. */
  async deleteTags(name: string, tags: readonly string[]): Promise<void> {
    await this.mutate(tagsArgv(this.vgName, name, 'delete', tags));
  }

  /** cinder's rename_volume: `lvrename <vg> <old> <new>`. */
  async rename(oldName: string, newName: string): Promise<void> {
    await this.mutate(renameArgv(this.vgName, oldName, newName));
  }

  // -------------------------------------------------------------------------------------------

  /** cinder's utils.retry: `attempts` tries in all, waiting interval * rate^(n-1) after try n. */
  private async retry<T>(attempts: number, intervalMs: number, rate: number, fn: () => Promise<T>, retryable: (err: unknown) => boolean): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= attempts || !retryable(err)) throw err;
        const wait = backoff(intervalMs, rate, attempt);
        this.log().debug({ attempt, waitMs: wait, err }, 'LVM operation failed; retrying');
        await this.sleep(wait);
      }
    }
  }
}
