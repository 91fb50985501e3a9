// A plain streaming copy that keeps the destination sparse: runs of zeros in the source are not
// written (the destination is a fresh or truncated file, which reads as zeros there). Used when
// the native copy engine is not built into the addon.
import { open } from 'node:fs/promises';

const CHUNK = 1024 * 1024;

function allZero(buf: Buffer, n: number): boolean {
  for (let i = 0; i < n; i++) if (buf[i] !== 0) return false;
  return true;
}

export async function sparseCopy(src: string, dst: string, bytes: number, o: { skipZeros?: boolean } = {}): Promise<void> {
  const skipZeros = o.skipZeros ?? true;
  const input = await open(src, 'r');
  try {
    const output = await open(dst, 'r+');
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      let pos = 0;
      while (pos < bytes) {
        const want = Math.min(CHUNK, bytes - pos);
        const { bytesRead } = await input.read(buf, 0, want, pos);
        if (bytesRead === 0) break;
        if (!skipZeros || !allZero(buf, bytesRead)) {
          let off = 0;
          while (off < bytesRead) {
            const { bytesWritten } = await output.write(buf, off, bytesRead - off, pos + off);
            off += bytesWritten;
          }
        }
        pos += bytesRead;
      }
      await output.datasync();
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}
