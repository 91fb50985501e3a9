// Names the nvmet helper gives a volume's export, all derived from values checked here:
//  - subsystem NQN `nqn.<target_prefix>-<volume id>`: cinder's nvmet.py _get_target_info, so a
//    subsystem cinder made is the one we find (with the default prefix that is
//    `nqn.iqn.2010-10.org.openstack:-<id>`; the id, not name_id, as cinder does);
//  - namespace device_uuid and device_nguid: the volume id, so the host finds its device by nguid
//    (os-brick) whatever nsid it has, and the same volume keeps the same identity after a restore;
//  - provider_location `<ip>:<port> tcp <nqn> <nsid>` as nvmeof.py get_nvmeof_location writes it;
//  - per host (target_layout = per-host): a subsystem per compute host, hostSubsystemNqn.
import { isUuid, uuidAfterPrefix } from '../../../src/validation/uuid.js';
import { invalidInput } from '../../../src/errors.js';
import { assertNqn, isNqn } from '../validate.js';
import { HOST_TARGET_MARK, hostTargetSuffix } from '../host-target/host-target-name.js';

/** What every subsystem NQN of ours starts with: only these are ever listed, changed or removed. */
export function subsystemNqnPrefix(targetPrefix: string): string {
  return `nqn.${targetPrefix}-`;
}

export function subsystemNqn(targetPrefix: string, volumeId: string): string {
  if (!isUuid(volumeId)) throw invalidInput(`volume id must be a UUID to name an NVMe subsystem, got ${JSON.stringify(String(volumeId).slice(0, 80))}`);
  const nqn = `${subsystemNqnPrefix(targetPrefix)}${volumeId}`;
  assertNqn(nqn, 'subsystem NQN (target_prefix + volume id)');
  return nqn;
}

/**
 * The subsystem of `host` on backend `backend` (target_layout = per-host):
 * `nqn.<target_prefix>-cb-<host label>-<hash>` (host-target-name.ts: readable part, and a hash that
 * keeps hosts whose names sanitise alike, and two backends, apart). Never a per-volume NQN: those
 * end in a volume id.
 */
export function hostSubsystemNqn(targetPrefix: string, backend: string, host: string): string {
  const nqn = `${subsystemNqnPrefix(targetPrefix)}${hostTargetSuffix(backend, host)}`;
  assertNqn(nqn, 'host subsystem NQN (target_prefix + host)');
  return nqn;
}

/** What every per-host subsystem NQN of ours starts with. */
export function hostSubsystemNqnPrefix(targetPrefix: string): string {
  return `${subsystemNqnPrefix(targetPrefix)}${HOST_TARGET_MARK}`;
}

/** The volume id in one of our subsystem NQNs; null for anyone else's. */
export function volumeIdOfSubsystem(targetPrefix: string, nqn: string): string | null {
  return uuidAfterPrefix(nqn, subsystemNqnPrefix(targetPrefix));
}

/** A UUID in the kernel's print form (%pUb: lower case, dashed), which os-brick also compares with. */
export function canonicalUuid(id: string): string {
  if (!isUuid(id)) throw invalidInput(`not a UUID: ${JSON.stringify(String(id).slice(0, 80))}`);
  const h = id.replace(/-/g, '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** device_uuid and device_nguid of the volume's namespace. */
export function namespaceIdentity(volumeId: string): { uuid: string; nguid: string } {
  const id = canonicalUuid(volumeId);
  return { uuid: id, nguid: id };
}

export function nvmetProviderLocation(ip: string, port: number, nqn: string, nsid: number): string {
  return `${ip}:${port} tcp ${nqn} ${nsid}`;
}

/** nvmetProviderLocation read back (IPv6 bracketed or not); null for anything else. */
export function parseNvmetProviderLocation(location: string | null): { portal: string; nqn: string; nsid: number } | null {
  const m = /^(\S+:\d{1,5}) tcp (\S+) (\d{1,10})$/.exec(location ?? '');
  if (!m) return null;
  const nsid = Number(m[3]);
  return isNqn(m[2]) && nsid >= 1 ? { portal: m[1]!, nqn: m[2]!, nsid } : null;
}
