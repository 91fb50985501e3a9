// kill -9 of `cinderblock serve` in the middle of an extend and of an attachment_update, then a
// restart: init_host must leave each volume in a final state and no export or ACL the database does
// not account for. How the agent is stopped mid-way, deterministically:
//  - extend (in-use): tgtd is stopped (SIGSTOP) so extend_target hangs after the file has grown;
//    the volume is still `extending` with the old size in the database when it is killed. cinder
//    would leave it `extending` for ever; init_host reads the backend's size and sets
//    in-use/available with that size (and refreshes the LUN size of the export).
//  - attachment_update: the database write after the export is made blocks (SQLite: this test
//    holds the write lock; MariaDB: this test holds the attachment row lock, so the export and the
//    initiator ACL are both made) and the agent is killed there. The attachment stays `reserved`
//    (cinder-api's reservation), and cinder-api's attachment_delete of a reserved attachment never
//    calls the volume service: init_host must remove the export itself.
//  - attachment_delete: tgtd is stopped so the revocation hangs, and the agent is killed there.
//    The row must still say attached while the host is still admitted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { mysqlSession, seedAttachment, seedVolume } from '../../helpers/cinder-db.js';
import { startHarness, volumeObject, waitFor, type Harness } from './helpers.js';

const INITIATOR = 'iqn.1994-05.com.redhat:cbcrashext01';
const GiB = 1024 ** 3;

/** The `tgtadm --op show` block of target `iqn`, or null. */
function targetBlock(show: string, iqn: string): string | null {
  for (const block of show.split(/^(?=Target \d+: )/m)) {
    if (block.startsWith('Target ') && block.split('\n')[0]!.trim().endsWith(`: ${iqn}`)) return block;
  }
  return null;
}

/** The initiator names of the ACL section of a target block. */
function aclNames(block: string): string[] {
  const m = /ACL information:\n([\s\S]*)$/.exec(block);
  if (!m) return [];
  return m[1]!
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(iqn\.|eui\.|naa\.)/.test(l));
}

describe.each(['sqlite', 'mysql'] as const)('init_host after kill -9 mid extend / attach (%s)', (backend) => {
  let h: Harness;
  let confPath: string;
  let agent: AgentProcess | undefined;

  const start = async () => {
    agent = startAgentProcess(confPath, [], h.tgtd ? { CINDERBLOCK_TGTD_CONTROL_PORT: String(h.tgtd.controlPort) } : {});
    await agent.waitForLog(/consuming/, 60_000);
  };
  const show = async () => (await h.tgtd!.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout;
  const createAvailable = async () => {
    const id = await seedVolume(h.db, { host: h.poolHost });
    await h.cast('create_volume', { volume: await volumeObject(h.db, id), request_spec: null, filter_properties: {}, allow_reschedule: false });
    await waitFor('available', async () => (await h.db.volumes.get(id)).status === 'available');
    return id;
  };
  /** A volume attached as nova does it: attachment_create (reserved), attachment_update, attachment_complete. */
  const createAttached = async (host: string) => {
    const id = await createAvailable();
    const attId = await seedAttachment(h.db, id);
    await h.db.volumes.update(id, { status: 'reserved' });
    await h.call('attachment_update', { vref: await volumeObject(h.db, id), connector: { initiator: INITIATOR, host }, attachment_id: attId }, '3.9');
    const att = await h.db.attachments.get(attId);
    await h.db.attachments.volumeAttached(attId, att.instance_uuid, host, 'na', 'rw', true);
    return { id, attId };
  };

  beforeAll(async () => {
    h = await startHarness({ inProcessAgent: false, backend });
    confPath = join(h.dir, 'cinder.conf');
    await writeFile(confPath, h.confText);
    await start();
  }, 120_000);
  afterAll(async () => {
    await agent?.stop('SIGKILL');
    await h?.close();
  });

  it('an extend killed after the file grew ends in-use with the backend size; an extend that never ran ends available', async (t) => {
    if (!h.tgtd) return t.skip();
    const { id, attId } = await createAttached('compute1');
    expect((await h.db.volumes.get(id)).status).toBe('in-use');
    const iqn = `iqn.2010-10.org.openstack:volume-${id}`;
    expect(aclNames(targetBlock(await show(), iqn)!)).toEqual([INITIATOR]);

    // an extend the API accepted but the agent never got to (the cast died with it)
    const idle = await createAvailable();
    await h.db.volumes.update(idle, { status: 'extending' });

    const file = join(h.poolDir, `volume-${id}`);
    const tgtdPid = h.tgtd.pid()!;
    process.kill(tgtdPid, 'SIGSTOP');
    try {
      await h.db.volumes.update(id, { status: 'extending' });
      await h.cast('extend_volume', { volume: await volumeObject(h.db, id), new_size: 2, reservations: [] });
      await waitFor('the file grown', async () => statSync(file).size === 2 * GiB);
      // the next step is extend_target, which waits on the stopped tgtd
      await agent!.stop('SIGKILL');
    } finally {
      process.kill(tgtdPid, 'SIGCONT');
    }
    expect(await h.db.volumes.get(id)).toMatchObject({ status: 'extending', size: 1 });

    await start();
    const v = await waitFor('extend recovered', async () => {
      const r = await h.db.volumes.get(id);
      return r.status !== 'extending' && r;
    });
    expect(v).toMatchObject({ status: 'in-use', size: 2 });
    expect(await h.db.volumes.get(idle)).toMatchObject({ status: 'available', size: 1 });
    expect(statSync(join(h.poolDir, `volume-${idle}`)).size).toBe(GiB);
    expect(agent!.text()).toMatch(new RegExp(`Volume ${id} was left extending by a crash: the backend has 2 GiB, so the extend happened`));
    expect(agent!.text()).toMatch(new RegExp(`Volume ${idle} was left extending by a crash: the backend has 1 GiB, so the extend did not happen`));
    // the export still matches the database: the attached initiator only, and the new size
    const block = targetBlock(await show(), iqn);
    expect(block).not.toBeNull();
    expect(aclNames(block!)).toEqual([INITIATOR]);
    expect(block).toMatch(/LUN: 1\n[\s\S]*?Size: 2147 MB/);
    expect(targetBlock(await show(), `iqn.2010-10.org.openstack:volume-${idle}`)).toBeNull();

    // and it detaches and deletes cleanly: nothing left behind
    await h.call('attachment_delete', { vref: await volumeObject(h.db, id), attachment_id: attId }, '3.9');
    await h.db.attachments.volumeDetached(id, attId);
    for (const vid of [id, idle]) {
      await h.db.volumes.update(vid, { status: 'deleting' });
      await h.cast('delete_volume', { volume: await volumeObject(h.db, vid), unmanage_only: false, cascade: false });
      await waitFor('deleted', async () => (await h.db.volumes.find(vid)) === undefined);
      expect(existsSync(join(h.poolDir, `volume-${vid}`))).toBe(false);
      expect(existsSync(join(h.volumesDir, `volume-${vid}`))).toBe(false);
    }
    expect(await show()).not.toContain(iqn);
  }, 180_000);

  it('an attachment_update killed after the export was made leaves no export or ACL the database does not account for', async (t) => {
    if (!h.tgtd) return t.skip();
    const id = await createAvailable();
    const attId = await seedAttachment(h.db, id, { instanceUuid: randomUUID() });
    await h.db.volumes.update(id, { status: 'reserved' });
    const iqn = `iqn.2010-10.org.openstack:volume-${id}`;

    // hold what the write after the export needs
    let release: () => Promise<void>;
    if (backend === 'sqlite') {
      const raw = new BetterSqlite3(h.testDb.file!);
      raw.exec('BEGIN IMMEDIATE');
      release = async () => {
        raw.exec('ROLLBACK');
        raw.close();
      };
    } else {
      const s = await mysqlSession(h.testDb);
      await s.query('START TRANSACTION');
      await s.query('SELECT id FROM volume_attachment WHERE id = ? FOR UPDATE', [attId]);
      release = async () => {
        await s.query('ROLLBACK');
        await s.end();
      };
    }
    try {
      await h.cast('attachment_update', { vref: await volumeObject(h.db, id), connector: { initiator: INITIATOR, host: 'compute2' }, attachment_id: attId }, '3.9');
      if (backend === 'sqlite') {
        // the provider_* write after create_export waits for the lock (busy timeout 10 s)
        await waitFor('the export', async () => targetBlock(await show(), iqn) !== null, 9_000);
      } else {
        // the `attaching` write after initialize_connection waits for the row lock
        await waitFor('the ACL', async () => aclNames(targetBlock(await show(), iqn) ?? '').includes(INITIATOR));
      }
      await agent!.stop('SIGKILL');
    } finally {
      await release!();
    }
    // SQLite: the agent's write died with it. MariaDB: the agent's UPDATE was already sent and
    // waiting for the row lock, so the server runs it once the lock is released (the server does
    // not notice the closed connection while the statement waits): the attachment is `attaching`
    // with its connector, the volume still `reserved` (volume_attached never ran).
    // On MariaDB whether the UPDATE reached the server before the kill is a race, and both are
    // real crash points: take whichever happened and check the recovery for it.
    let expected: 'reserved' | 'attaching' = 'reserved';
    if (backend !== 'sqlite') {
      expected = await waitFor('attachment attaching', async () => (await h.db.attachments.get(attId)).attach_status === 'attaching', 5_000).then(
        () => 'attaching' as const,
        () => 'reserved' as const,
      );
    }
    expect((await h.db.attachments.get(attId)).attach_status).toBe(expected);
    expect((await h.db.volumes.get(id)).status).toBe('reserved');
    expect(targetBlock(await show(), iqn)).not.toBeNull();

    await start();
    if (expected === 'reserved') {
      // cinder-api's attachment_delete of a reserved attachment never calls the volume service:
      // init_host removes the export (and its ACL) nothing in the database accounts for
      // the target goes first, then its CHAP account, then its file: wait for the last
      await waitFor('the orphaned export removed', async () => targetBlock(await show(), iqn) === null && !existsSync(join(h.volumesDir, `volume-${id}`)));
      expect((await h.db.volumes.get(id)).status).toBe('reserved');
      // nova's attachment_delete of a reserved attachment: finish_detach only
      await h.db.attachments.volumeDetached(id, attId);
    } else {
      // the export matches the database: the `attaching` attachment's initiator only; nova's
      // attachment_delete (after its attachment_update timed out) calls the volume service,
      // which removes the export, then finish_detach
      expect(aclNames(targetBlock(await show(), iqn)!)).toEqual([INITIATOR]);
      expect((await h.db.volumes.get(id)).status).toBe('reserved');
      await h.call('attachment_delete', { vref: await volumeObject(h.db, id), attachment_id: attId }, '3.9');
      await h.db.attachments.volumeDetached(id, attId);
      expect(targetBlock(await show(), iqn)).toBeNull();
      expect(existsSync(join(h.volumesDir, `volume-${id}`))).toBe(false);
    }
    expect((await h.db.volumes.get(id)).status).toBe('available');

    // attaching again works, and detaching then deleting leaves nothing
    const att2 = await seedAttachment(h.db, id);
    await h.db.volumes.update(id, { status: 'reserved' });
    await h.call('attachment_update', { vref: await volumeObject(h.db, id), connector: { initiator: INITIATOR, host: 'compute2' }, attachment_id: att2 }, '3.9');
    expect(aclNames(targetBlock(await show(), iqn)!)).toEqual([INITIATOR]);
    await h.call('attachment_delete', { vref: await volumeObject(h.db, id), attachment_id: att2 }, '3.9');
    await h.db.attachments.volumeDetached(id, att2);
    expect(targetBlock(await show(), iqn)).toBeNull();
    await h.db.volumes.update(id, { status: 'deleting' });
    await h.cast('delete_volume', { volume: await volumeObject(h.db, id), unmanage_only: false, cascade: false });
    await waitFor('deleted', async () => (await h.db.volumes.find(id)) === undefined);
    expect(existsSync(join(h.poolDir, `volume-${id}`))).toBe(false);
  }, 180_000);

  it('an attachment_delete killed while the host is being revoked leaves the row attached, never detached over an ACL still in place', async (t) => {
    if (!h.tgtd) return t.skip();
    const { id, attId } = await createAttached('compute3');
    const iqn = `iqn.2010-10.org.openstack:volume-${id}`;
    expect(aclNames(targetBlock(await show(), iqn)!)).toEqual([INITIATOR]);

    // the revocation waits on the stopped tgtd; the agent dies there
    const tgtdPid = h.tgtd.pid()!;
    process.kill(tgtdPid, 'SIGSTOP');
    try {
      await h.cast('attachment_delete', { vref: await volumeObject(h.db, id), attachment_id: attId }, '3.9');
      await waitFor('the agent to take the delete', async () => /attachment_delete/.test(agent!.text()), 10_000).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 2_000));
      await agent!.stop('SIGKILL');
    } finally {
      process.kill(tgtdPid, 'SIGCONT');
    }
    // what the database says must cover what the target allows: the host is still admitted, so
    // its attachment must still count (a `detached` row here is bug 2004555's state)
    expect(aclNames(targetBlock(await show(), iqn)!)).toEqual([INITIATOR]);
    expect((await h.db.attachments.get(attId)).attach_status).toBe('attached');

    // restarted, the retried delete (nova's) revokes the host and lets the row go
    await start();
    await h.call('attachment_delete', { vref: await volumeObject(h.db, id), attachment_id: attId }, '3.9');
    expect(targetBlock(await show(), iqn)).toBeNull();
    expect((await h.db.attachments.get(attId)).attach_status).toBe('detached');
    await h.db.attachments.volumeDetached(id, attId);
    await h.db.volumes.update(id, { status: 'deleting' });
    await h.cast('delete_volume', { volume: await volumeObject(h.db, id), unmanage_only: false, cascade: false });
    await waitFor('deleted', async () => (await h.db.volumes.find(id)) === undefined);
  }, 180_000);
});
