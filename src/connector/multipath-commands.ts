// The dm-multipath half of the initiator's command layer: argv for multipathd/multipath and the
// reading of their tables. Nothing here runs anything. Parsers were written against output of
// multipath-tools 0.9.4 captured in the lab guest (test/unit/connector/fixtures/).
import { invalidInput } from '../errors.js';
import { assertBlockName } from './iscsiadm-commands.js';

// A map name is a WWID (user_friendly_names no: `3600140...`) or an alias such as `mpatha`; it
// becomes one argv element and a /dev/mapper entry, so no slash, no whitespace, no leading dash.
const MAP_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}$/;

export function assertMapName(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !MAP_RE.test(value)) {
    throw invalidInput(`multipath map name must be a WWID or alias of letters, digits and _ . : + -, got ${JSON.stringify(value)}`);
  }
}

/** The maps multipathd knows (name, dm device, uuid/WWID). */
export function showMapsArgv(): string[] {
  return ['multipathd', 'show', 'maps'];
}

/** Topology of every map, or of one map / path device. */
export function multipathLlArgv(target?: string): string[] {
  if (target === undefined) return ['multipath', '-ll'];
  if (!/^\/dev\/(?:sd[a-z]+|dm-\d+)$/.test(target)) assertMapName(target);
  return ['multipath', '-ll', target];
}

/** Grow a map to the (already rescanned) size of its paths. multipathd prints `ok` or `fail`. */
export function resizeMapArgv(map: string): string[] {
  assertMapName(map);
  return ['multipathd', 'resize', 'map', map];
}

/** Remove a map that nothing holds open (queued I/O is failed first by multipath itself). */
export function flushMapArgv(map: string): string[] {
  assertMapName(map);
  return ['multipath', '-f', map];
}

/** Ask multipathd to take a path it has not picked up by itself (os-brick's nudge). */
export function addPathArgv(dev: string): string[] {
  assertBlockName(dev);
  return ['multipathd', 'add', 'path', `/dev/${dev}`];
}

export interface MapEntry {
  name: string;
  /** dm-N */
  sysfs: string;
  uuid: string;
}

/**
 * `multipathd show maps`: a header line (`name sysfs uuid`) then one line per map. With no maps,
 * multipathd 0.9.4 prints just `ok`.
 */
export function parseShowMaps(text: string): MapEntry[] {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const head = lines[0]?.split(/\s+/) ?? [];
  const iName = head.indexOf('name');
  const iSysfs = head.indexOf('sysfs');
  const iUuid = head.indexOf('uuid');
  if (iName < 0 || iSysfs < 0 || iUuid < 0) return [];
  const out: MapEntry[] = [];
  for (const l of lines.slice(1)) {
    const w = l.split(/\s+/);
    const name = w[iName];
    const sysfs = w[iSysfs];
    const uuid = w[iUuid];
    if (name && sysfs && uuid && /^dm-\d+$/.test(sysfs)) out.push({ name, sysfs, uuid });
  }
  return out;
}

export interface MultipathPath {
  hctl: string;
  dev: string;
  devT: string;
  /** device-mapper's view: active / failed */
  dmState: string;
  /** path checker: ready / faulty / ghost / ... */
  checkerState: string;
  /** SCSI device state: running / offline / ... */
  devState: string;
}

export interface PathGroup {
  policy: string | null;
  prio: number | null;
  status: string | null;
  paths: MultipathPath[];
}

export interface MultipathMap {
  name: string;
  /** the WWID, when the map has an alias (`mpatha (3600...)`), else the name */
  wwid: string;
  sysfs: string;
  vendorProduct: string;
  /** as printed: `64M`, `1.0G` */
  size: string;
  features: string | null;
  hwhandler: string | null;
  wp: string | null;
  groups: PathGroup[];
}

/**
 * `multipath -ll`:
 *   3600140572ceadc3a1474fbaac2a97b59 dm-0 LIO-ORG,IBLOCK         (or `alias (wwid) dm-0 ...`)
 *   size=64M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw
 *   `-+- policy='service-time 0' prio=50 status=active
 *     |- 2:0:0:0 sda 8:0  active ready running
 *     `- 3:0:0:0 sdb 8:16 failed faulty offline
 */
export function parseMultipathLl(text: string): MultipathMap[] {
  const out: MultipathMap[] = [];
  let map: MultipathMap | null = null;
  let group: PathGroup | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(?:\((\S+)\)\s+)?(dm-\d+)\s+(.*)$/.exec(line))) {
      map = { name: m[1] as string, wwid: m[2] ?? (m[1] as string), sysfs: m[3] as string, vendorProduct: (m[4] as string).trim(), size: '', features: null, hwhandler: null, wp: null, groups: [] };
      out.push(map);
      group = null;
      continue;
    }
    if (!map) continue;
    if ((m = /^size=(\S+)(?:\s+features='([^']*)')?(?:\s+hwhandler='([^']*)')?(?:\s+wp=(\S+))?/.exec(line))) {
      map.size = m[1] as string;
      map.features = m[2] ?? null;
      map.hwhandler = m[3] ?? null;
      map.wp = m[4] ?? null;
      continue;
    }
    if ((m = /^[|`\s-]*\+-\s+(?:policy='([^']*)')?\s*(?:prio=(-?\d+))?\s*(?:status=(\S+))?/.exec(line))) {
      group = { policy: m[1] ?? null, prio: m[2] !== undefined ? Number(m[2]) : null, status: m[3] ?? null, paths: [] };
      map.groups.push(group);
      continue;
    }
    if ((m = /^[|`\s-]*(\d+:\d+:\d+:\d+)\s+(\S+)\s+(\d+:\d+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(line)) && group) {
      group.paths.push({ hctl: m[1] as string, dev: m[2] as string, devT: m[3] as string, dmState: m[4] as string, checkerState: m[5] as string, devState: m[6] as string });
    }
  }
  return out;
}

/** Every path of a map, whatever its group. */
export function mapPaths(m: MultipathMap): MultipathPath[] {
  return m.groups.flatMap((g) => g.paths);
}

/** `multipathd resize map` reports `ok` on success and `fail` (exit 0 or 1) otherwise. */
export function resizeSucceeded(exitCode: number, stdout: string): boolean {
  return exitCode === 0 && stdout.trim() === 'ok';
}

/** `multipath -f` on a name that is not (or no longer) a map: nothing to flush. */
export function isNotAMap(stderr: string): boolean {
  return /is not a multipath device/.test(stderr) || /No such device or address/.test(stderr);
}
