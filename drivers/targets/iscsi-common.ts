// What every iSCSI target helper shares (cinder's targets/iscsi.py ISCSITarget): the options,
// the IQN of a volume, the portal list, provider_location, connector validation and the
// connection_info it returns. tgt and LIO helpers build on these functions.
import { isIP } from 'node:net';
import { invalidConnectorException as invalidConnector, invalidInput } from '../../src/errors.js';
import { log } from '../../src/log.js';
import { buildConnectionInfo } from './connection-info.js';
import { assertInitiatorName, assertPort, assertPortalHost, assertTargetIqn, formatProviderLocation, isIscsiName } from '../../src/iscsi/index.js';
import type { ConnectionInfo, Connector, ExportedVolume, TerminateOptions } from './target.js';
import { assertVolumeName } from './validate.js';

export { buildConnectionInfo, buildIscsiProperties } from './connection-info.js';

/** The cinder options an iSCSI target helper reads, resolved (no `$my_ip` left). */
export interface IscsiTargetOptions {
  /** target_prefix, default `iqn.2010-10.org.openstack:` */
  targetPrefix: string;
  /** target_ip_address */
  targetIpAddress: string;
  /** iscsi_secondary_ip_addresses */
  targetSecondaryIpAddresses: readonly string[];
  /** target_port, default 3260 */
  targetPort: number;
  /** target_protocol: iscsi or iser */
  targetProtocol: 'iscsi' | 'iser';
}

export const ISCSI_TARGET_DEFAULTS = {
  targetPrefix: 'iqn.2010-10.org.openstack:',
  targetSecondaryIpAddresses: [] as readonly string[],
  targetPort: 3260,
  targetProtocol: 'iscsi',
} as const;

export function validateIscsiTargetOptions(o: IscsiTargetOptions): void {
  if (typeof o.targetPrefix !== 'string' || o.targetPrefix === '' || /\s/.test(o.targetPrefix)) {
    throw invalidInput('target_prefix must be a non-empty string without whitespace');
  }
  assertPortalHost(o.targetIpAddress);
  for (const ip of o.targetSecondaryIpAddresses) assertPortalHost(ip);
  assertPort(o.targetPort);
  if (o.targetProtocol !== 'iscsi' && o.targetProtocol !== 'iser') {
    throw invalidInput(`target_protocol must be iscsi or iser for an iSCSI target helper, got ${JSON.stringify(o.targetProtocol)}`);
  }
}

/** `target_prefix + volume.name`, checked to be a valid iSCSI name. */
export function volumeIqn(targetPrefix: string, volumeName: string): string {
  assertVolumeName(volumeName);
  const iqn = `${targetPrefix}${volumeName}`;
  assertTargetIqn(iqn);
  return iqn;
}

/** target_ip_address followed by iscsi_secondary_ip_addresses (_get_portals_config). */
export function portalIps(o: IscsiTargetOptions): string[] {
  return [o.targetIpAddress, ...o.targetSecondaryIpAddresses];
}

/** provider_location for a new export on this host. */
export function iscsiLocation(o: IscsiTargetOptions, tid: string | number, iqn: string, lun: number): string {
  return formatProviderLocation({ ips: portalIps(o), port: o.targetPort, tid, iqn, lun });
}

/** validate_connector: `initiator` is required (InvalidConnectorException otherwise). */
export function validateIscsiConnector(connector: Connector | null | undefined): void {
  if (!connector || typeof connector !== 'object' || !('initiator' in connector)) {
    throw invalidConnector('initiator');
  }
}

/**
 * The initiator of a connector, checked to be an iSCSI name before it reaches a command line.
 * InvalidConnectorException when absent, InvalidInput when malformed.
 */
export function connectorInitiator(connector: Connector | null | undefined): string {
  validateIscsiConnector(connector);
  const initiator = (connector as Connector).initiator;
  if (initiator === undefined || initiator === null || initiator === '') throw invalidConnector('initiator');
  assertInitiatorName(initiator);
  return initiator;
}

/** connector.multipath as cinder reads it (`connector.get('multipath')`, truthy). */
export function connectorWantsMultipath(connector: Connector | null | undefined): boolean {
  return Boolean(connector?.multipath);
}

/** initialize_connection's reply for a volume whose export is recorded in provider_location. */
export function iscsiConnectionInfo(
  o: IscsiTargetOptions,
  v: Pick<ExportedVolume, 'id' | 'providerAuth'>,
  location: string,
  connector: Connector,
  discovered = false,
): ConnectionInfo {
  return buildConnectionInfo(o.targetProtocol, { id: v.id, location, providerAuth: v.providerAuth, discovered }, connectorWantsMultipath(connector));
}

/** iSCSI names compare case-insensitively (RFC 3722 normalises to lower case). */
export function sameIscsiName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** True for an IP literal (v4 or v6). */
export function isIpLiteral(host: string): boolean {
  return isIP(host) !== 0;
}

/** Which ACLs terminate_connection revokes: one initiator, or every one (`initiator` null, force). */
export interface Revocation {
  initiator: string | null;
  matches(name: string): boolean;
}

/**
 * The revocation policy every target helper shares (bug 2004555 is why it matters): nothing when the
 * initiator is not an iSCSI name (it can never have been bound), when another attachment of the same
 * initiator still needs the ACL, or when there is neither an initiator nor force; everyone on force
 * without a connector; otherwise exactly that initiator.
 */
export function revocationFor(connector: Connector | null, opts: TerminateOptions, where: { volumeId: string; iqn: string }): Revocation | null {
  const ids = { volume_id: where.volumeId, iqn: where.iqn };
  const raw = connector?.initiator;
  let initiator: string | null = null;
  if (raw !== undefined && raw !== null && raw !== '') {
    if (!isIscsiName(raw)) {
      log().warn(ids, 'terminate_connection: connector initiator is not an iSCSI name; nothing to revoke');
      return null;
    }
    initiator = raw;
  }
  if (opts.keepAcl) {
    log().debug({ ...ids, initiator }, 'terminate_connection: another attachment of this initiator remains; ACL kept');
    return null;
  }
  if (initiator === null && !opts.force) {
    log().warn(ids, 'terminate_connection without an initiator and without force: nothing to revoke');
    return null;
  }
  return { initiator, matches: (name) => initiator === null || sameIscsiName(name, initiator) };
}
