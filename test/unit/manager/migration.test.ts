// The pure pieces of migration: location_info parsing, the row swap of finish_volume_migration,
// the destination poll's schedule, the retype's "only placement differs" rule, and the file
// pool's driver-assisted move and rename.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLocationInfo, volumePathOnHost } from '../../../drivers/location-info.js';
import { FileVolumeDriver } from '../../../drivers/file/file-driver.js';
import { assertSafeName } from '../../../drivers/file/names.js';
import type { DriverVolume } from '../../../drivers/driver.js';
import type { Volume } from '../../../src/db/index.js';
import { finishVolumeMigration } from '../../../src/manager/flows/migration-swap.js';
import { waitForMigrationTarget, type PollClock } from '../../../src/manager/flows/migration-poll.js';
import { onlyPlacementDiffers } from '../../../src/manager/flows/retype-manage.js';

describe('location_info', () => {
  it('reads the file pool and LVM formats, and nothing else', () => {
    expect(parseLocationInfo('FileVolumeDriver:h1:/srv/pool:b')).toEqual({ kind: 'file', hostname: 'h1', directory: '/srv/pool:b' });
    expect(parseLocationInfo('LVMVolumeDriver:h1:vg0:thin:0')).toEqual({ kind: 'lvm', hostname: 'h1', volumeGroup: 'vg0', lvmType: 'thin', mirrors: 0 });
    expect(parseLocationInfo('LVMVolumeDriver:h1:vg0:thin')).toBeNull();
    expect(parseLocationInfo('NetAppDriver:h1:x')).toBeNull();
    expect(parseLocationInfo(undefined)).toBeNull();
  });

  it('gives a path only for a pool on this host', () => {
    expect(volumePathOnHost('FileVolumeDriver:h1:/srv/b/', 'h1', 'volume-1', assertSafeName)).toBe('/srv/b/volume-1');
    expect(volumePathOnHost('LVMVolumeDriver:h1:vg1:default:0', 'h1', 'volume-1', assertSafeName)).toBe('/dev/vg1/volume-1');
    expect(volumePathOnHost('FileVolumeDriver:h2:/srv/b', 'h1', 'volume-1', assertSafeName)).toBeNull();
    expect(() => volumePathOnHost('FileVolumeDriver:h1:/srv/b', 'h1', '../etc', assertSafeName)).toThrow(/unsafe/);
  });
});

function row(v: Partial<Volume>): Volume {
  return {
    id: 'src', _name_id: null, use_quota: true, ec2_id: null, user_id: 'u', project_id: 'p', snapshot_id: null, cluster_name: null,
    host: 'h@a#a', size: 1, availability_zone: 'nova', status: 'available', attach_status: 'detached', migration_status: 'completing',
    scheduled_at: null, launched_at: null, terminated_at: null, display_name: 'v', display_description: 'd', provider_location: null,
    provider_auth: null, provider_geometry: null, provider_id: null, volume_type_id: 't-old', source_volid: null, encryption_key_id: null,
    consistencygroup_id: null, group_id: null, bootable: false, multiattach: false, replication_status: null, replication_extended_status: null,
    replication_driver_data: null, previous_status: 'available', service_uuid: 's-a', shared_targets: false,
    created_at: new Date(0), updated_at: null, deleted_at: null, deleted: false,
    ...v,
  } as Volume;
}

describe('finish_volume_migration', () => {
  it('swaps the rows so the id stays and the temporary row names the old data', () => {
    const src = row({ _name_id: null });
    const dst = row({ id: 'dst', host: 'h@b#b', service_uuid: 's-b', status: 'available', migration_status: 'target:src', volume_type_id: 't-new', use_quota: false, display_description: 'd', provider_location: 'pl-b' });
    const { source, destination } = finishVolumeMigration(src, dst);
    expect(source).toMatchObject({ host: 'h@b#b', service_uuid: 's-b', status: 'available', migration_status: null, volume_type_id: 't-new' });
    expect(destination).toMatchObject({ host: 'h@a#a', service_uuid: 's-a', status: 'deleting', migration_status: 'deleting', display_description: 'migration src for src', _name_id: 'src' });
    // never swapped
    for (const k of ['id', 'provider_location', 'use_quota', 'created_at', '_name_id']) expect(source).not.toHaveProperty(k);
    expect(destination).not.toHaveProperty('volume_type_id');
  });

  it('keeps a temporary row that already names its data', () => {
    const { destination } = finishVolumeMigration(row({}), row({ id: 'dst', _name_id: 'older' }));
    expect(destination).not.toHaveProperty('_name_id');
  });
});

describe('waiting for the migration target', () => {
  function fakeClock(): PollClock & { slept: number[] } {
    let t = 0;
    const slept: number[] = [];
    return { slept, now: () => t, sleep: async (ms) => { slept.push(ms); t += ms; } };
  }

  it("sleeps tries² seconds between reads until available", async () => {
    const statuses = ['creating', 'creating', 'creating', 'available'];
    const clock = fakeClock();
    expect(await waitForMigrationTarget(async () => statuses.shift(), 300, clock)).toBe('available');
    expect(clock.slept).toEqual([1000, 4000, 9000]);
  });

  it('stops on error (or a row gone) and after the timeout', async () => {
    expect(await waitForMigrationTarget(async () => 'error', 300, fakeClock())).toBe('error');
    expect(await waitForMigrationTarget(async () => undefined, 300, fakeClock())).toBe('error');
    const clock = fakeClock();
    expect(await waitForMigrationTarget(async () => 'creating', 20, clock)).toBe('timeout');
    expect(clock.slept).toEqual([1000, 4000, 9000, 16000]);
  });
});

describe('retype: driver-assisted migration allowed', () => {
  it('only when the types differ in backend name or availability zones', () => {
    expect(onlyPlacementDiffers({ volume_backend_name: 'a' }, { volume_backend_name: 'b' })).toBe(true);
    expect(onlyPlacementDiffers({ 'RESKEY:availability_zones': 'z1' }, {})).toBe(true);
    expect(onlyPlacementDiffers({ volume_backend_name: 'a' }, { volume_backend_name: 'b', thin: 'true' })).toBe(false);
  });
});

describe('file pool migration', () => {
  let root: string;
  const vol = (id: string): DriverVolume => ({ id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: false });
  const driver = (dir: string) =>
    new FileVolumeDriver({ directory: dir, backendName: 'a', hostname: 'h', reservedPercentage: 0, maxOverSubscriptionRatio: 20, storageProtocol: 'iSCSI', filterFunction: null, goodnessFunction: null });

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cb-mig-'));
    await mkdir(join(root, 'a'));
    await mkdir(join(root, 'b'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('moves an available volume to another directory on this host, keeping its name and data', async () => {
    const a = driver(join(root, 'a'));
    await writeFile(join(root, 'a', 'volume-1'), 'data');
    const dest = { host: 'h@b#b', locationInfo: `FileVolumeDriver:h:${join(root, 'b')}` };
    expect(await a.migrateVolume(vol('1'), 'available', dest)).toEqual({ moved: true, modelUpdate: null });
    expect(await readdir(join(root, 'a'))).toEqual([]);
    expect(await readFile(join(root, 'b', 'volume-1'), 'utf8')).toBe('data');
  });

  it('leaves the generic migration everything else', async () => {
    const a = driver(join(root, 'a'));
    await writeFile(join(root, 'a', 'volume-1'), 'data');
    const other = { moved: false, modelUpdate: null };
    expect(await a.migrateVolume(vol('1'), 'retyping', { host: 'x', locationInfo: `FileVolumeDriver:h:${join(root, 'b')}` })).toEqual(other);
    expect(await a.migrateVolume(vol('1'), 'available', { host: 'x', locationInfo: `FileVolumeDriver:other:${join(root, 'b')}` })).toEqual(other);
    expect(await a.migrateVolume(vol('1'), 'available', { host: 'x', locationInfo: `FileVolumeDriver:h:${join(root, 'nope')}` })).toEqual(other);
    await expect(a.migrateVolume(vol('1'), 'available', { host: 'x', locationInfo: `FileVolumeDriver:h:${join(root, 'a')}` })).rejects.toThrow(/same directory/);
    expect(await readdir(join(root, 'a'))).toEqual(['volume-1']);
  });

  it('renames without replacing a file already under the new name', async () => {
    const b = driver(join(root, 'b'));
    await writeFile(join(root, 'b', 'volume-new'), 'copy');
    await b.renameVolume(vol('new'), 'volume-kept');
    expect(await readdir(join(root, 'b'))).toEqual(['volume-kept']);
    await writeFile(join(root, 'b', 'volume-other'), 'x');
    await expect(b.renameVolume(vol('other'), 'volume-kept')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(join(root, 'b', 'volume-kept'), 'utf8')).toBe('copy');
  });
});
