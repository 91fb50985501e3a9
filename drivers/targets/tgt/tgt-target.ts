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
// more. Every operation is idempotent.
//
// Crash leftovers: CHAP accounts are recorded (tgt-accounts.ts) before they are created, so the
// start-up sweep (findExports, removeOrphanAccounts) can tell ours from anyone else's.
import { readdir, realpath } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../../../src/log.js';
import { chapForExport, formatProviderAuth, parseProviderAuth, type ChapCredentials } from '../chap.js';
import { execaRunner, type CommandRunner } from '../command-runner.js';
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
import { assertBackingPath, assertBsoflags, assertDirectory, assertInitiatorName, assertVolumeName } from '../validate.js';
import { TgtAccountRecord, tgtAccountsPath } from './tgt-accounts.js';
import {
  readTgtTargetConfig,
  removeTgtTargetConfig,
  tgtConfigPath,
  writeTgtTargetConfig,
  type TgtTargetConfig,
} from './tgt-config.js';
import {
  bindAccountArgv,
  bindInitiatorNameArgv,
  deleteAccountArgv,
  deleteConnectionArgv,
  deleteTargetArgv,
  isTgtadmError,
  newAccountArgv,
  newTargetArgv,
  setTargetStateArgv,
  Tgtadm,
  unbindInitiatorAddressArgv,
  unbindInitiatorNameArgv,
  WRITE_CACHE_OFF_MODE_PAGE,
} from './tgtadm.js';
import { findTarget, isInitiatorNameAcl, nextFreeTid, type TgtTargetInfo } from './tgtadm-parse.js';

export interface TgtTargetOptions extends IscsiTargetOptions {
  /** volumes_dir: one tgt config file per export */
  volumesDir: string;
  /** iscsi_write_cache */
  iscsiWriteCache: 'on' | 'off';
  /** iscsi_target_flags (bsoflags): '', sync, direct or sync:direct */
  iscsiTargetFlags: string;
  /** tgtd control port (`-C`); 0/undefined = tgt's default. Not a cinder option (tests, side-by-side tgtds). */
  controlPort?: number;
  /** runs tgtadm; default execa */
  runner?: CommandRunner;
  /** how long to keep retrying a delete that tgtd refuses because commands are in flight; default 10 s */
  busyTimeoutMs?: number;
  /** extendTarget with sessions: pause between closing them and reopening the LUN; default 50 ms */
  quiesceSettleMs?: number;
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

interface Reconciled {
  target: TgtTargetInfo;
  created: boolean;
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

// One per-IQN mutex per tgtd (control port) for the whole process: a target, and the CHAP account
// made for it, belong to that tgtd, whichever backend's helper touches them.
const targetLocksByDaemon = new Map<number, KeyedMutex>();

function targetLocksFor(controlPort: number | undefined): KeyedMutex {
  const key = controlPort ?? 0;
  let m = targetLocksByDaemon.get(key);
  if (!m) {
    m = new KeyedMutex();
    targetLocksByDaemon.set(key, m);
  }
  return m;
}

async function samePath(a: string, b: string): Promise<boolean> {
  if (a === b) return true;
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}

export class TgtTarget implements TargetHelper {
  private readonly adm: Tgtadm;
  private readonly targetLocks: KeyedMutex;
  private readonly tidLock = new KeyedMutex();
  private readonly accounts: TgtAccountRecord;
  private readonly busyTimeoutMs: number;
  private readonly quiesceSettleMs: number;

  constructor(private readonly o: TgtTargetOptions) {
    validateIscsiTargetOptions(o);
    assertDirectory(o.volumesDir, 'volumes_dir');
    if (o.iscsiWriteCache !== 'on' && o.iscsiWriteCache !== 'off') throw new Error(`iscsi_write_cache must be on or off`);
    if (o.iscsiTargetFlags !== '') assertBsoflags(o.iscsiTargetFlags);
    this.adm = new Tgtadm(o.runner ?? execaRunner(), { controlPort: o.controlPort, lld: o.targetProtocol });
    this.targetLocks = targetLocksFor(o.controlPort);
    this.accounts = new TgtAccountRecord(tgtAccountsPath(o.volumesDir));
    this.busyTimeoutMs = o.busyTimeoutMs ?? 10_000;
    this.quiesceSettleMs = o.quiesceSettleMs ?? 50;
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
    return this.targetLocks.run(iqn, async () => {
      const path = this.configPathOf(v);
      try {
        // cinder calls create_export before every attachment, so an export may already serve other
        // attachments: the file's initiators stay (and are re-bound if tgtd lost them); without a
        // file, the live name ACLs stay as they are
        const file = await this.readConfig(path);
        const acl: Desired['acl'] = file ? { mode: 'exact', initiators: file.initiators } : { mode: 'keep' };
        const { target, created } = await this.reconcile({ volumeId: v.id, iqn, backingPath: v.backingPath, chap: creds, acl });
        const initiators = file ? file.initiators : target.acls.filter(isInitiatorNameAcl);
        try {
          await writeTgtTargetConfig(path, this.configFor(iqn, v.backingPath, creds, initiators));
        } catch (e) {
          if (created) await this.destroyTarget(target.tid, iqn, creds.username);
          throw e;
        }
        log().info({ volume_id: v.id, iqn, tid: target.tid, created, new_chap: generated }, 'created iSCSI export');
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
    await this.targetLocks.run(iqn, async () => {
      const path = this.configPathOf(v);
      try {
        const file = await this.readConfig(path);
        const creds = parseProviderAuth(v.providerAuth) ?? file?.chap ?? null;
        if (!creds) {
          if (!v.providerLocation) {
            log().debug({ volume_id: v.id }, 'ensure_export: volume was never exported');
            return;
          }
          throw invalidVolume(`volume ${v.id} has no CHAP credentials; refusing to export it without CHAP`);
        }
        let initiators: string[];
        if (opts.initiators) initiators = uniqueNames(opts.initiators);
        else if (file) initiators = file.initiators;
        else {
          const live = findTarget(await this.adm.showTargets(), iqn);
          initiators = live ? live.acls.filter(isInitiatorNameAcl) : [];
        }
        const { target, created } = await this.reconcile({ volumeId: v.id, iqn, backingPath: v.backingPath, chap: creds, acl: { mode: 'exact', initiators } });
        await writeTgtTargetConfig(path, this.configFor(iqn, v.backingPath, creds, initiators));
        log().info({ volume_id: v.id, iqn, tid: target.tid, recreated: created, initiators: initiators.length }, 'ensured iSCSI export');
      } catch (e) {
        log().error({ volume_id: v.id, iqn, err: e }, 'failed to ensure iSCSI target');
        throw iscsiTargetCreateFailed(v.id, e);
      }
    });
  }

  async removeExport(v: ExportedVolume): Promise<void> {
    const iqn = this.iqnOf(v);
    await this.targetLocks.run(iqn, async () => {
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
        const target = findTarget(await this.adm.showTargets(), iqn);
        if (target) {
          for (const u of target.accounts) users.add(u);
          await this.destroyTarget(target.tid, iqn, null);
        } else {
          log().info({ volume_id: v.id, iqn }, 'remove_export: no target, nothing to remove on tgtd');
        }
        await this.deleteUnusedAccounts([...users]);
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
    return this.targetLocks.run(iqn, async () => {
      let tid: number;
      let bound = false;
      try {
        const target = findTarget(await this.adm.showTargets(), iqn);
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
    await this.targetLocks.run(iqn, async () => {
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
        let target = findTarget(await this.adm.showTargets(), iqn);
        if (target) {
          for (const acl of target.acls.filter((a) => isInitiatorNameAcl(a) && matches(a))) {
            await this.adm.runTolerating(this.unbindInitiatorArgv(target.tid, acl), 'acl-not-found');
          }
          await this.closeSessions(target, matches);
          // 3. verify
          target = findTarget(await this.adm.showTargets(), iqn);
          const left = target?.acls.filter((a) => isInitiatorNameAcl(a) && matches(a)) ?? [];
          if (left.length > 0) throw new Error(`initiator ACL still present after unbind: ${left.join(', ')}`);
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
    await this.targetLocks.run(iqn, async () => {
      try {
        const target = findTarget(await this.adm.showTargets(), iqn);
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
        const after = findTarget(await this.adm.showTargets(), iqn)?.luns.find((l) => l.lun === TGT_LUN);
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
    const targets = await this.adm.showTargets();
    return targets.map((t) => t.iqn).filter((iqn) => iqn.startsWith(this.o.targetPrefix));
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
      found.set(t.iqn, { iqn: t.iqn, volumeName, backingPath: lu?.backingStorePath ?? null, live: true, recorded: false });
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
    let removed = 0;
    for (const [user, iqn] of recorded) {
      await this.targetLocks.run(iqn, async () => {
        const known = await this.adm.showAccounts();
        if (!known.includes(user)) {
          // gone (a tgtd restart): a rebuild records it again, under this same lock, before creating it
          await this.accounts.forget([user]);
          return;
        }
        const targets = await this.adm.showTargets();
        if (targets.some((t) => t.accounts.includes(user) || t.outgoingAccounts.includes(user))) return;
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
    try {
      return await readTgtTargetConfig(path);
    } catch (e) {
      if ((e as { className?: string }).className === 'InvalidInput') {
        log().warn({ path, err: e }, 'unreadable tgt config file; rebuilding it');
        return null;
      }
      throw e;
    }
  }

  private bindInitiatorArgv(tid: number, initiator: string): string[] {
    return bindInitiatorNameArgv(this.adm.ctx, tid, initiator);
  }

  private unbindInitiatorArgv(tid: number, initiator: string): string[] {
    return unbindInitiatorNameArgv(this.adm.ctx, tid, initiator);
  }

  /** Unbind one ACL entry as tgtd lists it: an initiator name, or an address/network/ALL. */
  private unbindAclArgv(tid: number, entry: string): string[] {
    return isInitiatorNameAcl(entry) ? unbindInitiatorNameArgv(this.adm.ctx, tid, entry) : unbindInitiatorAddressArgv(this.adm.ctx, tid, entry);
  }

  /**
   * Make the live target match `d`. Order matters for safety: the CHAP account is bound before the
   * LUN exists and before any initiator is admitted, so the target is never reachable without CHAP.
   * A target created here is deleted again if a later step fails.
   */
  private async reconcile(d: Desired): Promise<Reconciled> {
    let target = findTarget(await this.adm.showTargets(), d.iqn);
    let created = false;
    if (!target) {
      target = await this.createTarget(d.iqn);
      created = true;
    }
    const tid = target.tid;
    try {
      // a target left offline (an extend interrupted midway) admits nobody: back to ready
      if (target.state !== null && target.state !== 'ready') {
        await this.adm.run(setTargetStateArgv(this.adm.ctx, tid, 'ready'));
        log().warn({ iqn: d.iqn, tid, state: target.state }, 'target was not ready; set it ready');
      }
      // CHAP: exactly our account, incoming
      const accounts = await this.adm.showAccounts();
      if (!accounts.includes(d.chap.username)) {
        // recorded first: a crash right after the account exists leaves it recognisably ours
        await this.accounts.remember(d.chap.username, d.iqn);
        await this.adm.runTolerating(newAccountArgv(this.adm.ctx, d.chap.username, d.chap.password), 'account-exists');
      }
      if (!target.accounts.includes(d.chap.username)) {
        await this.adm.runTolerating(bindAccountArgv(this.adm.ctx, tid, d.chap.username), 'account-exists', 'binding-exists');
      }
      for (const other of target.accounts.filter((a) => a !== d.chap.username)) {
        await this.adm.unbindAccount(tid, other);
      }

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
        if (a === 'ALL') log().warn({ iqn: d.iqn }, 'removed initiator-address ALL from target');
      }
      if (d.acl.mode === 'exact') {
        const want = d.acl.initiators;
        const extra = target.acls.filter((a) => isInitiatorNameAcl(a) && !want.includes(a));
        for (const a of extra) {
          await this.adm.runTolerating(this.unbindInitiatorArgv(tid, a), 'acl-not-found');
          log().warn({ iqn: d.iqn, initiator: a }, 'revoked initiator that is not attached');
        }
        if (extra.length > 0) await this.closeSessions(target, (n) => extra.some((x) => sameIscsiName(x, n)) && !want.some((w) => sameIscsiName(w, n)));
        for (const w of want) {
          if (!target.acls.includes(w)) await this.adm.runTolerating(this.bindInitiatorArgv(tid, w), 'acl-exists');
        }
      }
    } catch (e) {
      if (created) await this.destroyTarget(tid, d.iqn, d.chap.username);
      throw e;
    }
    const final = findTarget(await this.adm.showTargets(), d.iqn);
    if (!final) throw new Error(`target ${d.iqn} vanished while it was being set up`);
    const finalLu = final.luns.find((l) => l.lun === TGT_LUN);
    if (!finalLu || finalLu.backingStorePath === null || !final.accounts.includes(d.chap.username)) {
      if (created) await this.destroyTarget(tid, d.iqn, d.chap.username);
      throw new Error(`target ${d.iqn} is incomplete after setup (LUN 1 or CHAP account missing)`);
    }
    return { target: final, created };
  }

  /** `--op new --mode target` with the next free tid; retried if another tool took that tid. */
  private async createTarget(iqn: string): Promise<TgtTargetInfo> {
    return this.tidLock.run('tid', async () => {
      for (let attempt = 1; attempt <= 5; attempt++) {
        const targets = await this.adm.showTargets();
        const existing = findTarget(targets, iqn);
        if (existing) return existing;
        const tid = nextFreeTid(targets);
        if (await this.adm.runTolerating(newTargetArgv(this.adm.ctx, tid, iqn), 'target-exists')) {
          const made = findTarget(await this.adm.showTargets(), iqn);
          if (made) return made;
        }
      }
      throw new Error(`could not allocate a tid for ${iqn}`);
    });
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

  /**
   * Revoke every ACL (nobody can log in again), close the sessions, then delete the target. tgtd
   * refuses even a forced delete while a command is in flight ("this logical unit is still active"),
   * so that is retried for a while. tgt sometimes ignores --force silently (launchpad bug 1305343);
   * as cinder, check and retry without it.
   */
  private async destroyTarget(tid: number, iqn: string, account: string | null): Promise<void> {
    try {
      const target = findTarget(await this.adm.showTargets(), iqn);
      if (target && target.tid === tid) {
        for (const a of target.acls) await this.adm.runTolerating(this.unbindAclArgv(tid, a), 'acl-not-found');
        await this.closeSessions(target, () => true);
      }
      const deadline = Date.now() + this.busyTimeoutMs;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.adm.runTolerating(deleteTargetArgv(this.adm.ctx, tid, { force: true }), 'target-not-found');
          break;
        } catch (e) {
          if (!isTgtadmError(e, 'lun-busy', 'target-busy') || Date.now() > deadline) throw e;
          if (attempt === 1) log().info({ iqn, tid }, 'target busy with in-flight commands; retrying delete');
          await sleep(Math.min(50 * attempt, 500));
        }
      }
      if (findTarget(await this.adm.showTargets(), iqn)) {
        log().warn({ iqn, tid }, 'silent failure of forced target removal; retrying without --force');
        await this.adm.runTolerating(deleteTargetArgv(this.adm.ctx, tid), 'target-not-found');
      }
      if (findTarget(await this.adm.showTargets(), iqn)) throw new Error(`target ${iqn} (tid ${tid}) is still present after delete`);
      if (account) await this.deleteUnusedAccounts([account]);
    } catch (e) {
      log().error({ iqn, tid, err: e }, 'could not delete target');
      throw e;
    }
  }

  /** Delete CHAP accounts that no target uses any more (accounts are global in tgtd). */
  private async deleteUnusedAccounts(users: readonly string[]): Promise<void> {
    if (users.length === 0) return;
    const targets = await this.adm.showTargets();
    const known = await this.adm.showAccounts();
    const gone: string[] = [];
    for (const u of users) {
      if (targets.some((t) => t.accounts.includes(u) || t.outgoingAccounts.includes(u))) continue;
      if (known.includes(u)) await this.adm.runTolerating(deleteAccountArgv(this.adm.ctx, u), 'account-not-found');
      gone.push(u);
    }
    await this.accounts.forget(gone);
  }

  /** Close the connections of sessions whose initiator matches (they cannot log in again). */
  private async closeSessions(target: TgtTargetInfo, matches: (initiator: string) => boolean): Promise<void> {
    for (const nx of target.nexuses.filter((n) => matches(n.initiator))) {
      const conns = nx.connections.length > 0 ? nx.connections : [{ cid: 0, address: null }];
      for (const c of conns) {
        await this.adm.runTolerating(
          deleteConnectionArgv(this.adm.ctx, target.tid, nx.nexus, c.cid),
          'session-not-found',
          'connection-not-found',
          'invalid-request',
        );
        log().info({ iqn: target.iqn, initiator: nx.initiator, sid: nx.nexus, cid: c.cid }, 'closed iSCSI session of revoked initiator');
      }
    }
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
