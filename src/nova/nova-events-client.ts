// cinder's compute.API external events (cinder/compute/nova.py _send_events, extend_volume,
// reimage_volume) as a client: post the events, read nova's answer as cinder does, and say
// whether they were delivered. Writing the user message on failure is the manager's business
// (src/manager/flows/compute-events.ts); this module knows HTTP, not the database.
import type { Logger } from '../log.js';
import type { ComputeEvents } from '../manager/ports.js';
import { eventsRequestBody, eventsRequestHeaders, EVENT_MICROVERSION, readEventsResponse, volumeEvents, type VolumeEventName } from './external-events.js';
import type { NovaAccess } from './nova-access.js';
import { postJson } from './http-post-json.js';

/** The id nova logs for the call: the caller's global request id, else its own (context.global_id). */
function globalRequestId(ctx: Record<string, unknown>): string | null {
  const g = ctx.global_request_id ?? ctx.request_id;
  return typeof g === 'string' && g ? g : null;
}

export class NovaEventsClient implements ComputeEvents {
  constructor(
    private readonly access: NovaAccess,
    private readonly logger: Logger,
  ) {}

  volumeExtended(ctx: Record<string, unknown>, serverIds: ReadonlyArray<string | null>, volumeId: string): Promise<boolean> {
    return this.send(ctx, 'volume-extended', serverIds, volumeId);
  }

  volumeReimaged(ctx: Record<string, unknown>, serverIds: ReadonlyArray<string | null>, volumeId: string): Promise<boolean> {
    return this.send(ctx, 'volume-reimaged', serverIds, volumeId);
  }

  private async send(ctx: Record<string, unknown>, name: VolumeEventName, serverIds: ReadonlyArray<string | null>, volumeId: string): Promise<boolean> {
    const events = volumeEvents(name, serverIds, volumeId);
    const log = this.logger.child({ volume_id: volumeId });
    const access = this.access;
    if (!access.usable) {
      log.error({ events }, `Failed to notify nova on events: ${access.reason}`);
      return false;
    }
    const url = new URL(`${access.endpoint}/os-server-external-events`);
    const headers = eventsRequestHeaders(EVENT_MICROVERSION[name], access.token, globalRequestId(ctx));
    let outcome;
    try {
      const res = await postJson(url, headers, eventsRequestBody(events), { timeoutMs: access.timeoutMs, tls: access.tls });
      outcome = readEventsResponse(res.status, res.body);
      if (res.status === 404) log.warn({ events }, 'Nova returned NotFound for events.');
    } catch (err) {
      log.error({ err, events, nova: url.origin }, 'Failed to notify nova on events.');
      return false;
    }
    for (const event of outcome.failedEvents) log.warn({ event }, 'Nova event returned with failed status.');
    if (!outcome.delivered) {
      log.error({ events }, `Error response returned from nova: ${outcome.error ?? 'unknown'}`);
      return false;
    }
    log.info({ events: events.length }, `Nova accepted ${name} for volume ${volumeId}.`);
    return true;
  }
}
