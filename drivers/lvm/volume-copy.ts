// The data-copy seam of the LVM driver. cinder copies snapshot → new volume with dd
// (volume_utils.copy_volume); cinderblock's copy engine (another module) plugs in here through
// LvmDriverOptions.copy, so the driver never imports it. simpleCopy is the small default: plain
// positioned reads and writes, fine for tests and small volumes.
import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';

import { thinDeviceMap, type ThinDeviceMap } from './thin-map.js';

export interface VolumeCopyOptions {
  /** Bytes to copy from offset 0 (cinder: size_in_m * 1 MiB). */
  sizeBytes: number;
  /** Leave all-zero blocks unwritten (cinder's sparse_copy_volume: thin destinations only). */
  sparse: boolean;
  /** volume_dd_blocksize as configured ("1M", "4096", ...); the copy's unit of I/O. */
  blocksize: string;
  /** The data must be on stable storage when the promise resolves. */
  sync: boolean;
  /**
   * Where the source holds data ([offset, length] in bytes, sorted); it reads as zeros elsewhere,
   * which need not be read. Set by withThinSourceMap for thin LV sources; a copy function may
   * ignore it.
   */
  sourceExtents?: ReadonlyArray<readonly [number, number]>;
}

export type VolumeCopyFn = (src: string, dst: string, opts: VolumeCopyOptions) => Promise<void>;

export interface ThinSourceMapOptions {
  /** The map of a device, null when it is not thin (default: thin-map.ts's thinDeviceMap). */
  lookup?: (device: string) => Promise<ThinDeviceMap | null>;
  /** Told when a lookup failed and the copy reads the whole source instead. */
  onLookupError?: (device: string, err: unknown) => void;
  /** Told what the map saved (for a debug log). */
  onMap?: (device: string, map: ThinDeviceMap) => void;
}

/**
 * Wraps a copy function so that a thin LV source comes with its mapped ranges
 * (opts.sourceExtents): a block device has no SEEK_DATA, so without them every unprovisioned
 * block is read just to find it is zeros. Not a thin source, or no map to be had (the lookup
 * failed) → the copy runs as before, reading everything: the map is an optimisation, never a
 * reason for a copy to fail.
 */
export function withThinSourceMap(copy: VolumeCopyFn, opts: ThinSourceMapOptions = {}): VolumeCopyFn {
  const lookup = opts.lookup ?? ((d: string) => thinDeviceMap(d));
  return async (src, dst, o) => {
    let map: ThinDeviceMap | null = null;
    try {
      map = await lookup(src);
    } catch (err) {
      opts.onLookupError?.(src, err);
    }
    if (!map) return copy(src, dst, o);
    opts.onMap?.(src, map);
    return copy(src, dst, { ...o, sourceExtents: map.extents });
  };
}

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
