// The persistent tgt config file of one export, `$volumes_dir/<volume name>`, in the format cinder's
// tgt helper writes (targets/tgt.py VOLUME_CONF), so that tgt-admin (Debian's tgt.service runs
// `tgt-admin -e -c /etc/tgt/targets.conf` at start, and cinder-volume's /etc/tgt/conf.d/cinder_tgt.conf
// includes /var/lib/cinder/volumes/*) recreates the target after a host restart.
//
// Two differences from cinder, both for access control:
//  - one `initiator-name <iqn>` line per attached initiator;
//  - `initiator-address 0.0.0.0`: tgt-admin binds `initiator-address ALL` to any target whose block
//    has no initiator-address line, and tgtd lets a login through when ANY ACL entry matches (name or
//    address). 0.0.0.0 is never a TCP peer address, so the line admits nobody and keeps ALL away.
//
// The file also serves the agent as its record of which initiators are attached on this host
// (ensureExport restores the ACLs from it). It holds the CHAP secret: written 0600, atomically.
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidInput } from '../../../src/errors.js';
import { writeFileAtomically } from '../../../src/fs/atomic-write.js';
import { assertChapCredential, assertInitiatorName, assertTargetIqn, type ChapCredentials } from '../../../src/iscsi/index.js';
import { assertBackingPath, assertBsoflags, assertDirectory, assertVolumeName } from '../validate.js';

/** The ACL line that keeps tgt-admin from binding `initiator-address ALL`; matches no peer. */
export const NO_ADDRESS_ACL = '0.0.0.0';

export interface TgtTargetConfig {
  iqn: string;
  backingStore: string;
  /** `driver` line: the tgt lld, iscsi or iser */
  driver: 'iscsi' | 'iser';
  /** `incominguser`; null only when reading a file written without one */
  chap: ChapCredentials | null;
  /** iscsi_target_flags as `bsoflags`, '' for none */
  bsoflags: string;
  writeCache: 'on' | 'off';
  /** attached initiators, one `initiator-name` line each */
  initiators: string[];
}

export function tgtConfigPath(volumesDir: string, volumeName: string): string {
  assertDirectory(volumesDir, 'volumes_dir');
  assertVolumeName(volumeName);
  return join(volumesDir, volumeName);
}

export function renderTgtTargetConfig(c: TgtTargetConfig): string {
  assertTargetIqn(c.iqn);
  assertBackingPath(c.backingStore);
  if (c.driver !== 'iscsi' && c.driver !== 'iser') throw invalidInput(`tgt driver must be iscsi or iser, got ${JSON.stringify(c.driver)}`);
  if (c.writeCache !== 'on' && c.writeCache !== 'off') throw invalidInput(`write-cache must be on or off, got ${JSON.stringify(c.writeCache)}`);
  const lines = [
    '# Written by cinderblock. "initiator-address 0.0.0.0" matches no peer: it keeps tgt-admin from',
    '# adding "initiator-address ALL", so only the initiator-name lines may log in.',
    `<target ${c.iqn}>`,
    `    backing-store ${c.backingStore}`,
    `    driver ${c.driver}`,
  ];
  if (c.chap) {
    assertChapCredential(c.chap.username, 'username');
    assertChapCredential(c.chap.password, 'password');
    lines.push(`    incominguser ${c.chap.username} ${c.chap.password}`);
  }
  if (c.bsoflags) {
    assertBsoflags(c.bsoflags);
    lines.push(`    bsoflags ${c.bsoflags}`);
  }
  lines.push(`    write-cache ${c.writeCache}`, '    params thin_provisioning=1', `    initiator-address ${NO_ADDRESS_ACL}`);
  for (const i of c.initiators) {
    assertInitiatorName(i);
    lines.push(`    initiator-name ${i}`);
  }
  lines.push('</target>', '');
  return lines.join('\n');
}

/** Reads a file written by this module or by cinder's tgt helper. */
export function parseTgtTargetConfig(text: string): TgtTargetConfig {
  let iqn: string | null = null;
  const c: Omit<TgtTargetConfig, 'iqn' | 'backingStore'> & { backingStore: string | null } = {
    backingStore: null,
    driver: 'iscsi',
    chap: null,
    bsoflags: '',
    writeCache: 'on',
    initiators: [],
  };
  let closed = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const open = /^<target\s+(\S+)>$/.exec(line);
    if (open) {
      if (iqn !== null) throw invalidInput('tgt config file holds more than one target');
      iqn = open[1] as string;
      continue;
    }
    if (line === '</target>') {
      closed = true;
      continue;
    }
    if (iqn === null || closed) continue;
    const [key, ...rest] = line.split(/\s+/);
    switch (key) {
      case 'backing-store':
        c.backingStore = rest[0] ?? null;
        break;
      case 'driver':
        if (rest[0] === 'iscsi' || rest[0] === 'iser') c.driver = rest[0];
        break;
      case 'incominguser':
        if (rest.length === 2) c.chap = { username: rest[0] as string, password: rest[1] as string };
        break;
      case 'bsoflags':
        c.bsoflags = rest[0] ?? '';
        break;
      case 'write-cache':
        c.writeCache = rest[0] === 'off' ? 'off' : 'on';
        break;
      case 'initiator-name':
        if (rest[0]) c.initiators.push(rest[0]);
        break;
      default:
        break;
    }
  }
  if (iqn === null || !closed || c.backingStore === null) throw invalidInput('tgt config file has no complete <target> block with a backing-store');
  return { ...c, iqn, backingStore: c.backingStore };
}

/** The file's contents, or null when it does not exist. */
export async function readTgtTargetConfig(path: string): Promise<TgtTargetConfig | null> {
  return (await readTgtTargetConfigText(path))?.config ?? null;
}

/** The file's contents and its text (to tell whether a rewrite would change it), or null when it does not exist. */
export async function readTgtTargetConfigText(path: string): Promise<{ config: TgtTargetConfig; text: string } | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return { config: parseTgtTargetConfig(text), text };
}

/**
 * Write atomically (src/fs/atomic-write.ts: a dot temp file tgt's `include <dir>/*` never picks up,
 * fsync, rename), mode 0600: the file holds the CHAP secret. With `unlessText`, nothing is written
 * when the file would come out as that text. True when written.
 */
export async function writeTgtTargetConfig(path: string, c: TgtTargetConfig, opts: { unlessText?: string } = {}): Promise<boolean> {
  const text = renderTgtTargetConfig(c);
  // a restore rewrites every export's file: one that already says the same is left alone (no fsync)
  if (opts.unlessText === text) return false;
  await writeFileAtomically(path, text, { mode: 0o600 });
  return true;
}

/** Remove the file; a missing file is fine. */
export async function removeTgtTargetConfig(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
