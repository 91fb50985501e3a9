// volume_attachment repository, differential against cinder's DB API.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, seedAttachment, seedVolume, type SeedVolume } from '../../helpers/cinder-db.js';
import { diffRows, rawRow, setUpBackend, type BackendContext } from './support.js';

const T0 = new Date('2024-02-03T04:05:06.000Z');
const INSTANCE = '9f3c2a8e-1b4d-4e6f-8a7b-0c1d2e3f4a5b';
const CONNECTOR = JSON.stringify({ initiator: 'iqn.1993-08.org.debian:01:abc', host: 'compute1', ip: '10.0.0.5', multipath: false, mode: 'rw' });

describe.each(BACKENDS)('attachments on %s', (backend) => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend(backend);
  });
  afterAll(async () => c?.close());

  /** A volume with attachments in the given states, twice (ours, cinder's); attachment ids per volume. */
  async function pair(states: string[], vol: SeedVolume = { status: 'reserved' }): Promise<Array<{ volume: string; atts: string[] }>> {
    const out = [];
    for (let i = 0; i < 2; i++) {
      const volume = await seedVolume(c.db, { createdAt: T0, ...vol });
      const atts = [];
      for (const s of states) atts.push(await seedAttachment(c.db, volume, { attachStatus: s, instanceUuid: INSTANCE }));
      out.push({ volume, atts });
    }
    return out;
  }
  const vrow = (id: string) => rawRow(c.oracle, 'volumes', 'id', id);
  const arow = (id: string) => rawRow(c.oracle, 'volume_attachment', 'id', id);
  const TS = ['created_at', 'updated_at', 'deleted_at', 'attach_time', 'detach_time'];
  const sameVolume = async (a: string, b: string) => expect(diffRows(await vrow(a), await vrow(b), { ignore: ['id', 'display_name'], presence: TS })).toEqual([]);
  const sameAtt = async (a: string, b: string) => expect(diffRows(await arow(a), await arow(b), { ignore: ['id', 'volume_id'], presence: TS })).toEqual([]);

  it('get()/listByVolume() return what cinder returns', async () => {
    const vol = await seedVolume(c.db, { status: 'in-use' });
    const live = await seedAttachment(c.db, vol, { attachStatus: 'attached' });
    const reserved = await seedAttachment(c.db, vol, { attachStatus: 'reserved' });
    await seedAttachment(c.db, vol, { attachStatus: 'detached' });
    const gone = await seedAttachment(c.db, vol, { attachStatus: 'attached' });
    await c.oracle.call('attachment_destroy', gone);
    const ours = (await c.db.attachments.listByVolume(vol)).map((a) => a.id).sort();
    const theirs = (await c.oracle.call('volume_attachment_get_all_by_volume_id', vol)).map((a: { id: string }) => a.id).sort();
    expect(ours).toEqual([live, reserved].sort());
    expect(ours).toEqual(theirs);
    expect((await c.db.attachments.get(live)).attach_status).toBe('attached');
    await expect(c.db.attachments.get(gone)).rejects.toMatchObject({ className: 'VolumeAttachmentNotFound', message: `Volume attachment could not be found with filter: attachment_id = ${gone}.` });
  });

  it('update() writes what volume_attachment_update writes', async () => {
    const [mine, theirs] = await pair(['reserved']);
    const values = { attach_status: 'attaching', connector: CONNECTOR };
    await c.db.attachments.update(mine!.atts[0]!, values);
    await c.oracle.call('volume_attachment_update', theirs!.atts[0]!, values);
    await sameAtt(mine!.atts[0]!, theirs!.atts[0]!);
    expect((await c.db.attachments.get(mine!.atts[0]!)).updated_at).not.toBeNull();
    await expect(c.db.attachments.update(randomUUID(), values)).rejects.toMatchObject({ className: 'VolumeAttachmentNotFound' });
  });

  it.each([true, false])('volumeAttached(mark_attached=%s) matches db.volume_attached', async (markAttached) => {
    const [mine, theirs] = await pair(['attaching']);
    const ours = await c.db.attachments.volumeAttached(mine!.atts[0]!, INSTANCE, 'compute1', '/dev/vdb', 'rw', markAttached);
    const ref = await c.oracle.call('volume_attached', theirs!.atts[0]!, INSTANCE, 'compute1', '/dev/vdb', 'rw', markAttached);
    await sameAtt(mine!.atts[0]!, theirs!.atts[0]!);
    await sameVolume(mine!.volume, theirs!.volume);
    expect(Object.keys(ours.updatedValues).sort()).toEqual(Object.keys(ref[1]).sort());
    expect(ours.updatedValues).toMatchObject({ ...ref[1], attach_time: expect.any(Date) });
    expect(ours.volume).toMatchObject({ status: markAttached ? 'in-use' : 'attaching', attach_status: markAttached ? 'attached' : 'attaching' });
    expect(ref[0].status).toBe(ours.volume.status);
    const obj = await c.oracle.request({ op: 'attachment_obj', id: mine!.atts[0]! });
    expect(obj.result['versioned_object.data']).toMatchObject({ attach_status: markAttached ? 'attached' : 'attaching', attached_host: 'compute1', mountpoint: '/dev/vdb', attach_mode: 'rw', instance_uuid: INSTANCE });
  });

  it('volumeAttached() refuses a malformed instance uuid like cinder (InvalidUUID)', async () => {
    const [mine, theirs] = await pair(['attaching']);
    await expect(c.db.attachments.volumeAttached(mine!.atts[0]!, 'not-a-uuid', 'h', null, 'rw')).rejects.toMatchObject({ className: 'InvalidUUID' });
    await expect(c.oracle.call('volume_attached', theirs!.atts[0]!, 'not-a-uuid', 'h', null, 'rw', true)).rejects.toThrow(/InvalidUUID/);
  });

  const detachCases: Array<{ name: string; states: string[]; vol: SeedVolume; detach: number | 'missing' }> = [
    { name: 'last attachment', states: ['attached'], vol: { status: 'in-use', attachStatus: 'attached' }, detach: 0 },
    { name: 'one of two', states: ['attached', 'reserved'], vol: { status: 'in-use', attachStatus: 'attached' }, detach: 0 },
    { name: 'leaves an attaching one', states: ['attached', 'attaching', 'error_attaching'], vol: { status: 'in-use', attachStatus: 'attached' }, detach: 0 },
    { name: 'during a migration', states: ['attached'], vol: { status: 'in-use', attachStatus: 'attached', migrationStatus: 'migrating' }, detach: 0 },
    { name: 'missing attachment', states: ['attached'], vol: { status: 'in-use', attachStatus: 'attached' }, detach: 'missing' },
  ];

  it.each(detachCases)('volumeDetached() matches db.volume_detached: $name', async ({ states, vol, detach }) => {
    const [mine, theirs] = await pair(states, vol);
    const pick = (p: { atts: string[] }) => (detach === 'missing' ? randomUUID() : p.atts[detach]!);
    const ours = await c.db.attachments.volumeDetached(mine!.volume, pick(mine!));
    const ref = await c.oracle.call('volume_detached', theirs!.volume, pick(theirs!));
    expect(ours.volumeUpdates).toEqual(ref[0]);
    if (ref[1] === null) expect(ours.attachmentUpdates).toBeNull();
    else expect(Object.keys(ours.attachmentUpdates!).sort()).toEqual(Object.keys(ref[1]).sort());
    await sameVolume(mine!.volume, theirs!.volume);
    for (let i = 0; i < states.length; i++) await sameAtt(mine!.atts[i]!, theirs!.atts[i]!);
  });

  it('destroy() matches attachment_destroy (updated_at kept)', async () => {
    const [mine, theirs] = await pair(['attached']);
    const ours = await c.db.attachments.destroy(mine!.atts[0]!);
    const ref = await c.oracle.call('attachment_destroy', theirs!.atts[0]!);
    expect(Object.keys(ours).sort()).toEqual(Object.keys(ref).sort());
    await sameAtt(mine!.atts[0]!, theirs!.atts[0]!);
    expect((await arow(mine!.atts[0]!)).updated_at).toBeNull();
  });

  it('create() inserts the row volume_attach inserts', async () => {
    const [v1, v2] = [await seedVolume(c.db), await seedVolume(c.db)];
    const values = { attach_status: 'attaching', attach_mode: 'rw', instance_uuid: INSTANCE, attached_host: 'compute1', mountpoint: '/dev/vdc' };
    const ours = await c.db.attachments.create({ volume_id: v1, ...values });
    const ref = await c.oracle.call('volume_attach', { volume_id: v2, ...values });
    expect(diffRows(await arow(ours.id), await arow(ref.id), { ignore: ['id', 'volume_id'], presence: TS })).toEqual([]);
  });
});
