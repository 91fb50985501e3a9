// The poison-message guard's bookkeeping: a redelivered message already started once (plus the
// original delivery the redelivered flag implies) is refused; records survive a restart in the
// file, and stay bounded.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PoisonGuard } from '../../../src/rpc/poison.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'cb-poison-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const info = { method: 'create_volume', msgId: null, uniqueId: 'u1' };

describe('PoisonGuard', () => {
  it('first redelivery is handled, a second one of a message that never finished is refused', () => {
    const g = new PoisonGuard({ name: 'host@lvm' });
    expect(g.check('id:u1')).toMatchObject({ refuse: false, attempts: 1 });
    g.started('id:u1', info);
    expect(g.check('id:u1')).toMatchObject({ refuse: true, attempts: 2, record: { starts: 1, method: 'create_volume', unique_id: 'u1' } });
  });

  it('a message that finished is forgotten', () => {
    const g = new PoisonGuard({ name: 'host@lvm' });
    g.started('id:u1', info);
    g.finished('id:u1');
    expect(g.check('id:u1').refuse).toBe(false);
    expect(g.size).toBe(0);
  });

  it('records survive a restart through the file, one file per server name', () => {
    const dir = tempDir();
    const a = new PoisonGuard({ dir, name: 'storage1@lvm' });
    a.started('id:u1', info);
    const b = new PoisonGuard({ dir, name: 'storage1@file' });
    b.started('id:u2', info);
    expect(readdirSync(dir).sort()).toEqual(['rpc-started-storage1@file.json', 'rpc-started-storage1@lvm.json']);
    // "restart": new instances read what the old ones wrote
    expect(new PoisonGuard({ dir, name: 'storage1@lvm' }).check('id:u1').refuse).toBe(true);
    expect(new PoisonGuard({ dir, name: 'storage1@lvm' }).check('id:u2').refuse).toBe(false);
    a.finished('id:u1');
    expect(new PoisonGuard({ dir, name: 'storage1@lvm' }).check('id:u1').refuse).toBe(false);
    expect(JSON.parse(readFileSync(path.join(dir, 'rpc-started-storage1@lvm.json'), 'utf8'))).toEqual({ version: 1, records: {} });
  });

  it('a long or odd server name still gives a safe file name', () => {
    const dir = tempDir();
    new PoisonGuard({ dir, name: 'a/b\\c '.repeat(40) }).started('id:x', info);
    const [f] = readdirSync(dir);
    expect(f).toMatch(/^rpc-started-[0-9a-f]{32}\.json$/);
  });

  it('drops records past maxRecords (oldest first) and past their ttl', () => {
    const g = new PoisonGuard({ name: 'n', maxRecords: 3 });
    for (const k of ['a', 'b', 'c', 'd']) g.started(k, info);
    expect(g.size).toBe(3);
    expect(g.check('a').refuse).toBe(false);
    expect(g.check('d').refuse).toBe(true);
    const old = new PoisonGuard({ name: 'n', ttlMs: -1 });
    old.started('a', info);
    expect(old.check('a').refuse).toBe(false);
  });

  it('an unreadable file is ignored and rewritten; an unusable directory falls back to memory', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'rpc-started-n.json'), '{garbage');
    const g = new PoisonGuard({ dir, name: 'n' });
    expect(g.size).toBe(0);
    g.started('k', info);
    expect(new PoisonGuard({ dir, name: 'n' }).check('k').refuse).toBe(true);
    const file = path.join(dir, 'plain-file');
    writeFileSync(file, '');
    const mem = new PoisonGuard({ dir: path.join(file, 'sub'), name: 'n' });
    expect(mem.file).toBeNull();
    mem.started('k', info);
    expect(mem.check('k').refuse).toBe(true);
  });
});
