// The file in which a configfs target helper (LIO, nvmet) keeps what it exported, so that the
// exports configfs loses at reboot can be made again. One format for both: `{version: 1,
// exports: {<target name>: record}}`, every record checked on reading (the file feeds paths and
// names to configfs), written atomically with mode 0600 (LIO's records hold CHAP secrets).
import { readFile } from 'node:fs/promises';
import { invalidInput } from '../../src/errors.js';
import { writeFileAtomically } from '../../src/fs/atomic-write.js';

export interface ExportStateFile<R> {
  version: 1;
  exports: Record<string, R>;
}

/** The file's exports, each through `check` (which throws on a malformed record); none when absent. */
export async function readExportStateFile<R>(path: string, label: string, check: (name: string, record: unknown) => R): Promise<ExportStateFile<R>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, exports: {} };
    throw e;
  }
  const raw = JSON.parse(text) as { version?: unknown; exports?: Record<string, unknown> };
  if (raw.version !== 1 || !raw.exports || typeof raw.exports !== 'object') throw invalidInput(`${label} state file ${path} has an unknown format`);
  const exports: Record<string, R> = {};
  for (const [name, r] of Object.entries(raw.exports)) exports[name] = check(name, r);
  return { version: 1, exports };
}

/** Atomically (src/fs/atomic-write.ts): a crash leaves the old or the new file, never half. */
export async function writeExportStateFile<R>(path: string, state: ExportStateFile<R>): Promise<void> {
  await writeFileAtomically(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}
