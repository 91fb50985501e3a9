// The record of CHAP accounts the tgt helper created in tgtd: `$volumes_dir/.cinderblock-tgt-accounts.json`.
//
// tgtd's accounts are global and carry no owner; cinder's user names (20 random characters) are
// no mark either, so nothing in tgtd tells our accounts from an operator's or another service's.
// An account is written here BEFORE `tgtadm --op new --mode account` runs, so that a kill -9
// between creating it and binding it to a target (or before the target file and the database
// learn its name) leaves an account the start-up sweep can recognise and remove. It goes from
// here when the account is deleted. User names only, no secrets; 0600 all the same.
//
// A dot file: tgt's `include <volumes_dir>/*` (cinder's cinder_tgt.conf) never picks it up.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { writeFileAtomically } from '../../../src/fs/atomic-write.js';
import { log } from '../../../src/log.js';
import { isIscsiName } from '../../../src/iscsi/index.js';

export const TGT_ACCOUNTS_FILE = '.cinderblock-tgt-accounts.json';

// Per file, for the whole process: two backends may share one volumes_dir (the default).
const fileLocks = new KeyedMutex();
// Per file: how many times remember() was called in this process. An account is remembered before
// it is created, so a sweep that saw an account missing from tgtd, and sees this unchanged since,
// knows the account is still missing without asking tgtd again.
const remembers = new Map<string, number>();

const CHAP_USER_RE = /^[A-Za-z0-9]{1,255}$/;

/** user name → IQN of the target the account was made for */
export type AccountRecord = Map<string, string>;

export function tgtAccountsPath(volumesDir: string): string {
  return join(volumesDir, TGT_ACCOUNTS_FILE);
}

export function parseAccountRecord(text: string): AccountRecord {
  const out: AccountRecord = new Map();
  const raw = JSON.parse(text) as { version?: unknown; accounts?: Record<string, { iqn?: unknown }> };
  if (raw.version !== 1 || !raw.accounts || typeof raw.accounts !== 'object') throw new Error('unknown format');
  for (const [user, v] of Object.entries(raw.accounts)) {
    // an entry that could not have come from us is dropped, never acted on
    if (CHAP_USER_RE.test(user) && v && isIscsiName(v.iqn)) out.set(user, v.iqn);
  }
  return out;
}

export function renderAccountRecord(r: AccountRecord): string {
  const accounts: Record<string, { iqn: string }> = {};
  for (const [user, iqn] of [...r.entries()].sort(([a], [b]) => a.localeCompare(b))) accounts[user] = { iqn };
  return `${JSON.stringify({ version: 1, accounts }, null, 2)}\n`;
}

export class TgtAccountRecord {
  constructor(readonly path: string) {}

  async read(): Promise<AccountRecord> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw e;
    }
    try {
      return parseAccountRecord(text);
    } catch (e) {
      // Unreadable: start afresh rather than refuse every export; only the sweep loses its memory.
      log().warn({ path: this.path, err: e }, 'unreadable record of tgt CHAP accounts; starting a new one');
      return new Map();
    }
  }

  /** Record `user` for `iqn` before the account is created (a no-op when it is already there). */
  async remember(user: string, iqn: string): Promise<void> {
    remembers.set(this.path, (remembers.get(this.path) ?? 0) + 1);
    await this.update(
      (r) => {
        if (r.get(user) === iqn) return false;
        r.set(user, iqn);
        return true;
      },
      { sync: true },
    );
  }

  /**
   * Drop users from the record. Not synced: a forget lost in a crash leaves a name whose account is
   * gone, which the next sweep forgets again (a remember lost in a crash would leave an account
   * nobody recognises, so that one is).
   */
  async forget(users: readonly string[]): Promise<void> {
    if (users.length === 0) return;
    await this.update((r) => users.map((u) => r.delete(u)).some(Boolean), { sync: false });
  }

  /** Calls of remember() on this file in this process so far (see `remembers`). */
  rememberCount(): number {
    return remembers.get(this.path) ?? 0;
  }

  private async update(fn: (r: AccountRecord) => boolean, opts: { sync: boolean }): Promise<void> {
    await fileLocks.run(this.path, async () => {
      const r = await this.read();
      if (fn(r)) await writeFileAtomically(this.path, renderAccountRecord(r), { sync: opts.sync });
    });
  }
}

