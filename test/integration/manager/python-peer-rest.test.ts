// cinder's own RPC client (cinder.volume.rpcapi.VolumeAPI, Debian's cinder 21.3) and its Group,
// GroupSnapshot, Service and CleanupRequest objects on the same database drive the methods issue
// 17 added, so what crosses the wire is what cinder-api sends and what it reads back (the
// ManageableVolume objects it asks for since 3.10, True from freeze/thaw, None from
// accept_transfer, the InvalidInput it rebuilds).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { SYSTEM_PYTHON, seedSnapshot, seedVolume, PROJECT_ID, USER_ID } from '../../helpers/cinder-db.js';
import { repoRoot } from '../../helpers/fixtures.js';
import { BROKER, startHarness, volumeObject, waitFor, type Harness } from './helpers.js';

describe.skipIf(!existsSync(SYSTEM_PYTHON))("cinder's VolumeAPI against the issue-17 methods", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ withTgtd: false });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('groups, freeze/thaw, manageable lists, accept_transfer, replication targets, cleanup', async () => {
    const typeId = randomUUID();
    await h.db.kysely.insertInto('group_types').values({ id: typeId, name: 'generic', description: null, is_public: true, created_at: h.db.now(), updated_at: null, deleted_at: null, deleted: false }).execute();
    const group = randomUUID();
    await h.db.kysely
      .insertInto('groups')
      .values({
        id: group, created_at: h.db.now(), updated_at: null, deleted_at: null, deleted: false, user_id: USER_ID, project_id: PROJECT_ID, cluster_name: null,
        host: h.poolHost, availability_zone: 'nova', name: 'g', description: null, status: 'creating', group_type_id: typeId, group_snapshot_id: null,
        source_group_id: null, replication_status: 'disabled',
      })
      .execute();
    const volume = await seedVolume(h.db, { host: h.poolHost, size: 1 });
    await h.cast('create_volume', { volume: await volumeObject(h.db, volume), request_spec: null, filter_properties: {}, allow_reschedule: true });
    await waitFor('volume available', async () => (await h.db.volumes.get(volume)).status === 'available');
    const groupSnapshot = randomUUID();
    await h.db.kysely
      .insertInto('group_snapshots')
      .values({ id: groupSnapshot, group_id: group, created_at: h.db.now(), updated_at: null, deleted_at: null, deleted: false, user_id: USER_ID, project_id: PROJECT_ID, name: 'gs', description: null, status: 'creating', group_type_id: typeId })
      .execute();
    const snap = await seedSnapshot(h.db, volume);
    await h.db.snapshots.update(snap, { group_snapshot_id: groupSnapshot });
    const stray = `volume-${randomUUID()}`;
    await writeFile(join(h.poolDir, stray), '');
    await truncate(join(h.poolDir, stray), 2 * 1024 ** 3);
    const dead = await h.db.services.create({ host: `${h.host}-dead@file`, availabilityZone: 'nova', clusterName: null });
    const stuck = await seedVolume(h.db, { host: h.poolHost, status: 'creating' });
    await h.db.workers.create({ resourceType: 'Volume', resourceId: stuck, status: 'creating', serviceId: dead.id });

    const ids = { group, volume, group_snapshot: groupSnapshot, backend: h.backendHost, dead_service_id: dead.id, stuck_volume: stuck };
    const r = await execa(SYSTEM_PYTHON, [join(repoRoot, 'test/integration/manager/cinder_peer_rest.py'), BROKER, h.testDb.url, join(repoRoot, 'test/integration/rpc-python-client')], {
      reject: false,
      timeout: 150_000,
      input: JSON.stringify(ids),
      env: { PYTHONHASHSEED: '0' },
    });
    if (r.exitCode !== 0) throw new Error(`cinder_peer_rest.py failed: ${r.stderr.slice(-3000)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, any>;
    expect(out.create_group).toBe('available');
    expect(out.member_group_id).toBe(group);
    expect(out.create_group_snapshot).toBe('available');
    expect(out.group_snapshot_members).toEqual(['available']);
    expect(out.freeze).toBe(true);
    expect(out.frozen_row).toEqual([true, 'frozen']);
    expect(out.thaw).toBe(true);
    expect(out.thawed_row).toEqual([false, '']);
    // cinder rebuilds ManageableVolume objects from the reply
    expect(out.manageable).toContainEqual({ class: 'ManageableVolume', reference: { 'source-name': stray }, size: 2, safe_to_manage: true, reason_not_safe: null, cinder_id: null });
    expect(out.manageable).toContainEqual({ class: 'ManageableVolume', reference: { 'source-name': `volume-${volume}` }, size: 1, safe_to_manage: false, reason_not_safe: 'already managed', cinder_id: volume });
    expect(out.manageable_snapshots).toContainEqual({ class: 'ManageableSnapshot', reference: { 'source-name': `snapshot-${snap}` }, cinder_id: snap, source_reference: { 'source-name': null } });
    expect(out.accept_transfer).toBeNull();
    expect(out.replication_targets).toEqual({ replication_targets: [] });
    expect(out.bad_marker).toEqual({ class: 'InvalidInput_Remote', msg: "Invalid input received: marker not found: {'source-name': 'nope'}" });
    expect(out.cleanup_status).toBe('error');
    expect(out.group_snapshot_deleted).toBe(true);
    expect(out.group_deleted).toBe(true);
    expect(out.member_deleted).toBe(true);
    expect(existsSync(join(h.poolDir, `volume-${volume}`))).toBe(false);
    expect(existsSync(join(h.poolDir, `snapshot-${snap}`))).toBe(false);
  }, 200_000);
});
