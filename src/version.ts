// The package's version, from cinderblock's package.json wherever the code runs from, for
// `--version` and the admin socket's status.
import { findPackageRootFrom } from './package-root.js';

export function packageVersion(): string {
  return findPackageRootFrom()?.version ?? 'unknown';
}
