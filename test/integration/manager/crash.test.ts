// kill -9 of `cinderblock serve` in the middle of a create and of a delete, then a restart: init_host
// must leave a final state with no orphaned file, export or workers row.
//  - create: the clone waits for the source's `<src>-delete_volume` external lock, which this test
//    holds (an oslo-compatible lock file, as a cinder tool on the host would), so the agent is
//    killed with its workers row written and the volume still `creating`.
//  - delete: tgtd is stopped (SIGSTOP) so remove_export hangs after the workers row is claimed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireExternalLock } from '../../../src/native/index.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { seedVolume } from '../../helpers/cinder-db.js';
import { startHarness, volumeObject, waitFor, type Harness } from './helpers.js';

const INITIATOR = 'iqn.1994-05.com.redhat:cbcrash01';
const built = existsSync(join(import.meta.dirname, '..', '..', '..', 'dist', 'src', 'cli', 'main.js'));

describe.skipIf(!built)('init_host after kill -9', () => {
  let h: Harness;
  let confPath: string;
  let agent: AgentProcess | undefined;

  const start = async () => {
    agent = startAgentProcess(confPath, [], h.tgtd ? { CINDERBLOCK_TGTD_CONTROL_PORT: String(h.tgtd.controlPort) } : {});
    await agent.waitForLog(/consuming/, 60_000);
  };

  beforeAll(async () => {
    h = await startHarness({ inProcessAgent: false });
    confPath = join(h.dir, 'cinder.conf');
    await writeFile(confPath, h.confText);
    await start();
  });
  afterAll(async () => {
    await agent?.stop('SIGKILL');
    await h?.close();
  });

  it('a create killed mid-way ends in error with its workers row cleaned; the volume can then be deleted', async () => {
    const svc = await waitFor('services row', () => h.db.services.getByHostAndBinary(h.backendHost));
    const src = await seedVolume(h.db, { host: h.poolHost });
    await h.cast('create_volume', { volume: await volumeObject(h.db, src), request_spec: null, filter_properties: {}, allow_reschedule: false });
    await waitFor('source available', async () => (await h.db.volumes.get(src)).status === 'available');

    const release = await acquireExternalLock(join(h.dir, 'locks'), `${src}-delete_volume`);
    const clone = await seedVolume(h.db, { host: h.poolHost });
    await h.db.volumes.update(clone, { source_volid: src });
    try {
      await h.cast('create_volume', { volume: await volumeObject(h.db, clone), request_spec: null, filter_properties: {}, allow_reschedule: false });
      const w = await waitFor('the workers row of the create', () => h.db.workers.find('Volume', clone));
      expect(w).toMatchObject({ status: 'creating', service_id: svc.id });
      await agent!.stop('SIGKILL');
    } finally {
      await release();
    }
    expect((await h.db.volumes.get(clone)).status).toBe('creating');
    await start();
    await waitFor('clone in error', async () => (await h.db.volumes.get(clone)).status === 'error');
    expect(await h.db.workers.find('Volume', clone)).toBeUndefined();
    // an errored volume is deletable and leaves nothing behind
    await h.db.volumes.update(clone, { status: 'deleting' });
    await h.cast('delete_volume', { volume: await volumeObject(h.db, clone), unmanage_only: false, cascade: false });
    await waitFor('clone deleted', async () => (await h.db.volumes.find(clone)) === undefined);
    expect(existsSync(join(h.poolDir, `volume-${clone}`))).toBe(false);
  }, 120_000);

  it('a delete killed mid-way is done again at start: no file, no export, no row', async (t) => {
    if (!h.tgtd) return t.skip();
    const svc = (await h.db.services.getByHostAndBinary(h.backendHost))!;
    const id = await seedVolume(h.db, { host: h.poolHost });
    await h.cast('create_volume', { volume: await volumeObject(h.db, id), request_spec: null, filter_properties: {}, allow_reschedule: false });
    await waitFor('available', async () => (await h.db.volumes.get(id)).status === 'available');
    await h.call('initialize_connection', { connector: { initiator: INITIATOR, host: 'c' }, volume: await volumeObject(h.db, id) });
    const iqn = `iqn.2010-10.org.openstack:volume-${id}`;
    expect((await h.tgtd.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout).toContain(iqn);

    const tgtdPid = h.tgtd.pid()!;
    process.kill(tgtdPid, 'SIGSTOP');
    try {
      await h.db.volumes.update(id, { status: 'deleting' });
      await h.cast('delete_volume', { volume: await volumeObject(h.db, id), unmanage_only: false, cascade: false });
      const w = await waitFor('the workers row of the delete', () => h.db.workers.find('Volume', id));
      expect(w).toMatchObject({ status: 'deleting', service_id: svc.id });
      await agent!.stop('SIGKILL');
    } finally {
      process.kill(tgtdPid, 'SIGCONT');
    }
    expect((await h.db.volumes.get(id)).status).toBe('deleting');
    expect(existsSync(join(h.poolDir, `volume-${id}`))).toBe(true);
    await start();
    await waitFor('deleted by init_host', async () => (await h.db.volumes.find(id)) === undefined);
    expect((await h.db.volumes.get(id, { readDeleted: 'yes' })).status).toBe('deleted');
    expect(existsSync(join(h.poolDir, `volume-${id}`))).toBe(false);
    expect(existsSync(join(h.volumesDir, `volume-${id}`))).toBe(false);
    expect((await h.tgtd.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout).not.toContain(iqn);
    expect(await h.db.workers.listByService(svc.id)).toEqual([]);
  }, 120_000);
});
