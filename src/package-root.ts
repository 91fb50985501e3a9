// Where cinderblock's own files are, wherever the code runs from: src/ under tsx and vitest,
// dist/src/ after tsc, /usr/lib/cinderblock/dist/src/ from the Debian package, the image's
// /usr/lib/cinderblock. The root is the nearest ancestor holding cinderblock's package.json: the
// one file every layout ships (binding.gyp, say, stays in the source tree).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageRoot {
  dir: string;
  version: string;
}

const cache = new Map<string, PackageRoot | null>();

/** The root above `fromDir` (default: this module's directory), or null when there is none. */
export function findPackageRootFrom(fromDir: string = dirname(fileURLToPath(import.meta.url))): PackageRoot | null {
  const known = cache.get(fromDir);
  if (known !== undefined) return known;
  let found: PackageRoot | null = null;
  for (let dir = fromDir; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'cinderblock') {
        found = { dir, version: typeof pkg.version === 'string' ? pkg.version : 'unknown' };
        break;
      }
    } catch {
      // no package.json here, or not JSON: one level up
    }
    if (dirname(dir) === dir) break;
  }
  cache.set(fromDir, found);
  return found;
}
