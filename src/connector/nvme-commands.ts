// The NVMe-oF half of the initiator's command layer: argv for nvme-cli and the reading of what it
// prints, plus where sysfs says which namespace a block device is. Nothing here runs a command or
// reads a file; a connector does, through the one process runner. Every value that reaches an argv
// is checked first (NQNs by the one NQN rule, addresses as IP literals, ports as numbers), so a
// hostile connection_info cannot become an option.
//
// Shapes: `nvme connect` as os-brick issues it (-t tcp -a <addr> -s <port> -n <subnqn>, with the
// host NQN passed explicitly so the target sees exactly the NQN it admitted); the JSON of nvme-cli
// 2.x (`list-subsys`: an array of hosts each with Subsystems[].Paths[]; `list`: Devices[]); a
// single object without the host level (nvme-cli 1.x) is read too.
import { isIP } from 'node:net';
import { invalidInput } from '../errors.js';
import { assertPort } from '../iscsi/index.js';
import { assertNqn } from '../../drivers/targets/validate.js';
import { isUuid } from '../validation/uuid.js';

export const NVME = 'nvme';

export interface NvmeConnectTarget {
  transport: 'tcp';
  /** target address: an IP literal */
  traddr: string;
  trsvcid: number;
  subnqn: string;
  hostnqn: string;
  /**
   * the host identifier (a UUID). nvme-cli otherwise reads /etc/nvme/hostid, and the kernel
   * refuses one hostid under two host NQNs, so a host that presents several NQNs needs its own per NQN
   */
  hostid?: string;
  /**
   * seconds the kernel keeps reconnecting a lost controller before giving up; os-brick passes
   * -1 (forever), which keeps a host's device through a target restart
   */
  ctrlLossTmo?: number;
  /** seconds between reconnect attempts of a lost controller (kernel default 10) */
  reconnectDelay?: number;
  /**
   * -D: let the kernel make a second controller with the same parameters. Measured in the lab:
   * nvme-cli 2.3 still answers "already connected" by itself when it has a controller to that
   * subsystem and address, whatever the host NQN (the kernel would take a second host NQN).
   */
  duplicateConnect?: boolean;
}

function assertAddress(value: unknown): asserts value is string {
  if (typeof value !== 'string' || isIP(value) === 0) throw invalidInput(`NVMe-oF target address must be an IP address, got ${JSON.stringify(String(value).slice(0, 80))}`);
}

/** `nvme connect` over TCP to one portal, as the given host NQN. */
export function connectArgv(t: NvmeConnectTarget): string[] {
  if (t.transport !== 'tcp') throw invalidInput(`NVMe-oF transport must be tcp, got ${JSON.stringify(t.transport)}`);
  assertAddress(t.traddr);
  assertPort(t.trsvcid);
  assertNqn(t.subnqn, 'target NQN');
  assertNqn(t.hostnqn, 'host NQN');
  const argv = [NVME, 'connect', '-t', 'tcp', '-a', t.traddr, '-s', String(t.trsvcid), '-n', t.subnqn, '--hostnqn', t.hostnqn];
  if (t.hostid !== undefined) {
    if (!isUuid(t.hostid) || !t.hostid.includes('-')) throw invalidInput(`host id must be a dashed UUID, got ${JSON.stringify(String(t.hostid).slice(0, 80))}`);
    argv.push('--hostid', t.hostid);
  }
  if (t.ctrlLossTmo !== undefined) {
    if (!Number.isSafeInteger(t.ctrlLossTmo) || t.ctrlLossTmo < -1) throw invalidInput(`ctrl_loss_tmo must be an integer >= -1, got ${t.ctrlLossTmo}`);
    argv.push('-l', String(t.ctrlLossTmo));
  }
  if (t.reconnectDelay !== undefined) {
    if (!Number.isSafeInteger(t.reconnectDelay) || t.reconnectDelay < 1) throw invalidInput(`reconnect_delay must be an integer >= 1, got ${t.reconnectDelay}`);
    argv.push('-c', String(t.reconnectDelay));
  }
  if (t.duplicateConnect) argv.push('-D');
  return argv;
}

/** `nvme disconnect -n <subnqn>`: every controller of that subsystem on this host. */
export function disconnectArgv(subnqn: string): string[] {
  assertNqn(subnqn, 'target NQN');
  return [NVME, 'disconnect', '-n', subnqn];
}

export function listSubsysArgv(): string[] {
  return [NVME, 'list-subsys', '-o', 'json'];
}

export function listArgv(): string[] {
  return [NVME, 'list', '-o', 'json'];
}

const CTRL_RE = /^nvme\d{1,5}$/;
const NS_RE = /^nvme\d{1,5}n\d{1,10}$/;

/** `nvme ns-rescan /dev/nvmeX`: the controller asks the target for its namespaces again (extend). */
export function nsRescanArgv(controller: string): string[] {
  if (!CTRL_RE.test(controller)) throw invalidInput(`not an NVMe controller name: ${JSON.stringify(controller.slice(0, 40))}`);
  return [NVME, 'ns-rescan', `/dev/${controller}`];
}

/** `nvme id-ns /dev/nvmeXnY -o json`: the namespace's identify data (nguid among it). */
export function idNsArgv(namespace: string): string[] {
  if (!NS_RE.test(namespace)) throw invalidInput(`not an NVMe namespace device name: ${JSON.stringify(namespace.slice(0, 40))}`);
  return [NVME, 'id-ns', `/dev/${namespace}`, '-o', 'json'];
}

/** A namespace block device (`nvme0n1`), not a controller (`nvme0`) nor a hidden multipath leg (`nvme0c1n1`). */
export function isNamespaceDevice(name: string): boolean {
  return NS_RE.test(name);
}

/** Where sysfs prints a block device's nguid (lower-case dashed, `%pUb`). */
export function blockNguidPath(device: string, sysfs = '/sys'): string {
  if (!NS_RE.test(device)) throw invalidInput(`not an NVMe namespace device name: ${JSON.stringify(device.slice(0, 40))}`);
  return `${sysfs}/class/block/${device}/nguid`;
}

/** Where sysfs prints a block device's size in 512-byte sectors. */
export function blockSizePath(device: string, sysfs = '/sys'): string {
  if (!NS_RE.test(device)) throw invalidInput(`not an NVMe namespace device name: ${JSON.stringify(device.slice(0, 40))}`);
  return `${sysfs}/class/block/${device}/size`;
}

/** An nguid in one form: 32 hex digits, lower case (sysfs dashes it, id-ns does not). */
export function normaliseNguid(value: string): string {
  return value.trim().toLowerCase().replace(/-/g, '');
}

/** The device whose nguid is `nguid`, from (name, sysfs nguid text) pairs; null when none. */
export function findByNguid(devices: ReadonlyArray<{ name: string; nguid: string }>, nguid: string): string | null {
  const want = normaliseNguid(nguid);
  if (!/^[0-9a-f]{32}$/.test(want) || /^0+$/.test(want)) return null;
  return devices.find((d) => isNamespaceDevice(d.name) && normaliseNguid(d.nguid) === want)?.name ?? null;
}

export interface NvmePath {
  /** controller, e.g. `nvme0` */
  name: string;
  transport: string;
  traddr: string | null;
  trsvcid: string | null;
  /** `live`, `connecting`, `resetting`, `deleting` ... */
  state: string;
}

export interface NvmeSubsystem {
  /** `nvme-subsys0` */
  name: string;
  nqn: string;
  hostNqn: string | null;
  paths: NvmePath[];
}

/** `traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1` -> its fields. */
export function parseAddress(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/[,\s]+/)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

function readPaths(raw: unknown): NvmePath[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((p): p is Record<string, unknown> => p !== null && typeof p === 'object')
    .map((p) => {
      const a = parseAddress(str(p.Address));
      return { name: str(p.Name), transport: str(p.Transport), traddr: a.traddr ?? null, trsvcid: a.trsvcid ?? null, state: str(p.State) };
    })
    .filter((p) => CTRL_RE.test(p.name));
}

/**
 * `nvme list-subsys -o json`. nvme-cli 2.x prints `[{HostNQN, HostID, Subsystems: [{Name, NQN,
 * Paths: [{Name, Transport, Address, State}]}]}]`; 1.x printed one object `{Subsystems: [...]}`
 * without the host level. Paths given as a separate array element right after their subsystem
 * are tolerated too. Empty output (no subsystem) is an empty list.
 */
export function parseListSubsys(text: string): NvmeSubsystem[] {
  if (text.trim() === '') return [];
  const raw = JSON.parse(text) as unknown;
  const hosts = Array.isArray(raw) ? raw : [raw];
  const out: NvmeSubsystem[] = [];
  for (const h of hosts) {
    if (!h || typeof h !== 'object') continue;
    const host = h as Record<string, unknown>;
    const hostNqn = str(host.HostNQN) || null;
    const subs = Array.isArray(host.Subsystems) ? (host.Subsystems as unknown[]) : [];
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i] as Record<string, unknown> | null;
      if (!s || typeof s !== 'object' || typeof s.NQN !== 'string') continue;
      let paths = readPaths(s.Paths);
      // paths as the next element of the array, an object holding only Paths
      const next = subs[i + 1] as Record<string, unknown> | undefined;
      if (!('Paths' in s) && next && typeof next === 'object' && !('NQN' in next)) paths = readPaths(next.Paths);
      out.push({ name: str(s.Name), nqn: s.NQN, hostNqn, paths });
    }
  }
  return out;
}

export interface NvmeListedNamespace {
  /** `/dev/nvme0n1` */
  devicePath: string;
  nsid: number | null;
  /** bytes, when nvme-cli says */
  physicalSize: number | null;
  modelNumber: string;
  serialNumber: string;
}

/** `nvme list -o json`: `{Devices: [{NameSpace, DevicePath, ModelNumber, SerialNumber, PhysicalSize, ...}]}`. */
export function parseList(text: string): NvmeListedNamespace[] {
  if (text.trim() === '') return [];
  const raw = JSON.parse(text) as { Devices?: unknown };
  if (!Array.isArray(raw.Devices)) return [];
  return raw.Devices.filter((d): d is Record<string, unknown> => d !== null && typeof d === 'object')
    .map((d) => ({
      devicePath: str(d.DevicePath),
      nsid: typeof d.NameSpace === 'number' ? d.NameSpace : null,
      physicalSize: typeof d.PhysicalSize === 'number' ? d.PhysicalSize : null,
      modelNumber: str(d.ModelNumber).trim(),
      serialNumber: str(d.SerialNumber).trim(),
    }))
    .filter((d) => /^\/dev\/nvme\d+n\d+$/.test(d.devicePath));
}

/** The nguid in `nvme id-ns -o json` (32 hex digits, or null when all zero / absent). */
export function parseIdNsNguid(text: string): string | null {
  const raw = JSON.parse(text) as { nguid?: unknown };
  const n = typeof raw.nguid === 'string' ? normaliseNguid(raw.nguid) : '';
  return /^[0-9a-f]{32}$/.test(n) && !/^0+$/.test(n) ? n : null;
}

/** The live controllers of subsystem `nqn` (the paths `nvme connect` made). */
export function liveControllers(subsystems: readonly NvmeSubsystem[], nqn: string): string[] {
  return subsystems.filter((s) => s.nqn === nqn).flatMap((s) => s.paths.filter((p) => p.state === 'live').map((p) => p.name));
}
