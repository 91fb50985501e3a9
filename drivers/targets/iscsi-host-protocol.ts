// The per-host layout over iSCSI (tgt and LIO): a target per compute host named by
// host-target-name.ts, admitting initiator names, the host's CHAP in every connection_info
// (CONTRACT-WAVE2 A5), volumes.shared_targets = true.
import { invalidInput, iscsiTargetAttachFailed, iscsiTargetDetachFailed } from '../../src/errors.js';
import { assertChapCredential, formatProviderAuth } from '../../src/iscsi/index.js';
import { hostTargetIqn } from './host-target/host-target-name.js';
import { connectionInfoData, type HostTargetProtocol, type ToldByConnectionInfo } from './host-target/host-target-protocol.js';
import type { HostTargetRecord, LunMapping, LunRange } from './host-target/host-target-registry.js';
import { connectorInitiator, iscsiConnectionInfo, iscsiLocation, sameIscsiName, volumeIqn, type IscsiTargetOptions } from './iscsi-common.js';
import type { ConnectionInfo, Connector } from './target.js';

export class IscsiHostProtocol implements HostTargetProtocol {
  readonly admitsWhat = 'initiator';
  readonly usesChap = true;
  readonly sharedTargets = true;

  /** `backend`: part of each host target's IQN (two backends never share a host's target). */
  constructor(
    private readonly iscsi: IscsiTargetOptions,
    private readonly backend: string,
  ) {}

  admittedName(connector: Connector): string {
    return connectorInitiator(connector);
  }

  sameName(a: string, b: string): boolean {
    return sameIscsiName(a, b);
  }

  targetName(host: string): string {
    return hostTargetIqn(this.iscsi.targetPrefix, this.backend, host);
  }

  perVolumeTargetName(volume: { id: string; name: string }): string {
    return volumeIqn(this.iscsi.targetPrefix, volume.name);
  }

  connectionInfo(t: HostTargetRecord, m: LunMapping, connector: Connector): ConnectionInfo {
    if (!t.chap) throw invalidInput(`host target ${t.iqn} has no CHAP credentials in its record; move the registry away to have it rebuilt from the database`);
    const location = iscsiLocation(this.iscsi, 1, t.iqn, m.lun);
    return iscsiConnectionInfo(this.iscsi, { id: m.volumeId, providerAuth: formatProviderAuth(t.chap) }, location, connector);
  }

  told(ci: Record<string, unknown> | null, name: string, range: LunRange): ToldByConnectionInfo | null {
    const d = connectionInfoData(ci);
    if (!d || d.target_iqn !== name) return null;
    const out: ToldByConnectionInfo = {};
    const lun = typeof d.target_lun === 'string' ? Number(d.target_lun) : d.target_lun;
    if (typeof lun === 'number' && Number.isSafeInteger(lun) && lun >= range.min && lun <= range.max) out.lun = lun;
    try {
      assertChapCredential(d.auth_username, 'username');
      assertChapCredential(d.auth_password, 'password');
      out.chap = { username: d.auth_username, password: d.auth_password };
    } catch {
      // no usable CHAP in it: a new one is made
    }
    return out;
  }

  attachFailed(volumeId: string, cause: unknown): Error {
    return iscsiTargetAttachFailed(volumeId, cause);
  }

  detachFailed(volumeId: string, cause: unknown): Error {
    return iscsiTargetDetachFailed(volumeId, cause);
  }

  sharedNameError(name: string, otherHost: string, host: string): Error {
    return invalidInput(
      `initiator ${name} is already attached through host ${otherHost}, and now host ${host} presents it too. Two compute hosts must not share an iSCSI initiator name: give each its own in /etc/iscsi/initiatorname.iscsi and restart iscsid.`,
    );
  }
}
