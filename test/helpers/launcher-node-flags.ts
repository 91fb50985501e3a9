// The node flags the product ships on bin/cinderblock.js's first line (`#!/usr/bin/env -S node
// <flags>`). Tests and benches that spawn the launcher with process.execPath pass them too, so
// what they measure is what systemd, the package and the container start.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './fixtures.js';

export const launcherPath = join(repoRoot, 'bin', 'cinderblock.js');

export function parseLauncherNodeFlags(firstLine: string): string[] {
  const m = /^#!\/usr\/bin\/env -S node((?: +-[^ ]+)*) *$/.exec(firstLine);
  if (!m) throw new Error(`bin/cinderblock.js: first line ${JSON.stringify(firstLine)} is not "#!/usr/bin/env -S node [--flag ...]"`);
  return m[1]!.trim() ? m[1]!.trim().split(/ +/) : [];
}

export function launcherNodeFlags(): string[] {
  const firstLine = readFileSync(launcherPath, 'utf8').split('\n', 1)[0]!;
  return parseLauncherNodeFlags(firstLine);
}
