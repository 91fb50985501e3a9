// The manageable listings as cinder fills them: the LVM driver's entries (already managed with
// cinder_id, "<kind> in use", safe; a snapshot's origin) built from what the driver reports, and
// volume_utils.paginate_entries_list's sort, marker, offset and limit; then the LVM driver's own
// report of its LVs on the in-memory LVM.
import { describe, expect, it } from 'vitest';
import type { BackendObject } from '../../../drivers/driver.js';
import { LvmVolumeDriver } from '../../../drivers/lvm/lvm-driver.js';
import { manageableEntries, paginateEntries } from '../../../src/manager/flows/manageable.js';
import { FakeLvm } from '../lvm/fake-lvm.js';

const GiB = 1024 ** 3;
const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';

function obj(o: Partial<BackendObject> & { name: string }): BackendObject {
  return { cinderName: o.name, size: 1, inUse: false, isSnapshot: false, origin: null, ...o };
}

describe('manageableEntries (the LVM driver _get_manageable_resource_info)', () => {
  const objects = [
    obj({ name: `volume-${A}`, size: 2 }),
    obj({ name: 'data-lv', size: 5, inUse: true }),
    obj({ name: 'spare', size: 3 }),
    obj({ name: `_snapshot-${B}`, cinderName: `snapshot-${B}`, isSnapshot: true, origin: `volume-${A}` }),
    obj({ name: 'old-snap', isSnapshot: true, origin: 'data-lv', inUse: true }),
  ];

  it('volumes: a managed one carries its cinder_id, an open one is "volume in use", the rest are safe', () => {
    expect(manageableEntries('volume', objects, new Set([A]))).toEqual([
      { reference: { 'source-name': `volume-${A}` }, size: 2, safe_to_manage: false, reason_not_safe: 'already managed', cinder_id: A, extra_info: null },
      { reference: { 'source-name': 'data-lv' }, size: 5, safe_to_manage: false, reason_not_safe: 'volume in use', cinder_id: null, extra_info: null },
      { reference: { 'source-name': 'spare' }, size: 3, safe_to_manage: true, reason_not_safe: null, cinder_id: null, extra_info: null },
    ]);
  });

  it('snapshots: the escaped LV name maps to its snapshot id, and each names its origin', () => {
    expect(manageableEntries('snapshot', objects, new Set([B]))).toEqual([
      { reference: { 'source-name': `_snapshot-${B}` }, size: 1, safe_to_manage: false, reason_not_safe: 'already managed', cinder_id: B, extra_info: null, source_reference: { 'source-name': `volume-${A}` } },
      { reference: { 'source-name': 'old-snap' }, size: 1, safe_to_manage: false, reason_not_safe: 'snapshot in use', cinder_id: null, extra_info: null, source_reference: { 'source-name': 'data-lv' } },
    ]);
  });

  it('an id that names no volume of this backend is not "already managed"', () => {
    expect(manageableEntries('volume', [obj({ name: `volume-${B}` })], new Set([A]))[0]).toMatchObject({ safe_to_manage: true, cinder_id: null });
  });
});

describe('paginateEntries (volume_utils.paginate_entries_list)', () => {
  const e = (name: string, size: number) => ({ reference: { 'source-name': name }, size });
  const entries = [e('b', 2), e('a', 3), e('c', 2), e('d', 1)];
  const names = (xs: Array<{ reference: { 'source-name': string } }>) => xs.map((x) => x.reference['source-name']);

  it('sorts by each key in turn; a direction other than asc is descending', () => {
    expect(names(paginateEntries(entries, null, 10, 0, ['size', 'reference'], ['asc', 'asc']))).toEqual(['d', 'b', 'c', 'a']);
    expect(names(paginateEntries(entries, null, 10, 0, ['size', 'reference'], ['desc', 'desc']))).toEqual(['a', 'c', 'b', 'd']);
    expect(names(paginateEntries(entries, null, 10, 0, ['reference'], ['dsc']))).toEqual(['d', 'c', 'b', 'a']);
  });

  it('starts after the marker, skips offset, returns at most limit', () => {
    expect(names(paginateEntries(entries, '{"source-name": "b"}', 2, 0, ['reference'], ['asc']))).toEqual(['c', 'd']);
    expect(names(paginateEntries(entries, '{"source-name": "a"}', 1, 1, ['reference'], ['asc']))).toEqual(['c']);
    expect(names(paginateEntries(entries, null, 2, 1, ['reference'], ['asc']))).toEqual(['b', 'c']);
    expect(names(paginateEntries(entries, null, null, null, ['reference'], ['asc']))).toEqual(['a', 'b', 'c', 'd']);
  });

  it("refuses a marker that is not JSON or is not listed, in cinder's words", () => {
    expect(() => paginateEntries(entries, 'b', 2, 0, ['reference'], ['asc'])).toThrow('Invalid input received: marker b can not be analysed, please use json like format');
    expect(() => paginateEntries(entries, '{"source-name": "zz"}', 2, 0, ['reference'], ['asc'])).toThrow("Invalid input received: marker not found: {'source-name': 'zz'}");
  });
});

describe('LvmVolumeDriver.listBackendObjects', () => {
  it('reports each LV with its size rounded up, open ones in use, thick snapshots with their origin; no transient LVs', async () => {
    const fake = new FakeLvm('cinder-volumes', [20 * GiB]);
    fake.addLv({ name: `volume-${A}`, sizeBytes: 1 * GiB });
    fake.addLv({ name: 'data-lv', sizeBytes: Math.floor(1.5 * GiB), open: true });
    fake.addLv({ name: `_snapshot-${B}`, sizeBytes: 1 * GiB, kind: 'snapshot', origin: `volume-${A}` });
    fake.addLv({ name: `clone-snap-${B}`, sizeBytes: 1 * GiB, kind: 'snapshot', origin: `volume-${A}` });
    const driver = new LvmVolumeDriver({ volumeGroup: 'cinder-volumes', lvmType: 'default', backendName: 'lvm', hostname: 'vm', runner: fake.runner, sleep: async () => undefined });
    await driver.doSetup();
    const list = await driver.listBackendObjects();
    expect(list.sort((x, y) => x.name.localeCompare(y.name))).toEqual([
      { name: `_snapshot-${B}`, cinderName: `snapshot-${B}`, size: 1, inUse: false, isSnapshot: true, origin: `volume-${A}` },
      { name: 'data-lv', cinderName: 'data-lv', size: 2, inUse: true, isSnapshot: false, origin: null },
      { name: `volume-${A}`, cinderName: `volume-${A}`, size: 1, inUse: false, isSnapshot: false, origin: null },
    ]);
  });
});

describe('LvmVolumeDriver.manageExistingSnapshot', () => {
  it("renames the LV to the snapshot's escaped name and sizes it as a volume's LV", async () => {
    const fake = new FakeLvm('cinder-volumes', [20 * GiB]);
    fake.addLv({ name: `volume-${A}`, sizeBytes: 1 * GiB });
    fake.addLv({ name: 'backup-snap', sizeBytes: Math.floor(1.2 * GiB), kind: 'snapshot', origin: `volume-${A}` });
    const driver = new LvmVolumeDriver({ volumeGroup: 'cinder-volumes', lvmType: 'default', backendName: 'lvm', hostname: 'vm', runner: fake.runner, sleep: async () => undefined });
    await driver.doSetup();
    expect(await driver.manageExistingSnapshotGetSize({ 'source-name': 'backup-snap' })).toBe(2);
    const snapshot = { id: B, name: `snapshot-${B}`, volumeId: A, volumeName: `volume-${A}`, volumeSize: 1, providerLocation: null };
    expect(await driver.manageExistingSnapshot(snapshot, { 'source-name': 'backup-snap' })).toBeNull();
    expect(fake.lvs.has(`_snapshot-${B}`)).toBe(true);
    expect(fake.lvs.has('backup-snap')).toBe(false);
    await expect(driver.manageExistingSnapshotGetSize({ 'source-name': 'gone' })).rejects.toMatchObject({ className: 'ManageExistingInvalidReference' });
  });
});
