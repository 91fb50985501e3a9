// target_helper = lioadm: iSCSI exports through the kernel's LIO target, driven from TypeScript
// by writing configfs (configfs.ts) — no cinder-rtstool/python per call — with a targetcli
// fallback (backend.ts) where configfs is not writable by the agent.
//
// Layout as cinder-rtstool makes it, so exports made by cinder are recognised: backstore
// `core/iblock_<n>/<iqn>` on the volume's device, target `iscsi/<iqn>/tpgt_1`, LUN 0, one portal per
// target_ip_address / iscsi_secondary_ip_addresses, TPG authentication=1. Stricter than cinder in
// the same way as the tgt helper: generate_node_acls=0 and one ACL per attached initiator
// (CHAP per volume on the ACL, mapped LUN 0); terminateConnection removes the ACL, and LIO closes
// that initiator's sessions when its ACL goes. provider_location `<portals>,<iqn> <iqn> 0`
// (CONTRACT 5: "for LIO tid is the get-targets line (the IQN) and lun 0").
//
// Persistence: configfs is gone after a reboot. The helper keeps its own record
// ($volumes_dir/cinderblock-lio.json, lio-state.ts) and `reconcile()` at start rebuilds and mends
// only the targets listed there; it never rewrites rtslib's saveconfig.json (/etc/target/, or
// /etc/rtslib-fb-target/ on Debian; that file holds everyone's objects). ensureExport rebuilds one
// export from the volume row + DB initiators.
//
// Concurrency: per-IQN KeyedMutex for everything on one target; one global lock for the iblock
// index allocation and for the read-modify-write of the record file (taken inside a target lock,
// never the other way round).
import { access, constants } from 'node:fs/promises';
import { isIP } from 'node:net';
import { forEachLimited } from '../../../src/concurrency/for-each-limited.js';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { invalidInput } from '../../../src/errors.js';
import { log } from '../../../src/log.js';
import { assertInitiatorName, type ChapCredentials, chapForExport, formatProviderAuth, parseProviderAuth } from '../../../src/iscsi/index.js';
import { processRunner, type CommandRunner } from '../../../src/exec/run-command.js';
import {
  connectorInitiator,
  iscsiConnectionInfo,
  iscsiLocation,
  portalIps,
  sameIscsiName,
  validateIscsiConnector,
  validateIscsiTargetOptions,
  volumeIqn,
  type IscsiTargetOptions,
  revocationFor,
} from '../iscsi-common.js';
import {
  invalidVolume,
  iscsiTargetAttachFailed,
  iscsiTargetCreateFailed,
  iscsiTargetDetachFailed,
  iscsiTargetRemoveFailed,
} from '../../../src/errors.js';
import type { ConnectionInfo, Connector, EnsureExportOptions, ExportedVolume, ExportModelUpdate, FoundExport, TargetHelper, TerminateOptions } from '../target.js';
import { assertBackingPath, assertDirectory, assertVolumeName } from '../validate.js';
import { ConfigfsBackend, TargetcliBackend, type LioBackend } from './backend.js';
import { Configfs, DEFAULT_CONFIGFS_ROOT, portalName, TPG_ATTRIBS, type ConfigfsIo } from './configfs.js';
import { HOST_TARGET_MARK, volumeSerial } from '../host-target/host-target-name.js';
import { lioStatePath, readLioState, writeLioState, type LioExportRecord, type LioState } from './lio-state.js';

export const LIO_LUN = 0;

/** Exports mended at once by reconcile (a reboot leaves all of them to rebuild). */
const RECONCILE_CONCURRENCY = 8;

export interface LioTargetOptions extends IscsiTargetOptions {
  /** volumes_dir: holds cinderblock-lio.json */
  volumesDir: string;
  /** default /sys/kernel/config/target; tests point it at a stand-in directory */
  configfsRoot?: string;
  /** file operations on configfs (tests inject a stand-in) */
  io?: ConfigfsIo;
  /** 'auto' (default): configfs when its root is writable, otherwise targetcli */
  backend?: 'auto' | 'configfs' | 'targetcli';
  /** runs targetcli for the fallback; default the one process runner (src/exec) */
  runner?: CommandRunner;
}

interface Desired {
  volumeId: string;
  iqn: string;
  /** the backstore's unit serial when it is made: the volume's (volumeSerial) */
  serial: string;
  backingPath: string;
  chap: ChapCredentials;
  /** exact: ACLs become exactly these initiators; keep: existing ACLs stay (CHAP refreshed) */
  acl: { mode: 'exact'; initiators: string[] } | { mode: 'keep' };
}

/** The iSCSI options both LIO layouts check: LIO binds portals to IP addresses, not host names. */
export function validateLioOptions(o: IscsiTargetOptions): void {
  validateIscsiTargetOptions(o);
  for (const ip of portalIps(o)) {
    if (isIP(ip) === 0) throw invalidInput(`LIO portals need IP addresses; target_ip_address/iscsi_secondary_ip_addresses has ${JSON.stringify(ip)}`);
  }
}

/** The portals (`np/` names) every target of ours has: target_ip_address + the secondary ones. */
export function lioPortalNames(o: IscsiTargetOptions): string[] {
  return portalIps(o).map((ip) => portalName(ip, o.targetPort));
}

/** Host targets (target_layout = per-host, lio-host-target.ts) are not per-volume exports. */
function isHostTarget(prefix: string, iqn: string): boolean {
  return iqn.startsWith(`${prefix}${HOST_TARGET_MARK}`);
}

function uniqueNames(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of names) if (!out.some((o) => sameIscsiName(o, n))) out.push(n);
  return out;
}

function isInvalidVolume(e: unknown): boolean {
  return (e as { className?: string } | null)?.className === 'InvalidVolume';
}

export class LioTarget implements TargetHelper {
  private readonly targetLocks = new KeyedMutex();
  private readonly globalLock = new KeyedMutex();
  private readonly root: string;
  private backendP: Promise<LioBackend> | null = null;

  constructor(private readonly o: LioTargetOptions) {
    validateLioOptions(o);
    assertDirectory(o.volumesDir, 'volumes_dir');
    this.root = o.configfsRoot ?? DEFAULT_CONFIGFS_ROOT;
  }

  /** The backend in use (chosen once, on first use). */
  backend(): Promise<LioBackend> {
    this.backendP ??= this.chooseBackend();
    return this.backendP;
  }

  private async chooseBackend(): Promise<LioBackend> {
    const fs = new Configfs(this.root, this.o.io);
    const mode = this.o.backend ?? 'auto';
    const targetcli = () => new TargetcliBackend(fs, this.o.runner ?? processRunner());
    if (mode === 'configfs') return new ConfigfsBackend(fs);
    if (mode === 'targetcli') return targetcli();
    let writable = false;
    try {
      await access(this.root, constants.W_OK);
      writable = true;
    } catch {
      writable = false;
    }
    const b = writable ? new ConfigfsBackend(fs) : targetcli();
    log().info({ root: this.root, backend: b.kind }, writable ? 'LIO: writing configfs directly' : 'LIO: configfs absent or read-only; using targetcli');
    return b;
  }

  iqnOf(v: Pick<ExportedVolume, 'name'>): string {
    return volumeIqn(this.o.targetPrefix, v.name);
  }

  statePath(): string {
    return lioStatePath(this.o.volumesDir);
  }

  private location(iqn: string): string {
    return iscsiLocation(this.o, iqn, iqn, LIO_LUN);
  }

  validateConnector(connector: Connector): void {
    validateIscsiConnector(connector);
  }

  // ---- record --------------------------------------------------------------------------------

  private readState(): Promise<LioState> {
    return readLioState(this.statePath());
  }

  private updateState(fn: (s: LioState) => void): Promise<void> {
    return this.globalLock.run('global', async () => {
      const s = await this.readState();
      fn(s);
      await writeLioState(this.statePath(), s);
    });
  }

  private async record(iqn: string): Promise<LioExportRecord | null> {
    return (await this.readState()).exports[iqn] ?? null;
  }

  // ---- export lifecycle ------------------------------------------------------------------------

  async createExport(v: ExportedVolume): Promise<ExportModelUpdate> {
    const iqn = this.iqnOf(v);
    assertBackingPath(v.backingPath);
    return this.targetLocks.run(iqn, async () => {
      try {
        const rec = await this.record(iqn);
        const { creds, generated } = parseProviderAuth(v.providerAuth) || !rec ? chapForExport(v.providerAuth) : { creds: rec.chap, generated: false };
        // cinder calls create_export before every attachment: the recorded initiators stay
        const acl: Desired['acl'] = rec ? { mode: 'exact', initiators: rec.initiators } : { mode: 'keep' };
        const created = await this.build({ volumeId: v.id, iqn, serial: volumeSerial(v), backingPath: v.backingPath, chap: creds, acl });
        const initiators = rec ? rec.initiators : ((await (await this.backend()).readTarget(iqn))?.acls.map((a) => a.initiator) ?? []);
        try {
          await this.updateState((s) => {
            s.exports[iqn] = { volumeId: v.id, iqn, backingPath: v.backingPath, chap: creds, initiators };
          });
        } catch (e) {
          if (created) await this.destroy(iqn);
          throw e;
        }
        log().info({ volume_id: v.id, iqn, created, new_chap: generated }, 'created LIO export');
        return { provider_location: this.location(iqn), provider_auth: formatProviderAuth(creds) };
      } catch (e) {
        log().error({ volume_id: v.id, iqn, err: e }, 'failed to create LIO target');
        throw iscsiTargetCreateFailed(v.id, e);
      }
    });
  }

  async ensureExport(v: ExportedVolume, opts: EnsureExportOptions = {}): Promise<void> {
    const iqn = this.iqnOf(v);
    assertBackingPath(v.backingPath);
    for (const i of opts.initiators ?? []) assertInitiatorName(i);
    await this.targetLocks.run(iqn, async () => {
      try {
        const rec = await this.record(iqn);
        const creds = parseProviderAuth(v.providerAuth) ?? rec?.chap ?? null;
        if (!creds) {
          if (!v.providerLocation) return;
          throw invalidVolume(`volume ${v.id} has no CHAP credentials; refusing to export it without CHAP`);
        }
        let initiators: string[];
        if (opts.initiators) initiators = uniqueNames(opts.initiators);
        else if (rec) initiators = rec.initiators;
        else initiators = (await (await this.backend()).readTarget(iqn))?.acls.map((a) => a.initiator) ?? [];
        const created = await this.build({ volumeId: v.id, iqn, serial: volumeSerial(v), backingPath: v.backingPath, chap: creds, acl: { mode: 'exact', initiators } });
        await this.updateState((s) => {
          s.exports[iqn] = { volumeId: v.id, iqn, backingPath: v.backingPath, chap: creds, initiators };
        });
        log().info({ volume_id: v.id, iqn, recreated: created, initiators: initiators.length }, 'ensured LIO export');
      } catch (e) {
        log().error({ volume_id: v.id, iqn, err: e }, 'failed to ensure LIO target');
        throw iscsiTargetCreateFailed(v.id, e);
      }
    });
  }

  async removeExport(v: ExportedVolume): Promise<void> {
    const iqn = this.iqnOf(v);
    await this.targetLocks.run(iqn, async () => {
      try {
        await this.destroy(iqn);
        await this.updateState((s) => {
          delete s.exports[iqn];
        });
        log().info({ volume_id: v.id, iqn }, 'removed LIO export');
      } catch (e) {
        log().error({ volume_id: v.id, iqn, err: e }, 'failed to remove LIO target');
        throw iscsiTargetRemoveFailed(v.id, e);
      }
    });
  }

  // ---- connections ------------------------------------------------------------------------------

  async initializeConnection(v: ExportedVolume, connector: Connector): Promise<ConnectionInfo> {
    const initiator = connectorInitiator(connector);
    const iqn = this.iqnOf(v);
    return this.targetLocks.run(iqn, async () => {
      let added = false;
      const b = await this.backend();
      try {
        const t = await b.readTarget(iqn);
        if (!t || !t.lun0Backstore) throw invalidVolume(`Could not find iSCSI export for volume ${v.name}`);
        const rec = await this.record(iqn);
        const chap = parseProviderAuth(v.providerAuth) ?? rec?.chap ?? null;
        if (!chap) throw invalidVolume(`iSCSI target of volume ${v.id} has no CHAP credentials; refusing to open it`);
        // built before any change: a malformed provider_location fails here
        const info = iscsiConnectionInfo(this.o, v, v.providerLocation ?? this.location(iqn), connector, false);
        const existing = t.acls.find((a) => sameIscsiName(a.initiator, initiator));
        const name = existing?.initiator ?? initiator;
        if (!existing || !existing.mappedLun0 || existing.userid !== chap.username || existing.password !== chap.password) {
          added = await b.addAcl(iqn, name, chap.username, chap.password);
        }
        await this.updateState((s) => {
          const r = s.exports[iqn] ?? { volumeId: v.id, iqn, backingPath: v.backingPath, chap, initiators: [] };
          if (!r.initiators.some((i) => sameIscsiName(i, name))) r.initiators.push(name);
          s.exports[iqn] = r;
        });
        log().info({ volume_id: v.id, iqn, initiator: name, newly_added: added }, 'initiator allowed on LIO target');
        return info;
      } catch (e) {
        if (added) {
          await b.removeAcl(iqn, initiator).catch((err: unknown) => log().error({ iqn, initiator, err }, 'could not undo the ACL of a failed initialize_connection'));
        }
        log().error({ volume_id: v.id, iqn, initiator, err: e }, 'failed to initialize LIO connection');
        if (isInvalidVolume(e)) throw e;
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
      let recordError: unknown = null;
      // 1. the record first: a restart or reconcile will not bring the ACL back
      try {
        await this.updateState((s) => {
          const r = s.exports[iqn];
          if (r) r.initiators = r.initiators.filter((n) => !matches(n));
        });
      } catch (e) {
        recordError = e;
      }
      try {
        // 2. the ACL (mapped LUN first); removing it makes LIO close that initiator's sessions
        const b = await this.backend();
        const t = await b.readTarget(iqn);
        for (const a of t?.acls.filter((x) => matches(x.initiator)) ?? []) await b.removeAcl(iqn, a.initiator);
        const left = (await b.readTarget(iqn))?.acls.filter((x) => matches(x.initiator)) ?? [];
        if (left.length > 0) throw new Error(`ACL still present after removal: ${left.map((a) => a.initiator).join(', ')}`);
        if (recordError) throw recordError;
        log().info({ volume_id: v.id, iqn, initiator: initiator ?? 'ALL (force)' }, 'initiator revoked on LIO target');
      } catch (e) {
        log().error({ volume_id: v.id, iqn, initiator, err: e }, 'failed to terminate LIO connection');
        throw iscsiTargetDetachFailed(v.id, e);
      }
    });
  }

  /**
   * Nothing to do: an iblock backstore asks the block device for its size on every READ CAPACITY
   * (target_core_iblock reads the bdev size), so a grown LV is visible to initiators after they
   * rescan (os-brick does). cinder's lio.py has no extend_target either.
   */
  async extendTarget(v: ExportedVolume): Promise<void> {
    log().debug({ volume_id: v.id, iqn: this.iqnOf(v) }, 'extend_target: LIO iblock sees the new size by itself');
  }

  async listExports(): Promise<string[]> {
    return (await (await this.backend()).listTargets()).filter((iqn) => iqn.startsWith(this.o.targetPrefix) && !isHostTarget(this.o.targetPrefix, iqn));
  }

  /** Targets with our prefix in configfs, and our record's entries (the start-up sweep). */
  async findExports(): Promise<FoundExport[]> {
    const nameOf = (iqn: string): string | null => {
      // a host target is not a volume's export: the per-host layout keeps it from its own registry
      if (!iqn.startsWith(this.o.targetPrefix) || isHostTarget(this.o.targetPrefix, iqn)) return null;
      const name = iqn.slice(this.o.targetPrefix.length);
      try {
        assertVolumeName(name);
        return name;
      } catch {
        return null;
      }
    };
    const b = await this.backend();
    const found = new Map<string, FoundExport>();
    for (const r of Object.values((await this.readState()).exports)) {
      const volumeName = nameOf(r.iqn);
      if (volumeName) found.set(r.iqn, { iqn: r.iqn, volumeName, backingPath: r.backingPath, live: false, recorded: true });
    }
    for (const iqn of await b.listTargets()) {
      const volumeName = nameOf(iqn);
      if (!volumeName) continue;
      const seen = found.get(iqn);
      const backingPath = seen?.backingPath ?? (await b.findBackstore(iqn))?.udevPath ?? null;
      const admitted = (await b.readTarget(iqn))?.acls.map((a) => a.initiator) ?? [];
      found.set(iqn, { iqn, volumeName, backingPath: backingPath || null, live: true, recorded: seen?.recorded ?? false, admitted });
    }
    return [...found.values()];
  }

  /**
   * IQNs our record lists whose target is gone from configfs or disabled (configfs cleared,
   * target modules reloaded). An IQN that looks missing is looked at again holding its lock:
   * createExport records after building and removeExport unrecords after removing, so only then
   * does record against configfs mean a loss rather than an operation in flight.
   */
  async missingExports(): Promise<string[]> {
    const b = await this.backend();
    const present = new Set(await b.listTargets());
    const recorded = Object.keys((await this.readState()).exports);
    // A target still listed can have stopped serving: a clear that raced our restore, or an
    // operator's `targetcli ... disable`, leaves it with its TPG disabled, and the kernel then
    // refuses every login ("Unable to locate Target Portal Group", status 769). One read of
    // `enable` per present target keeps the probe cheap (lab soak, 2026-12-04: an attached host
    // was locked out after a restore because only absent targets were looked at). A read that
    // fails (the target going right now) makes it a candidate: the look under its lock decides.
    const disabled = await Promise.all(recorded.filter((iqn) => present.has(iqn)).map(async (iqn) => ((await b.fs.tpgEnabled(iqn).catch(() => false)) ? null : iqn)));
    const candidates = [...recorded.filter((iqn) => !present.has(iqn)), ...disabled.filter((x): x is string => x !== null)];
    const missing: string[] = [];
    for (const iqn of candidates) {
      await this.targetLocks.run(iqn, async () => {
        if (!(await this.record(iqn))) return;
        if (!(await b.readTarget(iqn))?.enabled) missing.push(iqn);
      });
    }
    return missing;
  }

  /**
   * Start-up: rebuild every export in our record whose configfs objects are missing or differ
   * (backstore, target, attribs, LUN, portals, ACLs + CHAP, enable). Targets not in the record —
   * anyone else's — are not looked at. Returns the IQNs mended and those that failed.
   */
  async reconcile(): Promise<{ mended: string[]; failed: string[] }> {
    const records = Object.values((await this.readState()).exports);
    // Several targets at once (each is configfs work the kernel does while we wait; after a
    // reboot every export is missing); the lists keep the record's order.
    // targetcli, the fallback, is one process per change and keeps a lock file: one at a time.
    const limit = (await this.backend()).kind === 'targetcli' ? 1 : RECONCILE_CONCURRENCY;
    const outcome = new Array<'mended' | 'failed' | 'ok'>(records.length);
    await forEachLimited(records, limit, (r, i) =>
      this.targetLocks.run(r.iqn, async () => {
        try {
          if (await this.matches(r)) {
            outcome[i] = 'ok';
            return;
          }
          await this.build({
            volumeId: r.volumeId,
            iqn: r.iqn,
            serial: volumeSerial({ id: r.volumeId, name: r.iqn.slice(this.o.targetPrefix.length) }),
            backingPath: r.backingPath,
            chap: r.chap,
            acl: { mode: 'exact', initiators: r.initiators },
          });
          outcome[i] = 'mended';
          log().warn({ volume_id: r.volumeId, iqn: r.iqn }, 'LIO reconcile: export mended from record');
        } catch (e) {
          outcome[i] = 'failed';
          log().error({ volume_id: r.volumeId, iqn: r.iqn, err: e }, 'LIO reconcile: could not mend export');
        }
      }),
    );
    return {
      mended: records.filter((_, i) => outcome[i] === 'mended').map((r) => r.iqn),
      failed: records.filter((_, i) => outcome[i] === 'failed').map((r) => r.iqn),
    };
  }

  // ---- internals --------------------------------------------------------------------------------

  private wantedPortals(): string[] {
    return lioPortalNames(this.o);
  }

  /** Does configfs hold exactly what the record says? */
  private async matches(r: LioExportRecord): Promise<boolean> {
    const b = await this.backend();
    const bs = await b.findBackstore(r.iqn);
    const t = await b.readTarget(r.iqn);
    if (!bs || !bs.enabled || bs.udevPath !== r.backingPath || !t || !t.tpg || !t.enabled) return false;
    if (t.lun0Backstore !== bs.path) return false;
    if (TPG_ATTRIBS.some(([k, val]) => t.attribs[k] !== val)) return false;
    const want = this.wantedPortals();
    if (want.some((p) => !t.portals.includes(p)) || t.portals.some((p) => !want.includes(p))) return false;
    if (t.acls.length !== r.initiators.length) return false;
    for (const i of r.initiators) {
      const a = t.acls.find((x) => sameIscsiName(x.initiator, i));
      if (!a || !a.mappedLun0 || a.userid !== r.chap.username || a.password !== r.chap.password) return false;
    }
    return true;
  }

  /**
   * Make configfs match `d`. Order keeps the target closed until it is complete: the TPG is
   * enabled last, after authentication=1/generate_node_acls=0 and the ACLs. What this call
   * created (target, backstore) is removed again when a later step fails.
   */
  private async build(d: Desired): Promise<boolean> {
    const b = await this.backend();
    let bs = await b.findBackstore(d.iqn);
    let madeBackstore = false;
    let madeTarget = false;
    try {
      if (bs && bs.udevPath !== d.backingPath) {
        throw new Error(`backstore ${d.iqn} is on ${bs.udevPath || 'nothing'}, not ${d.backingPath}`);
      }
      if (!bs) {
        bs = await this.globalLock.run('global', async () => {
          const again = await b.findBackstore(d.iqn);
          if (again) return again;
          madeBackstore = true;
          return b.createBackstore(d.iqn, d.backingPath, d.serial);
        });
      }
      madeTarget = await b.createTarget(d.iqn);
      await b.setTpgAttribs(d.iqn);
      let t = await b.readTarget(d.iqn);
      if (t?.lun0Backstore && t.lun0Backstore !== bs.path) {
        throw new Error(`LUN 0 of ${d.iqn} points at ${t.lun0Backstore}, not ${bs.path}`);
      }
      if (!t?.lun0Backstore) await b.createLun0(d.iqn, bs);
      const want = this.wantedPortals();
      for (const ip of portalIps(this.o)) {
        if (!t?.portals.includes(portalName(ip, this.o.targetPort)) || this.o.targetProtocol === 'iser') {
          await b.addPortal(d.iqn, ip, this.o.targetPort, this.o.targetProtocol === 'iser');
        }
      }
      for (const np of t?.portals.filter((p) => !want.includes(p)) ?? []) await b.removePortal(d.iqn, np);
      t = await b.readTarget(d.iqn);
      const acls = t?.acls ?? [];
      if (d.acl.mode === 'exact') {
        const wanted = d.acl.initiators;
        for (const a of acls.filter((x) => !wanted.some((w) => sameIscsiName(w, x.initiator)))) {
          await b.removeAcl(d.iqn, a.initiator);
          log().warn({ iqn: d.iqn, initiator: a.initiator }, 'revoked initiator that is not attached');
        }
        for (const w of wanted) {
          const a = acls.find((x) => sameIscsiName(x.initiator, w));
          if (!a || !a.mappedLun0 || a.userid !== d.chap.username || a.password !== d.chap.password) {
            await b.addAcl(d.iqn, a?.initiator ?? w, d.chap.username, d.chap.password);
          }
        }
      } else {
        for (const a of acls.filter((x) => !x.mappedLun0 || x.userid !== d.chap.username || x.password !== d.chap.password)) {
          await b.addAcl(d.iqn, a.initiator, d.chap.username, d.chap.password);
        }
      }
      if (!t?.enabled) await b.setTpgEnabled(d.iqn, true);
      const final = await b.readTarget(d.iqn);
      if (!final || !final.enabled || final.lun0Backstore !== bs.path || final.attribs.authentication !== '1') {
        throw new Error(`target ${d.iqn} is incomplete after setup`);
      }
      return madeTarget;
    } catch (e) {
      if (madeTarget) await b.removeTarget(d.iqn).catch((err: unknown) => log().error({ iqn: d.iqn, err }, 'rollback: could not remove target'));
      if (madeBackstore && bs) await b.removeBackstore(bs).catch((err: unknown) => log().error({ iqn: d.iqn, err }, 'rollback: could not remove backstore'));
      throw e;
    }
  }

  /** Target (ACLs, LUNs, portals, TPG) then its backstore; missing pieces are fine. */
  private async destroy(iqn: string): Promise<void> {
    const b = await this.backend();
    await b.removeTarget(iqn);
    if (await b.readTarget(iqn)) throw new Error(`target ${iqn} still present after removal`);
    const bs = await b.findBackstore(iqn);
    if (bs) await b.removeBackstore(bs);
  }
}
