// The methods issue 17 added, end to end: a real agent on RabbitMQ, cinder's schema
// with rows seeded as cinder-api writes them, the file pool on a temp dir. Generic groups (create,
// add/remove, group snapshot, group from a group snapshot and from a group, delete with volumes),
// accept_transfer, manageable lists and manage_existing_snapshot, do_cleanup, freeze/thaw,
// failover and the replication-group methods; each checked in the database and on the pool, on
// SQLite and on MariaDB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { remoteError } from '../../helpers/remote-error.js';
import { VersionedObject } from '../../../src/rpc/ovo.js';
import { seedQuotaUsage, seedSnapshot, seedVolume, PROJECT_ID, USER_ID } from '../../helpers/cinder-db.js';
import { startHarness, snapshotObject, volumeObject, waitFor, type Harness } from './helpers.js';

const GiB = 1024 ** 3;

describe.each(['sqlite', 'mysql'] as const)('groups, transfers, manageable lists, cleanup and replication (%s)', (backend) => {
  let h: Harness;
  let genericType: string;
  let cgType: string;

  beforeAll(async () => {
    h = await startHarness({ withTgtd: false, backend });
    genericType = await seedGroupType('generic-' + randomUUID().slice(0, 6));
    // cinder-manage db sync creates it (the type consistency-group requests get)
    const cg = await h.db.kysely.selectFrom('group_types').select('id').where('name', '=', 'default_cgsnapshot_type').where('deleted', '=', false).executeTakeFirst();
    cgType = cg?.id ?? (await seedGroupType('default_cgsnapshot_type'));
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  async function seedGroupType(name: string): Promise<string> {
    const id = randomUUID();
    await h.db.kysely.insertInto('group_types').values({ id, name, description: null, is_public: true, created_at: h.db.now(), updated_at: null, deleted_at: null, deleted: false }).execute();
    return id;
  }

  async function seedGroup(opts: { typeId?: string; status?: string; groupSnapshotId?: string | null; sourceGroupId?: string | null } = {}): Promise<string> {
    const id = randomUUID();
    await h.db.kysely
      .insertInto('groups')
      .values({
        id,
        created_at: h.db.now(),
        updated_at: null,
        deleted_at: null,
        deleted: false,
        user_id: USER_ID,
        project_id: PROJECT_ID,
        cluster_name: null,
        host: h.poolHost,
        availability_zone: 'nova',
        name: `grp-${id.slice(0, 6)}`,
        description: null,
        status: opts.status ?? 'creating',
        group_type_id: opts.typeId ?? genericType,
        group_snapshot_id: opts.groupSnapshotId ?? null,
        source_group_id: opts.sourceGroupId ?? null,
        replication_status: 'disabled',
      })
      .execute();
    return id;
  }

  async function seedGroupSnapshot(groupId: string, typeId = genericType): Promise<string> {
    const id = randomUUID();
    await h.db.kysely
      .insertInto('group_snapshots')
      .values({ id, group_id: groupId, created_at: h.db.now(), updated_at: null, deleted_at: null, deleted: false, user_id: USER_ID, project_id: PROJECT_ID, name: 'gs', description: null, status: 'creating', group_type_id: typeId })
      .execute();
    return id;
  }

  const groupObj = (id: string) => new VersionedObject('Group', { id });
  const groupSnapshotObj = (id: string) => new VersionedObject('GroupSnapshot', { id });

  async function createAvailable(size = 1): Promise<string> {
    const id = await seedVolume(h.db, { host: h.poolHost, size });
    await h.cast('create_volume', { volume: await volumeObject(h.db, id), request_spec: null, filter_properties: {}, allow_reschedule: true });
    await waitFor('volume available', async () => (await h.db.volumes.get(id)).status === 'available');
    return id;
  }

  describe('generic groups', () => {
    let group: string;
    let members: string[];
    let gsnap: string;
    let snaps: string[];

    it('create_group: a generic group becomes available', async () => {
      group = await seedGroup();
      await h.call('create_group', { group: groupObj(group) }, '3.9');
      expect((await h.db.groups.get(group)).status).toBe('available');
    });

    it('create_group: a default_cgsnapshot_type group ends in error with NotImplementedError (no consistency groups here)', async () => {
      const g = await seedGroup({ typeId: cgType });
      const err = await remoteError(h.call('create_group', { group: groupObj(g) }, '3.9'));
      expect(err.className).toBe('NotImplementedError');
      expect((await h.db.groups.get(g)).status).toBe('error');
    });

    it('update_group: adds and removes members; a volume in a bad status is refused as cinder words it', async () => {
      members = [await createAvailable(1), await createAvailable(1)];
      const extra = await createAvailable(1);
      await h.call('update_group', { group: groupObj(group), add_volumes: [...members, extra].join(','), remove_volumes: null }, '3.9');
      for (const v of [...members, extra]) expect((await h.db.volumes.get(v)).group_id).toBe(group);
      await h.call('update_group', { group: groupObj(group), add_volumes: null, remove_volumes: extra }, '3.9');
      expect((await h.db.volumes.get(extra)).group_id).toBeNull();
      expect((await h.db.groups.get(group)).status).toBe('available');

      const creating = await seedVolume(h.db, { host: h.poolHost, status: 'creating' });
      const err = await remoteError(h.call('update_group', { group: groupObj(group), add_volumes: creating, remove_volumes: null }, '3.9'));
      expect(err.className).toBe('InvalidVolume');
      expect(err.remoteMessage.split('\n')[0]).toBe(
        `Invalid volume: Can not add volume ${creating} to group ${group} because volume is in an invalid state: creating. Valid states are: ('available', 'in-use').`,
      );
      const missing = randomUUID();
      expect((await remoteError(h.call('update_group', { group: groupObj(group), add_volumes: missing, remove_volumes: null }, '3.9'))).className).toBe('VolumeNotFound');
    });

    it('create_group_snapshot: one snapshot per member, all available at 100%', async () => {
      gsnap = await seedGroupSnapshot(group);
      snaps = [];
      for (const v of members) {
        const s = await seedSnapshot(h.db, v);
        await h.db.snapshots.update(s, { group_snapshot_id: gsnap });
        snaps.push(s);
      }
      await h.call('create_group_snapshot', { group_snapshot: groupSnapshotObj(gsnap) }, '3.9');
      expect((await h.db.groups.getSnapshot(gsnap)).status).toBe('available');
      for (const s of snaps) {
        expect(await h.db.snapshots.get(s)).toMatchObject({ status: 'available', progress: '100%', group_snapshot_id: gsnap });
        expect(existsSync(join(h.poolDir, `snapshot-${s}`))).toBe(true);
      }
    });

    it('create_group_from_src: from the group snapshot, each new member cloned from its snapshot', async () => {
      const g2 = await seedGroup({ groupSnapshotId: gsnap });
      const vols: string[] = [];
      for (const s of snaps) {
        const v = await seedVolume(h.db, { host: h.poolHost, size: 2 });
        await h.db.volumes.update(v, { group_id: g2, snapshot_id: s });
        vols.push(v);
      }
      await h.call('create_group_from_src', { group: groupObj(g2), group_snapshot: groupSnapshotObj(gsnap), source_group: null }, '3.9');
      expect((await h.db.groups.get(g2)).status).toBe('available');
      for (const v of vols) {
        expect((await h.db.volumes.get(v)).status).toBe('available');
        expect(existsSync(join(h.poolDir, `volume-${v}`))).toBe(true);
      }
    });

    it('create_group_from_src: from a source group, each new member cloned from its source volume', async () => {
      const g3 = await seedGroup({ sourceGroupId: group });
      const vols: string[] = [];
      for (const src of members) {
        const v = await seedVolume(h.db, { host: h.poolHost, size: 1 });
        await h.db.volumes.update(v, { group_id: g3, source_volid: src });
        vols.push(v);
      }
      await h.call('create_group_from_src', { group: groupObj(g3), group_snapshot: null, source_group: groupObj(group) }, '3.9');
      expect((await h.db.groups.get(g3)).status).toBe('available');
      for (const v of vols) expect((await h.db.volumes.get(v)).status).toBe('available');
    });

    it('create_group_from_src: a source snapshot not available is InvalidGroup and the group goes to error', async () => {
      const gs = await seedGroupSnapshot(group);
      const s = await seedSnapshot(h.db, members[0]!, { status: 'error' });
      await h.db.snapshots.update(s, { group_snapshot_id: gs });
      const g = await seedGroup({ groupSnapshotId: gs });
      const v = await seedVolume(h.db, { host: h.poolHost });
      await h.db.volumes.update(v, { group_id: g, snapshot_id: s });
      const err = await remoteError(h.call('create_group_from_src', { group: groupObj(g), group_snapshot: groupSnapshotObj(gs), source_group: null }, '3.9'));
      expect(err.className).toBe('InvalidGroup');
      expect(err.remoteMessage.split('\n')[0]).toBe(`Invalid Group: Cannot create group ${g} because snapshot ${s} is not in a valid state. Valid states are: ('available',).`);
      expect((await h.db.groups.get(g)).status).toBe('error');
      expect((await h.db.volumes.get(v)).status).toBe('error');
    });

    it('delete_group_snapshot: the member snapshots and the group snapshot are gone, rows and files', async () => {
      await h.db.groups.updateSnapshot(gsnap, { status: 'deleting' });
      for (const s of snaps) await h.db.snapshots.update(s, { status: 'deleting' });
      await h.call('delete_group_snapshot', { group_snapshot: groupSnapshotObj(gsnap) }, '3.9');
      expect(await h.db.groups.findSnapshot(gsnap)).toBeUndefined();
      for (const s of snaps) {
        expect(await h.db.snapshots.find(s)).toBeUndefined();
        expect(existsSync(join(h.poolDir, `snapshot-${s}`))).toBe(false);
      }
    });

    it('delete_group with its volumes: members destroyed with their files, then the group; groups quota released', async () => {
      await seedQuotaUsage(h.db, 'groups', 5);
      await h.db.groups.update(group, { status: 'deleting' });
      for (const v of members) await h.db.volumes.update(v, { status: 'deleting' });
      await h.call('delete_group', { group: groupObj(group) }, '3.9');
      expect(await h.db.groups.find(group)).toBeUndefined();
      const row = await h.db.kysely.selectFrom('groups').select(['status', 'deleted']).where('id', '=', group).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ status: 'deleted', deleted: true });
      for (const v of members) {
        expect(await h.db.volumes.find(v)).toBeUndefined();
        expect(existsSync(join(h.poolDir, `volume-${v}`))).toBe(false);
      }
      const after = await h.db.quotas.usagesByProject(PROJECT_ID);
      expect(after.groups).toEqual({ in_use: 4, reserved: 0 });
    });

    it('after reset-status (an API-only write) a group and a group snapshot in error delete as any other (cinder-api sets deleting first)', async () => {
      const g = await seedGroup({ status: 'error' });
      const v = await createAvailable(1);
      await h.db.volumes.update(v, { group_id: g });
      const gs = await seedGroupSnapshot(g);
      const s = await seedSnapshot(h.db, v, { status: 'error' });
      await h.db.snapshots.update(s, { group_snapshot_id: gs });
      await h.db.groups.updateSnapshot(gs, { status: 'deleting' });
      await h.db.snapshots.update(s, { status: 'deleting' });
      await h.call('delete_group_snapshot', { group_snapshot: groupSnapshotObj(gs) }, '3.9');
      expect(await h.db.groups.findSnapshot(gs)).toBeUndefined();
      expect(await h.db.snapshots.find(s)).toBeUndefined();
      await h.db.volumes.update(v, { status: 'deleting' });
      await h.db.groups.update(g, { status: 'deleting' });
      await h.call('delete_group', { group: groupObj(g) }, '3.9');
      expect(await h.db.groups.find(g)).toBeUndefined();
      expect(existsSync(join(h.poolDir, `volume-${v}`))).toBe(false);
    });

    it('delete_group refuses a group with an attached member (VolumeAttached), leaving it as it was', async () => {
      const g = await seedGroup({ status: 'deleting' });
      const v = await createAvailable(1);
      await h.db.volumes.update(v, { group_id: g, attach_status: 'attached', status: 'in-use' });
      const err = await remoteError(h.call('delete_group', { group: groupObj(g) }, '3.9'));
      expect(err.className).toBe('VolumeAttached');
      expect((await h.db.groups.get(g)).status).toBe('deleting');
      expect(existsSync(join(h.poolDir, `volume-${v}`))).toBe(true);
    });
  });

  describe('accept_transfer', () => {
    it('answers cinder-api with None; a volume that is gone is VolumeNotFound', async () => {
      const v = await createAvailable(1);
      expect(await h.call('accept_transfer', { volume_id: v, new_user: 'u2', new_project: 'p2', no_snapshots: false }, '3.16')).toBeNull();
      const gone = randomUUID();
      expect((await remoteError(h.call('accept_transfer', { volume_id: gone, new_user: 'u2', new_project: 'p2' }, '3.16'))).className).toBe('VolumeNotFound');
    });
  });

  describe('manageable lists and manage_existing_snapshot (file pool)', () => {
    let managed: string;
    let stray: string;

    beforeAll(async () => {
      managed = await createAvailable(1);
      stray = `volume-${randomUUID()}`;
      await writeFile(join(h.poolDir, stray), '');
      await truncate(join(h.poolDir, stray), 3 * GiB);
      await writeFile(join(h.poolDir, 'legacy-disk'), '');
      await truncate(join(h.poolDir, 'legacy-disk'), Math.floor(1.5 * GiB));
    });

    it('get_manageable_volumes: an unmanaged file is safe, a managed one is "already managed" with its cinder_id', async () => {
      const list = (await h.call('get_manageable_volumes', { marker: null, limit: 1000, offset: 0, sort_keys: ['reference'], sort_dirs: ['desc'], want_objects: false }, '3.10')) as Array<Record<string, unknown>>;
      const byName = new Map(list.map((e) => [(e.reference as Record<string, string>)['source-name'], e]));
      expect(byName.get(stray)).toEqual({ reference: { 'source-name': stray }, size: 3, safe_to_manage: true, reason_not_safe: null, cinder_id: null, extra_info: null });
      expect(byName.get('legacy-disk')).toMatchObject({ size: 2, safe_to_manage: true });
      expect(byName.get(`volume-${managed}`)).toMatchObject({ safe_to_manage: false, reason_not_safe: 'already managed', cinder_id: managed });
      const names = list.map((e) => (e.reference as Record<string, string>)['source-name']!);
      expect(names).toEqual([...names].sort().reverse());
    });

    it('get_manageable_volumes: sort by size, marker, offset and limit as paginate_entries_list; objects when asked', async () => {
      const all = (await h.call('get_manageable_volumes', { marker: null, limit: 1000, offset: 0, sort_keys: ['size', 'reference'], sort_dirs: ['asc', 'asc'], want_objects: false }, '3.10')) as Array<Record<string, any>>;
      const sizes = all.map((e) => e.size as number);
      expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
      const marker = JSON.stringify(all[0]!.reference);
      const page = (await h.call('get_manageable_volumes', { marker, limit: 1, offset: 1, sort_keys: ['size', 'reference'], sort_dirs: ['asc', 'asc'], want_objects: true }, '3.10')) as VersionedObject[];
      expect(page).toHaveLength(1);
      expect(page[0]).toBeInstanceOf(VersionedObject);
      expect(page[0]!.name).toBe('ManageableVolume');
      expect(page[0]!.data.reference).toEqual(all[2]!.reference);
      const err = await remoteError(h.call('get_manageable_volumes', { marker: '{"source-name": "nope"}', limit: 10, offset: 0, sort_keys: ['reference'], sort_dirs: ['asc'] }, '3.10'));
      expect(err.className).toBe('InvalidInput');
      expect(err.remoteMessage.split('\n')[0]).toBe("Invalid input received: marker not found: {'source-name': 'nope'}");
    });

    it('get_manageable_snapshots and manage_existing_snapshot: a foreign file becomes the snapshot, sized, available', async () => {
      const vol = await createAvailable(1);
      const sid = await seedSnapshot(h.db, vol);
      const src = 'imported-snap';
      await writeFile(join(h.poolDir, src), '');
      await truncate(join(h.poolDir, src), 2 * GiB);
      await h.cast('manage_existing_snapshot', { snapshot: await snapshotObject(h.db, sid), ref: { 'source-name': src } }, '3.0');
      const row = await waitFor('snapshot managed', async () => {
        const s = await h.db.snapshots.get(sid);
        return s.status !== 'creating' && s;
      });
      expect(row).toMatchObject({ status: 'available', volume_size: 2 });
      expect(existsSync(join(h.poolDir, `snapshot-${sid}`))).toBe(true);
      expect(existsSync(join(h.poolDir, src))).toBe(false);
      const snaps = (await h.call('get_manageable_snapshots', { marker: null, limit: 1000, offset: 0, sort_keys: ['reference'], sort_dirs: ['asc'] }, '3.10')) as Array<Record<string, any>>;
      expect(snaps.find((e) => e.reference['source-name'] === `snapshot-${sid}`)).toMatchObject({ safe_to_manage: false, reason_not_safe: 'already managed', cinder_id: sid, source_reference: { 'source-name': null } });
    });

    it('manage_existing_snapshot of a missing file leaves the snapshot in error', async () => {
      const vol = await createAvailable(1);
      const sid = await seedSnapshot(h.db, vol);
      await h.cast('manage_existing_snapshot', { snapshot: await snapshotObject(h.db, sid), ref: { 'source-name': 'no-such-file' } }, '3.0');
      await waitFor('snapshot error', async () => (await h.db.snapshots.get(sid)).status === 'error');
    });
  });

  describe('do_cleanup', () => {
    it("claims another service's workers rows: creating -> error, deleting -> deleted; rows gone", async () => {
      const other = await h.db.services.create({ host: `${h.host}-dead@file`, availabilityZone: 'nova', clusterName: null });
      const creating = await seedVolume(h.db, { host: h.poolHost, status: 'creating' });
      const deleting = await createAvailable(1);
      await h.db.volumes.update(deleting, { status: 'deleting' });
      await h.db.workers.create({ resourceType: 'Volume', resourceId: creating, status: 'creating', serviceId: other.id });
      await h.db.workers.create({ resourceType: 'Volume', resourceId: deleting, status: 'deleting', serviceId: other.id });
      await h.cast('do_cleanup', { cleanup_request: new VersionedObject('CleanupRequest', { service_id: other.id, is_up: false }) }, '3.7');
      await waitFor('cleanup done', async () => (await h.db.volumes.get(creating)).status === 'error' && !(await h.db.volumes.find(deleting)));
      expect(existsSync(join(h.poolDir, `volume-${deleting}`))).toBe(false);
      await waitFor('workers rows gone', async () => (await h.db.workers.list({ serviceId: null })).filter((w) => w.resource_id === creating || w.resource_id === deleting).length === 0);
    });
  });

  describe('replication groups', () => {
    it('enable_replication on a group that is not enabling is InvalidGroup; list_replication_targets is empty', async () => {
      const g = await seedGroup({ status: 'available' });
      const err = await remoteError(h.call('enable_replication', { group: groupObj(g) }, '3.14'));
      expect(err.className).toBe('InvalidGroup');
      expect(err.remoteMessage.split('\n')[0]).toBe(`Invalid Group: Replication status in group ${g} is not enabling. Cannot enable replication.`);
      expect(await h.call('list_replication_targets', { group: groupObj(g) }, '3.14')).toEqual({ replication_targets: [] });
      await h.db.groups.update(g, { replication_status: 'enabling' });
      expect((await remoteError(h.call('enable_replication', { group: groupObj(g) }, '3.14'))).className).toBe('NotImplementedError');
      expect((await h.db.groups.get(g)).replication_status).toBe('enabling');
      const gone = randomUUID();
      const e2 = await remoteError(h.call('list_replication_targets', { group: groupObj(gone) }, '3.14'));
      expect(e2.className).toBe('VolumeBackendAPIException');
    });
  });

  describe('disable_replication, failover_replication, failover_completed', () => {
    it('check the group and member statuses as cinder does, then the driver has no replication', async () => {
      const g = await seedGroup({ status: 'available' });
      const v = await createAvailable(1);
      await h.db.volumes.update(v, { group_id: g, status: 'in-use', replication_status: 'failing-over' });
      let err = await remoteError(h.call('disable_replication', { group: groupObj(g) }, '3.14'));
      expect(err.remoteMessage.split('\n')[0]).toBe(`Invalid Group: Replication status in group ${g} is not disabling. Cannot disable replication.`);
      await h.db.groups.update(g, { replication_status: 'failing-over' });
      err = await remoteError(h.call('failover_replication', { group: groupObj(g), allow_attached_volume: false, secondary_backend_id: null }, '3.14'));
      expect(err.className).toBe('InvalidVolume');
      expect(err.remoteMessage.split('\n')[0]).toBe(`Invalid volume: Volume ${v} is attached but allow_attached_volume flag is False. Cannot failover replication.`);
      err = await remoteError(h.call('failover_replication', { group: groupObj(g), allow_attached_volume: true, secondary_backend_id: 'x' }, '3.14'));
      expect(err.className).toBe('NotImplementedError');
      expect(await h.db.groups.get(g)).toMatchObject({ status: 'available', replication_status: 'failing-over' });
    });

    it('failover_completed: the updates are written, then the driver error leaves the service disabled with replication error', async () => {
      await h.cast('failover_completed', { updates: { active_backend_id: 'secondary', replication_status: 'failed-over' } }, '3.8');
      const svc = await waitFor('failover_completed', async () => {
        const r = await h.db.services.getByHostAndBinary(h.backendHost);
        return r?.active_backend_id === 'secondary' && r;
      });
      expect(svc).toMatchObject({ disabled: true, disabled_reason: 'Driver reported error during replication failover completion.', replication_status: 'error' });
      const id = svc.id;
      await h.db.services.update(id, { disabled: false, disabled_reason: null, replication_status: 'disabled', active_backend_id: null });
    });
  });

  describe('freeze, thaw and failover', () => {
    it('freeze_host disables the service as frozen, thaw_host enables it again; both answer True', async () => {
      // init_host_with_rpc: a driver without replication leaves the service `disabled`
      expect((await h.db.services.getByHostAndBinary(h.backendHost))?.replication_status).toBe('disabled');
      expect(await h.call('freeze_host', {}, '3.0')).toBe(true);
      let svc = await h.db.services.getByHostAndBinary(h.backendHost);
      expect(svc).toMatchObject({ disabled: true, disabled_reason: 'frozen' });
      expect(await h.call('thaw_host', {}, '3.0')).toBe(true);
      svc = await h.db.services.getByHostAndBinary(h.backendHost);
      expect(svc).toMatchObject({ disabled: false, disabled_reason: '' });
    });

    it('failover: non-replicated volumes and their snapshots go to error, the service to failover-error, disabled', async () => {
      const v = await createAvailable(1);
      await h.db.volumes.update(v, { replication_status: 'disabled' });
      const s = await seedSnapshot(h.db, v, { status: 'available' });
      await h.cast('failover', { secondary_backend_id: 'secondary' }, '3.8');
      const svc = await waitFor('failover done', async () => {
        const r = await h.db.services.getByHostAndBinary(h.backendHost);
        return r?.replication_status === 'failover-error' && r;
      });
      expect(svc.disabled).toBe(true);
      expect(await h.db.volumes.get(v)).toMatchObject({ status: 'error', previous_status: 'available', replication_status: 'not-capable' });
      expect((await h.db.snapshots.get(s)).status).toBe('error');
    });
  });
});
