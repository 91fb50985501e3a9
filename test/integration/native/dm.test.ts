// Device-mapper control ioctls (native/dm.cc) on this host. Most hosts that run the unit and
// integration suites have no device-mapper (this dev VM's kernel has none: /dev/mapper/control
// is a node with no driver behind it, ENODEV; elsewhere it is missing, ENOENT), so what is checked
// here is that the calls say so clearly; their real answers are checked in the lab guest against
// dmsetup (tmp experiments, bench/lab/copy-lv-bench.mts through drivers/lvm/thin-map.ts).
import { openSync, closeSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { addon } from '../../../src/native/addon.js';
import { NativeError, dmMessage, dmTable } from '../../../src/native/index.js';

/** null when /dev/mapper/control opens, else the errno code opening it gives. */
function controlError(): string | null {
  try {
    closeSync(openSync('/dev/mapper/control', 'r+'));
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unknown';
  }
}
const noDm = controlError();
// EACCES/EPERM: there is a device-mapper but we may not use it; neither branch below applies.
const dmUsable = noDm === null;

describe.skipIf(dmUsable || noDm === 'EACCES' || noDm === 'EPERM')('without device-mapper', () => {
  it('dmTable rejects with the open errno and a message that says there is no device-mapper', async () => {
    const err = await dmTable('vg-thin').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect(err).toMatchObject({ code: noDm, syscall: 'open', path: '/dev/mapper/control' });
    expect((err as Error).message).toMatch(/device-mapper table of vg-thin/);
    expect((err as Error).message).toMatch(/\/dev\/mapper\/control .*no device-mapper/);
  });

  it('dmMessage too, naming the device and the message', async () => {
    const err = await dmMessage('vg-pool-tpool', 'reserve_metadata_snap').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect(err).toMatchObject({ code: noDm, syscall: 'open' });
    expect((err as Error).message).toMatch(/"reserve_metadata_snap" to device-mapper device vg-pool-tpool/);
    expect((err as Error).message).toMatch(/no device-mapper/);
  });
});

describe.skipIf(!dmUsable)('with device-mapper', () => {
  it('a name no device has: ENXIO, with the name', async () => {
    const name = `cinderblock-no-such-dev-${process.pid}`;
    const err = await dmTable(name).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENXIO', syscall: 'ioctl(DM_TABLE_STATUS)', path: name });
    expect((err as Error).message).toMatch(new RegExp(`no device-mapper device named ${name}`));
    await expect(dmMessage(name, 'x')).rejects.toMatchObject({ code: 'ENXIO', syscall: 'ioctl(DM_TARGET_MSG)' });
  });
});

describe('arguments are checked before any ioctl', () => {
  it('the facade refuses paths, empty and over-long names, bad messages and sectors', () => {
    expect(() => dmTable('/dev/mapper/vg-thin')).toThrow(RangeError);
    expect(() => dmTable('')).toThrow(RangeError);
    expect(() => dmTable('x'.repeat(128))).toThrow(RangeError);
    expect(() => dmTable('é'.repeat(64))).toThrow(RangeError); // 128 bytes in UTF-8
    expect(() => dmMessage('vg-pool', '')).toThrow(RangeError);
    expect(() => dmMessage('vg-pool', 'a\0b')).toThrow(RangeError);
    expect(() => dmMessage('vg-pool', 'x', -1)).toThrow(RangeError);
    expect(() => dmMessage('vg-pool', 'x', 0.5)).toThrow(RangeError);
  });

  it('so does the addon itself, for callers that bypass the facade', () => {
    const raw = addon() as unknown as { dmTable(n: unknown): Promise<unknown>; dmMessage(n: unknown, m: unknown, s?: unknown): Promise<unknown> };
    expect(() => raw.dmTable('a/b')).toThrow(TypeError);
    expect(() => raw.dmTable('x'.repeat(128))).toThrow(TypeError);
    expect(() => raw.dmTable(5)).toThrow(TypeError);
    expect(() => raw.dmMessage('vg', 7)).toThrow(TypeError);
    expect(() => raw.dmMessage('vg', 'x', -1)).toThrow(RangeError);
  });
});
