// Which initiators the database says may log in to a volume's export: the connector initiators of
// its attachments that are attached or attaching. This is the one answer every restore of an
// export uses (start-up, a lost target daemon), whatever the target helper's own record says.
import type { Connector } from '../../../drivers/exports.js';
import type { FlowDeps } from './common.js';

export interface AttachedInitiators {
  /** attachments attached or attaching, with or without a connector */
  live: number;
  /** their distinct connector initiators */
  initiators: string[];
  /** their distinct connector NQNs (what an NVMe-oF target admits; an NVMe-only host has no initiator) */
  hostNqns: string[];
  /** their connectors (a per-host layout needs the host, not only the initiator) */
  connectors: Connector[];
  /**
   * for each of `connectors`, the connection_info cinder-api stored for that attachment (what the
   * host was told: target, LUN, CHAP), or null: a per-host restore that lost its record keeps them
   */
  given: Array<Record<string, unknown> | null>;
}

export async function attachedInitiators(deps: FlowDeps, volumeId: string): Promise<AttachedInitiators> {
  const live = (await deps.db.attachments.listByVolume(volumeId)).filter((a) => a.attach_status === 'attached' || a.attach_status === 'attaching');
  const initiators: string[] = [];
  const hostNqns: string[] = [];
  const connectors: Connector[] = [];
  const given: Array<Record<string, unknown> | null> = [];
  for (const a of live) {
    if (!a.connector) continue;
    try {
      const c = JSON.parse(a.connector) as Connector;
      if (c === null || typeof c !== 'object') continue;
      connectors.push(c);
      given.push(parseObject(a.connection_info));
      if (typeof c.initiator === 'string' && !initiators.includes(c.initiator)) initiators.push(c.initiator);
      if (typeof c.nqn === 'string' && !hostNqns.includes(c.nqn)) hostNqns.push(c.nqn);
    } catch {
      // an unreadable connector grants nothing
    }
  }
  return { live: live.length, initiators, hostNqns, connectors, given };
}

function parseObject(text: string | null): Record<string, unknown> | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null; // unreadable: the restore allocates as if none had been stored
  }
}
