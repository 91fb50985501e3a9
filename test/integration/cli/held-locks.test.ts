// `status` lists the lock files under lock_path that are held right now: the agent's external
// locks (OFD locks, which /proc/locks lists without a pid) and a cinder process's lockf locks.
// Real locks through the addon and the kernel's /proc/locks.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireExternalLock } from '../../../src/native/lock.js';
import { heldLockFiles, heldLockInodes } from '../../../src/cli/inspect-backend.js';

describe('held lock files', () => {
  it('reads held locks of /proc/locks, OFD (pid -1) and POSIX, and not waiters', () => {
    const text = ['1: OFDLCK ADVISORY  WRITE -1 00:2e:1234 0 EOF', '2: POSIX  ADVISORY  WRITE 4242 fe:00:5678 0 EOF', '2: -> POSIX  ADVISORY  WRITE 4243 fe:00:9999 0 EOF', ''].join('\n');
    expect([...heldLockInodes(text)].sort()).toEqual([1234, 5678]);
  });

  it("lists the agent's held external lock, and a lockf lock another process (as cinder does) holds, then neither once released", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cb-locks-'));
    try {
      const release = await acquireExternalLock(dir, 'volume-1-delete_volume');
      await acquireExternalLock(dir, 'volume-2-extend_volume').then((r) => r());
      expect(await heldLockFiles(dir)).toEqual(['cinder-volume-1-delete_volume']);
      await release();
      expect(await heldLockFiles(dir)).toEqual([]);
      // python's fcntl.lockf in a child process, the lock cinder-volume takes
      const script = `import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(30)`;
      const child = execFile('python3', ['-c', script, join(dir, 'cinder-volume-3-create_snapshot')]);
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      try {
        expect(await heldLockFiles(dir)).toEqual(['cinder-volume-3-create_snapshot']);
      } finally {
        child.kill('SIGKILL');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
