// A full pool: the file pool on an 8 MiB tmpfs. A clone that cannot be written errors the new
// volume (no reschedule without retry), leaves no partial file, and the source is untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { seedVolume } from '../../helpers/cinder-db.js';
import { startHarness, volumeObject, waitFor, type Harness } from './helpers.js';

const root = process.getuid?.() === 0;

describe.skipIf(!root)('the file pool when it is full', () => {
  let h: Harness;
  let mnt: string;

  beforeAll(async () => {
    mnt = await mkdtemp(join(tmpdir(), 'cb-fullpool-'));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    h = await startHarness({ poolDir: mnt, withTgtd: false });
  });
  afterAll(async () => {
    await h?.close();
    await execa('umount', [mnt], { reject: false });
    await rm(mnt, { recursive: true, force: true });
  });

  it('a clone that does not fit: volume error, no partial file, source intact', async () => {
    const src = await seedVolume(h.db, { host: h.poolHost, size: 1 });
    await h.cast('create_volume', { volume: await volumeObject(h.db, src), request_spec: null, filter_properties: {}, allow_reschedule: true });
    await waitFor('source available', async () => (await h.db.volumes.get(src)).status === 'available');
    // 5 MiB of data in an 8 MiB pool: a copy needs 5 MiB more
    const fh = await open(join(mnt, `volume-${src}`), 'r+');
    await fh.write(Buffer.alloc(5 * 1024 * 1024, 0xab), 0, 5 * 1024 * 1024, 0);
    await fh.close();
    const clone = await seedVolume(h.db, { host: h.poolHost, size: 1 });
    await h.db.volumes.update(clone, { source_volid: src });
    await h.cast('create_volume', { volume: await volumeObject(h.db, clone), request_spec: null, filter_properties: {}, allow_reschedule: true });
    await waitFor('clone error', async () => (await h.db.volumes.get(clone)).status === 'error');
    expect(existsSync(join(mnt, `volume-${clone}`))).toBe(false);
    expect((await h.db.volumes.get(src)).status).toBe('available');
    expect(await h.db.workers.find('Volume', clone)).toBeUndefined();
  });
});
