// Which driver serves a backend section. An unchanged cinder.conf names cinder's class path, so
// both cinder's names and short ones are accepted. A section that names neither a driver nor a
// volume group gets the file pool: the zero-setup default for a newcomer's first run.
import { hostname } from 'node:os';
import type { BackendConfig, CinderConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { checkFilePoolDirectory } from '../config/backend-checks.js';
import type { VolumeDriver } from '../../drivers/driver.js';
import { LvmVolumeDriver } from '../../drivers/lvm/lvm-driver.js';
import { copy } from '../native/index.js';
import { withThinSourceMap } from '../../drivers/lvm/volume-copy.js';
import { log } from '../log.js';
import { FileVolumeDriver } from '../../drivers/file/file-driver.js';

const FILE_NAMES = new Set(['file', 'cinderblock.file', 'cinderblock.drivers.file.FileVolumeDriver']);
const LVM_NAMES = new Set(['lvm', 'cinder.volume.drivers.lvm.LVMVolumeDriver', 'cinder.volume.drivers.lvm.LVMISCSIDriver']);

export type DriverKind = 'file' | 'lvm';

export function driverKind(config: CinderConfig, backend: BackendConfig): DriverKind {
  const explicitDriver = config.rawValue(backend.name, 'volume_driver') ?? config.rawValue('backend_defaults', 'volume_driver');
  const explicitVg = config.rawValue(backend.name, 'volume_group') ?? config.rawValue('backend_defaults', 'volume_group');
  if (explicitDriver === undefined && explicitVg === undefined) return 'file';
  const name = backend.volume_driver.trim();
  if (FILE_NAMES.has(name)) return 'file';
  if (LVM_NAMES.has(name)) return 'lvm';
  throw new ConfigError(
    `[${backend.name}] volume_driver = ${name} is not supported by cinderblock; use ` +
      `cinder.volume.drivers.lvm.LVMVolumeDriver (or lvm) for LVM, or file for the file pool`,
  );
}

/**
 * cinder's storage_protocol for a target_protocol. The LVM driver reports its target helper's
 * protocol: 'nvmeof' for the nvmet helper (targets/nvmeof.py protocol = NVMEOF_VARIANT_2), which
 * is also what makes the scheduler's volume rows cacheable like iSCSI ones.
 */
export function storageProtocol(targetProtocol: string): string {
  if (targetProtocol === 'nvmet_tcp' || targetProtocol === 'nvmet_rdma') return 'nvmeof';
  return targetProtocol === 'iscsi' ? 'iSCSI' : targetProtocol;
}

/** The backend's data side; its export side is built from it (target-factory.ts createExports). */
export function createDriver(config: CinderConfig, backend: BackendConfig): VolumeDriver {
  const kind = driverKind(config, backend);
  const common = {
    backendName: backend.volume_backend_name ?? backend.name,
    hostname: hostname(),
    reservedPercentage: backend.reserved_percentage,
    storageProtocol: storageProtocol(backend.target_protocol),
    filterFunction: backend.filter_function,
    goodnessFunction: backend.goodness_function,
  };
  if (kind === 'file') {
    checkFilePoolDirectory(backend.name, backend.file_volume_dir, backend.volumes_dir);
    const ratio = backend.max_over_subscription_ratio;
    return new FileVolumeDriver({
      ...common,
      directory: backend.file_volume_dir,
      maxOverSubscriptionRatio: ratio === 'auto' ? 'auto' : Number(ratio),
    });
  }
  const bpsLimit = backend.volume_copy_bps_limit || undefined;
  const engineCopy = async (src: string, dst: string, bytes: number, sparse: boolean, sync: boolean, sourceExtents?: ReadonlyArray<readonly [number, number]>) => {
    await copy(src, dst, { length: bytes, destinationIsZeroed: sparse, sync, ...(bpsLimit ? { bpsLimit } : {}), ...(sourceExtents ? { sourceExtents } : {}) });
  };
  // A thin source's unprovisioned blocks read as zeros: its pool's map says which to skip reading.
  const thinAwareCopy = withThinSourceMap((src, dst, o) => engineCopy(src, dst, o.sizeBytes, o.sparse, o.sync, o.sourceExtents), {
    onLookupError: (device, err) => log().warn({ err, device }, 'thin map lookup failed; copying every block of the source'),
    onMap: (device, map) =>
      map.readBy === 'thin_dump'
        ? log().warn({ device, reason: map.fallbackReason }, 'thin source map read by thin_dump: the in-process metadata reader refused the pool metadata')
        : log().debug({ device, extents: map.extents.length, mappedBytes: map.mappedBytes, lookup_ms: map.lookupMs }, 'thin source map'),
  });
  return new LvmVolumeDriver({
    ...common,
    // cinder's LVM driver names its pool 'LVM' when volume_backend_name is unset.
    backendName: backend.volume_backend_name,
    volumeGroup: backend.volume_group,
    lvmType: backend.lvm_type,
    lvmMirrors: backend.lvm_mirrors,
    lvmConfFile: backend.lvm_conf_file,
    lvmSuppressFdWarnings: backend.lvm_suppress_fd_warnings,
    volumeClear: backend.volume_clear,
    volumeClearSize: backend.volume_clear_size,
    volumeDdBlocksize: backend.volume_dd_blocksize,
    maxOverSubscriptionRatio: backend.max_over_subscription_ratio,
    // Thin LVs read as zeros until written: sparse copies skip writing zero blocks (conv=sparse).
    copy: thinAwareCopy,
    copyData: (src, dst, bytes) => engineCopy(src, dst, bytes, false, true),
  });
}
