// What `volume show` and `doctor` read of an LVM backend, against real LVM on this host: a volume
// group on a loop device. This kernel has no device-mapper, so LVs exist in metadata only (the
// private lvm.conf sets activation=0 and shows LVM only our loop device): size and "not active"
// are what an LV reads as here. Thin pools need the lab (test/lab).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromText } from '../../../src/config/load.js';
import { readBackendObject } from '../../../src/cli/inspect-backend.js';
import { backendChecks } from '../../../src/cli/doctor.js';

const canRun = process.getuid?.() === 0 && existsSync('/sbin/lvm') && existsSync('/sbin/losetup') && existsSync('/dev/loop-control');
const VG = `cbcli-${process.pid}`;

describe.skipIf(!canRun)('debug CLI on an LVM backend (metadata only)', () => {
  let dir = '';
  let loop = '';
  let confFile = '';
  const lvm = (args: string[]) =>
    execFileSync(args[0]!, args.slice(1), { env: { ...process.env, LC_ALL: 'C', LVM_SYSTEM_DIR: dir, LVM_SUPPRESS_FD_WARNINGS: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const config = (vg: string) =>
    configFromText(
      [
        '[DEFAULT]',
        'enabled_backends = lvm',
        `state_path = ${dir}`,
        '[lvm]',
        'volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver',
        `volume_group = ${vg}`,
        'lvm_type = default',
        `lvm_conf_file = ${confFile}`,
        'lvm_suppress_fd_warnings = true',
        'target_helper = fake',
        '',
      ].join('\n'),
    );

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cbcli-lvm-'));
    execFileSync('truncate', ['-s', '2100M', join(dir, 'pv.img')]);
    loop = execFileSync('losetup', ['-f', '--show', join(dir, 'pv.img')], { encoding: 'utf8' }).trim();
    confFile = join(dir, 'lvm.conf');
    writeFileSync(confFile, `devices {\n  filter = [ "a|^${loop}$|", "r|.*|" ]\n  use_devicesfile = 0\n}\nglobal {\n  activation = 0\n}\n`);
    lvm(['pvcreate', '-y', loop]);
    lvm(['vgcreate', VG, loop]);
    lvm(['lvcreate', '-y', '-L', '1g', '-n', 'volume-11111111-2222-3333-4444-555555555555', VG]);
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

  it("volume show reads the volume's LV: path, size, thick, not active here", async () => {
    const c = config(VG);
    const o = await readBackendObject(c, c.backends[0]!, 'volume-11111111-2222-3333-4444-555555555555');
    expect(o).toEqual({
      kind: 'lv',
      path: `/dev/${VG}/volume-11111111-2222-3333-4444-555555555555`,
      exists: true,
      sizeBytes: 1024 ** 3,
      usedBytes: 1024 ** 3,
      thinPool: null,
      active: false,
      open: false,
    });
    const missing = await readBackendObject(c, c.backends[0]!, 'volume-99999999-2222-3333-4444-555555555555');
    expect(missing).toMatchObject({ kind: 'lv', exists: false, sizeBytes: null });
  });

  it('doctor finds LVM and the volume group with its size, and says how to create a missing one', async () => {
    const c = config(VG);
    const ok = await backendChecks(c, c.backends[0]!);
    expect(ok.find((x) => x.name === '[lvm] lvm')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^LVM 2\.\d+\.\d+$/) });
    expect(ok.find((x) => x.name === `[lvm] volume group ${VG}`)).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^2\.\d GiB, 1\.\d GiB free, 1 LVs$/) });
    expect(ok.find((x) => x.name === '[lvm] target')).toMatchObject({ status: 'skip' });
    const bad = config('no-such-vg');
    const missing = (await backendChecks(bad, bad.backends[0]!)).find((x) => x.name === '[lvm] volume group no-such-vg')!;
    expect(missing.status).toBe('fail');
    expect(missing.fix).toMatch(/vgcreate no-such-vg/);
  });
});
