// revert_to_snapshot's generic path (a driver without a native revert): a temporary volume from
// the snapshot is copied over the volume, as cinder's _revert_to_snapshot_generic does, on the real
// schema and the file pool; and a failing revert leaves volume error / snapshot available.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverSnapshot, DriverVolume } from '../../../drivers/driver.js';
import { TargetExports } from '../../../drivers/exports.js';
import { notImplementedError } from '../../../src/errors.js';
import { FileVolumeDriver } from '../../../drivers/file/file-driver.js';
import { openDatabase, type CinderDb } from '../../../src/db/index.js';
import { createLogger } from '../../../src/log.js';
import { newKeyedMutex, type FlowDeps } from '../../../src/manager/flows/common.js';
import { createSnapshotById } from '../../../src/manager/flows/snapshots.js';
import { create_volume as createVolume, revert_to_snapshot as revertToSnapshot } from '../../../src/manager/flow-methods.js';
import { createCinderDatabase, seedSnapshot, seedVolume, type TestCinderDb } from '../../helpers/cinder-db.js';
import { snapshotObject, volumeObject } from './helpers.js';

class NoNativeRevert extends FileVolumeDriver {
  failCopy = false;
  override async revertToSnapshot(): Promise<void> {
    throw notImplementedError('revert_to_snapshot');
  }
  override async copyData(src: string, dst: string, bytes: number): Promise<void> {
    if (this.failCopy) throw new Error('injected copy failure');
    return super.copyData(src, dst, bytes);
  }
}

async function at(path: string, offset: number, text?: string): Promise<string> {
  const fh = await open(path, 'r+');
  try {
    if (text !== undefined) await fh.write(Buffer.from(text), 0, text.length, offset);
    const b = Buffer.alloc(6);
    await fh.read(b, 0, 6, offset);
    return b.toString();
  } finally {
    await fh.close();
  }
}

describe('generic revert through a temporary volume', () => {
  let t: TestCinderDb;
  let db: CinderDb;
  let dir: string;
  let driver: NoNativeRevert;
  let deps: FlowDeps;
  const host = 'gen@file';

  beforeAll(async () => {
    t = await createCinderDatabase('sqlite');
    db = await openDatabase(t.url);
    dir = await mkdtemp(join(tmpdir(), 'cb-genrev-'));
    driver = new NoNativeRevert({ directory: join(dir, 'pool'), backendName: 'file', hostname: 'h', reservedPercentage: 0, maxOverSubscriptionRatio: 20, storageProtocol: 'iSCSI', filterFunction: null, goodnessFunction: null });
    await driver.doSetup();
    const { service } = await db.services.register({ host, availabilityZone: 'nova', clusterName: null });
    deps = {
      db,
      driver,
      exports: new TargetExports({ target: null, supervisor: null, driver }),
      service: { host, driverInitialized: true, serviceRecord: { id: service.id, uuid: String(service.uuid) }, publishServiceCapabilities: async () => undefined },
      scheduler: { createVolume: async () => undefined },
      logger: createLogger({ level: 'silent', pretty: false }),
      lockPath: join(dir, 'locks'),
      locks: newKeyedMutex(),
      poolName: 'file',
    };
  });
  afterAll(async () => {
    await db?.close();
    await t?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('copies the snapshot back, deletes the temporary volume and the backup snapshot', async () => {
    const id = await seedVolume(db, { host: `${host}#file` });
    await createVolume(deps, {}, { volume: await volumeObject(db, id), request_spec: null, filter_properties: {}, allow_reschedule: false });
    const path = join(dir, 'pool', `volume-${id}`);
    await at(path, 8192, 'BEFORE');
    const snapId = await seedSnapshot(db, id);
    await createSnapshotById(deps, {}, snapId);
    await at(path, 8192, 'AFTER!');
    await db.volumes.update(id, { status: 'reverting' });
    await db.snapshots.update(snapId, { status: 'restoring' });
    await revertToSnapshot(deps, {}, { volume: await volumeObject(db, id), snapshot: await snapshotObject(db, snapId) });
    expect(await at(path, 8192)).toBe('BEFORE');
    expect((await db.volumes.get(id)).status).toBe('available');
    expect((await db.snapshots.get(snapId)).status).toBe('available');
    expect((await readdir(join(dir, 'pool'))).sort()).toEqual([`snapshot-${snapId}`, `volume-${id}`].sort());
    expect((await db.snapshots.listByVolume(id)).map((s) => s.id)).toEqual([snapId]);

    // a failing copy: volume error, snapshot available, the backup snapshot kept
    driver.failCopy = true;
    await db.volumes.update(id, { status: 'reverting' });
    await db.snapshots.update(snapId, { status: 'restoring' });
    await expect(revertToSnapshot(deps, {}, { volume: await volumeObject(db, id), snapshot: await snapshotObject(db, snapId) })).rejects.toThrow(/injected/);
    expect((await db.volumes.get(id)).status).toBe('error');
    expect((await db.snapshots.get(snapId)).status).toBe('available');
    const snaps = await db.snapshots.listByVolume(id);
    expect(snaps).toHaveLength(2);
    expect(snaps.find((s) => s.id !== snapId)?.display_name).toBe(`[revert] volume ${id} backup snapshot`);
  });
});
void (null as unknown as DriverVolume | DriverSnapshot);
