// Name rules and the paths derived from names, compared with cinder's own local_path and
// _escape_snapshot (run from Debian's python3-cinder).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  LvmNameError,
  assertLvName,
  assertVgName,
  cloneSnapshotName,
  escapeSnapshotName,
  exportPath,
  lvPath,
  mapperPath,
  unescapeSnapshotName,
  wipeLvName,
} from '../../../drivers/lvm/lvm-names.js';

describe('LVM name rules', () => {
  it.each(['cinder-volumes', 'vg0', 'a+b', 'a_b.c', 'x'.repeat(127)])('VG %j is accepted', (n) => {
    expect(() => assertVgName(n)).not.toThrow();
  });
  it.each(['volume-3f1c', '_snapshot-3f1c', 'clone-snap-1', 'cinder-volumes-pool', 'lvol0'])('LV %j is accepted', (n) => {
    expect(() => assertLvName(n)).not.toThrow();
  });
  it.each([
    ['', /non-empty/],
    ['-x', /must not start with '-'/],
    ['a/b', /not valid for LVM/],
    ['a b', /not valid for LVM/],
    ["a'b", /not valid for LVM/],
    ['..', /reserved/],
    ['x'.repeat(128), /at most 127/],
  ])('VG %j is refused', (n, why) => {
    expect(() => assertVgName(n)).toThrow(LvmNameError);
    expect(() => assertVgName(n)).toThrow(why);
  });
  it.each([
    ['snapshot-1', /starts with 'snapshot'/],
    ['pvmove0', /starts with 'pvmove'/],
    ['vol_tmeta', /contains '_tmeta'/],
    ['vol_mimage_0', /contains '_mimage'/],
    ['a;b', /not valid for LVM/],
  ])('LV %j is refused', (n, why) => {
    expect(() => assertLvName(n)).toThrow(why);
  });
  it('non-strings are refused', () => {
    expect(() => assertLvName(undefined)).toThrow(LvmNameError);
    expect(() => assertVgName(7)).toThrow(LvmNameError);
  });
});

describe('snapshot name escaping', () => {
  it('escapes names starting with snapshot, and only those', () => {
    expect(escapeSnapshotName('snapshot-1')).toBe('_snapshot-1');
    expect(escapeSnapshotName('_snapshot-1')).toBe('_snapshot-1');
    expect(escapeSnapshotName('volume-1')).toBe('volume-1');
    expect(escapeSnapshotName('clone-snap-1')).toBe('clone-snap-1');
    expect(unescapeSnapshotName('_snapshot-1')).toBe('snapshot-1');
    expect(unescapeSnapshotName('volume-1')).toBe('volume-1');
  });
});

describe('paths', () => {
  it('export path and vg/lv', () => {
    expect(exportPath('cinder-volumes', 'volume-1')).toBe('/dev/cinder-volumes/volume-1');
    expect(lvPath('cinder-volumes', 'volume-1')).toBe('cinder-volumes/volume-1');
    expect(() => exportPath('cinder-volumes', '../x')).toThrow(LvmNameError);
  });

  const cases: [string, string][] = [
    ['cinder-volumes', 'volume-9531a336-8b9f-4724-9d8d-d83f99b240e6'],
    ['cinder-volumes', 'snapshot-10c612be-b345-4cc4-aea6-c2eff1b586b9'],
    ['cinder-volumes', 'clone-snap-2c1076de-91eb-42f7-916f-04100b105d61'],
    ['vg0', 'volume-1'],
    ['my--vg', 'a-b--c'],
  ];

  it('local path doubles dashes (literal)', () => {
    expect(mapperPath('cinder-volumes', 'snapshot-ab-cd')).toBe('/dev/mapper/cinder--volumes-_snapshot--ab--cd');
  });

  it.skipIf(!existsSync('/usr/lib/python3/dist-packages/cinder/volume/drivers/lvm.py'))(
    "is cinder's LVMVolumeDriver.local_path, name for name",
    () => {
      const script = [
        'import json, sys, types',
        'from cinder.volume.drivers.lvm import LVMVolumeDriver as D',
        'out = []',
        'for vg, name in json.load(sys.stdin):',
        '    o = types.SimpleNamespace(configuration=types.SimpleNamespace(volume_group=vg))',
        '    o._escape_snapshot = lambda n: D._escape_snapshot(o, n)',
        "    out.append(D.local_path(o, {'name': name}))",
        'print(json.dumps(out))',
      ].join('\n');
      const py = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' })) as string[];
      expect(cases.map(([vg, n]) => mapperPath(vg, n))).toEqual(py);
    },
    30_000,
  );
});

describe('temporary LV names', () => {
  it("a clone's temporary snapshot is cinder's clone-snap-<new volume id>", () => {
    expect(cloneSnapshotName('0b8d6c3e-1f0a-4a52-9a2f-4a7d1c4c8e11')).toBe('clone-snap-0b8d6c3e-1f0a-4a52-9a2f-4a7d1c4c8e11');
  });
  it("a revert's wipe LV is _cinderblock-wipe-<snapshot id>, a valid LV name", () => {
    const n = wipeLvName('5555eeee-0000-4000-8000-000000000007');
    expect(n).toBe('_cinderblock-wipe-5555eeee-0000-4000-8000-000000000007');
    expect(() => assertLvName(n)).not.toThrow();
  });
  it('a hostile id never makes a name', () => {
    expect(() => wipeLvName('a/../b')).toThrow(LvmNameError);
    expect(() => cloneSnapshotName('x y')).toThrow(LvmNameError);
  });
});
