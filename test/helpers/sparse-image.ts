// A raw disk image that is mostly holes, as an operating system image is: 1 MiB of data at the
// start of every 10 MiB (10% data), the rest never written. Each region's bytes depend on its
// index, so a copy can be checked region by region without keeping the image around.
import { open } from 'node:fs/promises';

const MiB = 1024 * 1024;
export const SPARSE_STRIDE = 10 * MiB;
export const SPARSE_REGION = MiB;

/** The data of region `i`: never zero, different for every region. */
export function sparseRegion(i: number): Buffer {
  const b = Buffer.alloc(SPARSE_REGION);
  const word = Buffer.from([0xa5, i & 0xff, (i >> 8) & 0xff, 0x5a]);
  for (let off = 0; off < b.length; off += 4) word.copy(b, off);
  return b;
}

export function sparseRegions(sizeBytes: number): number {
  return Math.ceil(sizeBytes / SPARSE_STRIDE);
}

/** Writes the image (a sparse file of `sizeBytes`); returns how many bytes are data. */
export async function writeSparseImage(path: string, sizeBytes: number): Promise<number> {
  const fh = await open(path, 'w');
  try {
    await fh.truncate(sizeBytes);
    let data = 0;
    for (let i = 0; i < sparseRegions(sizeBytes); i++) {
      const region = sparseRegion(i).subarray(0, Math.min(SPARSE_REGION, sizeBytes - i * SPARSE_STRIDE));
      await fh.write(region, 0, region.length, i * SPARSE_STRIDE);
      data += region.length;
    }
    return data;
  } finally {
    await fh.close();
  }
}

/**
 * Reads back every `every`-th region of the image from `path` (a volume file or device) and the
 * zeros between the first two; returns what differs (empty when it holds the image).
 */
export async function sparseImageMismatches(path: string, sizeBytes: number, every = 1): Promise<string[]> {
  const fh = await open(path, 'r');
  const out: string[] = [];
  try {
    const buf = Buffer.alloc(SPARSE_REGION);
    const n = sparseRegions(sizeBytes);
    for (let i = 0; i < n; i += every) {
      const len = Math.min(SPARSE_REGION, sizeBytes - i * SPARSE_STRIDE);
      await fh.read(buf, 0, len, i * SPARSE_STRIDE);
      if (!buf.subarray(0, len).equals(sparseRegion(i).subarray(0, len))) out.push(`region ${i} at ${i * SPARSE_STRIDE}`);
    }
    if (n > 1) {
      await fh.read(buf, 0, SPARSE_REGION, SPARSE_REGION);
      if (buf.some((x) => x !== 0)) out.push(`the hole at ${SPARSE_REGION} holds data`);
    }
    return out;
  } finally {
    await fh.close();
  }
}
