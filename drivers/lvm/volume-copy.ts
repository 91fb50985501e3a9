// The data-copy seam of the LVM driver. cinder copies snapshot → new volume with dd
// (volume_utils.copy_volume); cinderblock's copy engine (another module) plugs in here through
// LvmDriverOptions.copy, so the driver never imports it. simpleCopy is the small default: plain
// positioned reads and writes, fine for tests and small volumes.
import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';

export interface VolumeCopyOptions {
  /** Bytes to copy from offset 0 (cinder: size_in_m * 1 MiB). */
  sizeBytes: number;
  /** Leave all-zero blocks unwritten (cinder's sparse_copy_volume: thin destinations only). */
  sparse: boolean;
  /** volume_dd_blocksize as configured ("1M", "4096", ...); the copy's unit of I/O. */
  blocksize: string;
  /** The data must be on stable storage when the promise resolves. */
  sync: boolean;
}

export type VolumeCopyFn = (src: string, dst: string, opts: VolumeCopyOptions) => Promise<void>;

const UNITS: Record<string, number> = { '': 1, c: 1, w: 2, b: 512, k: 1024, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/**
 * volume_dd_blocksize in bytes with cinder's fallback: anything it would refuse (a leading 0 or
 * '-', a '.', an unknown suffix) means the default 1M.
 */
export function parseBlocksize(bs: string): number {
  const m = /^([1-9]\d*)([a-zA-Z]?)$/.exec(bs.trim());
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || unit === undefined) return 1024 ** 2;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) && n > 0 && n <= 64 * 1024 ** 2 ? n : 1024 ** 2;
}

function allZero(buf: Buffer, len: number): boolean {
  for (let i = 0; i < len; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Copies the first `sizeBytes` of `src` to `dst` (both existing files or block devices). */
export const simpleCopy: VolumeCopyFn = async (src, dst, opts) => {
  const chunk = parseBlocksize(opts.blocksize);
  const input = await open(src, fsc.O_RDONLY);
  try {
    const output = await open(dst, fsc.O_WRONLY);
    try {
      const buf = Buffer.allocUnsafe(chunk);
      let pos = 0;
      while (pos < opts.sizeBytes) {
        const want = Math.min(chunk, opts.sizeBytes - pos);
        const { bytesRead } = await input.read(buf, 0, want, pos);
        if (bytesRead === 0) throw new Error(`${src} ended at byte ${pos}, before the ${opts.sizeBytes} bytes to copy`);
        if (!(opts.sparse && allZero(buf, bytesRead))) {
          let written = 0;
          while (written < bytesRead) {
            const { bytesWritten } = await output.write(buf, written, bytesRead - written, pos + written);
            written += bytesWritten;
          }
        }
        pos += bytesRead;
      }
      if (opts.sync) await output.datasync();
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
};
