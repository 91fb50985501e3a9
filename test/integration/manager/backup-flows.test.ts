// cinder-backup's calls to the volume service, driven over RPC against a real agent (cinder's
// schema on SQLite, the file pool): get_backup_device answered by a continue_backup cast to the
// backup host (tapped on the broker), with the device cinder's default driver picks, and the
// snapshot connection calls answered as cinder's LVM driver answers them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { remoteError } from '../../helpers/remote-error.js';
import { VersionedObject } from '../../../src/rpc/ovo.js';
import { seedSnapshot, seedVolume, PROJECT_ID } from '../../helpers/cinder-db.js';
import { startHarness, tapRoutingKey, waitFor, type Harness } from './helpers.js';

const CONNECTOR = { initiator: 'iqn.1994-05.com.redhat:backup01', ip: '127.0.0.1', host: 'backuphost', platform: 'x86_64', os_type: 'linux2', multipath: false };

describe('cinder-backup calls (get_backup_device, snapshot connections)', () => {
  let h: Harness;
  const backupHost = `backup-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    h = await startHarness({ backend: 'sqlite', withTgtd: false });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  async function seedBackup(volumeId: string, snapshotId: string | null = null): Promise<VersionedObject> {
    const id = randomUUID();
    await h.db.kysely
      .insertInto('backups')
      .values({ id, volume_id: volumeId, host: backupHost, status: 'creating', project_id: PROJECT_ID, created_at: new Date(), deleted: false } as never)
      .execute();
    return new VersionedObject('Backup', { id, volume_id: volumeId, snapshot_id: snapshotId, host: backupHost, status: 'creating', temp_volume_id: null, temp_snapshot_id: null });
  }

  /** A volume as cinder-api leaves it for a backup: backing-up, its status saved in previous_status, its data on the pool. */
  async function backingUp(previous: string): Promise<string> {
    const id = await seedVolume(h.db, { host: h.poolHost, size: 1, status: 'backing-up' });
    await h.db.volumes.update(id, { previous_status: previous });
    const file = join(h.poolDir, `volume-${id}`);
    await writeFile(file, 'backup me');
    await truncate(file, 1024 ** 3);
    return id;
  }

  async function continueBackupOf(backup: VersionedObject) {
    const tap = await tapRoutingKey(`cinder-backup.${backupHost}`);
    try {
      await h.cast('get_backup_device', { backup, want_objects: true, async_call: true }, '3.17');
      const msg = await waitFor('continue_backup', async () => tap.messages.find((m) => m.method === 'continue_backup'));
      return msg;
    } finally {
      await tap.close();
    }
  }

  it('available volume: continue_backup (message version 2.0) names the volume itself', async () => {
    const vol = await backingUp('available');
    const msg = await continueBackupOf(await seedBackup(vol));
    expect(msg.version).toBe('2.0');
    const device = (msg.args as any).backup_device;
    expect(device['versioned_object.name']).toBe('BackupDeviceInfo');
    expect(device['versioned_object.data'].secure_enabled).toBe(false);
    expect(device['versioned_object.data'].volume['versioned_object.data'].id).toBe(vol);
    expect(device['versioned_object.data']).not.toHaveProperty('snapshot');
  });

  it('in-use volume: a temporary clone outside quota, recorded on the backup', async () => {
    const vol = await backingUp('in-use');
    const backup = await seedBackup(vol);
    const msg = await continueBackupOf(backup);
    const temp = (msg.args as any).backup_device['versioned_object.data'].volume['versioned_object.data'];
    expect(temp.id).not.toBe(vol);
    expect(temp.display_name).toBe(`backup-vol-${vol}`);
    expect(temp.status).toBe('backing-up');
    expect(temp.use_quota).toBe(false);
    expect((msg.args as any).backup['versioned_object.data'].temp_volume_id).toBe(temp.id);
    expect(await h.db.volumes.adminMetadataGet(temp.id)).toMatchObject({ temporary: 'True' });
    const row = await h.db.kysely.selectFrom('backups').select(['temp_volume_id']).where('id', '=', backup.data.id as string).executeTakeFirst();
    expect(row?.temp_volume_id).toBe(temp.id);
  });

  it('snapshot connections: as cinder LVM answers them', async () => {
    const vol = await seedVolume(h.db, { host: h.poolHost, size: 1 });
    const snap = await seedSnapshot(h.db, vol, { status: 'available' });
    const e1 = await remoteError(h.call('initialize_connection_snapshot', { snapshot_id: snap, connector: CONNECTOR }, '3.13'));
    expect(e1.className).toBe('NotImplementedError');
    expect(await h.call('terminate_connection_snapshot', { snapshot_id: snap, connector: CONNECTOR, force: true }, '3.13')).toBeNull();
    const e2 = await remoteError(h.call('remove_export_snapshot', { snapshot_id: snap }, '3.13'));
    expect(e2.className).toBe('VolumeBackendAPIException');
    const e3 = await remoteError(h.call('initialize_connection_snapshot', { snapshot_id: randomUUID(), connector: CONNECTOR }, '3.13'));
    expect(e3.className).toBe('SnapshotNotFound');
  });
});
