// Quota reservations: the same sequence is run by cinder (QUOTAS / db api) in one project and by
// us in another identical project; usages and reservations must come out the same.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, seedQuotaUsage, seedReservation, seedSnapshot, seedVolume, seedVolumeType } from '../../helpers/cinder-db.js';
import { diffRows, setUpBackend, type BackendContext } from './support.js';

describe.each(BACKENDS)('quotas on %s', (backend) => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend(backend);
  });
  afterAll(async () => c?.close());

  const projects = () => ({ theirs: `pa${randomUUID().replace(/-/g, '').slice(0, 12)}`, ours: `pb${randomUUID().replace(/-/g, '').slice(0, 12)}` });

  const usages = (project: string) => c.oracle.sql('SELECT * FROM quota_usages WHERE project_id = :p ORDER BY resource', { p: project });
  const reservations = (project: string) => c.oracle.sql('SELECT * FROM reservations WHERE project_id = :p ORDER BY resource, delta', { p: project });
  const TS = ['created_at', 'updated_at', 'deleted_at', 'expire'];

  async function expectSameQuotaState(p: { theirs: string; ours: string }): Promise<void> {
    const [ua, ub] = [await usages(p.ours), await usages(p.theirs)];
    expect(ua.length).toBe(ub.length);
    ua.forEach((u, i) => expect(diffRows(u, ub[i], { ignore: ['id', 'project_id'], presence: TS })).toEqual([]));
    const [ra, rb] = [await reservations(p.ours), await reservations(p.theirs)];
    expect(ra.length).toBe(rb.length);
    ra.forEach((r, i) => expect(diffRows(r, rb[i], { ignore: ['id', 'project_id', 'uuid', 'usage_id'], presence: TS })).toEqual([]));
  }

  /** The API side of extend_volume: gigabytes +delta reserved through cinder's QUOTAS.reserve in both projects. */
  async function apiReserve(p: { theirs: string; ours: string }, deltas: Record<string, number>): Promise<{ theirs: string[]; ours: string[] }> {
    return {
      theirs: (await c.oracle.request({ op: 'quota_reserve', project_id: p.theirs, deltas })).result,
      ours: (await c.oracle.request({ op: 'quota_reserve', project_id: p.ours, deltas })).result,
    };
  }

  it('commit() of extend reservations matches reservation_commit', async () => {
    const p = projects();
    for (const proj of [p.theirs, p.ours]) await seedQuotaUsage(c.db, 'gigabytes', 10, 0, proj);
    const r = await apiReserve(p, { gigabytes: 5 });
    expect(r.ours).toHaveLength(1);
    expect((await usages(p.ours))[0].reserved).toBe(5);
    await c.oracle.call('reservation_commit', r.theirs, p.theirs);
    expect(await c.db.quotas.commit(r.ours, p.ours)).toBe(true);
    await expectSameQuotaState(p);
    expect(await c.db.quotas.usagesByProject(p.ours)).toEqual({ gigabytes: { in_use: 15, reserved: 0 } });
    expect((await reservations(p.ours)).every((x) => Number(x.deleted) === 1)).toBe(true);
  });

  it('rollback() matches reservation_rollback', async () => {
    const p = projects();
    for (const proj of [p.theirs, p.ours]) await seedQuotaUsage(c.db, 'gigabytes', 10, 0, proj);
    const r = await apiReserve(p, { gigabytes: 7 });
    await c.oracle.call('reservation_rollback', r.theirs, p.theirs);
    expect(await c.db.quotas.rollback(r.ours, p.ours)).toBe(true);
    await expectSameQuotaState(p);
    expect(await c.db.quotas.usagesByProject(p.ours)).toEqual({ gigabytes: { in_use: 10, reserved: 0 } });
  });

  it('a negative reservation never takes in_use below zero', async () => {
    const p = projects();
    const ids: Record<string, string[]> = {};
    for (const proj of [p.theirs, p.ours]) {
      const u = await seedQuotaUsage(c.db, 'volumes', 1, 0, proj);
      ids[proj] = [await seedReservation(c.db, u, 'volumes', -3, proj)];
    }
    await c.oracle.call('reservation_commit', ids[p.theirs], p.theirs);
    await c.db.quotas.reservationCommit(ids[p.ours]!, p.ours);
    await expectSameQuotaState(p);
    expect(await c.db.quotas.usagesByProject(p.ours)).toEqual({ volumes: { in_use: 0, reserved: 0 } });
  });

  it('commit() is project scoped: another project’s reservations fail as in cinder, nothing changes', async () => {
    const p = projects();
    const u = await seedQuotaUsage(c.db, 'gigabytes', 4, 0, p.theirs);
    await seedQuotaUsage(c.db, 'gigabytes', 4, 0, p.ours);
    const foreign = [await seedReservation(c.db, u, 'gigabytes', 2, p.theirs)];
    await expect(c.oracle.call('reservation_commit', foreign, p.ours)).rejects.toThrow(/KeyError/);
    await expect(c.db.quotas.reservationCommit(foreign, p.ours)).rejects.toThrow(/no usage row/);
    expect(await c.db.quotas.commit(foreign, p.ours)).toBe(false); // QUOTAS.commit only logs
    expect(c.log.lines().some((l) => l.level === 50 && /Failed to commit reservations/.test(l.msg))).toBe(true);
    expect(await c.db.quotas.usagesByProject(p.theirs)).toEqual({ gigabytes: { in_use: 4, reserved: 2 } });
    expect((await reservations(p.theirs)).every((x) => Number(x.deleted) === 0)).toBe(true);
  });

  it('delete_volume: reserve (with volume-type keys, usage rows created by sync) → destroy → commit, as cinder', async () => {
    const p = projects();
    const typeName = `qt${randomUUID().slice(0, 6)}`;
    const typeId = await seedVolumeType(c.db, { name: typeName });
    const vols: Record<string, string> = {};
    for (const proj of [p.theirs, p.ours]) {
      vols[proj] = await seedVolume(c.db, { projectId: proj, size: 3, volumeTypeId: typeId, status: 'deleting' });
      await seedVolume(c.db, { projectId: proj, size: 3, volumeTypeId: typeId, status: 'available' });
      await seedVolume(c.db, { projectId: proj, size: 8, volumeTypeId: typeId, status: 'available', useQuota: false }); // temporary: not counted
      const snapVol = await seedVolume(c.db, { projectId: proj, size: 2, status: 'available' });
      await seedSnapshot(c.db, snapVol, { projectId: proj, volumeSize: 2, status: 'available' });
    }
    // cinder's manager: add_volume_type_opts + QUOTAS.reserve, volume.destroy(), QUOTAS.commit
    const opts = await c.oracle.request({ op: 'add_volume_type_opts', opts: { volumes: -1, gigabytes: -3 }, volume_type_id: typeId });
    expect(opts.result).toEqual({ volumes: -1, gigabytes: -3, [`volumes_${typeName}`]: -1, [`gigabytes_${typeName}`]: -3 });
    const theirs = (await c.oracle.request({ op: 'quota_reserve', project_id: p.theirs, deltas: opts.result })).result;
    await c.oracle.call('volume_destroy', vols[p.theirs]);
    await c.oracle.call('reservation_commit', theirs, p.theirs);

    const vol = await c.db.volumes.get(vols[p.ours]!);
    expect(await c.db.quotas.addVolumeTypeOpts({ volumes: -1, gigabytes: -3 }, typeId)).toEqual(opts.result);
    const ours = await c.db.quotas.reserveForVolumeDelete(vol);
    expect(ours).toHaveLength(4);
    await c.db.volumes.destroy(vol.id);
    expect(await c.db.quotas.commit(ours, p.ours)).toBe(true);

    await expectSameQuotaState(p);
    // 3 volumes counted before the delete (the temporary one is not), 11 GiB incl. the snapshot; then one removed
    expect(await c.db.quotas.usagesByProject(p.ours)).toEqual({
      volumes: { in_use: 2, reserved: 0 },
      gigabytes: { in_use: 3 + 2 + 2, reserved: 0 },
      [`volumes_${typeName}`]: { in_use: 1, reserved: 0 },
      [`gigabytes_${typeName}`]: { in_use: 3, reserved: 0 },
    });
  });

  it('delete_snapshot: snapshots -1, gigabytes -volume_size (+ type keys), as cinder', async () => {
    const p = projects();
    const typeName = `st${randomUUID().slice(0, 6)}`;
    const typeId = await seedVolumeType(c.db, { name: typeName });
    const snaps: Record<string, string> = {};
    for (const proj of [p.theirs, p.ours]) {
      const v = await seedVolume(c.db, { projectId: proj, size: 4, volumeTypeId: typeId, status: 'available' });
      snaps[proj] = await seedSnapshot(c.db, v, { projectId: proj, volumeSize: 4, status: 'deleting' });
      await seedQuotaUsage(c.db, 'snapshots', 1, 0, proj);
      await seedQuotaUsage(c.db, 'gigabytes', 8, 0, proj);
    }
    const opts = await c.oracle.request({ op: 'add_volume_type_opts', opts: { snapshots: -1, gigabytes: -4 }, volume_type_id: typeId });
    const theirs = (await c.oracle.request({ op: 'quota_reserve', project_id: p.theirs, deltas: opts.result })).result;
    await c.oracle.call('snapshot_destroy', snaps[p.theirs]);
    await c.oracle.call('reservation_commit', theirs, p.theirs);

    const snap = await c.db.snapshots.get(snaps[p.ours]!);
    const ours = await c.db.quotas.reserveForSnapshotDelete(snap, typeId);
    await c.db.snapshots.destroy(snap.id);
    await c.db.quotas.commit(ours, p.ours);
    await expectSameQuotaState(p);
    expect((await c.db.quotas.usagesByProject(p.ours))).toMatchObject({ snapshots: { in_use: 0, reserved: 0 }, gigabytes: { in_use: 4, reserved: 0 } });
  });

  it('no_snapshot_gb_quota leaves gigabytes alone', async () => {
    const proj = `pc${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const v = await seedVolume(c.db, { projectId: proj, size: 4, status: 'available' });
    const s = await seedSnapshot(c.db, v, { projectId: proj, volumeSize: 4, status: 'deleting' });
    await seedQuotaUsage(c.db, 'snapshots', 1, 0, proj);
    await seedQuotaUsage(c.db, 'gigabytes', 8, 0, proj);
    const { openDatabase } = await import('../../../src/db/index.js');
    const db2 = await openDatabase(c.t.url, { maxRetries: 1, logger: c.log.logger, quota: { noSnapshotGbQuota: true } });
    try {
      const r = await db2.quotas.reserveForSnapshotDelete(await db2.snapshots.get(s), null);
      expect(r).toHaveLength(1);
      await db2.quotas.commit(r, proj);
      expect(await db2.quotas.usagesByProject(proj)).toEqual({ snapshots: { in_use: 0, reserved: 0 }, gigabytes: { in_use: 8, reserved: 0 } });
    } finally {
      await db2.close();
    }
  });

  it('positive reservations over quota raise OverQuota like cinder, without reserving', async () => {
    const p = projects();
    for (const proj of [p.theirs, p.ours]) await seedQuotaUsage(c.db, 'gigabytes', 999, 0, proj);
    const ref = await c.oracle.request({ op: 'quota_reserve', project_id: p.theirs, deltas: { gigabytes: 5 } });
    expect(ref.error).toBe('OverQuota');
    await expect(c.db.quotas.reserve(p.ours, { gigabytes: 5 })).rejects.toMatchObject({
      className: 'OverQuota',
      message: "Quota exceeded for resources: ['gigabytes']",
      kwargs: { overs: ['gigabytes'], quotas: { gigabytes: 1000 }, usages: { gigabytes: { in_use: 999, reserved: 0 } } },
    });
    await expectSameQuotaState(p);
    // within quota: reserved goes up, as in cinder
    const r = await c.db.quotas.reserve(p.ours, { gigabytes: 1 });
    await c.oracle.request({ op: 'quota_reserve', project_id: p.theirs, deltas: { gigabytes: 1 } });
    expect(r).toHaveLength(1);
    await expectSameQuotaState(p);
  });

  it('a per-type key of a deleted volume type is QuotaResourceUnknown, as in cinder', async () => {
    const typeName = `dt${randomUUID().slice(0, 6)}`;
    const typeId = await seedVolumeType(c.db, { name: typeName });
    await c.oracle.call('volume_type_destroy', typeId);
    const deltas = await c.db.quotas.addVolumeTypeOpts({ volumes: -1 }, typeId);
    expect(deltas).toEqual({ volumes: -1, [`volumes_${typeName}`]: -1 });
    const ref = await c.oracle.request({ op: 'quota_reserve', project_id: 'px', deltas });
    expect(ref.error).toBe('QuotaResourceUnknown');
    await expect(c.db.quotas.reserve('px', deltas)).rejects.toMatchObject({ className: 'QuotaResourceUnknown', message: `Unknown quota resources ['volumes_${typeName}'].` });
    await expect(c.db.quotas.addVolumeTypeOpts({ volumes: -1 }, randomUUID())).rejects.toMatchObject({ className: 'VolumeTypeNotFound' });
  });
});
