// multipathd / multipath argv and parsing, against output of multipath-tools 0.9.4 captured in
// the lab guest (two LIO paths to one LUN; one path offline; after a resize). fixtures/README.md.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  addPathArgv,
  flushMapArgv,
  isNotAMap,
  mapPaths,
  multipathLlArgv,
  parseMultipathLl,
  parseShowMaps,
  resizeMapArgv,
  resizeSucceeded,
  showMapsArgv,
} from '../../../src/connector/multipath-commands.js';

const fx = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const WWID = '3600140572ceadc3a1474fbaac2a97b59';

describe('multipath argv', () => {
  it('builds the commands os-brick uses', () => {
    expect(showMapsArgv()).toEqual(['multipathd', 'show', 'maps']);
    expect(multipathLlArgv()).toEqual(['multipath', '-ll']);
    expect(multipathLlArgv(WWID)).toEqual(['multipath', '-ll', WWID]);
    expect(multipathLlArgv('/dev/sdb')).toEqual(['multipath', '-ll', '/dev/sdb']);
    expect(resizeMapArgv(WWID)).toEqual(['multipathd', 'resize', 'map', WWID]);
    expect(flushMapArgv('mpatha')).toEqual(['multipath', '-f', 'mpatha']);
    expect(addPathArgv('sdc')).toEqual(['multipathd', 'add', 'path', '/dev/sdc']);
  });

  it('refuses map names that are options or paths', () => {
    expect(() => flushMapArgv('-F')).toThrow(/map name/);
    expect(() => resizeMapArgv('../x')).toThrow(/map name/);
    expect(() => resizeMapArgv('a b')).toThrow(/map name/);
    expect(() => addPathArgv('sda; reboot')).toThrow(/sd\/dm/);
  });
});

describe('multipathd show maps (captured)', () => {
  it('one map', () => {
    expect(parseShowMaps(fx('multipathd-show-maps.txt'))).toEqual([{ name: WWID, sysfs: 'dm-0', uuid: WWID }]);
  });
  it('no maps: multipathd prints "ok"', () => {
    expect(fx('multipathd-show-maps-empty.txt').trim()).toBe('ok');
    expect(parseShowMaps(fx('multipathd-show-maps-empty.txt'))).toEqual([]);
  });
});

describe('multipath -ll (captured)', () => {
  it('two active paths in one group', () => {
    const [m, ...rest] = parseMultipathLl(fx('multipath-ll.txt'));
    expect(rest).toEqual([]);
    expect(m).toMatchObject({ name: WWID, wwid: WWID, sysfs: 'dm-0', vendorProduct: 'LIO-ORG,IBLOCK', size: '64M', features: '1 queue_if_no_path', hwhandler: '1 alua', wp: 'rw' });
    expect(m!.groups).toHaveLength(1);
    expect(m!.groups[0]).toMatchObject({ policy: 'service-time 0', prio: 50, status: 'active' });
    expect(mapPaths(m!)).toEqual([
      { hctl: '2:0:0:0', dev: 'sda', devT: '8:0', dmState: 'active', checkerState: 'ready', devState: 'running' },
      { hctl: '3:0:0:0', dev: 'sdb', devT: '8:16', dmState: 'active', checkerState: 'ready', devState: 'running' },
    ]);
  });

  it('one path offline', () => {
    const m = parseMultipathLl(fx('multipath-ll-one-path-offline.txt'))[0]!;
    expect(mapPaths(m).map((p) => [p.dev, p.dmState, p.checkerState, p.devState])).toEqual([
      ['sda', 'failed', 'faulty', 'offline'],
      ['sdb', 'active', 'ready', 'running'],
    ]);
  });

  it('after multipathd resize map', () => {
    expect(parseMultipathLl(fx('multipath-ll-grown.txt'))[0]!.size).toBe('96M');
  });

  it('an alias with the WWID in brackets, and several groups', () => {
    const text = [
      'mpatha (36001405aaaa) dm-3 LIO-ORG,IBLOCK',
      "size=1.0G features='0' hwhandler='1 alua' wp=rw",
      "|-+- policy='service-time 0' prio=50 status=active",
      '| `- 4:0:0:0 sdc 8:32 active ready running',
      "`-+- policy='service-time 0' prio=10 status=enabled",
      '  `- 5:0:0:0 sdd 8:48 active ready running',
    ].join('\n');
    const m = parseMultipathLl(text)[0]!;
    expect(m).toMatchObject({ name: 'mpatha', wwid: '36001405aaaa', sysfs: 'dm-3', size: '1.0G' });
    expect(m.groups.map((g) => [g.prio, g.status, g.paths.map((p) => p.dev)])).toEqual([
      [50, 'active', ['sdc']],
      [10, 'enabled', ['sdd']],
    ]);
  });
});

describe('results', () => {
  it('resize ok / fail', () => {
    expect(resizeSucceeded(0, 'ok\n')).toBe(true);
    expect(resizeSucceeded(0, 'fail\n')).toBe(false);
    expect(resizeSucceeded(1, 'fail')).toBe(false);
  });
  it('flush of a map that is gone', () => {
    expect(isNotAMap(fx('multipath-f-not-a-map.stderr.txt'))).toBe(true);
    expect(isNotAMap('map in use')).toBe(false);
  });
});
