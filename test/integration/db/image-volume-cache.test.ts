// image_volume_cache_entries, against cinder's own DB API on the same database: entries one side
// writes are found, ordered and deleted by the other, so a cache made by cinder-volume keeps
// working under cinderblock and the reverse.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../../helpers/cinder-db.js';
import { pyIso, setUpBackend, type BackendContext } from './support.js';

describe.each(BACKENDS)('image-volume cache entries on %s', (backend) => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend(backend);
  });
  afterAll(async () => c?.close());

  const host = () => `node-${randomUUID().slice(0, 8)}@lvm#lvm`;

  it("an entry we create is cinder's: found by image_volume_cache_get_and_update_last_used and get_by_volume_id", async () => {
    const h = host();
    const imageId = randomUUID();
    const volumeId = randomUUID();
    const updatedAt = new Date('2026-11-30T10:20:30Z');
    const ours = await c.db.imageVolumeCache.create({ host: h, clusterName: null, imageId, imageUpdatedAt: updatedAt, volumeId, sizeGb: 2 });
    const theirs = await c.oracle.callKw('image_volume_cache_get_and_update_last_used', [imageId], { host: h });
    expect(theirs).toMatchObject({ id: ours.id, host: h, cluster_name: null, image_id: imageId, volume_id: volumeId, size: 2, image_updated_at: pyIso(updatedAt, backend) });
    expect(await c.oracle.call('image_volume_cache_get_by_volume_id', volumeId)).toMatchObject({ id: ours.id });
    expect(await c.db.imageVolumeCache.findByVolume(volumeId)).toMatchObject({ id: ours.id, image_updated_at: updatedAt });
    // another host's lookup does not see it
    expect(await c.oracle.callKw('image_volume_cache_get_and_update_last_used', [imageId], { host: host() })).toBeNull();
    expect(await c.db.imageVolumeCache.getAndUpdateLastUsed(imageId, { host: host() })).toBeUndefined();
  });

  it("an entry cinder creates is found by us, last_used touched, and cinder's get_all order is ours", async () => {
    const h = host();
    const imageIds = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, imageId] of imageIds.entries()) {
      await c.oracle.call('image_volume_cache_create', h, null, imageId, { $dt: '2026-11-30T10:00:00' }, randomUUID(), i + 1);
      // whole seconds apart: MySQL's DATETIME keeps no fraction
      await new Promise((r) => setTimeout(r, 1100));
    }
    const before = await c.db.imageVolumeCache.listInScope({ host: h });
    // the oldest made is touched: it becomes the most recently used for both of us
    const touched = await c.db.imageVolumeCache.getAndUpdateLastUsed(imageIds[0]!, { host: h });
    expect(touched).toMatchObject({ image_id: imageIds[0], size: 1, image_updated_at: new Date('2026-11-30T10:00:00Z') });
    const ours = await c.db.imageVolumeCache.listInScope({ host: h });
    const theirs = (await c.oracle.callKw('image_volume_cache_get_all', [], { host: h })) as Array<{ id: number }>;
    expect(ours.map((e) => e.id)).toEqual(theirs.map((e) => e.id));
    expect(before.map((e) => e.image_id)).toEqual([imageIds[2], imageIds[1], imageIds[0]]);
    expect(ours.map((e) => e.image_id)).toEqual([imageIds[0], imageIds[2], imageIds[1]]);
  });

  it('a clustered entry is found by its cluster, and deleting by volume removes it for cinder too', async () => {
    const cluster = `cluster-${randomUUID().slice(0, 6)}@lvm`;
    const imageId = randomUUID();
    const volumeId = randomUUID();
    await c.db.imageVolumeCache.create({ host: host(), clusterName: cluster, imageId, imageUpdatedAt: null, volumeId, sizeGb: 1 });
    expect(await c.oracle.callKw('image_volume_cache_get_and_update_last_used', [imageId], { cluster_name: cluster })).toMatchObject({ volume_id: volumeId });
    expect(await c.db.imageVolumeCache.getAndUpdateLastUsed(imageId, { clusterName: cluster })).toMatchObject({ volume_id: volumeId });
    await c.db.imageVolumeCache.deleteByVolume(volumeId);
    expect(await c.oracle.call('image_volume_cache_get_by_volume_id', volumeId)).toBeNull();
  });
});
