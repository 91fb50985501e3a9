// Looks at a backend's storage and target daemon the way the agent would, for the debug
// commands, without changing anything: tgtadm's show operations (tgtadm.ts builds the argv,
// tgtadm-parse.ts reads the answer), LIO's configfs read through Configfs, LVM's report through
// LvmVolumeGroup, a file pool's file through stat. Works whether the agent runs or not.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendConfig, CinderConfig } from '../config/index.js';
import { processRunner } from '../exec/run-command.js';
import { parseProviderAuth, parseProviderLocation } from '../iscsi/index.js';
import { Tgtadm } from '../../drivers/targets/tgt/tgtadm.js';
import { findTarget } from '../../drivers/targets/tgt/tgtadm-parse.js';
import { Configfs } from '../../drivers/targets/lio/configfs.js';
import { ANY_HOST, NvmetConfigfs } from '../../drivers/targets/nvmet/nvmet-configfs.js';
import { parseNvmetProviderLocation } from '../../drivers/targets/nvmet/nvmet-naming.js';
import { LvmVolumeGroup } from '../../drivers/lvm/lvm-vg.js';
import { lvmCommandRunner } from '../../drivers/lvm/lvm-runner.js';
import { createDriver, driverKind, type DriverKind } from '../agent/driver-factory.js';
import { configuredTgtControlPort, createExports, createTargetSide } from '../agent/target-factory.js';
import type { BackendExport } from '../../drivers/exports.js';
import { log } from '../log.js';

/** A debug command waits this long for one tgtadm or lvm call. */
const COMMAND_TIMEOUT_MS = 15_000;


export function tgtadmFor(config: CinderConfig, backend: BackendConfig): Tgtadm {
  const port = configuredTgtControlPort(config);
  return new Tgtadm(processRunner({ timeoutMs: COMMAND_TIMEOUT_MS }), {
    ...(port ? { controlPort: port } : {}),
    lld: backend.target_protocol === 'iser' ? 'iser' : 'iscsi',
  });
}

export interface TargetDaemonState {
  helper: string;
  /** `none`: target_helper = fake, nothing is exported */
  state: 'up' | 'down' | 'none' | 'unknown';
  detail: string;
}

export async function targetDaemonState(config: CinderConfig, backend: BackendConfig): Promise<TargetDaemonState> {
  const helper = backend.target_helper;
  try {
    if (helper === 'tgtadm') {
      const port = configuredTgtControlPort(config);
      const up = await tgtadmFor(config, backend).isRunning();
      return { helper, state: up ? 'up' : 'down', detail: up ? `tgtd answers${port ? ` on control port ${port}` : ''}` : 'no tgtd answers; the agent starts one before its first export' };
    }
    if (helper === 'lioadm') {
      const up = await new Configfs().available();
      return { helper, state: up ? 'up' : 'down', detail: up ? 'configfs target tree present' : '/sys/kernel/config/target is missing: load target_core_mod and iscsi_target_mod' };
    }
    if (helper === 'nvmet') {
      const up = await new NvmetConfigfs().available();
      return { helper, state: up ? 'up' : 'down', detail: up ? 'nvmet configfs tree present' : '/sys/kernel/config/nvmet is missing: the agent loads nvmet and nvmet-tcp at its first export (or modprobe them)' };
    }
    if (helper === 'fake') return { helper, state: 'none', detail: 'target_helper = fake: volumes are not exported' };
    return { helper, state: 'unknown', detail: `target_helper ${helper} is not supported by cinderblock` };
  } catch (err) {
    return { helper, state: 'unknown', detail: err instanceof Error ? err.message : String(err) };
  }
}

export interface ExportSession {
  initiator: string;
  /** the initiator's addresses (its portals on the initiator side) */
  addresses: string[];
}

export interface ExportView {
  helper: string;
  /** the target's name: an IQN, or an NVMe subsystem NQN */
  iqn: string;
  /** per-host layout: the compute host the target is for */
  host?: string;
  /** portals provider_location names */
  portals: string[];
  /** the target exists on the daemon */
  present: boolean;
  luns: Array<{ lun: number; backingPath: string | null; sizeMb: number | null }>;
  /** initiators (and for tgt, addresses) allowed to log in */
  acls: string[];
  /** CHAP user names bound to the target; the secrets are never read out */
  chapUsers: string[];
  /** null when the helper gives no session list (LIO here) */
  sessions: ExportSession[] | null;
  error?: string;
}

/** A per-volume nvmet subsystem as configfs has it: namespaces, admitted host NQNs (no CHAP; no sessions in configfs). */
async function readNvmetExport(providerLocation: string): Promise<ExportView> {
  const loc = parseNvmetProviderLocation(providerLocation);
  if (!loc) return { helper: 'nvmet', iqn: providerLocation, portals: [], present: false, luns: [], acls: [], chapUsers: [], sessions: null, error: 'provider_location is not an nvmet export (<ip>:<port> tcp <nqn> <nsid>)' };
  const view: ExportView = { helper: 'nvmet', iqn: loc.nqn, portals: [loc.portal], present: false, luns: [], acls: [], chapUsers: [], sessions: null };
  const s = await new NvmetConfigfs().readSubsystem(loc.nqn).catch((err: unknown) => {
    view.error = err instanceof Error ? err.message : String(err);
    return null;
  });
  if (!s) return view;
  view.present = true;
  view.luns = s.namespaces.filter((n) => n.enabled).map((n) => ({ lun: n.nsid, backingPath: n.devicePath || null, sizeMb: null }));
  view.acls = s.allowAnyHost ? [ANY_HOST, ...s.hosts] : s.hosts;
  return view;
}

/**
 * A per-host volume's exports: one view per host target its LUN is mapped into (several when
 * multi-attached), from the registry and the daemon, as the audit reads them. Never starts a daemon.
 */
export async function readHostTargetExports(config: CinderConfig, backend: BackendConfig, volumeId: string): Promise<ExportView[]> {
  const port = configuredTgtControlPort(config);
  const side = createTargetSide(backend, { logger: log(), probeIntervalMs: 0, ...(port ? { tgtControlPort: port } : {}) });
  if (!side) return [];
  try {
    const inv = await createExports(createDriver(config, backend), side, { backend, statePath: config.default.state_path, lockPath: null }).inventory();
    const ht = inv.hostTargets;
    if (!ht) return [];
    return ht.records.flatMap((r) => {
      const m = r.luns.find((x) => x.volumeId === volumeId);
      if (!m) return [];
      const live = ht.live.find((l) => l.iqn === r.iqn);
      const lun = live?.luns.find((l) => l.lun === m.lun);
      return [
        {
          helper: backend.target_helper,
          iqn: r.iqn,
          host: r.host,
          portals: [],
          present: Boolean(live && lun),
          luns: lun ? [{ lun: m.lun, backingPath: lun.backingPath, sizeMb: null }] : [],
          acls: live ? (live.mappedLuns ? live.initiators.filter((i) => live.mappedLuns?.[i]?.includes(m.lun)) : live.initiators) : [],
          chapUsers: live?.chapUsers ?? [],
          sessions: live ? live.sessions.map((x) => ({ initiator: x.initiator, addresses: x.address ? [x.address] : [] })) : null,
        },
      ];
    });
  } catch (err) {
    return [{ helper: backend.target_helper, iqn: '(host targets)', portals: [], present: false, luns: [], acls: [], chapUsers: [], sessions: null, error: err instanceof Error ? err.message : String(err) }];
  } finally {
    side.supervisor.stop();
  }
}

/** The export of a volume with this provider_location, as the daemon has it now. */
export async function readExport(config: CinderConfig, backend: BackendConfig, providerLocation: string): Promise<ExportView> {
  if (backend.target_helper === 'nvmet') return readNvmetExport(providerLocation);
  const loc = parseProviderLocation(providerLocation);
  const view: ExportView = { helper: backend.target_helper, iqn: loc.iqn, portals: loc.portals, present: false, luns: [], acls: [], chapUsers: [], sessions: null };
  try {
    if (backend.target_helper === 'tgtadm') {
      const t = findTarget(await tgtadmFor(config, backend).showTargets(), loc.iqn);
      if (!t) return view;
      view.present = true;
      // LUN 0 is tgt's controller, never a volume
      view.luns = t.luns.filter((l) => l.lun !== 0).map((l) => ({ lun: l.lun, backingPath: l.backingStorePath, sizeMb: l.sizeMb }));
      view.acls = t.acls;
      view.chapUsers = t.accounts;
      view.sessions = t.nexuses.map((n) => ({ initiator: n.initiator, addresses: n.connections.map((c) => c.address).filter((a): a is string => a !== null) }));
    } else if (backend.target_helper === 'lioadm') {
      const t = await new Configfs().readTarget(loc.iqn);
      if (!t) return view;
      view.present = true;
      view.luns = t.lun0Backstore ? [{ lun: 0, backingPath: t.lun0Backstore, sizeMb: null }] : [];
      view.acls = t.acls.map((a) => a.initiator);
      view.chapUsers = [...new Set(t.acls.map((a) => a.userid).filter(Boolean))];
    }
  } catch (err) {
    view.error = err instanceof Error ? err.message : String(err);
  }
  return view;
}

/** The CHAP user of provider_auth; the password stays where it is. */
export function chapUserOf(providerAuth: string | null): string | null {
  try {
    return parseProviderAuth(providerAuth)?.username ?? null;
  } catch {
    return null;
  }
}

export interface BackendObject {
  kind: 'lv' | 'file';
  path: string;
  exists: boolean;
  sizeBytes: number | null;
  /** thin LV: bytes of the pool it uses (data_percent); file: bytes allocated on disk */
  usedBytes: number | null;
  thinPool: string | null;
  /** LV active (a file is always "active") */
  active: boolean | null;
  /** LV open by someone (a target, a dd) */
  open: boolean | null;
  error?: string;
}

export function backendKind(config: CinderConfig, backend: BackendConfig): DriverKind {
  return driverKind(config, backend);
}

export function lvmVolumeGroup(backend: BackendConfig): LvmVolumeGroup {
  return new LvmVolumeGroup({
    vgName: backend.volume_group,
    runner: lvmCommandRunner({ lvmConfFile: backend.lvm_conf_file, suppressFdWarnings: backend.lvm_suppress_fd_warnings, timeoutMs: COMMAND_TIMEOUT_MS }),
    cacheTtlMs: 0,
  });
}

/** The LV or file that holds `volumeName` on this backend. */
export async function readBackendObject(config: CinderConfig, backend: BackendConfig, volumeName: string): Promise<BackendObject> {
  if (backendKind(config, backend) === 'lvm') {
    const path = `/dev/${backend.volume_group}/${volumeName}`;
    const out: BackendObject = { kind: 'lv', path, exists: false, sizeBytes: null, usedBytes: null, thinPool: null, active: null, open: null };
    try {
      const lv = await lvmVolumeGroup(backend).getLv(volumeName, { fresh: true });
      if (!lv) return out;
      out.exists = true;
      out.sizeBytes = lv.sizeBytes;
      out.thinPool = lv.poolLv || null;
      out.usedBytes = lv.poolLv && lv.dataPercent !== null ? Math.round((lv.sizeBytes * lv.dataPercent) / 100) : lv.sizeBytes;
      out.active = lv.active;
      out.open = lv.open;
    } catch (err) {
      out.error = err instanceof Error ? err.message : String(err);
    }
    return out;
  }
  const out: BackendObject = { kind: 'file', path: '', exists: false, sizeBytes: null, usedBytes: null, thinPool: null, active: true, open: null };
  try {
    // the driver says where it keeps a volume (and refuses a name it could not have made)
    const path = createDriver(config, backend).localPath({ name: volumeName });
    out.path = path;
    const st = await stat(path);
    out.exists = true;
    out.sizeBytes = st.size;
    out.usedBytes = st.blocks * 512;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') out.error = (err as Error).message;
    out.active = null;
  }
  return out;
}

/**
 * The backend's exports as the agent's start-up sweep finds them (live on the daemon or in the
 * helper's record, told by their backing path), for `status` when the agent is down. The same
 * code the agent runs; it never starts a daemon.
 */
export async function findBackendExports(config: CinderConfig, backend: BackendConfig): Promise<BackendExport[]> {
  const port = configuredTgtControlPort(config);
  const side = createTargetSide(backend, { logger: log(), probeIntervalMs: 0, ...(port ? { tgtControlPort: port } : {}) });
  if (!side) return [];
  try {
    return await createExports(createDriver(config, backend), side).findExports();
  } finally {
    side.supervisor.stop();
  }
}

/**
 * Inodes with a lock held on them, from /proc/locks. The agent's external locks are OFD locks,
 * which the kernel lists with pid -1 (they belong to an open file, not a process), and cinder's
 * are POSIX ones; either means "held". Waiters (`->`) hold nothing.
 */
export function heldLockInodes(procLocks: string): Set<number> {
  const out = new Set<number>();
  for (const line of procLocks.split('\n')) {
    if (line.includes('->')) continue;
    const m = /\s[0-9a-f]+:[0-9a-f]+:(\d+)\s/i.exec(line);
    if (m) out.add(Number(m[1]));
  }
  return out;
}

/** The lock files under lock_path that someone (the agent, or a cinder process) holds now. */
export async function heldLockFiles(lockPath: string | null, procLocksPath = '/proc/locks'): Promise<string[]> {
  if (!lockPath) return [];
  const held = heldLockInodes(await readFile(procLocksPath, 'utf8').catch(() => ''));
  if (held.size === 0) return [];
  const out: string[] = [];
  for (const name of await readdir(lockPath).catch(() => [] as string[])) {
    const st = await stat(join(lockPath, name)).catch(() => null);
    if (st?.isFile() && held.has(st.ino)) out.push(name);
  }
  return out.sort();
}
