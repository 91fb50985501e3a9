import { describe, expect, it } from 'vitest';
import { CinderError } from '../../../src/errors.js';
import { loadFixture } from '../../helpers/fixtures.js';
import { decodeEnvelope, parseRequest } from '../../../src/rpc/envelope.js';
import { serializeEntity, VersionedObject } from '../../../src/rpc/ovo.js';
import {
  fieldDate,
  OBJ_VERSIONS,
  OBJ_VERSIONS_CURRENT,
  requestSpecFromPrimitive,
  snapshotFromPrimitive,
  volumeAttachmentFromPrimitive,
  volumeFromPrimitive,
  volumeName,
  volumeTypeFromPrimitive,
} from '../../../src/rpc/ovo-schemas.js';

function volumeArg(file = 'volume.initialize_connection.failure.json'): Record<string, unknown> {
  return parseRequest(decodeEnvelope(loadFixture(file).request.body_raw)).args.volume as Record<string, unknown>;
}

/** A deep copy of a primitive with `mutate` applied to its data. */
function tweak(p: Record<string, unknown>, mutate: (data: Record<string, unknown>) => void): Record<string, unknown> {
  const c = structuredClone(p);
  mutate(c['versioned_object.data'] as Record<string, unknown>);
  return c;
}

const invalid = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CinderError);
    expect((e as CinderError).className).toBe('InvalidInput');
    return (e as Error).message;
  }
  throw new Error('did not throw');
};

describe('object versions', () => {
  it('are those of cinder 21.3', () => {
    expect(OBJ_VERSIONS_CURRENT).toBe('1.39');
    expect(OBJ_VERSIONS).toMatchObject({ Volume: '1.9', Snapshot: '1.6', VolumeAttachment: '1.3', VolumeType: '1.3', RequestSpec: '1.5', VolumeAttachmentList: '1.1' });
  });
});

describe('typed views', () => {
  it('accept the captured Volume and keep it untouched', () => {
    const p = volumeArg();
    const v = volumeFromPrimitive(p);
    expect(v.data.id).toBe('2c1076de-91eb-42f7-916f-04100b105d61');
    expect(v.data.size).toBe(2);
    expect(fieldDate(v.data.launched_at)?.toISOString()).toBe('2026-11-23T19:31:39.000Z');
    expect(volumeName(v)).toBe('volume-2c1076de-91eb-42f7-916f-04100b105d61');
    expect(serializeEntity(v)).toStrictEqual(p);
    expect(volumeFromPrimitive(v)).toBe(v); // an already decoded object is validated in place
  });

  it('name the offending field', () => {
    const p = volumeArg();
    expect(invalid(() => volumeFromPrimitive(tweak(p, (d) => (d.size = '2')), 'vref'))).toBe('Invalid input received: vref.size: Expected number, received string');
    expect(invalid(() => volumeFromPrimitive(tweak(p, (d) => (d.id = 'not-a-uuid'))))).toMatch(/volume\.id: must be a UUID/);
    expect(invalid(() => volumeFromPrimitive(tweak(p, (d) => delete d.id)))).toMatch(/volume\.id: Required/);
    expect(invalid(() => volumeFromPrimitive(tweak(p, (d) => (d.created_at = 'yesterday'))))).toMatch(/volume\.created_at: must be an ISO 8601 datetime/);
    expect(invalid(() => volumeFromPrimitive(tweak(p, (d) => (d.attach_status = 'glued'))))).toMatch(/volume\.attach_status: Invalid enum value/);
    expect(invalid(() => volumeFromPrimitive(tweak(p, (d) => (d.metadata = { a: 1 }))))).toMatch(/volume\.metadata\.a: Expected string/);
  });

  it('validate nested objects and list members', () => {
    const p = volumeArg();
    const badType = tweak(p, (d) => {
      ((d.volume_type as Record<string, Record<string, unknown>>)['versioned_object.data']!).id = 42;
    });
    expect(invalid(() => volumeFromPrimitive(badType))).toMatch(/volume\.volume_type\.id: Expected string, received number/);
    const badAttachment = tweak(p, (d) => {
      const list = (d.volume_attachment as Record<string, Record<string, unknown[]>>)['versioned_object.data']!.objects!;
      ((list[0] as Record<string, Record<string, unknown>>)['versioned_object.data']!).attach_time = 12;
    });
    expect(invalid(() => volumeFromPrimitive(badAttachment))).toMatch(/volume\.volume_attachment\.objects\.0\.attach_time/);
    const wrongName = tweak(p, (d) => ((d.volume_type as Record<string, unknown>)['versioned_object.name'] = 'GroupType'));
    expect(invalid(() => volumeFromPrimitive(wrongName))).toMatch(/volume\.volume_type: expected a VolumeType object, got GroupType/);
    const plainDict = tweak(p, (d) => (d.volume_type = { id: 'x' }));
    expect(invalid(() => volumeFromPrimitive(plainDict))).toMatch(/expected a VolumeType object, got object/);
  });

  it('accept nulls and absent fields, keep unknown ones', () => {
    const v = volumeFromPrimitive({
      'versioned_object.name': 'Volume',
      'versioned_object.namespace': 'cinder',
      'versioned_object.version': '1.8',
      'versioned_object.data': { id: '2c1076de-91eb-42f7-916f-04100b105d61', volume_type: null, host: null, brand_new: { x: 1 } },
    });
    expect(v.data.brand_new).toEqual({ x: 1 });
  });

  it('check object name and version', () => {
    const p = volumeArg();
    expect(invalid(() => snapshotFromPrimitive(p))).toMatch(/snapshot: expected a Snapshot object, got Volume/);
    expect(invalid(() => volumeFromPrimitive({ ...p, 'versioned_object.version': '1.10' }))).toMatch(/Volume version 1.10 is not supported/);
    expect(invalid(() => volumeFromPrimitive({ ...p, 'versioned_object.version': '2.0' }))).toMatch(/not supported/);
    expect(invalid(() => volumeFromPrimitive({ ...p, 'versioned_object.namespace': 'nova' }))).toMatch(/namespace nova/);
    expect(invalid(() => volumeFromPrimitive('nope', 'vref'))).toMatch(/vref: expected a versioned object primitive/);
  });

  it('cover snapshot (with nested volume), attachment, volume type and request spec from real traffic', () => {
    const snapArgs = parseRequest(decodeEnvelope(loadFixture('volume.revert_to_snapshot.peer_client.json').request.body_raw)).args;
    const s = snapshotFromPrimitive(snapArgs.snapshot);
    expect(s.data.volume?.data.id).toBe(s.data.volume_id);
    expect(s.data.status).toBe('creating'); // as captured

    const vol = volumeFromPrimitive(volumeArg());
    const att = volumeAttachmentFromPrimitive(vol.data.volume_attachment!.data.objects[0]);
    expect(att.data.volume_id).toBe(vol.data.id);
    expect(volumeTypeFromPrimitive(vol.data.volume_type).data.name).toBe('__DEFAULT__');

    const cv = parseRequest(decodeEnvelope(loadFixture('volume.create_volume.e2e.json').request.body_raw)).args;
    const rs = requestSpecFromPrimitive(cv.request_spec);
    expect(rs.data.volume_id).toBe((cv.volume as Record<string, Record<string, unknown>>)['versioned_object.data']!.id);
    expect(rs.data.volume_type).toBeInstanceOf(VersionedObject);
  });
});
