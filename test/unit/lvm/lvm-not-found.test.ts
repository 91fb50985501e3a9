// "Does not exist" is decided from LVM's exit code and its exact message for the object asked
// about, never from any stderr line containing "not found". The host-stderr-*.txt fixtures are
// real LVM 2.03.16 output (fixtures/capture-not-found.sh); the 2.02 lines are lvm2's own strings
// (tools/toollib.c, lib/metadata), as hosts running older LVM print them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LvmCommandError, lvmMissing, type LvmCommandResult, type LvmRunner } from '../../../drivers/lvm/lvm-runner.js';
import { LvmVolumeGroup } from '../../../drivers/lvm/lvm-vg.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

/** A fixture: `exit=<code>` then stderr as LVM wrote it. */
function captured(name: string): LvmCommandResult {
  const text = readFileSync(join(FIXTURES, name), 'utf8');
  const nl = text.indexOf('\n');
  const m = /^exit=(\d+)$/.exec(text.slice(0, nl));
  if (!m) throw new Error(`${name}: no exit= line`);
  return { stdout: '', stderr: text.slice(nl + 1), exitCode: Number(m[1]) };
}

/** lvm2 2.02 (CentOS 7 and the like): a PV that is gone, on every command that reads the VG. */
const WARNING_PV_NOT_FOUND = '  WARNING: Device for PV Dx1dDh-0bvu-2TO3-fYQC-vVcl-UIqE-NAM90Z not found or rejected by a filter.\n';

describe('lvmMissing: real LVM output', () => {
  it('a missing VG: exit 5 and `Volume group "<vg>" not found`, for that VG only', () => {
    const r = captured('host-stderr-fullreport-no-vg.txt');
    expect(r.exitCode).toBe(5);
    expect(lvmMissing(r, { vg: 'cbfix-no-such-vg' })).toBe('vg');
    expect(lvmMissing(r, { vg: 'cbfix-no-such-vg', lv: 'volume-missing' })).toBe('vg');
    expect(lvmMissing(r, { vg: 'cbfix-vg' })).toBeNull();
    expect(lvmMissing(captured('host-stderr-lvremove-no-vg.txt'), { vg: 'cbfix-no-such-vg', lv: 'volume-missing' })).toBe('vg');
  });

  it('a missing LV: exit 5 and `Failed to find logical volume "<vg>/<lv>"`, for that LV only', () => {
    for (const f of ['host-stderr-lvs-no-lv.txt', 'host-stderr-lvremove-no-lv.txt']) {
      const r = captured(f);
      expect(lvmMissing(r, { vg: 'cbfix-vg', lv: 'volume-missing' })).toBe('lv');
      expect(lvmMissing(r, { vg: 'cbfix-vg', lv: 'volume-1' })).toBeNull();
      expect(lvmMissing(r, { vg: 'other-vg', lv: 'volume-missing' })).toBeNull();
      // the VG itself is there
      expect(lvmMissing(r, { vg: 'cbfix-vg' })).toBeNull();
    }
  });

  it('a failure for another reason, with WARNING lines about a missing device, is not "not found"', () => {
    const r = captured('host-stderr-lvcreate-pv-missing.txt');
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toMatch(/WARNING: Couldn't find device/);
    expect(lvmMissing(r, { vg: 'cbfix-vg' })).toBeNull();
    expect(lvmMissing(r, { vg: 'cbfix-vg', lv: 'volume-2' })).toBeNull();
    expect(lvmMissing(captured('host-stderr-vgs-bad-option.txt'), { vg: 'cbfix-vg' })).toBeNull();
  });
});

describe('lvmMissing: what must not count', () => {
  it('a WARNING line containing "not found" never counts, whatever the exit code', () => {
    for (const exitCode of [0, 3, 5]) {
      expect(lvmMissing({ exitCode, stderr: `${WARNING_PV_NOT_FOUND}  Cannot process volume group cinder-volumes\n` }, { vg: 'cinder-volumes' })).toBeNull();
      expect(lvmMissing({ exitCode, stderr: WARNING_PV_NOT_FOUND }, { vg: 'cinder-volumes', lv: 'volume-1' })).toBeNull();
    }
  });

  it('the exact message with another exit code does not count', () => {
    for (const exitCode of [0, 1, 3, 139, -1]) {
      expect(lvmMissing({ exitCode, stderr: '  Volume group "cinder-volumes" not found\n' }, { vg: 'cinder-volumes' })).toBeNull();
      expect(lvmMissing({ exitCode, stderr: '  Failed to find logical volume "cinder-volumes/volume-1"\n' }, { vg: 'cinder-volumes', lv: 'volume-1' })).toBeNull();
    }
  });

  it('a line that only contains the words does not count (vgremove of an inconsistent VG)', () => {
    const stderr = '  Volume group "cinder-volumes" not found, is inconsistent or has PVs missing.\n  Consider vgreduce --removemissing if metadata is inconsistent.\n';
    expect(lvmMissing({ exitCode: 5, stderr }, { vg: 'cinder-volumes' })).toBeNull();
    expect(lvmMissing({ exitCode: 5, stderr: '  Failed to find logical volume "cinder-volumes/volume-10"\n' }, { vg: 'cinder-volumes', lv: 'volume-1' })).toBeNull();
  });

  it("older LVM's nameless `One or more specified logical volume(s) not found.` counts for an LV only", () => {
    const stderr = '  One or more specified logical volume(s) not found.\n';
    expect(lvmMissing({ exitCode: 5, stderr }, { vg: 'cinder-volumes', lv: 'volume-1' })).toBe('lv');
    expect(lvmMissing({ exitCode: 5, stderr }, { vg: 'cinder-volumes' })).toBeNull();
  });
});

describe('LvmVolumeGroup.report: VolumeGroupNotFound only when LVM says so', () => {
  const VG = 'cbfix-no-such-vg';
  const answering = (r: LvmCommandResult): LvmRunner => async () => r;

  it("LVM's own answer for a missing VG (real output) is VolumeGroupNotFound", async () => {
    const vg = new LvmVolumeGroup({ vgName: VG, runner: answering(captured('host-stderr-fullreport-no-vg.txt')) });
    await expect(vg.report()).rejects.toMatchObject({ className: 'VolumeGroupNotFound' });
    expect(await vg.exists()).toBe(false);
  });

  // Before: any stderr containing "not found" (or "Failed to find") made this VolumeGroupNotFound,
  // so a VG that is there but failed to read (a PV gone, a lock) looked deleted.
  it('a failure whose WARNING line says "not found" is the command error, not VolumeGroupNotFound', async () => {
    for (const exitCode of [5, 3]) {
      const stderr = `${WARNING_PV_NOT_FOUND}  Cannot change VG ${VG} while PVs are missing.\n`;
      const vg = new LvmVolumeGroup({ vgName: VG, runner: answering({ stdout: '', stderr, exitCode }) });
      const err = await vg.report().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LvmCommandError);
      expect((err as LvmCommandError).exitCode).toBe(exitCode);
      await expect(vg.exists()).rejects.toBeInstanceOf(LvmCommandError);
    }
  });
});
