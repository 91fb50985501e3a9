// container_format 'compressed' (gzip) on the create path, against a stand-in Glance that hands
// out chosen bytes: a gzip bomb is cut off once it inflates past the volume (plus a tenth), and
// broken gzip is refused; either way image_conversion_dir is left empty. The good paths run
// against the real glance-api in test/integration/e2e/glance-images.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { prepareImage } from '../../../src/image/fetch-to-volume.js';
import type { GlanceClient } from '../../../src/image/glance-client.js';
import type { ImageMeta } from '../../../src/image/image-meta.js';
import type { ImageTools } from '../../../src/image/image-tools.js';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-gz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function tools(data: () => AsyncIterable<Buffer>): ImageTools {
  const glance = { download: () => data() } as unknown as GlanceClient;
  return {
    glance: () => glance,
    runner: async () => {
      throw new Error('qemu-img must not run for an image refused while it downloads');
    },
    options: { conversionDir: dir, conversionDisabled: false, compressOnUpload: true, vmdkAllowedTypes: [], verifySignatures: 'disabled', limits: { cpuSeconds: 60, addressSpaceGiB: 1 }, backendName: 'file' },
    logger: pino({ level: 'silent' }),
  };
}

const image = (size: number): ImageMeta => ({
  id: 'c0ffee00-0000-4000-8000-000000000001',
  name: 'gz',
  status: 'active',
  disk_format: 'raw',
  container_format: 'compressed',
  size,
  virtual_size: null,
  checksum: null,
  os_hash_algo: null,
  os_hash_value: null,
  owner: null,
  min_disk: 0,
  min_ram: 0,
  updated_at: null,
  properties: {},
});

/** 64 MiB of zeros as one gzip member (about 64 KiB); gunzip reads members one after another. */
const zeroMember = gzipSync(Buffer.alloc(64 * MiB));

describe('compressed images (gzip)', () => {
  it('cuts off a gzip bomb once it inflates past the volume plus a tenth, leaving nothing in image_conversion_dir', async () => {
    // 20 members: 1.25 GiB inflated from 1.3 MB
    const bomb = async function* () {
      for (let i = 0; i < 20; i++) yield zeroMember;
    };
    await expect(prepareImage(tools(bomb), {} as never, image(20 * zeroMember.length), 1)).rejects.toThrow(/inflates to more than 1 GiB/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses data that is not gzip, and gzip cut short', async () => {
    const plain = Buffer.alloc(MiB, 7);
    await expect(prepareImage(tools(async function* () { yield plain; }), {} as never, image(plain.length), 1)).rejects.toThrow(/not gzip: only gzip is supported/);
    const cut = gzipSync(Buffer.alloc(4 * MiB, 9)).subarray(0, 200);
    await expect(prepareImage(tools(async function* () { yield cut; }), {} as never, image(cut.length), 1)).rejects.toThrow(/not valid gzip/);
    expect(await readdir(dir)).toEqual([]);
  });
});
