// The in-process reader of dm-thin metadata (drivers/lvm/thin-metadata.ts) against real metadata:
// thin_restore (thin-provisioning-tools, the same tools the kernel's format is maintained with)
// writes binary metadata from XML, the reader reads it through the addon's O_DIRECT reads, and
// its map must equal the one thin_dump's XML of the same file gives. The held-snapshot path on a
// live pool is checked against thin_dump in the lab (test/lab/lvm.lab.test.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseThinDumpXml } from '../../../drivers/lvm/thin-map-commands.js';
import { nativeMetadataMapReader } from '../../../drivers/lvm/thin-map.js';
import {
  blockChecksum,
  parseSuperblock,
  readThinDeviceMap,
  ThinMetadataError,
  THIN_METADATA_BLOCK_BYTES as BLOCK,
  type MetadataBlockReader,
} from '../../../drivers/lvm/thin-metadata.js';
import { readDirect } from '../../../src/native/index.js';

const SUPERBLOCK_XOR = 160774;

// A deterministic spread of blocks (no Math.random: a failure must reproduce).
function spread(count: number, span: number, seed: number): number[] {
  const out = new Set<number>();
  let x = seed;
  while (out.size < count) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff; // 32-bit arithmetic: exact, so it never cycles short
    out.add(x % span);
  }
  return [...out].sort((a, b) => a - b);
}

// Device 7 has enough single mappings for a three-level tree (a leaf holds ~250); device 2 has
// long runs (range mappings); device 4 has none; device 1 a few.
function metadataXml(): string {
  const lines = ['<superblock uuid="" time="3" transaction="9" data_block_size="128" nr_data_blocks="4000000">'];
  let data = 0;
  const device = (id: number, body: string[]) => {
    lines.push(`  <device dev_id="${id}" mapped_blocks="0" transaction="0" creation_time="0" snap_time="2">`, ...body, '  </device>');
  };
  device(1, spread(5, 100000, 1).map((b) => `    <single_mapping origin_block="${b}" data_block="${data++}" time="0"/>`));
  device(
    2,
    [0, 5000, 90000].map((b, i) => {
      const m = `    <range_mapping origin_begin="${b}" data_begin="${data}" length="${1000 * (i + 1)}" time="1"/>`;
      data += 1000 * (i + 1);
      return m;
    }),
  );
  device(4, []);
  device(7, spread(70000, 2000000, 7).map((b) => `    <single_mapping origin_block="${b}" data_block="${data++}" time="2"/>`));
  lines.push('</superblock>');
  return `${lines.join('\n')}\n`;
}

let dir: string;
let image: string;
let dumped: string;
let imageBytes: Buffer;
const read: MetadataBlockReader = (blocks) => readDirect(image, blocks.map((b) => b * BLOCK), BLOCK);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cb-thin-meta-'));
  image = path.join(dir, 'meta.bin');
  writeFileSync(path.join(dir, 'in.xml'), metadataXml());
  writeFileSync(image, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '64M', image]);
  execFileSync('thin_restore', ['-i', path.join(dir, 'in.xml'), '-o', image]);
  dumped = execFileSync('thin_dump', [image], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  imageBytes = readFileSync(image);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A copy of the image with some blocks changed, each re-checksummed as the kernel would.
function patched(name: string, edits: Array<{ block: number; edit: (b: Buffer) => void; xor?: number }>): string {
  const buf = Buffer.from(imageBytes);
  for (const { block, edit, xor } of edits) {
    const b = buf.subarray(block * BLOCK, (block + 1) * BLOCK);
    edit(b);
    if (xor !== undefined) b.writeUInt32LE(blockChecksum(b, xor), 0);
  }
  const file = path.join(dir, name);
  writeFileSync(file, buf);
  return file;
}

const readerOf = (file: string): MetadataBlockReader => (blocks) => readDirect(file, blocks.map((b) => b * BLOCK), BLOCK);

describe('readThinDeviceMap on metadata written by thin_restore', () => {
  it('gives every device the map thin_dump gives: single mappings, runs, a three-level tree, an empty device', async () => {
    for (const devId of [1, 2, 4, 7]) {
      const mine = await readThinDeviceMap(read, devId, { root: 'current' });
      expect(mine).toEqual(parseThinDumpXml(dumped, devId));
    }
    const big = await readThinDeviceMap(read, 7, { root: 'current' });
    expect(big.mappedBytes).toBe(70000 * 64 * 1024);
    expect((await readThinDeviceMap(read, 4, { root: 'current' })).extents).toEqual([]);
  });

  it('reads the superblock as the kernel wrote it', () => {
    const sb = parseSuperblock(imageBytes.subarray(0, BLOCK), 0);
    expect(sb).toMatchObject({ version: 1, transactionId: 9, heldRoot: 0, dataBlockSectors: 128, metadataBlocks: 16384 });
  });

  it('a device the pool does not have, or no snapshot held when one is asked for: a clear error', async () => {
    await expect(readThinDeviceMap(read, 3, { root: 'current' })).rejects.toThrow(/thin device 3 is not in the pool's metadata/);
    await expect(readThinDeviceMap(read, 1)).rejects.toThrow(/no metadata snapshot is held/);
  });

  it('reads the held snapshot’s roots, not the current ones', async () => {
    // Make block 0 a pool whose current mapping root points at an empty block, holding a snapshot
    // (a copy of the original superblock in the last block): only the snapshot leads to the maps.
    const last = 16383;
    const original = imageBytes.subarray(0, BLOCK);
    const file = patched('held.bin', [
      {
        block: last,
        edit: (b) => {
          original.copy(b);
          b.writeBigUInt64LE(BigInt(last), 8);
        },
        xor: SUPERBLOCK_XOR,
      },
      {
        block: 0,
        edit: (b) => {
          b.writeBigUInt64LE(BigInt(last), 56); // held_root
          b.writeBigUInt64LE(BigInt(last - 1), 320); // data_mapping_root: an all-zero block
        },
        xor: SUPERBLOCK_XOR,
      },
    ]);
    expect(await readThinDeviceMap(readerOf(file), 7)).toEqual(parseThinDumpXml(dumped, 7));
    await expect(readThinDeviceMap(readerOf(file), 7, { root: 'current' })).rejects.toThrow(/b-tree node at block 16382 fails its checksum/);
  });

  it('a damaged block is refused, never read as a shorter map', async () => {
    const sb = parseSuperblock(imageBytes.subarray(0, BLOCK), 0);
    // flip a key in the root node of the mapping tree without fixing its checksum
    const file = patched('bad-node.bin', [{ block: sb.dataMappingRoot, edit: (b) => (b[33] = b[33]! ^ 0xff) }]);
    await expect(readThinDeviceMap(readerOf(file), 1, { root: 'current' })).rejects.toThrow(ThinMetadataError);
    await expect(readThinDeviceMap(readerOf(file), 1, { root: 'current' })).rejects.toThrow(/fails its checksum/);
  });

  it('something that is not thin metadata, or a node that points past the device: refused', async () => {
    const zeros = path.join(dir, 'zeros.bin');
    writeFileSync(zeros, Buffer.alloc(16 * BLOCK));
    await expect(readThinDeviceMap(readerOf(zeros), 1, { root: 'current' })).rejects.toThrow(/superblock at block 0 fails its checksum/);
    const sb = parseSuperblock(imageBytes.subarray(0, BLOCK), 0);
    const file = patched('wild-root.bin', [{ block: 0, edit: (b) => b.writeBigUInt64LE(BigInt(sb.metadataBlocks + 5), 320), xor: SUPERBLOCK_XOR }]);
    await expect(readThinDeviceMap(readerOf(file), 1, { root: 'current' })).rejects.toThrow(/data mapping root 16389 is past the metadata's 16384 blocks/);
  });

  it('keys out of order in a node (a checksummed but wrong node) are refused', async () => {
    const sb = parseSuperblock(imageBytes.subarray(0, BLOCK), 0);
    const file = patched('unordered.bin', [
      {
        block: sb.dataMappingRoot,
        edit: (b) => {
          // top-level node holds dev ids 1, 2, 4, 7: swap the first two keys
          const k0 = b.readBigUInt64LE(32);
          b.writeBigUInt64LE(b.readBigUInt64LE(40), 32);
          b.writeBigUInt64LE(k0, 40);
        },
        xor: 121107,
      },
    ]);
    await expect(readThinDeviceMap(readerOf(file), 1, { root: 'current' })).rejects.toThrow(/keys out of order/);
  });

  it('the default reader reads the device path through the addon (held snapshot only)', async () => {
    await expect(nativeMetadataMapReader(image, 1)).rejects.toThrow(/no metadata snapshot is held/);
  });
});

describe('readDirect', () => {
  it('one buffer per offset, in order; a read past the end fails rather than come back short', async () => {
    const [a, b] = await readDirect(image, [0, 3 * BLOCK], BLOCK);
    expect(a!.equals(imageBytes.subarray(0, BLOCK))).toBe(true);
    expect(b!.equals(imageBytes.subarray(3 * BLOCK, 4 * BLOCK))).toBe(true);
    await expect(readDirect(image, [64 * 1024 * 1024], BLOCK)).rejects.toMatchObject({ code: 'ENXIO' });
    expect(await readDirect(image, [], BLOCK)).toEqual([]);
  });

  it('refuses unaligned offsets and lengths before reading anything', async () => {
    await expect(readDirect(image, [100], BLOCK)).rejects.toThrow(/multiples of 4096/);
    await expect(readDirect(image, [0], 1000)).rejects.toThrow(/multiple of 4096/);
  });
});
