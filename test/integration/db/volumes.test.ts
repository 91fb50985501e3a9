// volumes repository, differential against cinder's DB API: the same operation is done by
// cinder on one row and by us on an identical row, and the rows must come out the same.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Expected } from '../../../src/db/index.js';
import { BACKENDS, seedAttachment, seedSnapshot, seedVolume, seedVolumeType, type SeedVolume } from '../../helpers/cinder-db.js';
import { diffRows, rawRow, setUpBackend, type BackendContext } from './support.js';

const T0 = new Date('2024-02-03T04:05:06.000Z');

describe.each(BACKENDS)('volumes on %s', (backend) => {
  let c: BackendContext;
  let serviceUuid: string;
  beforeAll(async () => {
    c = await setUpBackend(backend);
    serviceUuid = (await c.db.services.register({ host: 'storage1@lvm', availabilityZone: 'nova', clusterName: null })).service.uuid!;
  });
  afterAll(async () => c?.close());

  /** Two identical volumes: one for cinder, one for us. */
  async function pair(opts: SeedVolume = {}): Promise<[string, string]> {
    return [await seedVolume(c.db, { createdAt: T0, ...opts }), await seedVolume(c.db, { createdAt: T0, ...opts })];
  }
  const row = (id: string) => rawRow(c.oracle, 'volumes', 'id', id);
  const same = async (ours: string, theirs: string, presence: string[] = []) =>
    expect(diffRows(await row(ours), await row(theirs), { ignore: ['id', 'display_name'], presence: ['updated_at', 'deleted_at', ...presence] })).toEqual([]);

  it('get() hides soft-deleted rows and raises cinder’s VolumeNotFound', async () => {
    const id = await seedVolume(c.db);
    expect((await c.db.volumes.get(id)).id).toBe(id);
    await c.oracle.call('volume_destroy', id);
    await expect(c.db.volumes.get(id)).rejects.toMatchObject({ className: 'VolumeNotFound', message: `Volume ${id} could not be found.`, kwargs: { volume_id: id } });
    expect((await c.db.volumes.get(id, { readDeleted: 'yes' })).status).toBe('deleted');
    expect(await c.db.volumes.find(id)).toBeUndefined();
  });

  it('update() writes what volume_update writes (create_volume success)', async () => {
    const [mine, theirs] = await pair();
    const values = {
      status: 'available',
      launched_at: new Date('2024-02-03T05:00:00.000Z'),
      provider_location: '127.0.0.1:3260,1 iqn.2010-10.org.openstack:volume-x 1',
      provider_auth: 'CHAP user pass',
      shared_targets: false,
      service_uuid: serviceUuid,
      host: 'storage1@lvm#lvm',
      size: 2,
    };
    await c.db.volumes.update(mine, values);
    await c.oracle.call('volume_update', theirs, { ...values, launched_at: { $dt: '2024-02-03T05:00:00' } });
    await same(mine, theirs);
    const r = await c.db.volumes.get(mine);
    expect(r.updated_at!.getTime()).toBeGreaterThan(T0.getTime());
    expect(r).toMatchObject({ status: 'available', shared_targets: false, service_uuid: serviceUuid, size: 2 });
    // cinder builds its Volume object from it
    const obj = await c.oracle.request({ op: 'volume_obj', id: mine });
    expect(obj.result['versioned_object.data']).toMatchObject({ status: 'available', shared_targets: false, service_uuid: serviceUuid, provider_auth: 'CHAP user pass' });
  });

  it('update() on a deleted or missing volume raises VolumeNotFound like cinder', async () => {
    const id = await seedVolume(c.db);
    await c.db.volumes.destroy(id);
    await expect(c.db.volumes.update(id, { status: 'error' })).rejects.toMatchObject({ className: 'VolumeNotFound' });
    await expect(c.oracle.call('volume_update', id, { status: 'error' })).rejects.toThrow(/VolumeNotFound/);
    await expect(c.db.volumes.update(randomUUID(), { status: 'error' })).rejects.toMatchObject({ className: 'VolumeNotFound' });
  });

  it('rejects unknown columns instead of writing them', async () => {
    const id = await seedVolume(c.db);
    await expect(c.db.volumes.update(id, { nonsense: 1 } as never)).rejects.toThrow(/unknown or read-only column 'nonsense'/);
  });

  type Case = { name: string; seed: SeedVolume; expected: Record<string, Expected<unknown>>; cinderExpected: Record<string, unknown>; match: boolean };
  const cases: Case[] = [
    { name: 'status in list', seed: { status: 'available' }, expected: { status: ['available', 'error'] }, cinderExpected: { status: ['available', 'error'] }, match: true },
    { name: 'status not in list', seed: { status: 'in-use' }, expected: { status: ['available', 'error'] }, cinderExpected: { status: ['available', 'error'] }, match: false },
    { name: 'NULL listed', seed: { status: 'available', migrationStatus: null }, expected: { migration_status: [null, 'success'] }, cinderExpected: { migration_status: [null, 'success'] }, match: true },
    { name: 'Not() matches NULL', seed: { status: 'available', migrationStatus: null }, expected: { migration_status: { not: 'migrating' } }, cinderExpected: { migration_status: { $not: 'migrating' } }, match: true },
    // cinder's auto_none adds "OR IS NULL" for any list, even one naming None
    { name: 'Not() with NULL listed', seed: { status: 'available', migrationStatus: null }, expected: { migration_status: { not: ['migrating', null] } }, cinderExpected: { migration_status: { $not: ['migrating', null] } }, match: true },
    { name: 'Not(None)', seed: { status: 'available', migrationStatus: null }, expected: { migration_status: { not: null } }, cinderExpected: { migration_status: { $not: null } }, match: false },
    { name: 'Not(None) on a value', seed: { status: 'available', migrationStatus: 'success' }, expected: { migration_status: { not: null } }, cinderExpected: { migration_status: { $not: null } }, match: true },
    { name: 'Not() list excludes', seed: { status: 'available' }, expected: { status: { not: ['available', 'in-use'] } }, cinderExpected: { status: { $not: ['available', 'in-use'] } }, match: false },
    { name: 'several columns', seed: { status: 'available', attachStatus: 'detached' }, expected: { status: 'available', attach_status: 'detached' }, cinderExpected: { status: 'available', attach_status: 'detached' }, match: true },
  ];

  it.each(cases)('conditionalUpdate() agrees with cinder: $name', async ({ seed, expected, cinderExpected, match }) => {
    const [mine, theirs] = await pair(seed);
    const ours = await c.db.volumes.conditionalUpdate(mine, { status: 'deleting' }, expected, { fromColumns: { previous_status: 'status' } });
    const ref = await c.oracle.request({ op: 'conditional_update', model: 'Volume', id: theirs, values: { previous_status: { $col: 'status' }, status: 'deleting' }, expected: cinderExpected });
    expect(ref.ok).toBe(true);
    expect(ours).toBe(match);
    expect(ref.result).toBe(match);
    await same(mine, theirs);
    if (match) expect(await c.db.volumes.get(mine)).toMatchObject({ status: 'deleting', previous_status: seed.status });
  });

  it('conditionalUpdate() never matches a soft-deleted volume', async () => {
    const id = await seedVolume(c.db, { status: 'available' });
    await c.db.volumes.destroy(id);
    expect(await c.db.volumes.conditionalUpdate(id, { status: 'deleting' }, { status: ['available', 'deleted'] })).toBe(false);
  });

  it('destroy() soft-deletes the volume and its dependents exactly as volume_destroy', async () => {
    const typeId = await seedVolumeType(c.db);
    const ids = await pair({ status: 'deleting', migrationStatus: 'success', volumeTypeId: typeId });
    const old = new Date('2022-01-01T00:00:00.000Z');
    for (const id of ids) {
      await c.db.volumes.adminMetadataUpdate(id, { temporary: 'False', attached_mode: 'rw' });
      await c.db.volumes.metadataUpdate(id, { purpose: 'test' });
      await seedAttachment(c.db, id, { attachStatus: 'attached' });
      await seedSnapshot(c.db, id, { status: 'deleting' });
      await c.oracle.call('volume_glance_metadata_create', id, 'image_id', 'img-1');
      await c.db.volumes.update(id, { updated_at: old });
    }
    const [mine, theirs] = ids;
    const result = await c.db.volumes.destroy(mine);
    const ref = await c.oracle.call('volume_destroy', theirs);
    expect(Object.keys(result).sort()).toEqual(Object.keys(ref).sort());
    expect(result).toMatchObject({ status: 'deleted', deleted: true, migration_status: null });
    await same(mine, theirs, ['deleted_at']);
    const r = await c.db.volumes.get(mine, { readDeleted: 'yes' });
    expect(r.updated_at?.toISOString()).toBe(old.toISOString()); // updated_at kept, as cinder does
    expect(r.deleted_at).not.toBeNull();
    for (const [table, col] of [
      ['volume_metadata', 'volume_id'],
      ['volume_admin_metadata', 'volume_id'],
      ['volume_attachment', 'volume_id'],
      ['snapshots', 'volume_id'],
      ['volume_glance_metadata', 'volume_id'],
    ] as const) {
      const order = table === 'volume_attachment' || table === 'snapshots' ? 'created_at' : 'id';
      const a = await c.oracle.sql(`SELECT * FROM ${table} WHERE ${col} = :v ORDER BY ${order}`, { v: mine });
      const b = await c.oracle.sql(`SELECT * FROM ${table} WHERE ${col} = :v ORDER BY ${order}`, { v: theirs });
      expect(a.length).toBe(b.length);
      a.forEach((x, i) => expect(diffRows(x, b[i], { ignore: ['id', 'volume_id', 'display_name', 'created_at', 'instance_uuid'], presence: ['deleted_at', 'updated_at'] })).toEqual([]));
      expect(a.every((x) => Number(x.deleted) === 1)).toBe(true);
    }
    // cinder no longer sees it
    await expect(c.oracle.call('volume_get', mine)).rejects.toThrow(/VolumeNotFound/);
    await expect(c.oracle.call('volume_admin_metadata_get', mine)).rejects.toThrow(/VolumeNotFound/);
  });

  it('listByHost() returns what volume_get_all(filters={host}) returns, newest first', async () => {
    const mk = (host: string | null, minutes: number, status = 'available', extra: SeedVolume = {}) =>
      seedVolume(c.db, { host, status, createdAt: new Date(T0.getTime() + minutes * 60_000), ...extra });
    const a = await mk('lst1@lvm#lvm', 1);
    const b = await mk('lst1@lvm#pool2', 2, 'in-use');
    const d = await mk('lst1@lvm', 3, 'error');
    await mk('lst10@lvm#lvm', 4);
    const upper = await mk('LST1@lvm#lvm', 5); // LIKE is case-insensitive on SQLite, for cinder too
    await mk('lst1@other#lvm', 6);
    const gone = await mk('lst1@lvm#lvm', 7);
    await c.db.volumes.destroy(gone);
    const ours = (await c.db.volumes.listByHost('lst1@lvm')).map((v) => v.id);
    const theirs = (await c.oracle.callKw('volume_get_all', [], { filters: { host: 'lst1@lvm' } })).map((v: { id: string }) => v.id);
    expect(ours).toEqual(backend === 'sqlite' ? [upper, d, b, a] : [d, b, a]);
    expect(ours).toEqual(theirs);
    const byStatus = (await c.db.volumes.listByHost('lst1@lvm', { status: ['available', 'in-use'] })).map((v) => v.id);
    const theirsByStatus = (await c.oracle.callKw('volume_get_all', [], { filters: { host: 'lst1@lvm', status: ['available', 'in-use'] } })).map((v: { id: string }) => v.id);
    expect(byStatus).toEqual(backend === 'sqlite' ? [upper, b, a] : [b, a]);
    expect(byStatus).toEqual(theirsByStatus);
    expect((await c.db.volumes.listByHost('lst1@lvm#lvm')).map((v) => v.id)).toEqual([a]);
    expect((await c.db.volumes.listByHost('lst1@lvm', { limit: 2, offset: 1 })).map((v) => v.id)).toEqual(ours.slice(1, 3));
  });

  it('dataGetForHost() equals volume_data_get_for_host', async () => {
    await seedVolume(c.db, { host: 'cap1@lvm#lvm', size: 3 });
    await seedVolume(c.db, { host: 'cap1@lvm#p2', size: 4 });
    await seedVolume(c.db, { host: 'cap1@lvm', size: 5 });
    await seedVolume(c.db, { host: 'cap12@lvm#lvm', size: 100 });
    const gone = await seedVolume(c.db, { host: 'cap1@lvm#lvm', size: 100 });
    await c.db.volumes.destroy(gone);
    const ours = await c.db.volumes.dataGetForHost('cap1@lvm');
    const theirs = await c.oracle.call('volume_data_get_for_host', 'cap1@lvm');
    expect([ours.count, ours.gigabytes]).toEqual(theirs);
    expect(ours).toEqual({ count: 3, gigabytes: 12 });
  });

  it('admin metadata get/update/delete match cinder’s', async () => {
    const [mine, theirs] = await pair();
    const steps: Array<[Record<string, string>, boolean]> = [
      [{ attached_mode: 'rw', readonly: 'False' }, false],
      [{ readonly: 'True', temporary: 'True' }, false],
      [{ readonly: 'True' }, true],
    ];
    for (const [meta, del] of steps) {
      const ours = await c.db.volumes.adminMetadataUpdate(mine, meta, del);
      const ref = await c.oracle.call('volume_admin_metadata_update', theirs, meta, del);
      expect(ours).toEqual(ref);
      expect(await c.db.volumes.adminMetadataGet(mine)).toEqual(await c.oracle.call('volume_admin_metadata_get', theirs));
    }
    await c.db.volumes.adminMetadataDelete(mine, 'readonly');
    await c.oracle.call('volume_admin_metadata_delete', theirs, 'readonly');
    expect(await c.db.volumes.adminMetadataGet(mine)).toEqual({});
    const a = await c.oracle.sql('SELECT * FROM volume_admin_metadata WHERE volume_id = :v ORDER BY id', { v: mine });
    const b = await c.oracle.sql('SELECT * FROM volume_admin_metadata WHERE volume_id = :v ORDER BY id', { v: theirs });
    expect(a.length).toBe(b.length);
    a.forEach((x, i) => expect(diffRows(x, b[i], { ignore: ['id', 'volume_id'], presence: ['created_at', 'updated_at', 'deleted_at'] })).toEqual([]));
    await expect(c.db.volumes.adminMetadataGet(randomUUID())).rejects.toMatchObject({ className: 'VolumeNotFound' });
  });

  it('updateStatusBasedOnAttachment() matches cinder', async () => {
    const [mine, theirs] = await pair({ status: 'uploading' });
    expect(await c.db.volumes.updateStatusBasedOnAttachment(mine)).toBe('available');
    await c.oracle.call('volume_update_status_based_on_attachment', theirs);
    await same(mine, theirs);
    await seedAttachment(c.db, mine);
    await seedAttachment(c.db, theirs);
    expect(await c.db.volumes.updateStatusBasedOnAttachment(mine)).toBe('in-use');
    await c.oracle.call('volume_update_status_based_on_attachment', theirs);
    await same(mine, theirs);
  });

  it('getWithRelations() carries type, extra specs, metadata and live attachments', async () => {
    const typeId = await seedVolumeType(c.db, { name: 'gold', extraSpecs: { volume_backend_name: 'lvm', 'capabilities:foo': '<is> True' } });
    const id = await seedVolume(c.db, { volumeTypeId: typeId });
    await c.db.volumes.adminMetadataUpdate(id, { attached_mode: 'ro' });
    const att = await seedAttachment(c.db, id);
    const gone = await seedAttachment(c.db, id);
    await c.db.attachments.destroy(gone);
    const full = await c.db.volumes.getWithRelations(id);
    expect(full.volume.id).toBe(id);
    expect(full.adminMetadata).toEqual({ attached_mode: 'ro' });
    expect(full.attachments.map((a) => a.id)).toEqual([att]);
    expect(full.volumeType).toMatchObject({ id: typeId, name: 'gold', extra_specs: { volume_backend_name: 'lvm', 'capabilities:foo': '<is> True' } });
  });
});
