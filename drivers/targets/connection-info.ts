// The target part of connection_info for an iSCSI export (targets/iscsi.py
// _get_iscsi_properties + initialize_connection), measured against cinder 21:
//
//   {"driver_volume_type": "iscsi",
//    "data": {"target_discovered": false, "target_portal": "127.0.0.1:3260",
//             "target_iqn": "iqn.2010-10.org.openstack:volume-<id>", "target_lun": 1,
//             "volume_id": "<id>", "auth_method": "CHAP", "auth_username": "<20>",
//             "auth_password": "<16>"}}
//
// target_portals/target_iqns/target_luns are added only when there is more than one portal
// (iscsi_secondary_ip_addresses) or the connector asks for multipath. Keys the manager adds on top
// (manager.py): encrypted, qos_specs, access_mode, cacheable, and discard when supported; those
// are not set here. provider_geometry (physical/logical_block_size) is not used by tgt or LIO.
import { invalidInput } from '../../src/errors.js';
import { parseProviderAuth, parseProviderLocation } from '../../src/iscsi/index.js';
import type { ConnectionInfo } from './target.js';

export interface IscsiPropertiesInput {
  id: string;
  /** provider_location, or the line found by discovery when `discovered` is true */
  location: string;
  providerAuth: string | null;
  /** true when `location` did not come from the volume row (cinder's discovery fallback) */
  discovered?: boolean;
}

export function buildIscsiProperties(input: IscsiPropertiesInput, multipath: boolean): Record<string, unknown> {
  const loc = parseProviderLocation(input.location);
  const props: Record<string, unknown> = { target_discovered: input.discovered === true };
  const n = loc.portals.length;
  if (n > 1 || multipath) {
    props.target_portals = [...loc.portals];
    props.target_iqns = loc.portals.map(() => loc.iqn);
    props.target_luns = loc.portals.map(() => loc.lun);
  }
  props.target_portal = loc.portals[0];
  props.target_iqn = loc.iqn;
  props.target_lun = loc.lun;
  props.volume_id = input.id;
  const creds = parseProviderAuth(input.providerAuth);
  if (creds) {
    props.auth_method = 'CHAP';
    props.auth_username = creds.username;
    props.auth_password = creds.password;
  }
  return props;
}

/** initialize_connection's return: driver_volume_type is target_protocol (iscsi or iser). */
export function buildConnectionInfo(targetProtocol: string, input: IscsiPropertiesInput, multipath: boolean): ConnectionInfo {
  if (targetProtocol !== 'iscsi' && targetProtocol !== 'iser') {
    throw invalidInput(`target_protocol ${JSON.stringify(targetProtocol)} is not an iSCSI protocol`);
  }
  return { driver_volume_type: targetProtocol, data: buildIscsiProperties(input, multipath) };
}
