// The nvmet helper's own record: `$volumes_dir/cinderblock-nvmet.json` (0600, atomic rename), one
// entry per subsystem it made: the volume, its backing device, the nsid it was given and the host
// NQNs of live attachments (with the compute host each came from). configfs is empty after a
// reboot and cinder's nvmet helper restores nothing (its nvmetcli file is a temp file); this record
// is what reconcile and ensureExport rebuild from, with the same nsid, so the connection_info
// nova keeps stays true. Nothing else's configuration (/etc/nvmet/config.json) is ever written.
import { join } from 'node:path';
import { invalidInput } from '../../../src/errors.js';
import { isUuid } from '../../../src/validation/uuid.js';
import { readExportStateFile, writeExportStateFile } from '../export-state-file.js';
import { assertBackingPath, assertNqn } from '../validate.js';
import { MAX_NSID } from './nvmet-options.js';

export const NVMET_STATE_FILE = 'cinderblock-nvmet.json';

export interface NvmetHostEntry {
  /** the connector's nqn: the host admitted to the subsystem */
  nqn: string;
  /** the connector's host (nova's compute host name), null when it sent none */
  host: string | null;
}

export interface NvmetExportRecord {
  volumeId: string;
  nqn: string;
  backingPath: string;
  nsid: number;
  hosts: NvmetHostEntry[];
}

export interface NvmetState {
  version: 1;
  exports: Record<string, NvmetExportRecord>;
}

export function nvmetStatePath(volumesDir: string): string {
  return join(volumesDir, NVMET_STATE_FILE);
}

function checkRecord(nqn: string, r: unknown): NvmetExportRecord {
  const x = r as Partial<NvmetExportRecord> | null;
  if (!x || typeof x !== 'object' || !isUuid(x.volumeId) || !Array.isArray(x.hosts) || typeof x.nsid !== 'number' || !Number.isSafeInteger(x.nsid) || x.nsid < 1 || x.nsid > MAX_NSID) {
    throw invalidInput(`nvmet state: malformed record for ${JSON.stringify(nqn.slice(0, 120))}`);
  }
  assertNqn(nqn, 'nvmet state subsystem NQN');
  assertBackingPath(x.backingPath);
  const hosts = x.hosts.map((h) => {
    assertNqn(h?.nqn, 'nvmet state host NQN');
    return { nqn: h.nqn, host: typeof h.host === 'string' ? h.host : null };
  });
  return { volumeId: x.volumeId, nqn, backingPath: x.backingPath, nsid: x.nsid, hosts };
}

export function readNvmetState(path: string): Promise<NvmetState> {
  return readExportStateFile(path, 'nvmet', checkRecord);
}

export function writeNvmetState(path: string, state: NvmetState): Promise<void> {
  return writeExportStateFile(path, state);
}
