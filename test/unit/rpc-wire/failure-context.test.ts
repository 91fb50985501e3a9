import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CinderError, invalidInput, volumeNotFound } from '../../../src/errors.js';
import { MalformedMessage } from '../../../src/rpc/envelope.js';
import { deserializeFailure, failureToError, serializeFailure } from '../../../src/rpc/failure.js';
import { adminContext, contextFromMessage, RequestContext } from '../../../src/rpc/context.js';

describe('serializeFailure', () => {
  it('writes a CinderError as oslo does, class and kwargs included, key order kept', () => {
    const s = serializeFailure(invalidInput('Connector has no initiator'));
    expect(s.startsWith('{"class": "InvalidInput", "module": "cinder.exception", "message": "Invalid input received: Connector has no initiator", "tb": [')).toBe(true);
    const f = deserializeFailure(s);
    expect(f.args).toEqual(['Invalid input received: Connector has no initiator']);
    // cinder's CinderException puts its class's code in kwargs (InvalidInput: 400); the catalog does too
    expect(f.kwargs).toEqual({ reason: 'Connector has no initiator', code: 400 });
    expect(f.tb[0]).toBe('Traceback (most recent call last):\n');
    expect(f.tb.some((l) => /^ {2}File ".*failure-context\.test\.ts", line \d+, in /.test(l))).toBe(true);
    expect(f.tb.at(-1)).toBe('cinder.exception.InvalidInput: Invalid input received: Connector has no initiator\n');
  });

  it('never sends a message kwarg (CinderException would get it twice)', () => {
    const e = new CinderError('boom', { className: 'VolumeBackendAPIException', kwargs: { data: 'x', message: 'dup' } });
    expect(deserializeFailure(serializeFailure(e)).kwargs).toEqual({ data: 'x' });
  });

  it('makes other errors a builtins Exception without kwargs', () => {
    const f = deserializeFailure(serializeFailure(new TypeError('cannot read x')));
    expect(f).toMatchObject({ className: 'Exception', module: 'builtins', message: 'cannot read x', args: ['cannot read x'], kwargs: {} });
    expect(f.tb.at(-1)).toBe('Exception: cannot read x\n');
    expect(deserializeFailure(serializeFailure('plain string')).message).toBe('plain string');
  });

  it('includes the cause chain like Python does for raise ... from', () => {
    const e = new CinderError('outer', { className: 'VolumeBackendAPIException', cause: new Error('inner') });
    const tb = deserializeFailure(serializeFailure(e)).tb;
    expect(tb).toContain('Exception: inner\n');
    expect(tb).toContain('\nThe above exception was the direct cause of the following exception:\n\n');
  });

  it('masks secrets in message, args, kwargs and traceback', () => {
    const e = new CinderError('tgtadm failed: incominguser alice s3cret password=hunter2', {
      className: 'VolumeBackendAPIException',
      kwargs: { data: 'CHAP alice s3cret', auth_password: 'hunter2' },
    });
    const s = serializeFailure(e);
    expect(s).not.toMatch(/s3cret|hunter2/);
    expect(deserializeFailure(s).kwargs.auth_password).toBe('***');
  });
});

describe('deserializeFailure', () => {
  it('fills oslo defaults and rejects non-JSON', () => {
    expect(deserializeFailure('{"class": "X"}')).toEqual({ className: 'X', module: '', message: '', args: [], kwargs: {}, tb: [] });
    expect(() => deserializeFailure('nope')).toThrow(MalformedMessage);
    expect(() => deserializeFailure('[]')).toThrow(/not a JSON object/);
  });

  it('round-trips into a CinderError', () => {
    const e = failureToError(deserializeFailure(serializeFailure(volumeNotFound('abc'))));
    expect(e).toMatchObject({ className: 'VolumeNotFound', module: 'cinder.exception', message: 'Volume abc could not be found.', kwargs: { volume_id: 'abc' } });
  });
});

describe('RequestContext', () => {
  const dict = {
    user_id: 'u', project_id: 'p', is_admin: false, roles: ['member'], read_deleted: 'no', request_id: 'req-1',
    global_request_id: 'req-g', timestamp: '2026-11-23T19:29:13.500255+00:00', auth_token: 'gAAAA-secret-token',
  };

  it('gives typed access and keeps the dict as is', () => {
    const c = contextFromMessage(dict);
    expect(c).toMatchObject({ userId: 'u', projectId: 'p', isAdmin: false, roles: ['member'], readDeleted: 'no', requestId: 'req-1', globalRequestId: 'req-g' });
    expect(c.timestampDate()?.toISOString()).toBe('2026-11-23T19:29:13.500Z');
    expect(c.toDict()).toEqual(dict);
    expect(c.logScope()).toEqual({ request_id: 'req-1', global_request_id: 'req-g' });
  });

  it('never shows auth_token when logged or inspected', () => {
    const c = new RequestContext(dict);
    expect(JSON.stringify(c)).not.toContain('secret');
    expect(inspect(c)).not.toContain('secret');
    expect(c.authToken).toBe('gAAAA-secret-token');
  });

  it('elevated() adds admin without touching the original', () => {
    const c = new RequestContext(dict);
    const e = c.elevated();
    expect(e.isAdmin).toBe(true);
    expect(e.roles).toEqual(['member', 'admin']);
    expect(c.roles).toEqual(['member']);
  });

  it('rejects context values cinder could not load', () => {
    expect(() => contextFromMessage({ read_deleted: 'maybe' })).toThrow(/read_deleted/);
    expect(() => contextFromMessage({ timestamp: 'noon' })).toThrow(/timestamp/);
    expect(() => contextFromMessage({ roles: 'admin' })).toThrow(/roles/);
    expect(() => contextFromMessage({ is_admin: 'yes' })).toThrow(/is_admin/);
  });

  it('adminContext looks like get_admin_context()', () => {
    const c = adminContext({ now: new Date('2026-01-01T00:00:00.123Z') });
    expect(c.requestId).toMatch(/^req-[0-9a-f-]{36}$/);
    expect(c.dict.timestamp).toBe('2026-01-01T00:00:00.123000');
    expect(c).toMatchObject({ isAdmin: true, roles: ['admin'], userId: null, projectId: null });
  });
});
