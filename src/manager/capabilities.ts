// What the volume manager adds to the driver's statistics before they go to the scheduler, as
// cinder's VolumeManager._report_driver_status does: the allocated capacity it tracks per pool,
// `cacheable` for block protocols, and the backend's filter and goodness functions.
import type { BackendStats } from '../../drivers/driver.js';

/** cinder.common.constants.CACHEABLE_PROTOCOLS */
const CACHEABLE_PROTOCOLS = new Set(['FC', 'iSCSI', 'iscsi', 'NVMe-oF', 'NVMeOF', 'nvmeof']);

export interface CapabilityInputs {
  stats: BackendStats;
  /** GiB allocated per pool name, counted from the volumes of this backend. */
  allocatedGbByPool: ReadonlyMap<string, number>;
  filterFunction: string | null;
  goodnessFunction: string | null;
  /** [backend] extra_capabilities: merged into every pool. */
  extraCapabilities?: Record<string, unknown>;
  /**
   * The exports' layout decides shared_targets, whatever the driver says (VolumeExports.sharedTargets);
   * null (NVMe subsystems shared per host, volumes written NULL so consumers always lock) is reported
   * as true: the targets are shared.
   */
  sharedTargets?: boolean | null;
}

export function buildCapabilities(input: CapabilityInputs): Record<string, unknown> {
  const report: Record<string, unknown> = structuredClone(input.stats) as Record<string, unknown>;
  const pools = report.pools as Array<Record<string, unknown>>;
  for (const pool of pools) {
    if (input.extraCapabilities) Object.assign(pool, input.extraCapabilities);
    pool.allocated_capacity_gb = input.allocatedGbByPool.get(String(pool.pool_name)) ?? 0;
    if (CACHEABLE_PROTOCOLS.has(String(report.storage_protocol)) && (pool.cacheable === undefined || pool.cacheable === null)) {
      pool.cacheable = true;
    }
  }
  if (input.sharedTargets !== undefined) report.shared_targets = input.sharedTargets ?? true;
  if (!('filter_function' in report)) report.filter_function = input.filterFunction;
  if (!('goodness_function' in report)) report.goodness_function = input.goodnessFunction;
  return report;
}

/** The `properties` cinder's driver.init_capabilities adds for get_capabilities(discover=True). */
export function standardCapabilityProperties(): Record<string, unknown> {
  const boolProp = (title: string, description: string) => ({ title, description, type: 'boolean' });
  return {
    thin_provisioning: boolProp('Thin Provisioning', 'Sets thin provisioning.'),
    compression: boolProp('Compression', 'Enables compression.'),
    qos: boolProp('QoS', 'Enables QoS.'),
    replication_enabled: boolProp('Replication', 'Enables replication.'),
  };
}
