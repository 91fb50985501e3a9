// cinder's own RPC client (cinder.volume.rpcapi.VolumeAPI, Debian's cinder 21.3) and its Volume
// objects on the same database drive the agent: create, a connector without initiator (the
// exception cinder's caller rebuilds), extend and delete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { SYSTEM_PYTHON, seedVolume } from '../../helpers/cinder-db.js';
import { repoRoot } from '../../helpers/fixtures.js';
import { BROKER, startHarness, type Harness } from './helpers.js';

describe.skipIf(!existsSync(SYSTEM_PYTHON))("cinder's VolumeAPI against the manager", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ withTgtd: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('create, initialize_connection without initiator, extend, delete', async () => {
    const id = await seedVolume(h.db, { host: h.poolHost, size: 1 });
    const r = await execa(
      SYSTEM_PYTHON,
      [join(repoRoot, 'test/integration/manager/cinder_peer.py'), BROKER, h.testDb.url, id, join(repoRoot, 'test/integration/rpc-python-client')],
      { reject: false, timeout: 120_000, env: { PYTHONHASHSEED: '0' } },
    );
    if (r.exitCode !== 0) throw new Error(`cinder_peer.py failed: ${r.stderr.slice(-3000)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, any>;
    expect(out.create_status).toBe('available');
    // oslo rebuilds cinder.exception.InvalidInput as its `_Remote` subclass, as with cinder-volume
    expect(out.no_initiator).toEqual({ isinstance: 'InvalidInput', class: 'InvalidInput_Remote', msg: "Invalid input received: Connector doesn't have required information: initiator" });
    expect(out.extend).toEqual({ status: 'available', size: 2 });
    expect(out.caps_backend).toBe('file');
    expect(out.deleted).toBe(true);
    expect(existsSync(join(h.poolDir, `volume-${id}`))).toBe(false);
  }, 150_000);
});
