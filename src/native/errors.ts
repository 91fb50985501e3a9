// Errors from native calls: Node-style (`code`, `errno`, `syscall`, `path`) with a message that
// says what was attempted, on what, and what an operator can do about it.
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';

export class NativeError extends Error {
  /** errno name, e.g. 'ENOTTY', 'EOPNOTSUPP' (what Node's own fs errors call `code`). */
  readonly code: string;
  readonly errno: number;
  /** The failing call, e.g. 'ioctl(BLKDISCARD)', 'open'. */
  readonly syscall: string;
  readonly path: string | undefined;

  constructor(message: string, fields: { code: string; errno: number; syscall: string; path?: string | undefined }, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'NativeError';
    this.code = fields.code;
    this.errno = fields.errno;
    this.syscall = fields.syscall;
    this.path = fields.path;
  }
}

/** What to do about an errno, whatever the call; callers can override per operation. */
const GENERIC_HINTS: Record<string, string> = {
  ENOENT: 'Check the path: the file or device does not exist (a device may have gone away).',
  EACCES: 'Permission denied: cinderblock needs root (CAP_SYS_ADMIN) for this; check the service user and the permissions of the path.',
  EPERM: 'Not permitted: cinderblock needs root (CAP_SYS_ADMIN) for this; check the service user and any security policy.',
  ENOTTY: 'The path is not a block device, so it does not understand this ioctl: pass the device node (e.g. /dev/sdb), not a file or directory.',
  EBUSY: 'The device is busy (mounted, or its partitions are in use): release it and retry.',
  ENXIO: 'The device node exists but no device is behind it (detached loop device, logged-out iSCSI session): re-attach it.',
  ENODEV: 'The device node exists but no device is behind it (detached loop device, logged-out iSCSI session): re-attach it.',
  EIO: 'The device reported an I/O error: check `dmesg` and the storage path.',
  EROFS: 'The device or filesystem is read-only.',
  ENOSPC: 'No space left on the device or filesystem.',
  EISDIR: 'The path is a directory; pass a file or device.',
};

export type Hints = Partial<Record<string, string>>;

/**
 * Turns a raw error from the addon into a NativeError. `attempted` describes the operation
 * ("discarding bytes 0-1048575 of /dev/loop3"); `hints` gives operation-specific advice by code.
 * Anything that is not an errno error (a TypeError from argument checks) is returned unchanged.
 */
export function toNativeError(raw: unknown, attempted: string, hints: Hints = {}): unknown {
  if (!(raw instanceof Error)) return raw;
  const errno = (raw as { errno?: unknown }).errno;
  if (typeof errno !== 'number') return raw;
  const syscall = String((raw as { syscall?: unknown }).syscall ?? 'unknown');
  const path = (raw as { path?: unknown }).path;
  const code = errnoName(errno);
  const hint = hints[code] ?? GENERIC_HINTS[code] ?? '';
  const where = typeof path === 'string' && !attempted.includes(path) ? ` (${syscall} on ${path})` : ` (${syscall})`;
  const message = `${capitalize(attempted)} failed${where}: ${raw.message} [${code}].${hint ? ` ${hint}` : ''}`;
  return new NativeError(message, { code, errno, syscall, path: typeof path === 'string' ? path : undefined }, raw);
}

/** Runs a sync native call, translating its errors. */
export function callSync<T>(fn: () => T, attempted: string, hints?: Hints): T {
  try {
    return fn();
  } catch (err) {
    throw toNativeError(err, attempted, hints);
  }
}

/** Awaits an async native call, translating its errors. */
export async function callAsync<T>(fn: () => Promise<T>, attempted: string, hints?: Hints): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toNativeError(err, attempted, hints);
  }
}

/** Names a FileRef in messages. */
export function describeRef(ref: string | number): string {
  return typeof ref === 'number' ? `fd ${ref}` : ref;
}

/**
 * errno number -> name. Linux gives EOPNOTSUPP and ENOTSUP the same number; libuv calls it
 * ENOTSUP, the kernel's documentation of these ioctls EOPNOTSUPP, which is what we report.
 */
export function errnoName(errno: number): string {
  if (errno === constants.errno.EOPNOTSUPP) return 'EOPNOTSUPP';
  let name: string | undefined;
  try {
    name = getSystemErrorName(-errno);
  } catch {
    name = undefined;
  }
  return name && /^E[A-Z0-9]+$/.test(name) ? name : `E${errno}`; // unknown: "Unknown system error -N"
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
