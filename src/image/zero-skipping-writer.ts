// Writes a stream of chunks at increasing offsets of a file or block device. Where the
// destination already reads as zeros (a new thin LV, a new sparse file), runs of zeros in the
// data are not written, so it stays thin/sparse; elsewhere (a thick LV, a volume being reimaged)
// every byte is written, zeros included, or the old data would show through.
import type { FileHandle } from 'node:fs/promises';

/** Granularity of the zero test: one filesystem block, so a hole is a whole block. */
const BLOCK = 4096;

/** One block of zeros: a block is compared with it by memcmp, not byte by byte in JS. */
const ZERO_BLOCK = Buffer.alloc(BLOCK);

function isZero(buf: Buffer): boolean {
  // a JS loop of 64-bit reads made a BigInt per 8 bytes: seconds per GiB of image
  return buf.length <= BLOCK && buf.equals(ZERO_BLOCK.subarray(0, buf.length));
}

export class ZeroSkippingWriter {
  private offset = 0;
  /** bytes actually written (the rest were zero runs skipped) */
  written = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly skipZeros: boolean,
  ) {}

  get position(): number {
    return this.offset;
  }

  async write(chunk: Buffer): Promise<void> {
    if (!this.skipZeros) {
      await this.writeAll(chunk, this.offset);
      this.offset += chunk.length;
      this.written += chunk.length;
      return;
    }
    // coalesce consecutive non-zero blocks into one write
    let runStart = -1;
    for (let at = 0; at < chunk.length; at += BLOCK) {
      const block = chunk.subarray(at, Math.min(at + BLOCK, chunk.length));
      if (isZero(block)) {
        if (runStart >= 0) {
          await this.writeAll(chunk.subarray(runStart, at), this.offset + runStart);
          runStart = -1;
        }
      } else if (runStart < 0) {
        runStart = at;
      }
    }
    if (runStart >= 0) await this.writeAll(chunk.subarray(runStart), this.offset + runStart);
    this.offset += chunk.length;
  }

  private async writeAll(buf: Buffer, position: number): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, off, buf.length - off, position + off);
      off += bytesWritten;
    }
    if (this.skipZeros) this.written += buf.length;
  }
}
