import { describe, expect, it } from 'vitest';
import {
  buildReply,
  buildRequest,
  decodeEnvelope,
  encodeEnvelope,
  MalformedMessage,
  newUniqueId,
  parseRequest,
  pyDumps,
  pyFloat,
} from '../../../src/rpc/envelope.js';
import { VersionedObject } from '../../../src/rpc/ovo.js';

const wrap = (inner: unknown, version: unknown = '2.0'): string => JSON.stringify({ 'oslo.version': version, 'oslo.message': JSON.stringify(inner) });

describe('decodeEnvelope', () => {
  it('unwraps a 2.0 envelope from bytes or text', () => {
    const body = wrap({ method: 'm', args: {} });
    expect(decodeEnvelope(Buffer.from(body))).toEqual({ method: 'm', args: {} });
    expect(decodeEnvelope(body)).toEqual({ method: 'm', args: {} });
  });

  it('takes a dict without both envelope keys as the message itself', () => {
    expect(decodeEnvelope('{"method": "m", "args": {}}')).toEqual({ method: 'm', args: {} });
    expect(decodeEnvelope('{"oslo.version": "2.0", "method": "m"}')).toEqual({ 'oslo.version': '2.0', method: 'm' });
  });

  it('accepts compatible envelope versions only', () => {
    expect(() => decodeEnvelope(wrap({ method: 'm' }, '2'))).toThrow(MalformedMessage);
    expect(decodeEnvelope(wrap({ method: 'm' }, '2.0.0'))).toEqual({ method: 'm' });
    expect(() => decodeEnvelope(wrap({ method: 'm' }, '2.1'))).toThrow(/unsupported oslo.version "2.1"/);
    expect(() => decodeEnvelope(wrap({ method: 'm' }, '3.0'))).toThrow(/unsupported oslo.version/);
    expect(() => decodeEnvelope(wrap({ method: 'm' }, 2))).toThrow(/unsupported oslo.version 2/);
  });

  it('rejects bodies that are not JSON objects, with the reason', () => {
    expect(() => decodeEnvelope('not json')).toThrow(/body is not JSON/);
    expect(() => decodeEnvelope(Buffer.from([0xff, 0xfe]))).toThrow(MalformedMessage);
    expect(() => decodeEnvelope('[1, 2]')).toThrow(/body is not a JSON object/);
    expect(() => decodeEnvelope('"x"')).toThrow(/body is not a JSON object/);
  });

  it('rejects a bad oslo.message', () => {
    expect(() => decodeEnvelope('{"oslo.version": "2.0", "oslo.message": {"method": "m"}}')).toThrow(/oslo.message is not a string/);
    expect(() => decodeEnvelope('{"oslo.version": "2.0", "oslo.message": "{nope"}')).toThrow(/oslo.message is not JSON/);
    expect(() => decodeEnvelope('{"oslo.version": "2.0", "oslo.message": "[1]"}')).toThrow(/oslo.message is not a JSON object/);
  });
});

describe('encodeEnvelope / pyDumps', () => {
  it('writes what Python json.dumps writes', () => {
    expect(encodeEnvelope({ result: null, ending: true })).toBe('{"oslo.version": "2.0", "oslo.message": "{\\"result\\": null, \\"ending\\": true}"}');
    expect(pyDumps({ a: [1, 2.5, 'x'], b: {}, c: [] })).toBe('{"a": [1, 2.5, "x"], "b": {}, "c": []}');
    expect(pyDumps('é\n\t"\\\u0001\u007f😀')).toBe('"\\u00e9\\n\\t\\"\\\\\\u0001\\u007f\\ud83d\\ude00"');
  });

  it('writes Python float reprs', () => {
    const cases: [number, string][] = [[3, '3.0'], [0, '0.0'], [-12, '-12.0'], [0.1, '0.1'], [1e-5, '1e-05'], [1e16, '1e+16'], [123.456, '123.456'], [1.5e-7, '1.5e-07'], [NaN, 'NaN'], [Infinity, 'Infinity']];
    for (const [v, s] of cases) expect(pyDumps(pyFloat(v))).toBe(s);
    expect(pyDumps(3)).toBe('3');
    expect(pyDumps(1e21)).toBe('1000000000000000000000');
  });

  it('drops undefined members, writes Dates like jsonutils, refuses class instances', () => {
    expect(pyDumps({ a: undefined, b: 1 })).toBe('{"b": 1}');
    expect(pyDumps(new Date('2026-01-02T03:04:05.678Z'))).toBe('"2026-01-02T03:04:05.678000"');
    expect(() => pyDumps(new Map())).toThrow(/Map is not JSON serializable/);
  });
});

describe('parseRequest', () => {
  const base = { method: 'initialize_connection', args: { connector: {} }, version: '3.0' };

  it('splits the oslo keys and the context', () => {
    const r = parseRequest({
      ...base,
      _msg_id: 'a1',
      _reply_q: 'reply_x',
      _timeout: null,
      _unique_id: 'u1',
      _context_request_id: 'req-1',
      _context_roles: ['admin'],
    });
    expect(r).toEqual({
      method: 'initialize_connection',
      args: { connector: {} },
      version: '3.0',
      namespace: null,
      uniqueId: 'u1',
      msgId: 'a1',
      replyQueue: 'reply_x',
      timeout: null,
      context: { request_id: 'req-1', roles: ['admin'] },
    });
  });

  it('defaults: no args is {}, no version is null, casts have no msg id', () => {
    const r = parseRequest({ method: 'publish_service_capabilities' });
    expect(r.args).toEqual({});
    expect(r.version).toBeNull();
    expect(r.msgId).toBeNull();
    expect(r.context).toEqual({});
  });

  it('keeps a usable call-monitor timeout and ignores others', () => {
    expect(parseRequest({ ...base, _msg_id: 'a', _reply_q: 'q', _timeout: 60 }).timeout).toBe(60);
    expect(parseRequest({ ...base, _msg_id: 'a', _reply_q: 'q', _timeout: 'x' }).timeout).toBeNull();
    expect(parseRequest({ ...base, _msg_id: 'a', _reply_q: 'q', _timeout: -1 }).timeout).toBeNull();
  });

  it('rejects requests without a method', () => {
    expect(() => parseRequest({ args: {} })).toThrow(/request has no method/);
    expect(() => parseRequest({ method: '', args: {} })).toThrow(MalformedMessage);
    expect(() => parseRequest({ method: 7, args: {} })).toThrow(/no method/);
  });

  it('rejects args of the wrong type', () => {
    expect(() => parseRequest({ method: 'm', args: [] })).toThrow(/args of m must be an object, got array/);
    expect(() => parseRequest({ method: 'm', args: 'x' })).toThrow(/got string/);
    expect(() => parseRequest({ method: 'm', args: null })).not.toThrow(); // null -> {} like a missing key
  });

  it('rejects bad versions, ids and calls without reply queue', () => {
    expect(() => parseRequest({ method: 'm', version: 3 })).toThrow(/version must be a string/);
    expect(() => parseRequest({ method: 'm', version: 'x.y' })).toThrow(/bad version/);
    expect(() => parseRequest({ method: 'm', _msg_id: 'a' })).toThrow(/no _reply_q/);
    expect(() => parseRequest({ method: 'm', _unique_id: 5 })).toThrow(/_unique_id must be a string/);
  });
});

describe('buildRequest / buildReply', () => {
  it('orders keys as oslo and adds a unique id', () => {
    const m = buildRequest({
      method: 'update_service_capabilities',
      args: { service_name: 'volume' },
      version: '3.3',
      context: { user: null, request_id: 'req-1' },
    });
    expect(Object.keys(m)).toEqual(['method', 'args', 'version', '_unique_id', '_context_user', '_context_request_id']);
    expect(m._unique_id).toMatch(/^[0-9a-f]{32}$/);
    const c = buildRequest({ method: 'm', args: {}, namespace: 'ns', version: '1.0', context: {}, call: { msgId: 'x', replyQueue: 'reply_q', timeout: null } });
    expect(Object.keys(c)).toEqual(['method', 'args', 'namespace', 'version', '_msg_id', '_reply_q', '_timeout', '_unique_id']);
  });

  it('serializes objects and dates in args and results', () => {
    const vt = new VersionedObject('VolumeType', { id: 'b76d3472-e7e4-4b25-bf5b-bb3d10a61019', created_at: new Date('2026-01-01T00:00:00.5Z') });
    const m = buildRequest({ method: 'm', args: { vt, when: new Date('2026-01-01T00:00:00Z') }, context: {} });
    expect(m.args).toEqual({
      vt: {
        'versioned_object.name': 'VolumeType',
        'versioned_object.namespace': 'cinder',
        'versioned_object.version': '1.3',
        'versioned_object.data': { id: 'b76d3472-e7e4-4b25-bf5b-bb3d10a61019', created_at: '2026-01-01T00:00:00Z' },
      },
      when: '2026-01-01T00:00:00.000000',
    });
    const r = buildReply({ msgId: 'abc', result: { x: pyFloat(1) }, failure: null, ending: true });
    expect(Object.keys(r)).toEqual(['result', 'failure', 'ending', '_msg_id', '_unique_id']);
    expect(encodeEnvelope({ ...r, _unique_id: 'u' })).toBe(
      '{"oslo.version": "2.0", "oslo.message": "{\\"result\\": {\\"x\\": 1.0}, \\"failure\\": null, \\"ending\\": true, \\"_msg_id\\": \\"abc\\", \\"_unique_id\\": \\"u\\"}"}',
    );
  });

  it('newUniqueId is uuid4 hex', () => {
    const id = newUniqueId();
    expect(id).toMatch(/^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    expect(newUniqueId()).not.toBe(id);
  });
});
