// image_conversion_dir: where a non-raw image waits for qemu-img and a volume waits to become a
// qcow2 upload. Names end with the backend's name, as cinder's (`image_fetch_<id>_<rnd><backend>`),
// so each backend's init_host removes only what its own crashed conversions left
// (image_utils.cleanup_temporary_file).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { imageTooBig } from '../errors.js';

/** A new empty file (mode 0600) in the conversion directory; the caller removes it. */
export async function createTemporaryFile(dir: string, prefix: string, backendName: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${prefix}${randomBytes(6).toString('hex')}${backendName}`);
  const fh = await open(path, 'wx', 0o600);
  await fh.close();
  return path;
}

/** image_utils.check_available_space: ImageTooBig unless more than `bytes` are free in `dir`. */
export async function checkAvailableSpace(dir: string, bytes: number, imageId: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const s = await statfs(dir);
  const free = s.bavail * s.bsize;
  if (free <= bytes) {
    throw imageTooBig(imageId, `There is no space on ${dir} to convert image. Requested: ${bytes}, available: ${free}.`);
  }
}

/** cleanup_temporary_file(backend_name): what a conversion of this backend left. Returns the names removed. */
export async function cleanupTemporaryFiles(dir: string, backendName: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const ours = names.filter((n) => n.endsWith(backendName));
  for (const n of ours) await rm(join(dir, n), { force: true });
  return ours;
}
