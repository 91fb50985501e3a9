// The package's version, read from package.json wherever the code runs from (src/ under tsx,
// dist/src/ when built), for `--version` and the admin socket's status.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cinderblock' && pkg.version) return (cached = pkg.version);
    } catch {
      // not here: one level up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
