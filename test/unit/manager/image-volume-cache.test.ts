// The image-volume cache's rules without a database: when an entry is stale, and which entries
// ensure_space evicts (least recently used first, until the size and count limits hold).
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { ImageVolumeCacheEntry, Volume } from '../../../src/db/index.js';
import type { ImageMeta } from '../../../src/image/image-meta.js';
import { ensureSpace, imageUpdatedAt, isStale, type ImageVolumeCacheSettings } from '../../../src/manager/flows/image-volume-cache.js';
import type { FlowDeps } from '../../../src/manager/flows/common.js';
import { internalTenantContext } from '../../../src/rpc/context.js';

const image = (updated_at: string | null): ImageMeta =>
  ({ id: 'img', name: null, status: 'active', disk_format: 'raw', container_format: 'bare', size: 1, virtual_size: null, checksum: null, os_hash_algo: null, os_hash_value: null, owner: null, min_disk: 0, min_ram: 0, updated_at, properties: {} }) as ImageMeta;

describe('stale entries (_should_update_entry)', () => {
  it("compares Glance's updated_at with the entry's naive UTC time", () => {
    const at = new Date('2026-12-01T08:09:10Z');
    expect(imageUpdatedAt(image('2026-12-01T08:09:10Z'))).toEqual(at);
    expect(imageUpdatedAt(image('2026-12-01T09:09:10+01:00'))).toEqual(at);
    expect(imageUpdatedAt(image('2026-12-01T08:09:10'))).toEqual(at);
    expect(isStale({ image_updated_at: at }, image('2026-12-01T08:09:10Z'))).toBe(false);
    expect(isStale({ image_updated_at: at }, image('2026-12-01T08:09:11Z'))).toBe(true);
  });
  it('an entry or image that cannot say when is stale: a fresh download is the safe answer', () => {
    expect(isStale({ image_updated_at: null }, image('2026-12-01T08:09:10Z'))).toBe(true);
    expect(isStale({ image_updated_at: new Date() }, image(null))).toBe(true);
    expect(isStale({ image_updated_at: new Date() }, image('yesterday'))).toBe(true);
  });
});

describe('ensure_space', () => {
  /** Entries most recently used first, as listInScope gives them; their volumes are gone, so an eviction only drops the entry. */
  function depsWith(entries: Array<{ image: string; size: number }>) {
    const evicted: string[] = [];
    const rows: ImageVolumeCacheEntry[] = entries.map((e, i) => ({ id: i + 1, host: 'h@b#p', cluster_name: null, image_id: e.image, image_updated_at: null, volume_id: `vol-${e.image}`, size: e.size, last_used: new Date() }));
    const deps = {
      logger: pino({ level: 'silent' }),
      db: {
        imageVolumeCache: {
          listInScope: async () => [...rows],
          deleteByVolume: async (id: string) => void evicted.push(id),
        },
        volumes: { find: async () => undefined },
      },
    } as unknown as FlowDeps;
    return { deps, evicted };
  }
  const ctx = internalTenantContext({ projectId: 'p', userId: 'u' });
  const volume = (size: number) => ({ id: 'new', size, host: 'h@b#p', cluster_name: null }) as Volume;
  const limits = (maxSizeGb: number, maxCount: number): ImageVolumeCacheSettings => ({ maxSizeGb, maxCount, internalTenant: { projectId: 'p', userId: 'u' } });

  it('unlimited: nothing is read or evicted', async () => {
    const { deps, evicted } = depsWith([{ image: 'a', size: 5 }]);
    expect(await ensureSpace(deps, ctx, limits(0, 0), volume(100))).toBe(true);
    expect(evicted).toEqual([]);
  });
  it('by count: the least recently used go until the new entry fits', async () => {
    const { deps, evicted } = depsWith([{ image: 'new1', size: 1 }, { image: 'mid', size: 1 }, { image: 'old', size: 1 }]);
    expect(await ensureSpace(deps, ctx, limits(0, 2), volume(1))).toBe(true);
    expect(evicted).toEqual(['vol-old', 'vol-mid']);
  });
  it('by size: evicts by GB; a volume larger than the whole cache is refused without evicting anything', async () => {
    const { deps, evicted } = depsWith([{ image: 'a', size: 3 }, { image: 'b', size: 4 }]);
    expect(await ensureSpace(deps, ctx, limits(10, 0), volume(11))).toBe(false);
    expect(evicted).toEqual([]);
    expect(await ensureSpace(deps, ctx, limits(10, 0), volume(4))).toBe(true);
    expect(evicted).toEqual(['vol-b']);
  });
});
