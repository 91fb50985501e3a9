// Reflink (FICLONE) copies: the destination shares the source's extents until either is
// written, so a clone of a file-backed volume is instant and takes no space. Works on btrfs,
// XFS made with reflink=1, bcachefs and NFS 4.2 on such a server; not on ext4 or tmpfs.
import { addon, type FileRef } from './addon.js';
import { NativeError, callAsync, describeRef } from './errors.js';

/** errno codes meaning "this filesystem (or this pair of files) cannot reflink" rather than a fault. */
export const REFLINK_UNSUPPORTED_CODES: ReadonlySet<string> = new Set(['EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'EINVAL', 'ENOTTY', 'ENOSYS']);

/** True when `err` says the clone is impossible here, so the caller should copy the data instead. */
export function isReflinkUnsupported(err: unknown): boolean {
  return err instanceof NativeError && REFLINK_UNSUPPORTED_CODES.has(err.code);
}

export interface CloneFileOptions {
  /** Mode of a destination created by path (before umask). Default 0o644. */
  mode?: number;
}

/**
 * Clones `src` into `dst` with FICLONE. A `dst` path must not exist yet: it is created with
 * `mode` and removed again if the clone fails. A `dst` fd (open for writing) gets src's content.
 * Rejects with a NativeError; test it with isReflinkUnsupported to fall back to copying.
 */
export function cloneFile(src: FileRef, dst: FileRef, opts: CloneFileOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o644;
  return callAsync(() => addon().ficlone(src, dst, mode), `cloning ${describeRef(src)} to ${describeRef(dst)} (FICLONE)`, {
    EOPNOTSUPP: 'This filesystem cannot share extents (reflink): copy the data instead.',
    EXDEV: 'Source and destination are on different filesystems; reflink works only within one: copy the data instead.',
    EINVAL: 'The filesystem refused the clone (no reflink support, or one side is not a regular file): copy the data instead.',
    EEXIST: 'The destination already exists; cloneFile never overwrites a file it did not create: remove it or pick another path.',
    EBADF: 'A destination passed as an fd must be open for writing, and a source fd for reading.',
  });
}

/**
 * Whether files in `dir` can be reflinked: clones a 4 KiB temp file to another one in `dir`
 * (both removed). Answers false for EOPNOTSUPP/EXDEV/EINVAL/ENOTTY/ENOSYS; rejects for anything
 * else (dir missing, not writable), since that is a fault to report rather than a capability.
 */
export async function supportsReflink(dir: string): Promise<boolean> {
  try {
    return await callAsync(() => addon().reflinkProbe(dir), `probing ${dir} for reflink support`, {
      EACCES: 'The probe creates two temp files in the directory: cinderblock needs write access to it.',
    });
  } catch (err) {
    if (err instanceof NativeError && err.syscall === 'ioctl(FICLONE)' && REFLINK_UNSUPPORTED_CODES.has(err.code)) return false;
    throw err;
  }
}
