// External locks inside one process: our own callers exclude each other (in-process queue) and
// the file lock itself is per open file, so even a second fd of this process is kept out.
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { addon } from '../../../src/native/addon.js';
import { LockTimeoutError, acquireExternalLock, externalLockFile, withExternalLock } from '../../../src/native/index.js';

const root = mkdtempSync(path.join(tmpdir(), 'cinderblock-lock-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

/** Open fds of this process that point at `file`, with their fdinfo flags. */
function fdsOf(file: string): Array<{ fd: string; flags: number }> {
  return readdirSync('/proc/self/fd')
    .filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false;
      }
    })
    .map((fd) => ({ fd, flags: parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8) }));
}

describe('externalLockFile', () => {
  it("builds oslo.concurrency's lock file name", () => {
    expect(externalLockFile('/var/lib/cinder/tmp', 'volume-1')).toBe('/var/lib/cinder/tmp/cinder-volume-1');
    expect(externalLockFile('/l', 'a/b/c')).toBe('/l/cinder-a_b_c');
    expect(externalLockFile('/l', 'x', 'nova')).toBe('/l/nova-x');
    expect(externalLockFile('/l', 'x', 'nova-')).toBe('/l/nova-x');
    expect(externalLockFile('/l', 'x', '')).toBe('/l/x');
  });
});

describe('acquireExternalLock in one process', () => {
  it('creates the lock directory and an empty lock file, left in place after release', async () => {
    const lockPath = path.join(root, 'nested', 'dir');
    const release = await acquireExternalLock(lockPath, 'vol/1');
    const file = path.join(lockPath, 'cinder-vol_1');
    expect(statSync(file).size).toBe(0);
    await release();
    expect(existsSync(file)).toBe(true);
  });

  it('holds the lock on an O_CLOEXEC, write-only append fd, closed on release', async () => {
    const release = await acquireExternalLock(root, 'cloexec');
    const file = externalLockFile(root, 'cloexec');
    const fds = fdsOf(file);
    expect(fds).toHaveLength(1);
    const O_CLOEXEC = 0o2000000;
    const O_APPEND = 0o2000;
    const O_WRONLY = 0o1;
    expect(fds[0]!.flags & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(fds[0]!.flags & (O_APPEND | O_WRONLY)).toBe(O_APPEND | O_WRONLY);
    await release();
    expect(fdsOf(file)).toHaveLength(0);
  });

  it('two callers of the same name run one after the other', async () => {
    const events: string[] = [];
    const worker = (id: string) =>
      withExternalLock(root, 'serial', async () => {
        events.push(`${id}+`);
        await tick(50);
        events.push(`${id}-`);
        return id;
      });
    expect(await Promise.all([worker('a'), worker('b'), worker('c')])).toEqual(['a', 'b', 'c']);
    expect(events).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']); // exclusive, and first come first served
  });

  it('different names do not wait for each other', async () => {
    const one = await acquireExternalLock(root, 'independent-1');
    const two = await acquireExternalLock(root, 'independent-2', { timeoutMs: 0 });
    await two();
    await one();
  });

  it('the same file under another spelling of the path is the same lock', async () => {
    const release = await acquireExternalLock(root, 'spelling');
    await expect(acquireExternalLock(`${root}/./`, 'spelling', { timeoutMs: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
    await release();
  });

  it('the file lock keeps out even another open file of this process (OFD lock)', async () => {
    const release = await acquireExternalLock(root, 'ofd');
    const other = await open(externalLockFile(root, 'ofd'), 'a');
    try {
      expect(addon().tryLockFile(other.fd)).toBe(false);
      await release();
      expect(addon().tryLockFile(other.fd)).toBe(true);
      addon().unlockFile(other.fd);
    } finally {
      await other.close();
    }
  });

  it('times out with LockTimeoutError naming the file, and the lock stays usable', async () => {
    const release = await acquireExternalLock(root, 'timeout');
    const started = Date.now();
    const err = await acquireExternalLock(root, 'timeout', { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect(err).toMatchObject({ code: 'ETIMEDOUT', lockFile: externalLockFile(root, 'timeout') });
    expect((err as Error).message).toMatch(/lslocks/);
    await expect(acquireExternalLock(root, 'timeout', { timeoutMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    await release();
    const again = await acquireExternalLock(root, 'timeout', { timeoutMs: 0 });
    await again();
  });

  it('an AbortSignal stops the wait with its reason and removes the waiter from the queue', async () => {
    const release = await acquireExternalLock(root, 'abort');
    const ac = new AbortController();
    const waiting = acquireExternalLock(root, 'abort', { signal: ac.signal });
    await tick();
    ac.abort(new Error('volume deleted'));
    await expect(waiting).rejects.toThrow('volume deleted');
    await release();
    const next = await acquireExternalLock(root, 'abort', { timeoutMs: 0 });
    await next();
    await expect(acquireExternalLock(root, 'abort', { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('release is idempotent and withExternalLock releases when fn throws', async () => {
    const release = await acquireExternalLock(root, 'idempotent');
    await Promise.all([release(), release()]);
    await release();
    await expect(
      withExternalLock(root, 'throws', () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const again = await acquireExternalLock(root, 'throws', { timeoutMs: 0 });
    await again();
  });

  it('reports an unwritable lock path with the hint to check lock_path', async () => {
    const notADir = path.join(root, 'plain-file');
    writeFileSync(notADir, '');
    const err = await acquireExternalLock(path.join(notADir, 'locks'), 'x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOTDIR' });
    expect((err as Error).message).toMatch(/^Creating the lock directory .*plain-file\/locks failed: ENOTDIR/);
  });
});
