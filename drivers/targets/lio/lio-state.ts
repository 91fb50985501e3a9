// The LIO helper's own record: `$volumes_dir/cinderblock-lio.json` (mode 0600: it holds CHAP
// secrets), one entry per export it made. Configfs is lost at reboot; at start the helper
// rebuilds its own targets from this file (reconcile), and never rewrites rtslib's
// saveconfig.json (/etc/target/, /etc/rtslib-fb-target/ on Debian), which may describe other
// owners' objects.
import { join } from 'node:path';
import { invalidInput } from '../../../src/errors.js';
import { assertChapCredential, assertInitiatorName, assertTargetIqn, type ChapCredentials } from '../../../src/iscsi/index.js';
import { readExportStateFile, writeExportStateFile } from '../export-state-file.js';
import { assertBackingPath } from '../validate.js';

export const LIO_STATE_FILE = 'cinderblock-lio.json';

export interface LioExportRecord {
  volumeId: string;
  iqn: string;
  backingPath: string;
  chap: ChapCredentials;
  initiators: string[];
}

export interface LioState {
  version: 1;
  exports: Record<string, LioExportRecord>;
}

export function lioStatePath(volumesDir: string): string {
  return join(volumesDir, LIO_STATE_FILE);
}

function checkRecord(iqn: string, r: unknown): LioExportRecord {
  const x = r as Partial<LioExportRecord> | null;
  if (!x || typeof x !== 'object' || typeof x.volumeId !== 'string' || !x.chap || !Array.isArray(x.initiators)) {
    throw invalidInput(`LIO state: malformed record for ${iqn}`);
  }
  assertTargetIqn(iqn);
  assertBackingPath(x.backingPath);
  assertChapCredential(x.chap.username, 'username');
  assertChapCredential(x.chap.password, 'password');
  for (const i of x.initiators) assertInitiatorName(i);
  return { volumeId: x.volumeId, iqn, backingPath: x.backingPath, chap: { username: x.chap.username, password: x.chap.password }, initiators: [...x.initiators] };
}

export function readLioState(path: string): Promise<LioState> {
  return readExportStateFile(path, 'LIO', checkRecord);
}

export function writeLioState(path: string, state: LioState): Promise<void> {
  return writeExportStateFile(path, state);
}
