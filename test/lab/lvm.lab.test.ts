// The LVM driver against a REAL volume group with device-mapper, inside the lab guest
// (test/lab/run-lab.sh boots it; this file never runs anywhere else: it formats the disk whose
// serial is cblab-pv0). Thick: create, clone, snapshot, volume from snapshot, extend with a
// snapshot, delete with volume_clear=zero through BLKZEROOUT and no data left behind, revert by
// merge (origin closed; origin open, the merge waiting for the re-activation), and no old data
// left on the extents a snapshot delete or a revert freed (read back from the PV itself),
// temporary LVs of a dead agent finished off at start-up, and an agent SIGKILLed mid-revert
// (merged, wipe LV not made yet) whose freed extents the next start zeroes from the tags it
// left on the origin. Thin: the pool
// made by lvm_type=auto, thin snapshot / clone / extend, revert refused. Both: the capability
// report against cinder's own commands on the same VG.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pattern, readAt, sh, writeAt } from './lab-io.js';
import type { DriverSnapshot, DriverVolume } from '../../drivers/driver.js';
import { createOnExtentsArgv, pvSegmentsArgv, thinPoolUsageArgv, vgsInfoArgv, type ExtentRange } from '../../drivers/lvm/lvm-commands.js';
import { LvmVolumeDriver, nativeBlockDeviceOps, type BlockDeviceOps, type LvmDriverOptions } from '../../drivers/lvm/lvm-driver.js';
import { decodeWipeTag } from '../../drivers/lvm/lvm-names.js';
import { freeExtentsWithin, lvExtents, parseCinderVgs, parsePvSegments, parseThinPoolFree } from '../../drivers/lvm/lvm-report.js';
import type { VolumeCopyFn } from '../../drivers/lvm/volume-copy.js';
import { createLogger } from '../../src/log.js';
import { blockDeviceSize } from '../../src/native/index.js';
import { manageableEntries } from '../../src/manager/flows/manageable.js';

const inLab = process.env.CINDERBLOCK_LAB === '1' && Boolean(process.env.CBLAB_DISKS);
const DISK = (process.env.CBLAB_DISKS ?? '').split(' ')[0] ?? '';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const logger = createLogger({ level: 'warn', pretty: false });

function vol(id: string, size = 1): DriverVolume {
  return { id, name: `volume-${id}`, size, providerLocation: null, providerAuth: null, multiattach: false };
}
function snap(id: string, v: DriverVolume): DriverSnapshot {
  return { id, name: `snapshot-${id}`, volumeId: v.id, volumeName: v.name, volumeSize: v.size, providerLocation: null };
}

const isZero = (b: Buffer): boolean => b.every((x) => x === 0);

/** Where LV `lv` of `vg` lies on the PVs, as LVM reports it now. */
function extentsOf(vg: string, lv: string): { ranges: ExtentRange[]; peStart: number; extent: number } {
  const segs = parsePvSegments(sh(pvSegmentsArgv(vg)));
  return { ranges: lvExtents(segs, lv), peStart: segs[0]!.peStartBytes, extent: segs[0]!.extentSizeBytes };
}

/**
 * The first `bytes` of the recorded extents, read from the PV device itself (so whatever LV
 * holds them now, or none): what the next LV given those extents would read.
 */
async function readExtents(where: ReturnType<typeof extentsOf>, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let left = bytes;
  for (const r of where.ranges) {
    if (left <= 0) break;
    const n = Math.min(left, r.count * where.extent);
    parts.push(await readAt(r.pv, where.peStart + r.start * where.extent, n));
    left -= n;
  }
  return Buffer.concat(parts);
}

/** The native block-device ops, recording every zero-out and checking that it really zeroed. */
function recordingOps(): BlockDeviceOps & { zeroed: { device: string; length: number; readsZero: boolean }[] } {
  const zeroed: { device: string; length: number; readsZero: boolean }[] = [];
  return {
    zeroed,
    exists: nativeBlockDeviceOps.exists,
    size: nativeBlockDeviceOps.size,
    dmNameOf: nativeBlockDeviceOps.dmNameOf,
    async zeroOut(device, offset, length) {
      await nativeBlockDeviceOps.zeroOut(device, offset, length);
      const head = await readAt(device, 0, 64 * 1024);
      const tail = await readAt(device, offset + length - 64 * 1024, 64 * 1024);
      zeroed.push({ device, length, readsZero: isZero(head) && isZero(tail) });
    },
  };
}

/**
 * cinder's own copy (volume_utils.copy_volume): dd with O_DIRECT and count in bytes. Much faster
 * than the driver's default simpleCopy under software emulation; the copy engine is injected the
 * same way in the agent.
 */
const ddCopy: VolumeCopyFn = async (src, dst, o) => {
  sh(['dd', `if=${src}`, `of=${dst}`, `count=${o.sizeBytes}`, 'bs=1M', 'iflag=count_bytes,direct', 'oflag=direct']);
};

function makeDriver(vgName: string, lvmType: LvmDriverOptions['lvmType'], ops: BlockDeviceOps, copy?: VolumeCopyFn, more: Partial<LvmDriverOptions> = {}): LvmVolumeDriver {
  return new LvmVolumeDriver({
    volumeGroup: vgName, lvmType, backendName: 'lvm', hostname: 'cblab-guest', volumeClear: 'zero', volumeClearSize: 0,
    lvmConfFile: 'None', blockDevice: ops, logger, ...(copy ? { copy } : {}), ...more,
  });
}

describe.skipIf(!inLab).sequential('LVM driver on a real VG (lab guest)', () => {
  describe.sequential('thick (lvm_type=default)', () => {
    const VG = 'cinder-volumes';
    const ops = recordingOps();
    const d = makeDriver(VG, 'default', ops, ddCopy);
    const A = vol('aaaaaaaa-0000-4000-8000-000000000001');
    const B = vol('bbbbbbbb-0000-4000-8000-000000000002');
    const C = vol('cccccccc-0000-4000-8000-000000000003');
    const S = snap('5555aaaa-0000-4000-8000-000000000004', A);
    const P1 = pattern('one');
    const P2 = pattern('two');
    const FAR = 768 * MiB;

    beforeAll(() => {
      sh(['pvcreate', '-y', DISK]);
      sh(['vgcreate', VG, DISK]);
    });
    afterAll(() => {
      sh(['vgremove', '-f', VG]);
    });

    it('sets up as thick', async () => {
      await d.doSetup();
      await d.checkForSetupError();
      expect(d.lvmType).toBe('default');
    });

    it('creates a volume with a device node of the right size', async () => {
      await d.createVolume(A);
      expect(await blockDeviceSize(d.localPath(A))).toBe(GiB);
      await writeAt(d.localPath(A), 0, P1);
      await writeAt(d.localPath(A), FAR, P1);
    });

    it('clones through a temporary snapshot and a copy', async () => {
      await d.createClonedVolume(C, A);
      expect(await readAt(d.localPath(C), 0)).toEqual(P1);
      expect(await readAt(d.localPath(C), FAR)).toEqual(P1);
      expect(await d.vg.getLv(`clone-snap-${C.id}`, { fresh: true })).toBeNull();
      // the temporary snapshot's exception store was zeroed before lvremove, as cinder does
      expect(ops.zeroed.at(-1)).toEqual({ device: `/dev/mapper/cinder--volumes-clone--snap--${C.id.replace(/-/g, '--')}-cow`, length: GiB, readsZero: true });
    });

    it('snapshots: the snapshot keeps the data the origin had', async () => {
      await d.createSnapshot(S);
      await writeAt(d.localPath(A), 0, P2);
      expect(await readAt(d.snapshotPath(S), 0)).toEqual(P1);
      expect(await readAt(d.localPath(A), 0)).toEqual(P2);
    });

    it("lists the VG for cinder's manageable listings: an unmanaged LV is safe, a volume cinder has is not, a snapshot names its origin", async () => {
      sh(['lvcreate', '-y', '-L', '8m', '-n', 'legacy-data', VG]);
      try {
        const objects = await d.listBackendObjects();
        const volumes = manageableEntries('volume', objects, new Set([A.id]));
        expect(volumes.find((e) => e.reference['source-name'] === 'legacy-data')).toMatchObject({ safe_to_manage: true, reason_not_safe: null, cinder_id: null, size: 1 });
        expect(volumes.find((e) => e.reference['source-name'] === A.name)).toMatchObject({ safe_to_manage: false, reason_not_safe: 'already managed', cinder_id: A.id, size: 1 });
        const snapshots = manageableEntries('snapshot', objects, new Set());
        expect(snapshots.find((e) => e.reference['source-name'] === `_${S.name}` || e.reference['source-name'] === S.name)).toMatchObject({ source_reference: { 'source-name': A.name } });
      } finally {
        sh(['lvremove', '-f', `${VG}/legacy-data`]);
      }
    });

    it('creates a volume from the snapshot (copy)', async () => {
      await d.createVolumeFromSnapshot(B, S);
      expect(await readAt(d.localPath(B), 0)).toEqual(P1);
      expect(await readAt(d.localPath(B), FAR)).toEqual(P1);
    });

    it('extends a volume that has a snapshot (deactivated around lvextend)', async () => {
      await d.extendVolume(A, 2);
      expect(await blockDeviceSize(d.localPath(A))).toBe(2 * GiB);
      expect(await readAt(d.localPath(A), 0)).toEqual(P2);
      expect(await readAt(d.snapshotPath(S), 0)).toEqual(P1);
      expect((await d.vg.getLv(A.name, { fresh: true }))?.active).toBe(true);
    });

    it('refuses to delete a volume with snapshots', async () => {
      await expect(d.deleteVolume({ ...A, size: 2 })).rejects.toMatchObject({ className: 'VolumeIsBusy' });
    });

    it('reports capabilities as cinder computes them from vgs', async () => {
      const stats = await d.getVolumeStats();
      const [cvg] = parseCinderVgs(sh(vgsInfoArgv(VG)));
      expect(stats.pools[0]).toMatchObject({
        total_capacity_gb: cvg!.size,
        free_capacity_gb: cvg!.available,
        provisioned_capacity_gb: Math.round((cvg!.size - cvg!.available) * 100) / 100,
        total_volumes: 4, // A, B, C and the snapshot
        thick_provisioning_support: true,
        location_info: `LVMVolumeDriver:cblab-guest:${VG}:default:0`,
      });
      expect(stats.sparse_copy_volume).toBe(false);
    });

    it('deletes the snapshot after zeroing its -cow device (BLKZEROOUT): its freed extents hold no old data', async () => {
      const cow = extentsOf(VG, '_snapshot-' + S.id);
      expect(cow.ranges.length).toBeGreaterThan(0);
      // before: the exception store holds the origin's old chunk (P1, overwritten by P2 since)
      expect((await readExtents(cow, 16 * MiB)).includes(P1.subarray(0, 64))).toBe(true);
      await d.deleteSnapshot(S);
      expect(ops.zeroed.at(-1)).toEqual({ device: `${d.snapshotPath(S)}-cow`, length: GiB, readsZero: true });
      expect(await d.vg.getLv('_snapshot-' + S.id, { fresh: true })).toBeNull();
      expect(isZero(await readExtents(cow, 16 * MiB))).toBe(true);
    });

    it('deletes volumes after zeroing them; a new volume over all used extents reads zeros', async () => {
      await d.deleteVolume({ ...A, size: 2 });
      expect(ops.zeroed.at(-1)).toEqual({ device: d.localPath(A), length: 2 * GiB, readsZero: true });
      await d.deleteVolume(B);
      await d.deleteVolume(C);
      expect((await d.vg.report({ fresh: true })).lvs).toEqual([]);
      // 6 GiB from the first extent covers every extent used above (5 GiB at most)
      const D = vol('dddddddd-0000-4000-8000-000000000005', 6);
      await d.createVolume(D);
      const dirty: number[] = [];
      // the patterns were written at 0 and 768 MiB of 1 GiB volumes; a COW store starts with its header
      for (let off = 0; off < 6 * GiB; off += 32 * MiB) if (!isZero(await readAt(d.localPath(D), off))) dirty.push(off);
      expect(dirty).toEqual([]);
      await d.deleteVolume(D);
      await d.deleteVolume(D); // absent: success
    });

    it('reverts by merge, deactivate + activate, and re-creates the snapshot; the merged exception store is zeroed', async () => {
      const E = vol('eeeeeeee-0000-4000-8000-000000000006');
      const SE = snap('5555eeee-0000-4000-8000-000000000007', E);
      const OLD = pattern('revert-old');
      await d.createVolume(E);
      await writeAt(d.localPath(E), 0, OLD);
      await writeAt(d.localPath(E), FAR, OLD);
      await d.createSnapshot(SE);
      await writeAt(d.localPath(E), 0, P2);
      await writeAt(d.localPath(E), FAR, P2);
      const cow = extentsOf(VG, '_snapshot-' + SE.id);
      const old = OLD.subarray(0, 64);
      expect((await readExtents(cow, 16 * MiB)).includes(old)).toBe(true);
      await d.revertToSnapshot(E, SE);
      expect(await readAt(d.localPath(E), 0)).toEqual(OLD);
      expect(await readAt(d.localPath(E), FAR)).toEqual(OLD);
      // the freed extents were held by the wipe LV and zeroed whole before anything else got them
      const wipe = `/dev/mapper/cinder--volumes-_cinderblock--wipe--${SE.id.replace(/-/g, '--')}`;
      expect(ops.zeroed.at(-1)).toEqual({ device: wipe, length: GiB, readsZero: true });
      expect((await d.vg.report({ fresh: true })).lvs.map((l) => l.name).filter((n) => n.startsWith('_cinderblock-wipe-'))).toEqual([]);
      // the re-created snapshot may sit on the same extents (its header), but no old chunk is left
      const after = await readExtents(cow, 64 * MiB);
      expect(after.includes(old)).toBe(false);
      const lv = await d.vg.getLv(E.name, { fresh: true });
      expect(lv?.active).toBe(true);
      expect(lv?.merging).toBe(false);
      const s = await d.vg.getLv('_snapshot-' + SE.id, { fresh: true });
      expect(s?.origin).toBe(E.name);
      await d.deleteSnapshot(SE);
      await d.deleteVolume(E);
    });

    it('reverts while the origin is open: the merge waits for the re-activation', async () => {
      const F = vol('ffffffff-0000-4000-8000-000000000008');
      const SF = snap('5555ffff-0000-4000-8000-000000000009', F);
      await d.createVolume(F);
      await writeAt(d.localPath(F), 0, P1);
      await d.createSnapshot(SF);
      await writeAt(d.localPath(F), 0, P2);
      // hold the origin open across lvconvert --merge, then let go before the deactivation
      const held = await open(d.localPath(F), fsc.O_RDONLY);
      const merge = d.vg.mergeSnapshot('_snapshot-' + SF.id);
      await merge;
      expect((await d.vg.getLv(F.name, { fresh: true }))?.merging).toBe(true);
      await held.close();
      await d.vg.deactivate(F.name);
      await d.vg.activate(F.name);
      await d.createSnapshot(SF);
      expect(await readAt(d.localPath(F), 0)).toEqual(P1);
      await d.deleteSnapshot(SF);
      await d.deleteVolume(F);
    });

    it('start-up finishes temporary LVs a dead agent left: a wipe LV and a clone snapshot, zeroed and removed', async () => {
      const G = vol('99999999-0000-4000-8000-00000000000a');
      await d.createVolume(G);
      await writeAt(d.localPath(G), 0, P1);
      // a clone interrupted after its temporary snapshot took copy-on-write data
      const cloneSnap = `clone-snap-${'77777777-0000-4000-8000-00000000000b'}`;
      sh(['lvcreate', '--name', cloneSnap, '--snapshot', `${VG}/${G.name}`, '-L', '1.00g']);
      await writeAt(d.localPath(G), 0, P2);
      const cloneCow = extentsOf(VG, cloneSnap);
      // a revert interrupted after its wipe LV took the freed extents (still holding old data)
      const free = parsePvSegments(sh(pvSegmentsArgv(VG))).filter((x) => x.lv === '').at(-1)!;
      const wipeName = '_cinderblock-wipe-88888888-0000-4000-8000-00000000000c';
      sh(createOnExtentsArgv(VG, wipeName, [{ pv: free.pv, start: free.start, count: 8 }]));
      await writeAt(`/dev/${VG}/${wipeName}`, MiB, P1);
      const wipeExt = extentsOf(VG, wipeName);
      expect((await readExtents(wipeExt, 8 * 4 * MiB)).includes(P1.subarray(0, 64))).toBe(true);
      expect((await readExtents(cloneCow, 16 * MiB)).includes(P1.subarray(0, 64))).toBe(true);

      const again = makeDriver(VG, 'default', ops, ddCopy);
      await again.doSetup();
      await again.checkForSetupError();
      const names = (await again.vg.report({ fresh: true })).lvs.map((l) => l.name);
      expect(names).not.toContain(cloneSnap);
      expect(names).not.toContain(wipeName);
      expect(isZero(await readExtents(wipeExt, 8 * 4 * MiB))).toBe(true);
      expect(isZero(await readExtents(cloneCow, 16 * MiB))).toBe(true);
      expect(await readAt(again.localPath(G), 0)).toEqual(P2);
      await again.deleteVolume(G);
    });

    it('an agent SIGKILLed between the merge and the wipe LV: the next start zeroes the freed extents from the tags on the origin', async () => {
      const K = vol('12121212-0000-4000-8000-00000000000f');
      const SK = snap('5555cccc-0000-4000-8000-000000000010', K);
      const OLD = pattern('killed-old');
      await d.createVolume(K);
      await writeAt(d.localPath(K), 0, OLD);
      await writeAt(d.localPath(K), FAR, OLD);
      await d.createSnapshot(SK);
      await writeAt(d.localPath(K), 0, P2);
      await writeAt(d.localPath(K), FAR, P2);
      const cow = extentsOf(VG, '_snapshot-' + SK.id);
      const old = OLD.subarray(0, 64);
      expect((await readExtents(cow, 16 * MiB)).includes(old)).toBe(true);

      // the revert in an agent of its own, stopped (by its LVM runner, see revert-child.mts) just
      // before it would create the wipe LV, and killed there
      const child = spawn(process.execPath, ['--import', 'tsx', new URL('./revert-child.mts', import.meta.url).pathname, VG, JSON.stringify(K), JSON.stringify(SK)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
      const exited = once(child, 'exit');
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('PAUSED\n')) resolve();
        });
        child.on('exit', (code, signal) => reject(new Error(`the agent ended (${code ?? signal}) before the window: ${out}${stderr}`)));
      });
      child.kill('SIGKILL');
      expect((await exited)[1]).toBe('SIGKILL');

      // what the dead agent left: merged, the snapshot gone, no wipe LV, the old data readable on
      // free extents, and the record on the origin naming exactly those extents
      const dead = await d.vg.report({ fresh: true });
      expect(dead.lvs.map((l) => l.name)).not.toContain('_snapshot-' + SK.id);
      expect(dead.lvs.map((l) => l.name).filter((n) => n.startsWith('_cinderblock-wipe-'))).toEqual([]);
      const tags = dead.lvs.find((l) => l.name === K.name)!.tags;
      expect(tags.length).toBeGreaterThan(0);
      const segs = parsePvSegments(sh(pvSegmentsArgv(VG)));
      const uuidOf = new Map(segs.map((g) => [g.pv, g.pvUuid.replace(/-/g, '')]));
      expect(tags.flatMap((t) => decodeWipeTag(t) ?? [])).toEqual(cow.ranges.map((r) => ({ pvUuid: uuidOf.get(r.pv), start: r.start, count: r.count })));
      expect(freeExtentsWithin(cow.ranges, segs)).toEqual(cow.ranges);
      expect((await readExtents(cow, 16 * MiB)).includes(old)).toBe(true);

      const again = makeDriver(VG, 'default', ops, ddCopy);
      await again.doSetup();
      await again.checkForSetupError();
      const wipe = `/dev/mapper/cinder--volumes-_cinderblock--wipe--${K.name.replace(/-/g, '--')}`;
      expect(ops.zeroed.at(-1)).toEqual({ device: wipe, length: GiB, readsZero: true });
      const after = await again.vg.report({ fresh: true });
      expect(after.lvs.find((l) => l.name === K.name)!.tags).toEqual([]);
      expect(after.lvs.map((l) => l.name).filter((n) => n.startsWith('_cinderblock-wipe-'))).toEqual([]);
      expect(isZero(await readExtents(cow, 64 * MiB))).toBe(true);
      expect(await readAt(again.localPath(K), 0)).toEqual(OLD);
      expect(await readAt(again.localPath(K), FAR)).toEqual(OLD);
      await again.deleteVolume(K);
    });

    it('volume_clear=none (documented exposure, as cinder): the old data stays on the extents a revert freed', async () => {
      const none = makeDriver(VG, 'default', ops, ddCopy, { volumeClear: 'none' });
      await none.doSetup();
      await none.checkForSetupError();
      const H = vol('abababab-0000-4000-8000-00000000000d');
      const SH = snap('5555abab-0000-4000-8000-00000000000e', H);
      const OLD = pattern('kept-old');
      await none.createVolume(H);
      await writeAt(none.localPath(H), 0, OLD);
      await none.createSnapshot(SH);
      await writeAt(none.localPath(H), 0, P2);
      const cow = extentsOf(VG, '_snapshot-' + SH.id);
      const zeroedBefore = ops.zeroed.length;
      await none.revertToSnapshot(H, SH);
      await none.deleteSnapshot(SH);
      expect(ops.zeroed.length).toBe(zeroedBefore);
      // what the same check finds without the wipe: the check above is not vacuous
      expect((await readExtents(cow, 16 * MiB)).includes(OLD.subarray(0, 64))).toBe(true);
      await none.deleteVolume(H);
    });
  });

  describe.sequential('thin (lvm_type=auto on an empty VG)', () => {
    const VG = 'cinder-thin';
    const ops = recordingOps();
    const d = makeDriver(VG, 'auto', ops);
    const T = vol('aaaaaaaa-1111-4000-8000-000000000001');
    const TB = vol('bbbbbbbb-1111-4000-8000-000000000002', 2);
    const TC = vol('cccccccc-1111-4000-8000-000000000003');
    const TS = snap('5555aaaa-1111-4000-8000-000000000004', T);
    const P1 = pattern('thin-one');
    const P2 = pattern('thin-two');

    beforeAll(() => {
      sh(['pvcreate', '-y', DISK]);
      sh(['vgcreate', VG, DISK]);
    });
    afterAll(() => {
      sh(['vgremove', '-f', VG]);
    });

    it('auto on an empty VG goes thin and creates <vg>-pool', async () => {
      await d.doSetup();
      await d.checkForSetupError();
      expect(d.lvmType).toBe('thin');
      const pool = await d.vg.getLv(`${VG}-pool`, { fresh: true });
      expect(pool?.attr[0]).toBe('t');
      expect(pool?.active, `pool attr ${pool?.attr}`).toBe(true);
    });

    it('creates, snapshots; the snapshot keeps the old data', async () => {
      await d.createVolume(T);
      await writeAt(d.localPath(T), 0, P1);
      await d.createSnapshot(TS);
      await writeAt(d.localPath(T), 0, P2);
      await d.vg.activate(TS.name, { isSnapshot: true });
      expect(await readAt(d.snapshotPath(TS), 0)).toEqual(P1);
    });

    it('volume from snapshot: a bigger thin snapshot, activated for good', async () => {
      await d.createVolumeFromSnapshot(TB, TS);
      expect(await blockDeviceSize(d.localPath(TB))).toBe(2 * GiB);
      expect(await readAt(d.localPath(TB), 0)).toEqual(P1);
      const lv = await d.vg.getLv(TB.name, { fresh: true });
      expect(lv?.skipActivation).toBe(false);
      expect(lv?.active).toBe(true);
    });

    it('clone: a thin snapshot of the source', async () => {
      await d.createClonedVolume(TC, T);
      expect(await readAt(d.localPath(TC), 0)).toEqual(P2);
      expect((await d.vg.getLv(TC.name, { fresh: true }))?.origin).toBe(T.name);
    });

    it('extends a thin origin that has snapshots without deactivating it', async () => {
      await d.extendVolume(T, 2);
      expect(await blockDeviceSize(d.localPath(T))).toBe(2 * GiB);
    });

    it('refuses revert (the manager falls back to the generic revert)', async () => {
      await expect(d.revertToSnapshot(T, TS)).rejects.toMatchObject({ className: 'NotImplementedError' });
    });

    it('reports thin capabilities as cinder computes them', async () => {
      const stats = await d.getVolumeStats();
      const poolFree = parseThinPoolFree(sh(thinPoolUsageArgv(VG, `${VG}-pool`)));
      const pool = (await d.vg.getLv(`${VG}-pool`))!;
      expect(stats.sparse_copy_volume).toBe(true);
      expect(stats.pools[0]).toMatchObject({
        total_capacity_gb: Number((pool.sizeBytes / GiB).toFixed(2)),
        free_capacity_gb: poolFree,
        provisioned_capacity_gb: 2 + 1 + 2 + 1, // T (extended), TS, TB, TC
        total_volumes: 5, // + the pool, as cinder counts every LV lvs lists
        thin_provisioning_support: true,
        location_info: `LVMVolumeDriver:cblab-guest:${VG}:thin:0`,
      });
    });

    it('deletes without clearing (thin), the origin even with thin snapshots', async () => {
      await d.deleteVolume({ ...T, size: 2 });
      await d.deleteSnapshot(TS);
      await d.deleteVolume(TB);
      await d.deleteVolume(TC);
      expect(ops.zeroed).toEqual([]);
      expect((await d.vg.report({ fresh: true })).lvs.map((l) => l.name)).toEqual([`${VG}-pool`]);
    });
  });
});
