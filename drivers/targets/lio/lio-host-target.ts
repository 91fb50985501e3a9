// target_layout = per-host on LIO, through configfs (configfs.ts): one iSCSI target per compute
// host (the registry record's IQN), `tpgt_1` with our portals, authentication=1,
// generate_node_acls=0 (no demo mode: only an initiator with an ACL logs in), and
//   - a LUN `lun/lun_<n>` per mapped volume, n = the record's number (0..255: LIO has no controller
//     LUN, and os-brick 6.1 addresses LUNs above 255 only by path names);
//   - a node ACL per initiator of the host, its CHAP (the host's) written into the ACL's auth files,
//     never onto a command line, and mapped LUNs `acls/<i>/lun_<n>` for exactly the volumes that
//     initiator attached. So an initiator sees only its own LUNs even if it guessed another host's
//     IQN and secret: without an ACL on that target the kernel refuses its login.
//
// Backstores: ONE storage object per volume, `core/iblock_<k>/cb-<volume name>`, shared by every
// host target the volume is mapped into (multi-attach). Why not one per target and volume: SCSI
// persistent reservations and the unit attention state live in the storage object, so clustered
// file systems on a multi-attach volume only coordinate when every host reaches the same object;
// and its unit serial (wwn/vpd_unit_serial = the mapping's serial, from which LIO also derives the
// NAA designator of VPD page 0x83) can only be set while no LUN links it, which one object per
// volume makes a one-time step. The object is removed with the last LUN linking it; a module-level
// lock per backstore name orders "link a LUN to it" against "remove it when unused" across host
// targets of this process.
//
// Only block devices (iblock): the per-volume LIO helper serves nothing else either, and every
// driver that runs with lioadm exports LVs.
//
// Nothing is persisted here: the registry is the record. configfs is empty after a reboot and the
// manager's restore (ensureExport with the attached connectors) rebuilds each host target from the
// registry with the same LUN numbers and CHAP.
import { access, constants, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { invalidInput } from '../../../src/errors.js';
import { log } from '../../../src/log.js';
import { HOST_TARGET_MARK } from '../host-target/host-target-name.js';
import { requireChap, type HostTargetRecord, type LunMapping, type LunRange } from '../host-target/host-target-registry.js';
import type { HostTargetHelper, LiveHostTarget } from '../host-target/host-target.js';
import { portalIps, sameIscsiName, type IscsiTargetOptions } from '../iscsi-common.js';
import { assertBackingPath } from '../validate.js';
import { Configfs, DEFAULT_CONFIGFS_ROOT, lockedReadConfigfsIo, portalName, TPG_ATTRIBS, type ConfigfsIo, type HostTargetInfo } from './configfs.js';
import { lioPortalNames, validateLioOptions } from './lio-target.js';

export interface LioHostTargetOptions extends IscsiTargetOptions {
  /** default /sys/kernel/config/target; tests point it at a stand-in directory */
  configfsRoot?: string;
  io?: ConfigfsIo;
  /** the reads done under a target's lock (default lockedReadConfigfsIo, or `io` when given) */
  lockedReadIo?: ConfigfsIo;
  /** whether a backing path is a block device (iblock serves nothing else); tests replace it */
  isBlockDevice?: (path: string) => Promise<boolean>;
}

// one per process, like the kernel's configfs: every LioHostTarget of every backend
const targetLocks = new KeyedMutex();
const backstoreLocks = new KeyedMutex();
const hbaLock = new KeyedMutex();

/** The storage object of a volume mapped into host targets (one per volume, see the top). */
export function hostBackstoreName(volumeName: string): string {
  return `${HOST_TARGET_MARK}${volumeName}`;
}

async function statIsBlockDevice(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isBlockDevice();
  } catch {
    return false;
  }
}

/** What each initiator must see: initiator (first spelling met) -> LUN numbers. */
export function wantedAcls(t: Pick<HostTargetRecord, 'luns'>): Array<{ initiator: string; luns: number[] }> {
  const out: Array<{ initiator: string; luns: number[] }> = [];
  for (const m of t.luns) {
    for (const i of m.initiators) {
      let e = out.find((x) => sameIscsiName(x.initiator, i));
      if (!e) {
        e = { initiator: i, luns: [] };
        out.push(e);
      }
      if (!e.luns.includes(m.lun)) e.luns.push(m.lun);
    }
  }
  for (const e of out) e.luns.sort((a, b) => a - b);
  return out;
}

export class LioHostTarget implements HostTargetHelper {
  readonly lunRange: LunRange = { min: 0, max: 255 };
  readonly fs: Configfs;
  /** the same configfs, read in the calling thread: only for the target whose lock is held */
  private readonly lockedFs: Configfs;
  private writableP: Promise<void> | null = null;
  private readonly isBlockDevice: (path: string) => Promise<boolean>;

  constructor(private readonly o: LioHostTargetOptions) {
    validateLioOptions(o);
    this.fs = new Configfs(o.configfsRoot ?? DEFAULT_CONFIGFS_ROOT, o.io);
    this.lockedFs = new Configfs(o.configfsRoot ?? DEFAULT_CONFIGFS_ROOT, o.lockedReadIo ?? o.io ?? lockedReadConfigfsIo);
    this.isBlockDevice = o.isBlockDevice ?? statIsBlockDevice;
  }

  isHostTargetIqn(iqn: string): boolean {
    return iqn.startsWith(`${this.o.targetPrefix}${HOST_TARGET_MARK}`);
  }

  /** Host targets are written to configfs only (no targetcli fallback): checked once. */
  private writable(): Promise<void> {
    this.writableP ??= (async () => {
      try {
        await access(this.fs.root, constants.W_OK);
      } catch {
        this.writableP = null;
        throw invalidInput(
          `target_layout = per-host with target_helper = lioadm writes LIO's configfs directly, and ${this.fs.root} is absent or not writable: load target_core_mod and iscsi_target_mod, mount configfs (/sys/kernel/config) and run the agent as root, or use target_layout = per-volume`,
        );
      }
    })();
    return this.writableP;
  }

  async apply(t: HostTargetRecord): Promise<void> {
    for (const m of t.luns) {
      assertBackingPath(m.backingPath);
      if (m.lun < this.lunRange.min || m.lun > this.lunRange.max) throw invalidInput(`LUN ${m.lun} of host target ${t.iqn} is outside LIO's ${this.lunRange.min}..${this.lunRange.max}`);
    }
    await targetLocks.run(t.iqn, async () => {
      await this.writable();
      if (t.luns.length === 0) {
        if (await this.lockedFs.readHostTarget(t.iqn)) {
          await this.destroy(t.iqn);
          log().info({ iqn: t.iqn }, 'host target deleted: its last LUN went');
        }
        return;
      }
      let live = await this.lockedFs.readHostTarget(t.iqn);
      const created = live === null || !live.tpg;
      try {
        if (!live || !live.tpg) {
          await this.fs.createTarget(t.iqn);
          live = (await this.lockedFs.readHostTarget(t.iqn)) as HostTargetInfo;
        }
        await this.reconcile(t, live);
      } catch (e) {
        // a target made here and left half-built could admit someone to nothing or to too much: gone again
        if (created) await this.destroy(t.iqn).catch((err: unknown) => log().error({ iqn: t.iqn, err }, 'could not delete a half-built host target'));
        throw e;
      }
      log().info({ iqn: t.iqn, luns: t.luns.length, created }, 'host target applied');
    });
  }

  /**
   * Order, for safety: TPG attributes (authentication on, no generated ACLs) and portals; then what
   * must go, narrowest first: mapped LUNs, ACLs (the kernel closes their sessions), LUNs, unused
   * backstores; then new LUNs, then ACLs with CHAP before their mapped LUNs; the TPG enabled last.
   */
  private async reconcile(t: HostTargetRecord, live: HostTargetInfo): Promise<void> {
    const iqn = t.iqn;
    const chap = requireChap(t);
    if (TPG_ATTRIBS.some(([k, v]) => live.attribs[k] !== v)) await this.fs.setTpgAttribs(iqn);
    const portals = lioPortalNames(this.o);
    for (const ip of portalIpsOf(this.o)) {
      if (!live.portals.includes(ip.name) || this.o.targetProtocol === 'iser') await this.fs.addPortal(iqn, ip.ip, this.o.targetPort, this.o.targetProtocol === 'iser');
    }
    for (const np of live.portals.filter((p) => !portals.includes(p))) await this.fs.removePortal(iqn, np);

    // LUNs kept: the right storage object, on the recorded device, with the recorded serial
    const keep = new Set<number>();
    for (const l of live.luns) {
      const m = t.luns.find((x) => x.lun === l.lun);
      if (m && l.backstore !== null && basename(l.backstore) === hostBackstoreName(m.volumeName) && l.udevPath === m.backingPath && l.serial === m.serial) keep.add(l.lun);
    }
    const wanted = wantedAcls(t);

    for (const a of live.acls) {
      const w = wanted.find((x) => sameIscsiName(x.initiator, a.initiator));
      for (const [k, to] of Object.entries(a.mapped)) {
        const mapped = Number(k);
        if (w && w.luns.includes(mapped) && to === mapped && keep.has(mapped)) continue;
        await this.fs.unmapLun(iqn, a.initiator, mapped);
        log().info({ iqn, initiator: a.initiator, lun: mapped }, 'LUN taken out of the initiator\'s view on host target');
      }
      if (!w) {
        await this.fs.removeAcl(iqn, a.initiator);
        log().info({ iqn, initiator: a.initiator }, 'initiator removed from host target; the kernel closes its sessions');
      }
    }
    for (const l of live.luns) {
      if (keep.has(l.lun)) continue;
      await this.fs.removeLun(iqn, l.lun);
      if (l.backstore) await this.releaseBackstore(basename(l.backstore));
      log().info({ iqn, lun: l.lun, backing: l.udevPath || null }, 'unmapped LUN from host target');
    }

    const made = new Set<number>();
    for (const m of t.luns) {
      if (keep.has(m.lun)) continue;
      await this.mapVolume(iqn, m);
      made.add(m.lun);
      log().info({ iqn, lun: m.lun, volume_id: m.volumeId }, 'mapped LUN into host target');
    }
    const mappedNow: Array<{ initiator: string; lun: number }> = [];
    for (const w of wanted) {
      const a = live.acls.find((x) => sameIscsiName(x.initiator, w.initiator));
      const name = a?.initiator ?? w.initiator;
      if (!a || a.userid !== chap.username || a.password !== chap.password) await this.fs.ensureAcl(iqn, name, chap.username, chap.password);
      for (const lun of w.luns) {
        if (a && a.mapped[lun] === lun && keep.has(lun)) continue;
        await this.fs.mapLun(iqn, name, lun, lun);
        mappedNow.push({ initiator: name, lun });
      }
    }
    if (!live.enabled) await this.fs.setTpgEnabled(iqn, true);
    await this.verify(t, made, mappedNow);
  }

  /**
   * configfs read back: what the kernel accepted is what the record says. The whole shape (TPG
   * state, every LUN number, every ACL's mapped numbers) is read again; the device and serial
   * behind a LUN, and the LUN an ACL's mapping links, only for what this change made. The others were read moments ago under the
   * same lock and kept because they matched; reading them again made every attach cost a read
   * per LUN already on the target.
   */
  private async verify(t: HostTargetRecord, made: ReadonlySet<number>, mappedNow: ReadonlyArray<{ initiator: string; lun: number }>): Promise<void> {
    const now = await this.lockedFs.readHostTargetOutline(t.iqn);
    if (!now) {
      // someone cleared configfs under the change (targetcli clearconfig, a module reload): ENOENT
      // is how the LIO watch knows to probe, and the change is tried again on the restored state
      throw Object.assign(new Error(`host target ${t.iqn} vanished from configfs during the change; the watch restores it from the registry`), { code: 'ENOENT' });
    }
    const problems: string[] = [];
    if (!now.enabled) problems.push('TPG not enabled');
    if (now.attribs.authentication !== '1' || now.attribs.generate_node_acls !== '0') problems.push('authentication off or ACLs generated');
    const recorded = t.luns.map((m) => m.lun).sort((a, b) => a - b);
    if (JSON.stringify(now.luns) !== JSON.stringify(recorded)) problems.push(`LUNs [${now.luns.join(',')}] live, [${recorded.join(',')}] recorded`);
    for (const m of t.luns) {
      if (!made.has(m.lun)) continue;
      const l = await this.lockedFs.readHostLunAt(t.iqn, m.lun);
      if (!l || l.serial !== m.serial || l.udevPath !== m.backingPath) problems.push(`LUN ${m.lun} not ${m.backingPath} with serial ${m.serial}`);
    }
    for (const { initiator, lun } of mappedNow) {
      const to = await this.lockedFs.readMappedLun(t.iqn, initiator, lun);
      if (to !== lun) problems.push(`ACL ${initiator}'s LUN ${lun} links ${to === null ? 'nothing' : `LUN ${to}`}`);
    }
    const wanted = wantedAcls(t);
    for (const a of now.acls) {
      const w = wanted.find((x) => sameIscsiName(x.initiator, a.initiator));
      if (!w || JSON.stringify(a.mapped) !== JSON.stringify(w.luns)) problems.push(`ACL ${a.initiator} maps LUNs [${a.mapped.join(',')}]`);
    }
    if (now.acls.length !== wanted.length) problems.push(`${now.acls.length} ACLs live, ${wanted.length} wanted`);
    if (problems.length > 0) throw new Error(`host target ${t.iqn} does not match its record after the change: ${problems.join('; ')}`);
  }

  /** The volume's storage object (made with its serial when absent) and the LUN linking it. */
  private async mapVolume(iqn: string, m: LunMapping): Promise<void> {
    const name = hostBackstoreName(m.volumeName);
    await backstoreLocks.run(name, async () => {
      let bs = await this.lockedFs.findBackstore(name);
      if (bs && (bs.udevPath !== m.backingPath || (await this.fs.readUnitSerial(bs.path)) !== m.serial)) {
        // a leftover from an earlier path (a migrated volume): replaceable only while nothing links it
        if ((await this.linkedBackstores()).has(bs.path)) {
          throw invalidInput(
            `LIO storage object ${name} is on ${bs.udevPath || 'nothing'} (serial ${await this.fs.readUnitSerial(bs.path)}) and still linked by another host target, but volume ${m.volumeId} is now ${m.backingPath} (serial ${m.serial}); detach the volume from every host and attach it again`,
          );
        }
        await this.fs.removeBackstore(bs);
        bs = null;
      }
      if (!bs) {
        if (!(await this.isBlockDevice(m.backingPath))) {
          throw invalidInput(`volume ${m.volumeId}: ${m.backingPath} is not a block device, and LIO host targets serve block devices only (iblock); check that the volume's LV is active`);
        }
        bs = await hbaLock.run('hba', async () => this.fs.createIblockBackstore(await this.lockedFs.freeIblockHba(), name, m.backingPath, m.serial));
      }
      await this.fs.createLun(iqn, m.lun, bs.path);
    });
  }

  /**
   * Storage objects linked by any LUN of any iSCSI target in configfs (ours of every backend, and
   * anyone else's: an object still linked must stay whoever links it).
   */
  private async linkedBackstores(): Promise<Set<string>> {
    return this.fs.linkedBackstores(await this.fs.listTargets());
  }

  /** Removes one of our storage objects when no LUN links it any more (multi-attach keeps it). */
  private async releaseBackstore(name: string): Promise<void> {
    if (!name.startsWith(HOST_TARGET_MARK)) return; // never anyone else's
    await backstoreLocks.run(name, async () => {
      const bs = await this.fs.findBackstore(name);
      if (!bs || (await this.linkedBackstores()).has(bs.path)) return;
      try {
        await this.fs.removeBackstore(bs);
      } catch (e) {
        // the kernel refuses while a LUN (someone else's) links it: it stays, which is safe
        if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
        log().warn({ backstore: name }, 'LIO storage object still linked by a LUN outside our host targets; left in place');
      }
    });
  }

  /** Target (mapped LUNs, ACLs, LUNs, portals, TPG) then the storage objects nothing links now. */
  private async destroy(iqn: string): Promise<void> {
    const live = await this.fs.readHostTarget(iqn);
    const started = Date.now();
    await this.fs.removeTarget(iqn);
    // the kernel closes the target's sessions inside these writes: how long that took is worth knowing
    log().debug({ iqn, ms: Date.now() - started, sessions: live?.acls.filter((a) => a.session !== null).length ?? 0 }, 'host target removed from configfs');
    if (await this.fs.readHostTarget(iqn)) throw new Error(`host target ${iqn} still present in configfs after removal`);
    for (const l of live?.luns ?? []) if (l.backstore) await this.releaseBackstore(basename(l.backstore));
  }

  async remove(iqn: string): Promise<void> {
    if (!this.isHostTargetIqn(iqn)) throw invalidInput(`${iqn} is not a host target of this backend; not removing it`);
    await targetLocks.run(iqn, async () => {
      await this.writable();
      await this.destroy(iqn);
    });
  }

  /**
   * Nothing to do: an iblock storage object asks the block device for its size on every READ
   * CAPACITY, so the host sees the grown LV after a rescan (os-brick rescans on extend).
   */
  async extend(t: HostTargetRecord, lun: number): Promise<void> {
    log().debug({ iqn: t.iqn, lun }, 'extend: LIO iblock sees the new size by itself');
  }

  /** Our host targets present in configfs with their TPG enabled (one readdir, one read each). */
  async liveIqns(): Promise<string[]> {
    if (!(await this.fs.available())) return [];
    const out: string[] = [];
    for (const iqn of await this.fs.listTargets()) {
      if (this.isHostTargetIqn(iqn) && (await this.fs.tpgEnabled(iqn))) out.push(iqn);
    }
    return out;
  }

  async list(): Promise<LiveHostTarget[]> {
    if (!(await this.fs.available())) return [];
    const out: LiveHostTarget[] = [];
    for (const iqn of await this.fs.listTargets()) {
      if (!this.isHostTargetIqn(iqn)) continue;
      const t = await this.fs.readHostTarget(iqn);
      if (!t) continue;
      const mappedLuns: Record<string, number[]> = {};
      for (const a of t.acls) mappedLuns[a.initiator] = Object.keys(a.mapped).map(Number).sort((x, y) => x - y);
      out.push({
        iqn,
        luns: t.luns.map((l) => ({ lun: l.lun, backingPath: l.udevPath || null, serial: l.serial || null })),
        initiators: t.acls.map((a) => a.initiator),
        mappedLuns,
        sessions: t.acls.filter((a) => a.session !== null).map((a) => ({ initiator: a.initiator, address: a.session?.address ?? null })),
        chapUsers: [...new Set(t.acls.map((a) => a.userid).filter((u) => u !== ''))],
      });
    }
    return out;
  }
}

function portalIpsOf(o: IscsiTargetOptions): Array<{ ip: string; name: string }> {
  return portalIps(o).map((ip) => ({ ip, name: portalName(ip, o.targetPort) }));
}
