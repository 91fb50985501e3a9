import { describe, expect, it } from 'vitest';
import { eventsRequestBody, eventsRequestHeaders, EVENT_MICROVERSION, readEventsResponse, volumeEvents } from '../../../src/nova/external-events.js';

describe("nova external events as cinder's compute.API sends them", () => {
  it('one volume-extended event per server, tagged with the volume, no status', () => {
    const body = eventsRequestBody(volumeEvents('volume-extended', ['s1', null], 'vol'));
    expect(body).toEqual({
      events: [
        { name: 'volume-extended', server_uuid: 's1', tag: 'vol' },
        { name: 'volume-extended', server_uuid: null, tag: 'vol' },
      ],
    });
    expect(JSON.stringify(body)).toBe('{"events":[{"name":"volume-extended","server_uuid":"s1","tag":"vol"},{"name":"volume-extended","server_uuid":null,"tag":"vol"}]}');
  });

  it('volume-reimaged has the same shape, at its own microversion', () => {
    expect(volumeEvents('volume-reimaged', ['s'], 'v')).toEqual([{ name: 'volume-reimaged', server_uuid: 's', tag: 'v' }]);
    expect(EVENT_MICROVERSION).toEqual({ 'volume-extended': '2.51', 'volume-reimaged': '2.93' });
  });

  it('headers: both microversion headers, the token only when there is one, the request id', () => {
    const h = eventsRequestHeaders('2.51', 'admin:admin', 'req-1');
    expect(h['X-OpenStack-Nova-API-Version']).toBe('2.51');
    expect(h['OpenStack-API-Version']).toBe('compute 2.51');
    expect(h['X-Auth-Token']).toBe('admin:admin');
    expect(h['X-OpenStack-Request-ID']).toBe('req-1');
    const none = eventsRequestHeaders('2.93', null, null);
    expect(none).not.toHaveProperty('X-Auth-Token');
    expect(none).not.toHaveProperty('X-OpenStack-Request-ID');
  });

  it('reads the answer as _send_events does', () => {
    // 207 with a per-event 404 (unknown instance): a warning, still delivered
    const unknown = readEventsResponse(207, { events: [{ name: 'volume-extended', code: 404, status: 'failed' }] });
    expect(unknown.delivered).toBe(true);
    expect(unknown.failedEvents).toHaveLength(1);
    expect(readEventsResponse(200, { events: [{ code: 200 }] })).toEqual({ delivered: true, failedEvents: [] });
    // an event without code fails the call
    expect(readEventsResponse(200, { events: [{ code: 200 }, { name: 'x' }] }).delivered).toBe(false);
    // HTTP errors (NotFound, 400 for a null server, 403 for a non-admin token) fail it
    for (const status of [400, 403, 404, 500]) expect(readEventsResponse(status, { events: [] }).delivered).toBe(false);
    // not a list
    expect(readEventsResponse(200, { events: 'x' }).delivered).toBe(false);
    expect(readEventsResponse(204, null).delivered).toBe(false);
  });
});
