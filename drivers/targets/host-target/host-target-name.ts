// The name of a host target (target_layout = per-host): one iSCSI target per compute host and
// backend, `target_prefix` + `cb-<host, sanitised and cut>-<hash>`.
//
// Why the hash: nova's connector `host` is a free string (a hostname, an FQDN, sometimes upper
// case), and an IQN allows only lower-case letters, digits, '.', '-' and ':' (RFC 3722). Two hosts
// whose names sanitise alike ("Compute_1" and "compute-1") must still get distinct targets, and two
// backends of one agent serving the same host must not share one (each has its own LUNs and
// CHAP). So the readable part is only for people; the 12 hex digits of SHA-256 over the backend
// name and the raw host name are what make the IQN unique (2^48: a collision among a fleet's
// hosts is not a practical concern, and if it happened the registry would refuse the second
// host, see HostTargetRegistry.claimInitiator, instead of sharing a target).
import { createHash } from 'node:crypto';
import { assertTargetIqn } from '../../../src/iscsi/index.js';
import { invalidInput } from '../../../src/errors.js';

/** What follows target_prefix in every host target's IQN: how the per-volume helpers tell them apart. */
export const HOST_TARGET_MARK = 'cb-';

/** The readable part stays short so that the IQN fits iSCSI's 223 bytes with any target_prefix. */
export const HOST_LABEL_MAX = 40;

/** `host` lower-cased, every run of characters outside [a-z0-9.-] made one '-', cut to HOST_LABEL_MAX. */
export function hostLabel(host: string): string {
  const label = host
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, HOST_LABEL_MAX)
    .replace(/[-.]+$/, '');
  return label === '' ? 'host' : label;
}

/** What names `host`'s target on backend `backend` after the protocol's prefix: `cb-<label>-<hash>`. */
export function hostTargetSuffix(backend: string, host: string): string {
  if (host === '') throw invalidInput('a host target needs a connector host or initiator');
  const digest = createHash('sha256').update(`${backend}\0${host}`).digest('hex').slice(0, 12);
  return `${HOST_TARGET_MARK}${hostLabel(host)}-${digest}`;
}

/** The IQN of `host`'s target on backend `backend`. */
export function hostTargetIqn(targetPrefix: string, backend: string, host: string): string {
  const iqn = `${targetPrefix}${hostTargetSuffix(backend, host)}`;
  assertTargetIqn(iqn);
  return iqn;
}

/**
 * The SCSI identity of a volume's LUN: its name id (the uuid in `volume-<uuid>`, which follows
 * `_name_id` after a migration, like the backing object), else the volume id. An initiator that
 * compares identifiers (os-brick does, multipath does) can then never take one volume's LUN for
 * another's.
 */
export function volumeSerial(volume: { id: string; name: string }): string {
  const m = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(volume.name);
  return (m?.[1] ?? volume.id).toLowerCase();
}
