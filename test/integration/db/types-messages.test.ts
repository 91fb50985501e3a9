// Volume types / extra specs / QoS / encryption reads and user messages, against cinder's DB API.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageAction, MessageDetail, MessageResource } from '../../../src/db/index.js';
import { BACKENDS, seedQosSpecs, seedVolumeType } from '../../helpers/cinder-db.js';
import { setUpBackend, type BackendContext } from './support.js';

/** Dates → cinder's naive ISO strings, so our results compare with the oracle's JSON. */
function py(v: unknown, backend: string): unknown {
  if (v instanceof Date) {
    const iso = v.toISOString().replace('Z', '');
    return backend === 'mysql' || v.getUTCMilliseconds() === 0 ? iso.slice(0, 19) : `${iso}000`;
  }
  if (Array.isArray(v)) return v.map((x) => py(x, backend));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, py(x, backend)]));
  return v;
}

/** cinder's own timestamps carry microseconds; ours (JS Dates) milliseconds. */
function ms(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\d{3}$/, '$1000').replace(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.000000$/, '$1');
  if (Array.isArray(v)) return v.map(ms);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ms(x)]));
  return v;
}

describe.each(BACKENDS)('volume types and messages on %s', (backend) => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend(backend);
  });
  afterAll(async () => c?.close());

  it('get()/getByName() return volume_type_get’s dict', async () => {
    const id = await seedVolumeType(c.db, { name: `t-${randomUUID().slice(0, 6)}`, extraSpecs: { volume_backend_name: 'lvm', 'capabilities:thin_provisioning_support': '<is> True' } });
    await c.oracle.call('volume_type_extra_specs_delete', id, 'capabilities:thin_provisioning_support');
    const ours = await c.db.volumeTypes.get(id);
    const theirs = await c.oracle.call('volume_type_get', id);
    expect(py(ours, backend)).toEqual(theirs);
    expect(ours.extra_specs).toEqual({ volume_backend_name: 'lvm' });
    expect(py(await c.db.volumeTypes.getByName(ours.name!), backend)).toEqual(await c.oracle.call('volume_type_get_by_name', ours.name));
    expect(await c.db.volumeTypes.extraSpecs(id)).toEqual(await c.oracle.call('volume_type_extra_specs_get', id));
  });

  it('deleted types: only found with inactive, like cinder', async () => {
    const id = await seedVolumeType(c.db);
    await c.oracle.call('volume_type_destroy', id);
    await expect(c.db.volumeTypes.get(id)).rejects.toMatchObject({ className: 'VolumeTypeNotFound', message: `Volume type ${id} could not be found.` });
    await expect(c.oracle.call('volume_type_get', id)).rejects.toThrow(/VolumeTypeNotFound/);
    const ours = await c.db.volumeTypes.get(id, { inactive: true });
    expect(py(ours, backend)).toEqual(ms(await c.oracle.callKw('volume_type_get', [id], { inactive: true })));
  });

  it('QoS specs: qosSpecsForType()/qosSpecsGet() equal volume_type_qos_specs_get/qos_specs_get', async () => {
    const qos = await seedQosSpecs(c.db, `q-${randomUUID().slice(0, 6)}`, 'front-end', { total_iops_sec: '500', read_bytes_sec_per_gb: '1048576' });
    const typeId = await seedVolumeType(c.db, { qosSpecsId: qos });
    const plain = await seedVolumeType(c.db);
    expect(py(await c.db.volumeTypes.qosSpecsForType(typeId), backend)).toEqual(await c.oracle.call('volume_type_qos_specs_get', typeId));
    expect(await c.db.volumeTypes.qosSpecsForType(plain)).toEqual(await c.oracle.call('volume_type_qos_specs_get', plain));
    const ours = await c.db.volumeTypes.qosSpecsGet(qos);
    expect(py(ours, backend)).toEqual(await c.oracle.call('qos_specs_get', qos));
    expect(ours).toMatchObject({ consumer: 'front-end', specs: { total_iops_sec: '500', read_bytes_sec_per_gb: '1048576' } });
    await expect(c.db.volumeTypes.qosSpecsGet(randomUUID())).rejects.toMatchObject({ className: 'QoSSpecsNotFound' });
  });

  it('encryptionGet() equals volume_type_encryption_get', async () => {
    const typeId = await seedVolumeType(c.db);
    expect(await c.db.volumeTypes.encryptionGet(typeId)).toBeUndefined();
    await c.oracle.call('volume_type_encryption_create', typeId, { cipher: 'aes-xts-plain64', key_size: 256, provider: 'luks', control_location: 'front-end' });
    const ours = await c.db.volumeTypes.encryptionGet(typeId);
    expect(py(ours, backend)).toEqual(ms(await c.oracle.call('volume_type_encryption_get', typeId)));
  });

  it('messages.create() writes what message_api.create writes; cinder lists it', async () => {
    const before = Date.now();
    const id = await c.db.messages.create({
      projectId: 'proj1',
      requestId: 'req-7c1d4a0e-3a0b-4d0f-9a43-0a6f3c3b1e11',
      actionId: MessageAction.EXTEND_VOLUME,
      resourceType: MessageResource.VOLUME,
      resourceUuid: 'vol-uuid',
      detailId: MessageDetail.DRIVER_FAILED_EXTEND,
    });
    const theirs = await c.oracle.call('message_get', id);
    expect(theirs).toMatchObject({
      id,
      project_id: 'proj1',
      request_id: 'req-7c1d4a0e-3a0b-4d0f-9a43-0a6f3c3b1e11',
      resource_type: 'VOLUME',
      resource_uuid: 'vol-uuid',
      event_id: 'VOLUME_VOLUME_007_010',
      detail_id: '010',
      action_id: '007',
      message_level: 'ERROR',
    });
    const expires = new Date(`${theirs.expires_at}Z`).getTime();
    expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 2592000_000);
    expect(expires).toBeLessThan(Date.now() + 2592000_000 + 1000);
    const listed = await c.oracle.callKw('message_get_all', [], { filters: { resource_uuid: 'vol-uuid' } });
    expect(listed.map((m: { id: string }) => m.id)).toEqual([id]);

    const mapped = await c.db.messages.create({ projectId: 'proj1', requestId: null, actionId: MessageAction.SNAPSHOT_DELETE, resourceType: MessageResource.VOLUME_SNAPSHOT, exceptionClass: 'SnapshotIsBusy' });
    expect(await c.oracle.call('message_get', mapped)).toMatchObject({ event_id: 'VOLUME_VOLUME_SNAPSHOT_010_015', detail_id: '015' });
  });
});
