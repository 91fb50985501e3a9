// The file pool: each volume is a sparse file `<dir>/<volume name>`. It is cinderblock's default
// backend when no volume group is configured, so the agent runs on any machine; thin by nature
// (a new volume takes no space until written), so it reports itself the way cinder's thin LVM
// driver does and the scheduler over-subscribes it within max_over_subscription_ratio.
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, stat, statfs, truncate, unlink, access } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendStats, DriverVolume, ModelUpdate, VolumeDriver } from '../driver.js';
import { bytesToGiB, formatOverSubscriptionRatio } from './capacity.js';
import { assertSafeName } from './names.js';

export interface FilePoolOptions {
  /** Directory holding the volume files (file_volume_dir). */
  directory: string;
  /** volume_backend_name, or the section name when unset; also the pool name. */
  backendName: string;
  /** The host name written into location_info. */
  hostname: string;
  reservedPercentage: number;
  maxOverSubscriptionRatio: number | 'auto';
  /** target_protocol as cinder reports it: 'iSCSI' for iscsi. */
  storageProtocol: string;
  filterFunction: string | null;
  goodnessFunction: string | null;
}

const GiB = 1024 ** 3;
const VERSION = '1.0.0';

export class FileVolumeDriver implements VolumeDriver {
  readonly className = 'FileVolumeDriver';

  constructor(private readonly opts: FilePoolOptions) {}

  async doSetup(): Promise<void> {
    await mkdir(this.opts.directory, { recursive: true, mode: 0o750 });
  }

  async checkForSetupError(): Promise<void> {
    try {
      await access(this.opts.directory, fsc.R_OK | fsc.W_OK);
    } catch (err) {
      throw new Error(
        `file pool directory ${this.opts.directory} is not writable (${(err as NodeJS.ErrnoException).code}); ` +
          `create it or set file_volume_dir in the [${this.opts.backendName}] section`,
      );
    }
  }

  secureFileOperationsEnabled(): boolean {
    return false;
  }

  localPath(volume: DriverVolume): string {
    assertSafeName(volume.name);
    return join(this.opts.directory, volume.name);
  }

  async createVolume(volume: DriverVolume): Promise<ModelUpdate | null> {
    const path = this.localPath(volume);
    // O_EXCL: a leftover file from an earlier attempt must not be silently reused as a new volume.
    const fh = await open(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
    try {
      await fh.truncate(volume.size * GiB);
    } catch (err) {
      await fh.close();
      await unlink(path).catch(() => undefined);
      throw err;
    }
    await fh.close();
    return null;
  }

  async deleteVolume(volume: DriverVolume): Promise<void> {
    try {
      await unlink(this.localPath(volume));
    } catch (err) {
      // Already gone is success, as cinder's LVM driver treats a missing LV.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async extendVolume(volume: DriverVolume, newSizeGb: number): Promise<void> {
    const path = this.localPath(volume);
    const current = (await stat(path)).size;
    const wanted = newSizeGb * GiB;
    if (wanted < current) {
      throw new Error(`cannot shrink ${volume.name} from ${current / GiB} GiB to ${newSizeGb} GiB`);
    }
    await truncate(path, wanted);
  }

  async getVolumeStats(): Promise<BackendStats> {
    const fs = await statfs(this.opts.directory);
    const total = fs.blocks * fs.bsize;
    const free = fs.bavail * fs.bsize;
    let provisioned = 0;
    let count = 0;
    for (const entry of await readdir(this.opts.directory, { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      try {
        provisioned += (await stat(join(this.opts.directory, entry.name))).size;
        count += 1;
      } catch {
        // Deleted while we were counting: not part of the pool any more.
      }
    }
    const pool = {
      pool_name: this.opts.backendName,
      total_capacity_gb: bytesToGiB(total),
      free_capacity_gb: bytesToGiB(free),
      reserved_percentage: this.opts.reservedPercentage,
      location_info: `${this.className}:${this.opts.hostname}:${this.opts.directory}`,
      QoS_support: false,
      provisioned_capacity_gb: bytesToGiB(provisioned),
      max_over_subscription_ratio: formatOverSubscriptionRatio(this.opts.maxOverSubscriptionRatio),
      thin_provisioning_support: true,
      thick_provisioning_support: false,
      total_volumes: count,
      filter_function: this.opts.filterFunction,
      goodness_function: this.opts.goodnessFunction,
      multiattach: true,
      backend_state: 'up' as const,
    };
    return {
      volume_backend_name: this.opts.backendName,
      vendor_name: 'Open Source',
      driver_version: VERSION,
      storage_protocol: this.opts.storageProtocol,
      shared_targets: false,
      sparse_copy_volume: true,
      pools: [pool],
    };
  }
}
