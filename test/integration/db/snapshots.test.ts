// snapshots and volume_glance_metadata, differential against cinder's DB API.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, seedSnapshot, seedVolume } from '../../helpers/cinder-db.js';
import { diffRows, rawRow, setUpBackend, type BackendContext } from './support.js';

describe.each(BACKENDS)('snapshots on %s', (backend) => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend(backend);
  });
  afterAll(async () => c?.close());

  async function pair(status = 'creating'): Promise<Array<{ volume: string; snap: string }>> {
    const out = [];
    for (let i = 0; i < 2; i++) {
      const volume = await seedVolume(c.db, { status: 'available', size: 3, bootable: true });
      out.push({ volume, snap: await seedSnapshot(c.db, volume, { status }) });
    }
    return out;
  }
  const srow = (id: string) => rawRow(c.oracle, 'snapshots', 'id', id);
  const same = async (a: string, b: string) =>
    expect(diffRows(await srow(a), await srow(b), { ignore: ['id', 'volume_id', 'display_name'], presence: ['created_at', 'updated_at', 'deleted_at'] })).toEqual([]);

  it('get() / SnapshotNotFound', async () => {
    const [p] = await pair();
    expect((await c.db.snapshots.get(p!.snap)).volume_size).toBe(3);
    await c.db.snapshots.destroy(p!.snap);
    await expect(c.db.snapshots.get(p!.snap)).rejects.toMatchObject({ className: 'SnapshotNotFound', message: `Snapshot ${p!.snap} could not be found.` });
    expect((await c.db.snapshots.get(p!.snap, { readDeleted: 'yes' })).status).toBe('deleted');
  });

  it('update() writes what snapshot_update writes (create_snapshot success)', async () => {
    const [mine, theirs] = await pair();
    const values = { status: 'available', progress: '100%', encryption_key_id: null, provider_location: 'loc' };
    await c.db.snapshots.update(mine!.snap, values);
    await c.oracle.call('snapshot_update', theirs!.snap, values);
    await same(mine!.snap, theirs!.snap);
    const obj = await c.oracle.request({ op: 'snapshot_obj', id: mine!.snap });
    expect(obj.result['versioned_object.data']).toMatchObject({ status: 'available', progress: '100%' });
  });

  it('conditionalUpdate() agrees with cinder', async () => {
    const [mine, theirs] = await pair('available');
    expect(await c.db.snapshots.conditionalUpdate(mine!.snap, { status: 'deleting' }, { status: ['available', 'error'] })).toBe(true);
    const ref = await c.oracle.request({ op: 'conditional_update', model: 'Snapshot', id: theirs!.snap, values: { status: 'deleting' }, expected: { status: ['available', 'error'] } });
    expect(ref.result).toBe(true);
    await same(mine!.snap, theirs!.snap);
    expect(await c.db.snapshots.conditionalUpdate(mine!.snap, { status: 'x' }, { status: 'available' })).toBe(false);
  });

  it('destroy() matches snapshot_destroy (metadata too, updated_at kept)', async () => {
    const [mine, theirs] = await pair('deleting');
    for (const p of [mine!, theirs!]) await c.oracle.call('snapshot_metadata_update', p.snap, { k: 'v' }, false);
    const ours = await c.db.snapshots.destroy(mine!.snap);
    const ref = await c.oracle.call('snapshot_destroy', theirs!.snap);
    expect(Object.keys(ours).sort()).toEqual(Object.keys(ref).sort());
    await same(mine!.snap, theirs!.snap);
    expect((await srow(mine!.snap)).updated_at).toBeNull();
    const a = await c.oracle.sql('SELECT * FROM snapshot_metadata WHERE snapshot_id = :s', { s: mine!.snap });
    const b = await c.oracle.sql('SELECT * FROM snapshot_metadata WHERE snapshot_id = :s', { s: theirs!.snap });
    expect(diffRows(a[0], b[0], { ignore: ['id', 'snapshot_id'], presence: ['created_at', 'updated_at', 'deleted_at'] })).toEqual([]);
    expect(Number(a[0].deleted)).toBe(1);
    await expect(c.oracle.call('snapshot_get', mine!.snap)).rejects.toThrow(/SnapshotNotFound/);
  });

  it('listByVolume() / listByHost() match cinder', async () => {
    const vol = await seedVolume(c.db, { host: 'snaphost@lvm#lvm' });
    const s1 = await seedSnapshot(c.db, vol, { status: 'available' });
    const s2 = await seedSnapshot(c.db, vol, { status: 'creating' });
    const s3 = await seedSnapshot(c.db, vol);
    await c.db.snapshots.destroy(s3);
    expect((await c.db.snapshots.listByVolume(vol)).map((s) => s.id).sort()).toEqual([s1, s2].sort());
    expect((await c.oracle.call('snapshot_get_all_for_volume', vol)).map((s: { id: string }) => s.id).sort()).toEqual([s1, s2].sort());
    const ours = (await c.db.snapshots.listByHost('snaphost@lvm')).map((s) => s.id).sort();
    const theirs = (await c.oracle.callKw('snapshot_get_all', [], { filters: { host: 'snaphost@lvm' } })).map((s: { id: string }) => s.id).sort();
    expect(ours).toEqual(theirs);
    expect((await c.db.snapshots.listByHost('snaphost@lvm', { status: 'available' })).map((s) => s.id)).toEqual([s1]);
  });

  it('create() inserts what snapshot_create inserts', async () => {
    const vol = await seedVolume(c.db);
    const v = await c.db.volumes.get(vol);
    const values = { volume_id: vol, status: 'creating', progress: '0%', volume_size: 1, volume_type_id: v.volume_type_id, project_id: 'p', user_id: 'u', display_name: '[revert] volume x backup snapshot', use_quota: false };
    const ours = await c.db.snapshots.create(values);
    const ref = await c.oracle.call('snapshot_create', values);
    expect(diffRows(await srow(ours.id), await srow(ref.id), { ignore: ['id'], presence: ['created_at', 'updated_at', 'deleted_at'] })).toEqual([]);
  });

  it('glance metadata: copy to snapshot, delete by snapshot, copy to a new volume — as cinder', async () => {
    const [mine, theirs] = await pair('creating');
    for (const p of [mine!, theirs!]) await c.oracle.call('volume_glance_metadata_bulk_create', p.volume, { image_id: 'img-1', min_disk: '1' });
    await c.db.glanceMetadata.copyToSnapshot(mine!.snap, mine!.volume);
    await c.oracle.call('volume_glance_metadata_copy_to_snapshot', theirs!.snap, theirs!.volume);
    const q = (s: string) => c.oracle.sql('SELECT * FROM volume_glance_metadata WHERE snapshot_id = :s ORDER BY id', { s });
    const [a, b] = [await q(mine!.snap), await q(theirs!.snap)];
    expect(a.length).toBe(2);
    a.forEach((x, i) => expect(diffRows(x, b[i], { ignore: ['id', 'snapshot_id'], presence: ['created_at', 'updated_at', 'deleted_at'] })).toEqual([]));
    await expect(c.db.glanceMetadata.getForSnapshot(mine!.snap).then((rows) => rows.map((r) => [r.key, r.value]))).resolves.toEqual([
      ['image_id', 'img-1'],
      ['min_disk', '1'],
    ]);

    const target = await seedVolume(c.db);
    await c.db.glanceMetadata.copyToVolume(target, mine!.snap);
    expect((await c.oracle.call('volume_glance_metadata_get', target)).map((r: { key: string }) => r.key).sort()).toEqual(['image_id', 'min_disk']);

    await c.db.glanceMetadata.deleteBySnapshot(mine!.snap);
    await c.oracle.call('volume_glance_metadata_delete_by_snapshot', theirs!.snap);
    const [a2, b2] = [await q(mine!.snap), await q(theirs!.snap)];
    a2.forEach((x, i) => expect(diffRows(x, b2[i], { ignore: ['id', 'snapshot_id'], presence: ['created_at', 'updated_at', 'deleted_at'] })).toEqual([]));
    await expect(c.db.glanceMetadata.getForSnapshot(mine!.snap)).rejects.toMatchObject({ className: 'GlanceMetadataNotFound' });
    await expect(c.db.glanceMetadata.copyToSnapshot(mine!.snap, randomUUID())).rejects.toMatchObject({ className: 'GlanceMetadataNotFound' });
  });

  it('glance metadata bulkCreate() stores what volume_glance_metadata_bulk_create stores', async () => {
    const [v1, v2] = [await seedVolume(c.db), await seedVolume(c.db)];
    const meta = { image_id: 'img-2', size: 1024, container_format: 'bare' };
    await c.db.glanceMetadata.bulkCreate(v1, meta);
    await c.oracle.call('volume_glance_metadata_bulk_create', v2, meta);
    const q = (v: string) => c.oracle.sql('SELECT * FROM volume_glance_metadata WHERE volume_id = :v ORDER BY id', { v });
    const [a, b] = [await q(v1), await q(v2)];
    a.forEach((x, i) => expect(diffRows(x, b[i], { ignore: ['id', 'volume_id'], presence: ['created_at', 'updated_at', 'deleted_at'] })).toEqual([]));
    await expect(c.db.glanceMetadata.bulkCreate(v1, { image_id: 'again' })).rejects.toMatchObject({ className: 'GlanceMetadataExists' });
  });
});
