// issue 17, "done when": the v3 REST API of the real cinder-api and scheduler (noauth, as
// cinderclient drives it), cinderblock as the volume service on the file pool: a transfer accepted
// into another project; group type, group, add and remove volumes, group snapshot, a group from
// the group snapshot and from the group, group delete with its volumes; manageable lists and
// snapshot manage; work-cleanup; freeze-host (nothing placed) and thaw-host; failover-host refused.
// Each ends in the statuses cinder-volume would leave, with nothing left on the pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openDatabase, type CinderDb } from '../../../src/db/index.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { createCinderDatabase, seedVolume, type TestCinderDb } from '../../helpers/cinder-db.js';
import { startCinderStack, waitFor, WaitAborted, type CinderStack } from '../../helpers/cinder-stack.js';

const GiB = 1024 ** 3;

describe('groups, transfers, manageable lists, cleanup, freeze and failover through cinder-api', () => {
  let stack: CinderStack;
  let agent: AgentProcess;
  let db: CinderDb;
  let testDb: TestCinderDb;
  let pool: string;
  let backend: string;
  let typeId: string;

  /** A request as another project's plain user (noauth: token user:project). */
  async function asUser(project: string, method: string, path: string, body?: unknown) {
    const res = await fetch(`${stack.apiUrl}${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-Auth-Token': `user-${project}:${project}`, 'X-Auth-Project-Id': project, 'OpenStack-API-Version': 'volume 3.70' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async function waitStatus(kind: 'volumes' | 'snapshots' | 'groups' | 'group_snapshots', id: string, status: string) {
    const key = { volumes: 'volume', snapshots: 'snapshot', groups: 'group', group_snapshots: 'group_snapshot' }[kind];
    return waitFor(`${kind} ${id} to be ${status}`, 60_000, async () => {
      const r = await stack.api('GET', `/${kind}/${id}`);
      const obj = r.body?.[key];
      if (obj?.status?.startsWith('error') && !status.startsWith('error')) throw new WaitAborted(`${kind} ${id} went to ${obj.status}\n${agent.text().slice(-3000)}`);
      return obj?.status === status ? obj : undefined;
    });
  }
  async function waitGone(kind: 'volumes' | 'groups' | 'group_snapshots', id: string) {
    await waitFor(`${kind} ${id} to be gone`, 60_000, async () => ((await stack.api('GET', `/${kind}/${id}`)).status === 404 ? true : undefined));
  }
  async function createVolume(body: Record<string, unknown>) {
    const r = await stack.api('POST', '/volumes', { volume: { size: 1, ...body } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitStatus('volumes', r.body.volume.id, 'available');
  }

  beforeAll(async () => {
    // MariaDB: cinder-api, the scheduler, the agent and this test all write at once, which SQLite
    // answers now and then with "database is locked" (a 500 from cinder-api)
    testDb = await createCinderDatabase('mysql');
    stack = await startCinderStack({
      databaseUrl: testDb.url,
      backends: { file: { volume_driver: 'file', volume_backend_name: 'file', target_helper: 'fake' } },
      apiPort: 18797,
      extraSections: { cinderblock: { metrics_listen: '' } },
    });
    pool = join(stack.dir, 'file-volumes');
    backend = `${stack.host}@file`;
    agent = startAgentProcess(stack.confPath);
    await agent.waitForLog(/serving 1 backend/);
    await waitFor('the scheduler to know the pool', 30_000, async () => {
      const r = await stack.api('GET', '/scheduler-stats/get_pools');
      return r.body?.pools?.length ? true : undefined;
    });
    db = await openDatabase(testDb.url);
    const types = await stack.api('GET', '/types');
    typeId = types.body.volume_types.find((t: { name: string }) => t.name === '__DEFAULT__').id;
  }, 180_000);
  afterAll(async () => {
    await db?.close();
    await agent?.stop();
    await stack?.stop();
    await testDb?.drop();
  });

  it('transfer create and accept into another project', async () => {
    const vol = await createVolume({ name: 'to-give' });
    const t = await stack.api('POST', '/volume-transfers', { transfer: { volume_id: vol.id, name: 'gift' } });
    expect(t.status, JSON.stringify(t.body)).toBe(202);
    const accepted = await asUser('project-b', 'POST', `/volume-transfers/${t.body.transfer.id}/accept`, { accept: { auth_key: t.body.transfer.auth_key } });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const v = await stack.api('GET', `/volumes/${vol.id}`);
    expect(v.body.volume).toMatchObject({ status: 'available', 'os-vol-tenant-attr:tenant_id': 'project-b' });
  });

  it('group type, group, add/remove volumes, group snapshot, groups from it and from the group, delete with volumes', async () => {
    const gt = await stack.api('POST', '/group_types', { group_type: { name: `gt-${randomUUID().slice(0, 6)}` } });
    expect(gt.status, JSON.stringify(gt.body)).toBe(202);
    const g = await stack.api('POST', '/groups', { group: { name: 'g1', group_type: gt.body.group_type.id, volume_types: [typeId] } });
    expect(g.status, JSON.stringify(g.body)).toBe(202);
    const group = g.body.group.id as string;
    await waitStatus('groups', group, 'available');

    const inGroup = await createVolume({ name: 'm1', group_id: group, volume_type: typeId });
    const other = await createVolume({ name: 'm2', volume_type: typeId });
    expect((await stack.api('PUT', `/groups/${group}`, { group: { add_volumes: other.id } })).status).toBe(202);
    await waitFor('m2 in the group', 30_000, async () => ((await stack.api('GET', `/volumes/${other.id}`)).body.volume.group_id === group ? true : undefined));
    await waitStatus('groups', group, 'available');

    const gs = await stack.api('POST', '/group_snapshots', { group_snapshot: { group_id: group, name: 'gs1' } });
    expect(gs.status, JSON.stringify(gs.body)).toBe(202);
    const gsId = gs.body.group_snapshot.id as string;
    await waitStatus('group_snapshots', gsId, 'available');
    const snaps = (await stack.api('GET', `/snapshots/detail?group_snapshot_id=${gsId}`)).body.snapshots as Array<{ status: string }>;
    expect(snaps.map((s) => s.status)).toEqual(['available', 'available']);

    const fromSnap = await stack.api('POST', '/groups/action', { 'create-from-src': { name: 'g-from-snap', group_snapshot_id: gsId } });
    expect(fromSnap.status, JSON.stringify(fromSnap.body)).toBe(202);
    await waitStatus('groups', fromSnap.body.group.id, 'available');
    const fromGroup = await stack.api('POST', '/groups/action', { 'create-from-src': { name: 'g-from-group', source_group_id: group } });
    expect(fromGroup.status, JSON.stringify(fromGroup.body)).toBe(202);
    await waitStatus('groups', fromGroup.body.group.id, 'available');
    for (const gid of [fromSnap.body.group.id, fromGroup.body.group.id]) {
      const members = (await stack.api('GET', `/volumes/detail?group_id=${gid}`)).body.volumes as Array<{ status: string }>;
      expect(members.map((m) => m.status)).toEqual(['available', 'available']);
    }

    expect((await stack.api('PUT', `/groups/${group}`, { group: { remove_volumes: other.id } })).status).toBe(202);
    await waitFor('m2 out of the group', 30_000, async () => ((await stack.api('GET', `/volumes/${other.id}`)).body.volume.group_id === null ? true : undefined));
    await waitStatus('groups', group, 'available');

    expect((await stack.api('DELETE', `/group_snapshots/${gsId}`)).status).toBe(202);
    await waitGone('group_snapshots', gsId);
    for (const gid of [fromSnap.body.group.id, fromGroup.body.group.id, group]) {
      const r = await stack.api('POST', `/groups/${gid}/action`, { delete: { 'delete-volumes': true } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      await waitGone('groups', gid);
    }
    await waitGone('volumes', inGroup.id);
    expect((await stack.api('DELETE', `/volumes/${other.id}`)).status).toBe(202);
    await waitGone('volumes', other.id);
    const left = (await readdir(pool)).filter((f) => f.startsWith('snapshot-') || f === `volume-${inGroup.id}` || f === `volume-${other.id}`);
    expect(left).toEqual([]);
  }, 300_000);

  it('manageable-list, snapshot-manageable-list and snapshot-manage', async () => {
    const vol = await createVolume({ name: 'managed' });
    const stray = `volume-${randomUUID()}`;
    await writeFile(join(pool, stray), '');
    await truncate(join(pool, stray), 2 * GiB);
    const list = await stack.api('GET', `/manageable_volumes/detail?host=${encodeURIComponent(backend)}`);
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    const byName = new Map((list.body['manageable-volumes'] as Array<Record<string, any>>).map((e) => [e.reference['source-name'], e]));
    expect(byName.get(stray)).toMatchObject({ size: 2, safe_to_manage: true, reason_not_safe: null, cinder_id: null });
    expect(byName.get(`volume-${vol.id}`)).toMatchObject({ safe_to_manage: false, reason_not_safe: 'already managed', cinder_id: vol.id });

    const src = `imported-${randomUUID().slice(0, 6)}`;
    await writeFile(join(pool, src), '');
    await truncate(join(pool, src), 1 * GiB);
    const m = await stack.api('POST', '/manageable_snapshots', { snapshot: { volume_id: vol.id, ref: { 'source-name': src }, name: 'imported' } });
    expect(m.status, JSON.stringify(m.body)).toBe(202);
    const snap = await waitStatus('snapshots', m.body.snapshot.id, 'available');
    expect(existsSync(join(pool, `snapshot-${snap.id}`))).toBe(true);
    const snaps = await stack.api('GET', `/manageable_snapshots/detail?host=${encodeURIComponent(backend)}`);
    expect(snaps.status, JSON.stringify(snaps.body)).toBe(200);
    expect((snaps.body['manageable-snapshots'] as Array<Record<string, any>>).find((e) => e.reference['source-name'] === `snapshot-${snap.id}`)).toMatchObject({
      safe_to_manage: false,
      reason_not_safe: 'already managed',
      cinder_id: snap.id,
    });
  });

  it('work-cleanup: a volume this service left creating goes to error', { timeout: 90_000 }, async () => {
    const svc = await db.services.getByHostAndBinary(backend);
    const stuck = await seedVolume(db, { host: `${backend}#file`, status: 'creating' });
    const w = await db.workers.create({ resourceType: 'Volume', resourceId: stuck, status: 'creating', serviceId: svc!.id });
    // a row left by a crash is older than the request: `until` crosses RPC as whole seconds (oslo's
    // isotime), so a row written in the same second as the request is not cleaned, by cinder either
    await db.kysely.updateTable('workers').set({ updated_at: new Date(Date.now() - 60_000) }).where('id', '=', w.id).execute();
    const r = await stack.api('POST', '/workers/cleanup', { host: backend, binary: 'cinder-volume', is_up: true });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect((r.body.cleaning as Array<{ host: string }>).map((s) => s.host)).toContain(backend);
    await waitFor(`volume ${stuck} to be error`, 30_000, async () => {
      const v = await db.volumes.get(stuck);
      if (v.status === 'error') return true;
      return undefined;
    });
    await waitFor('the workers row removed', 30_000, async () => ((await db.workers.find('Volume', stuck)) ? undefined : true));
  });

  it('freeze-host: nothing is placed here until thaw-host; failover-host is refused', async () => {
    expect((await stack.api('PUT', '/os-services/freeze', { host: backend })).status).toBe(200);
    await waitFor('frozen', 30_000, async () => {
      const s = (await stack.api('GET', '/os-services?binary=cinder-volume')).body.services.find((x: { host: string }) => x.host === backend);
      return s?.status === 'disabled' && s.disabled_reason === 'frozen' ? true : undefined;
    });
    const r = await stack.api('POST', '/volumes', { volume: { size: 1, name: 'while-frozen' } });
    const frozenVol = await waitStatus('volumes', r.body.volume.id, 'error');
    expect(frozenVol['os-vol-host-attr:host']).toBeNull();
    expect((await stack.api('PUT', '/os-services/thaw', { host: backend })).status).toBe(200);
    await waitFor('thawed', 30_000, async () => {
      const s = (await stack.api('GET', '/os-services?binary=cinder-volume')).body.services.find((x: { host: string }) => x.host === backend);
      return s?.status === 'enabled' ? true : undefined;
    });
    await waitFor('the scheduler to place again', 60_000, async () => {
      const v = await stack.api('POST', '/volumes', { volume: { size: 1, name: 'after-thaw' } });
      const done = await waitFor('placed or refused', 60_000, async () => {
        const s = (await stack.api('GET', `/volumes/${v.body.volume.id}`)).body.volume;
        return s.status === 'available' || s.status === 'error' ? s : undefined;
      });
      return done.status === 'available' ? true : undefined;
    });

    const f = await stack.api('PUT', '/os-services/failover_host', { host: backend, backend_id: 'secondary' });
    expect(f.status).toBe(400);
    expect(JSON.stringify(f.body)).toContain('replication_status');
  }, 240_000);
});
