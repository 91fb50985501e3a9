// The LVM command layer and driver against REAL LVM on this host: a volume group on a loop device.
// This kernel has no device-mapper, so only metadata works: the private lvm.conf (handed to the
// runner as lvm_conf_file, i.e. LVM_SYSTEM_DIR) sets global/activation=0 and a device filter that
// shows LVM only our loop device. Thin pools, snapshots and data need the lab (test/lab).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriverVolume } from '../../../drivers/driver.js';
import { lvsInfoArgv, pvsInfoArgv, vgsInfoArgv } from '../../../drivers/lvm/lvm-commands.js';
import { LvmVolumeDriver } from '../../../drivers/lvm/lvm-driver.js';
import { LvmNameError } from '../../../drivers/lvm/lvm-names.js';
import { formatLvmGiB, lvmGiB, parseCinderLvs, parseCinderPvs, parseCinderVgs } from '../../../drivers/lvm/lvm-report.js';
import { LvmCommandError, lvmCommandRunner, lvmEnvironment, runChecked, withSegfaultRetry, type LvmRunner } from '../../../drivers/lvm/lvm-runner.js';
import { LvmVolumeGroup } from '../../../drivers/lvm/lvm-vg.js';

const GiB = 1024 ** 3;
const canRun =
  process.getuid?.() === 0 && existsSync('/sbin/lvm') && existsSync('/sbin/losetup') && existsSync('/dev/loop-control');

const VG = `cbit-${process.pid}`;
let dir = '';
let loop = '';
let confFile = '';
let runner: LvmRunner;

function lvm(args: string[]): string {
  return execFileSync(args[0]!, args.slice(1), {
    env: { ...process.env, LC_ALL: 'C', LVM_SYSTEM_DIR: dir, LVM_SUPPRESS_FD_WARNINGS: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function vol(id: string, size = 1): DriverVolume {
  return { id, name: `volume-${id}`, size, providerLocation: null, providerAuth: null, multiattach: false };
}

function driver(extra: Partial<ConstructorParameters<typeof LvmVolumeDriver>[0]> = {}): LvmVolumeDriver {
  return new LvmVolumeDriver({ volumeGroup: VG, lvmType: 'default', lvmConfFile: confFile, lvmSuppressFdWarnings: true, backendName: 'lvm', hostname: 'hostx', ...extra });
}

describe.skipIf(!canRun)('LVM on a loop device (metadata only)', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cbit-lvm-'));
    execFileSync('truncate', ['-s', '4100M', join(dir, 'pv.img')]);
    loop = execFileSync('losetup', ['-f', '--show', join(dir, 'pv.img')], { encoding: 'utf8' }).trim();
    confFile = join(dir, 'lvm.conf');
    writeFileSync(confFile, `devices {\n  filter = [ "a|^${loop}$|", "r|.*|" ]\n  use_devicesfile = 0\n}\nglobal {\n  activation = 0\n}\n`);
    lvm(['pvcreate', '-y', loop]);
    lvm(['vgcreate', VG, loop]);
    runner = lvmCommandRunner({ lvmConfFile: confFile, suppressFdWarnings: true });
  });

  afterAll(() => {
    if (!loop) return;
    try {
      lvm(['vgremove', '-f', VG]);
      lvm(['pvremove', '-y', loop]);
    } finally {
      execFileSync('losetup', ['-d', loop]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the runner gives LVM cinder's environment: LVM_SYSTEM_DIR only when lvm_conf_file exists", () => {
    expect(lvmEnvironment({ lvmConfFile: confFile, suppressFdWarnings: true })).toEqual({ LC_ALL: 'C', LVM_SYSTEM_DIR: dir, LVM_SUPPRESS_FD_WARNINGS: '1' });
    expect(lvmEnvironment({ lvmConfFile: join(dir, 'missing.conf') })).toEqual({ LC_ALL: 'C' });
    expect(lvmEnvironment({ lvmConfFile: 'None' })).toEqual({ LC_ALL: 'C' });
    expect(lvmEnvironment({ lvmConfFile: null })).toEqual({ LC_ALL: 'C' });
  });

  it('through the runner LVM sees only our VG (the private lvm.conf is in effect)', async () => {
    const r = await runChecked(runner, ['vgs', '--noheadings', '-o', 'name']);
    expect(r.stdout.trim()).toBe(VG);
  });

  it('a crashing command reports exit 139 and is run 3 times (a real SIGSEGV, injected with bash)', async () => {
    const sleeps: number[] = [];
    const r = await withSegfaultRetry(runner, { sleep: async (ms) => void sleeps.push(ms) })(['bash', '-c', 'kill -SEGV $$']);
    expect(r.exitCode).toBe(139);
    expect(r.stderr).toContain('SIGSEGV');
    expect(sleeps).toEqual([500, 250]);
  });

  it('a hung command is killed at its time limit', async () => {
    const r = await runner(['sleep', '10'], { timeoutMs: 200 });
    expect(r.exitCode).toBe(-1);
    expect(r.stderr).toMatch(/timed out after 200 ms/);
  });

  it('a missing program is an error result, not a crash', async () => {
    const r = await runner(['/nonexistent/lvm-xyz']);
    expect(r.exitCode).not.toBe(0);
  });

  it('a missing VG is VolumeGroupNotFound', async () => {
    const vg = new LvmVolumeGroup({ vgName: 'cbit-no-such-vg', runner });
    await expect(vg.report()).rejects.toMatchObject({ className: 'VolumeGroupNotFound' });
  });

  it('driver: set up, create, extend, export, stats, delete (volume_clear=none)', async () => {
    const d = driver({ volumeClear: 'none' });
    await d.doSetup();
    await d.checkForSetupError();
    expect(d.lvmType).toBe('default');

    const v = vol('9531a336-8b9f-4724-9d8d-d83f99b240e6');
    await d.createVolume(v);
    await d.extendVolume(v, 2);
    // activation is disabled here: lvchange succeeds without creating a node
    expect(await d.activateForExport(v)).toBe(`/dev/${VG}/${v.name}`);
    const lv = await d.vg.getLv(v.name, { fresh: true });
    expect(lv?.sizeBytes).toBe(2 * GiB);

    // the figures are the ones cinder computes from its own commands on the same VG
    const stats = await d.getVolumeStats();
    const [cvg] = parseCinderVgs(lvm(vgsInfoArgv(VG)));
    expect(stats.pools[0]).toMatchObject({
      pool_name: 'lvm',
      total_capacity_gb: cvg!.size,
      free_capacity_gb: cvg!.available,
      provisioned_capacity_gb: Math.round((cvg!.size - cvg!.available) * 100) / 100,
      total_volumes: 1,
      location_info: `LVMVolumeDriver:hostx:${VG}:default:0`,
    });
    expect(parseCinderLvs(lvm(lvsInfoArgv(VG)))).toEqual([{ vg: VG, name: v.name, size: formatLvmGiB(2 * GiB) }]);

    await d.deleteVolume(v);
    expect(await d.vg.getLv(v.name, { fresh: true })).toBeNull();
    await d.deleteVolume(v); // absent: success
  });

  it('report figures equal cinder\'s text figures (vgs, pvs) on the live VG', async () => {
    const vg = new LvmVolumeGroup({ vgName: VG, runner });
    await vg.createVolume('volume-r1', 1);
    const r = await vg.report({ fresh: true });
    const [cvg] = parseCinderVgs(lvm(vgsInfoArgv(VG)));
    const [cpv] = parseCinderPvs(lvm(pvsInfoArgv({ ignoreSkippedCluster: true })), VG);
    expect([lvmGiB(r.sizeBytes), lvmGiB(r.freeBytes), r.lvCount, r.uuid]).toEqual([cvg!.size, cvg!.available, cvg!.lv_count, cvg!.uuid]);
    expect([r.pvs[0]!.name, lvmGiB(r.pvs[0]!.sizeBytes), lvmGiB(r.pvs[0]!.freeBytes)]).toEqual([cpv!.name, cpv!.size, cpv!.available]);
    await vg.rename('volume-r1', 'volume-r2');
    expect((await vg.report()).lvs.map((l) => l.name)).toEqual(['volume-r2']);
    await vg.remove('volume-r2');
    expect((await vg.report()).lvs).toEqual([]);
  });

  it('volume_clear=zero needs the device node: without it delete fails as cinder does, and the LV stays', async () => {
    const d = driver({ volumeClear: 'zero' });
    await d.checkForSetupError();
    const v = vol('clear-me');
    await d.createVolume(v);
    await expect(d.deleteVolume(v)).rejects.toMatchObject({ className: 'VolumeBackendAPIException', message: expect.stringContaining('does not exist') });
    expect(await d.vg.getLv(v.name, { fresh: true })).not.toBeNull();
    await d.vg.remove(v.name);
  });

  it('real LVM errors surface with their text', async () => {
    const d = driver();
    await d.checkForSetupError();
    await d.createVolume(vol('dup'));
    const err = await d.createVolume(vol('dup')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LvmCommandError);
    expect((err as LvmCommandError).stderr).toMatch(/already exists in volume group/);
    await expect(d.extendVolume(vol('dup'), 100)).rejects.toThrow(/Insufficient free space/);
    await d.vg.remove('volume-dup');
  });

  it('lvm_type=auto: a VG with LVs stays thick', async () => {
    const vg = new LvmVolumeGroup({ vgName: VG, runner });
    await vg.createVolume('volume-keep', 1);
    const d = driver({ lvmType: 'auto' });
    await d.checkForSetupError();
    expect(d.lvmType).toBe('default');
    await vg.remove('volume-keep');
  });

  it('lvm_type=auto on an empty VG wants thin; without device-mapper the pool cannot be made', async () => {
    const d = driver({ lvmType: 'auto' });
    await expect(d.checkForSetupError()).rejects.toMatchObject({
      className: 'VolumeBackendAPIException',
      message: expect.stringMatching(/Failed to create thin pool, error message was: .*device-mapper/s),
    });
  });

  it('names are refused before LVM runs', async () => {
    const d = driver();
    await d.checkForSetupError();
    await expect(d.createVolume({ ...vol('x'), name: '--help' })).rejects.toBeInstanceOf(LvmNameError);
  });
});

describe.skipIf(!canRun)('the agent on LVM: cinder.conf to driver (metadata only)', () => {
  const VG2 = `cbagent-${process.pid}`;
  let dir2 = '';
  let loop2 = '';
  let conf2 = '';
  const lvm2 = (args: string[]) =>
    execFileSync(args[0]!, args.slice(1), { env: { ...process.env, LC_ALL: 'C', LVM_SYSTEM_DIR: dir2 }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  beforeAll(() => {
    dir2 = mkdtempSync(join(tmpdir(), 'cbit-agent-'));
    execFileSync('truncate', ['-s', '2100M', join(dir2, 'pv.img')]);
    loop2 = execFileSync('losetup', ['-f', '--show', join(dir2, 'pv.img')], { encoding: 'utf8' }).trim();
    conf2 = join(dir2, 'lvm.conf');
    writeFileSync(conf2, `devices {\n  filter = [ "a|^${loop2}$|", "r|.*|" ]\n  use_devicesfile = 0\n}\nglobal {\n  activation = 0\n}\n`);
    lvm2(['pvcreate', '-y', loop2]);
    lvm2(['vgcreate', VG2, loop2]);
    lvm2(['lvcreate', '-n', 'legacy-data', '-L', '256m', VG2]);
  });
  afterAll(() => {
    if (!loop2) return;
    try {
      lvm2(['vgremove', '-f', VG2]);
      lvm2(['pvremove', '-y', loop2]);
    } finally {
      execFileSync('losetup', ['-d', loop2]);
      rmSync(dir2, { recursive: true, force: true });
    }
  });

  it("an unchanged cinder.conf's LVMVolumeDriver section gets the LVM driver with exports, stats and manage", async () => {
    const { configFromText } = await import('../../../src/config/index.js');
    const { createDriver } = await import('../../../src/agent/driver-factory.js');
    const { createExports } = await import('../../../src/agent/target-factory.js');
    const config = configFromText(
      `[DEFAULT]\nenabled_backends = lvm\nstate_path = ${dir2}\n[lvm]\nvolume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver\n` +
        `volume_backend_name = lvm\nvolume_group = ${VG2}\nlvm_type = default\nlvm_conf_file = ${conf2}\ntarget_helper = tgtadm\n`,
    );
    const driver = createDriver(config, config.backends[0]!);
    const exports = createExports(driver, null);
    expect(driver).toBeInstanceOf(LvmVolumeDriver);
    await driver.doSetup();
    await driver.checkForSetupError();
    const stats = await driver.getVolumeStats();
    expect(stats).toMatchObject({ volume_backend_name: 'lvm', vendor_name: 'Open Source', storage_protocol: 'iSCSI' });
    expect(stats.pools[0]).toMatchObject({ pool_name: 'lvm', thick_provisioning_support: true, location_info: expect.stringMatching(new RegExp(`^LVMVolumeDriver:[^:]+:${VG2}:default:0$`)) });

    // manage_existing: size rounded up to whole GiB, then the LV takes the volume's name.
    const v = vol('6d1d5b0e-8a3e-4a57-9f62-0b6f3a1c2d4e');
    expect(await driver.manageExistingGetSize({ 'source-name': 'legacy-data' })).toBe(1);
    await expect(driver.manageExistingGetSize({ 'source-name': 'nope' })).rejects.toMatchObject({ className: 'ManageExistingInvalidReference' });
    await driver.manageExisting(v, { 'source-name': 'legacy-data' });
    expect(await driver.volumeExists(v)).toBe(true);
    expect(lvm2(['lvs', '--noheadings', '-o', 'lv_name', VG2])).toContain(v.name);
    // No target helper configured here: the connector is still validated as cinder's iSCSI does.
    expect(() => exports.validateConnector({})).toThrow(/initiator/);
  });
});
