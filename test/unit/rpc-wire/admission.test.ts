// What the server decides about a body before handling it (issue 10 items 4 and 6): real cinder
// traffic passes, oversized fields, foreign envelope versions and calls without a reply queue are
// refused with a reason that never quotes the message, and with the right reply address.
import { describe, expect, it } from 'vitest';
import { loadFixtures } from '../../helpers/fixtures.js';
import { admit, checkRequestBounds, messageKey, safeReason, unsupportedEnvelopeVersionError } from '../../../src/rpc/admission.js';
import { buildRequest, encodeEnvelope, jsonNestingExceeds } from '../../../src/rpc/envelope.js';
import { deserializeFailure, serializeFailure } from '../../../src/rpc/failure.js';
import { RPC_LIMITS } from '../../../src/rpc/limits.js';

const MIB = 1 << 20;
const ctx = { request_id: 'req-00000000-1111-2222-3333-444444444444', global_request_id: null, auth_token: 'SECRET-TOKEN-4242', user_id: 'u' };
const call = { msgId: 'a'.repeat(32), replyQueue: 'reply_0123456789abcdef0123456789abcdef', timeout: null };
const body = (inner: Record<string, unknown>, version: unknown = '2.0'): Buffer =>
  Buffer.from(JSON.stringify({ 'oslo.version': version, 'oslo.message': JSON.stringify(inner) }));
const request = (over: Partial<Parameters<typeof buildRequest>[0]> = {}): Record<string, unknown> =>
  buildRequest({ method: 'initialize_connection', args: { connector: { ip: '10.0.0.1' } }, version: '3.0', context: ctx, call, ...over });

describe('admission', () => {
  it('accepts every captured cinder request', () => {
    const fixtures = loadFixtures();
    expect(fixtures.length).toBeGreaterThan(30);
    for (const fx of fixtures) {
      const adm = admit(Buffer.from(fx.request.body_raw));
      expect(adm.ok, fx.file).toBe(true);
    }
  });

  it('accepts a request far larger than any captured one, but within the bounds', () => {
    const args = { volume: { 'versioned_object.data': { connection_info: 'c'.repeat(60_000), metadata: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'v'.repeat(255)])) } } };
    const inner = request({ args, context: { ...ctx, auth_token: 't'.repeat(1200), service_catalog: [{ type: 'image', endpoints: Array.from({ length: 50 }, () => ({ url: 'https://glance.example.org:9292/v2' })) }] } });
    expect(admit(Buffer.from(encodeEnvelope(inner))).ok).toBe(true);
  });

  it.each([
    ['_context_request_id', { request_id: `req-${'x'.repeat(MIB)}` }, 'context field request_id', RPC_LIMITS.maxRequestIdChars],
    ['_context_global_request_id', { global_request_id: 'g'.repeat(300) }, 'context field global_request_id', RPC_LIMITS.maxRequestIdChars],
    ['_context_user_identity', { user_identity: 'u'.repeat(5000) }, 'context field user_identity', RPC_LIMITS.maxContextStringChars],
    ['nested context', { service_catalog: [{ endpoints: [{ url: 'h'.repeat(5000) }] }] }, 'context field service_catalog.0.endpoints.0.url', RPC_LIMITS.maxContextStringChars],
  ])('refuses an oversized context string (%s) without quoting it, and answers the caller', (_n, extra, field, limit) => {
    const adm = admit(body(request({ context: { ...ctx, ...extra } })));
    expect(adm.ok).toBe(false);
    if (adm.ok) return;
    const r = adm.refusal;
    expect(r.kind).toBe('too-large');
    expect(r.reason).toContain(field);
    expect(r.reason).toContain(`at most ${limit}`);
    expect(r.reason.length).toBeLessThan(300);
    expect(r.address).toEqual({ msgId: call.msgId, replyQueue: call.replyQueue });
    expect(r.method).toBe('initialize_connection');
    // the ids that go on the log line are the bounded ones only
    expect(r.requestId === null || r.requestId.length <= RPC_LIMITS.maxRequestIdChars).toBe(true);
    const f = deserializeFailure(serializeFailure(r.error));
    expect(f).toMatchObject({ className: 'InvalidInput', module: 'cinder.exception' });
    expect(f.message).toContain(field);
    expect(JSON.stringify(r)).not.toContain('x'.repeat(300));
    expect(JSON.stringify(r)).not.toContain('SECRET-TOKEN-4242');
  });

  it('bounds args strings, keys and nesting', () => {
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 40; i++) {
      const next: Record<string, unknown> = {};
      cur.d = next;
      cur = next;
    }
    expect(checkRequestBounds(request({ args: { deep } }))).toMatchObject({ unit: 'levels', limit: RPC_LIMITS.maxDepth });
    expect(checkRequestBounds(request({ args: { s: 'x'.repeat(RPC_LIMITS.maxArgStringChars + 1) } }))).toMatchObject({ field: 'args.s', unit: 'characters' });
    expect(checkRequestBounds(request({ args: { ['k'.repeat(2000)]: 1 } }))).toMatchObject({ field: 'a key in args', size: 2000 });
    expect(checkRequestBounds(request({ method: 'm'.repeat(256) }))).toMatchObject({ field: 'method', size: 256, limit: 255 });
    expect(checkRequestBounds(request({ args: { s: 'x'.repeat(RPC_LIMITS.maxArgStringChars) } }))).toBeNull();
    // a 1M-deep array is refused before JSON.parse spends most of a second on it, and the caller
    // is still answered
    const inner = encodeEnvelope(request()).replace('{\\"connector', `{\\"a\\": ${'['.repeat(MIB)}${']'.repeat(MIB)}, \\"connector`);
    const adm = admit(Buffer.from(inner));
    expect(adm.ok ? null : adm.refusal).toMatchObject({ kind: 'too-large', reason: 'the request nests objects or arrays deeper than 32 levels', address: { msgId: call.msgId, replyQueue: call.replyQueue } });
    // exactly at the bound is fine: args is level 1, so maxDepth - 1 arrays inside it
    let d: unknown = 1;
    for (let i = 0; i < RPC_LIMITS.maxDepth - 1; i++) d = [d];
    expect(checkRequestBounds(request({ args: { d } }))).toBeNull();
    expect(checkRequestBounds(request({ args: { d: [d] } }))).toMatchObject({ unit: 'levels' });
    expect(admit(body(request({ args: { d } }))).ok).toBe(true);
    expect(admit(body(request({ args: { d: [d] } }))).ok).toBe(false);
  });

  it('jsonNestingExceeds skips strings, escapes included', () => {
    expect(jsonNestingExceeds('{"a": "[[[[[[", "b": "\\"[[[["}', 1)).toBe(false);
    expect(jsonNestingExceeds('{"a": [[1]]}', 2)).toBe(true);
    expect(jsonNestingExceeds('{"a": [[1]], "b": [[2]]}', 3)).toBe(false);
  });

  it('refuses a body over maxMessageBytes unparsed, and still finds where to answer', () => {
    const inner = request({ args: { blob: 'b'.repeat(RPC_LIMITS.maxMessageBytes) } });
    const adm = admit(Buffer.from(encodeEnvelope(inner)));
    expect(adm.ok).toBe(false);
    if (adm.ok) return;
    expect(adm.refusal).toMatchObject({ kind: 'too-large', method: 'initialize_connection', address: { msgId: call.msgId, replyQueue: call.replyQueue }, uniqueId: inner._unique_id });
    expect(adm.refusal.reason).toMatch(/^the message is \d+ bytes long; at most 4194304 are accepted$/);
  });

  it.each(['2.1', '3.0', '1.0', 2, null])('envelope version %j: refused with oslo UnsupportedRpcEnvelopeVersion to the caller', (v) => {
    const adm = admit(body(request(), v));
    expect(adm.ok).toBe(false);
    if (adm.ok) return;
    expect(adm.refusal.kind).toBe('envelope-version');
    expect(adm.refusal.address).toEqual({ msgId: call.msgId, replyQueue: call.replyQueue });
    expect(adm.refusal.requestId).toBe(ctx.request_id);
    const f = deserializeFailure(serializeFailure(adm.refusal.error));
    const text = v === null ? 'None' : String(v);
    expect(f).toMatchObject({
      className: 'UnsupportedRpcEnvelopeVersion',
      module: 'oslo_messaging._drivers.common',
      message: `Specified RPC envelope version, ${text}, not supported by this endpoint.`,
      args: [`Specified RPC envelope version, ${text}, not supported by this endpoint.`],
      kwargs: { version: text },
    });
  });

  it('a foreign envelope whose message cannot be read is refused with no one to answer', () => {
    const adm = admit(Buffer.from(JSON.stringify({ 'oslo.version': '3.0', 'oslo.message': 'not json' })));
    expect(adm.ok ? null : adm.refusal).toMatchObject({ kind: 'envelope-version', address: null });
  });

  it.each([
    ['missing', undefined, 'missing'],
    ['a number', 42, 'a number'],
    ['an object', { q: 1 }, 'a JSON object'],
    ['empty', '', 'an empty string'],
    ['null', null, 'null'],
  ])('a call whose _reply_q is %s cannot be answered: refused, no address', (_n, rq, described) => {
    const inner: Record<string, unknown> = { ...request() };
    if (rq === undefined) delete inner._reply_q;
    else inner._reply_q = rq;
    const adm = admit(body(inner));
    expect(adm.ok).toBe(false);
    if (adm.ok) return;
    expect(adm.refusal).toMatchObject({ kind: 'no-reply-queue', address: null, msgId: call.msgId, method: 'initialize_connection' });
    expect(adm.refusal.reason).toContain(`_reply_q is ${described}`);
  });

  it('keys for the poison guard: unique id, else msg id, else a digest of the body', () => {
    const b = body(request());
    const adm = admit(b);
    expect(messageKey(adm, b)).toMatch(/^id:[0-9a-f]{32}$/);
    const raw = Buffer.from('not json');
    expect(messageKey(admit(raw), raw)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('safeReason hides quoted fragments, even unterminated ones, in one pass', () => {
    expect(safeReason(new Error('bad version "SECRET" here'))).toBe('bad version "…" here');
    expect(safeReason(new Error(`x 'a\\'b' y`))).toBe('x "…" y');
    expect(safeReason(new Error(`unterminated "SECRET ${'z'.repeat(MIB)}`))).toBe('unterminated "…');
    expect(safeReason(new Error('q'.repeat(MIB))).length).toBe(300);
  });

  it('unsupportedEnvelopeVersionError never carries a long version', () => {
    expect(unsupportedEnvelopeVersionError('9'.repeat(MIB)).message).toBe('Specified RPC envelope version, <1048576-character string>, not supported by this endpoint.');
  });
});
