// workers table: cleanable-operation rows shared with cinder-api, checked with cinder's DB API.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../../helpers/cinder-db.js';
import { setUpBackend, type BackendContext } from './support.js';

describe.each(BACKENDS)('workers on %s', (backend) => {
  let c: BackendContext;
  let serviceId: number;
  let otherServiceId: number;
  beforeAll(async () => {
    c = await setUpBackend(backend);
    serviceId = (await c.db.services.register({ host: 'storage1@lvm', availabilityZone: 'nova', clusterName: null })).service.id;
    otherServiceId = (await c.db.services.register({ host: 'storage2@lvm', availabilityZone: 'nova', clusterName: null })).service.id;
  });
  afterAll(async () => c?.close());

  /** What cinder-api's create_worker does before casting (service_id NULL, µs updated_at). */
  const apiWorker = (resourceId: string, status = 'creating', type = 'Volume') =>
    c.oracle.callKw('worker_create', [], { resource_type: type, resource_id: resourceId, status });

  it('create() makes a row cinder finds; duplicates raise WorkerExists', async () => {
    const rid = randomUUID();
    const w = await c.db.workers.create({ resourceType: 'Volume', resourceId: rid, status: 'creating', serviceId });
    expect(w).toMatchObject({ resource_type: 'Volume', resource_id: rid, status: 'creating', service_id: serviceId, race_preventer: 0, deleted: false });
    expect(w.updated_at_raw).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
    const theirs = await c.oracle.callKw('worker_get', [], { resource_type: 'Volume', resource_id: rid });
    expect(theirs).toMatchObject({ id: w.id, service_id: serviceId, status: 'creating' });
    await expect(c.db.workers.create({ resourceType: 'Volume', resourceId: rid, status: 'deleting' })).rejects.toMatchObject({ className: 'WorkerExists' });
  });

  it('setWorker() claims the row cinder-api created, as set_worker does', async () => {
    const rid = randomUUID();
    const api = await apiWorker(rid);
    expect(api.service_id).toBeNull();
    const w = await c.db.workers.setWorker({ resourceType: 'Volume', resourceId: rid, status: 'creating' }, serviceId);
    expect(w).toMatchObject({ id: api.id, service_id: serviceId, status: 'creating', race_preventer: 1 });
    expect((await c.oracle.callKw('worker_get', [], { id: api.id })).service_id).toBe(serviceId);
    // already ours with the same status: nothing to do
    const again = await c.db.workers.setWorker({ resourceType: 'Volume', resourceId: rid, status: 'creating' }, serviceId, w);
    expect(again.race_preventer).toBe(1);
    // the status moved on (create → downloading) → row follows
    const moved = await c.db.workers.setWorker({ resourceType: 'Volume', resourceId: rid, status: 'downloading' }, serviceId, w);
    expect(moved).toMatchObject({ status: 'downloading', race_preventer: 2 });
  });

  it('setWorker() creates the row when cinder-api did not, and loses races with CleanableInUse', async () => {
    const rid = randomUUID();
    const w = await c.db.workers.setWorker({ resourceType: 'Snapshot', resourceId: rid, status: 'creating' }, serviceId);
    expect(w).toMatchObject({ resource_type: 'Snapshot', service_id: serviceId, race_preventer: 0 });
    // someone else updates the row (e.g. the API re-creates the worker for a new operation)
    await c.oracle.callKw('worker_update', [w.id], { service_id: null, status: 'deleting' });
    await expect(c.db.workers.setWorker({ resourceType: 'Snapshot', resourceId: rid, status: 'error' }, serviceId, w)).rejects.toMatchObject({ className: 'CleanableInUse' });
  });

  it('unsetWorker() removes the row (hard delete)', async () => {
    const rid = randomUUID();
    const w = await c.db.workers.create({ resourceType: 'Volume', resourceId: rid, status: 'deleting', serviceId });
    expect(await c.db.workers.unsetWorker(w)).toBe(1);
    await expect(c.oracle.callKw('worker_get', [], { id: w.id })).rejects.toThrow(/WorkerNotFound/);
    const [left] = await c.oracle.sql('SELECT COUNT(*) AS n FROM workers WHERE id = :id', { id: w.id });
    expect(Number(left.n)).toBe(0);
  });

  it('listByService() is init_host’s cleanup query (SENTINEL and other services excluded)', async () => {
    const mine = [randomUUID(), randomUUID()];
    for (const rid of mine) await c.db.workers.create({ resourceType: 'Volume', resourceId: rid, status: 'creating', serviceId });
    await c.db.workers.create({ resourceType: 'Volume', resourceId: randomUUID(), status: 'creating', serviceId: otherServiceId });
    const now = new Date(Date.now() + 1000);
    const ours = (await c.db.workers.listByService(serviceId, { until: now })).map((w) => w.id);
    const theirs = (await c.oracle.callKw('worker_get_all', [], { service_id: serviceId, until: { $dt: now.toISOString().replace('Z', '') } })).map((w: { id: number }) => w.id);
    expect(ours.sort()).toEqual(theirs.sort());
    const ids = (await c.db.workers.listByService(serviceId)).map((w) => w.resource_id);
    expect(ids).toEqual(expect.arrayContaining(mine));
    const [sentinel] = await c.oracle.sql("SELECT COUNT(*) AS n FROM workers WHERE resource_type = 'SENTINEL'");
    expect(Number(sentinel.n)).toBe(1);
    expect((await c.db.workers.list()).some((w) => w.resource_type === 'SENTINEL')).toBe(false);
  });

  it('claimForCleanup() claims once; a stale row cannot be claimed', async () => {
    const rid = randomUUID();
    await apiWorker(rid, 'deleting');
    await c.oracle.callKw('worker_update', [null], { filters: { resource_type: 'Volume', resource_id: rid }, service_id: otherServiceId });
    const [row] = await c.db.workers.list({ serviceId: otherServiceId, resourceId: rid });
    expect(row).toBeDefined();
    const stale = { ...row! };
    expect(await c.db.workers.claimForCleanup(serviceId, row!)).toBe(true);
    expect(row).toMatchObject({ service_id: serviceId, race_preventer: stale.race_preventer + 1 });
    expect(await c.db.workers.claimForCleanup(serviceId, stale)).toBe(false);
    const theirs = await c.oracle.callKw('worker_get', [], { id: row!.id });
    expect(theirs).toMatchObject({ service_id: serviceId, race_preventer: stale.race_preventer + 1 });
  });

  it('update() can put back the exact microsecond updated_at cinder wrote', async () => {
    const rid = randomUUID();
    const api = await apiWorker(rid, 'creating');
    const [row] = await c.db.workers.list({ resourceId: rid });
    const original = row!.updated_at_raw!;
    expect(original.replace(' ', 'T')).toBe(api.updated_at.length === 19 ? `${api.updated_at}.000000` : api.updated_at);
    await c.db.workers.claimForCleanup(serviceId, row!);
    await c.db.workers.update(row!.id, { serviceId: null, updatedAt: original });
    const back = await c.oracle.callKw('worker_get', [], { id: row!.id });
    expect(back.service_id).toBeNull();
    expect(back.updated_at).toBe(api.updated_at);
  });
});
