import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomically } from '../../../src/fs/atomic-write.js';

describe('writeFileAtomically', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-atomic-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the directory, writes mode 0600 whatever the umask, and replaces an older file', async () => {
    const path = join(dir, 'sub', 'volume-1');
    const old = process.umask(0o000);
    try {
      await writeFileAtomically(path, 'one\n');
      await writeFileAtomically(path, 'two\n', { sync: false });
    } finally {
      process.umask(old);
    }
    expect(await readFile(path, 'utf8')).toBe('two\n');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'sub'))).toEqual(['volume-1']);
  });

  it('leaves the old file and no temp file behind when the rename fails', async () => {
    // a directory in the way: rename(2) of a file over a non-empty directory fails
    const path = join(dir, 'target');
    await mkdir(join(path, 'inside'), { recursive: true });
    await expect(writeFileAtomically(path, 'x')).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(['target']);
  });
});
