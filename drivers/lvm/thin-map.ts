// Where a thin LV holds data, so a copy from it reads only that (the rest reads as zeros: the
// pool has no block there). Asked of device-mapper itself rather than LVM: the source's dm table
// names its pool and dev_id, the pool's table its metadata device, and thin_dump reads the
// mappings from a metadata snapshot reserved for the purpose (the only consistent way to read
// a live pool's metadata). Commands and parsers: thin-map-commands.ts.
import { stat } from 'node:fs/promises';

import { execaLvmRunner, runChecked, type LvmRunner } from './lvm-runner.js';
import {
  dmNameArgv,
  dmTableArgv,
  parseThinDumpXml,
  parseThinPoolTable,
  parseThinTable,
  releaseMetadataSnapArgv,
  reserveMetadataSnapArgv,
  thinDumpArgv,
  type DevNo,
  type ThinDeviceMap,
} from './thin-map-commands.js';

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

function onPool<T>(pool: string, fn: () => Promise<T>): Promise<T> {
  const prev = poolQueues.get(pool) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  poolQueues.set(pool, tail);
  void tail.then(() => {
    if (poolQueues.get(pool) === tail) poolQueues.delete(pool);
  });
  return next;
}

export interface ThinMapOptions {
  runner?: LvmRunner;
  /** Per command (default 120 s): a dump of a big, fragmented pool takes a while. */
  timeoutMs?: number;
  /** For tests: what the device path is (default fs.stat with bigint numbers). */
  stat?: (path: string) => Promise<{ isBlockDevice(): boolean; rdev: bigint }>;
}

/**
 * The mapped ranges of the thin device at `devicePath` (bytes, sorted, merged), or null when it
 * is not a dm-thin device (a thick LV, a file, a thin device with an external origin). Throws if
 * it is thin but the map cannot be read (pool busy with another metadata snapshot, no
 * thin_dump): callers then read the whole device. Valid only while nothing writes the device:
 * cinder copies from snapshots and detached volumes.
 */
export async function thinDeviceMap(devicePath: string, opts: ThinMapOptions = {}): Promise<ThinDeviceMap | null> {
  const runner = opts.runner ?? execaLvmRunner();
  const run = { timeoutMs: opts.timeoutMs ?? 120_000 };
  const st = await (opts.stat ?? ((p: string) => stat(p, { bigint: true })))(devicePath);
  if (!st.isBlockDevice()) return null;
  const dev = splitDevT(st.rdev);
  const table = await runner(dmTableArgv(dev), run);
  if (table.exitCode !== 0) return null; // not a device-mapper device
  const thin = parseThinTable(table.stdout);
  if (!thin || thin.externalOrigin) return null;

  // Independent questions asked at once: each command is a process start, which is most of the
  // lookup's time (about 0.1 s each in the emulated lab guest).
  const [poolOut, poolNameOut] = await Promise.all([runChecked(runner, dmTableArgv(thin.pool), run), runChecked(runner, dmNameArgv(thin.pool), run)]);
  const poolTable = parseThinPoolTable(poolOut.stdout);
  if (!poolTable) throw new Error(`${devicePath}: its pool ${thin.pool.major}:${thin.pool.minor} has no thin-pool table`);
  const poolName = poolNameOut.stdout.trim();
  const metaName = (await runChecked(runner, dmNameArgv(poolTable.metadata), run)).stdout.trim();

  return onPool(poolName, async () => {
    await runChecked(runner, reserveMetadataSnapArgv(poolName), run);
    let xml: string;
    try {
      xml = (await runChecked(runner, thinDumpArgv(`/dev/mapper/${metaName}`, thin.devId), run)).stdout;
    } finally {
      await runChecked(runner, releaseMetadataSnapArgv(poolName), run);
    }
    const map = parseThinDumpXml(xml, thin.devId);
    if (map.blockBytes !== poolTable.blockSectors * 512) {
      throw new Error(`${devicePath}: thin_dump says ${map.blockBytes}-byte blocks, the pool's table ${poolTable.blockSectors * 512}`);
    }
    return map;
  });
}
