// Whether two paths name the same file once symlinks are followed (/dev/vg/lv and /dev/dm-3, a
// volume file through a symlinked directory). A path that cannot be resolved names nothing the
// other does.
import { realpath } from 'node:fs/promises';

export async function samePath(a: string, b: string): Promise<boolean> {
  if (a === b) return true;
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}
