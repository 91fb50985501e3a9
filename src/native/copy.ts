// Whole-volume data movement: copy (clone, migrate, revert, image to volume), clear
// (volume_clear=zero) and checksum. What cinder does with `dd`, done by the native copy engine
// (native/copy_engine.cc; design in native/COPY.md): several requests in flight with O_DIRECT,
// zero blocks and source holes not written, FICLONE/copy_file_range between files on one
// filesystem, a per-device bandwidth limit shared fairly by concurrent copies, an I/O priority,
// an XXH64 of what was written. Each call runs on threads of its own, never libuv's pool.
import { addon, type CopyProgress, type IoBackend, type RawCommon, type RawCopyResult, type RawHandle } from './addon.js';
import { NativeError, errnoName, toNativeError, type Hints } from './errors.js';
import { log } from '../log.js';

/** Like `ionice -c CLASS -n LEVEL`: realtime and best-effort take a level 0 (highest) .. 7. */
export interface IoPriority {
  class: 'idle' | 'best-effort' | 'realtime';
  level?: number;
}

export type { CopyProgress, IoBackend } from './addon.js';

export interface CopyOptions {
  /** Bytes to copy from the start of the source; default the whole source. */
  length?: number;
  /**
   * Leave the destination sparse, as cinder's `dd conv=sparse` for thin volumes: zero blocks of
   * the source are not written. Unlike dd this stays correct when the destination does not read
   * as zeros: there such runs are deallocated instead (a file: FALLOC_FL_PUNCH_HOLE; a device:
   * BLKZEROOUT, which thin devices do without allocating).
   */
  sparse?: boolean;
  /**
   * The caller knows the destination already reads as zeros (a new thin LV, after a discard or
   * zero-out): zero blocks and holes are then not written at all. Default: true for a
   * destination file with no data yet (created by this copy, or truncated), else false.
   */
  destinationIsZeroed?: boolean;
  /**
   * volume_copy_bps_limit: bytes/s read from the source device and written to the destination
   * device, shared fairly among all concurrent copies on the same device in this process.
   */
  bpsLimit?: number;
  /** I/O priority of the copy's threads and requests (cinder's volume_copy/clear ionice). */
  ioPriority?: IoPriority;
  /** Compute an XXH64 of what the destination holds afterwards (CopyResult.checksum). */
  verify?: boolean;
  /** Bytes per request: a multiple of 4096 up to 64 MiB. Default 4 MiB (chosen by measurement: bench/README.md). */
  blockSize?: number;
  /** Requests in flight: 1..128. Default 8 (bench/README.md). */
  depth?: number;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  /** How often onProgress is called; default 1000 ms. */
  progressIntervalMs?: number;
  /** fdatasync the destination at the end (default true). */
  sync?: boolean;
  /** Allow FICLONE / copy_file_range between regular files on one filesystem (default true). */
  offload?: boolean;
  /** Try O_DIRECT (default true); it is dropped by itself where a file or device refuses it. */
  directIo?: boolean;
  /** How requests are kept in flight: io_uring if the kernel allows it (default), or threads. */
  ioBackend?: IoBackend;
  /** Mode of a destination file this copy creates (default 0o644, before umask). */
  mode?: number;
  /**
   * Where the source holds data, as [offset, length] byte ranges sorted by offset and not
   * overlapping; the source must read as zeros everywhere else. Those bytes are not read: they
   * are holes, skipped when the destination reads as zeros and otherwise deallocated or zeroed
   * as `sparse` says. For block devices, which have no SEEK_DATA: a thin LV's mapped blocks
   * (drivers/lvm/thin-map.ts). A wrong map loses data, so pass only what the storage reports.
   */
  sourceExtents?: ReadonlyArray<readonly [number, number]>;
}

/** Faults the test suite injects; nothing else may set them. */
export interface TestOnlyCopyOptions {
  /** Pretend the destination refused O_DIRECT on its first write (EINVAL). */
  testOnlyFault?: 'einval-first-direct-write';
}

export interface CopyResult {
  /** The logical length copied (the whole range, however much of it was written). */
  bytesCopied: number;
  bytesWritten: number;
  bytesSkippedZero: number;
  bytesSkippedHoles: number;
  method: 'ficlone' | 'copy_file_range' | 'engine';
  /** Both ends were read/written with O_DIRECT. */
  directIo: boolean;
  directIoSource: boolean;
  directIoDestination: boolean;
  /** `xxh64:<16 hex digits>` of the destination's bytes [0, length) (with verify). */
  checksum?: string;
  elapsedMs: number;
  ioBackend: 'io_uring' | 'threads' | 'none';
  blockSize: number;
  depth: number;
}

export interface ClearOptions {
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  progressIntervalMs?: number;
  bpsLimit?: number;
  ioPriority?: IoPriority;
  /** fdatasync at the end (default true, as cinder's clear_volume). */
  sync?: boolean;
  /** Use BLKDISCARD on a device that guarantees zeroes after a discard (default true). */
  allowDiscard?: boolean;
  /** A file keeps its blocks (FALLOC_FL_ZERO_RANGE first) instead of having them punched out. */
  keepAllocated?: boolean;
  blockSize?: number;
  depth?: number;
  directIo?: boolean;
  ioBackend?: IoBackend;
}

export interface ClearResult {
  bytesCleared: number;
  /**
   * zeroout: BLKZEROOUT (the device's write-zeroes offload); discard: BLKDISCARD on a device
   * whose discards read back as zeros; punch_hole / zero_range: fallocate on a file; write: zeros
   * written by the engine (nothing cheaper was available); none: nothing to clear.
   */
  method: 'zeroout' | 'discard' | 'punch_hole' | 'zero_range' | 'write' | 'none';
  bytesWritten: number;
  directIo: boolean;
  elapsedMs: number;
}

export interface ChecksumOptions {
  length?: number;
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  progressIntervalMs?: number;
  bpsLimit?: number;
  ioPriority?: IoPriority;
  directIo?: boolean;
  ioBackend?: IoBackend;
}

/** The checksum algorithm of CopyResult.checksum and checksum(): XXH64, seed 0 (= `xxhsum -H1`). */
export const CHECKSUM_ALGORITHM = 'xxh64';

/** Rejection of a copy/clear stopped through its AbortSignal. The destination is incomplete. */
export class CopyAbortedError extends Error {
  readonly code = 'ABORT_ERR';
  /** How far it got; the destination holds a partial copy. */
  readonly bytesDone: number;
  constructor(message: string, bytesDone: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'AbortError';
    this.bytesDone = bytesDone;
  }
}

/** A failed copy/clear: a NativeError that also says why in a word and how far it got. */
export class CopyError extends NativeError {
  /**
   * destination-too-small, length-exceeds-source, source-too-short, unaligned-length,
   * range-beyond-end, same-file, unsupported-file-type, io-uring-unavailable, ioprio, bad-option;
   * undefined for a plain failed syscall (EIO, ENOSPC, EACCES...).
   */
  readonly reason: string | undefined;
  readonly bytesDone: number;
  constructor(from: NativeError, reason: string | undefined, bytesDone: number) {
    super(from.message, { code: from.code, errno: from.errno, syscall: from.syscall, path: from.path }, from.cause);
    this.name = 'CopyError';
    this.reason = reason;
    this.bytesDone = bytesDone;
  }
}

// ---- option checks --------------------------------------------------------------------------

const IOPRIO_CLASS = { realtime: 1, 'best-effort': 2, idle: 3 } as const;

function checkInt(what: string, v: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (v === undefined) return;
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`${what} must be an integer from ${min} to ${max}, got ${v}`);
}

function commonOptions(o: {
  bpsLimit?: number;
  ioPriority?: IoPriority;
  blockSize?: number;
  depth?: number;
  sync?: boolean;
  directIo?: boolean;
  ioBackend?: IoBackend;
}): RawCommon {
  checkInt('bpsLimit', o.bpsLimit, 0);
  checkInt('depth', o.depth, 1, 128);
  if (o.blockSize !== undefined) {
    checkInt('blockSize', o.blockSize, 4096, 64 * 1024 * 1024);
    if (o.blockSize % 4096 !== 0) throw new RangeError(`blockSize must be a multiple of 4096, got ${o.blockSize}`);
  }
  const raw: RawCommon = {};
  if (o.bpsLimit) raw.bpsLimit = o.bpsLimit;
  if (o.ioPriority) {
    const cls = IOPRIO_CLASS[o.ioPriority.class];
    if (cls === undefined) throw new TypeError(`ioPriority.class must be 'idle', 'best-effort' or 'realtime', got ${String(o.ioPriority.class)}`);
    checkInt('ioPriority.level', o.ioPriority.level, 0, 7);
    raw.ioprioClass = cls;
    raw.ioprioLevel = o.ioPriority.level ?? 4;
  }
  if (o.blockSize !== undefined) raw.blockSize = o.blockSize;
  if (o.depth !== undefined) raw.depth = o.depth;
  if (o.sync !== undefined) raw.sync = o.sync;
  if (o.directIo !== undefined) raw.direct = o.directIo;
  if (o.ioBackend !== undefined) raw.ioBackend = o.ioBackend;
  return raw;
}

// ---- running a job --------------------------------------------------------------------------

const REASON_HINTS: Record<string, string> = {
  'destination-too-small': 'Extend the destination volume to at least the source size, or copy fewer bytes (length).',
  'length-exceeds-source': 'Copy at most the size of the source (omit length to copy all of it).',
  'source-too-short': 'The source shrank or ended early (a truncated image or a resized device): check it and retry.',
  'unaligned-length': 'Block devices transfer whole logical sectors: make the length a multiple of the sector size.',
  'range-beyond-end': 'Clear at most the size of the device or file.',
  'same-file': 'Pick a different destination.',
  'unsupported-file-type': 'Pass a regular file or a block device.',
  'io-uring-unavailable': "Use ioBackend 'auto' or 'threads' (io_uring is off here: kernel.io_uring_disabled, or a seccomp profile).",
  ioprio: 'Setting this I/O priority class needs CAP_SYS_ADMIN (realtime) or a permitted level.',
};

const CODE_HINTS: Hints = {
  ENOSPC: 'The destination filesystem or volume is full: free space or use a larger destination.',
  EIO: 'The device reported an I/O error: check `dmesg` and the storage path; the destination holds a partial copy.',
  EISDIR: 'Pass a file or block device, not a directory.',
  ENODATA: REASON_HINTS['source-too-short'],
};

function run<T>(
  start: () => RawHandle<RawCopyResult>,
  attempted: string,
  opts: { signal?: AbortSignal | undefined; onProgress?: ((p: CopyProgress) => void) | undefined; progressIntervalMs?: number | undefined },
  finish: (r: RawCopyResult) => T,
): Promise<T> {
  const { signal, onProgress } = opts;
  if (signal?.aborted) {
    return Promise.reject(new CopyAbortedError(`${capitalize(attempted)} was aborted before it started.`, 0, signal.reason));
  }
  checkInt('progressIntervalMs', opts.progressIntervalMs, 10);
  let handle: RawHandle<RawCopyResult>;
  try {
    handle = start();
  } catch (err) {
    return Promise.reject(err); // argument errors from the addon (TypeError/RangeError)
  }
  const report = () => {
    if (!onProgress) return;
    try {
      onProgress(handle.progress());
    } catch (err) {
      log().warn({ err }, 'copy progress callback threw; ignored');
    }
  };
  const onAbort = () => handle.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = onProgress ? setInterval(report, opts.progressIntervalMs ?? 1000) : undefined;
  timer?.unref();
  const done = () => {
    if (timer) clearInterval(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  return handle.promise.then(
    (raw) => {
      done();
      report();
      return finish(raw);
    },
    (raw: unknown) => {
      done();
      throw translate(raw, attempted, signal);
    },
  );
}

function translate(raw: unknown, attempted: string, signal: AbortSignal | undefined): unknown {
  const r = raw as { errno?: number; reason?: string; bytesDone?: number } | undefined;
  const bytesDone = typeof r?.bytesDone === 'number' ? r.bytesDone : 0;
  if (r?.reason === 'cancelled') {
    return new CopyAbortedError(`${capitalize(attempted)} was aborted after ${bytesDone} bytes; the destination is incomplete.`, bytesDone, signal?.reason);
  }
  const reason = typeof r?.reason === 'string' && r.reason !== '' ? r.reason : undefined;
  // A check that failed (destination-too-small...) says what to do about that, not what its
  // errno usually means (ENOSPC would suggest freeing space).
  const reasonHint = reason ? REASON_HINTS[reason] : undefined;
  const hints: Hints = reasonHint && typeof r?.errno === 'number' ? { ...CODE_HINTS, [errnoName(r.errno)]: reasonHint } : CODE_HINTS;
  const err = toNativeError(raw, attempted, hints);
  if (!(err instanceof NativeError)) return err;
  return new CopyError(err, reason, bytesDone);
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function prefixed(hex: string | undefined): string | undefined {
  return hex === undefined ? undefined : `${CHECKSUM_ALGORITHM}:${hex}`;
}

// ---- the API --------------------------------------------------------------------------------

/** [[o, l], ...] → [o, l, ...] for the addon, after checking what the engine would refuse. */
function flattenExtents(ext: ReadonlyArray<readonly [number, number]>): number[] {
  const flat = new Array<number>(ext.length * 2);
  let prevEnd = 0;
  ext.forEach(([off, len], i) => {
    checkInt(`sourceExtents[${i}] offset`, off, 0);
    checkInt(`sourceExtents[${i}] length`, len, 1);
    if (off < prevEnd) throw new RangeError(`sourceExtents must be sorted by offset and not overlap (entry ${i} starts at ${off}, before ${prevEnd})`);
    prevEnd = off + len;
    flat[2 * i] = off;
    flat[2 * i + 1] = len;
  });
  return flat;
}

/**
 * Copies `length` bytes (default: all) of `src` to `dst` — block devices or regular files; a
 * missing destination file is created (and removed again if the copy fails). Resolves once
 * every byte is on the destination (fdatasync'ed unless sync is false); rejects with a
 * CopyError (code ENOSPC, EIO, ...; reason for checks that failed before any I/O) or, when
 * `signal` aborts it, a CopyAbortedError (name 'AbortError'). Never resolves for a partial copy.
 * A destination file is never shrunk; one shorter than `length` is extended.
 */
export function copy(src: string, dst: string, opts: CopyOptions & TestOnlyCopyOptions = {}): Promise<CopyResult> {
  checkInt('length', opts.length, 0);
  checkInt('mode', opts.mode, 0, 0o7777);
  const raw = {
    ...commonOptions(opts),
    ...(opts.length !== undefined ? { length: opts.length } : {}),
    sparse: opts.sparse ?? false,
    ...(opts.destinationIsZeroed !== undefined ? { destinationIsZeroed: opts.destinationIsZeroed } : {}),
    verify: opts.verify ?? false,
    offload: opts.offload ?? true,
    ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
    ...(opts.testOnlyFault ? { testFault: opts.testOnlyFault } : {}),
    ...(opts.sourceExtents ? { extents: flattenExtents(opts.sourceExtents) } : {}),
  };
  return run(() => addon().copyStart(src, dst, raw), `copying ${src} to ${dst}`, opts, (r) => ({
    bytesCopied: r.bytesCopied,
    bytesWritten: r.bytesWritten,
    bytesSkippedZero: r.bytesSkippedZero,
    bytesSkippedHoles: r.bytesSkippedHoles,
    method: r.method as CopyResult['method'],
    directIo: r.directIoSource && r.directIoDestination,
    directIoSource: r.directIoSource,
    directIoDestination: r.directIoDestination,
    ...(r.checksum !== undefined ? { checksum: prefixed(r.checksum)! } : {}),
    elapsedMs: r.elapsedMs,
    ioBackend: r.ioBackend as CopyResult['ioBackend'],
    blockSize: r.blockSize,
    depth: r.depth,
  }));
}

/**
 * Makes the first `bytes` of a device or file read as zeros (volume_clear=zero). A device:
 * BLKZEROOUT where it offloads write-zeroes, else BLKDISCARD where discards read back as zeros,
 * else zeros written through the engine. A file: punch a hole (or zero the range with
 * keepAllocated), else write zeros. Done in chunks, so bpsLimit, progress and abort all work.
 */
export function clear(path: string, bytes: number, opts: ClearOptions = {}): Promise<ClearResult> {
  checkInt('bytes', bytes, 0);
  const raw = {
    ...commonOptions(opts),
    ...(opts.allowDiscard !== undefined ? { allowDiscard: opts.allowDiscard } : {}),
    ...(opts.keepAllocated !== undefined ? { keepAllocated: opts.keepAllocated } : {}),
  };
  return run(() => addon().clearStart(path, bytes, raw), `clearing ${bytes} bytes of ${path}`, opts, (r) => ({
    bytesCleared: r.bytesCopied,
    method: r.method as ClearResult['method'],
    bytesWritten: r.bytesWritten,
    directIo: r.method === 'write' && r.directIoDestination,
    elapsedMs: r.elapsedMs,
  }));
}

/** `xxh64:<hex>` of the first `length` bytes (default: all) of a file or device, read with O_DIRECT. */
export function checksum(path: string, opts: ChecksumOptions = {}): Promise<string> {
  checkInt('length', opts.length, 0);
  const raw = { ...commonOptions(opts), ...(opts.length !== undefined ? { length: opts.length } : {}) };
  return run(() => addon().checksumStart(path, raw), `checksumming ${path}`, opts, (r) => prefixed(r.checksum)!);
}
