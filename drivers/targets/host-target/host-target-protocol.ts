// What the per-host layout needs to know of the wire protocol its host targets speak, so that one
// HostTargetExports (../../host-target-exports.ts) serves iSCSI (tgt, LIO: a target per host, LUNs)
// and NVMe/TCP (nvmet: a subsystem per host, namespaces) with the same registry, locks, LUN
// allocator and restore rules. The registry's words stay iSCSI's: a record's `iqn` is the target's
// name (an IQN, or a subsystem NQN), `initiators` are what the target admits (initiator names, or
// host NQNs) and a `lun` is a LUN number or an nsid.
import type { ChapCredentials } from '../../../src/iscsi/index.js';
import type { ConnectionInfo, Connector } from '../target.js';
import type { HostTargetRecord, LunMapping, LunRange } from './host-target-registry.js';

/** What an attachment's stored connection_info told the host about its host target. */
export interface ToldByConnectionInfo {
  lun?: number;
  chap?: ChapCredentials;
}

export interface HostTargetProtocol {
  /** How operators call what a target admits, for messages: "initiator", "host NQN". */
  readonly admitsWhat: string;
  /** Whether host targets carry CHAP: a record then holds the host's credentials, else null. */
  readonly usesChap: boolean;
  /**
   * volumes.shared_targets of a volume this layout exports (cinder's _driver_shares_targets):
   * true for iSCSI (os-brick then locks by its own rule), null for NVMe-oF (consumers always lock).
   */
  readonly sharedTargets: boolean | null;
  /** The connector's name the target admits; InvalidConnectorException when it has none. */
  admittedName(connector: Connector): string;
  /** Whether two admitted names are the same (iSCSI names compare without case). */
  sameName(a: string, b: string): boolean;
  /** The name of `host`'s target on this backend. */
  targetName(host: string): string;
  /** The name the per-volume layout gives the volume's target (a backend switched from per-volume). */
  perVolumeTargetName(volume: { id: string; name: string }): string;
  /** The target part of connection_info for one mapping of `t`. */
  connectionInfo(t: HostTargetRecord, m: LunMapping, connector: Connector): ConnectionInfo;
  /** What a stored connection_info told the host, when it names target `name`; checked as input. */
  told(ci: Record<string, unknown> | null, name: string, range: LunRange): ToldByConnectionInfo | null;
  /** What a failed map or unmap raises (cinder's exception for the protocol). */
  attachFailed(volumeId: string, cause: unknown): Error;
  detachFailed(volumeId: string, cause: unknown): Error;
  /** The refusal of a name another compute host already presents (cloned images). */
  sharedNameError(name: string, otherHost: string, host: string): Error;
}

/** The data of a stored connection_info: flat, as attachment_update returns it, or under `data`. */
export function connectionInfoData(ci: Record<string, unknown> | null): Record<string, unknown> | null {
  if (!ci) return null;
  return (ci.data !== null && typeof ci.data === 'object' ? ci.data : ci) as Record<string, unknown>;
}
