import { describe, expect, it } from 'vitest';
import { CinderError } from '../../../src/errors.js';
import {
  deserializeEntity,
  formatOvoDatetime,
  formatPerfectTime,
  formatPyIsoformat,
  parseIsoDatetime,
  serializeEntity,
  VersionedObject,
} from '../../../src/rpc/ovo.js';

const prim = (name: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  'versioned_object.name': name,
  'versioned_object.namespace': 'cinder',
  'versioned_object.version': '1.0',
  'versioned_object.data': data,
  ...extra,
});

describe('deserializeEntity / serializeEntity', () => {
  it('keeps unknown object names generically and round-trips them', () => {
    const p = prim('FancyNewThing', { a: 1, nested: prim('OtherThing', { b: [1, 2] }) }, { 'versioned_object.changes': ['a'] });
    const o = deserializeEntity(p) as VersionedObject;
    expect(o).toBeInstanceOf(VersionedObject);
    expect(o.name).toBe('FancyNewThing');
    expect(o.changes).toEqual(['a']);
    expect(o.get<VersionedObject>('nested')?.name).toBe('OtherThing');
    expect(serializeEntity(o)).toStrictEqual(p);
  });

  it('keeps fields it does not know, in order', () => {
    const p = prim('Volume', { zzz_future_field: { x: null }, id: 'b76d3472-e7e4-4b25-bf5b-bb3d10a61019', aaa: [] });
    const back = serializeEntity(deserializeEntity(p)) as Record<string, Record<string, unknown>>;
    expect(Object.keys(back['versioned_object.data']!)).toEqual(['zzz_future_field', 'id', 'aaa']);
    expect(back).toStrictEqual(p);
  });

  it('handles nested lists: ObjectList objects, lists of objects in plain dicts, lists of lists', () => {
    const att = (id: string) => prim('VolumeAttachment', { id });
    const p = {
      volume: prim('Volume', { volume_attachment: prim('VolumeAttachmentList', { objects: [att('1'), att('2')] }) }),
      many: [[att('3')], [], [{ deep: att('4') }]],
    };
    const d = deserializeEntity(p) as { volume: VersionedObject; many: unknown[][] };
    const list = d.volume.get<VersionedObject>('volume_attachment')!;
    expect(list.objects.map((o) => o.get('id'))).toEqual(['1', '2']);
    expect((d.many[0]![0] as VersionedObject).get('id')).toBe('3');
    expect(((d.many[2]![0] as Record<string, unknown>).deep as VersionedObject).get('id')).toBe('4');
    expect(serializeEntity(d)).toStrictEqual(p);
  });

  it('omits changes for clean objects and records set()', () => {
    const o = new VersionedObject('Volume', { id: 'x', status: 'creating' });
    expect(o.version).toBe('1.9');
    expect('versioned_object.changes' in o.toPrimitive()).toBe(false);
    o.set('status', 'available').set('status', 'in-use');
    expect(o.toPrimitive()['versioned_object.changes']).toEqual(['status']);
    expect(() => new VersionedObject('Unheard')).toThrow(/no known version/);
  });

  it('writes Dates in object fields like oslo isotime, elsewhere like jsonutils', () => {
    const d = new Date('2026-01-01T10:20:30.456Z');
    const o = new VersionedObject('Snapshot', { created_at: d, meta: { when: d } });
    const p = serializeEntity({ o, at: d }) as Record<string, Record<string, Record<string, unknown>>>;
    expect(p.o!['versioned_object.data']).toEqual({ created_at: '2026-01-01T10:20:30Z', meta: { when: '2026-01-01T10:20:30.456000' } });
    expect(p.at).toBe('2026-01-01T10:20:30.456000');
  });

  it('rejects malformed object primitives with InvalidInput naming the place', () => {
    const bad = (data: unknown) => deserializeEntity({ volume: { 'versioned_object.name': 'Volume', ...(data as object) } }, 'args');
    expect(() => bad({})).toThrow(CinderError);
    expect(() => bad({})).toThrow(/args\.volume: Volume has no versioned_object.namespace/);
    expect(() => bad({ 'versioned_object.namespace': 'cinder', 'versioned_object.version': 'one' })).toThrow(/bad versioned_object.version "one"/);
    expect(() => bad({ 'versioned_object.namespace': 'cinder', 'versioned_object.version': '1.9', 'versioned_object.data': [] })).toThrow(/data must be an object/);
    expect(() =>
      bad({ 'versioned_object.namespace': 'cinder', 'versioned_object.version': '1.9', 'versioned_object.data': {}, 'versioned_object.changes': 'x' }),
    ).toThrow(/changes must be a list/);
    expect(() => VersionedObject.fromPrimitive({ a: 1 }, 'vref')).toThrow(/vref: expected a versioned object primitive/);
  });
});

describe('datetimes', () => {
  it('parses the formats oslo sends', () => {
    const t = Date.UTC(2026, 10, 23, 19, 31, 39);
    expect(parseIsoDatetime('2026-11-23T19:31:39Z').getTime()).toBe(t);
    expect(parseIsoDatetime('2026-11-23T19:31:39+00:00').getTime()).toBe(t);
    expect(parseIsoDatetime('2026-11-23T19:31:39').getTime()).toBe(t); // naive = UTC
    expect(parseIsoDatetime('2026-11-23T19:31:39.596220').getTime()).toBe(t + 596);
    expect(parseIsoDatetime('2026-11-23T19:31:39.500255+00:00').getTime()).toBe(t + 500);
    expect(parseIsoDatetime('2026-11-23T21:31:39+02:00').getTime()).toBe(t);
    expect(parseIsoDatetime('2026-11-23T14:31:39-0500').getTime()).toBe(t);
    expect(parseIsoDatetime('2026-11-23 19:31:39').getTime()).toBe(t);
    expect(parseIsoDatetime('2026-11-23').getTime()).toBe(Date.UTC(2026, 10, 23));
  });

  it('rejects what is not a datetime', () => {
    for (const s of ['', 'yesterday', '2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-01-01T25:00:00Z', '2026-01-01T00:00:00+0x']) {
      expect(() => parseIsoDatetime(s)).toThrow();
    }
  });

  it('formats as Python does', () => {
    const d = new Date('2026-11-23T19:31:39.596Z');
    expect(formatOvoDatetime(d)).toBe('2026-11-23T19:31:39Z');
    expect(formatPerfectTime(d)).toBe('2026-11-23T19:31:39.596000');
    expect(formatPyIsoformat(d)).toBe('2026-11-23T19:31:39.596000');
    expect(formatPyIsoformat(d, { aware: true })).toBe('2026-11-23T19:31:39.596000+00:00');
    expect(formatPyIsoformat(new Date('2026-01-01T00:00:00Z'))).toBe('2026-01-01T00:00:00');
    expect(formatPyIsoformat(new Date('2026-01-01T00:00:00Z'), { aware: true })).toBe('2026-01-01T00:00:00+00:00');
  });

  it('datetime strings survive decode -> encode untouched, with and without microseconds', () => {
    const p = prim('Volume', { created_at: '2026-11-23T19:31:39Z', x: '2026-11-23T19:31:39.596220', y: '2026-11-23T19:31:39.500255+00:00' });
    expect(serializeEntity(deserializeEntity(p))).toStrictEqual(p);
  });
});
