import { describe, expect, it } from 'vitest';
import { DuplicateMessageCache, NoSuchMethod, RpcDispatcher, UnsupportedVersion, versionIsCompatible } from '../../../src/rpc/dispatcher.js';
import type { IncomingRequest } from '../../../src/rpc/envelope.js';

function req(method: string, version: string | null, extra: Partial<IncomingRequest> = {}): IncomingRequest {
  return { method, args: {}, version, namespace: null, uniqueId: null, msgId: null, replyQueue: null, timeout: null, context: {}, ...extra };
}

describe('versionIsCompatible (oslo _utils.version_is_compatible)', () => {
  it.each([
    ['3.18', '3.0', true],
    ['3.18', '3.18', true],
    ['3.18', '3.19', false],
    ['3.18', '4.0', false],
    ['3.18', '2.9', false],
    ['3.18.1', '3.18.2', false],
    ['3.18', '3.17.9', true],
    [null, '9.9', true],
    ['3.0', null, false],
  ])('%s implements %s: %s', (imp, v, ok) => {
    expect(versionIsCompatible(imp, v)).toBe(ok);
  });
});

describe('RpcDispatcher', () => {
  const d = new RpcDispatcher([
    { version: '3.18', methods: { ping: (_c, a) => ({ pong: a.x ?? null }), _private: () => 1 } },
    { version: '1.0', namespace: 'other', methods: { other: () => 'o' } },
  ]);

  it('dispatches to a compatible endpoint', async () => {
    expect(await d.dispatch(req('ping', '3.5', { args: { x: 1 } }))).toEqual({ pong: 1 });
    expect(await d.dispatch(req('other', '1.0', { namespace: 'other' }))).toBe('o');
  });

  it('unknown or private method on a compatible endpoint → NoSuchMethod', async () => {
    await expect(d.dispatch(req('nope', '3.0'))).rejects.toBeInstanceOf(NoSuchMethod);
    await expect(d.dispatch(req('_private', '3.0'))).rejects.toMatchObject({
      className: 'NoSuchMethod',
      module: 'oslo_messaging.rpc.dispatcher',
      message: 'Endpoint does not support RPC method _private',
    });
  });

  it('no compatible endpoint → UnsupportedVersion', async () => {
    await expect(d.dispatch(req('ping', '4.0'))).rejects.toBeInstanceOf(UnsupportedVersion);
    await expect(d.dispatch(req('ping', '3.19'))).rejects.toMatchObject({
      className: 'UnsupportedVersion',
      module: 'oslo_messaging.rpc.dispatcher',
      message: 'Endpoint does not support RPC version 3.19. Attempted method: ping',
    });
    // namespace mismatch counts as not compatible
    await expect(d.dispatch(req('ping', '3.0', { namespace: 'zzz' }))).rejects.toBeInstanceOf(UnsupportedVersion);
  });

  it('missing version dispatches as 1.0', async () => {
    await expect(d.dispatch(req('ping', null))).rejects.toBeInstanceOf(UnsupportedVersion);
    expect(await d.dispatch(req('other', null, { namespace: 'other' }))).toBe('o');
  });
});

describe('DuplicateMessageCache', () => {
  it('remembers a bounded number of ids', () => {
    const c = new DuplicateMessageCache(3);
    for (const id of ['a', 'b', 'c', 'd']) c.add(id);
    expect(c.has('a')).toBe(false);
    expect(c.has('d')).toBe(true);
    expect(c.length).toBe(3);
    expect(c.has(null)).toBe(false);
  });
});
