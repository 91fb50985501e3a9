// Loads cinderblock's native addon (build/Release/cinderblock_native.node, built from
// binding.gyp by `npm run build:native`) and describes what it exports. Only the modules in
// src/native/ use it directly; everyone else imports their typed functions.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPackageRootFrom } from '../package-root.js';

/**
 * A file or device: a path (opened with O_CLOEXEC and closed by the call), or an fd the caller
 * owns and must keep open until the returned promise settles (the call runs on another thread).
 */
export type FileRef = string | number;

/**
 * The raw exports of cinderblock_native. Promises reject, and sync calls throw, plain Errors
 * carrying `errno`, `syscall` and (usually) `path`; src/native/errors.ts turns them into
 * {@link import('./errors.js').NativeError}s with a `code` and an operator-facing message.
 */
export interface NativeAddon {
  blkGetSize64(dev: FileRef): Promise<number>;
  blkSszGet(dev: FileRef): Promise<number>;
  blkPbszGet(dev: FileRef): Promise<number>;
  blkFlsBuf(dev: FileRef): Promise<void>;
  blkRrPart(dev: FileRef): Promise<void>;
  /** device-mapper table of a dm name (DM_TABLE_STATUS); see dm.ts. */
  dmTable(name: string): Promise<Array<{ start: number; length: number; type: string; params: string }>>;
  /** device-mapper target message (DM_TARGET_MSG); see dm.ts. */
  dmMessage(name: string, message: string, sector: number): Promise<void>;
  /** O_DIRECT reads of `length` bytes at each offset; see direct-read.ts. */
  readDirect(dev: FileRef, offsets: number[], length: number): Promise<Buffer[]>;
  blkDiscard(dev: FileRef, offset: number, length: number): Promise<void>;
  blkZeroOut(dev: FileRef, offset: number, length: number): Promise<void>;
  ficlone(src: FileRef, dst: FileRef, mode: number): Promise<void>;
  reflinkProbe(dir: string): Promise<true>;
  tryLockFile(fd: number): boolean;
  unlockFile(fd: number): void;
  sdNotify(address: string, state: string): void;
  /** The copy engine: each call starts a job on its own thread and returns its handle; see copy.ts. */
  copyStart(
    src: string,
    dst: string,
    opts: RawCommon & {
      length?: number;
      sparse?: boolean;
      destinationIsZeroed?: boolean;
      verify?: boolean;
      offload?: boolean;
      mode?: number;
      extents?: number[];
    },
  ): RawHandle<RawCopyResult>;
  clearStart(path: string, bytes: number, opts: RawCommon & { allowDiscard?: boolean; keepAllocated?: boolean }): RawHandle<RawCopyResult>;
  checksumStart(path: string, opts: RawCommon & { length?: number }): RawHandle<RawCopyResult>;
}

// ---- the copy engine's handles (src/native/copy.ts wraps them) ----

export interface CopyProgress {
  /** Bytes of the range dealt with so far (written, or found to need no write). */
  bytesDone: number;
  bytesTotal: number;
  /** Bytes actually written to the destination so far. */
  bytesWritten: number;
  /** Zero blocks and source holes not written (skipped, or deallocated instead). */
  bytesSkipped: number;
  elapsedMs: number;
}

export type IoBackend = 'auto' | 'io_uring' | 'threads';

export interface RawHandle<T> {
  promise: Promise<T>;
  cancel(): void;
  progress(): CopyProgress;
}

export interface RawCommon {
  bpsLimit?: number;
  ioprioClass?: number;
  ioprioLevel?: number;
  blockSize?: number;
  depth?: number;
  sync?: boolean;
  direct?: boolean;
  ioBackend?: IoBackend;
  testFault?: string;
}

export interface RawCopyResult {
  bytesCopied: number;
  bytesWritten: number;
  bytesSkippedZero: number;
  bytesSkippedHoles: number;
  method: string;
  directIoSource: boolean;
  directIoDestination: boolean;
  checksum?: string;
  ioBackend: string;
  blockSize: number;
  depth: number;
  elapsedMs: number;
}

export const ADDON_RELATIVE_PATH = path.join('build', 'Release', 'cinderblock_native.node');

/** Thrown when the addon is missing or cannot be loaded; the message says how to fix it. */
export class NativeAddonError extends Error {
  readonly code = 'ERR_CINDERBLOCK_NATIVE_ADDON';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'NativeAddonError';
  }
}

/**
 * The repository (or install) root: the nearest ancestor of `fromDir` holding cinderblock's
 * package.json (src/package-root.ts), else ../.. of it as in the source tree.
 */
export function findPackageRoot(fromDir: string = path.dirname(fileURLToPath(import.meta.url))): string {
  return findPackageRootFrom(fromDir)?.dir ?? path.resolve(fromDir, '..', '..');
}

/**
 * Where the addon is looked for: $CINDERBLOCK_NATIVE_ADDON if set (packagers who put the .node
 * file elsewhere), else <root>/build/Release/cinderblock_native.node.
 */
export function addonPath(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.CINDERBLOCK_NATIVE_ADDON;
  if (override) return path.resolve(override);
  return path.join(findPackageRoot(), ADDON_RELATIVE_PATH);
}

/** Loads the addon from `file`; throws NativeAddonError with the fix when it is not there. */
export function loadAddonFrom(file: string): NativeAddon {
  if (process.platform !== 'linux') {
    throw new NativeAddonError(`cinderblock's native addon works on Linux only (this is ${process.platform}).`);
  }
  if (!existsSync(file)) {
    throw new NativeAddonError(
      `cinderblock's native addon is not built: ${file} does not exist. ` +
        `Run \`npm run build:native\` in ${findPackageRoot()} (needs g++, make and python3; ` +
        `it builds against the local Node headers, no download).`,
    );
  }
  try {
    return createRequire(import.meta.url)(file) as NativeAddon;
  } catch (err) {
    throw new NativeAddonError(
      `cinderblock's native addon at ${file} failed to load (${(err as Error).message}). ` +
        `It was probably built for another Node version or machine: run \`npm run build:native\` again.`,
      err,
    );
  }
}

let cached: NativeAddon | undefined;

/** The addon, loaded on first use so that importing the facade never fails by itself. */
export function addon(): NativeAddon {
  cached ??= loadAddonFrom(addonPath());
  return cached;
}
