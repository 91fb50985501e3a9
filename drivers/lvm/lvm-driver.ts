// cinder's LVMVolumeDriver (cinder/volume/drivers/lvm.py, Zed) on cinderblock's VolumeDriver
// contract: one volume group, volumes `volume-<id>`, snapshots `_snapshot-<id>`, thick or thin
// (`<vg>-pool`), the same LVM commands, the same capability figures. Because the names and the
// layout are cinder's, a VG that cinder-volume managed is managed as it is: an operator can stop
// cinder-volume and start cinderblock on the same host.
//
// Deliberate differences from cinder (each explained where it is implemented):
//  - lvm_type=auto decides before creating anything: thin when LVM supports it and the pool
//    exists or the VG has no LVs, else default. (Zed constructs its LVM helper with 'thin' first,
//    which creates `<vg>-pool` on any VG, and so ends up thin whenever the pool could be made.)
//  - volume_clear=zero runs BLKZEROOUT through the native addon instead of `dd if=/dev/zero`;
//    volume_clear_ionice has no equivalent and is ignored.
//  - mirror free space is computed from the PVs' free space now, not at start-up.
//  - the copy for thick clones goes through the injected `copy` function (the copy engine).
//  - a thick revert zeroes the extents that held the merged snapshot's exception store. cinder
//    lets LVM free them as they are, so the volume's old data (what the snapshot had kept) could
//    be read by whichever LV is given those extents next, another tenant's volume included. Here
//    the extents are recorded before `lvconvert --merge`, held by a temporary LV
//    (`_cinderblock-wipe-<snapshot id>`) once the merge has finished, zeroed and released; no
//    other LV of this driver can be allocated in between. With volume_clear=none nothing is
//    zeroed, as for deletes: the exposure is then the operator's choice.
//    The extents are also recorded on the origin as LVM tags (`cinderblock_wipe_*`, one
//    lvchange before the merge), removed once the wipe LV holds them: an agent that dies in
//    between leaves the record in LVM's metadata, not only in its log.
//  - at start-up, temporary LVs an agent that died midway left behind are finished off: a
//    `_cinderblock-wipe-*` LV is zeroed and removed, a thick `clone-snap-*` snapshot has its
//    exception store zeroed and is removed (cinder leaves both for the operator), and extents
//    recorded in `cinderblock_wipe_*` tags are zeroed where still free.
import { hostname as osHostname } from 'node:os';
import { access, readFile, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from '../../src/log.js';
import { log } from '../../src/log.js';
import { blockDeviceSize, zeroOutRange } from '../../src/native/index.js';
import type { BackendObject, BackendStats, CloneSource, DriverMigration, DriverSnapshot, DriverVolume, ModelUpdate, PoolStats, VolumeDriver } from '../driver.js';
import { volumePathOnHost } from '../location-info.js';
import { formatOverSubscriptionRatio } from '../capacity.js';
import { gibSize } from './lvm-commands.js';
import {
  invalidConfigurationValue, invalidParameterValue, manageExistingInvalidReference, notImplementedError as notImplemented, volumeBackendApiException,
  volumeIsBusy,
} from '../../src/errors.js';
import type { ExtentRange } from './lvm-commands.js';
import {
  CLONE_SNAPSHOT_PREFIX, WIPE_LV_PREFIX, assertLvName, cloneSnapshotName, decodeWipeTag, dmName, encodeWipeTags, escapeSnapshotName, exportPath,
  isWipeTag, mapperPath, recoveryWipeLvName, unescapeSnapshotName, wipeLvName,
} from './lvm-names.js';
import {
  LVM_MINIMUM, extentCount, firstExtents, freeExtentsWithin, hasThickSnapshots, holdersWithin, isThickSnapshot, lvExtents,
  lvmGiB, pyRound, thinPoolFreeGiB, versionAtLeast, type LvInfo, type PvSegment, type VgReport,
} from './lvm-report.js';
import { LvmCommandError, lvmCommandRunner, type LvmRunner } from './lvm-runner.js';
import { AllocationGate } from '../../src/concurrency/allocation-gate.js';
import { LvmVolumeGroup } from './lvm-vg.js';
import { simpleCopy, type VolumeCopyFn } from './volume-copy.js';

export type { CloneSource } from '../driver.js';

export type LvmType = 'default' | 'thin' | 'auto';

/** The block-device operations the driver needs; the native addon by default. */
export interface BlockDeviceOps {
  /** BLKZEROOUT of [offset, offset+length). */
  zeroOut(device: string, offset: number, length: number): Promise<void>;
  /** Size in bytes (BLKGETSIZE64). */
  size(device: string): Promise<number>;
  exists(path: string): Promise<boolean>;
  /** The device-mapper name of the device `path` resolves to; null when none or not device-mapper. */
  dmNameOf(path: string): Promise<string | null>;
}

export const nativeBlockDeviceOps: BlockDeviceOps = {
  zeroOut: (device, offset, length) => zeroOutRange(device, offset, length),
  size: (device) => blockDeviceSize(device),
  exists: async (path) => {
    try {
      await access(path);
      return true;
    } catch {
      return false;
    }
  },
  dmNameOf: async (path) => {
    try {
      const dev = basename(await realpath(path));
      return (await readFile(`/sys/class/block/${dev}/dm/name`, 'utf8')).trim() || null;
    } catch {
      return null;
    }
  },
};

export interface LvmDriverOptions {
  /** volume_group (cinder default `cinder-volumes`). */
  volumeGroup: string;
  /** lvm_type (cinder default `auto`). */
  lvmType: LvmType;
  /** lvm_mirrors (default 0). */
  lvmMirrors?: number;
  /** lvm_conf_file (default /etc/cinder/lvm.conf; null or 'None' for none). Used when `runner` is not given. */
  lvmConfFile?: string | null;
  /** lvm_suppress_fd_warnings. Used when `runner` is not given. */
  lvmSuppressFdWarnings?: boolean;
  /** volume_clear: 'zero' (default) or 'none'. */
  volumeClear?: string;
  /** volume_clear_size in MiB; 0 = the whole volume. */
  volumeClearSize?: number;
  /** volume_dd_blocksize, handed to the copy function (default '1M'). */
  volumeDdBlocksize?: string;
  /** volume_backend_name; cinder's LVM driver uses 'LVM' when it is unset. Also the pool name. */
  backendName?: string | null;
  /** Host name in location_info (cinder: socket.gethostname()). */
  hostname?: string;
  reservedPercentage?: number;
  /** max_over_subscription_ratio as configured: a string is reported verbatim (cinder's StrOpt). */
  maxOverSubscriptionRatio?: string | number;
  /** 'iSCSI' for target_protocol iscsi (the target driver's protocol name). */
  storageProtocol?: string;
  filterFunction?: string | null;
  goodnessFunction?: string | null;

  /** How LVM commands run (default: the one process runner with cinder's LVM environment). */
  runner?: LvmRunner;
  /** How volumes are copied (thick clone / volume from snapshot); default simpleCopy. */
  copy?: VolumeCopyFn;
  /**
   * The generic revert's copy of `bytes` from one device to another (copyData); default `copy`,
   * dense and synced.
   */
  copyData?: (src: string, dst: string, bytes: number) => Promise<void>;
  blockDevice?: BlockDeviceOps;
  /**
   * How long a thick revert waits for LVM to finish a merge it deferred to the origin's
   * re-activation before giving up on zeroing the snapshot's extents (default 1 hour).
   */
  mergeWaitMs?: number;
  /** Report cache lifetime (default 1500 ms). */
  cacheTtlMs?: number;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
}

/** manage_existing's reference: `{"source-name": "<LV in the VG>"}`, as cinder's LVM driver takes it. */
function manageSourceName(ref: Record<string, unknown>): string {
  const name = ref['source-name'];
  if (typeof name !== 'string' || name === '') throw manageExistingInvalidReference(ref, 'source-name is required');
  return name;
}

export const LVM_DRIVER_VERSION = '3.0.0';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const HOUR_MS = 3600_000;

export class LvmVolumeDriver implements VolumeDriver {
  readonly className = 'LVMVolumeDriver';
  readonly vg: LvmVolumeGroup;
  private readonly opts: LvmDriverOptions;
  private readonly copy: VolumeCopyFn;
  private readonly blockDevice: BlockDeviceOps;
  private readonly mirrors: number;
  private readonly backendName: string;
  private readonly hostname: string;
  private resolvedType: 'default' | 'thin' | null = null;
  private sparseCopyVolume = false;
  /** Allocations against the revert's window between a merge and the wipe LV (AllocationGate). */
  readonly allocation = new AllocationGate();

  constructor(opts: LvmDriverOptions) {
    this.opts = opts;
    this.mirrors = opts.lvmMirrors ?? 0;
    this.backendName = opts.backendName || 'LVM';
    this.hostname = opts.hostname ?? osHostname();
    this.copy = opts.copy ?? simpleCopy;
    this.blockDevice = opts.blockDevice ?? nativeBlockDeviceOps;
    const runner =
      opts.runner ??
      lvmCommandRunner({
        lvmConfFile: opts.lvmConfFile,
        suppressFdWarnings: opts.lvmSuppressFdWarnings,
        onResult: (argv, r, ms) => this.log().debug({ argv, exitCode: r.exitCode, ms }, 'lvm'),
      });
    this.vg = new LvmVolumeGroup({
      vgName: opts.volumeGroup,
      runner,
      cacheTtlMs: opts.cacheTtlMs,
      sleep: opts.sleep,
      logger: opts.logger,
    });
  }

  private log(): Logger {
    return this.opts.logger ?? log();
  }

  /** The lvm_type in effect once checkForSetupError ran ('auto' resolved), else null. */
  get lvmType(): 'default' | 'thin' | null {
    return this.resolvedType;
  }

  private get type(): 'default' | 'thin' {
    if (this.resolvedType === null) throw new Error('LVM driver used before checkForSetupError()');
    return this.resolvedType;
  }

  newVolumeReadsZeros(): boolean {
    // a thick LV holds whatever its extents held before (volume_clear may be none)
    return this.sparseCopyVolume;
  }

  secureFileOperationsEnabled(): boolean {
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Start-up

  /** Reads the LVM version (warning below 2.02.107, as cinder) and checks that the VG exists. */
  async doSetup(): Promise<void> {
    const version = await this.vg.version();
    if (!versionAtLeast(version, LVM_MINIMUM)) {
      this.log().warn({ current: version.join('.'), supported: LVM_MINIMUM.join('.') }, 'LVM version is lower than the minimum supported version');
    }
    if (!(await this.vg.exists())) throw volumeBackendApiException(`Volume Group ${this.opts.volumeGroup} does not exist`);
  }

  /**
   * cinder's check_for_setup_error: the VG must exist; lvm_type auto becomes thin (LVM supports
   * it and `<vg>-pool` exists, or the VG has no LVs) or default; thin needs LVM ≥ 2.02.95 and
   * gets its pool, 95% of the VG's free space, created when missing, then activated.
   */
  async checkForSetupError(): Promise<void> {
    let report: VgReport;
    try {
      report = await this.vg.report({ fresh: true });
    } catch (err) {
      if (err instanceof Error && err.name === 'VolumeGroupNotFound') {
        throw volumeBackendApiException(`Volume Group ${this.opts.volumeGroup} does not exist`);
      }
      throw err;
    }
    const pool = this.vg.thinPoolName;
    const hasPool = report.lvs.some((lv) => lv.name === pool);
    let type: 'default' | 'thin';
    if (this.opts.lvmType === 'auto') {
      type = 'default';
      if (await this.vg.supportsThin()) {
        if (hasPool) {
          this.log().info('Enabling LVM thin provisioning by default because a thin pool exists.');
          type = 'thin';
        } else if (report.lvs.length === 0) {
          this.log().info('Enabling LVM thin provisioning by default because no LVs exist.');
          type = 'thin';
        }
      }
    } else if (this.opts.lvmType === 'thin' || this.opts.lvmType === 'default') {
      type = this.opts.lvmType;
    } else {
      throw invalidConfigurationValue('lvm_type', this.opts.lvmType);
    }

    if (type === 'thin') {
      if (!(await this.vg.supportsThin())) {
        throw volumeBackendApiException('Thin provisioning not supported on this version of LVM.');
      }
      if (!hasPool) {
        try {
          await this.vg.createThinPool(pool);
        } catch (err) {
          // Lost a race with another service creating the same pool? Then use it.
          if (!(err instanceof LvmCommandError) || !(await this.vg.getLv(pool, { fresh: true }))) {
            const stderr = err instanceof LvmCommandError ? err.stderr : String(err);
            throw volumeBackendApiException(`Failed to create thin pool, error message was: ${stderr}`);
          }
        }
      }
      await this.vg.activate(pool);
      this.sparseCopyVolume = true;
    } else {
      this.sparseCopyVolume = false;
    }
    this.resolvedType = type;
    // no allocation of this process may run while extents of a dead agent wait to be zeroed
    await this.allocation.exclusive(async () => {
      await this.finishTemporaries(report);
      await this.finishRecordedWipes();
    });
    this.log().info({ vg: this.opts.volumeGroup, lvm_type: type }, 'LVM driver ready');
  }

  /**
   * Temporary LVs a previous agent left when it died midway (nothing runs yet, so none is in
   * use): a wipe LV still holds extents with a merged snapshot's old data, a thick `clone-snap-*`
   * still holds the copy-on-write data of a clone that never finished. Each is zeroed (unless
   * volume_clear=none) and removed; one that cannot be is left in place, still holding its
   * extents, and logged.
   */
  private async finishTemporaries(report: VgReport): Promise<void> {
    for (const lv of report.lvs) {
      const wipe = lv.name.startsWith(WIPE_LV_PREFIX);
      const cloneSnap = lv.name.startsWith(CLONE_SNAPSHOT_PREFIX) && isThickSnapshot(lv);
      if (!wipe && !cloneSnap) continue;
      this.log().warn({ lv: lv.name }, 'temporary LV left by an interrupted operation; clearing and removing it');
      try {
        if (wipe) await this.clearAndRemoveWipe(lv.name);
        else {
          if (this.clearMode() !== 'none') {
            await this.vg.activate(lv.name, { isSnapshot: true });
            // its size in the database is unknown here: all of it, or volume_clear_size MiB
            const clearMiB = this.opts.volumeClearSize ?? 0;
            await this.zeroDevice(`${mapperPath(this.opts.volumeGroup, lv.name)}-cow`, clearMiB > 0 ? clearMiB * MiB : null);
          }
          await this.vg.remove(lv.name);
        }
      } catch (err) {
        this.log().error({ err, lv: lv.name }, 'could not clear and remove a temporary LV; left in place');
      }
    }
  }

  /**
   * Extents a revert recorded on its origin (`cinderblock_wipe_*` tags) and never got to hold:
   * the agent died between the merge and the wipe LV, or the wipe failed. Each LV carrying such
   * tags is finished (finishRecordedWipe); one that cannot be keeps its tags for the next start.
   * Runs after finishTemporaries, so extents a leftover wipe LV held are free again by now.
   */
  private async finishRecordedWipes(): Promise<void> {
    const report = await this.vg.report({ fresh: true });
    for (const lv of report.lvs) {
      if (!lv.tags.some(isWipeTag)) continue;
      try {
        await this.finishRecordedWipe(lv.name);
      } catch (err) {
        this.log().error({ err, lv: lv.name, tags: lv.tags.filter(isWipeTag) }, 'could not zero the extents recorded on this LV; the record stays for the next start');
      }
    }
  }

  /**
   * The caller holds the allocation gate exclusively. For LV `name`'s `cinderblock_wipe_*` tags:
   * a merge into it still in progress ⇒ left alone (logged; the extents are not free yet). Else
   * the recorded extents that are free now are taken by a wipe LV, the tags removed (the wipe LV
   * carries the job from there: start-up finishes wipe LVs), the wipe LV zeroed and removed.
   * Recorded extents another LV holds now were reallocated before anyone zeroed them: logged as
   * an error naming that LV, which may read the old data. Idempotent: dying anywhere in here
   * leaves either the tags or a wipe LV (or both: the extents are then zeroed twice).
   */
  private async finishRecordedWipe(name: string): Promise<void> {
    const report = await this.vg.report({ fresh: true });
    const lv = report.lvs.find((l) => l.name === name);
    const tags = lv?.tags.filter(isWipeTag) ?? [];
    if (!lv || tags.length === 0) return;
    if (lv.merging || lv.attr[0] === 'O') {
      this.log().warn({ lv: name, tags }, 'a merge into this LV is still in progress: the extents it frees are recorded on it and are zeroed at a later start, once it has finished');
      return;
    }
    if (this.clearMode() === 'none') {
      this.log().warn({ lv: name, tags }, 'volume_clear=none: the extents a revert recorded on this LV are not zeroed; dropping the record');
      await this.vg.deleteTags(name, tags);
      return;
    }
    const segments = await this.vg.pvSegments();
    const pvByUuid = new Map(segments.map((g) => [g.pvUuid.replace(/-/g, ''), g.pv]));
    const recorded: ExtentRange[] = [];
    for (const tag of tags) {
      const runs = decodeWipeTag(tag);
      if (!runs) {
        this.log().error({ lv: name, tag }, 'unreadable extent record (tag); dropping it');
        continue;
      }
      for (const r of runs) {
        const pv = pvByUuid.get(r.pvUuid);
        if (pv) recorded.push({ pv, start: r.start, count: r.count });
        else this.log().error({ lv: name, pv_uuid: r.pvUuid, start: r.start, count: r.count }, 'recorded extents are on a PV no longer in the VG; not zeroed');
      }
    }
    this.reportTakenExtents(name, recorded, segments, report);
    const free = freeExtentsWithin(recorded, segments);
    if (free.length === 0) {
      await this.vg.deleteTags(name, tags);
      return;
    }
    const wipe = await this.freshWipeName(recoveryWipeLvName(name, lv.uuid));
    await this.vg.createOnExtents(wipe, free);
    this.log().warn({ lv: name, wipe, extents: extentCount(free) }, 'zeroing the extents a merge into this LV freed (recorded by an agent that died before zeroing them)');
    await this.dropWipeTags(name, tags);
    await this.clearAndRemoveWipe(wipe);
  }

  /**
   * Logs who holds extents of `recorded` (extents a merge into `origin` freed) now: the old data
   * may be readable there. A wipe LV (being finished) and a thick snapshot of `origin` itself (the
   * merge never ran, or the snapshot was re-created there; cleared when deleted) are expected.
   */
  private reportTakenExtents(origin: string, recorded: readonly ExtentRange[], segments: readonly PvSegment[], report: VgReport): void {
    const byName = new Map<string, LvInfo>(report.lvs.map((l) => [l.name, l]));
    const taken = holdersWithin(recorded, segments).filter((h) => {
      if (h.lv.startsWith(WIPE_LV_PREFIX)) return false;
      const holder = byName.get(h.lv);
      return !(holder && isThickSnapshot(holder) && holder.origin === origin);
    });
    if (taken.length > 0) {
      this.log().error(
        { origin, lvs: [...new Set(taken.map((t) => t.lv))], extents: taken },
        'extents a merge freed were given to another LV before they could be zeroed: that LV may read the old data of the merged snapshot',
      );
    }
  }

  /** Removes a revert's record from `origin`; a failure is logged (start-up finds the extents held or zeroes them again). */
  private async dropWipeTags(origin: string, tags: readonly string[]): Promise<void> {
    try {
      await this.vg.deleteTags(origin, tags);
    } catch (err) {
      this.log().warn({ err, lv: origin, tags }, 'could not remove the extent record from the LV; the next start zeroes those extents again');
    }
  }

  /** `base`, or `base-<time>` when an LV of that name exists (one kept by an earlier failed wipe). */
  private async freshWipeName(base: string): Promise<string> {
    return (await this.vg.getLv(base, { fresh: true })) ? `${base}-${Date.now().toString(36)}` : base;
  }

  // -------------------------------------------------------------------------------------------
  // Paths

  /** cinder's local_path: `/dev/mapper/<vg with - doubled>-<lv with - doubled>`. */
  localPath(volume: Pick<DriverVolume, 'name'>): string {
    return mapperPath(this.opts.volumeGroup, volume.name);
  }

  /** The device node of a snapshot (its name escaped to `_snapshot-<id>`). */
  snapshotPath(snapshot: Pick<DriverSnapshot, 'name'>): string {
    return mapperPath(this.opts.volumeGroup, snapshot.name);
  }

  /** The path cinder hands to the target helper: `/dev/<vg>/<volume name>`. */
  exportPath(volume: Pick<DriverVolume, 'name'>): string {
    return exportPath(this.opts.volumeGroup, volume.name);
  }

  /**
   * What cinder's create_export and ensure_export do before the target helper runs: activate the
   * LV (`lvchange -a y --yes -K`). Returns the export path.
   */
  async activateForExport(volume: Pick<DriverVolume, 'name'>): Promise<string> {
    const path = this.exportPath(volume);
    // cinder runs `lvchange -a y` unconditionally, a no-op on an active LV that costs about a
    // second on a busy host (3 s under the lab's emulation), and a restart re-exports every
    // attached volume. An `lvs` to ask first still cost ~0.5 s of every attach in the lab (70% of
    // the agent's part). The kernel answers for nothing: the export path resolves to a live dm
    // device, and that device's dm name is this LV's, so it is active and the path the target is
    // given is this volume's (a stale /dev/<vg>/<lv> link to a reused dm-N would fail the name).
    if ((await this.blockDevice.dmNameOf(path)) === dmName(this.opts.volumeGroup, volume.name)) return path;
    await this.vg.activate(volume.name);
    return path;
  }

  async prepareExport(volume: Pick<DriverVolume, 'name'>): Promise<void> {
    await this.activateForExport(volume);
  }

  getPool(_volume: DriverVolume): string {
    return this.backendName;
  }

  // -------------------------------------------------------------------------------------------
  // Volumes

  async createVolume(volume: DriverVolume): Promise<ModelUpdate | null> {
    const thinPool = this.type === 'thin' ? this.vg.thinPoolName : null;
    await this.allocation.shared(() => this.vg.createVolume(volume.name, volume.size, { thinPool, mirrors: this.mirrors }));
    return null;
  }

  /**
   * Absent ⇒ success; thick snapshots ⇒ VolumeIsBusy (lvremove -f would take them along);
   * otherwise clear (volume_clear, thick only) and lvremove.
   */
  async deleteVolume(volume: DriverVolume): Promise<void> {
    const lv = await this.vg.getLv(volume.name, { fresh: true });
    if (!lv) {
      this.log().info({ volume: volume.name }, 'volume not present; nothing to delete');
      return;
    }
    if (hasThickSnapshots(lv)) {
      this.log().error({ volume: volume.name }, 'Unable to delete due to existing snapshot');
      throw volumeIsBusy(volume.name);
    }
    if (lv.tags.some(isWipeTag)) {
      // a revert's record of freed extents not zeroed yet: removing the LV would drop it with it
      try {
        await this.allocation.exclusive(() => this.finishRecordedWipe(volume.name));
      } catch (err) {
        this.log().error({ err, volume: volume.name, tags: lv.tags.filter(isWipeTag) }, 'could not zero the extents recorded on the volume; the record goes with it');
      }
    }
    await this.deleteLv(volume.name, volume.id, volume.size, false);
    this.log().info({ volume_id: volume.id }, 'Successfully deleted volume');
  }

  /**
   * lvextend to `newSizeGb`; an LV with thick snapshots is deactivated around it. (cinder also
   * asks the target helper to pick up the new size: that is the target layer's job.)
   */
  async extendVolume(volume: DriverVolume, newSizeGb: number): Promise<void> {
    await this.allocation.shared(() => this.vg.extend(volume.name, gibSize(newSizeGb)));
  }

  // -------------------------------------------------------------------------------------------
  // Snapshots

  async createSnapshot(snapshot: DriverSnapshot): Promise<ModelUpdate | null> {
    const thin = this.type === 'thin';
    await this.allocation.shared(() => this.vg.createSnapshot(escapeSnapshotName(snapshot.name), snapshot.volumeName, { thin }));
    return null;
  }

  async deleteSnapshot(snapshot: DriverSnapshot): Promise<void> {
    const name = escapeSnapshotName(snapshot.name);
    if (!(await this.vg.getLv(name, { fresh: true }))) {
      this.log().warn({ snapshot: snapshot.name }, 'snapshot not found, skipping delete operations');
      return;
    }
    await this.deleteLv(snapshot.name, snapshot.id, snapshot.volumeSize, true);
  }

  /**
   * thin: the new volume is a thin snapshot of the snapshot (grown if bigger), activated for good
   * (`-k n`); thick: a new LV and a copy of the snapshot's data.
   */
  async createVolumeFromSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<ModelUpdate | null> {
    if (this.type === 'thin') {
      await this.allocation.shared(() => this.vg.createSnapshot(volume.name, escapeSnapshotName(snapshot.name), { thin: true }));
      if (volume.size > snapshot.volumeSize) await this.extendVolume(volume, volume.size);
      // Some LVM configurations do not activate thin snapshots by themselves.
      await this.vg.activate(snapshot.name, { isSnapshot: true });
      await this.vg.activate(volume.name, { isSnapshot: true, permanent: true });
      return null;
    }
    await this.allocation.shared(() => this.vg.createVolume(volume.name, volume.size, { mirrors: this.mirrors }));
    await this.vg.activate(snapshot.name, { isSnapshot: true });
    await this.copyVolume(this.snapshotPath(snapshot), this.localPath(volume), snapshot.volumeSize);
    return null;
  }

  /**
   * thin: a thin snapshot of the source (grown if bigger), activated for good; thick: temporary
   * snapshot `clone-snap-<new id>`, new LV, copy, and the temporary snapshot deleted whatever
   * happened (cleared like any snapshot when volume_clear is set, as cinder does).
   */
  async createClonedVolume(volume: DriverVolume, source: CloneSource): Promise<ModelUpdate | null> {
    if (this.type === 'thin') {
      await this.allocation.shared(() => this.vg.createSnapshot(volume.name, source.name, { thin: true }));
      if (volume.size > source.size) await this.extendVolume(volume, volume.size);
      await this.vg.activate(volume.name, { isSnapshot: true, permanent: true });
      return null;
    }
    this.log().info({ source: source.id }, 'Creating clone of volume');
    const temp: DriverSnapshot = {
      id: `tmp-snap-${volume.id}`,
      name: cloneSnapshotName(volume.id),
      volumeId: source.id,
      volumeName: source.name,
      volumeSize: source.size,
      providerLocation: null,
    };
    await this.createSnapshot(temp);
    try {
      await this.allocation.shared(() => this.vg.createVolume(volume.name, volume.size, { mirrors: this.mirrors }));
      await this.vg.activate(temp.name, { isSnapshot: true });
      await this.copyVolume(this.snapshotPath(temp), this.localPath(volume), source.size);
    } finally {
      await this.deleteSnapshot(temp);
    }
    return null;
  }

  /**
   * thick: `lvconvert --merge` the snapshot into its origin, deactivate + activate the origin (a
   * merge delayed because the origin was open starts then), and re-create the snapshot the merge
   * consumed. thin: NotImplementedError, so the manager reverts through a temporary volume.
   *
   * The merge frees the snapshot's exception store, which still holds the origin's old data
   * (every chunk written since the snapshot, as it was before). Unless volume_clear=none, its
   * extents are recorded first (volume_clear_size MiB of it, rounded up to whole extents, when
   * set: the part a snapshot delete would clear), taken by a wipe LV once LVM has removed the
   * snapshot, zeroed and released, before the snapshot is re-created; no LV of this driver is
   * allocated from before the merge until the wipe LV holds them. If the wipe cannot be done the
   * revert still succeeds and the reason is logged as an error: the old data may then be
   * readable by the next LV given those extents.
   *
   * The recorded extents survive the agent: before the merge they are added to the origin as
   * LVM tags (`cinderblock_wipe_<pv uuid>_<start>+<count>...`, lvm-names.ts) in one lvchange, and
   * removed once the wipe LV holds them (from then on the wipe LV is the record). While the wipe
   * has not happened (the agent died, the merge outlasted the wait, the allocation failed) the
   * tags stay, and start-up (finishRecordedWipes) zeroes whatever of them is free by then.
   */
  async revertToSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<void> {
    if (this.type === 'thin') throw notImplemented('Revert volume to snapshot not implemented for thin LVM.');
    const clear = this.clearMode();
    const snapLv = escapeSnapshotName(snapshot.name);
    const wipe = await this.allocation.exclusive(async () => {
      const record = clear === 'none' ? null : await this.exceptionStoreExtents(snapLv);
      // refused here if LVM will not take the record: nothing has changed yet
      if (record) await this.vg.addTags(volume.name, record.tags);
      try {
        await this.vg.mergeSnapshot(snapLv);
      } catch (err) {
        if (record) await this.dropTagsUnlessMerging(volume.name, snapLv, record.tags);
        throw err;
      }
      try {
        await this.vg.deactivate(volume.name);
        await this.vg.activate(volume.name);
      } catch (err) {
        // A deferred merge now runs at some later activation, out of this operation's sight.
        if (record) this.log().error({ snapshot: snapLv, origin: volume.name, extents: record.cow }, 'revert failed after the merge; the extents it frees stay recorded on the origin (LVM tags) and are zeroed at a start after the merge');
        throw err;
      }
      return record ? this.holdFreedExtents(snapshot, snapLv, volume.name, record) : null;
    });
    if (wipe) {
      try {
        await this.clearAndRemoveWipe(wipe);
      } catch (err) {
        // Still allocated, so nobody else gets the extents; start-up recovery finishes it.
        this.log().error({ err, lv: wipe, snapshot_id: snapshot.id }, 'could not zero the extents a revert freed; their wipe LV stays until the next start');
      }
    }
    await this.createSnapshot(snapshot);
  }

  /**
   * The extents of a thick snapshot's exception store to zero after a merge, in its own order,
   * and the tags recording them (PVs by uuid).
   */
  private async exceptionStoreExtents(snapLv: string): Promise<{ cow: ExtentRange[]; tags: string[] } | null> {
    const segments = await this.vg.pvSegments();
    let cow = lvExtents(segments, snapLv);
    if (cow.length === 0) {
      this.log().warn({ snapshot: snapLv }, 'the snapshot holds no extents LVM reports; nothing to zero after the merge');
      return null;
    }
    const clearMiB = this.opts.volumeClearSize ?? 0;
    const extentSize = segments[0]!.extentSizeBytes;
    if (clearMiB > 0 && extentSize > 0) cow = firstExtents(cow, Math.ceil((clearMiB * MiB) / extentSize));
    const uuidOf = new Map(segments.map((g) => [g.pv, g.pvUuid]));
    const tags = encodeWipeTags(cow.map((r) => ({ pvUuid: uuidOf.get(r.pv) ?? '', start: r.start, count: r.count })));
    this.log().info({ snapshot: snapLv, extents: cow, tags }, 'extents to zero once the merge has freed them');
    return { cow, tags };
  }

  /**
   * lvconvert --merge failed: if the merge did not start (the snapshot is there, its origin not
   * merging) the record is dropped; otherwise it stays for start-up, which waits for the merge.
   */
  private async dropTagsUnlessMerging(origin: string, snapLv: string, tags: readonly string[]): Promise<void> {
    try {
      const report = await this.vg.report({ fresh: true });
      const o = report.lvs.find((l) => l.name === origin);
      const started = !o || o.merging || o.attr[0] === 'O' || !report.lvs.some((l) => l.name === snapLv);
      if (!started) {
        await this.vg.deleteTags(origin, tags);
        return;
      }
    } catch (err) {
      this.log().warn({ err, origin }, 'could not read the state after a failed merge');
    }
    this.log().error({ origin, snapshot: snapLv, tags }, 'the merge failed but may have started; the extents it frees stay recorded on the origin for start-up');
  }

  /**
   * After the merge: waits for LVM to remove the snapshot (a deferred merge finishes in the
   * background after the re-activation), then allocates a wipe LV on those of `cow` that are
   * free. Returns its name, or null (logged) when there is nothing it could hold.
   */
  private async holdFreedExtents(
    snapshot: DriverSnapshot, snapLv: string, origin: string, record: { cow: ExtentRange[]; tags: string[] },
  ): Promise<string | null> {
    const { cow, tags } = record;
    const extents = extentCount(cow);
    if (!(await this.vg.waitGone(snapLv, this.opts.mergeWaitMs ?? HOUR_MS))) {
      this.log().error({ snapshot: snapLv, origin, extents: cow }, 'the merge did not finish in time; the extents it frees stay recorded on the origin (LVM tags) and are zeroed at a start after the merge');
      return null;
    }
    try {
      const segments = await this.vg.pvSegments();
      const free = freeExtentsWithin(cow, segments);
      if (extentCount(free) < extents) {
        this.log().error(
          { snapshot: snapLv, recorded: cow, free, lvs: [...new Set(holdersWithin(cow, segments).map((h) => h.lv))] },
          'some extents of the merged snapshot were given to another LV before they could be zeroed: it may read their old data',
        );
      }
      if (free.length === 0) {
        await this.dropWipeTags(origin, tags);
        return null;
      }
      // one kept by an earlier failed wipe of the same snapshot: this one needs a name of its own
      const name = await this.freshWipeName(wipeLvName(snapshot.id));
      await this.vg.createOnExtents(name, free);
      this.log().info({ lv: name, extents: extentCount(free) }, 'holding the extents the merge freed for zeroing');
      // the wipe LV carries the job from here (start-up finishes wipe LVs)
      await this.dropWipeTags(origin, tags);
      return name;
    } catch (err) {
      this.log().error({ err, snapshot: snapLv, origin, extents: cow }, 'could not take the extents the merge freed; they stay recorded on the origin (LVM tags) for start-up');
      return null;
    }
  }

  /** Zeroes a wipe LV whole (unless volume_clear=none) and removes it. */
  private async clearAndRemoveWipe(name: string): Promise<void> {
    if (this.clearMode() !== 'none') {
      const device = mapperPath(this.opts.volumeGroup, name);
      if (!(await this.blockDevice.exists(device))) await this.vg.activate(name);
      await this.zeroDevice(device, null);
    }
    await this.vg.remove(name);
  }

  // -------------------------------------------------------------------------------------------
  // Capabilities

  /** cinder's _update_volume_stats, from one fresh report (cinder/volume/drivers/lvm.py). */
  async getVolumeStats(): Promise<BackendStats> {
    const report = await this.vg.report({ fresh: true });
    const type = this.type;
    const vgSize = lvmGiB(report.sizeBytes);
    const vgFree = lvmGiB(report.freeBytes);
    let total: number;
    let free: number;
    let provisioned: number;
    if (this.mirrors > 0) {
      total = vgFree / (this.mirrors + 1);
      free = mirrorFreeSpace(report.pvs.map((pv) => lvmGiB(pv.freeBytes)), this.mirrors);
      provisioned = pyRound(total - free, 2);
    } else if (type === 'thin') {
      const pool = report.lvs.find((lv) => lv.name === this.vg.thinPoolName);
      total = pool ? lvmGiB(pool.sizeBytes) : 0;
      free = pool ? thinPoolFreeGiB(total, pool.dataPercent ?? 0) : 0;
      // Every visible LV but the pool: thin volumes, their snapshots (Python float sum order).
      let sum = 0;
      for (const lv of report.lvs) if (lv.name !== this.vg.thinPoolName) sum += lvmGiB(lv.sizeBytes);
      provisioned = pyRound(sum, 2);
    } else {
      total = vgSize;
      free = vgFree;
      provisioned = pyRound(total - free, 2);
    }
    const ratio = this.opts.maxOverSubscriptionRatio ?? '20.0';
    const pool: PoolStats = {
      pool_name: this.backendName,
      total_capacity_gb: total,
      free_capacity_gb: free,
      reserved_percentage: this.opts.reservedPercentage ?? 0,
      location_info: `LVMVolumeDriver:${this.hostname}:${this.opts.volumeGroup}:${type}:${this.mirrors}`,
      QoS_support: false,
      provisioned_capacity_gb: provisioned,
      max_over_subscription_ratio: typeof ratio === 'string' ? ratio : formatOverSubscriptionRatio(ratio),
      thin_provisioning_support: type === 'thin',
      thick_provisioning_support: type !== 'thin',
      // Volumes and snapshots (and the thin pool): every LV `lvs` lists, as cinder counts.
      total_volumes: report.lvs.length,
      filter_function: this.opts.filterFunction ?? null,
      goodness_function: this.opts.goodnessFunction ?? null,
      multiattach: true,
      backend_state: 'up',
    };
    return {
      volume_backend_name: this.backendName,
      vendor_name: 'Open Source',
      driver_version: LVM_DRIVER_VERSION,
      storage_protocol: this.opts.storageProtocol ?? 'iSCSI',
      pools: [pool],
      shared_targets: false,
      sparse_copy_volume: this.sparseCopyVolume,
    };
  }

  // -------------------------------------------------------------------------------------------
  // The generic revert's copy, retype, manage

  /** cinder's LVM driver takes a safety snapshot before reverting. */
  snapshotRevertUseTempSnapshot(): boolean {
    return true;
  }

  /** Copies `bytes` of `src` over `dst`, dense and synced (the generic revert, thin pools). */
  async copyData(src: string, dst: string, bytes: number): Promise<void> {
    if (this.opts.copyData) return this.opts.copyData(src, dst, bytes);
    await this.copy(src, dst, { sizeBytes: bytes, sparse: false, blocksize: this.opts.volumeDdBlocksize ?? '1M', sync: true });
  }

  /** cinder's LVM retype: one volume group, so a type change never moves data. */
  async retype(): Promise<boolean> {
    return true;
  }

  async manageExistingGetSize(ref: Record<string, unknown>): Promise<number> {
    const name = manageSourceName(ref);
    const lv = await this.vg.getLv(name, { fresh: true });
    if (!lv) throw manageExistingInvalidReference(ref, `LV ${name} not found`);
    return Math.max(1, Math.ceil(lv.sizeBytes / GiB));
  }

  /** The LV takes the volume's name. */
  async manageExisting(volume: DriverVolume, ref: Record<string, unknown>): Promise<ModelUpdate | null> {
    const name = manageSourceName(ref);
    if (name !== volume.name) await this.vg.rename(name, volume.name);
    return null;
  }

  /**
   * cinder's LVM driver-assisted migration (another VG on this host) creates and copies an LV in
   * a VG this driver does not manage; not done here yet: the manager migrates generically.
   */
  async migrateVolume(): Promise<DriverMigration> {
    throw notImplemented('LVM driver-assisted migration is not implemented; the generic migration copies the volume');
  }

  pathInPool(locationInfo: unknown, name: string): string | null {
    return volumePathOnHost(locationInfo, this.hostname, name, assertLvName);
  }

  /** update_migrated_volume's `lvrename` (cinder: vg.rename_volume). */
  async renameVolume(volume: DriverVolume, newName: string): Promise<void> {
    await this.vg.rename(volume.name, newName);
  }

  async unmanage(): Promise<void> {
    // The LV stays as it is, under the volume's name.
  }

  /**
   * The VG's LVs as cinder's _get_manageable_resource_info reads them: size rounded up from the
   * `lvs` GiB figure, open ones in use, thick snapshots (attr `s`) as snapshots with their origin.
   * The driver's own transient LVs (clone snapshots, wipe LVs) are left out: they are removed
   * when their operation ends, and adopting one would take it from under that operation.
   */
  async listBackendObjects(): Promise<BackendObject[]> {
    const report = await this.vg.report({ fresh: true });
    return report.lvs
      .filter((lv) => !lv.name.startsWith(CLONE_SNAPSHOT_PREFIX) && !lv.name.startsWith(WIPE_LV_PREFIX))
      .map((lv) => {
        // cinder's lv_is_snapshot looks for `s` only: an invalidated snapshot (`S`) lists as a volume
        const snap = lv.attr[0] === 's';
        return {
          name: lv.name,
          cinderName: unescapeSnapshotName(lv.name),
          size: Math.ceil(lvmGiB(lv.sizeBytes)),
          inUse: lv.open,
          isSnapshot: snap,
          origin: snap ? lv.origin || null : null,
        };
      });
  }

  /** cinder's manage_existing_snapshot_get_size: the same LV lookup as for a volume. */
  async manageExistingSnapshotGetSize(ref: Record<string, unknown>): Promise<number> {
    return this.manageExistingGetSize(ref);
  }

  /** The LV takes the snapshot's (escaped) name, as cinder's manage_existing_snapshot renames it. */
  async manageExistingSnapshot(snapshot: DriverSnapshot, ref: Record<string, unknown>): Promise<ModelUpdate | null> {
    const name = manageSourceName(ref);
    const target = escapeSnapshotName(snapshot.name);
    if (name !== target) await this.vg.rename(name, target);
    return null;
  }

  async volumeExists(volume: DriverVolume): Promise<boolean> {
    return (await this.vg.getLv(volume.name, { fresh: true })) !== null;
  }

  // -------------------------------------------------------------------------------------------

  private async copyVolume(src: string, dst: string, sizeGb: number): Promise<void> {
    await this.copy(src, dst, {
      sizeBytes: sizeGb * GiB,
      sparse: this.sparseCopyVolume,
      blocksize: this.opts.volumeDdBlocksize ?? '1M',
      sync: false,
    });
  }

  /** volume_clear as configured: 'zero' or 'none'; anything else is InvalidConfigurationValue. */
  private clearMode(): 'zero' | 'none' {
    const clear = this.opts.volumeClear ?? 'zero';
    if (clear !== 'zero' && clear !== 'none') throw invalidConfigurationValue('volume_clear', clear);
    return clear;
  }

  /** BLKZEROOUT of the first `length` bytes of `device` (null: all of it). */
  private async zeroDevice(device: string, length: number | null): Promise<void> {
    if (!(await this.blockDevice.exists(device))) throw volumeBackendApiException(`Volume device file path ${device} does not exist.`);
    const size = await this.blockDevice.size(device);
    const bytes = length === null ? size : Math.min(length, size);
    this.log().info({ device, bytes }, 'Performing secure delete on volume');
    await this.blockDevice.zeroOut(device, 0, bytes);
  }

  /** cinder's _delete_volume: clear when volume_clear is set and the pool is not thin, then remove. */
  private async deleteLv(name: string, id: string, sizeGb: number | null, isSnapshot: boolean): Promise<void> {
    const clear = this.opts.volumeClear ?? 'zero';
    if (clear !== 'none' && this.type !== 'thin') await this.clearVolume(name, id, sizeGb, isSnapshot, clear);
    await this.vg.remove(isSnapshot ? escapeSnapshotName(name) : name);
  }

  /**
   * cinder's _clear_volume + volume_utils.clear_volume: zero the first volume_clear_size MiB (0 =
   * all of it) of the LV, or of a thick snapshot's `-cow` device (its exception store, where
   * the data that differed lives), with BLKZEROOUT.
   */
  private async clearVolume(name: string, id: string, sizeGb: number | null, isSnapshot: boolean, clear: string): Promise<void> {
    const device = mapperPath(this.opts.volumeGroup, name) + (isSnapshot ? '-cow' : '');
    if (!(await this.blockDevice.exists(device))) {
      const msg = `Volume device file path ${device} does not exist.`;
      this.log().error(msg);
      throw volumeBackendApiException(msg);
    }
    if (sizeGb === null || sizeGb === undefined) {
      throw invalidParameterValue(`Size for volume: ${id} not found, cannot secure delete.`);
    }
    if (clear !== 'zero') throw invalidConfigurationValue('volume_clear', clear);
    const clearSizeMiB = this.opts.volumeClearSize || sizeGb * 1024;
    let length = clearSizeMiB * MiB;
    const deviceSize = await this.blockDevice.size(device);
    if (length > deviceSize) {
      // dd would stop at the end of the device with an error; zero what is there instead.
      this.log().warn({ device, requested: length, deviceSize }, 'clear size exceeds the device; clearing the whole device');
      length = deviceSize;
    }
    this.log().info({ device, bytes: length }, 'Performing secure delete on volume');
    await this.blockDevice.zeroOut(device, 0, length);
  }
}

/**
 * cinder's vg_mirror_free_space: repeatedly take the smallest PV's free space as one extent set
 * and charge it to the `mirrors` largest PVs, while more than `mirrors` PVs have space left.
 */
export function mirrorFreeSpace(pvFree: number[], mirrors: number): number {
  let disks = [...pvFree];
  let free = 0;
  for (;;) {
    disks = disks.filter((d) => d > 0).sort((a, b) => b - a);
    if (disks.length <= mirrors) break;
    const disk = disks[disks.length - 1]!;
    disks = disks.slice(0, -1);
    for (let i = 0; i < mirrors; i++) disks[i]! -= disk;
    free += disk;
  }
  return free;
}
