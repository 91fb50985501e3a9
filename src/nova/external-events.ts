// The body, headers and result reading of nova's os-server-external-events call, as cinder's
// compute/nova.py API sends it through python-novaclient. Pure: no I/O here (nova-client.ts posts).

/** The microversion cinder pins per event (nova.py extend_volume / reimage_volume). */
export const EVENT_MICROVERSION = {
  'volume-extended': '2.51',
  'volume-reimaged': '2.93',
} as const;

export type VolumeEventName = keyof typeof EVENT_MICROVERSION;

/**
 * One event as cinder builds it: no `status` (nova defaults it to `completed`). `server_uuid` is
 * null for an attachment without an instance, as cinder sends it; nova refuses such a request
 * (400) and the caller records the user message, as cinder does.
 */
export interface ServerExternalEvent {
  name: VolumeEventName;
  server_uuid: string | null;
  tag: string;
}

/** One event per server, each tagged with the volume (_get_volume_extended_event and _reimaged). */
export function volumeEvents(name: VolumeEventName, serverIds: ReadonlyArray<string | null>, volumeId: string): ServerExternalEvent[] {
  return serverIds.map((serverId) => ({ name, server_uuid: serverId, tag: volumeId }));
}

export function eventsRequestBody(events: readonly ServerExternalEvent[]): { events: ServerExternalEvent[] } {
  return { events: [...events] };
}

/**
 * The headers novaclient sends: both microversion headers (the legacy and the generic one), the
 * token when the auth plugin has one, and the request id nova logs and returns.
 */
export function eventsRequestHeaders(microversion: string, token: string | null, globalRequestId: string | null): Record<string, string> {
  const h: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json',
    'User-Agent': 'cinderblock',
    'X-OpenStack-Nova-API-Version': microversion,
    'OpenStack-API-Version': `compute ${microversion}`,
  };
  if (token !== null) h['X-Auth-Token'] = token;
  if (globalRequestId) h['X-OpenStack-Request-ID'] = globalRequestId;
  return h;
}

/** What _send_events makes of nova's answer. */
export interface EventsOutcome {
  /** false: cinder writes the NOTIFY_COMPUTE_SERVICE_FAILED (or REIMAGE_VOLUME_FAILED) message */
  delivered: boolean;
  /** why, when not delivered */
  error?: string;
  /** events nova answered with a code other than 200: only a warning for cinder */
  failedEvents: Array<Record<string, unknown>>;
}

/**
 * _send_events' reading of the response: an HTTP error is a failure (NotFound included); the
 * `events` list is required; an event without `code` fails the whole call; a code other than 200
 * (e.g. 404 for an unknown instance, inside a 207) is only a warning and the call still counts
 * as delivered.
 */
export function readEventsResponse(status: number, body: unknown): EventsOutcome {
  if (status >= 400) return { delivered: false, error: `nova answered HTTP ${status}`, failedEvents: [] };
  const events = body !== null && typeof body === 'object' ? (body as { events?: unknown }).events : undefined;
  if (!Array.isArray(events)) return { delivered: false, error: `nova answered HTTP ${status} without an events list`, failedEvents: [] };
  const failedEvents: Array<Record<string, unknown>> = [];
  let missingCode = false;
  for (const e of events) {
    const event = e !== null && typeof e === 'object' ? (e as Record<string, unknown>) : {};
    if (event.code === undefined || event.code === null) missingCode = true;
    else if (event.code !== 200) failedEvents.push(event);
  }
  if (missingCode) return { delivered: false, error: 'nova answered an event without a code', failedEvents };
  return { delivered: true, failedEvents };
}
