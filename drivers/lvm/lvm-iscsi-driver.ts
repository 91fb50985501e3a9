// cinder's LVMVolumeDriver as the manager sees it: the LVM volume driver for the data, a target
// helper (tgt or LIO) for the export, and the few calls that are neither (manage, retype, copy).
// LVM's own errors are translated here into the contract's (busy, not implemented), so the manager
// reacts to them exactly as cinder's does.
import type {
  BackendExport,
  BackendStats,
  ConnectionInfo,
  Connector,
  DriverSnapshot,
  DriverVolume,
  FullVolumeDriver,
  ModelUpdate,
  TerminateOptions,
} from '../driver.js';
import { DriverNotImplemented, ResourceBusy } from '../driver.js';
import { TargetExports } from '../target-exports.js';
import type { TargetHelper } from '../targets/target.js';
import { CinderError, isNotImplementedError as isNotImplemented, manageExistingInvalidReference } from '../../src/errors.js';
import { LvmVolumeDriver, type LvmDriverOptions } from './lvm-driver.js';

export interface LvmIscsiDriverOptions extends LvmDriverOptions {
  target: TargetHelper | null;
  /** Copies `bytes` from one device to another (the native copy engine in production). */
  copyData(src: string, dst: string, bytes: number): Promise<void>;
}

const GiB = 1024 ** 3;

/** LVM's busy errors become the contract's ResourceBusy, so delete leaves the volume available. */
async function translate<T>(kind: 'volume' | 'snapshot', name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CinderError && (err.className === 'VolumeIsBusy' || err.className === 'SnapshotIsBusy')) {
      throw new ResourceBusy(kind, name);
    }
    if (isNotImplemented(err)) throw new DriverNotImplemented((err as Error).message);
    throw err;
  }
}

function manageSourceName(ref: Record<string, unknown>): string {
  const name = ref['source-name'];
  if (typeof name !== 'string' || name === '') {
    throw manageExistingInvalidReference(ref, 'source-name is required');
  }
  return name;
}

export class LvmIscsiDriver implements FullVolumeDriver {
  readonly className = 'LVMVolumeDriver';
  readonly lvm: LvmVolumeDriver;
  private readonly exports: TargetExports;

  constructor(private readonly opts: LvmIscsiDriverOptions) {
    this.lvm = new LvmVolumeDriver(opts);
    this.exports = new TargetExports({
      target: opts.target,
      backingPath: (v) => this.lvm.exportPath(v),
      prepare: async (v) => {
        await this.lvm.activateForExport(v);
      },
    });
  }

  doSetup(): Promise<void> {
    return this.lvm.doSetup();
  }
  checkForSetupError(): Promise<void> {
    return this.lvm.checkForSetupError();
  }
  getVolumeStats(): Promise<BackendStats> {
    return this.lvm.getVolumeStats();
  }
  secureFileOperationsEnabled(): boolean {
    return false;
  }
  localPath(volume: DriverVolume): string {
    return this.lvm.localPath(volume);
  }

  createVolume(volume: DriverVolume): Promise<ModelUpdate | null> {
    return this.lvm.createVolume(volume);
  }
  deleteVolume(volume: DriverVolume): Promise<void> {
    return translate('volume', volume.name, () => this.lvm.deleteVolume(volume));
  }
  extendVolume(volume: DriverVolume, newSizeGb: number): Promise<void> {
    return this.lvm.extendVolume(volume, newSizeGb);
  }
  createSnapshot(snapshot: DriverSnapshot): Promise<ModelUpdate | null> {
    return this.lvm.createSnapshot(snapshot);
  }
  deleteSnapshot(snapshot: DriverSnapshot): Promise<void> {
    return translate('snapshot', snapshot.name, () => this.lvm.deleteSnapshot(snapshot));
  }
  createVolumeFromSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<ModelUpdate | null> {
    return this.lvm.createVolumeFromSnapshot(volume, snapshot);
  }
  createClonedVolume(volume: DriverVolume, source: DriverVolume): Promise<ModelUpdate | null> {
    return this.lvm.createClonedVolume(volume, { id: source.id, name: source.name, size: source.size });
  }
  revertToSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<void> {
    return translate('volume', volume.name, () => this.lvm.revertToSnapshot(volume, snapshot));
  }
  snapshotRevertUseTempSnapshot(): boolean {
    return true;
  }
  copyData(src: string, dst: string, bytes: number): Promise<void> {
    return this.opts.copyData(src, dst, bytes);
  }

  /** cinder's LVM retype: one volume group, so a type change never moves data. */
  async retype(): Promise<boolean> {
    return true;
  }

  async manageExistingGetSize(ref: Record<string, unknown>): Promise<number> {
    const name = manageSourceName(ref);
    const lv = await this.lvm.vg.getLv(name, { fresh: true });
    if (!lv) {
      throw manageExistingInvalidReference(ref, `LV ${name} not found`);
    }
    return Math.max(1, Math.ceil(lv.sizeBytes / GiB));
  }

  async manageExisting(volume: DriverVolume, ref: Record<string, unknown>): Promise<ModelUpdate | null> {
    const name = manageSourceName(ref);
    if (name !== volume.name) await this.lvm.vg.rename(name, volume.name);
    return null;
  }

  async unmanage(): Promise<void> {
    // The LV stays as it is, under the volume's name.
  }

  async volumeExists(volume: DriverVolume): Promise<boolean> {
    return (await this.lvm.vg.getLv(volume.name, { fresh: true })) !== null;
  }

  validateConnector(connector: Connector): void {
    this.exports.validateConnector(connector);
  }
  createExport(volume: DriverVolume): Promise<ModelUpdate | null> {
    return this.exports.createExport(volume);
  }
  ensureExport(volume: DriverVolume, initiators?: readonly string[]): Promise<void> {
    return this.exports.ensureExport(volume, initiators);
  }
  removeExport(volume: DriverVolume): Promise<void> {
    return this.exports.removeExport(volume);
  }
  initializeConnection(volume: DriverVolume, connector: Connector): Promise<ConnectionInfo> {
    return this.exports.initializeConnection(volume, connector);
  }
  terminateConnection(volume: DriverVolume, connector: Connector | null, opts: TerminateOptions): Promise<void> {
    return this.exports.terminateConnection(volume, connector, opts);
  }
  extendTarget(volume: DriverVolume): Promise<void> {
    return this.exports.extendTarget(volume);
  }
  findExports(): Promise<BackendExport[]> {
    return this.exports.findExports();
  }
  removeOrphanExportAccounts(): Promise<number> {
    return this.exports.removeOrphanAccounts();
  }
}
