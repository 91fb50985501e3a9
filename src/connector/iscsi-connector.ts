// The initiator side of an iSCSI attachment, as os-brick's ISCSIConnector does it: log in to the
// portals that connection_info names (CHAP from it), find the SCSI disk of the LUN on each
// session, and hand back one device: the disk itself for one path, the dm-multipath map over all of
// them when there are several portals. Used for host-side copies and by operators
// (`cinderblock connector ...`).
//
// Layers: iscsiadm-commands.ts and multipath-commands.ts build argv and read output; this file
// runs them (through a CommandRunner, so tests hand in a fake) and reads/writes sysfs (through
// ConnectorIo, same reason). The CHAP secret exists only in connection_info, in the argv of one
// `iscsiadm --op update` and in iscsiadm's node record; never in a log line or an error message.
import { constants } from 'node:fs';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { invalidInput } from '../errors.js';
import { log, logDropped, type Logger } from '../log.js';
import { processRunner, redactArgv, type CommandResult, type CommandRunner } from '../exec/run-command.js';
import { assertTargetIqn } from '../iscsi/index.js';
import {
  assertBlockName,
  assertChapValue,
  assertIfaceName,
  describeIscsiadmExit,
  ISCSI_ERR,
  loginArgv,
  logoutArgv,
  nodeAuthArgvs,
  nodeDeleteArgv,
  nodeNewArgv,
  normalisePortal,
  parseSessionsP3,
  scsiDeviceDeletePath,
  scsiDeviceRescanPath,
  sessionListArgv,
  sessionRescanArgv,
  nodeManualScanArgv,
  scsiHostScanPath,
  targetedScanText,
  type ChapAuth,
  type IscsiNode,
  type IscsiSession,
} from './iscsiadm-commands.js';
import { addPathArgv, flushMapArgv, isNotAMap, resizeMapArgv, resizeSucceeded } from './multipath-commands.js';

/** One (target, portal, LUN) of connection_info. */
export interface IscsiTargetPath {
  iqn: string;
  portal: string;
  lun: number;
}

export interface IscsiConnectionProperties {
  volumeId: string | null;
  /** first the primary (target_portal/iqn/lun), then the others of target_portals/iqns/luns */
  paths: IscsiTargetPath[];
  chap: ChapAuth | null;
}

/** sysfs and /dev access, injectable for tests. */
export interface ConnectorIo {
  readFile(path: string): Promise<string>;
  writeFile(path: string, data: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
}

export const nodeIo: ConnectorIo = {
  readFile: (p) => readFile(p, 'utf8'),
  writeFile: (p, d) => writeFile(p, d),
  readdir: (p) => readdir(p),
  exists: (p) =>
    access(p, constants.F_OK).then(
      () => true,
      () => false,
    ),
};

export interface IscsiConnectorOptions {
  /** runs iscsiadm/multipath/blockdev; default the one process runner (src/exec), with `rootHelper` in front */
  runner?: CommandRunner;
  /** e.g. ['sudo', '-n'] when not root */
  rootHelper?: readonly string[];
  /** iscsiadm interface (default `default`) */
  iface?: string;
  io?: ConnectorIo;
  sysfsRoot?: string;
  devRoot?: string;
  /** how long to wait for the SCSI disk of a LUN after login (default 30 s) */
  deviceWaitMs?: number;
  /** how long to wait for multipathd to build the map (default 30 s) */
  multipathWaitMs?: number;
  /** with several portals and no map: fail (true) or fall back to one path (false, default; os-brick's default) */
  enforceMultipath?: boolean;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
}

export interface ConnectOptions {
  /** use every portal and dm-multipath; default: when connection_info lists more than one portal */
  multipath?: boolean;
}

export interface ConnectedDevice {
  /** what to open: /dev/sdX, /dev/mapper/<map> or /dev/dm-N */
  path: string;
  multipath: boolean;
  /** dm map name (the WWID with user_friendly_names no) */
  mapName: string | null;
  /** dm-N of the map */
  dmDevice: string | null;
  /** the SCSI disks (one per logged-in path) */
  devices: string[];
  /** iSCSI session ids used */
  sessions: number[];
}

export interface DisconnectOptions {
  /** carry on past a map that will not flush or a logout that fails, and report at the end */
  force?: boolean;
}

/** A failure of the connector: says what happened and what to check; never quotes a secret. */
export class ConnectorError extends Error {
  constructor(
    message: string,
    readonly detail: { argv?: string[]; exitCode?: number; stderr?: string } = {},
  ) {
    super(message);
    this.name = 'ConnectorError';
  }
}

function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function lunOf(v: unknown, where: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 16383) throw invalidInput(`${where} must be a LUN number 0-16383, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Reads connection_info as initialize_connection returns it (`{driver_volume_type, data}`) or
 * flattened as attachment_update stores it (data keys at top level), and checks every value that
 * will reach iscsiadm's argv.
 */
export function parseConnectionInfo(ci: unknown): IscsiConnectionProperties {
  const top = obj(ci);
  if (!top) throw invalidInput('connection_info must be a JSON object');
  const type = top.driver_volume_type;
  if (type !== undefined && type !== 'iscsi') {
    throw invalidInput(`connection_info driver_volume_type is ${JSON.stringify(type)}; this connector handles iscsi only`);
  }
  const d = obj(top.data) ?? top;
  const paths: IscsiTargetPath[] = [];
  const primary = { iqn: d.target_iqn, portal: d.target_portal, lun: d.target_lun ?? 0 };
  if (primary.iqn === undefined || primary.portal === undefined) {
    throw invalidInput('connection_info has no target_iqn/target_portal (discovery is not supported: pass the connection_info the volume service returned)');
  }
  assertTargetIqn(primary.iqn);
  paths.push({ iqn: primary.iqn, portal: normalisePortal(primary.portal), lun: lunOf(primary.lun, 'target_lun') });
  const portals = d.target_portals;
  if (portals !== undefined) {
    const iqns = d.target_iqns;
    const luns = d.target_luns;
    if (!Array.isArray(portals) || !Array.isArray(iqns) || !Array.isArray(luns) || iqns.length !== portals.length || luns.length !== portals.length) {
      throw invalidInput('connection_info target_portals, target_iqns and target_luns must be lists of the same length');
    }
    portals.forEach((p, i) => {
      const iqn = iqns[i];
      assertTargetIqn(iqn);
      const path = { iqn, portal: normalisePortal(p), lun: lunOf(luns[i], `target_luns[${i}]`) };
      if (!paths.some((x) => x.iqn === path.iqn && x.portal === path.portal && x.lun === path.lun)) paths.push(path);
    });
  }
  let chap: ChapAuth | null = null;
  const method = d.auth_method;
  if (typeof method === 'string' && method.toUpperCase() === 'CHAP') {
    assertChapValue(d.auth_username, 'username');
    assertChapValue(d.auth_password, 'password');
    chap = { username: d.auth_username, password: d.auth_password };
  } else if (method !== undefined && method !== null && method !== 'None' && method !== '') {
    throw invalidInput(`connection_info auth_method ${JSON.stringify(method)} is not supported (CHAP or none)`);
  }
  const volumeId = typeof d.volume_id === 'string' ? d.volume_id : null;
  return { volumeId, paths, chap };
}

const samePortal = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

export class IscsiConnector {
  private readonly run: CommandRunner;
  private readonly io: ConnectorIo;
  private readonly iface: string;
  private readonly sys: string;
  private readonly dev: string;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: IscsiConnectorOptions = {}) {
    this.run = o.runner ?? processRunner({ timeoutMs: 180_000, prefix: o.rootHelper ?? [] });
    this.io = o.io ?? nodeIo;
    this.iface = o.iface ?? 'default';
    assertIfaceName(this.iface);
    this.sys = o.sysfsRoot ?? '/sys';
    this.dev = o.devRoot ?? '/dev';
    this.sleep = o.sleep ?? ((ms) => delay(ms));
  }

  /** Resolved on each use: the CLI installs its logger after the connector may have been made. */
  private get logger(): Logger {
    return this.o.logger ?? log();
  }

  // ---- commands ------------------------------------------------------------------------------

  private async exec(argv: string[], ok: readonly number[] = [0]): Promise<CommandResult> {
    const r = await this.run(argv);
    const shown = redactArgv(argv);
    this.logger.debug({ argv: shown, exit_code: r.exitCode }, 'connector command');
    if (!ok.includes(r.exitCode)) {
      const what = argv[0] === 'iscsiadm' ? describeIscsiadmExit(r.exitCode) : `exit code ${r.exitCode}`;
      const err = r.stderr.trim().split('\n').slice(-2).join('; ');
      throw new ConnectorError(`${shown.join(' ')} failed: ${what}${err ? ` (${err})` : ''}`, { argv: shown, exitCode: r.exitCode, stderr: r.stderr });
    }
    return r;
  }

  /** Every iSCSI session on this host ([] when there is none: iscsiadm exits 21 then). */
  async sessions(): Promise<IscsiSession[]> {
    const r = await this.exec(sessionListArgv(), [0, ISCSI_ERR.NO_OBJS_FOUND]);
    return r.exitCode === 0 ? parseSessionsP3(r.stdout) : [];
  }

  private node(p: IscsiTargetPath): IscsiNode {
    return { iqn: p.iqn, portal: p.portal, iface: this.iface };
  }

  private sessionsOf(all: IscsiSession[], p: IscsiTargetPath): IscsiSession[] {
    return all.filter((s) => s.iqn === p.iqn && samePortal(s.portal, p.portal) && (s.iface === null || s.iface === this.iface));
  }

  /** Node record + CHAP + login. Leaves no record behind when the login fails. */
  private async login(p: IscsiTargetPath, chap: ChapAuth | null): Promise<void> {
    const n = this.node(p);
    await this.exec(nodeNewArgv(n));
    try {
      for (const argv of nodeAuthArgvs(n, chap)) await this.exec(argv);
      // an iscsiadm without manual scan (older open-iscsi) still logs in; the LUN then comes from its automatic scan
      await this.exec(nodeManualScanArgv(n)).catch((err: unknown) => this.logger.warn({ err, iqn: p.iqn }, 'iscsiadm cannot set node.session.scan = manual; relying on the automatic scan'));
      await this.exec(loginArgv(n), [0, ISCSI_ERR.SESS_EXISTS]);
    } catch (e) {
      // a session of ours may still be using the record (login retried on an existing session)
      const live = this.sessionsOf(await this.sessions().catch((err: unknown) => {
        logDropped(this.logger, 'listing sessions after a failed login', 'the node record is deleted as if none used it; the next login writes it again')(err);
        return [];
      }), p);
      if (live.length === 0) {
        await this.exec(nodeDeleteArgv(n), [0, ISCSI_ERR.NO_OBJS_FOUND]).catch(logDropped(this.logger, `deleting the node record of ${p.iqn} at ${p.portal} after a failed login`, 'the login error is the one reported; a stale record is rewritten by the next login'));
      }
      throw e;
    }
  }

  // ---- sysfs ---------------------------------------------------------------------------------

  private async holders(disk: string): Promise<string[]> {
    assertBlockName(disk);
    try {
      return (await this.io.readdir(`${this.sys}/block/${disk}/holders`)).filter((h) => /^dm-\d+$/.test(h));
    } catch {
      return [];
    }
  }

  /** dm-N and its name when it is a multipath map (uuid `mpath-...`), else null. */
  private async mpathMap(dm: string): Promise<{ dm: string; name: string } | null> {
    try {
      const uuid = (await this.io.readFile(`${this.sys}/block/${dm}/dm/uuid`)).trim();
      if (!uuid.startsWith('mpath-')) return null;
      return { dm, name: (await this.io.readFile(`${this.sys}/block/${dm}/dm/name`)).trim() };
    } catch {
      return null;
    }
  }

  private async mapOf(disk: string): Promise<{ dm: string; name: string } | null> {
    for (const h of await this.holders(disk)) {
      const m = await this.mpathMap(h);
      if (m) return m;
    }
    return null;
  }

  private async mapSlaves(dm: string): Promise<string[]> {
    try {
      return await this.io.readdir(`${this.sys}/block/${dm}/slaves`);
    } catch {
      return [];
    }
  }

  /** Size in bytes from /sys/block/<dev>/size (512-byte sectors whatever the block size). */
  async sizeOf(dev: string): Promise<number> {
    assertBlockName(dev);
    return Number((await this.io.readFile(`${this.sys}/block/${dev}/size`)).trim()) * 512;
  }

  private async waitFor<T>(ms: number, fn: () => Promise<T | null>): Promise<T | null> {
    const poll = this.o.pollMs ?? 250;
    const until = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== null) return v;
      if (Date.now() >= until) return null;
      await this.sleep(poll);
    }
  }

  /** The disk of the LUN on the session to `p`, once the kernel has made it. */
  private async diskFor(p: IscsiTargetPath): Promise<{ disk: string; sid: number } | null> {
    let rescanned = false;
    let targeted = false;
    const started = Date.now();
    return this.waitFor(this.o.deviceWaitMs ?? 30_000, async () => {
      const s = this.sessionsOf(await this.sessions(), p)[0];
      if (!s) return null;
      const d = s.disks.find((x) => x.lun === p.lun && x.name);
      if (d?.name && (await this.io.exists(`${this.dev}/${d.name}`))) return { disk: d.name, sid: s.sid };
      // scan exactly this LUN (the login scanned none; on a session the host already had, the LUN is new)
      if (!targeted && s.hostNumber !== null && !s.disks.some((x) => x.lun === p.lun)) {
        targeted = true;
        await this.io.writeFile(scsiHostScanPath(s.hostNumber, this.sys), targetedScanText(p.lun)).catch((err: unknown) => this.logger.warn({ err, sid: s.sid, lun: p.lun }, 'targeted LUN scan failed; falling back to a session rescan'));
      }
      // not there yet: the whole session, once, after a grace period
      if (!rescanned && Date.now() - started > 3000) {
        rescanned = true;
        await this.exec(sessionRescanArgv(s.sid)).catch(logDropped(this.logger, `rescanning session ${s.sid}`, 'the wait for the disk goes on and reports the missing LUN if it never appears'));
      }
      return null;
    });
  }

  // ---- the three operations --------------------------------------------------------------------

  async connectVolume(connectionInfo: unknown, opts: ConnectOptions = {}): Promise<ConnectedDevice> {
    const props = parseConnectionInfo(connectionInfo);
    const multipath = opts.multipath ?? props.paths.length > 1;
    const ids = { volume_id: props.volumeId, portals: props.paths.map((p) => p.portal), multipath };
    this.logger.info(ids, 'connecting iSCSI volume');
    const found: { path: IscsiTargetPath; disk: string; sid: number }[] = [];
    const errors: string[] = [];
    for (const p of props.paths) {
      try {
        await this.login(p, props.chap);
        const d = await this.diskFor(p);
        if (!d) {
          // no use for a session without the disk: leave nothing behind for this portal
          const why = 'the missing disk is the error reported; `iscsiadm -m session` shows what is left to log out';
          await this.exec(logoutArgv(this.node(p)), [0, ISCSI_ERR.NO_OBJS_FOUND]).catch(logDropped(this.logger, `logging out of ${p.iqn} at ${p.portal} after its LUN never appeared`, why));
          await this.exec(nodeDeleteArgv(this.node(p)), [0, ISCSI_ERR.NO_OBJS_FOUND]).catch(logDropped(this.logger, `deleting the node record of ${p.iqn} at ${p.portal}`, why));
          throw new ConnectorError(`logged in to ${p.iqn} at ${p.portal} but LUN ${p.lun} never appeared as a SCSI disk (is the LUN mapped to this initiator?)`);
        }
        found.push({ path: p, ...d });
        if (!multipath) break;
      } catch (e) {
        errors.push(`${p.portal}: ${(e as Error).message}`);
        this.logger.warn({ ...ids, portal: p.portal, err: e }, 'iSCSI path failed');
      }
    }
    if (found.length === 0) {
      throw new ConnectorError(
        `could not connect volume ${props.volumeId ?? props.paths[0]?.iqn}: ${errors.join(' | ')}. Check that this host's initiator name (/etc/iscsi/initiatorname.iscsi) is the one the volume was attached to, and that iscsid is running`,
      );
    }
    const devices = found.map((f) => f.disk);
    const sessions = found.map((f) => f.sid);
    if (!multipath) {
      const path = `${this.dev}/${devices[0]}`;
      this.logger.info({ ...ids, path }, 'iSCSI volume connected (single path)');
      return { path, multipath: false, mapName: null, dmDevice: null, devices, sessions };
    }
    const map = await this.waitForMap(devices);
    if (!map) {
      const msg = `no dm-multipath map appeared over ${devices.join(', ')} within ${(this.o.multipathWaitMs ?? 30_000) / 1000} s: is multipathd running, and are these devices not blacklisted in /etc/multipath.conf?`;
      if (this.o.enforceMultipath) throw new ConnectorError(msg);
      this.logger.warn({ ...ids, devices }, `${msg}; using a single path`);
      return { path: `${this.dev}/${devices[0]}`, multipath: false, mapName: null, dmDevice: null, devices, sessions };
    }
    const byName = `${this.dev}/mapper/${map.name}`;
    const path = (await this.io.exists(byName)) ? byName : `${this.dev}/${map.dm}`;
    this.logger.info({ ...ids, path, devices }, 'iSCSI volume connected (multipath)');
    return { path, multipath: true, mapName: map.name, dmDevice: map.dm, devices, sessions };
  }

  /**
   * The map over `devices`; waits until it holds all of them (multipathd adds paths one uevent
   * at a time), nudging multipathd once halfway through.
   */
  private async waitForMap(devices: string[]): Promise<{ dm: string; name: string } | null> {
    const half = (this.o.multipathWaitMs ?? 30_000) / 2;
    const anyMap = async () => {
      for (const d of devices) {
        const m = await this.mapOf(d);
        if (m) return m;
      }
      return null;
    };
    let map = await this.waitFor(half, anyMap);
    if (!map) {
      for (const d of devices) await this.exec(addPathArgv(d), [0, 1]).catch(logDropped(this.logger, `asking multipathd to add ${d}`, 'the map is waited for again, and its absence is reported'));
      map = await this.waitFor(half, anyMap);
    }
    if (!map) return null;
    const m = map;
    const full = await this.waitFor(half, async () => {
      const slaves = await this.mapSlaves(m.dm);
      return devices.every((d) => slaves.includes(d)) ? m : null;
    });
    if (!full) this.logger.warn({ map: m.name, devices, slaves: await this.mapSlaves(m.dm) }, 'multipath map does not hold every path yet');
    return m;
  }

  /**
   * Flush the map, remove the SCSI disks, log out and delete the node records of every portal in
   * connection_info; afterwards no session to these targets is left (checked). A session that
   * still carries another LUN of the same target is left logged in.
   */
  async disconnectVolume(connectionInfo: unknown, opts: DisconnectOptions = {}): Promise<void> {
    const props = parseConnectionInfo(connectionInfo);
    const ids = { volume_id: props.volumeId, portals: props.paths.map((p) => p.portal) };
    const problems: string[] = [];
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        if (!opts.force) throw e;
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    const all = await this.sessions();
    const mine = props.paths.flatMap((p) => this.sessionsOf(all, p).map((s) => ({ p, s })));
    // A disk on a session that is not logged in (the target dropped it) or an offline disk is not
    // flushed or deleted here: the SCSI layer would wait for the session to come back (up to the
    // replacement timeout) before giving up. Logging out tears such devices down at once.
    const disks = mine.flatMap(({ p, s }) =>
      s.disks
        .filter((d) => d.lun === p.lun && d.name)
        .map((d) => ({ name: d.name as string, hctl: d.hctl, live: s.sessionState === 'LOGGED_IN' && d.state === 'running' })),
    );
    // 1. the multipath map: nothing may hold a path once the disks go
    const maps = new Map<string, string>();
    for (const d of disks) {
      const m = await this.mapOf(d.name);
      if (m) maps.set(m.name, m.dm);
    }
    for (const name of maps.keys()) await step(`flush ${name}`, () => this.flushMap(name));
    // 2. the disks: flush their buffers, then let the SCSI layer forget them (os-brick does both)
    for (const d of disks.filter((x) => x.live)) {
      await this.exec(['blockdev', '--flushbufs', `${this.dev}/${d.name}`], [0, 1]).catch(logDropped(this.logger, `flushing ${d.name}'s buffers`, 'the SCSI delete below flushes what the device still holds'));
      await step(`remove ${d.name}`, () => this.io.writeFile(scsiDeviceDeletePath(d.hctl, this.sys), '1'));
    }
    // 3. the sessions, unless another LUN still lives on them; 4. the node records
    for (const { p, s } of mine) {
      const others = s.disks.filter((d) => d.lun !== p.lun && d.name);
      if (others.length > 0) {
        this.logger.info({ ...ids, sid: s.sid, luns: others.map((d) => d.lun) }, 'session carries other LUNs; staying logged in');
        continue;
      }
      await step(`logout ${p.portal}`, () => this.exec(logoutArgv({ iqn: p.iqn, portal: p.portal, iface: s.iface ?? this.iface }), [0, ISCSI_ERR.NO_OBJS_FOUND]));
    }
    for (const p of props.paths) {
      const left = this.sessionsOf(await this.sessions(), p);
      if (left.length > 0) continue;
      await step(`delete node ${p.portal}`, () => this.exec(nodeDeleteArgv(this.node(p)), [0, ISCSI_ERR.NO_OBJS_FOUND]));
    }
    const after = await this.sessions();
    const stuck = props.paths.flatMap((p) => this.sessionsOf(after, p).filter((s) => !s.disks.some((d) => d.lun !== p.lun && d.name)));
    if (stuck.length > 0) problems.push(`sessions still logged in: ${stuck.map((s) => `${s.sid} (${s.portal})`).join(', ')}`);
    if (problems.length > 0) {
      throw new ConnectorError(`disconnect of volume ${props.volumeId ?? props.paths[0]?.iqn} incomplete: ${problems.join(' | ')}`);
    }
    this.logger.info({ ...ids, maps: [...maps.keys()], disks: disks.map((d) => d.name) }, 'iSCSI volume disconnected');
  }

  /** `multipath -f`, retried while the map is busy (udev or a closing opener may hold it briefly). */
  private async flushMap(name: string): Promise<void> {
    let last: CommandResult | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await this.run(flushMapArgv(name));
      if (r.exitCode === 0 || isNotAMap(r.stderr)) return;
      last = r;
      await this.sleep(1000);
    }
    throw new ConnectorError(`multipath -f ${name} failed: ${last?.stderr.trim() || `exit ${last?.exitCode}`} (is the device still open? check with fuser/lsof, close it, then disconnect again)`);
  }

  /**
   * After the volume grew on the target: rescan every session and every path's SCSI device, then
   * grow the multipath map. Returns the new size in bytes as the device to open reports it.
   */
  async extendVolume(connectionInfo: unknown): Promise<number> {
    const props = parseConnectionInfo(connectionInfo);
    const all = await this.sessions();
    const mine = props.paths.flatMap((p) => this.sessionsOf(all, p).map((s) => ({ p, s })));
    if (mine.length === 0) throw new ConnectorError(`volume ${props.volumeId ?? props.paths[0]?.iqn} is not connected on this host (no iSCSI session to its portals)`);
    const disks: { name: string; hctl: string; state: string | null }[] = [];
    for (const { p, s } of mine) {
      await this.exec(sessionRescanArgv(s.sid));
      for (const d of s.disks.filter((x) => x.lun === p.lun && x.name)) disks.push({ name: d.name as string, hctl: d.hctl, state: d.state });
    }
    const live = disks.filter((d) => d.state === null || d.state === 'running');
    if (live.length === 0) throw new ConnectorError(`no running path of volume ${props.volumeId ?? props.paths[0]?.iqn} to rescan (check iscsiadm -m session -P 3)`);
    for (const d of live) await this.io.writeFile(scsiDeviceRescanPath(d.hctl, this.sys), '1');
    // every live path must agree before the map is grown, or the map would take the smaller size
    const pathSize = await this.waitFor(10_000, async () => {
      const sizes = await Promise.all(live.map((d) => this.sizeOf(d.name)));
      return sizes.every((x) => x === sizes[0]) ? (sizes[0] ?? null) : null;
    });
    if (pathSize === null) throw new ConnectorError(`paths of volume ${props.volumeId ?? ''} report different sizes after a rescan: ${live.map((d) => d.name).join(', ')}`);
    const map = await this.mapOf(live[0]!.name);
    if (!map) {
      this.logger.info({ volume_id: props.volumeId, size: pathSize }, 'iSCSI volume extended (single path)');
      return pathSize;
    }
    const r = await this.exec(resizeMapArgv(map.name), [0, 1]);
    if (!resizeSucceeded(r.exitCode, r.stdout)) {
      throw new ConnectorError(`multipathd resize map ${map.name} answered ${JSON.stringify(r.stdout.trim() || r.stderr.trim())}: check that every path is up (multipath -ll ${map.name}), then extend again`);
    }
    const size = await this.waitFor(10_000, async () => {
      const s = await this.sizeOf(map.dm);
      return s === pathSize ? s : null;
    });
    if (size === null) throw new ConnectorError(`multipath map ${map.name} did not grow to ${pathSize} bytes`);
    this.logger.info({ volume_id: props.volumeId, size, map: map.name }, 'iSCSI volume extended (multipath)');
    return size;
  }
}
