// Fixtures for the copy engine's tests: files with known content, mounts (tmpfs with a size,
// ramfs, a loop-mounted XFS), fd and thread counts of this process.
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

export const MiB = 1024 * 1024;

/** Writes `bytes` of random, non-zero-block data (every 4 KiB block starts with a marker). */
export function writeRandom(file: string, bytes: number): void {
  const buf = Buffer.alloc(bytes);
  randomFillSync(buf);
  for (let off = 0; off < bytes; off += 4096) buf[off] = 0xa5;
  writeFileSync(file, buf);
}

/**
 * A sparse file of `bytes`: `pieces` of data (random, [offset, length]) and holes elsewhere.
 * Also places a run of explicit zero *blocks* (allocated, not a hole) when zeroBlocks is given.
 */
export function writeSparse(file: string, bytes: number, pieces: Array<[number, number]>, zeroBlocks?: [number, number]): void {
  writeFileSync(file, '');
  const fd = openSync(file, 'r+');
  try {
    for (const [off, len] of pieces) {
      const b = Buffer.alloc(len);
      randomFillSync(b);
      writeSync(fd, b, 0, len, off);
    }
    if (zeroBlocks) writeSync(fd, Buffer.alloc(zeroBlocks[1]), 0, zeroBlocks[1], zeroBlocks[0]);
  } finally {
    closeSync(fd);
  }
  execFileSync('truncate', ['-s', String(bytes), file]);
}

export function sha256(file: string, length?: number): string {
  const data = readFileSync(file);
  return createHash('sha256')
    .update(length === undefined ? data : data.subarray(0, length))
    .digest('hex');
}

/** sha256 of the first `length` bytes of a device (or file), read in 1 MiB pieces. */
export function sha256Range(dev: string, length: number): string {
  const h = createHash('sha256');
  const fd = openSync(dev, 'r');
  try {
    const buf = Buffer.alloc(MiB);
    for (let off = 0; off < length; ) {
      const n = Math.min(buf.length, length - off);
      const got = readSyncFully(fd, buf, n, off);
      h.update(buf.subarray(0, got));
      off += got;
      if (got === 0) break;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function readSyncFully(fd: number, buf: Buffer, n: number, off: number): number {
  return readSync(fd, buf, 0, n, off);
}

export function allocatedBytes(file: string): number {
  return statSync(file).blocks * 512;
}

export function isAllZero(dev: string, length: number): boolean {
  const fd = openSync(dev, 'r');
  try {
    const buf = Buffer.alloc(MiB);
    for (let off = 0; off < length; off += MiB) {
      const n = readSyncFully(fd, buf, Math.min(MiB, length - off), off);
      for (let i = 0; i < n; i++) if (buf[i] !== 0) return false;
    }
  } finally {
    closeSync(fd);
  }
  return true;
}

export function mount(type: string, source: string, dir: string, options?: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', type, ...(options ? ['-o', options] : []), source, dir]);
}

export function umount(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

/** Thread ids of this process whose name (comm) is `name`. */
export function threadsNamed(name: string): number[] {
  return readdirSync('/proc/self/task')
    .filter((tid) => {
      try {
        return readFileSync(path.join('/proc/self/task', tid, 'comm'), 'utf8').trim() === name;
      } catch {
        return false;
      }
    })
    .map(Number);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
