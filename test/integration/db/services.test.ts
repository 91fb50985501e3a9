// services/clusters rows: registration, versions, heartbeat — checked against cinder's own DB API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOLUME_OBJECT_VERSION, VOLUME_RPC_API_VERSION, isUp } from '../../../src/db/index.js';
import { BACKENDS } from '../../helpers/cinder-db.js';
import { diffRows, rawRow, setUpBackend, type BackendContext } from './support.js';

describe.each(BACKENDS)('services on %s', (backend) => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend(backend);
  });
  afterAll(async () => c?.close());

  it('register() creates the row cinder’s _create_service_ref creates', async () => {
    const { service, created, addedToCluster } = await c.db.services.register({ host: 'hostA@lvm', availabilityZone: 'nova', clusterName: null });
    expect(created).toBe(true);
    expect(addedToCluster).toBe(false);
    expect(service).toMatchObject({
      host: 'hostA@lvm',
      binary: 'cinder-volume',
      topic: 'cinder-volume',
      report_count: 0,
      availability_zone: 'nova',
      rpc_current_version: VOLUME_RPC_API_VERSION,
      object_current_version: VOLUME_OBJECT_VERSION,
      disabled: false,
      frozen: false,
      deleted: false,
      replication_status: 'not-capable',
      active_backend_id: null,
      cluster_name: null,
    });
    expect(service.uuid).toMatch(/^[0-9a-f-]{36}$/);

    // The same values through cinder's service_create (what Service.create() sends).
    const theirs = await c.oracle.call('service_create', {
      host: 'hostB@lvm',
      binary: 'cinder-volume',
      topic: 'cinder-volume',
      report_count: 0,
      availability_zone: 'nova',
      rpc_current_version: '3.18',
      object_current_version: '1.39',
      cluster_name: null,
      uuid: '0b8a4ff4-6e52-4a4b-9d70-2a1e1c0c0c0c',
    });
    const ours = await rawRow(c.oracle, 'services', 'id', service.id);
    const ref = await rawRow(c.oracle, 'services', 'id', theirs.id);
    expect(diffRows(ours, ref, { ignore: ['id', 'uuid', 'host'], presence: ['created_at', 'updated_at', 'deleted_at', 'modified_at'] })).toEqual([]);

    // cinder loads it as a Service object and finds it up.
    const obj = await c.oracle.request({ op: 'service_obj', host: 'hostA@lvm', binary: 'cinder-volume' });
    expect(obj.ok).toBe(true);
    expect(obj.result['versioned_object.data']).toMatchObject({ id: service.id, uuid: service.uuid, rpc_current_version: '3.18', object_current_version: '1.39' });
    const up = await c.oracle.callKw('service_get_all', [], { is_up: true, host: 'hostA@lvm' });
    expect(up.map((s: { id: number }) => s.id)).toEqual([service.id]);
  });

  it('register() again keeps id and uuid, refreshes versions and updated_at', async () => {
    const first = (await c.db.services.register({ host: 'hostC@lvm', availabilityZone: 'nova', clusterName: null })).service;
    const old = new Date('2020-01-01T00:00:00Z');
    await c.oracle.call('service_update', first.id, { rpc_current_version: '3.0', object_current_version: '1.0', report_count: 7, updated_at: { $dt: '2020-01-01T00:00:00' } });
    const again = await c.db.services.register({ host: 'hostC@lvm', availabilityZone: 'nova', clusterName: null });
    expect(again.created).toBe(false);
    expect(again.service.id).toBe(first.id);
    expect(again.service.uuid).toBe(first.uuid);
    expect(again.service.rpc_current_version).toBe('3.18');
    expect(again.service.object_current_version).toBe('1.39');
    expect(again.service.report_count).toBe(7);
    expect(again.service.updated_at!.getTime()).toBeGreaterThan(old.getTime());
  });

  it('fills in a NULL uuid on an existing row', async () => {
    const theirs = await c.oracle.call('service_create', { host: 'hostD@lvm', binary: 'cinder-volume', topic: 'cinder-volume', report_count: 3, availability_zone: 'nova', rpc_current_version: '3.18', object_current_version: '1.39' });
    expect(theirs.uuid).toBeNull();
    const { service } = await c.db.services.register({ host: 'hostD@lvm', availabilityZone: 'nova', clusterName: null });
    expect(service.id).toBe(theirs.id);
    expect(service.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect((await c.oracle.call('service_get_by_uuid', service.uuid)).id).toBe(service.id);
  });

  it('finds its row case-sensitively, as cinder does on both backends', async () => {
    await c.db.services.register({ host: 'hostE@lvm', availabilityZone: 'nova', clusterName: null });
    expect(await c.db.services.getByHostAndBinary('HOSTE@lvm')).toBeUndefined();
    expect((await c.db.services.getByHostAndBinary('hostE@lvm'))?.host).toBe('hostE@lvm');
    await expect(c.oracle.callKw('service_get', [], { host: 'HOSTE@lvm', binary: 'cinder-volume' })).rejects.toThrow(/ServiceNotFound/);
  });

  it('reportState() is cinder’s heartbeat: report_count + 1, updated_at now, AZ refreshed', async () => {
    const { service } = await c.db.services.register({ host: 'hostF@lvm', availabilityZone: 'nova', clusterName: null });
    // cinder's is_up query looks at created_at and updated_at
    await c.oracle.call('service_update', service.id, { created_at: { $dt: '2020-01-01T00:00:00' }, updated_at: { $dt: '2020-01-01T00:00:00' } });
    expect(await c.oracle.callKw('service_get_all', [], { is_up: true, host: 'hostF@lvm' })).toEqual([]);
    expect(await c.db.services.reportState(service.id, 'az2')).toBe(true);
    expect(await c.db.services.reportState(service.id, 'az2')).toBe(true);
    const row = await c.db.services.getById(service.id);
    expect(row.report_count).toBe(2);
    expect(row.availability_zone).toBe('az2');
    expect(isUp(row, new Date(), 60)).toBe(true);
    const up = await c.oracle.callKw('service_get_all', [], { is_up: true, host: 'hostF@lvm' });
    expect(up.map((s: { id: number }) => s.id)).toEqual([service.id]);
  });

  it('reportState() reports a vanished row so the caller can re-register', async () => {
    const { service } = await c.db.services.register({ host: 'hostG@lvm', availabilityZone: 'nova', clusterName: null });
    await c.oracle.call('service_destroy', service.id);
    expect(await c.db.services.reportState(service.id)).toBe(false);
    const again = await c.db.services.register({ host: 'hostG@lvm', availabilityZone: 'nova', clusterName: null });
    expect(again.created).toBe(true);
    expect(again.service.id).not.toBe(service.id);
  });

  it('update() with disabled behaves like cinder’s service_update (modified_at set, updated_at kept)', async () => {
    const a = (await c.db.services.register({ host: 'hostH@lvm', availabilityZone: 'nova', clusterName: null })).service;
    const b = (await c.db.services.register({ host: 'hostI@lvm', availabilityZone: 'nova', clusterName: null })).service;
    for (const id of [a.id, b.id]) await c.oracle.call('service_update', id, { updated_at: { $dt: '2021-02-03T04:05:06' } });
    await c.db.services.update(a.id, { disabled: true, disabled_reason: 'maintenance' });
    await c.oracle.call('service_update', b.id, { disabled: true, disabled_reason: 'maintenance' });
    const ours = await rawRow(c.oracle, 'services', 'id', a.id);
    const theirs = await rawRow(c.oracle, 'services', 'id', b.id);
    expect(diffRows(ours, theirs, { ignore: ['id', 'uuid', 'host', 'created_at'], presence: ['modified_at'] })).toEqual([]);
    expect(String(ours.updated_at)).toMatch(/^2021-02-03.04:05:06/);
  });

  it('register() in a cluster creates the cluster row cinder expects', async () => {
    const r = await c.db.services.register({ host: 'hostJ@lvm', availabilityZone: 'nova', clusterName: 'clu1@lvm' });
    expect(r.addedToCluster).toBe(true);
    expect(r.service.cluster_name).toBe('clu1@lvm');
    const cluster = await c.oracle.callKw('cluster_get', [null], { name: 'clu1@lvm', binary: 'cinder-volume' });
    expect(cluster).toMatchObject({ name: 'clu1@lvm', binary: 'cinder-volume', disabled: false, frozen: false, race_preventer: 0, replication_status: 'not-capable' });
    // a host added to an existing cluster takes the cluster's replication fields
    await c.oracle.call('cluster_update', cluster.id, { replication_status: 'enabled', active_backend_id: 'b2' });
    await c.db.services.register({ host: 'hostK@lvm', availabilityZone: 'nova', clusterName: null });
    const moved = await c.db.services.register({ host: 'hostK@lvm', availabilityZone: 'nova', clusterName: 'clu1@lvm' });
    expect(moved.addedToCluster).toBe(true);
    expect(moved.service).toMatchObject({ cluster_name: 'clu1@lvm', replication_status: 'enabled', active_backend_id: 'b2' });
  });

  it('minimumVersions() is what cinder’s RPC clients use as caps', async () => {
    const v = await c.db.services.minimumVersions();
    expect(v).toEqual({ rpc: '3.18', object: '1.39' });
    await c.oracle.call('service_create', { host: 'old@lvm', binary: 'cinder-volume', topic: 'cinder-volume', report_count: 0, rpc_current_version: '3.9', object_current_version: '1.38', uuid: '6f2b8f0e-1111-4c4c-8d8d-000000000001' });
    expect(await c.db.services.minimumVersions()).toEqual({ rpc: '3.9', object: '1.38' });
    await c.oracle.call('service_create', { host: 'liberty@lvm', binary: 'cinder-volume', topic: 'cinder-volume', report_count: 0, uuid: '6f2b8f0e-1111-4c4c-8d8d-000000000002' });
    await expect(c.db.services.minimumVersions()).rejects.toMatchObject({ className: 'ServiceTooOld' });
  });
});
