// argv as cinder runs qemu-img (under prlimit for info), and the info parser on qemu-img 7.2's
// own output (fixtures/ were written by `qemu-img info -f <fmt> --output=json`).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseQemuImgInfo, qemuImgConvertArgv, qemuImgInfoArgv } from '../../../src/image/qemu-img-commands.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

describe('qemu-img argv', () => {
  it('runs info under the address-space and CPU limits', () => {
    expect(qemuImgInfoArgv('/var/lib/cinder/conversion/x', 'qcow2', { cpuSeconds: 60, addressSpaceGiB: 1 })).toEqual([
      'prlimit', '--as=1073741824', '--cpu=60', '--', 'qemu-img', 'info', '-f', 'qcow2', '--output=json', '/var/lib/cinder/conversion/x',
    ]);
  });
  it('converts into the existing volume, compressed when asked', () => {
    expect(qemuImgConvertArgv({ source: '/c/img', sourceFormat: 'qcow2', dest: '/dev/vg/volume-1', destFormat: 'raw', targetExists: true, cacheNone: true })).toEqual([
      'qemu-img', 'convert', '-t', 'none', '-n', '-f', 'qcow2', '-O', 'raw', '/c/img', '/dev/vg/volume-1',
    ]);
    expect(qemuImgConvertArgv({ source: '/dev/vg/v', sourceFormat: 'raw', dest: '/c/up', destFormat: 'qcow2', compress: true })).toEqual([
      'qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', '/dev/vg/v', '/c/up',
    ]);
  });
  it('refuses a format or a path that could become an option', () => {
    expect(() => qemuImgInfoArgv('/x', '--help', { cpuSeconds: 1, addressSpaceGiB: 1 })).toThrow(/not a qemu-img format/);
    expect(() => qemuImgConvertArgv({ source: '-o', sourceFormat: 'raw', dest: '/d', destFormat: 'raw' })).toThrow(/absolute/);
  });
});

describe('parseQemuImgInfo', () => {
  it('reads a plain qcow2', () => {
    expect(parseQemuImgInfo(fixture('qemu-img-info-qcow2.json'))).toEqual({
      format: 'qcow2', virtualSize: 67108864, actualSize: 200704, backingFile: null, dataFile: null, vmdkCreateType: null, encrypted: false,
    });
  });
  it('finds the backing file and the data file', () => {
    expect(parseQemuImgInfo(fixture('qemu-img-info-qcow2-backing.json')).backingFile).toBe('/etc/hostname');
    expect(parseQemuImgInfo(fixture('qemu-img-info-qcow2-datafile.json')).dataFile).toBe('/tmp/qi/data.raw');
  });
  it("reads a VMDK's create-type", () => {
    expect(parseQemuImgInfo(fixture('qemu-img-info-vmdk.json'))).toMatchObject({ format: 'vmdk', vmdkCreateType: 'streamOptimized' });
  });
  it('refuses output that is not info JSON', () => {
    expect(() => parseQemuImgInfo('qemu-img: Could not open')).toThrow(/did not print JSON/);
    expect(() => parseQemuImgInfo('{}')).toThrow(/no format/);
  });
});
