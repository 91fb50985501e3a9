// target_helper = tgtadm: iSCSI exports through the tgt user-space target (cinder's targets/tgt.py),
// with one deliberate difference. cinder's tgt exports let ANY initiator that knows the CHAP secret
// log in (tgt-admin binds `initiator-address ALL`). Here a target admits only the initiators that are
// attached: initializeConnection binds connector.initiator (`--initiator-name`),
// terminateConnection unbinds it and closes its sessions, so after a detach that host is refused at
// login (OpenStack bug 2004555: an export left reachable after a detach exposes one tenant's data).
// Every step that can fail midway undoes the ACL it added; a removal is verified.
//
// Layout on tgtd, as cinder: one target per volume, IQN target_prefix + volume name, LUN 1 on the
// backing device (LUN 0 is tgt's controller), write-cache per iscsi_write_cache, bsoflags per
// iscsi_target_flags, `thin_provisioning=1`, one incoming CHAP account (cinder's 20/16 character
// credentials, reused from provider_auth).
//
// Restart: the helper keeps `$volumes_dir/<volume name>` (tgt-config.ts) in step with the live
// target, ACL lines included, so a tgtd started by Debian's tgt.service (`tgt-admin -e`) comes up
// with the same targets and ACLs; and ensureExport rebuilds a missing or partial target itself with
// tgtadm from the volume record, that file, or the initiator list the manager passes. The manager
// calls ensureExport for in-use volumes at start-up (as cinder's init_host) and whenever it finds
// tgtd restarted.
//
// Concurrency: operations on one target are serialised by an in-process per-IQN mutex, shared by
// every helper on the same tgtd (two backends may export through one tgtd); tid allocation by one
// more, also per tgtd. Every operation is idempotent.
//
// Scale: tgtadm cannot show one target (`--tid` gives only its iSCSI parameters), so an operation
// reads the whole listing once, at its start, and parses only its own target's block
// (TargetListing); what it changes afterwards it keeps track of itself instead of reading the
// listing again. Checks that need no listing use one small request (`targetExists`). With 300
// targets a listing is 340 KB: read and parsed whole five times per attach, it made an attach
// cost about twice as much as with 10 (bench/tgt-scale-probe.mts).
//
// Crash leftovers: CHAP accounts are recorded (tgt-accounts.ts) before they are created, so the
// start-up sweep (findExports, removeOrphanAccounts) can tell ours from anyone else's.
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../../../src/log.js';
import { assertInitiatorName, chapForExport, formatProviderAuth, parseProviderAuth, type ChapCredentials } from '../../../src/iscsi/index.js';
import { samePath } from '../../../src/fs/same-path.js';
import { processRunner, type CommandRunner } from '../../../src/exec/run-command.js';
import {
  connectorInitiator,
  iscsiConnectionInfo,
  iscsiLocation,
  sameIscsiName,
  validateIscsiConnector,
  validateIscsiTargetOptions,
  volumeIqn,
  type IscsiTargetOptions,
  revocationFor,
} from '../iscsi-common.js';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import {
  invalidVolume,
  iscsiTargetAttachFailed,
  iscsiTargetCreateFailed,
  iscsiTargetDetachFailed,
  iscsiTargetRemoveFailed,
  targetUpdateFailed,
} from '../../../src/errors.js';
import type {
  ConnectionInfo,
  Connector,
  EnsureExportOptions,
  ExportedVolume,
  ExportModelUpdate,
  FoundExport,
  TargetHelper,
  TerminateOptions,
} from '../target.js';
import { assertBackingPath, assertBsoflags, assertDirectory, assertVolumeName } from '../validate.js';
import { TgtAccountRecord, tgtAccountsPath } from './tgt-accounts.js';
import { servingTgtdPid } from './tgtd-pid.js';
import {
  readTgtTargetConfig,
  readTgtTargetConfigText,
  removeTgtTargetConfig,
  tgtConfigPath,
  writeTgtTargetConfig,
  type TgtTargetConfig,
} from './tgt-config.js';
import {
  bindInitiatorNameArgv,
  deleteAccountArgv,
  isTgtadmError,
  setTargetStateArgv,
  Tgtadm,
  unbindInitiatorNameArgv,
  WRITE_CACHE_OFF_MODE_PAGE,
} from './tgtadm.js';
import { isInitiatorNameAcl, TargetListing, type TgtTargetInfo } from './tgtadm-parse.js';
import { HOST_TARGET_MARK } from '../host-target/host-target-name.js';
import { closeSessions, createTargetOnFreeTid, daemonState, readyWithOnlyAccount, deleteTargetChecked, HANDOFF_MS, unbindAclArgv, type DaemonState, type Handoff, type Snapshot } from './tgtd-state.js';

export { HANDOFF_MS, tgtLockKeys } from './tgtd-state.js';

export interface TgtTargetOptions extends IscsiTargetOptions {
  /** volumes_dir: one tgt config file per export */
  volumesDir: string;
  /** iscsi_write_cache */
  iscsiWriteCache: 'on' | 'off';
  /** iscsi_target_flags (bsoflags): '', sync, direct or sync:direct */
  iscsiTargetFlags: string;
  /** tgtd control port (`-C`); 0/undefined = tgt's default. Not a cinder option (tests, side-by-side tgtds). */
  controlPort?: number;
  /** runs tgtadm; default the one process runner (src/exec) */
  runner?: CommandRunner;
  /** how long to keep retrying a delete that tgtd refuses because commands are in flight; default 10 s */
  busyTimeoutMs?: number;
  /** extendTarget with sessions: pause between closing them and reopening the LUN; default 50 ms */
  quiesceSettleMs?: number;
  /**
   * The pid of the tgtd serving the control port now (tgtd-pid.ts), which lets an operation use
   * what the one before it on the same target read (see HANDOFF_MS). Default: read from
   * /proc/locks, or, when `runner` is given, none (every operation then reads the listing).
   */
  servingPid?: (() => Promise<number | null>) | null;
}

/** tgt's LUN 0 is the controller; the volume is LUN 1 (targets/tgt.py _get_target_and_lun). */
export const TGT_LUN = 1;

interface Desired {
  volumeId: string;
  iqn: string;
  backingPath: string;
  chap: ChapCredentials;
  /** exact: make the name ACLs exactly `initiators`; keep: leave the name ACLs as they are */
  acl: { mode: 'exact'; initiators: string[] } | { mode: 'keep' };
}

/** What reconcile leaves: the target after its changes (LUNs and sessions as read), and the listing it read. */
interface Reconciled {
  tid: number;
  acls: string[];
  created: boolean;
  state: TgtTargetInfo;
  snapshot: Snapshot;
}

function uniqueNames(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of names) if (!out.some((o) => sameIscsiName(o, n))) out.push(n);
  return out;
}

function isVolumeName(name: string): boolean {
  try {
    assertVolumeName(name);
    return true;
  } catch {
    return false;
  }
}


export class TgtTarget implements TargetHelper {
  private readonly adm: Tgtadm;
  private readonly daemon: DaemonState;
  private readonly targetLocks: KeyedMutex;
  private readonly accounts: TgtAccountRecord;
  private readonly busyTimeoutMs: number;
  private readonly quiesceSettleMs: number;
  private readonly servingPid: (() => Promise<number | null>) | null;

  constructor(private readonly o: TgtTargetOptions) {
    validateIscsiTargetOptions(o);
    assertDirectory(o.volumesDir, 'volumes_dir');
    if (o.iscsiWriteCache !== 'on' && o.iscsiWriteCache !== 'off') throw new Error(`iscsi_write_cache must be on or off`);
    if (o.iscsiTargetFlags !== '') assertBsoflags(o.iscsiTargetFlags);
    this.adm = new Tgtadm(o.runner ?? processRunner(), { controlPort: o.controlPort, lld: o.targetProtocol });
    this.daemon = daemonState(o.controlPort);
    this.targetLocks = this.daemon.targetLocks;
    this.accounts = new TgtAccountRecord(tgtAccountsPath(o.volumesDir));
    this.busyTimeoutMs = o.busyTimeoutMs ?? 10_000;
    this.quiesceSettleMs = o.quiesceSettleMs ?? 50;
    this.servingPid = o.servingPid !== undefined ? o.servingPid : o.runner ? null : () => servingTgtdPid(o.controlPort ?? 0);
  }

  /** The command client (for diagnostics and tests). */
  get tgtadm(): Tgtadm {
    return this.adm;
  }

  iqnOf(v: Pick<ExportedVolume, 'name'>): string {
    return volumeIqn(this.o.targetPrefix, v.name);
  }

  configPathOf(v: Pick<ExportedVolume, 'name'>): string {
    return tgtConfigPath(this.o.volumesDir, v.name);
  }

  validateConnector(connector: Connector): void {
    validateIscsiConnector(connector);
  }

  // ---- export lifecycle ---------------------------------------------------------------------

  async createExport(v: ExportedVolume): Promise<ExportModelUpdate> {
    const iqn = this.iqnOf(v);
    assertBackingPath(v.backingPath);
    const { creds, generated } = chapForExport(v.providerAuth);
    return this.locked(iqn, async () => {
      const path = this.configPathOf(v);
      try {
        // cinder calls create_export before every attachment, so an export may already serve other
        // attachments: the file's initiators stay (and are re-bound if tgtd lost them); without a
        // file, the live name ACLs stay as they are
        const file = await this.readConfigText(path);
        const acl: Desired['acl'] = file ? { mode: 'exact', initiators: file.config.initiators } : { mode: 'keep' };
        const target = await this.reconcile({ volumeId: v.id, iqn, backingPath: v.backingPath, chap: creds, acl });
        const initiators = file ? file.config.initiators : target.acls.filter(isInitiatorNameAcl);
        try {
          await writeTgtTargetConfig(path, this.configFor(iqn, v.backingPath, creds, initiators), { unlessText: file?.text });
        } catch (e) {
          if (target.created) await this.destroyTarget(target.tid, iqn, creds.username, { acls: target.acls, nexuses: [] });
          throw e;
        }
        this.leave(iqn, target.snapshot, target.state);
        log().info({ volume_id: v.id, iqn, tid: target.tid, created: target.created, new_chap: generated }, 'created iSCSI export');
        return { provider_location: iscsiLocation(this.o, target.tid, iqn, TGT_LUN), provider_auth: formatProviderAuth(creds) };
      } catch (e) {
        log().error({ volume_id: v.id, iqn, err: e }, 'failed to create iSCSI target');
        throw iscsiTargetCreateFailed(v.id, e);
      }
    });
  }

  async ensureExport(v: ExportedVolume, opts: EnsureExportOptions = {}): Promise<void> {
    const iqn = this.iqnOf(v);
    assertBackingPath(v.backingPath);
    for (const i of opts.initiators ?? []) assertInitiatorName(i);
    await this.locked(iqn, async () => {
      const path = this.configPathOf(v);
      try {
        const file = await this.readConfigText(path);
        const creds = parseProviderAuth(v.providerAuth) ?? file?.config.chap ?? null;
        if (!creds) {
          if (!v.providerLocation) {
            log().debug({ volume_id: v.id }, 'ensure_export: volume was never exported');
            return;
          }
          throw invalidVolume(`volume ${v.id} has no CHAP credentials; refusing to export it without CHAP`);
        }
        const snapshot = await this.snapshot();
        let initiators: string[];
        if (opts.initiators) initiators = uniqueNames(opts.initiators);
        else if (file) initiators = file.config.initiators;
        else {
          const live = snapshot.listing.find(iqn);
          initiators = live ? live.acls.filter(isInitiatorNameAcl) : [];
        }
        const target = await this.reconcile({ volumeId: v.id, iqn, backingPath: v.backingPath, chap: creds, acl: { mode: 'exact', initiators } }, snapshot);
        await writeTgtTargetConfig(path, this.configFor(iqn, v.backingPath, creds, initiators), { unlessText: file?.text });
        log().info({ volume_id: v.id, iqn, tid: target.tid, recreated: target.created, initiators: initiators.length }, 'ensured iSCSI export');
      } catch (e) {
        log().error({ volume_id: v.id, iqn, err: e }, 'failed to ensure iSCSI target');
        throw iscsiTargetCreateFailed(v.id, e);
      }
    });
  }

  async removeExport(v: ExportedVolume): Promise<void> {
    const iqn = this.iqnOf(v);
    await this.locked(iqn, async (handoff) => {
      const path = this.configPathOf(v);
      try {
        const file = await this.readConfig(path).catch(() => null);
        const users = new Set<string>();
        const stored = (() => {
          try {
            return parseProviderAuth(v.providerAuth);
          } catch {
            return null;
          }
        })();
        if (stored) users.add(stored.username);
        if (file?.chap) users.add(file.chap.username);
        // after a terminate_connection: its check of the target, unless too old
        const listing = handoff ? handoff.snapshot.listing : await this.adm.listTargets();
        const target = handoff ? handoff.target : listing.find(iqn);
        if (target) {
          for (const u of target.accounts) users.add(u);
          await this.destroyTarget(target.tid, iqn, null, target);
        } else {
          log().info({ volume_id: v.id, iqn }, 'remove_export: no target, nothing to remove on tgtd');
        }
        // the listing still shows the target just deleted: it does not count as a user of the accounts
        await this.deleteUnusedAccounts([...users], { listing, gone: iqn });
        await removeTgtTargetConfig(path);
        log().info({ volume_id: v.id, iqn }, 'removed iSCSI export');
      } catch (e) {
        log().error({ volume_id: v.id, iqn, err: e }, 'failed to remove iSCSI target');
        throw iscsiTargetRemoveFailed(v.id, e);
      }
    });
  }

  // ---- connections ------------------------------------------------------------------------

  async initializeConnection(v: ExportedVolume, connector: Connector): Promise<ConnectionInfo> {
    const initiator = connectorInitiator(connector);
    const iqn = this.iqnOf(v);
    return this.locked(iqn, async (handoff) => {
      let tid: number;
      let bound = false;
      try {
        // after a create_export: the target as it left it, unless too old
        const target = handoff ? handoff.target : (await this.adm.listTargets()).find(iqn);
        if (!target) throw invalidVolume(`Could not find iSCSI export for volume ${v.name}`);
        if (target.accounts.length === 0) throw invalidVolume(`iSCSI target of volume ${v.id} has no CHAP account; refusing to open it`);
        tid = target.tid;
        const location = v.providerLocation ?? iscsiLocation(this.o, tid, iqn, TGT_LUN);
        // built before any change: a malformed provider_location or provider_auth fails here
        const info = iscsiConnectionInfo(this.o, v, location, connector, v.providerLocation === null);

        if (!target.acls.includes(initiator)) {
          bound = await this.adm.runTolerating(this.bindInitiatorArgv(tid, initiator), 'acl-exists');
        }
        const path = this.configPathOf(v);
        const file = await this.readConfig(path);
        const chap = parseProviderAuth(v.providerAuth) ?? file?.chap ?? null;
        if (file || chap) {
          const base = file ?? this.configFor(iqn, v.backingPath, chap as ChapCredentials, []);
          if (!base.initiators.includes(initiator)) {
            await writeTgtTargetConfig(path, { ...base, initiators: [...base.initiators, initiator] });
          }
        } else {
          log().warn({ volume_id: v.id, iqn }, 'no CHAP credentials known for the target file; ACL not persisted');
        }
        log().info({ volume_id: v.id, iqn, tid, initiator, newly_bound: bound }, 'initiator allowed on iSCSI target');
        return info;
      } catch (e) {
        if (bound) await this.unbindQuietly(tid!, initiator, iqn);
        log().error({ volume_id: v.id, iqn, initiator, err: e }, 'failed to initialize iSCSI connection');
        if (e instanceof Error && 'className' in e && (e as { className: string }).className === 'InvalidVolume') throw e;
        throw iscsiTargetAttachFailed(v.id, e);
      }
    });
  }

  async terminateConnection(v: ExportedVolume, connector: Connector | null, opts: TerminateOptions): Promise<void> {
    const iqn = this.iqnOf(v);
    const revocation = revocationFor(connector, opts, { volumeId: v.id, iqn });
    if (!revocation) return;
    const { initiator, matches } = revocation;
    await this.locked(iqn, async () => {
      let fileError: unknown = null;
      const path = this.configPathOf(v);
      // 1. the record first: whatever happens next, a restart or ensure_export will not bring it back
      try {
        const file = await this.readConfig(path);
        if (file && file.initiators.some(matches)) {
          await writeTgtTargetConfig(path, { ...file, initiators: file.initiators.filter((n) => !matches(n)) });
        }
      } catch (e) {
        fileError = e;
      }
      try {
        // 2. the live ACL, then the sessions it admitted
        let target = (await this.adm.listTargets()).find(iqn);
        if (target) {
          for (const acl of target.acls.filter((a) => isInitiatorNameAcl(a) && matches(a))) {
            await this.adm.runTolerating(this.unbindInitiatorArgv(target.tid, acl), 'acl-not-found');
          }
          await this.closeSessions(target, matches);
          // 3. verify (what remove_export, if it comes next, starts from)
          const check = await this.snapshot();
          target = check.listing.find(iqn);
          const left = target?.acls.filter((a) => isInitiatorNameAcl(a) && matches(a)) ?? [];
          if (left.length > 0) throw new Error(`initiator ACL still present after unbind: ${left.join(', ')}`);
          if (target) this.leave(iqn, check, target);
        }
        if (fileError) throw fileError;
        log().info({ volume_id: v.id, iqn, initiator: initiator ?? 'ALL (force)' }, 'initiator revoked on iSCSI target');
      } catch (e) {
        log().error({ volume_id: v.id, iqn, initiator, err: e }, 'failed to terminate iSCSI connection');
        throw iscsiTargetDetachFailed(v.id, e);
      }
    });
  }

  async extendTarget(v: ExportedVolume): Promise<void> {
    const iqn = this.iqnOf(v);
    assertBackingPath(v.backingPath);
    await this.locked(iqn, async () => {
      try {
        const target = (await this.adm.listTargets()).find(iqn);
        if (!target) {
          log().debug({ volume_id: v.id, iqn }, 'extend_target: not exported; the next export sees the new size');
          return;
        }
        const lu = target.luns.find((l) => l.lun === TGT_LUN);
        const path = lu?.backingStorePath ?? v.backingPath;
        if (!lu) {
          await this.createLun(target.tid, v.backingPath);
        } else if (target.nexuses.length === 0) {
          await this.reopenLun(target.tid, path);
        } else {
          await this.reopenLunQuiesced(target, path);
        }
        const after = (await this.adm.listTargets()).find(iqn)?.luns.find((l) => l.lun === TGT_LUN);
        if (!after || after.backingStorePath === null) throw new Error('LUN 1 lost its backing store while reopening it');
        if (after.online === false) await this.adm.updateLunParams(target.tid, TGT_LUN, [['online', '1']]);
        log().info({ volume_id: v.id, iqn, tid: target.tid, size_mb: after.sizeMb }, 'iSCSI LUN size refreshed');
      } catch (e) {
        log().error({ volume_id: v.id, iqn, err: e }, 'failed to refresh iSCSI target size');
        throw targetUpdateFailed(v.id, e);
      }
    });
  }

  async listExports(): Promise<string[]> {
    return (await this.adm.listTargets())
      .headers()
      .map((t) => t.iqn)
      .filter((iqn) => iqn.startsWith(this.o.targetPrefix) && !iqn.startsWith(`${this.o.targetPrefix}${HOST_TARGET_MARK}`));
  }

  /**
   * Targets with our prefix on tgtd (none when no tgtd runs: this never starts one), and the
   * target files in volumes_dir. `recorded` when a file or an account we recorded names the IQN.
   */
  async findExports(): Promise<FoundExport[]> {
    const found = new Map<string, FoundExport>();
    const nameOf = (iqn: string): string | null => {
      if (!iqn.startsWith(this.o.targetPrefix)) return null;
      const name = iqn.slice(this.o.targetPrefix.length);
      // a host target (target_layout = per-host) is the host target exports' to keep or remove
      if (name.startsWith(HOST_TARGET_MARK)) return null;
      return isVolumeName(name) ? name : null;
    };
    let targets: TgtTargetInfo[] = [];
    try {
      targets = await this.adm.showTargets();
    } catch (e) {
      if (!isTgtadmError(e, 'no-daemon')) throw e;
    }
    for (const t of targets) {
      const volumeName = nameOf(t.iqn);
      if (!volumeName) continue;
      const lu = t.luns.find((l) => l.lun === TGT_LUN);
      found.set(t.iqn, { iqn: t.iqn, volumeName, backingPath: lu?.backingStorePath ?? null, live: true, recorded: false, admitted: t.acls.filter(isInitiatorNameAcl) });
    }
    let files: string[] = [];
    try {
      files = await readdir(this.o.volumesDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const f of files) {
      if (!isVolumeName(f)) continue;
      const iqn = volumeIqn(this.o.targetPrefix, f);
      // quietly: volumes_dir may hold other files (another helper's record, cinder's leftovers)
      const file = await readTgtTargetConfig(this.configPathOf({ name: f })).catch(() => null);
      if (!file || file.iqn !== iqn) continue;
      const seen = found.get(iqn);
      found.set(iqn, seen ? { ...seen, backingPath: seen.backingPath ?? file.backingStore, recorded: true } : { iqn, volumeName: f, backingPath: file.backingStore, live: false, recorded: true });
    }
    const accountIqns = new Set((await this.accounts.read()).values());
    return [...found.values()].map((e) => (accountIqns.has(e.iqn) ? { ...e, recorded: true } : e));
  }

  /**
   * Delete the accounts we recorded that no target uses. Each is checked and deleted holding its
   * target's lock, so an export being built right now (account created, not bound yet) is safe.
   */
  async removeOrphanAccounts(): Promise<number> {
    const recorded = await this.accounts.read();
    if (recorded.size === 0) return 0;
    try {
      if (!(await this.adm.isRunning())) return 0;
    } catch {
      return 0;
    }
    // One look at everything first, without locks: normally every recorded account is bound to its
    // target, and nothing more is read. Only the others are checked again under their target's lock.
    const remembersNow = this.accounts.rememberCount();
    const knownNow = new Set(await this.adm.showAccounts());
    const listingNow = await this.adm.listTargets();
    let removed = 0;
    for (const [user, iqn] of recorded) {
      if (knownNow.has(user) && listingNow.accountInUse(user)) continue;
      await this.locked(iqn, async () => {
        // missing then, and nothing remembered (so created) since: still missing, no need to ask
        // tgtd again (after a tgtd restart that is every account, one request each otherwise)
        const known = !knownNow.has(user) && this.accounts.rememberCount() === remembersNow ? knownNow : new Set(await this.adm.showAccounts());
        if (!known.has(user)) {
          // gone (a tgtd restart): a rebuild records it again, under this same lock, before creating it
          await this.accounts.forget([user]);
          return;
        }
        if ((await this.adm.listTargets()).accountInUse(user)) return;
        await this.adm.runTolerating(deleteAccountArgv(this.adm.ctx, user), 'account-not-found');
        await this.accounts.forget([user]);
        removed += 1;
        log().warn({ iqn }, 'removed a CHAP account that no target uses (left by a crash)');
      });
    }
    return removed;
  }

  // ---- internals --------------------------------------------------------------------------

  private configFor(iqn: string, backingPath: string, chap: ChapCredentials, initiators: readonly string[]): TgtTargetConfig {
    return {
      iqn,
      backingStore: backingPath,
      driver: this.o.targetProtocol,
      chap,
      bsoflags: this.o.iscsiTargetFlags,
      writeCache: this.o.iscsiWriteCache,
      initiators: uniqueNames(initiators),
    };
  }

  private async readConfig(path: string): Promise<TgtTargetConfig | null> {
    return (await this.readConfigText(path))?.config ?? null;
  }

  /** The target file and its text; null when missing or unreadable (it is then written anew). */
  private async readConfigText(path: string): Promise<{ config: TgtTargetConfig; text: string } | null> {
    try {
      return await readTgtTargetConfigText(path);
    } catch (e) {
      if ((e as { className?: string }).className === 'InvalidInput') {
        log().warn({ path, err: e }, 'unreadable tgt config file; rebuilding it');
        return null;
      }
      throw e;
    }
  }

  /** The listing of every target now, with how many targets this process had made by then and the tgtd's pid. */
  private async snapshot(): Promise<Snapshot> {
    const creates = this.daemon.creates;
    const pid = this.servingPid ? await this.servingPid() : null;
    return { listing: await this.adm.listTargets(), creates, pid };
  }

  /**
   * Runs `fn` holding the target's lock, with the handoff the previous operation on the target
   * left if it is still good (HANDOFF_MS, same tgtd); whatever it was, it is gone afterwards.
   */
  private locked<T>(iqn: string, fn: (handoff: Handoff | null) => Promise<T>): Promise<T> {
    return this.targetLocks.run(iqn, async () => {
      const handoffs = this.daemon.handoffs;
      const h = handoffs.get(iqn) ?? null;
      handoffs.delete(iqn);
      const now = performance.now();
      for (const [k, x] of handoffs) if (now - x.at > HANDOFF_MS) handoffs.delete(k);
      let good: Handoff | null = null;
      if (h && h.snapshot.pid !== null && now - h.at <= HANDOFF_MS && this.servingPid) {
        if ((await this.servingPid()) === h.snapshot.pid) good = h;
      }
      return fn(good);
    });
  }

  /** Leave the target's state for the next operation on it (see HANDOFF_MS). Call holding its lock. */
  private leave(iqn: string, snapshot: Snapshot, target: TgtTargetInfo): void {
    if (snapshot.pid === null) return;
    this.daemon.handoffs.set(iqn, { snapshot, target, at: performance.now() });
  }

  private bindInitiatorArgv(tid: number, initiator: string): string[] {
    return bindInitiatorNameArgv(this.adm.ctx, tid, initiator);
  }

  private unbindInitiatorArgv(tid: number, initiator: string): string[] {
    return unbindInitiatorNameArgv(this.adm.ctx, tid, initiator);
  }

  private unbindAclArgv(tid: number, entry: string): string[] {
    return unbindAclArgv(this.adm.ctx, tid, entry);
  }

  /**
   * Make the live target match `d`. Order matters for safety: the CHAP account is bound before the
   * LUN exists and before any initiator is admitted, so the target is never reachable without CHAP.
   * A target created here is deleted again if a later step fails. The target is read once (from
   * `snapshot` when given); every change after that is a tgtadm request that either succeeds or
   * throws, and is tracked here rather than read back.
   */
  private async reconcile(d: Desired, snapshot?: Snapshot): Promise<Reconciled> {
    const snap = snapshot ?? (await this.snapshot());
    let target = snap.listing.find(d.iqn);
    let created = false;
    if (!target) {
      target = await this.createTarget(d.iqn, snap);
      created = true;
    }
    const tid = target.tid;
    let acls = [...target.acls];
    try {
      // ready (an extend interrupted midway leaves it offline), with exactly our CHAP account
      await readyWithOnlyAccount(this.adm, this.accounts, target, d.chap);

      // LUN 1
      const lu = target.luns.find((l) => l.lun === TGT_LUN);
      if (!lu) {
        await this.createLun(tid, d.backingPath);
      } else {
        if (lu.backingStorePath === null || !(await samePath(lu.backingStorePath, d.backingPath))) {
          if (target.nexuses.length > 0) {
            throw new Error(`LUN 1 of ${d.iqn} is backed by ${lu.backingStorePath ?? 'nothing'}, not ${d.backingPath}, and has sessions`);
          }
          log().warn({ iqn: d.iqn, have: lu.backingStorePath, want: d.backingPath }, 'replacing LUN 1 with the right backing store');
          await this.adm.deleteLun(tid, TGT_LUN);
          await this.createLun(tid, d.backingPath);
        } else {
          if (lu.thinProvisioning === false) await this.adm.updateLunParams(tid, TGT_LUN, [['thin_provisioning', '1']]);
          if (lu.online === false) await this.adm.updateLunParams(tid, TGT_LUN, [['online', '1']]);
        }
      }

      // ACLs: never an address rule (ALL, or the 0.0.0.0 placeholder from a tgt-admin restore)
      for (const a of target.acls.filter((x) => !isInitiatorNameAcl(x))) {
        await this.adm.runTolerating(this.unbindAclArgv(tid, a), 'acl-not-found');
        acls = acls.filter((x) => x !== a);
        if (a === 'ALL') log().warn({ iqn: d.iqn }, 'removed initiator-address ALL from target');
      }
      if (d.acl.mode === 'exact') {
        const want = d.acl.initiators;
        const extra = target.acls.filter((a) => isInitiatorNameAcl(a) && !want.includes(a));
        for (const a of extra) {
          await this.adm.runTolerating(this.unbindInitiatorArgv(tid, a), 'acl-not-found');
          acls = acls.filter((x) => x !== a);
          log().warn({ iqn: d.iqn, initiator: a }, 'revoked initiator that is not attached');
        }
        if (extra.length > 0) await this.closeSessions(target, (n) => extra.some((x) => sameIscsiName(x, n)) && !want.some((w) => sameIscsiName(w, n)));
        for (const w of want) {
          if (!target.acls.includes(w)) {
            await this.adm.runTolerating(this.bindInitiatorArgv(tid, w), 'acl-exists');
            acls.push(w);
          }
        }
      }
    } catch (e) {
      if (created) await this.destroyTarget(tid, d.iqn, d.chap.username, { acls, nexuses: [] });
      throw e;
    }
    return { tid, acls, created, snapshot: snap, state: { ...target, accounts: [d.chap.username], acls } };
  }

  private async createTarget(iqn: string, snap: Snapshot): Promise<TgtTargetInfo> {
    return createTargetOnFreeTid(this.adm, this.daemon, iqn, snap, this.o.targetProtocol);
  }

  /**
   * `--params online=0,path=<same path>`: tgtd closes and reopens the backing store and reads its
   * size again, in one request.
   */
  private async reopenLun(tid: number, path: string): Promise<void> {
    await this.adm.updateLunParams(tid, TGT_LUN, [
      ['online', '0'],
      ['path', path],
    ]);
  }

  /**
   * Reopening the backing store under I/O fails commands that are in flight (measured: a reader
   * got MEDIUM ERROR / EIO about one time in five). So with sessions logged in: take the target
   * offline (a reconnect gets a retryable "target error" login response), close its connections
   * (the initiators' SCSI layers retry the interrupted commands after they log in again), let
   * tgtd's workers finish, reopen, and put the target back to ready whatever happened. Initiators
   * see a transport reset of ~0.1 s, then UNIT ATTENTION and the new size after a rescan. cinder
   * (`tgt-admin --update <iqn> -f`) deletes and recreates the whole target instead.
   */
  private async reopenLunQuiesced(target: TgtTargetInfo, path: string): Promise<void> {
    await this.adm.run(setTargetStateArgv(this.adm.ctx, target.tid, 'offline'));
    try {
      await this.closeSessions(target, () => true);
      await sleep(this.quiesceSettleMs);
      await this.reopenLun(target.tid, path);
    } finally {
      await this.adm.run(setTargetStateArgv(this.adm.ctx, target.tid, 'ready'));
    }
  }

  private async createLun(tid: number, backingPath: string): Promise<void> {
    await this.adm.newLun(tid, TGT_LUN, backingPath, { bsoflags: this.o.iscsiTargetFlags || undefined });
    await this.adm.updateLunParams(tid, TGT_LUN, [['thin_provisioning', '1']]);
    if (this.o.iscsiWriteCache === 'off') await this.adm.updateLunParams(tid, TGT_LUN, [['mode_page', WRITE_CACHE_OFF_MODE_PAGE]]);
  }

  /** deleteTargetChecked, then the target's CHAP account when no other target uses it. */
  private async destroyTarget(tid: number, iqn: string, account: string | null, known?: Pick<TgtTargetInfo, 'acls' | 'nexuses'>): Promise<void> {
    try {
      await deleteTargetChecked(this.adm, tid, iqn, this.busyTimeoutMs, known);
      if (account) await this.deleteUnusedAccounts([account]);
    } catch (e) {
      log().error({ iqn, tid, err: e }, 'could not delete target');
      throw e;
    }
  }

  /**
   * Delete CHAP accounts that no target uses any more (accounts are global in tgtd). `listing` may
   * be one read before `gone` was deleted; otherwise it is read now.
   */
  private async deleteUnusedAccounts(users: readonly string[], from?: { listing: TargetListing; gone: string }): Promise<void> {
    if (users.length === 0) return;
    const listing = from?.listing ?? (await this.adm.listTargets());
    const gone: string[] = [];
    for (const u of users) {
      if (listing.accountInUse(u, from?.gone)) continue;
      await this.adm.runTolerating(deleteAccountArgv(this.adm.ctx, u), 'account-not-found');
      gone.push(u);
    }
    await this.accounts.forget(gone);
  }

  private async closeSessions(target: Pick<TgtTargetInfo, 'tid' | 'iqn' | 'nexuses'>, matches: (initiator: string) => boolean): Promise<void> {
    await closeSessions(this.adm, target, matches);
  }

  private async unbindQuietly(tid: number, initiator: string, iqn: string): Promise<void> {
    try {
      await this.adm.runTolerating(this.unbindInitiatorArgv(tid, initiator), 'acl-not-found');
    } catch (e) {
      log().error({ iqn, initiator, err: e }, 'could not undo the ACL of a failed initialize_connection');
    }
  }

}

export { isTgtadmError };
