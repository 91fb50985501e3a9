// argv builders and output parsers for finding which blocks of a thin LV hold data: a thin
// device reads as zeros wherever its pool has no mapping, and a block device has no SEEK_DATA to
// say where that is, so the map comes from the pool's metadata (device-mapper's thin target,
// Documentation/admin-guide/device-mapper/thin-provisioning.rst; thin-provisioning-tools 0.9).
// Pure functions: no I/O. thin-map.ts runs them: the tables and messages through the addon's dm
// ioctls (src/native/dm.ts), thin_dump as a process. The dmsetup argv builders stay for tools
// that want the commands' own output (bench/lab/copy-lv-bench.mts captures it as test fixtures).
export type Argv = string[];

/** A device number as device-mapper prints it: `major:minor`. */
export interface DevNo {
  major: number;
  minor: number;
}

function devArgs(d: DevNo): string[] {
  for (const n of [d.major, d.minor]) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`device numbers must be non-negative integers, got ${d.major}:${d.minor}`);
  }
  return ['-j', String(d.major), '-m', String(d.minor)];
}

// A dm device name goes into argv as one element (never a shell); this only refuses what no dm
// name can be, so a bad lookup fails loudly instead of addressing some other device.
function assertDmName(name: string): void {
  if (!/^[A-Za-z0-9+_.\-#]+$/.test(name)) throw new RangeError(`not a device-mapper name: ${JSON.stringify(name)}`);
}

/** `dmsetup table -j MAJ -m MIN`: the device's table, one line per target. */
export function dmTableArgv(dev: DevNo): Argv {
  return ['dmsetup', 'table', ...devArgs(dev)];
}

/** `dmsetup info -c --noheadings -o name -j MAJ -m MIN`: the device's dm name. */
export function dmNameArgv(dev: DevNo): Argv {
  return ['dmsetup', 'info', '-c', '--noheadings', '-o', 'name', ...devArgs(dev)];
}

/**
 * `dmsetup message POOL 0 reserve_metadata_snap`: the pool commits its open transaction and
 * keeps a read-only copy of its metadata that userspace may read while the pool runs (only one
 * at a time: EBUSY if another tool holds one).
 */
export function reserveMetadataSnapArgv(poolName: string): Argv {
  assertDmName(poolName);
  return ['dmsetup', 'message', poolName, '0', 'reserve_metadata_snap'];
}

/** `dmsetup message POOL 0 release_metadata_snap`. */
export function releaseMetadataSnapArgv(poolName: string): Argv {
  assertDmName(poolName);
  return ['dmsetup', 'message', poolName, '0', 'release_metadata_snap'];
}

/**
 * `thin_dump --metadata-snap --dev-id ID --format xml METADATA_DEV`: the mappings of one thin
 * device as of the reserved snapshot (0.9: `-m` takes an optional block number, so the long
 * form is used and the snapshot's location comes from the superblock).
 */
export function thinDumpArgv(metadataDevice: string, devId: number): Argv {
  if (!Number.isSafeInteger(devId) || devId < 0) throw new RangeError(`thin dev_id must be a non-negative integer, got ${devId}`);
  if (!metadataDevice.startsWith('/dev/')) throw new RangeError(`metadata device must be a /dev path, got ${JSON.stringify(metadataDevice)}`);
  return ['thin_dump', '--metadata-snap', '--dev-id', String(devId), '--format', 'xml', metadataDevice];
}

// ---------------------------------------------------------------------------------------------
// Parsers

function parseDevNo(s: string): DevNo | null {
  const m = /^(\d+):(\d+)$/.exec(s);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

/**
 * One target of a dm table: what the addon's dmTable returns (native/dm.cc), and what a line of
 * `dmsetup table` says (`start length type params...`).
 */
export interface DmTableRow {
  start: number;
  length: number;
  type: string;
  params: string;
}

/** `dmsetup table` text as rows (blank lines skipped). */
export function parseDmTableText(out: string): DmTableRow[] {
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const [start = '', length = '', type = '', ...params] = l.split(/\s+/);
      return { start: Number(start), length: Number(length), type, params: params.join(' ') };
    });
}

// Each row as the fields dmsetup prints, so a table reads the same from either source.
function tableLines(table: string | readonly DmTableRow[]): string[][] {
  const rows = typeof table === 'string' ? parseDmTableText(table) : table;
  return rows.map((r) => [String(r.start), String(r.length), r.type, ...r.params.trim().split(/\s+/).filter((p) => p !== '')]);
}

/**
 * A thin device's table (dmTable's rows, or `dmsetup table` text) is one line, `0 LEN thin POOL_MAJ:MIN DEV_ID [EXTERNAL_ORIGIN]`; anything
 * else (linear, a snapshot, several targets) is not a thin device: null.
 */
export function parseThinTable(out: string | readonly DmTableRow[]): { pool: DevNo; devId: number; sectors: number; externalOrigin: boolean } | null {
  const lines = tableLines(out);
  if (lines.length !== 1) return null;
  const f = lines[0]!;
  if (f[2] !== 'thin' || f.length < 5 || f[0] !== '0') return null;
  const pool = parseDevNo(f[3]!);
  const devId = Number(f[4]);
  const sectors = Number(f[1]);
  if (!pool || !Number.isSafeInteger(devId) || !Number.isSafeInteger(sectors)) return null;
  // An external origin supplies the data of unmapped blocks, so they do not read as zeros.
  return { pool, devId, sectors, externalOrigin: f.length > 5 };
}

/**
 * A pool's table: `0 LEN thin-pool META_MAJ:MIN DATA_MAJ:MIN BLOCK_SECTORS LOW_WATER N FEATURES...`.
 */
export function parseThinPoolTable(out: string | readonly DmTableRow[]): { metadata: DevNo; data: DevNo; blockSectors: number } | null {
  const lines = tableLines(out);
  if (lines.length !== 1) return null;
  const f = lines[0]!;
  if (f[2] !== 'thin-pool' || f.length < 7) return null;
  const metadata = parseDevNo(f[3]!);
  const data = parseDevNo(f[4]!);
  const blockSectors = Number(f[5]);
  if (!metadata || !data || !Number.isSafeInteger(blockSectors) || blockSectors <= 0) return null;
  return { metadata, data, blockSectors };
}

export interface ThinDeviceMap {
  devId: number;
  /** The pool's block (chunk) size in bytes: the unit of every mapping. */
  blockBytes: number;
  /** Mapped blocks, in bytes of the thin device: [offset, length], sorted, adjacent ones merged. */
  extents: Array<[number, number]>;
  mappedBytes: number;
  /** How the lookup read it: in-process from the metadata, or by thin_dump (the fallback). */
  readBy?: 'metadata' | 'thin_dump';
  /** Why the in-process reader was not used, when thin_dump was. */
  fallbackReason?: string;
  /**
   * Where a lookup's time went (ms): finding the pool (stat, sysfs, dm tables), waiting for
   * another lookup on the pool, reserve_metadata_snap (the pool commits its metadata first),
   * reading the map, release.
   */
  lookupMs?: { find: number; wait: number; reserve: number; read: number; release: number };
}

const attr = (tag: string, name: string): string | undefined => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];

function num(tag: string, name: string): number {
  const v = attr(tag, name);
  const n = v === undefined ? NaN : Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`thin_dump: <${tag.slice(1, tag.indexOf(' '))}> has no usable ${name}: ${tag.slice(0, 200)}`);
  return n;
}

/**
 * The mappings of device `devId` in thin_dump's XML: `<superblock data_block_size=SECTORS>`,
 * `<device dev_id=N>` with `<range_mapping origin_begin= data_begin= length=>` and
 * `<single_mapping origin_block= data_block=>` (origin = the thin device's own block numbers).
 * Throws when the dump does not hold that device or is malformed: a map that is wrong would lose
 * data, so no guessing.
 */
export function parseThinDumpXml(xml: string, devId: number): ThinDeviceMap {
  const sb = /<superblock\b[^>]*>/.exec(xml)?.[0];
  if (!sb) throw new Error('thin_dump: no <superblock> in the output');
  const blockSectors = num(sb, 'data_block_size');
  if (blockSectors === 0) throw new Error('thin_dump: data_block_size is 0');
  const blockBytes = blockSectors * 512;

  const tags = xml.matchAll(/<(\/?)(device|range_mapping|single_mapping)\b[^>]*>/g);
  const blocks: Array<[number, number]> = []; // [origin block, count]
  let inDevice = false;
  let found = false;
  for (const m of tags) {
    const tag = m[0];
    if (m[2] === 'device') {
      if (m[1] === '/') {
        inDevice = false;
        continue;
      }
      inDevice = num(tag, 'dev_id') === devId;
      if (inDevice) {
        if (found) throw new Error(`thin_dump: device ${devId} appears twice`);
        found = true;
      }
      // `<device .../>` (self-closing) is a device with no mappings.
      if (tag.endsWith('/>')) inDevice = false;
      continue;
    }
    if (!inDevice) continue;
    if (m[2] === 'range_mapping') blocks.push([num(tag, 'origin_begin'), num(tag, 'length')]);
    else blocks.push([num(tag, 'origin_block'), 1]);
  }
  if (!found) throw new Error(`thin_dump: no device ${devId} in the output`);
  return extentsFromBlocks(blocks, blockBytes, devId, 'thin_dump');
}

/**
 * A ThinDeviceMap from mapped runs of the device's own blocks ([first block, count], any order):
 * sorted, adjacent runs merged, overlaps refused (`source` names where they came from in errors).
 */
export function extentsFromBlocks(blocks: Array<[number, number]>, blockBytes: number, devId: number, source: string): ThinDeviceMap {
  const sorted = [...blocks].sort((a, b) => a[0] - b[0]);
  const extents: Array<[number, number]> = [];
  let mappedBytes = 0;
  for (const [b, n] of sorted) {
    if (n === 0) continue;
    const off = b * blockBytes;
    const len = n * blockBytes;
    if (!Number.isSafeInteger(off + len)) throw new Error(`${source}: mapping at block ${b} is beyond any device size`);
    mappedBytes += len;
    const last = extents[extents.length - 1];
    if (last && last[0] + last[1] > off) throw new Error(`${source}: overlapping mappings at block ${b}`);
    if (last && last[0] + last[1] === off) last[1] += len;
    else extents.push([off, len]);
  }
  return { devId, blockBytes, extents, mappedBytes };
}
