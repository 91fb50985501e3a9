// dm-thin's on-disk metadata, read in-process: which blocks of one thin device are mapped, taken
// from the pool's metadata device as thin_dump would, without a thin_dump process (in an emulated
// guest a process start alone was ~80% of a thin map lookup).
//
// The format is the kernel's (drivers/md/dm-thin-metadata.c, drivers/md/persistent-data/):
// 4 KiB blocks; block 0 the superblock; the mappings a two-level b-tree, dev_id -> (virtual block
// -> data block << 24 | time). A live pool rewrites its metadata as it runs, so a consistent read
// needs the metadata snapshot the pool keeps while it is held (`reserve_metadata_snap`): the
// superblock's held_root names a frozen copy of the superblock, whose trees do not change until
// `release_metadata_snap`. Every block is checked as the kernel checks it (crc32c, its own
// location, magic, sane counts): a map that is wrong would make a copy skip data, so anything
// unexpected throws and the caller falls back to something slower but certain.
import { extentsFromBlocks, type ThinDeviceMap } from './thin-map-commands.js';

/** Metadata block size: fixed at 4 KiB (THIN_METADATA_BLOCK_SIZE). */
export const THIN_METADATA_BLOCK_BYTES = 4096;

/** Reads whole metadata blocks by number, in order (the caller bypasses the page cache). */
export type MetadataBlockReader = (blocks: readonly number[]) => Promise<Buffer[]>;

export class ThinMetadataError extends Error {
  constructor(message: string) {
    super(`thin pool metadata: ${message}`);
    this.name = 'ThinMetadataError';
  }
}

const SUPERBLOCK_MAGIC = 27022010n;
const SUPERBLOCK_CSUM_XOR = 160774;
const BTREE_CSUM_XOR = 121107;
const INTERNAL_NODE = 1;
const LEAF_NODE = 2;
const NODE_HEADER_BYTES = 32;
// Versions 1 and 2 share the superblock layout and the mapping trees (2 adds flags we do not need).
const KNOWN_VERSIONS = new Set([1, 2]);
// A b-tree of 4 KiB nodes holding 2^64 keys is under 10 levels deep: more is a loop.
const MAX_DEPTH = 16;

// crc32c (Castagnoli, reflected 0x82F63B78), the kernel's crc32c(): no inversion at either end,
// the seed is passed in. dm_bm_checksum() = crc32c(~0, data, len) ^ xor.
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32cUpdate(seed: number, data: Uint8Array): number {
  let c = seed >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** The checksum persistent-data stores in a block's first 4 bytes, over the rest of it. */
export function blockChecksum(block: Buffer, xor: number): number {
  return (crc32cUpdate(0xffffffff, block.subarray(4)) ^ xor) >>> 0;
}

function checkBlock(block: Buffer, location: number, xor: number, what: string): void {
  if (block.length !== THIN_METADATA_BLOCK_BYTES) throw new ThinMetadataError(`${what} at block ${location} is ${block.length} bytes, not ${THIN_METADATA_BLOCK_BYTES}`);
  const stored = block.readUInt32LE(0);
  const computed = blockChecksum(block, xor);
  if (stored !== computed) throw new ThinMetadataError(`${what} at block ${location} fails its checksum (stored ${stored}, computed ${computed}): damaged, or not thin pool metadata`);
  const blocknr = u64At(block, 8, `block number of the ${what} at block ${location}`);
  if (blocknr !== location) throw new ThinMetadataError(`${what} at block ${location} says it is block ${blocknr}`);
}

// A le64 as a number, from two 32-bit halves (no BigInt: a walk reads thousands of them, and an
// emulated CPU feels every allocation). Anything above 2^53 is refused, not rounded.
function u64At(block: Buffer, offset: number, what: string): number {
  const hi = block.readUInt32LE(offset + 4);
  if (hi >= 0x200000) throw new ThinMetadataError(`${what} at byte ${offset} is out of range (high word ${hi})`);
  return hi * 0x100000000 + block.readUInt32LE(offset);
}

export interface ThinSuperblock {
  version: number;
  transactionId: number;
  /** Block of the held metadata snapshot (a copy of the superblock), 0 when none is held. */
  heldRoot: number;
  dataMappingRoot: number;
  deviceDetailsRoot: number;
  /** The pool's block (chunk) size in 512-byte sectors. */
  dataBlockSectors: number;
  metadataBlocks: number;
}

/** Parses and checks a superblock (block 0, or the held snapshot's copy at `location`). */
export function parseSuperblock(block: Buffer, location: number): ThinSuperblock {
  checkBlock(block, location, SUPERBLOCK_CSUM_XOR, 'superblock');
  const magic = block.readBigUInt64LE(32); // a constant, compared whole
  if (magic !== SUPERBLOCK_MAGIC) throw new ThinMetadataError(`superblock at block ${location} has magic ${magic}, not ${SUPERBLOCK_MAGIC}`);
  const version = block.readUInt32LE(40);
  if (!KNOWN_VERSIONS.has(version)) throw new ThinMetadataError(`metadata version ${version} is not one this reader knows (1, 2)`);
  const metadataBlockSectors = block.readUInt32LE(340);
  if (metadataBlockSectors * 512 !== THIN_METADATA_BLOCK_BYTES) throw new ThinMetadataError(`metadata block size is ${metadataBlockSectors} sectors, not 8`);
  const sb: ThinSuperblock = {
    version,
    transactionId: u64At(block, 48, 'transaction id'),
    heldRoot: u64At(block, 56, 'held root'),
    dataMappingRoot: u64At(block, 320, 'data mapping root'),
    deviceDetailsRoot: u64At(block, 328, 'device details root'),
    dataBlockSectors: block.readUInt32LE(336),
    metadataBlocks: u64At(block, 344, 'metadata block count'),
  };
  if (sb.dataBlockSectors === 0) throw new ThinMetadataError('data block size is 0');
  for (const [what, b] of [['data mapping root', sb.dataMappingRoot], ['held root', sb.heldRoot]] as const) {
    if (b >= sb.metadataBlocks) throw new ThinMetadataError(`${what} ${b} is past the metadata's ${sb.metadataBlocks} blocks`);
  }
  return sb;
}

export interface BtreeNode {
  leaf: boolean;
  keys: number[];
  /**
   * Each value as the le64 it is (a child block, a device's subtree root); empty for a leaf
   * unless asked for: a bottom-level leaf's values (data block and time) are not needed.
   */
  values: number[];
}

/** Parses and checks one b-tree node whose values are 8 bytes (every tree this reader walks). */
export function parseBtreeNode(block: Buffer, location: number, opts: { leafValues?: boolean } = {}): BtreeNode {
  checkBlock(block, location, BTREE_CSUM_XOR, 'b-tree node');
  const flags = block.readUInt32LE(4);
  const leaf = (flags & LEAF_NODE) !== 0;
  if (leaf === ((flags & INTERNAL_NODE) !== 0)) throw new ThinMetadataError(`b-tree node at block ${location} has flags ${flags}: neither or both of internal and leaf`);
  const count = block.readUInt32LE(16);
  const max = block.readUInt32LE(20);
  const valueSize = block.readUInt32LE(24);
  if (valueSize !== 8) throw new ThinMetadataError(`b-tree node at block ${location} has ${valueSize}-byte values where 8 were expected`);
  if (count > max || NODE_HEADER_BYTES + max * (8 + valueSize) > THIN_METADATA_BLOCK_BYTES) {
    throw new ThinMetadataError(`b-tree node at block ${location} claims ${count} of ${max} entries, more than a block holds`);
  }
  const keys: number[] = new Array(count);
  const withValues = !leaf || opts.leafValues === true;
  const values: number[] = withValues ? new Array(count) : [];
  const valuesAt = NODE_HEADER_BYTES + max * 8;
  for (let i = 0; i < count; i++) {
    keys[i] = u64At(block, NODE_HEADER_BYTES + i * 8, `key ${i} of the b-tree node at block ${location}`);
    if (withValues) values[i] = u64At(block, valuesAt + i * 8, `value ${i} of the b-tree node at block ${location}`);
    if (i > 0 && keys[i]! <= keys[i - 1]!) throw new ThinMetadataError(`b-tree node at block ${location} has keys out of order`);
  }
  return { leaf, keys, values };
}

/** Which metadata to read: the held snapshot (a live pool), or the current roots (a pool not in use, an image). */
export type MetadataRoot = 'held' | 'current';

/**
 * The mapped blocks of thin device `devId`, as a ThinDeviceMap (the same shape thin_dump's XML
 * gives). `root: 'held'` (the default) reads the metadata snapshot and throws if none is held.
 */
export async function readThinDeviceMap(read: MetadataBlockReader, devId: number, opts: { root?: MetadataRoot } = {}): Promise<ThinDeviceMap> {
  const readOne = async (b: number): Promise<Buffer> => (await read([b]))[0]!;
  const sb = parseSuperblock(await readOne(0), 0);
  let mappingRoot = sb.dataMappingRoot;
  if ((opts.root ?? 'held') === 'held') {
    if (sb.heldRoot === 0) throw new ThinMetadataError('no metadata snapshot is held (send the pool reserve_metadata_snap first)');
    mappingRoot = parseSuperblock(await readOne(sb.heldRoot), sb.heldRoot).dataMappingRoot;
  }
  const inRange = (b: number, what: string): number => {
    if (b >= sb.metadataBlocks || b === 0) throw new ThinMetadataError(`${what} ${b} is outside the metadata's ${sb.metadataBlocks} blocks`);
    return b;
  };

  // Top level: dev_id -> root of that device's tree. In an internal node, the child to follow is
  // the last whose key is <= the one looked for.
  let node = parseBtreeNode(await readOne(mappingRoot), mappingRoot, { leafValues: true });
  let deviceRoot: number | undefined;
  for (let depth = 0; ; depth++) {
    if (depth > MAX_DEPTH) throw new ThinMetadataError('the device tree is deeper than any real one: a loop');
    let i = node.keys.length - 1;
    while (i >= 0 && node.keys[i]! > devId) i--;
    if (node.leaf) {
      if (i >= 0 && node.keys[i] === devId) deviceRoot = inRange(node.values[i]!, `root of device ${devId}'s mappings`);
      break;
    }
    if (i < 0) break;
    const child = inRange(node.values[i]!, 'child block');
    node = parseBtreeNode(await readOne(child), child, { leafValues: true });
  }
  if (deviceRoot === undefined) throw new ThinMetadataError(`thin device ${devId} is not in the pool's metadata`);

  // Bottom level, walked breadth-first: one batch of reads per level, children in key order.
  const blocks: Array<[number, number]> = [];
  const seen = new Set<number>();
  let level = [deviceRoot];
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > MAX_DEPTH) throw new ThinMetadataError(`device ${devId}'s tree is deeper than any real one: a loop`);
    for (const b of level) {
      if (seen.has(b)) throw new ThinMetadataError(`block ${b} appears twice in device ${devId}'s tree`);
      seen.add(b);
    }
    const nodes = await read(level);
    const next: number[] = [];
    nodes.forEach((buf, k) => {
      const n = parseBtreeNode(buf, level[k]!);
      if (n.leaf) {
        for (const origin of n.keys) {
          const last = blocks[blocks.length - 1];
          if (last && last[0] + last[1] === origin) last[1]++;
          else blocks.push([origin, 1]);
        }
      } else {
        for (const v of n.values) next.push(inRange(v, 'child block'));
      }
    });
    level = next;
  }
  return extentsFromBlocks(blocks, sb.dataBlockSectors * 512, devId, 'thin pool metadata');
}
