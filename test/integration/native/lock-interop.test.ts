// External locks across processes: cinderblock vs another cinderblock (node child) and vs
// cinder's own oslo.concurrency lock (Debian's python3), in both directions.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { LockTimeoutError, acquireExternalLock, externalLockFile } from '../../../src/native/index.js';
import { LineChild, SYSTEM_PYTHON, systemPythonHas } from './helpers.js';

const fixtures = path.join(import.meta.dirname, 'fixtures');
const children: LineChild[] = [];
let lockPath: string;

beforeAll(() => {
  lockPath = mkdtempSync(path.join(tmpdir(), 'cinderblock-locks-'));
});
afterEach(() => {
  children.splice(0).forEach((c) => c.kill());
});
afterAll(() => {
  rmSync(lockPath, { recursive: true, force: true });
});

function nodeChild(...args: string[]): LineChild {
  const c = LineChild.spawn(process.execPath, ['--import', 'tsx', path.join(fixtures, 'lock-child.ts'), ...args]);
  children.push(c);
  return c;
}

function python(...args: string[]): LineChild {
  const c = LineChild.spawn(SYSTEM_PYTHON, [path.join(fixtures, 'oslo_lock.py'), ...args]);
  children.push(c);
  return c;
}

describe('between two cinderblock processes', () => {
  it('a lock held by a child process keeps us out until it releases', async () => {
    const child = nodeChild('hold', lockPath, 'volume-child-holds');
    await child.waitFor('LOCKED');
    await expect(acquireExternalLock(lockPath, 'volume-child-holds', { timeoutMs: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
    child.send('release');
    await child.waitFor('RELEASED');
    const release = await acquireExternalLock(lockPath, 'volume-child-holds', { timeoutMs: 5000 });
    await release();
  });

  it('a lock we hold keeps a child process out until we release', async () => {
    const release = await acquireExternalLock(lockPath, 'volume-we-hold');
    const blocked = nodeChild('try', lockPath, 'volume-we-hold', '300');
    expect(await blocked.waitFor('')).toBe('TIMEOUT');
    await release();
    const free = nodeChild('try', lockPath, 'volume-we-hold', '5000');
    expect(await free.waitFor('')).toBe('ACQUIRED');
  });

  it('children we spawn while holding a lock do not inherit its fd (O_CLOEXEC)', async () => {
    const release = await acquireExternalLock(lockPath, 'volume-inherit');
    const file = externalLockFile(lockPath, 'volume-inherit');
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const fds = readdirSync(`/proc/${sleeper.pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${sleeper.pid}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      expect(fds).not.toContain(file);
      await release();
      // With the lock released, another process gets it although the child still runs.
      const other = nodeChild('try', lockPath, 'volume-inherit', '2000');
      expect(await other.waitFor('')).toBe('ACQUIRED');
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});

const haveOslo = systemPythonHas('oslo_concurrency.lockutils');
if (!haveOslo) console.warn(`oslo.concurrency interop tests skipped: ${SYSTEM_PYTHON} cannot import oslo_concurrency (apt-get install python3-oslo.concurrency)`);

describe.skipIf(!haveOslo)("with cinder's oslo.concurrency external lock", () => {
  it('names lock files exactly as oslo does', async () => {
    const names = ['volume-1234', 'a/b/c', 'with space', 'ünïcode', 'trailing/', '-dash', 'x.y'];
    const py = python('path', lockPath, JSON.stringify(names));
    await py.exited;
    expect(py.lines).toEqual(names.map((n) => externalLockFile(lockPath, n)));
    expect(externalLockFile('/var/lock/cinder', 'vol/1', 'cinder')).toBe('/var/lock/cinder/cinder-vol_1');
    expect(externalLockFile('/var/lock/cinder', 'vol/1', '')).toBe('/var/lock/cinder/vol_1');
  });

  it('python holding the lock keeps us out until it releases', async () => {
    const py = python('hold', lockPath, 'volume-py-holds');
    await py.waitFor('LOCKED');
    expect(existsSync(path.join(lockPath, 'cinder-volume-py-holds'))).toBe(true);
    await expect(acquireExternalLock(lockPath, 'volume-py-holds', { timeoutMs: 400 })).rejects.toBeInstanceOf(LockTimeoutError);
    py.send('release');
    await py.waitFor('RELEASED');
    const release = await acquireExternalLock(lockPath, 'volume-py-holds', { timeoutMs: 5000 });
    await release();
  });

  it('us holding the lock keeps python out: non-blocking attempt fails, blocking one waits for our release', async () => {
    const release = await acquireExternalLock(lockPath, 'volume-we-hold-py');
    const tryer = python('try', lockPath, 'volume-we-hold-py');
    expect(await tryer.waitFor('')).toBe('BUSY');

    const waiter = python('wait', lockPath, 'volume-we-hold-py');
    await waiter.waitFor('WAITING');
    await new Promise((r) => setTimeout(r, 500)); // fasteners polls every <= 100 ms
    expect(waiter.lines).not.toContain('ACQUIRED');
    await release();
    await waiter.waitFor('ACQUIRED', 5000);
    expect(await waiter.exited).toBe(0);
  });

  it('a python waiter and our waiter both get the lock in turn, never together', async () => {
    const py = python('hold', lockPath, 'volume-turns');
    await py.waitFor('LOCKED');
    const ours = acquireExternalLock(lockPath, 'volume-turns', { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 200));
    py.send('release');
    await py.waitFor('RELEASED');
    const release = await ours;
    const tryer = python('try', lockPath, 'volume-turns');
    expect(await tryer.waitFor('')).toBe('BUSY');
    await release();
  });
});
