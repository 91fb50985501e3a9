// Finding a thin LV's mapped ranges: dmsetup/thin_dump argv, parsing their output (real output
// captured in the lab: fixtures/thin-*, thin_dump-*.xml) and the addon's dm table rows, the
// lookup's sequence of dm calls and thin_dump with fakes, and the copy wrapper that passes the map on.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';

import type { LvmCommandResult } from '../../../drivers/lvm/lvm-runner.js';
import {
  dmNameArgv,
  dmTableArgv,
  parseDmTableText,
  parseThinDumpXml,
  parseThinPoolTable,
  parseThinTable,
  releaseMetadataSnapArgv,
  reserveMetadataSnapArgv,
  thinDumpArgv,
} from '../../../drivers/lvm/thin-map-commands.js';
import { thinDumpRunner, splitDevT, thinDeviceMap, type DmControl, type DmSysfs } from '../../../drivers/lvm/thin-map.js';
import type { DmTableRow } from '../../../drivers/lvm/thin-map-commands.js';
import { withThinSourceMap, type VolumeCopyOptions } from '../../../drivers/lvm/volume-copy.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const SYNTHETIC = `<superblock uuid="" time="1" transaction="3" flags="0" version="2" data_block_size="128" nr_data_blocks="16384">
  <device dev_id="1" mapped_blocks="20" transaction="0" creation_time="0" snap_time="1">
    <range_mapping origin_begin="0" data_begin="0" length="16" time="0"/>
    <range_mapping origin_begin="16" data_begin="40" length="2" time="0"/>
    <single_mapping origin_block="84" data_block="16" time="0"/>
    <single_mapping origin_block="100" data_block="17" time="1"/>
  </device>
  <device dev_id="2" mapped_blocks="1" transaction="1" creation_time="1" snap_time="1">
    <single_mapping origin_block="7" data_block="18" time="1"/>
  </device>
  <device dev_id="3" mapped_blocks="0" transaction="2" creation_time="1" snap_time="1">
  </device>
</superblock>
`;

describe('argv', () => {
  it('dmsetup by device number, messages by pool name, thin_dump of the metadata snapshot of one device', () => {
    expect(dmTableArgv({ major: 254, minor: 5 })).toEqual(['dmsetup', 'table', '-j', '254', '-m', '5']);
    expect(dmNameArgv({ major: 254, minor: 3 })).toEqual(['dmsetup', 'info', '-c', '--noheadings', '-o', 'name', '-j', '254', '-m', '3']);
    expect(reserveMetadataSnapArgv('cinder--volumes-pool-tpool')).toEqual(['dmsetup', 'message', 'cinder--volumes-pool-tpool', '0', 'reserve_metadata_snap']);
    expect(releaseMetadataSnapArgv('vg-pool-tpool')).toEqual(['dmsetup', 'message', 'vg-pool-tpool', '0', 'release_metadata_snap']);
    expect(thinDumpArgv('/dev/mapper/vg-pool_tmeta', 4)).toEqual(['thin_dump', '--metadata-snap', '--dev-id', '4', '--format', 'xml', '/dev/mapper/vg-pool_tmeta']);
  });

  it('refuses what cannot be a dm name, a device number or a metadata path', () => {
    expect(() => reserveMetadataSnapArgv('a b')).toThrow(RangeError);
    expect(() => reserveMetadataSnapArgv('')).toThrow(RangeError);
    expect(() => dmTableArgv({ major: -1, minor: 0 })).toThrow(RangeError);
    expect(() => thinDumpArgv('vg-pool_tmeta', 1)).toThrow(RangeError);
    expect(() => thinDumpArgv('/dev/mapper/x', 1.5)).toThrow(RangeError);
  });
});

describe('dmsetup table parsing', () => {
  it('a thin device: its pool and dev_id', () => {
    expect(parseThinTable('0 2097152 thin 254:3 1\n')).toEqual({ pool: { major: 254, minor: 3 }, devId: 1, sectors: 2097152, externalOrigin: false });
  });

  it('a thin device with an external origin is not mapped-or-zero: flagged', () => {
    expect(parseThinTable('0 2097152 thin 254:3 7 254:9\n')?.externalOrigin).toBe(true);
  });

  it('anything else is not thin', () => {
    expect(parseThinTable('0 2097152 linear 252:16 2048\n')).toBeNull();
    expect(parseThinTable('0 1024 linear 252:16 2048\n1024 1024 linear 252:32 0\n')).toBeNull();
    expect(parseThinTable('')).toBeNull();
  });

  it('the addon’s rows read the same as dmsetup’s text', () => {
    const rows: DmTableRow[] = [{ start: 0, length: 2097152, type: 'thin', params: '254:3 1' }];
    expect(parseThinTable(rows)).toEqual(parseThinTable('0 2097152 thin 254:3 1\n'));
    const pool: DmTableRow[] = [{ start: 0, length: 6291456, type: 'thin-pool', params: '254:1 254:2 128 0 0' }];
    expect(parseThinPoolTable(pool)).toEqual({ metadata: { major: 254, minor: 1 }, data: { major: 254, minor: 2 }, blockSectors: 128 });
    expect(parseThinTable([...rows, { start: 2097152, length: 8, type: 'zero', params: '' }])).toBeNull();
    expect(parseThinTable([])).toBeNull();
    expect(parseDmTableText('0 8 zero\n\n8 8 linear 252:16 0 \n')).toEqual([
      { start: 0, length: 8, type: 'zero', params: '' },
      { start: 8, length: 8, type: 'linear', params: '252:16 0' },
    ]);
  });

  it('a pool: metadata device, data device, block size in sectors', () => {
    expect(parseThinPoolTable('0 6291456 thin-pool 254:1 254:2 128 0 0 \n')).toEqual({
      metadata: { major: 254, minor: 1 },
      data: { major: 254, minor: 2 },
      blockSectors: 128,
    });
    expect(parseThinPoolTable('0 2097152 thin 254:3 1')).toBeNull();
  });
});

describe('thin_dump XML parsing', () => {
  it('turns one device’s range and single mappings into byte ranges, merging neighbours', () => {
    const m = parseThinDumpXml(SYNTHETIC, 1);
    expect(m.blockBytes).toBe(64 * KiB);
    // blocks 0..15 and 16..17 are adjacent in the thin device (not in the pool): one range
    expect(m.extents).toEqual([
      [0, 18 * 64 * KiB],
      [84 * 64 * KiB, 64 * KiB],
      [100 * 64 * KiB, 64 * KiB],
    ]);
    expect(m.mappedBytes).toBe(20 * 64 * KiB);
  });

  it('picks the asked device among several; a device with no mappings is an empty map', () => {
    expect(parseThinDumpXml(SYNTHETIC, 2).extents).toEqual([[7 * 64 * KiB, 64 * KiB]]);
    expect(parseThinDumpXml(SYNTHETIC, 3)).toMatchObject({ extents: [], mappedBytes: 0 });
    expect(parseThinDumpXml('<superblock data_block_size="256">\n<device dev_id="9" mapped_blocks="0"/>\n</superblock>', 9).extents).toEqual([]);
  });

  it('refuses a dump without the device, without a block size, or with overlapping mappings', () => {
    expect(() => parseThinDumpXml(SYNTHETIC, 4)).toThrow(/no device 4/);
    expect(() => parseThinDumpXml('<device dev_id="1"></device>', 1)).toThrow(/superblock/);
    const overlap = SYNTHETIC.replace('origin_block="84"', 'origin_block="5"');
    expect(() => parseThinDumpXml(overlap, 1)).toThrow(/overlapping/);
  });

  it('sorts mappings that come out of order', () => {
    const xml = '<superblock data_block_size="128"><device dev_id="1"><single_mapping origin_block="9" data_block="0"/><single_mapping origin_block="2" data_block="1"/></device></superblock>';
    expect(parseThinDumpXml(xml, 1).extents).toEqual([
      [2 * 64 * KiB, 64 * KiB],
      [9 * 64 * KiB, 64 * KiB],
    ]);
  });
});

describe('splitDevT', () => {
  it('splits Linux dev_t as glibc does', () => {
    expect(splitDevT((254n << 8n) | 3n)).toEqual({ major: 254, minor: 3 });
    // minor 300: low 8 bits in 0..7, the rest from bit 20 up
    expect(splitDevT((259n << 8n) | (300n & 0xffn) | ((300n & ~0xffn) << 12n))).toEqual({ major: 259, minor: 300 });
  });
});

describe('thinDeviceMap (fake dm ioctls, metadata reader, thin_dump and sysfs)', () => {
  const blockDev = (major: number, minor: number) => async () => ({ isBlockDevice: () => true, rdev: (BigInt(major) << 8n) | BigInt(minor) });
  const ok = (stdout: string): LvmCommandResult => ({ stdout, stderr: '', exitCode: 0 });
  const row = (line: string): DmTableRow[] => parseDmTableText(line);
  // 254:5 thin on 254:3 pool (tmeta 254:1, tdata 254:2); 254:7 a linear LV on 252:16
  const names: Record<string, string> = { '254:5': 'vg-thin', '254:3': 'vg-pool-tpool', '254:1': 'vg-pool_tmeta', '254:2': 'vg-pool_tdata', '254:7': 'vg-thick' };
  const under: Record<string, string[]> = { '254:5': ['254:3'], '254:3': ['254:1', '254:2'], '254:7': ['252:16'] };
  const devNo = (s: string) => ({ major: Number(s.split(':')[0]), minor: Number(s.split(':')[1]) });
  const sysfs = (over: Partial<DmSysfs> = {}): DmSysfs => ({
    dmName: async (d) => names[`${d.major}:${d.minor}`] ?? null,
    slaves: async (d) => (under[`${d.major}:${d.minor}`] ?? []).map(devNo),
    ...over,
  });

  // Every call, dm or process, in one list, in the order made.
  function fakes(opts: { tables?: Record<string, DmTableRow[] | Error>; messages?: Record<string, Error>; commands?: Record<string, LvmCommandResult>; metadata?: Error } = {}) {
    const calls: string[] = [];
    // The in-process reader (thin-metadata.ts, tested against real metadata in thin-metadata.test.ts).
    const readMetadata = vi.fn(async (device: string, devId: number) => {
      calls.push(`read ${device} ${devId}`);
      if (opts.metadata) throw opts.metadata;
      return parseThinDumpXml(SYNTHETIC, devId);
    });
    const tables: Record<string, DmTableRow[] | Error> = {
      'vg-thin': row('0 2097152 thin 254:3 1'),
      'vg-pool-tpool': row('0 6291456 thin-pool 254:1 254:2 128 0 0'),
      'vg-thick': row('0 2097152 linear 252:16 2048'),
      'vg-pool_tdata': row('0 6291456 linear 252:16 10240'),
      ...opts.tables,
    };
    const dm: DmControl = {
      table: vi.fn(async (name: string) => {
        calls.push(`table ${name}`);
        const t = tables[name];
        if (t === undefined) throw Object.assign(new Error(`no device ${name}`), { code: 'ENXIO' });
        if (t instanceof Error) throw t;
        return t;
      }),
      message: vi.fn(async (name: string, message: string) => {
        calls.push(`message ${name} ${message}`);
        const e = opts.messages?.[`${name} ${message}`];
        if (e) throw e;
      }),
    };
    const runner = vi.fn(async (argv: readonly string[]) => {
      const key = argv.join(' ');
      calls.push(key);
      if (opts.commands?.[key]) return opts.commands[key]!;
      if (key.startsWith('thin_dump')) return ok(SYNTHETIC);
      return { stdout: '', stderr: `unexpected ${key}`, exitCode: 1 };
    });
    return { dm, runner, readMetadata, calls };
  }
  const reserve = 'message vg-pool-tpool reserve_metadata_snap';
  const readMeta = 'read /dev/mapper/vg-pool_tmeta 1';
  const dump = 'thin_dump --metadata-snap --dev-id 1 --format xml /dev/mapper/vg-pool_tmeta';
  const release = 'message vg-pool-tpool release_metadata_snap';

  it('no process: both tables at once by ioctl, then reserve, the metadata read in-process, release; names from sysfs', async () => {
    const { dm, runner, readMetadata, calls } = fakes();
    const m = await thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs() });
    expect(m?.extents[0]).toEqual([0, 18 * 64 * KiB]);
    expect(m?.readBy).toBe('metadata');
    expect(Object.keys(m?.lookupMs ?? {})).toEqual(['find', 'wait', 'reserve', 'read', 'release']);
    expect(calls).toEqual(['table vg-thin', 'table vg-pool-tpool', reserve, readMeta, release]);
    expect(runner).not.toHaveBeenCalled();
  });

  it('metadata the in-process reader refuses: thin_dump reads it, and the map says so and why', async () => {
    const { dm, runner, readMetadata, calls } = fakes({ metadata: new Error('metadata version 3 is not one this reader knows') });
    const m = await thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs() });
    expect(m).toMatchObject({ readBy: 'thin_dump', fallbackReason: 'metadata version 3 is not one this reader knows' });
    expect(m?.extents).toEqual(parseThinDumpXml(SYNTHETIC, 1).extents);
    expect(calls).toEqual(['table vg-thin', 'table vg-pool-tpool', reserve, readMeta, dump, release]);
  });

  it('without sysfs slaves it asks for the pool the thin table names, and gets the same map', async () => {
    const { dm, runner, readMetadata, calls } = fakes();
    const m = await thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs({ slaves: async () => [] }) });
    expect(m?.extents).toHaveLength(3);
    expect(calls).toEqual(['table vg-thin', 'table vg-pool-tpool', reserve, readMeta, release]);
  });

  it('a pool or metadata device sysfs cannot name: throws, reserves nothing', async () => {
    const { dm, runner, readMetadata, calls } = fakes();
    const noNames = sysfs({ slaves: async () => [], dmName: async (d) => (d.minor === 5 ? 'vg-thin' : null) });
    await expect(thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: noNames })).rejects.toThrow(/pool 254:3 has no device-mapper name/);
    const noMeta = sysfs({ dmName: async (d) => (d.minor === 1 ? null : (names[`${d.major}:${d.minor}`] ?? null)) });
    await expect(thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: noMeta })).rejects.toThrow(/metadata device 254:1/);
    expect(calls.some((c) => c.startsWith('message'))).toBe(false);
  });

  it('a slave that is not the pool the table names: the named pool is asked for', async () => {
    const { dm, runner, readMetadata, calls } = fakes();
    const wrong = sysfs({ slaves: async () => [{ major: 254, minor: 2 }] });
    await thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: wrong });
    expect(calls.slice(0, 3)).toEqual(['table vg-thin', 'table vg-pool_tdata', 'table vg-pool-tpool']);
  });

  it('a guess whose table cannot be read is only a guess: the named pool is asked for', async () => {
    const { dm, runner, readMetadata, calls } = fakes({ tables: { 'vg-pool_tdata': new Error('ENXIO') } });
    const wrong = sysfs({ slaves: async () => [{ major: 254, minor: 2 }] });
    expect(await thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: wrong })).not.toBeNull();
    expect(calls).toContain('table vg-pool-tpool');
  });

  it('the thin device’s table cannot be read (removed meanwhile): the error, not a guess', async () => {
    const { dm, runner, readMetadata, calls } = fakes({ tables: { 'vg-thin': Object.assign(new Error('no device-mapper device named vg-thin'), { code: 'ENXIO' }) } });
    await expect(thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs() })).rejects.toThrow(/vg-thin/);
    expect(calls.some((c) => c.startsWith('message'))).toBe(false);
  });

  it('releases the snapshot when neither the reader nor thin_dump can read the metadata, and throws with both reasons', async () => {
    const { dm, runner, readMetadata, calls } = fakes({ metadata: new Error('b-tree node at block 9 fails its checksum'), commands: { [dump]: { stdout: '', stderr: 'bad checksum', exitCode: 1 } } });
    await expect(thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs() })).rejects.toThrow(/block 9 fails its checksum.*bad checksum/s);
    expect(calls.at(-1)).toBe(release);
  });

  it('a pool whose snapshot is held by someone else: throws, dumps nothing, releases nothing', async () => {
    const busy = Object.assign(new Error('vg-pool-tpool is busy'), { code: 'EBUSY' });
    const { dm, runner, readMetadata, calls } = fakes({ messages: { 'vg-pool-tpool reserve_metadata_snap': busy } });
    await expect(thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs() })).rejects.toThrow(/busy/);
    expect(calls.some((c) => c.startsWith('thin_dump') || c.startsWith('read'))).toBe(false);
    expect(calls).not.toContain(release);
  });

  it('lookups on one pool take turns: one snapshot reserved at a time', async () => {
    const { dm, runner, readMetadata, calls } = fakes();
    const o = { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs() };
    await Promise.all([thinDeviceMap('/dev/vg/thin', o), thinDeviceMap('/dev/vg/thin', o)]);
    const msgs = calls.filter((c) => c.startsWith('message'));
    expect(msgs).toEqual([reserve, release, reserve, release]);
  });

  it('not thin (a linear LV, not a dm device, not a block device, an external origin): null, nothing reserved', async () => {
    const linear = fakes();
    expect(await thinDeviceMap('/dev/vg/thick', { runner: linear.runner, dm: linear.dm, readMetadata: linear.readMetadata, stat: blockDev(254, 7), sysfs: sysfs() })).toBeNull();
    expect(linear.calls).toEqual(['table vg-thick']);
    const loop = fakes();
    expect(await thinDeviceMap('/dev/loop0', { runner: loop.runner, dm: loop.dm, readMetadata: loop.readMetadata, stat: blockDev(7, 0), sysfs: sysfs() })).toBeNull();
    expect(loop.calls).toHaveLength(0);
    const file = fakes();
    expect(await thinDeviceMap('/tmp/x', { runner: file.runner, dm: file.dm, readMetadata: file.readMetadata, stat: async () => ({ isBlockDevice: () => false, rdev: 0n }), sysfs: sysfs() })).toBeNull();
    expect(file.calls).toHaveLength(0);
    const ext = fakes({ tables: { 'vg-thin': row('0 2097152 thin 254:3 1 254:9') } });
    expect(await thinDeviceMap('/dev/vg/thin', { runner: ext.runner, dm: ext.dm, readMetadata: ext.readMetadata, stat: blockDev(254, 5), sysfs: sysfs() })).toBeNull();
    expect(ext.calls.some((c) => c.startsWith('message'))).toBe(false);
  });

  it('a block size that disagrees with the pool table is refused', async () => {
    const { dm, runner, readMetadata } = fakes({ tables: { 'vg-pool-tpool': row('0 6291456 thin-pool 254:1 254:2 256 0 0') } });
    await expect(thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs() })).rejects.toThrow(/blocks/);
  });

  it('a pool with no thin-pool table is refused before anything is reserved', async () => {
    const { dm, runner, readMetadata, calls } = fakes({ tables: { 'vg-pool-tpool': row('0 6291456 linear 252:16 0') } });
    await expect(thinDeviceMap('/dev/vg/thin', { runner, dm, readMetadata, stat: blockDev(254, 5), sysfs: sysfs() })).rejects.toThrow(/thin-pool table/);
    expect(calls.some((c) => c.startsWith('message'))).toBe(false);
  });
});

describe('thinDumpRunner', () => {
  it('exit code, output, and -1 for a program that cannot start', async () => {
    expect(await thinDumpRunner(['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
    expect(await thinDumpRunner(['sh', '-c', 'echo $LC_ALL'])).toMatchObject({ stdout: 'C\n', exitCode: 0 });
    const r = await thinDumpRunner(['/nonexistent/cinderblock-no-such-program']);
    expect(r.exitCode).toBe(-1);
    expect(r.stderr).toMatch(/ENOENT/);
  });
});

describe('withThinSourceMap', () => {
  const opts: VolumeCopyOptions = { sizeBytes: 8 * MiB, sparse: true, blocksize: '1M', sync: false };
  const map = { devId: 1, blockBytes: 64 * KiB, extents: [[0, MiB]] as Array<[number, number]>, mappedBytes: MiB };

  it('passes a thin source’s map on as sourceExtents', async () => {
    const copy = vi.fn(async () => undefined);
    const onMap = vi.fn();
    await withThinSourceMap(copy, { lookup: async () => map, onMap })('/dev/vg/snap', '/dev/vg/vol', opts);
    expect(copy).toHaveBeenCalledWith('/dev/vg/snap', '/dev/vg/vol', { ...opts, sourceExtents: [[0, MiB]] });
    expect(onMap).toHaveBeenCalledWith('/dev/vg/snap', map);
  });

  it('no map (not thin) or a failed lookup: the copy reads everything, and does not fail', async () => {
    const copy = vi.fn(async () => undefined);
    await withThinSourceMap(copy, { lookup: async () => null })('/dev/vg/a', '/dev/vg/b', opts);
    expect(copy).toHaveBeenLastCalledWith('/dev/vg/a', '/dev/vg/b', opts);
    const onLookupError = vi.fn();
    await withThinSourceMap(copy, { lookup: async () => Promise.reject(new Error('EBUSY')), onLookupError })('/dev/vg/a', '/dev/vg/b', opts);
    expect(copy).toHaveBeenLastCalledWith('/dev/vg/a', '/dev/vg/b', opts);
    expect(onLookupError).toHaveBeenCalledOnce();
  });
});

// Real output from the lab guest (bench/lab/copy-lv-bench.mts captured it: thin-provisioning-tools
// 0.9, Debian's kernel 6.1): a 1 GiB thin LV with 1 MiB of data every 10 MiB and one lone 4 KiB write.
const FIX = path.join(import.meta.dirname, 'fixtures');
const fixture = (name: string) => readFileSync(path.join(FIX, name), 'utf8');
const haveFixtures = (() => {
  try {
    fixture('thin_dump-dev.xml');
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!haveFixtures)('real lab output', () => {
  it('dmsetup tables of the thin LV and its pool', () => {
    const thin = parseThinTable(fixture('thin-dmsetup-table.txt'));
    expect(thin).not.toBeNull();
    expect(thin!.externalOrigin).toBe(false);
    expect(parseThinPoolTable(fixture('thin-pool-dmsetup-table.txt'))).not.toBeNull();
  });

  it('thin_dump of the device: 103 MiB-long data ranges plus the lone 4 KiB write, rounded to a pool block', () => {
    const thin = parseThinTable(fixture('thin-dmsetup-table.txt'))!;
    const pool = parseThinPoolTable(fixture('thin-pool-dmsetup-table.txt'))!;
    const m = parseThinDumpXml(fixture('thin_dump-dev.xml'), thin.devId);
    expect(m.blockBytes).toBe(pool.blockSectors * 512);
    // 1 MiB at every 10 MiB of 1 GiB = 103 ranges; the 4 KiB write at 5 MiB + 256 KiB sits in a
    // range of its own, one pool block long
    const lone = 5 * MiB + 256 * KiB;
    expect(m.extents).toContainEqual([Math.floor(lone / m.blockBytes) * m.blockBytes, m.blockBytes]);
    const big = m.extents.filter(([, l]) => l >= MiB);
    expect(big).toHaveLength(103);
    for (const [off, len] of big) {
      expect(off % (10 * MiB)).toBe(0);
      expect(len).toBe(MiB);
    }
    expect(m.mappedBytes).toBe(103 * MiB + m.blockBytes);
  });

  it('the dump of every device in the pool gives the same map for that device', () => {
    const thin = parseThinTable(fixture('thin-dmsetup-table.txt'))!;
    expect(parseThinDumpXml(fixture('thin_dump-all.xml'), thin.devId)).toEqual(parseThinDumpXml(fixture('thin_dump-dev.xml'), thin.devId));
    const other = parseThinTable(fixture('thin-dmsetup-table-other.txt'))!;
    expect(other.devId).not.toBe(thin.devId);
    expect(parseThinDumpXml(fixture('thin_dump-all.xml'), other.devId).mappedBytes).toBeGreaterThan(0);
  });
});
