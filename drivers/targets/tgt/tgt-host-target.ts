// target_layout = per-host on tgt: one target per compute host, each attached volume a LUN of it
// (1..255: LUN 0 is tgt's controller, and os-brick 6.1 addresses LUNs above 255 only by path names).
// tgt's ACLs are per target, so the target admits exactly the initiators of its host's attachments
// (`--initiator-name`), CHAP on top; every LUN carries its volume's serial: `scsi_sn` (VPD page
// 0x80) and `scsi_id`, from which tgt also derives the NAA designator of page 0x83, so an initiator
// that compares identifiers sees a changed device as changed.
//
// The CHAP password reaches tgtadm's argv once, when the host's account is created: tgtadm has no
// other way to take it (tgt-admin itself passes it the same way). It is never logged: the process
// runner redacts it from every argv it logs (src/exec/redact-argv.ts).
//
// No target file is written for host targets: the agent itself restores them from its registry at
// start and after a tgtd loss (the supervisor's restore), with the same LUN numbers and CHAP.
import { samePath } from '../../../src/fs/same-path.js';
import { processRunner } from '../../../src/exec/run-command.js';
import { log } from '../../../src/log.js';
import { HOST_TARGET_MARK } from '../host-target/host-target-name.js';
import { admittedInitiators, requireChap, type HostTargetRecord, type LunRange } from '../host-target/host-target-registry.js';
import type { HostTargetHelper, LiveHostTarget } from '../host-target/host-target.js';
import { sameIscsiName, validateIscsiTargetOptions } from '../iscsi-common.js';
import { assertBackingPath, assertBsoflags, assertDirectory } from '../validate.js';
import { TgtAccountRecord, tgtAccountsPath } from './tgt-accounts.js';
import type { TgtTargetOptions } from './tgt-target.js';
import {
  bindInitiatorNameArgv,
  deleteAccountArgv,
  deleteLunArgv,
  isTgtadmError,
  Tgtadm,
  WRITE_CACHE_OFF_MODE_PAGE,
} from './tgtadm.js';
import { isInitiatorNameAcl, type TgtLun, type TgtTargetInfo } from './tgtadm-parse.js';
import { closeSessions, createTargetOnFreeTid, daemonState, deleteTargetChecked, readyWithOnlyAccount, retryWhileBusy, unbindAclArgv, type DaemonState } from './tgtd-state.js';

/** The per-volume helper's options (volumes_dir holds the record of CHAP accounts both create). */
export type TgtHostTargetOptions = Omit<TgtTargetOptions, 'quiesceSettleMs' | 'servingPid'>;

/** tgt prints the serial padded to its field width; compare without the padding. */
function lunSerial(l: TgtLun): string | null {
  const sn = l.scsiSn?.trim();
  return sn ? sn : null;
}

/** scsi_sn: the serial without dashes (32 hex digits); scsi_id: the serial as it is (a uuid). */
export function tgtSerialParams(serial: string): Array<[string, string]> {
  return [
    ['scsi_sn', serial.replaceAll('-', '')],
    ['scsi_id', serial],
  ];
}

export class TgtHostTarget implements HostTargetHelper {
  readonly lunRange: LunRange = { min: 1, max: 255 };
  private readonly adm: Tgtadm;
  private readonly daemon: DaemonState;
  private readonly accounts: TgtAccountRecord;
  private readonly busyTimeoutMs: number;

  constructor(private readonly o: TgtHostTargetOptions) {
    validateIscsiTargetOptions(o);
    assertDirectory(o.volumesDir, 'volumes_dir');
    if (o.iscsiTargetFlags !== '') assertBsoflags(o.iscsiTargetFlags);
    this.adm = new Tgtadm(o.runner ?? processRunner(), { controlPort: o.controlPort, lld: o.targetProtocol });
    this.daemon = daemonState(o.controlPort);
    this.accounts = new TgtAccountRecord(tgtAccountsPath(o.volumesDir));
    this.busyTimeoutMs = o.busyTimeoutMs ?? 10_000;
  }

  get tgtadm(): Tgtadm {
    return this.adm;
  }

  isHostTargetIqn(iqn: string): boolean {
    return iqn.startsWith(`${this.o.targetPrefix}${HOST_TARGET_MARK}`);
  }

  async apply(t: HostTargetRecord): Promise<void> {
    for (const m of t.luns) assertBackingPath(m.backingPath);
    await this.daemon.targetLocks.run(t.iqn, async () => {
      const listing = await this.adm.listTargets();
      const live = listing.find(t.iqn);
      if (t.luns.length === 0) {
        if (live) await this.destroy(live, t.chap?.username ?? null);
        return;
      }
      let target = live;
      let created = false;
      if (!target) {
        target = await createTargetOnFreeTid(this.adm, this.daemon, t.iqn, { listing, creates: this.daemon.creates }, this.o.targetProtocol);
        created = true;
      }
      try {
        await this.reconcile(t, target);
      } catch (e) {
        // a target made here and left half-built could admit someone to nothing or to too much: gone again
        if (created) await this.destroy(target, null).catch((err: unknown) => log().error({ iqn: t.iqn, err }, 'could not delete a half-built host target'));
        throw e;
      }
      log().info({ iqn: t.iqn, tid: target.tid, luns: t.luns.length, created }, 'host target applied');
    });
  }

  /**
   * Order, for safety: CHAP first (never reachable without it), then the LUNs that must go, then
   * the initiators that must go (and their sessions), then new LUNs, then new initiators.
   */
  private async reconcile(t: HostTargetRecord, target: TgtTargetInfo): Promise<void> {
    const tid = target.tid;
    await readyWithOnlyAccount(this.adm, this.accounts, target, requireChap(t));

    // LUNs that must go: not in the record, or serving another path or serial than recorded
    const keep = new Set<number>();
    for (const l of target.luns) {
      if (l.lun === 0) continue;
      const want = t.luns.find((m) => m.lun === l.lun);
      const same = want !== undefined && l.backingStorePath !== null && lunSerial(l) === want.serial.replaceAll('-', '') && (await samePath(l.backingStorePath, want.backingPath));
      if (same) {
        keep.add(l.lun);
        continue;
      }
      await retryWhileBusy(() => this.adm.runTolerating(deleteLunArgv(this.adm.ctx, tid, l.lun), 'lun-not-found'), this.busyTimeoutMs);
      log().info({ iqn: t.iqn, lun: l.lun, backing: l.backingStorePath }, 'unmapped LUN from host target');
    }

    const admitted = admittedInitiators(t);
    const leaving = target.acls.filter((a) => !isInitiatorNameAcl(a) || !admitted.some((i) => sameIscsiName(i, a)));
    for (const a of leaving) await this.adm.runTolerating(unbindAclArgv(this.adm.ctx, tid, a), 'acl-not-found');
    if (leaving.length > 0) {
      const gone = (name: string): boolean => !admitted.some((i) => sameIscsiName(i, name));
      await closeSessions(this.adm, target, gone);
    }

    for (const m of t.luns) {
      if (keep.has(m.lun)) continue;
      await this.adm.newLun(tid, m.lun, m.backingPath, { bsoflags: this.o.iscsiTargetFlags || undefined });
      await this.adm.updateLunParams(tid, m.lun, [['thin_provisioning', '1'], ...tgtSerialParams(m.serial)]);
      if (this.o.iscsiWriteCache === 'off') await this.adm.updateLunParams(tid, m.lun, [['mode_page', WRITE_CACHE_OFF_MODE_PAGE]]);
      log().info({ iqn: t.iqn, lun: m.lun, volume_id: m.volumeId }, 'mapped LUN into host target');
    }
    for (const i of admitted) {
      if (target.acls.some((a) => sameIscsiName(a, i))) continue;
      await this.adm.runTolerating(bindInitiatorNameArgv(this.adm.ctx, tid, i), 'acl-exists');
    }
  }

  private async destroy(target: TgtTargetInfo, account: string | null): Promise<void> {
    await deleteTargetChecked(this.adm, target.tid, target.iqn, this.busyTimeoutMs, target);
    const users = new Set(target.accounts);
    if (account) users.add(account);
    if (users.size === 0) return;
    const listing = await this.adm.listTargets();
    const gone: string[] = [];
    for (const u of users) {
      if (listing.accountInUse(u, target.iqn)) continue;
      await this.adm.runTolerating(deleteAccountArgv(this.adm.ctx, u), 'account-not-found');
      gone.push(u);
    }
    await this.accounts.forget(gone);
    log().info({ iqn: target.iqn, tid: target.tid }, 'host target deleted: its last LUN went');
  }

  async remove(iqn: string): Promise<void> {
    await this.daemon.targetLocks.run(iqn, async () => {
      const target = (await this.adm.listTargets()).find(iqn);
      if (target) await this.destroy(target, null);
    });
  }

  /**
   * `--params online=0,path=<same path>` makes tgtd reopen the backing store and read its size.
   * Unlike the per-volume target, the host's other LUNs stay in use, so the target is not taken
   * offline: commands in flight on this LUN are retried by the initiator.
   */
  async extend(t: HostTargetRecord, lun: number): Promise<void> {
    const m = t.luns.find((x) => x.lun === lun);
    if (!m) return;
    await this.daemon.targetLocks.run(t.iqn, async () => {
      const target = (await this.adm.listTargets()).find(t.iqn);
      if (!target?.luns.some((l) => l.lun === lun)) return;
      await retryWhileBusy(
        () =>
          this.adm.updateLunParams(target.tid, lun, [
            ['online', '0'],
            ['path', m.backingPath],
          ]),
        this.busyTimeoutMs,
      );
      const after = (await this.adm.listTargets()).find(t.iqn)?.luns.find((l) => l.lun === lun);
      if (after?.online === false) await this.adm.updateLunParams(target.tid, lun, [['online', '1']]);
    });
  }

  async list(): Promise<LiveHostTarget[]> {
    let targets: TgtTargetInfo[];
    try {
      targets = (await this.adm.listTargets()).all();
    } catch (e) {
      if (isTgtadmError(e, 'no-daemon')) return [];
      throw e;
    }
    return targets
      .filter((t) => this.isHostTargetIqn(t.iqn))
      .map((t) => ({
        iqn: t.iqn,
        luns: t.luns.filter((l) => l.lun !== 0).map((l) => ({ lun: l.lun, backingPath: l.backingStorePath, serial: lunSerial(l) })),
        initiators: t.acls,
        sessions: t.nexuses.map((n) => ({ initiator: n.initiator, address: n.connections[0]?.address ?? null })),
        chapUsers: t.accounts,
      }));
  }
}
