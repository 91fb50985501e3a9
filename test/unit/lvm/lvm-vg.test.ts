// The volume-group layer: one report per refresh with a short cache, and cinder's retries. The
// failures here are INJECTED through the runner (FakeLvm.inject / scripted runners): exit code
// 139 for LVM's crash (LP #1901783), failing lvremove / lvchange, an LV that stays active.
import { describe, expect, it } from 'vitest';
import { LvmVolumeGroup } from '../../../drivers/lvm/lvm-vg.js';
import { LvmCommandError, withSegfaultRetry, type LvmRunner } from '../../../drivers/lvm/lvm-runner.js';
import { FakeLvm } from './fake-lvm.js';

const GiB = 1024 ** 3;
const VG = 'cinder-volumes';

function setup(opts: { ttl?: number } = {}) {
  const fake = new FakeLvm(VG, [10 * GiB]);
  const sleeps: number[] = [];
  let clock = 1_000_000;
  const vg = new LvmVolumeGroup({
    vgName: VG,
    runner: fake.runner,
    cacheTtlMs: opts.ttl ?? 1500,
    sleep: async (ms) => void sleeps.push(ms),
    now: () => clock,
  });
  return { fake, vg, sleeps, tick: (ms: number) => void (clock += ms) };
}

const is = (prog: string, ...rest: string[]) => (argv: readonly string[]) => argv[0] === prog && rest.every((r, i) => argv[i + 1] === r);

describe('state: one report per refresh', () => {
  it('serves repeated reads from one fullreport within the TTL', async () => {
    const { fake, vg } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB });
    fake.addLv({ name: 'volume-2', sizeBytes: GiB });
    await vg.getLv('volume-1');
    await vg.getLv('volume-2');
    await vg.report();
    expect(fake.reportCount).toBe(1);
    expect(vg.reportsRead).toBe(1);
  });

  it('concurrent readers share one command', async () => {
    const { fake, vg } = setup();
    await Promise.all([vg.report(), vg.report(), vg.getLv('x'), vg.getLv('y')]);
    expect(fake.reportCount).toBe(1);
  });

  it('reads again after the TTL, and on fresh', async () => {
    const { fake, vg, tick } = setup();
    await vg.report();
    tick(1499);
    await vg.report();
    expect(fake.reportCount).toBe(1);
    tick(2);
    await vg.report();
    expect(fake.reportCount).toBe(2);
    await vg.report({ fresh: true });
    expect(fake.reportCount).toBe(3);
  });

  it('every change drops the cache, even a failed one', async () => {
    const { fake, vg } = setup();
    await vg.report();
    await vg.createVolume('volume-1', 1);
    expect((await vg.getLv('volume-1'))?.sizeBytes).toBe(GiB);
    expect(fake.reportCount).toBe(2);
    await expect(vg.createVolume('volume-1', 1)).rejects.toThrow(/already exists/);
    await vg.report();
    expect(fake.reportCount).toBe(3);
  });

  it('a read that started before a change is not cached as current', async () => {
    const { fake, vg } = setup();
    const before = vg.report();
    await vg.createVolume('volume-1', 1); // runs while the read is in flight
    await before;
    expect((await vg.getLv('volume-1'))).not.toBeNull();
    expect(fake.reportCount).toBe(2);
  });

  it('a missing VG is VolumeGroupNotFound', async () => {
    const { fake, vg } = setup();
    fake.vgExists = false;
    await expect(vg.report()).rejects.toMatchObject({ className: 'VolumeGroupNotFound', message: 'Unable to find Volume Group: cinder-volumes' });
    expect(await vg.exists()).toBe(false);
  });

  it('reads the LVM version once', async () => {
    const { fake, vg } = setup();
    expect(await vg.version()).toEqual([2, 3, 16]);
    expect(await vg.supportsThin()).toBe(true);
    expect(await vg.supportsIgnoreSkipActivation()).toBe(true);
    expect(fake.calls.filter((c) => c[1] === 'version')).toHaveLength(1);
  });
});

describe('exit code 139 is retried (injected)', () => {
  it('three attempts, 0.5 s then 0.25 s apart, like cinder', async () => {
    const { fake, vg, sleeps } = setup();
    fake.inject(is('lvm', 'fullreport'), { exitCode: 139, stderr: 'Segmentation fault\n' }, 2);
    await vg.report();
    expect(fake.reportCount).toBe(3);
    expect(sleeps).toEqual([500, 250]);
  });

  it('gives up after three crashes', async () => {
    const { fake, vg } = setup();
    fake.inject(is('lvcreate'), { exitCode: 139 }, 3);
    await expect(vg.createVolume('volume-1', 1)).rejects.toMatchObject({ exitCode: 139 });
    expect(fake.calls.filter((c) => c[0] === 'lvcreate')).toHaveLength(3);
  });

  it('other exit codes are not retried by the runner wrapper', async () => {
    const calls: string[] = [];
    const runner: LvmRunner = async (argv) => (calls.push(argv.join(' ')), { stdout: '', stderr: 'no', exitCode: 5 });
    const r = await withSegfaultRetry(runner, { sleep: async () => undefined })(['lvs']);
    expect(r.exitCode).toBe(5);
    expect(calls).toHaveLength(1);
  });
});

describe("lvremove: cinder's retry sequence (failures injected)", () => {
  it('first failure: udevadm settle, then lvremove with ignore_suspended_devices', async () => {
    const { fake, vg } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB });
    fake.inject(is('lvremove'), { stderr: '  Logical volume cinder-volumes/volume-1 in use.\n' }, 1);
    await vg.remove('volume-1');
    expect(fake.changes).toEqual([
      "lvremove --config activation { retry_deactivation = 1}  -f cinder-volumes/volume-1",
      'udevadm settle',
      'lvremove --config activation { retry_deactivation = 1} devices { ignore_suspended_devices = 1} -f cinder-volumes/volume-1',
    ]);
    expect(fake.lvs.has('volume-1')).toBe(false);
  });

  it('both attempts failing: the whole sequence is tried 3 times, 1 s then 2 s apart, then fails', async () => {
    const { fake, vg, sleeps } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB });
    fake.inject(is('lvremove'), { stderr: 'busy\n' }, 6);
    await expect(vg.remove('volume-1')).rejects.toBeInstanceOf(LvmCommandError);
    expect(fake.changes.filter((c) => c.startsWith('lvremove'))).toHaveLength(6);
    expect(fake.changes.filter((c) => c === 'udevadm settle')).toHaveLength(3);
    expect(sleeps).toEqual([1000, 2000]);
  });

  it('recovers on the second round', async () => {
    const { fake, vg, sleeps } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB });
    fake.inject(is('lvremove'), { stderr: 'busy\n' }, 2);
    await vg.remove('volume-1');
    expect(sleeps).toEqual([1000]);
    expect(fake.lvs.has('volume-1')).toBe(false);
  });
});

describe('activation and deactivation', () => {
  it('activate is tried 5 times, 1/2/4/8 s apart (failures injected)', async () => {
    const { fake, vg, sleeps } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB, active: false });
    fake.inject(is('lvchange'), { stderr: 'device busy\n' }, 4);
    await vg.activate('volume-1');
    expect(sleeps).toEqual([1000, 2000, 4000, 8000]);
    expect(fake.lvs.get('volume-1')!.active).toBe(true);
  });

  it('activate fails after 5 attempts', async () => {
    const { fake, vg } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB, active: false });
    fake.inject(is('lvchange'), {}, 5);
    await expect(vg.activate('volume-1')).rejects.toBeInstanceOf(LvmCommandError);
  });

  it('escapes snapshot names as cinder does', async () => {
    const { fake, vg } = setup();
    fake.addLv({ name: '_snapshot-1', sizeBytes: GiB, kind: 'thin', pool: 'p', active: false, skipActivation: true });
    await vg.activate('snapshot-1', { isSnapshot: true });
    expect(fake.changes).toEqual(['lvchange -a y --yes -K cinder-volumes/_snapshot-1']);
  });

  it('old LVM: neither -K nor -k', async () => {
    const { fake, vg } = setup();
    fake.version = '2.02.98(2) (2012-10-15)';
    fake.addLv({ name: 'volume-1', sizeBytes: GiB, active: false });
    await vg.activate('volume-1', { permanent: true });
    expect(fake.changes).toEqual(['lvchange -a y --yes cinder-volumes/volume-1']);
  });

  it('deactivate waits until the report shows the LV inactive', async () => {
    const { fake, vg } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB });
    await vg.deactivate('volume-1');
    expect(fake.changes).toEqual(['lvchange -a n cinder-volumes/volume-1']);
    expect(fake.lvs.get('volume-1')!.active).toBe(false);
  });

  it('an LV that stays active is VolumeNotDeactivated after 5 looks (injected: lvchange does nothing)', async () => {
    const { fake, vg, sleeps } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB });
    fake.inject(is('lvchange', '-a', 'n'), { exitCode: 0, stderr: '' }, 1);
    await expect(vg.deactivate('volume-1')).rejects.toMatchObject({ className: 'VolumeNotDeactivated' });
    expect(sleeps).toEqual([1000, 2000, 4000, 8000]);
    expect(fake.reportCount).toBe(5);
  });
});

describe('snapshots, extend, pool', () => {
  it('thick snapshot size is the origin size as lvs prints it', async () => {
    const { fake, vg } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: 2 * GiB });
    await vg.createSnapshot('_snapshot-1', 'volume-1', { thin: false });
    expect(fake.changes).toEqual(['lvcreate --name _snapshot-1 --snapshot cinder-volumes/volume-1 -L 2.00g']);
  });

  it('snapshot of a missing LV is VolumeDeviceNotFound, not retried', async () => {
    const { fake, vg, sleeps } = setup();
    await expect(vg.createSnapshot('_snapshot-1', 'volume-x', { thin: false })).rejects.toMatchObject({ className: 'VolumeDeviceNotFound' });
    expect(sleeps).toEqual([]);
    expect(fake.changes).toEqual([]);
  });

  it('a failing snapshot lvcreate is tried 3 times (injected)', async () => {
    const { fake, vg, sleeps } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB });
    fake.inject(is('lvcreate'), {}, 2);
    await vg.createSnapshot('_snapshot-1', 'volume-1', { thin: false });
    expect(sleeps).toEqual([1000, 2000]);
  });

  it('extend of an origin with thick snapshots deactivates around lvextend', async () => {
    const { fake, vg } = setup();
    fake.addLv({ name: 'volume-1', sizeBytes: GiB });
    fake.addLv({ name: '_snapshot-1', sizeBytes: GiB, kind: 'snapshot', origin: 'volume-1' });
    await vg.extend('volume-1', '2g');
    expect(fake.changes).toEqual([
      'lvchange -a n cinder-volumes/volume-1',
      'lvextend -L 2g cinder-volumes/volume-1',
      'lvchange -a y --yes -K cinder-volumes/volume-1',
    ]);
  });

  it('thin pool of 95% of the free space, in Python float notation', async () => {
    const { fake, vg } = setup();
    fake.pvs = [{ name: '/dev/vda', sizeBytes: 3 * GiB }];
    expect(await vg.createThinPool()).toBe('2.8499999999999996g');
    expect(fake.changes).toEqual(['lvcreate -T -L 2.8499999999999996g cinder-volumes/cinder-volumes-pool']);
  });
});

describe('extents and waiting for a merge', () => {
  it('pvSegments reads the VG\'s runs of extents, held and free, each time anew', async () => {
    const { fake, vg } = setup();
    fake.addLv({ name: 'volume-a', sizeBytes: GiB });
    const segs = await vg.pvSegments();
    expect(segs.map((x) => [x.pv, x.start, x.count, x.lv])).toEqual([['/dev/vda', 0, 256, 'volume-a'], ['/dev/vda', 256, 2304, '']]);
    await vg.pvSegments();
    expect(fake.calls.filter((c) => c[0] === 'pvs')).toHaveLength(2);
  });

  it('createOnExtents allocates exactly there and drops the cached report', async () => {
    const { fake, vg } = setup();
    await vg.report();
    await vg.createOnExtents('_cinderblock-wipe-x', [{ pv: '/dev/vda', start: 100, count: 10 }]);
    expect(fake.segs.get('_cinderblock-wipe-x')).toEqual([{ pv: '/dev/vda', start: 100, count: 10, lvStart: 0 }]);
    expect((await vg.getLv('_cinderblock-wipe-x'))?.sizeBytes).toBe(40 * 1024 ** 2);
  });

  it('waitGone looks until the LV is gone, backing off to 5 s', async () => {
    const { fake, vg, sleeps, tick } = setup();
    fake.addLv({ name: 'snap', sizeBytes: GiB });
    let reads = 0;
    fake.afterCommand = (argv) => {
      if (argv[1] === 'fullreport' && ++reads === 5) fake.dropLv('snap');
      tick(100);
    };
    expect(await vg.waitGone('snap', 60_000)).toBe(true);
    expect(sleeps).toEqual([500, 1000, 2000, 4000, 5000]);
  });

  it('waitGone gives up after the time limit', async () => {
    const { fake, vg, tick } = setup();
    fake.addLv({ name: 'snap', sizeBytes: GiB });
    fake.afterCommand = () => tick(2000);
    expect(await vg.waitGone('snap', 5000)).toBe(false);
    expect(await vg.waitGone('other', 0)).toBe(true);
  });
});
