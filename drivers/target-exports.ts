// The export half of a volume driver: hand the volume's backing device to the target helper. Every
// block driver does this the same way (cinder's LVM driver delegates to self.target_driver), so it
// lives once here; a driver only says where its volume's data is and, for LVM, activates it first.
import { realpath } from 'node:fs/promises';
import type { BackendExport, ConnectionInfo, Connector, DriverVolume, ModelUpdate, TerminateOptions } from './driver.js';
import { DriverNotImplemented } from './driver.js';
import { validateIscsiConnector } from './targets/iscsi-common.js';
import type { ExportedVolume, TargetHelper } from './targets/target.js';

export interface TargetExportsOptions {
  target: TargetHelper | null | undefined;
  /** The device or file the LUN serves (it depends on the volume's name only). */
  backingPath(volume: Pick<DriverVolume, 'name'>): string;
  /** Make the backing path usable before exporting (LVM: activate the LV). */
  prepare?(volume: DriverVolume): Promise<void>;
}

async function samePath(a: string, b: string): Promise<boolean> {
  if (a === b) return true;
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}

export class TargetExports {
  constructor(private readonly opts: TargetExportsOptions) {}

  private helper(): TargetHelper {
    if (!this.opts.target) throw new DriverNotImplemented('exporting volumes (no target helper configured)');
    return this.opts.target;
  }

  private exported(volume: DriverVolume): ExportedVolume {
    return {
      id: volume.id,
      name: volume.name,
      providerLocation: volume.providerLocation,
      providerAuth: volume.providerAuth,
      backingPath: this.opts.backingPath(volume),
      multiattach: volume.multiattach,
    };
  }

  validateConnector(connector: Connector): void {
    // Without a target helper the connector is still checked as cinder's iSCSI targets check it.
    if (this.opts.target) this.opts.target.validateConnector(connector);
    else validateIscsiConnector(connector);
  }

  async createExport(volume: DriverVolume): Promise<ModelUpdate | null> {
    const helper = this.helper();
    await this.opts.prepare?.(volume);
    return helper.createExport(this.exported(volume));
  }

  async ensureExport(volume: DriverVolume, initiators?: readonly string[]): Promise<void> {
    const helper = this.helper();
    await this.opts.prepare?.(volume);
    await helper.ensureExport(this.exported(volume), initiators ? { initiators } : undefined);
  }

  async removeExport(volume: DriverVolume): Promise<void> {
    // Never exported (no provider_location): nothing to remove, as cinder's tgt driver skips it.
    if (!this.opts.target || !volume.providerLocation) return;
    await this.opts.target.removeExport(this.exported(volume));
  }

  async initializeConnection(volume: DriverVolume, connector: Connector): Promise<ConnectionInfo> {
    return this.helper().initializeConnection(this.exported(volume), connector);
  }

  async terminateConnection(volume: DriverVolume, connector: Connector | null, opts: TerminateOptions): Promise<void> {
    if (!this.opts.target || !volume.providerLocation) return;
    await this.opts.target.terminateConnection(this.exported(volume), connector, opts);
  }

  async extendTarget(volume: DriverVolume): Promise<void> {
    if (!this.opts.target) return;
    await this.opts.target.extendTarget(this.exported(volume));
  }

  /**
   * The helper's exports that serve this backend's volumes: the LUN (or the record) points at
   * the path this driver gives that volume name. Two backends can share one tgtd, one
   * target_prefix and one volumes_dir; the backing path tells whose an export is. A target left
   * without a LUN counts only when the helper recorded it.
   */
  async findExports(): Promise<BackendExport[]> {
    const helper = this.opts.target;
    if (!helper?.findExports) return [];
    const out: BackendExport[] = [];
    for (const f of await helper.findExports()) {
      let ours: boolean;
      if (f.backingPath === null) {
        ours = f.recorded;
      } else {
        let want: string;
        try {
          want = this.opts.backingPath({ name: f.volumeName });
        } catch {
          continue; // not a name this driver could have made
        }
        ours = await samePath(f.backingPath, want);
      }
      if (ours) out.push({ volumeName: f.volumeName, iqn: f.iqn, live: f.live });
    }
    return out;
  }

  async removeOrphanAccounts(): Promise<number> {
    return this.opts.target?.removeOrphanAccounts ? this.opts.target.removeOrphanAccounts() : 0;
  }
}
