// Replacing a small state file so that a crash at any moment leaves either the old file or the new
// one, never a truncated mix: the tgt target files, the record of CHAP accounts, LIO's state file.
// Write a temp file beside it, optionally fsync it, then rename it over the old one (rename is
// atomic within a directory).
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { log, logDropped } from '../log.js';

export interface AtomicWriteOptions {
  /** mode of the new file; default 0600 (these files hold CHAP secrets) */
  mode?: number;
  /** mode of the directory when it has to be made; default 0750 */
  dirMode?: number;
  /**
   * fsync the data before the rename; default true. Without it a crash may leave the new name
   * pointing at an empty file on some filesystems: only for files whose loss is repaired by itself.
   */
  sync?: boolean;
}

/**
 * Write `text` to `path` atomically. The temp file is a dot file (`.<name>.tmp-<random>`), so a
 * glob such as tgt's `include <volumes_dir>/*` never picks it up, and is removed on failure.
 */
export async function writeFileAtomically(path: string, text: string, opts: AtomicWriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o600;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: opts.dirMode ?? 0o750 });
  const tmp = join(dir, `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(text, 'utf8');
      if (opts.sync ?? true) await fh.sync();
    } finally {
      await fh.close();
    }
    // open()'s mode is filtered by the umask; the file must end up exactly this mode
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(logDropped(log(), `removing the temp file ${tmp} after a failed write`, 'a stray dot file is left, which nothing reads'));
    throw e;
  }
}
