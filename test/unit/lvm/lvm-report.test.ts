// Report parsing on real LVM output: host-*.json captured on this machine from a loop-device VG
// (metadata only; fixtures/capture-host.sh regenerates them) and guest-*.json captured in the lab
// guest (real device-mapper: thin pool, thin volumes and snapshots, thick snapshot, thin clone).
// The number formatting is compared with Python itself, since cinder's figures are Python floats.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  extentCount,
  firstExtents,
  formatLvmGiB,
  freeExtentsWithin,
  holdersWithin,
  lvExtents,
  toLvInfo,
  parsePvSegments,
  hasThickSnapshots,
  isThickSnapshot,
  isThinPool,
  lvmGiB,
  parseCinderLvs,
  parseCinderPvs,
  parseCinderVgs,
  parseFullReport,
  parseLvmVersion,
  parseLvsJson,
  parsePvsJson,
  parseThinPoolFree,
  parseVgsJson,
  pyFloatRepr,
  pyRound,
  toFixedHalfEven,
  versionAtLeast,
  LvmReportError,
} from '../../../drivers/lvm/lvm-report.js';

const fx = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('lvm version', () => {
  it('parses the host LVM', () => {
    expect(parseLvmVersion(fx('host-lvm-version.txt'))).toEqual([2, 3, 16]);
  });
  it('parses older and customised version strings as cinder does', () => {
    expect(parseLvmVersion('  LVM version:     2.02.95(2)-RHEL6 (2012-05-16)\n')).toEqual([2, 2, 95]);
    expect(parseLvmVersion('  LVM version:     2.02.100(2)-git (2013-07-23)\n')).toEqual([2, 2, 100]);
    expect(parseLvmVersion('nothing here')).toBeNull();
  });
  it('compares versions as tuples', () => {
    expect(versionAtLeast([2, 3, 16], [2, 2, 95])).toBe(true);
    expect(versionAtLeast([2, 2, 95], [2, 2, 95])).toBe(true);
    expect(versionAtLeast([2, 2, 94], [2, 2, 95])).toBe(false);
    expect(versionAtLeast([2, 2, 98], [2, 2, 99])).toBe(false);
    expect(versionAtLeast([3, 0, 0], [2, 2, 99])).toBe(true);
  });
});

describe('host reports (loop-device VG, metadata only)', () => {
  it('fullreport: VG, PV and LVs with exact byte sizes', () => {
    const r = parseFullReport(fx('host-fullreport.json'), 'cbfix-vg');
    expect(r).not.toBeNull();
    expect(r!.sizeBytes).toBe(3 * 1024 ** 3);
    expect(r!.freeBytes).toBe(3 * 1024 ** 3 - 1024 ** 3 - 128 * 1024 ** 2);
    expect(r!.extentSizeBytes).toBe(4 * 1024 ** 2);
    expect(r!.lvCount).toBe(2);
    expect(r!.pvs).toEqual([expect.objectContaining({ name: '/dev/loopX', vg: 'cbfix-vg', sizeBytes: 3 * 1024 ** 3 })]);
    expect(r!.lvs.map((l) => [l.name, l.sizeBytes])).toEqual([
      ['volume-11111111-2222-3333-4444-555555555555', 1024 ** 3],
      ['volume-66666666-7777-8888-9999-000000000000', 128 * 1024 ** 2],
    ]);
    // no device-mapper on the host: LVM cannot tell whether an LV is active ("X" in lv_attr)
    expect(r!.lvs[0]!.attr).toBe('-wi-XX----');
    expect(r!.lvs[0]!.active).toBe(false);
    expect(r!.lvs[0]!.dmPath).toBe('/dev/mapper/cbfix--vg-volume--11111111--2222--3333--4444--555555555555');
  });

  it('fullreport of another VG name is null', () => {
    expect(parseFullReport(fx('host-fullreport.json'), 'cinder-volumes')).toBeNull();
  });

  it('vgs, lvs and pvs JSON agree with the fullreport', () => {
    const full = parseFullReport(fx('host-fullreport.json'), 'cbfix-vg')!;
    const [vg] = parseVgsJson(fx('host-vgs.json'));
    expect(vg).toEqual(expect.objectContaining({ name: full.name, uuid: full.uuid, sizeBytes: full.sizeBytes, freeBytes: full.freeBytes }));
    const lvs = parseLvsJson(fx('host-lvs.json'));
    expect(lvs.map(({ vg: v, ...rest }) => (expect(v).toBe('cbfix-vg'), rest))).toEqual(full.lvs);
    expect(parsePvsJson(fx('host-pvs.json'))).toEqual(full.pvs);
  });

  it("our GiB figures from bytes are the ones cinder parses from `--unit=g` on the same VG", () => {
    const full = parseFullReport(fx('host-fullreport.json'), 'cbfix-vg')!;
    const [cvg] = parseCinderVgs(fx('host-cinder-vgs.txt'));
    expect(cvg).toEqual({ name: 'cbfix-vg', size: lvmGiB(full.sizeBytes), available: lvmGiB(full.freeBytes), lv_count: 2, uuid: full.uuid });
    const clvs = parseCinderLvs(fx('host-cinder-lvs.txt'));
    expect(clvs.map((l) => l.size)).toEqual(full.lvs.map((l) => formatLvmGiB(l.sizeBytes)));
    // 128 MiB = 0.125 GiB exactly: printf rounds the tie to even
    expect(clvs[1]!.size).toBe('0.12');
    const [cpv] = parseCinderPvs(fx('host-cinder-pvs.txt'), 'cbfix-vg');
    expect(cpv).toEqual({ vg: 'cbfix-vg', name: '/dev/loopX', size: lvmGiB(full.pvs[0]!.sizeBytes), available: lvmGiB(full.pvs[0]!.freeBytes) });
  });
});

describe('guest reports (lab VM, real device-mapper)', () => {
  const r = parseFullReport(fx('guest-fullreport-thin-thick.json'), 'cinder-volumes')!;
  const lv = (n: string) => r.lvs.find((l) => l.name === n)!;

  it('lists the visible LVs only: the pool yes, its _tdata/_tmeta and the pmspare no', () => {
    expect(r.lvs.map((l) => l.name)).toEqual(['_snapshot-s1', '_snapshot-t1', 'cinder-volumes-pool', 'volume-a', 'volume-c', 'volume-t']);
    expect(r.lvCount).toBe(6);
    expect(r.snapCount).toBe(1);
  });

  it('decodes types from lv_attr as cinder does', () => {
    expect(hasThickSnapshots(lv('volume-a'))).toBe(true); // owi-a-s---
    expect(isThickSnapshot(lv('_snapshot-s1'))).toBe(true); // swi-a-s---
    expect(isThinPool(lv('cinder-volumes-pool'))).toBe(true);
    // a thin origin with thin snapshots is `V`: cinder's lv_has_snapshot says no
    expect(hasThickSnapshots(lv('volume-t'))).toBe(false);
    expect(isThickSnapshot(lv('_snapshot-t1'))).toBe(false);
    expect(lv('_snapshot-t1').role).toContain('thinsnapshot');
  });

  it('reads activation, open, skip-activation, pool and origin', () => {
    expect(lv('volume-a').active).toBe(true);
    expect(lv('cinder-volumes-pool').open).toBe(true);
    expect(lv('_snapshot-t1').skipActivation).toBe(true);
    expect(lv('volume-c').skipActivation).toBe(false); // activated with -k n
    expect(lv('volume-c').origin).toBe('volume-t');
    expect(lv('volume-c').poolLv).toBe('cinder-volumes-pool');
    expect(lv('cinder-volumes-pool').dataPercent).toBe(3.43);
    expect(lv('cinder-volumes-pool').path).toBe('');
    expect(lv('volume-a').dataPercent).toBeNull();
  });

  it('thin pool free space as cinder computes it from `lvs -o size,data_percent` ("2.84:3.43" in the same guest)', () => {
    const pool = lv('cinder-volumes-pool');
    expect(formatLvmGiB(pool.sizeBytes)).toBe('2.84');
    expect(parseThinPoolFree('  2.84:3.43\n')).toBe(2.74);
  });

  it('an empty VG has no LVs', () => {
    const e = parseFullReport(fx('guest-fullreport-empty-vg.json'), 'cinder-volumes')!;
    expect(e.lvs).toEqual([]);
    expect(e.freeBytes).toBe(e.sizeBytes);
  });
});

describe('malformed reports fail loudly', () => {
  it('not JSON', () => expect(() => parseFullReport('oops', 'x')).toThrow(LvmReportError));
  it('wrong shape', () => expect(() => parseFullReport('{"report": 3}', 'x')).toThrow(/unexpected report shape/));
  it('sizes not in bytes', () => {
    const text = JSON.stringify({ report: [{ vg: [{ vg_name: 'x', vg_size: '2.00g', vg_free: '0' }], lv: [] }] });
    expect(() => parseFullReport(text, 'x')).toThrow(/--units b --nosuffix/);
  });
});

describe('numbers as LVM (printf) and cinder (Python) produce them', () => {
  it('%.2f ties to even on the exact value', () => {
    expect(toFixedHalfEven(0.125, 2)).toBe('0.12');
    expect(toFixedHalfEven(0.375, 2)).toBe('0.38');
    expect(toFixedHalfEven(2.675, 2)).toBe('2.67'); // 2.675 is 2.67499999... in binary
    expect(toFixedHalfEven(1.005, 2)).toBe('1.00');
    expect(toFixedHalfEven(0, 2)).toBe('0.00');
    expect(toFixedHalfEven(-0.125, 2)).toBe('-0.12');
    expect(formatLvmGiB(2143289344)).toBe('2.00');
  });

  it('Python repr of floats', () => {
    expect(pyFloatRepr(19)).toBe('19.0');
    expect(pyFloatRepr(3 * 0.95)).toBe('2.8499999999999996');
    expect(pyFloatRepr(0.1 + 0.2)).toBe('0.30000000000000004');
    expect(pyFloatRepr(1e-5)).toBe('1e-05');
    expect(pyFloatRepr(1.5e16)).toBe('1.5e+16');
    expect(pyFloatRepr(0)).toBe('0.0');
  });

  it('agree with Python on many values (round(x, 2), repr(x), "%.2f" % x)', () => {
    const values: number[] = [0.125, 0.375, 2.675, 1.005, 2.84 - (2.84 / 100) * 3.43, 3.14 * 0.95, 8.0 * 0.95, 7.99 * 0.95, 1e-5, 123456.785];
    let seed = 42;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 300; i++) values.push(Math.round(rnd() * 10 ** (1 + (i % 6))) / 1000);
    for (let i = 0; i < 100; i++) values.push(Math.floor(rnd() * 2 ** 20) * 4 * 1024 ** 2 / 1024 ** 3); // extent multiples in GiB
    for (let i = 0; i < 100; i++) values.push(lvmGiB(Math.floor(rnd() * 4096) * 4 * 1024 ** 2) * 0.95);
    const py = execFileSync(
      '/usr/bin/python3',
      ['-c', 'import sys,json\nfor x in map(float, json.load(sys.stdin)): print(repr(round(x, 2)), repr(x), "%.2f" % x)'],
      { input: JSON.stringify(values), encoding: 'utf8' },
    ).trim().split('\n');
    values.forEach((x, i) => {
      const [r, repr, f] = py[i]!.split(' ');
      expect(pyFloatRepr(pyRound(x, 2)), `round(${repr}, 2)`).toBe(r);
      expect(pyFloatRepr(x)).toBe(repr);
      expect(toFixedHalfEven(x, 2), `"%.2f" % ${repr}`).toBe(f);
    });
  });
});

describe('physical segments (pvs --segments, captured in the lab guest with a thick snapshot)', () => {
  const segs = parsePvSegments(fx('guest-pvs-segments.json'));

  it('parses every run, held and free, in extents, with pe_start and the extent size in bytes', () => {
    expect(segs.map((x) => [x.pv, x.start, x.count, x.lv, x.lvStart])).toEqual([
      ['/dev/vda', 0, 16, 'filler', 0],
      ['/dev/vda', 16, 64, 'volume-o', 0],
      ['/dev/vda', 80, 64, '_snapshot-s', 0],
      ['/dev/vda', 144, 1903, '', 0],
    ]);
    expect(segs[2]).toMatchObject({ peStartBytes: 1048576, extentSizeBytes: 4194304, lvUuid: 'jyAeur-mspR-0b68-m3dU-c3BK-O9JG-mAuM3N' });
  });

  it("a thick snapshot's extents are its exception store's", () => {
    expect(lvExtents(segs, '_snapshot-s')).toEqual([{ pv: '/dev/vda', start: 80, count: 64 }]);
    expect(lvExtents(segs, 'nope')).toEqual([]);
  });

  it("an LV's extents come in the LV's own order, whatever the PV order", () => {
    const row = (pv: string, start: number, count: number, lv: string, lvStart: number) =>
      ({ pv, pvUuid: '', peStartBytes: 0, extentSizeBytes: 4, start, count, lv, lvUuid: '', lvStart });
    const split = [row('/dev/a', 0, 10, 'x', 20), row('/dev/a', 10, 5, '', 0), row('/dev/b', 3, 20, 'x', 0)];
    expect(lvExtents(split, 'x')).toEqual([{ pv: '/dev/b', start: 3, count: 20 }, { pv: '/dev/a', start: 0, count: 10 }]);
  });

  it('the first n extents of a list of ranges', () => {
    const r = [{ pv: '/dev/b', start: 3, count: 20 }, { pv: '/dev/a', start: 0, count: 10 }];
    expect(firstExtents(r, 5)).toEqual([{ pv: '/dev/b', start: 3, count: 5 }]);
    expect(firstExtents(r, 25)).toEqual([{ pv: '/dev/b', start: 3, count: 20 }, { pv: '/dev/a', start: 0, count: 5 }]);
    expect(firstExtents(r, 99)).toEqual(r);
    expect(extentCount(r)).toBe(30);
  });

  it('which recorded extents are free now: only those, split around any taken since', () => {
    const row = (start: number, count: number, lv: string) =>
      ({ pv: '/dev/a', pvUuid: '', peStartBytes: 0, extentSizeBytes: 4, start, count, lv, lvUuid: '', lvStart: 0 });
    const recorded = [{ pv: '/dev/a', start: 10, count: 20 }, { pv: '/dev/b', start: 0, count: 4 }];
    const now = [row(0, 12, 'v'), row(12, 5, ''), row(17, 3, 'intruder'), row(20, 100, '')];
    expect(freeExtentsWithin(recorded, now)).toEqual([{ pv: '/dev/a', start: 12, count: 5 }, { pv: '/dev/a', start: 20, count: 10 }]);
    expect(freeExtentsWithin(lvExtents(segs, '_snapshot-s'), segs)).toEqual([]);
    const afterMerge = segs.map((x) => (x.lv === '_snapshot-s' ? { ...x, lv: '' } : x));
    expect(freeExtentsWithin(lvExtents(segs, '_snapshot-s'), afterMerge)).toEqual([{ pv: '/dev/vda', start: 80, count: 64 }]);
  });

  it('who holds recorded extents now (the LVs that may read their old data)', () => {
    const row = (start: number, count: number, lv: string) =>
      ({ pv: '/dev/a', pvUuid: '', peStartBytes: 0, extentSizeBytes: 4, start, count, lv, lvUuid: '', lvStart: 0 });
    const recorded = [{ pv: '/dev/a', start: 10, count: 20 }, { pv: '/dev/b', start: 0, count: 4 }];
    const now = [row(0, 12, 'v'), row(12, 5, ''), row(17, 3, 'intruder'), row(20, 100, '')];
    expect(holdersWithin(recorded, now)).toEqual([{ lv: 'v', pv: '/dev/a', start: 10, count: 2 }, { lv: 'intruder', pv: '/dev/a', start: 17, count: 3 }]);
    expect(holdersWithin(recorded, [row(12, 5, '')])).toEqual([]);
  });
});

describe('LV tags', () => {
  const base = { lv_name: 'volume-a', lv_attr: '-wi-a-----', lv_size: '1073741824' };
  it('lv_tags is a comma-separated list (LVM\'s list_item_separator); absent or empty is none', () => {
    expect(toLvInfo({ ...base, lv_tags: 'cinderblock_wipe_x_1+2,backup' }).tags).toEqual(['cinderblock_wipe_x_1+2', 'backup']);
    expect(toLvInfo({ ...base, lv_tags: '' }).tags).toEqual([]);
    expect(toLvInfo(base).tags).toEqual([]);
  });
  it('a tag changes nothing else read from the LV (attr, origin, activity)', () => {
    const plain = toLvInfo(base);
    const tagged = toLvInfo({ ...base, lv_tags: 'cinderblock_wipe_x_1+2' });
    expect({ ...tagged, tags: [] }).toEqual(plain);
    expect(hasThickSnapshots(tagged)).toBe(false);
    expect(isThickSnapshot(tagged)).toBe(false);
  });
});
