// The order in which export and connection operations run.
//
// cinder-api serialises only attachment_update per (volume, host) and nothing serialises
// attachment_delete, so the volume service sees, for one volume, two detaches at once, or a detach
// and an attach at once. Decided side by side, each sees the other's attachment as still live
// (cinder-api marks a row detached only after our RPC returns) and neither revokes: a host stays
// admitted with no attachment left (OpenStack bug 2004555's class), or an attach uses an export
// that a detach is removing. So every operation that creates, uses, revokes or removes an export
// (initialize/terminate, attachment_update/delete, remove_export, legacy attach/detach, the
// restart restore) runs under two in-process locks, always taken in this order:
//   1. the volume's connection lock: one export operation per volume at a time;
//   2. the initiator host's lock: one at a time per compute host (its connector's host, else its
//      initiator), so what a host is admitted to changes one step at a time.
// Never take them the other way round. Locks are in-process only: one agent serves a backend.
import type { Connector } from '../../../drivers/exports.js';
import type { FlowDeps } from './common.js';

export function volumeConnectionLockName(volumeId: string): string {
  return `connection-volume-${volumeId}`;
}

/** The host a connector stands for: nova's `host`, else the iSCSI initiator, else the NQN. */
export function connectorHostKey(connector: Connector | null | undefined): string | null {
  if (!connector) return null;
  for (const key of ['host', 'initiator', 'nqn'] as const) {
    const v = connector[key];
    if (typeof v === 'string' && v !== '') return `${key}:${v}`;
  }
  return null;
}

/** Runs `fn` holding the volume's connection lock (step 1 of the order above). */
export async function withVolumeConnections<T>(deps: FlowDeps, volumeId: string, fn: () => Promise<T>): Promise<T> {
  // A volume whose export the restart restore has not reached yet is restored first, outside
  // the lock: the restore takes this same lock for that volume.
  await deps.pendingRestore?.restoreFirst(volumeId);
  return deps.locks.run(volumeConnectionLockName(volumeId), fn);
}

/** Runs `fn` holding the initiator host's lock (step 2); call only inside withVolumeConnections. */
export async function withInitiatorHost<T>(deps: FlowDeps, connector: Connector | null | undefined, fn: () => Promise<T>): Promise<T> {
  const key = connectorHostKey(connector);
  if (!key) return fn();
  return deps.locks.run(`connection-host-${key}`, fn);
}
