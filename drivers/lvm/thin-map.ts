// Where a thin LV holds data, so a copy from it reads only that (the rest reads as zeros: the
// pool has no block there). Asked of device-mapper itself rather than LVM: the source's dm table
// names its pool and dev_id, the pool's table its metadata device, and the mappings are read from
// a metadata snapshot reserved for the purpose (the only consistent way to read a live pool's
// metadata). Tables and messages are dm ioctls made by the addon (src/native/dm.ts), names come
// from sysfs, and the metadata is read in-process (thin-metadata.ts, O_DIRECT reads by the addon),
// so a lookup starts no process: where process starts are slow (an emulated guest: a few hundred
// ms each) they were most of its time. thin_dump is the fallback when the in-process reader
// refuses the metadata (a format it does not know). Parsers and thin_dump's argv: thin-map-commands.ts.
import { readFile, readdir, stat } from 'node:fs/promises';

import { processRunner } from '../../src/exec/run-command.js';
import { log } from '../../src/log.js';
import { dmMessage, dmTable, readDirect } from '../../src/native/index.js';
import { runChecked, type LvmRunner } from './lvm-runner.js';
import { readThinDeviceMap, THIN_METADATA_BLOCK_BYTES } from './thin-metadata.js';
import { parseThinDumpXml, parseThinPoolTable, parseThinTable, thinDumpArgv, type DevNo, type DmTableRow, type ThinDeviceMap } from './thin-map-commands.js';

export type { ThinDeviceMap } from './thin-map-commands.js';

/** Linux's dev_t split (glibc's gnu_dev_major/minor), on the bigint st_rdev. */
export function splitDevT(rdev: bigint): DevNo {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

// One metadata snapshot per pool at a time (the kernel refuses a second with EBUSY), so lookups
// on one pool from this process take turns.
const poolQueues = new Map<string, Promise<unknown>>();

/** A queue's tail: it records that a lookup ended, not how (its caller has the outcome). */
function settled(): void {}

function onPool<T>(pool: string, fn: () => Promise<T>): Promise<T> {
  const prev = poolQueues.get(pool) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  // The caller gets fn's result or error through `next`; the queue only waits for it to settle,
  // so the next caller on this pool never inherits an error that is not its own.
  const tail = next.then(settled, settled);
  poolQueues.set(pool, tail);
  void tail.then(() => {
    if (poolQueues.get(pool) === tail) poolQueues.delete(pool);
  });
  return next;
}

/**
 * What sysfs says about dm devices: names (`/sys/dev/block/M:m/dm/name`) and the devices under
 * one (`slaves/`). Reading it costs no process, and process starts are most of a lookup's time.
 */
export interface DmSysfs {
  /** The dm name of a device, or null when it is not a device-mapper device. */
  dmName(dev: DevNo): Promise<string | null>;
  /** The devices a dm device is built on. */
  slaves(dev: DevNo): Promise<DevNo[]>;
}

export const linuxDmSysfs: DmSysfs = {
  async dmName(dev) {
    try {
      return (await readFile(`/sys/dev/block/${dev.major}:${dev.minor}/dm/name`, 'utf8')).trim() || null;
    } catch {
      return null;
    }
  },
  async slaves(dev) {
    try {
      const names = await readdir(`/sys/dev/block/${dev.major}:${dev.minor}/slaves`);
      const devs = await Promise.all(names.map(async (n) => (await readFile(`/sys/class/block/${n}/dev`, 'utf8')).trim()));
      return devs.map((d) => d.split(':').map(Number)).map(([major, minor]) => ({ major: major!, minor: minor! }));
    } catch {
      return [];
    }
  },
};

/** The device-mapper calls a lookup makes, by dm name (default: the addon's ioctls). */
export interface DmControl {
  /** The live table, one row per target (`dmsetup table NAME`). */
  table(name: string): Promise<DmTableRow[]>;
  /** A message to the target at sector 0 (`dmsetup message NAME 0 MESSAGE`). */
  message(name: string, message: string): Promise<void>;
}

export const nativeDmControl: DmControl = {
  table: (name) => dmTable(name),
  message: (name, message) => dmMessage(name, message, 0),
};

/**
 * thin_dump's runner: the one process runner with `LC_ALL=C`, output kept up to 512 MiB (the XML
 * of a big, fragmented pool). The time limit is the lookup's (ThinMapOptions.timeoutMs).
 */
export const thinDumpRunner: LvmRunner = processRunner({ timeoutMs: 0, maxBuffer: 512 * 1024 * 1024 });

/** Reads one device's map from the held metadata snapshot of a pool's metadata device. */
export type MetadataMapReader = (metadataDevice: string, devId: number) => Promise<ThinDeviceMap>;

// A b-tree level can be wider than one addon call takes (65536 offsets): read it in batches.
const READ_BATCH = 4096;

/** The default: thin-metadata.ts over the addon's O_DIRECT reads. */
export const nativeMetadataMapReader: MetadataMapReader = (metadataDevice, devId) =>
  readThinDeviceMap(async (blocks) => {
    const out: Buffer[] = [];
    for (let i = 0; i < blocks.length; i += READ_BATCH) {
      const batch = blocks.slice(i, i + READ_BATCH).map((b) => b * THIN_METADATA_BLOCK_BYTES);
      out.push(...(await readDirect(metadataDevice, batch, THIN_METADATA_BLOCK_BYTES)));
    }
    return out;
  }, devId);

export interface ThinMapOptions {
  /** Reads the map in-process (default nativeMetadataMapReader). */
  readMetadata?: MetadataMapReader;
  /** Runs thin_dump, the fallback (default thinDumpRunner). */
  runner?: LvmRunner;
  /** For tests: default nativeDmControl. */
  dm?: DmControl;
  /** thin_dump's timeout (default 120 s): a dump of a big, fragmented pool takes a while. */
  timeoutMs?: number;
  /** For tests: what the device path is (default fs.stat with bigint numbers). */
  stat?: (path: string) => Promise<{ isBlockDevice(): boolean; rdev: bigint }>;
  /** For tests: default linuxDmSysfs. */
  sysfs?: DmSysfs;
}

/**
 * The mapped ranges of the thin device at `devicePath` (bytes, sorted, merged), or null when it
 * is not a dm-thin device (a thick LV, a file, a thin device with an external origin). Throws if
 * its table cannot be read (removed meanwhile, no usable /dev/mapper/control) or it is thin but
 * the map cannot be read (pool busy with another metadata snapshot, no thin_dump): callers then
 * read the whole device. Valid only while nothing writes the device:
 * cinder copies from snapshots and detached volumes.
 */
export async function thinDeviceMap(devicePath: string, opts: ThinMapOptions = {}): Promise<ThinDeviceMap | null> {
  const runner = opts.runner ?? thinDumpRunner;
  const dm = opts.dm ?? nativeDmControl;
  const sysfs = opts.sysfs ?? linuxDmSysfs;
  const run = { timeoutMs: opts.timeoutMs ?? 120_000 };
  const t0 = performance.now();
  const st = await (opts.stat ?? ((p: string) => stat(p, { bigint: true })))(devicePath);
  if (!st.isBlockDevice()) return null;
  const dev = splitDevT(st.rdev);
  const name = await sysfs.dmName(dev);
  if (name === null) return null; // not a device-mapper device

  // A thin device sits on exactly one device, its pool: ask for both tables at once, then check
  // that the pool the thin table names is the one asked about (else ask again, for that one).
  const under = await sysfs.slaves(dev);
  // (A thick LV sits on a disk, which is no dm device: no point asking for its table.)
  const guess = under.length === 1 ? under[0]! : undefined;
  const guessName = guess ? await sysfs.dmName(guess) : null;
  const [table, guessTable] = await Promise.all([
    dm.table(name),
    // Only a guess: if it fails, the pool the thin table names is asked for below, and a failure
    // there is thrown; nothing is lost by not reporting this one.
    guessName !== null
      ? dm.table(guessName).catch((err: unknown) => {
          log().debug({ device: guessName, err }, 'thin map: the guessed pool table is unreadable; asking the pool the thin table names');
          return undefined;
        })
      : Promise.resolve(undefined),
  ]);
  const thin = parseThinTable(table);
  if (!thin || thin.externalOrigin) return null;
  const sameDev = (a: DevNo | undefined, b: DevNo) => a !== undefined && a.major === b.major && a.minor === b.minor;
  const nameOf = async (d: DevNo, what: string) => {
    const n = await sysfs.dmName(d);
    if (n === null) throw new Error(`${devicePath}: its ${what} ${d.major}:${d.minor} has no device-mapper name in sysfs`);
    return n;
  };
  const poolIsGuess = sameDev(guess, thin.pool) && guessName !== null && guessTable !== undefined;
  const poolName = poolIsGuess ? guessName : await nameOf(thin.pool, 'pool');
  const poolTable = parseThinPoolTable(poolIsGuess ? guessTable : await dm.table(poolName));
  if (!poolTable) throw new Error(`${devicePath}: its pool ${poolName} (${thin.pool.major}:${thin.pool.minor}) has no thin-pool table`);
  const metaName = await nameOf(poolTable.metadata, 'pool metadata device');

  const metadataDevice = `/dev/mapper/${metaName}`;
  const readMetadata = opts.readMetadata ?? nativeMetadataMapReader;
  const tFound = performance.now();
  return onPool(poolName, async () => {
    const tQueued = performance.now();
    await dm.message(poolName, 'reserve_metadata_snap');
    const tReserved = performance.now();
    let map: ThinDeviceMap;
    let tRead = tReserved;
    try {
      try {
        map = { ...(await readMetadata(metadataDevice, thin.devId)), readBy: 'metadata' };
      } catch (err) {
        // thin_dump knows every format the kernel writes; this reader knows versions 1 and 2.
        const reason = err instanceof Error ? err.message : String(err);
        let xml: string;
        try {
          xml = (await runChecked(runner, thinDumpArgv(metadataDevice, thin.devId), run)).stdout;
        } catch (dumpErr) {
          throw new Error(`${devicePath}: neither the in-process reader (${reason}) nor thin_dump could read the pool's metadata: ${(dumpErr as Error).message}`, { cause: dumpErr });
        }
        map = { ...parseThinDumpXml(xml, thin.devId), readBy: 'thin_dump', fallbackReason: reason };
      }
      tRead = performance.now();
    } finally {
      await dm.message(poolName, 'release_metadata_snap');
    }
    const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
    map.lookupMs = { find: ms(t0, tFound), wait: ms(tFound, tQueued), reserve: ms(tQueued, tReserved), read: ms(tReserved, tRead), release: ms(tRead, performance.now()) };
    if (map.blockBytes !== poolTable.blockSectors * 512) {
      throw new Error(`${devicePath}: the pool's metadata says ${map.blockBytes}-byte blocks, its table ${poolTable.blockSectors * 512}`);
    }
    return map;
  });
}
