// Start-up with exports to restore: the agent answers RPC while the restore runs in the
// background, and a connection call for a volume the restore has not reached restores that
// volume first. The restore is made slow through its injection point (every volume the
// background order reaches waits for the test), one volume at a time, on a real agent, database,
// RabbitMQ and tgtd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseShowTargets } from '../../../drivers/targets/tgt/tgtadm-parse.js';
import { seedAttachment, seedVolume } from '../../helpers/cinder-db.js';
import { startHarness, volumeObject, waitFor, type Harness } from './helpers.js';

const initiator = (n: number) => `iqn.1994-05.com.redhat:bgrestore${n}`;

describe('background restore of exports at start-up', () => {
  let h: Harness;
  const visits: Array<{ id: string; how: 'background' | 'first' }> = [];
  let hold: Promise<void> | null = null;

  beforeAll(async () => {
    h = await startHarness({
      withTgtd: true,
      awaitRestore: false,
      agentOptions: {
        exportRestore: {
          concurrency: 1,
          beforeVolume: async (id, how) => {
            visits.push({ id, how });
            if (how === 'background' && hold) await hold;
          },
        },
      },
    });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  const targets = async () => parseShowTargets((await h.tgtd!.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout);
  const aclsOf = async (id: string) => (await targets()).find((t) => t.iqn.endsWith(`volume-${id}`))?.acls ?? null;
  const attach = async (id: string, init: string) => {
    const att = await seedAttachment(h.db, id, { instanceUuid: null });
    await h.db.volumes.update(id, { status: 'reserved' });
    await h.call('attachment_update', { vref: await volumeObject(h.db, id), connector: { initiator: init, host: init }, attachment_id: att }, '3.9');
    await h.db.attachments.volumeAttached(att, null, init, 'na', 'rw', true);
  };

  it('answers RPC before a slow restore is done; a connection call restores its volume ahead of the background order', async (t) => {
    if (!h.tgtd) return t.skip();
    await h.agent.exportsRestored;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = await seedVolume(h.db, { host: h.poolHost });
      await h.cast('create_volume', { volume: await volumeObject(h.db, id), request_spec: null, filter_properties: {}, allow_reschedule: false });
      await waitFor('available', async () => (await h.db.volumes.get(id)).status === 'available');
      await attach(id, initiator(i));
      ids.push(id);
    }
    // tgtd loses every target (as a tgtd restart does) while the agent is away
    for (const tg of await targets()) await h.tgtd.tgtadm('--lld', 'iscsi', '--op', 'delete', '--force', '--mode', 'target', '--tid', String(tg.tid));
    expect(await targets()).toEqual([]);

    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    visits.length = 0;
    const t0 = Date.now();
    await h.restartAgent(); // returns once consuming: the restore is held
    const startMs = Date.now() - t0;
    const caps = (await h.call('get_capabilities', { discover: true })) as Record<string, unknown>;
    expect(caps.volume_backend_name).toBe('file');
    await waitFor('the background restore to reach its first volume', async () => visits.length > 0);
    expect(visits).toHaveLength(1);
    const blocked = visits[0]!.id;
    expect(await targets()).toEqual([]);
    expect(startMs).toBeLessThan(10_000);

    // a new attachment of a volume the background order has not reached
    const ahead = ids.find((id) => id !== blocked)!;
    await attach(ahead, initiator(9));
    expect(visits.map((v) => v.how)).toEqual(['background', 'first']);
    expect(visits[1]!.id).toBe(ahead);
    expect((await aclsOf(ahead))?.sort()).toEqual([initiator(ids.indexOf(ahead)), initiator(9)].sort());
    for (const id of ids.filter((x) => x !== ahead)) expect(await aclsOf(id)).toBeNull();

    release();
    await h.agent.exportsRestored;
    // every export back with exactly the initiators the database has attached; `ahead` was not done twice
    for (const [i, id] of ids.entries()) {
      const want = id === ahead ? [initiator(i), initiator(9)].sort() : [initiator(i)];
      expect((await aclsOf(id))?.sort()).toEqual(want);
    }
    expect(visits.filter((v) => v.id === ahead)).toHaveLength(1);
    expect(visits).toHaveLength(3);
  }, 180_000);
});
