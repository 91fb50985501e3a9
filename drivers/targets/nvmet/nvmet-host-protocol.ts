// The per-host layout over NVMe/TCP (nvmet-host-target.ts): a subsystem per compute host admitting
// the connector's `nqn` (never allow_any_host), connection_info as os-brick 6.1's NVMeOFConnector
// reads it with the namespace's nsid as a string and its nguid, no CHAP, and
// volumes.shared_targets = NULL: cinder's _driver_shares_targets answers None for NVMe-oF, which
// makes nova take os-brick's per-backend lock around every attach and detach on the host
// (CONTRACT-WAVE2 A2), as a subsystem shared by several volumes needs.
import { invalidInput, volumeBackendApiException } from '../../../src/errors.js';
import { connectionInfoData, type HostTargetProtocol, type ToldByConnectionInfo } from '../host-target/host-target-protocol.js';
import type { HostTargetRecord, LunMapping, LunRange } from '../host-target/host-target-registry.js';
import { buildNvmeofConnectionInfo } from '../nvmeof-connection-info.js';
import type { ConnectionInfo, Connector } from '../target.js';
import { canonicalUuid, hostSubsystemNqn, subsystemNqn } from './nvmet-naming.js';
import { connectorNqn } from './nvmet-target.js';

export interface NvmetHostProtocolOptions {
  targetPrefix: string;
  /** backend name: part of each host subsystem's NQN */
  backend: string;
  /** where hosts connect (NvmetTarget.portals) */
  portals: () => ReadonlyArray<{ ip: string; port: number }>;
}

export class NvmetHostProtocol implements HostTargetProtocol {
  readonly admitsWhat = 'host NQN';
  readonly usesChap = false;
  readonly sharedTargets = null;

  constructor(private readonly o: NvmetHostProtocolOptions) {}

  admittedName(connector: Connector): string {
    return connectorNqn(connector);
  }

  /** The kernel compares host NQNs byte for byte. */
  sameName(a: string, b: string): boolean {
    return a === b;
  }

  targetName(host: string): string {
    return hostSubsystemNqn(this.o.targetPrefix, this.o.backend, host);
  }

  perVolumeTargetName(volume: { id: string; name: string }): string {
    return subsystemNqn(this.o.targetPrefix, volume.id);
  }

  connectionInfo(t: HostTargetRecord, m: LunMapping, connector: Connector): ConnectionInfo {
    return buildNvmeofConnectionInfo({ nqn: t.iqn, nsid: m.lun, nguid: canonicalUuid(m.serial), portals: this.o.portals(), hostNqn: connectorNqn(connector) });
  }

  told(ci: Record<string, unknown> | null, name: string, range: LunRange): ToldByConnectionInfo | null {
    const d = connectionInfoData(ci);
    if (!d || (d.target_nqn ?? d.nqn) !== name) return null;
    const nsid = typeof d.ns_id === 'string' && /^\d{1,10}$/.test(d.ns_id) ? Number(d.ns_id) : d.ns_id;
    return typeof nsid === 'number' && Number.isSafeInteger(nsid) && nsid >= range.min && nsid <= range.max ? { lun: nsid } : {};
  }

  attachFailed(volumeId: string, cause: unknown): Error {
    return volumeBackendApiException(`Failed to map volume ${volumeId} into its host's NVMe subsystem`, cause);
  }

  detachFailed(volumeId: string, cause: unknown): Error {
    return volumeBackendApiException(`Failed to unmap volume ${volumeId} from its host's NVMe subsystem`, cause);
  }

  sharedNameError(name: string, otherHost: string, host: string): Error {
    return invalidInput(`host NQN ${name} is already attached from compute host ${otherHost}; ${host} presents the same NQN (give each host its own /etc/nvme/hostnqn)`);
  }
}
