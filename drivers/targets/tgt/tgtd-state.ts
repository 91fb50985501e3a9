// What every tgt helper of this process shares per tgtd (per control port): the per-IQN target
// mutexes, the tid allocator, the handoffs between two operations on one target, and the few tgtadm
// steps both layouts take the same way (create a target on a free tid, close sessions, delete a
// target and check it is gone). tgt-target.ts (per volume) and tgt-host-target.ts (per host) both
// export through the same tgtd, so they must allocate tids and lock targets through one state.
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { log } from '../../../src/log.js';
import type { ChapCredentials } from '../../../src/iscsi/index.js';
import type { TgtAccountRecord } from './tgt-accounts.js';
import {
  bindAccountArgv,
  deleteConnectionArgv,
  deleteTargetArgv,
  isTgtadmError,
  newAccountArgv,
  newTargetArgv,
  setTargetStateArgv,
  unbindInitiatorAddressArgv,
  unbindInitiatorNameArgv,
  type Tgtadm,
  type TgtadmContext,
} from './tgtadm.js';
import { isInitiatorNameAcl, type TargetListing, type TgtTargetInfo } from './tgtadm-parse.js';

// One per-IQN mutex per tgtd (control port) for the whole process: a target, and the CHAP account
// made for it, belong to that tgtd, whichever backend's helper touches them. Likewise one tid
// allocator per tgtd. A fixed set of entries (one per control port): nothing per export stays here,
// the mutexes drop a key when its last operation ends.
export interface DaemonState {
  targetLocks: KeyedMutex;
  tidLock: KeyedMutex;
  /** per IQN, at most HANDOFF_MS old: swept at every operation */
  handoffs: Map<string, Handoff>;
  /** targets created through this process so far (a listing read before the last one may lack it) */
  creates: number;
  /** the tid of the last target created through this process */
  lastTid: number;
}
const daemons = new Map<number, DaemonState>();

export function daemonState(controlPort: number | undefined): DaemonState {
  const key = controlPort ?? 0;
  let d = daemons.get(key);
  if (!d) {
    d = { targetLocks: new KeyedMutex(), tidLock: new KeyedMutex(), handoffs: new Map(), creates: 0, lastTid: 0 };
    daemons.set(key, d);
  }
  return d;
}

/** Keys in the per-tgtd state of this process: mutexes held or awaited, handoffs (tests and diagnostics). */
export function tgtLockKeys(controlPort?: number): { targets: string[]; tids: string[]; handoffs: string[] } {
  const d = daemons.get(controlPort ?? 0);
  return { targets: d?.targetLocks.busyKeys() ?? [], tids: d?.tidLock.busyKeys() ?? [], handoffs: [...(d?.handoffs.keys() ?? [])] };
}

/** A listing, the number of targets this process had created when it was read, and the tgtd that served it. */
export interface Snapshot {
  listing: TargetListing;
  creates: number;
  /** pid of the serving tgtd, read just before the listing (null: unknown) */
  pid: number | null;
}

/**
 * How long what one operation read and did stays good for the next operation on the same target.
 * cinder-volume's manager runs create_export then initialize_connection for an attach, and
 * terminate_connection then remove_export for a detach, back to back under the volume's lock: the
 * second of each pair takes the target's state from the first instead of reading the whole listing
 * again, if it comes within this time and the same tgtd process (by pid) still serves. The state
 * is the first operation's live read plus its own changes; the one thing it cannot see is someone
 * else changing our target on tgtd within that time, which the old code could not see either
 * between its read and its change. Any other operation on the target drops it.
 */
export const HANDOFF_MS = 2000;

export interface Handoff {
  snapshot: Snapshot;
  /** the target after the operation that left it */
  target: TgtTargetInfo;
  at: number;
}

/** Unbind one ACL entry as tgtd lists it: an initiator name, or an address/network/ALL. */
export function unbindAclArgv(ctx: TgtadmContext, tid: number, entry: string): string[] {
  return isInitiatorNameAcl(entry) ? unbindInitiatorNameArgv(ctx, tid, entry) : unbindInitiatorAddressArgv(ctx, tid, entry);
}

/**
 * `--op new --mode target` with the next free tid (one above every tid in use, as tgt-admin
 * does); retried if another tool took that tid. A target this process made after `snap` was read
 * is missing from it, so the tid is then also above the last one made here.
 */
export async function createTargetOnFreeTid(adm: Tgtadm, daemon: DaemonState, iqn: string, snap: Pick<Snapshot, 'listing' | 'creates'>, driver: string): Promise<TgtTargetInfo> {
  return daemon.tidLock.run('tid', async () => {
    let { listing } = snap;
    let stale = daemon.creates !== snap.creates;
    for (let attempt = 1; attempt <= 5; attempt++) {
      if (attempt > 1) {
        listing = await adm.listTargets();
        stale = false;
      }
      const existing = listing.find(iqn);
      if (existing) return existing;
      const tid = stale ? Math.max(listing.nextFreeTid(), daemon.lastTid + 1) : listing.nextFreeTid();
      if (await adm.runTolerating(newTargetArgv(adm.ctx, tid, iqn), 'target-exists')) {
        daemon.creates += 1;
        daemon.lastTid = tid;
        // what tgtd makes: a ready target with only the controller LUN 0
        return { tid, iqn, driver, state: 'ready', nexuses: [], luns: [], accounts: [], outgoingAccounts: [], acls: [] };
      }
    }
    throw new Error(`could not allocate a tid for ${iqn}`);
  });
}

/** Close the connections of sessions whose initiator matches (they cannot log in again). */
export async function closeSessions(adm: Tgtadm, target: Pick<TgtTargetInfo, 'tid' | 'iqn' | 'nexuses'>, matches: (initiator: string) => boolean): Promise<void> {
  for (const nx of target.nexuses.filter((n) => matches(n.initiator))) {
    const conns = nx.connections.length > 0 ? nx.connections : [{ cid: 0, address: null }];
    for (const c of conns) {
      await adm.runTolerating(deleteConnectionArgv(adm.ctx, target.tid, nx.nexus, c.cid), 'session-not-found', 'connection-not-found', 'invalid-request');
      log().info({ iqn: target.iqn, initiator: nx.initiator, sid: nx.nexus, cid: c.cid }, 'closed iSCSI session of revoked initiator');
    }
  }
}

/**
 * Revoke every ACL (nobody can log in again), close the sessions, then delete the target. tgtd
 * refuses even a forced delete while a command is in flight ("this logical unit is still active"),
 * so that is retried until `busyTimeoutMs`. tgt sometimes ignores --force silently (launchpad bug
 * 1305343); as cinder, check and retry without it. `known` is the target as the caller read it
 * (its ACLs and sessions); without it the listing is read.
 */
export async function deleteTargetChecked(adm: Tgtadm, tid: number, iqn: string, busyTimeoutMs: number, known?: Pick<TgtTargetInfo, 'acls' | 'nexuses'>): Promise<void> {
  let target: Pick<TgtTargetInfo, 'acls' | 'nexuses' | 'tid' | 'iqn'> | undefined;
  if (known) target = { ...known, tid, iqn };
  else {
    const found = (await adm.listTargets()).find(iqn);
    target = found && found.tid === tid ? found : undefined;
  }
  if (target) {
    for (const a of target.acls) await adm.runTolerating(unbindAclArgv(adm.ctx, tid, a), 'acl-not-found');
    await closeSessions(adm, target, () => true);
  }
  const deadline = Date.now() + busyTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await adm.runTolerating(deleteTargetArgv(adm.ctx, tid, { force: true }), 'target-not-found');
      break;
    } catch (e) {
      if (!isTgtadmError(e, 'lun-busy', 'target-busy') || Date.now() > deadline) throw e;
      if (attempt === 1) log().info({ iqn, tid }, 'target busy with in-flight commands; retrying delete');
      await sleep(Math.min(50 * attempt, 500));
    }
  }
  // verified with one small request; only a tid still in use needs the listing (ours, or a new target's?)
  if (await adm.targetExists(tid)) {
    const still = (await adm.listTargets()).find(iqn);
    if (still && still.tid === tid) {
      log().warn({ iqn, tid }, 'silent failure of forced target removal; retrying without --force');
      await adm.runTolerating(deleteTargetArgv(adm.ctx, tid), 'target-not-found');
    }
    if ((await adm.listTargets()).find(iqn)) throw new Error(`target ${iqn} (tid ${tid}) is still present after delete`);
  }
}

/** Retry `op` while tgtd answers that the LUN or target has commands in flight, up to `busyTimeoutMs`. */
export async function retryWhileBusy<T>(op: () => Promise<T>, busyTimeoutMs: number): Promise<T> {
  const deadline = Date.now() + busyTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (!isTgtadmError(e, 'lun-busy', 'target-busy') || Date.now() > deadline) throw e;
      await sleep(Math.min(50 * attempt, 500));
    }
  }
}

/**
 * A target made ready (one left offline by an interrupted extend admits nobody) with exactly one
 * incoming CHAP account, ours. Bound means it exists; otherwise tgtd is asked, and a new account is
 * recorded before it is created, so a crash right after leaves it recognisably ours.
 */
export async function readyWithOnlyAccount(adm: Tgtadm, record: TgtAccountRecord, target: TgtTargetInfo, chap: ChapCredentials): Promise<void> {
  const tid = target.tid;
  if (target.state !== null && target.state !== 'ready') {
    await adm.run(setTargetStateArgv(adm.ctx, tid, 'ready'));
    log().warn({ iqn: target.iqn, tid, state: target.state }, 'target was not ready; set it ready');
  }
  if (!target.accounts.includes(chap.username)) {
    const accounts = await adm.showAccounts();
    if (!accounts.includes(chap.username)) {
      await record.remember(chap.username, target.iqn);
      await adm.runTolerating(newAccountArgv(adm.ctx, chap.username, chap.password), 'account-exists');
    }
    await adm.runTolerating(bindAccountArgv(adm.ctx, tid, chap.username), 'account-exists', 'binding-exists');
  }
  for (const other of target.accounts.filter((a) => a !== chap.username)) await adm.unbindAccount(tid, other);
}
