// The protocol side of the per-host layout: what a target tool (tgt, LIO) does to make one host
// target on its daemon match the registry's record of it (host-target-registry.ts). The record is
// the desired state; `apply` edits only what differs, so mapping a volume adds one LUN, and
// unmapping one removes that LUN and nothing else: the host's sessions, and every other LUN it
// uses, stay as they are (CONTRACT-WAVE2 A9: unmap removes only this host's view of this volume).
import type { HostTargetRecord, LunRange } from './host-target-registry.js';

/** A LUN as the daemon serves it now. */
export interface LiveLun {
  lun: number;
  /** null when the daemon does not say (tgt's controller LUN) */
  backingPath: string | null;
  /** unit serial as the daemon reports it, trimmed; null when none is set */
  serial: string | null;
}

/** One of our host targets as it is on the daemon now. */
export interface LiveHostTarget {
  iqn: string;
  luns: LiveLun[];
  /** initiators admitted (tgt: name ACLs of the target; LIO: node ACLs) */
  initiators: string[];
  /** for LIO: the LUNs mapped into each initiator's ACL; tgt admits every initiator to every LUN */
  mappedLuns?: Record<string, number[]>;
  /** logged-in sessions */
  sessions: Array<{ initiator: string; address: string | null }>;
  /** CHAP users bound to the target */
  chapUsers: string[];
}

export interface HostTargetHelper {
  /** The LUN numbers this tool offers for a host target. */
  readonly lunRange: LunRange;
  /** Whether an IQN is one of ours (target_prefix + `cb-`): the audit and the sweep look at no other target. */
  isHostTargetIqn(iqn: string): boolean;
  /**
   * Make the daemon's target exactly `t`: CHAP bound before any LUN or initiator, exactly the LUNs
   * of `t.luns` (with their serials), exactly the initiators of `admittedInitiators(t)` (sessions
   * of removed initiators closed). A record without LUNs deletes the target and closes its
   * sessions. Idempotent. Serialised per target by the caller.
   */
  apply(t: HostTargetRecord): Promise<void>;
  /** Delete a host target that has no record (audit --fix of an orphan): ACLs, sessions, target. */
  remove(iqn: string): Promise<void>;
  /** Make a grown backing device's new size visible on one LUN. */
  extend(t: HostTargetRecord, lun: number): Promise<void>;
  /** Every host target of ours live on the daemon (never starts a daemon). */
  list(): Promise<LiveHostTarget[]>;
  /** Only the IQNs of list(), where the tool can tell them cheaply (a probe asks every few seconds). */
  liveIqns?(): Promise<string[]>;
  /** The LUNs of a live target's record it does not serve, where the tool can tell cheaply (the same probe). */
  missingLuns?(t: HostTargetRecord): Promise<number[]>;
}
