// The audit: what the targets export, against what the database says is attached. Its first
// question is OpenStack bug 2004555's: is any host able to reach a volume that is not attached to
// it? Then: does every LUN carry its own volume's serial, is anything exported for a volume that
// is gone, and does anything serve that nobody recorded.
//
// Run by `cinderblock audit [--fix]` and by the agent (at start, then every
// [cinderblock] audit_interval seconds: log and metric only, never a fix). An attach in progress
// has its LUN mapped a moment before its attachment row names the host, so a finding counts only
// when a second look, `settleMs` later, still sees it; and an attachment still `attaching`
// without a connector may be the one being made, so a mapping of its volume is not called an
// exposure.
//
// Per volume (cinder's layout, and volumes a backend switched to per-host still serves that way) the
// same question is asked of each target's admissions: an initiator (or, for nvmet, a host NQN) the
// target admits by name with no attachment of that volume from it can log in and read it.
//
// --fix removes only what cannot hold tenant data in use: a mapping or an initiator no attachment
// backs, a LUN nobody recorded or with the wrong serial (the host target is made to match its
// record again), a host target with no record, the export of a volume that is gone. It never
// deletes a volume's data and never adds access.
import type { BackendObject, VolumeDriver } from '../../drivers/driver.js';
import type { ExportInventory, VolumeExports } from '../../drivers/exports.js';
import { PER_HOST_LOCATION } from '../../drivers/host-target-exports.js';
import { ANY_HOST } from '../../drivers/targets/nvmet/nvmet-configfs.js';
import { isNqn } from '../../drivers/targets/validate.js';
import type { CinderDb, Volume, VolumeAttachment } from '../db/index.js';

export const FINDING_CLASSES = [
  'mapping-without-attachment',
  'unrecorded-lun',
  'serial-mismatch',
  'unadmitted-initiator',
  'orphan-host-target',
  'export-of-deleted-volume',
  'attachment-without-mapping',
  'object-without-volume',
] as const;
export type FindingClass = (typeof FINDING_CLASSES)[number];

export interface Finding {
  class: FindingClass;
  /** the per-volume target (not a host target) this is about; --fix revokes through it */
  perVolume?: { volumeName: string; providerLocation: string | null };
  /** an NVMe subsystem open to any host: the connectors of the volume's live attachments, which --fix admits alone */
  attachedConnectors?: Array<Record<string, unknown>>;
  /** exposure: a host may reach data not attached to it; lost-access: an attached host cannot; orphan: left over */
  kind: 'exposure' | 'lost-access' | 'orphan';
  backend: string;
  iqn?: string;
  lun?: number;
  volumeId?: string;
  host?: string;
  initiator?: string;
  /** what it means, for the operator */
  meaning: string;
  /** what --fix does about it; null: nothing (it is reported for a person to look at) */
  fix: string | null;
}

export interface AuditPorts {
  backend: string;
  /** the backend's host (host@backend): its volumes are those whose host is it or one of its pools */
  host: string;
  db: Pick<CinderDb, 'volumes' | 'attachments'>;
  exports: Pick<VolumeExports, 'inventory' | 'unmapFromHostTarget' | 'reapplyHostTarget' | 'removeExport' | 'terminateConnection' | 'ensureExport'>;
  /** the data side, for objects no volume row names; absent: not checked */
  driver?: Pick<VolumeDriver, 'listBackendObjects'>;
}

export interface AuditOptions {
  /** the second look (see the top); default 3000 ms, 0 = one look (tests of a quiet system) */
  settleMs?: number;
}

export interface FixAction {
  finding: Finding;
  done: boolean;
  error?: string;
}

const LIVE = new Set(['attached', 'attaching']);

function normSerial(s: string | null | undefined): string {
  return (s ?? '').replaceAll('-', '').trim().toLowerCase();
}

function connectorOf(a: VolumeAttachment): { host: string | null; initiator: string | null; nqn: string | null } | null {
  const c = parsedConnector(a)[0];
  if (!c) return null;
  const initiator = typeof c.initiator === 'string' && c.initiator !== '' ? c.initiator : null;
  const nqn = typeof c.nqn === 'string' && c.nqn !== '' ? c.nqn : null;
  // the host a host target is named for: nova's host, else what the target admits (HostTargetExports)
  const host = typeof c.host === 'string' && c.host !== '' ? c.host : (initiator ?? nqn);
  return { host, initiator, nqn };
}

function parsedConnector(a: VolumeAttachment): Array<Record<string, unknown>> {
  if (!a.connector) return [];
  try {
    const c = JSON.parse(a.connector) as unknown;
    return c !== null && typeof c === 'object' ? [c as Record<string, unknown>] : [];
  } catch {
    return [];
  }
}

interface Snapshot {
  inventory: ExportInventory;
  objects: BackendObject[];
  volumes: Map<string, Volume>;
  attachments: Map<string, VolumeAttachment[]>;
}

async function snapshot(p: AuditPorts): Promise<Snapshot> {
  const inventory = await p.exports.inventory();
  const objects = p.driver ? await p.driver.listBackendObjects() : [];
  const ids = new Set<string>();
  for (const t of inventory.hostTargets?.records ?? []) for (const m of t.luns) ids.add(m.volumeId);
  const volumes = new Map<string, Volume>();
  for (const v of await p.db.volumes.listByHost(p.host)) {
    volumes.set(v.id, v);
    ids.add(v.id);
  }
  for (const id of ids) {
    if (volumes.has(id)) continue;
    const v = await p.db.volumes.find(id);
    if (v) volumes.set(id, v);
  }
  const attachments = new Map<string, VolumeAttachment[]>();
  for (const id of ids) attachments.set(id, await p.db.attachments.listByVolume(id));
  // a volume object whose name id no row of this backend has: maybe another backend's, else orphaned
  for (const o of objects) {
    const id = /^volume-([0-9a-f-]{36})$/.exec(o.cinderName)?.[1];
    if (!id || [...volumes.values()].some((v) => (v._name_id ?? v.id) === id)) continue;
    const v = await p.db.volumes.find(id);
    if (v) volumes.set(v.id, v);
  }
  return { inventory, objects, volumes, attachments };
}

function findingsOf(p: AuditPorts, s: Snapshot): Finding[] {
  const out: Finding[] = [];
  const backend = p.backend;
  const ht = s.inventory.hostTargets;
  if (ht) {
    const liveByIqn = new Map(ht.live.map((l) => [l.iqn, l]));
    for (const t of ht.records) {
      const live = liveByIqn.get(t.iqn);
      for (const m of t.luns) {
        const vol = s.volumes.get(m.volumeId);
        if (!vol || vol.deleted) {
          out.push({ class: 'export-of-deleted-volume', kind: 'orphan', backend, iqn: t.iqn, lun: m.lun, volumeId: m.volumeId, host: t.host, meaning: `LUN ${m.lun} of host ${t.host}'s target serves volume ${m.volumeId}, which the database no longer has`, fix: `unmap LUN ${m.lun} from ${t.iqn}` });
          continue;
        }
        const atts = (s.attachments.get(m.volumeId) ?? []).filter((a) => LIVE.has(a.attach_status ?? ''));
        const fromHost = atts.some((a) => connectorOf(a)?.host === t.host);
        const beingMade = atts.some((a) => a.attach_status === 'attaching' && !a.connector);
        if (!fromHost && !beingMade) {
          out.push({ class: 'mapping-without-attachment', kind: 'exposure', backend, iqn: t.iqn, lun: m.lun, volumeId: m.volumeId, host: t.host, meaning: `host ${t.host} can still reach volume ${m.volumeId} (LUN ${m.lun}) but has no attachment of it: the bug 2004555 class`, fix: `unmap LUN ${m.lun} from ${t.iqn}` });
        }
        const liveLun = live?.luns.find((l) => l.lun === m.lun);
        if (live && liveLun && normSerial(liveLun.serial) !== normSerial(m.serial)) {
          out.push({ class: 'serial-mismatch', kind: 'exposure', backend, iqn: t.iqn, lun: m.lun, volumeId: m.volumeId, host: t.host, meaning: `LUN ${m.lun} of ${t.iqn} reports serial ${liveLun.serial ?? 'none'}, not volume ${m.volumeId}'s ${m.serial}`, fix: `rebuild LUN ${m.lun} from the record` });
        }
        if (fromHost && live && !liveLun) {
          out.push({ class: 'attachment-without-mapping', kind: 'lost-access', backend, iqn: t.iqn, lun: m.lun, volumeId: m.volumeId, host: t.host, meaning: `volume ${m.volumeId} is attached to ${t.host} as LUN ${m.lun}, but the target does not serve it`, fix: null });
        }
      }
      if (!live) continue;
      for (const l of live.luns) {
        if (!t.luns.some((m) => m.lun === l.lun)) {
          out.push({ class: 'unrecorded-lun', kind: 'exposure', backend, iqn: t.iqn, lun: l.lun, host: t.host, meaning: `LUN ${l.lun} of ${t.iqn} (${l.backingPath ?? 'no backing'}) is in no record: host ${t.host} reaches something nobody attached`, fix: `remove LUN ${l.lun} (the target is made to match its record)` });
        }
      }
      const admitted = new Set(t.luns.flatMap((m) => m.initiators.map((i) => i.toLowerCase())));
      for (const i of live.initiators) {
        if (!admitted.has(i.toLowerCase())) {
          out.push({ class: 'unadmitted-initiator', kind: 'exposure', backend, iqn: t.iqn, initiator: i, host: t.host, meaning: `${i} is admitted to host ${t.host}'s target without an attachment`, fix: `remove ${i} from ${t.iqn}` });
        }
      }
    }
    for (const l of ht.live) {
      if (!ht.records.some((t) => t.iqn === l.iqn)) {
        out.push({ class: 'orphan-host-target', kind: 'orphan', backend, iqn: l.iqn, meaning: `host target ${l.iqn} (${l.luns.length} LUN(s), ${l.sessions.length} session(s)) has no record`, fix: `remove ${l.iqn}, closing its sessions` });
      }
    }
    // attached per host, yet in no record of its host
    for (const [id, atts] of s.attachments) {
      const vol = s.volumes.get(id);
      if (!vol || vol.provider_location !== PER_HOST_LOCATION) continue;
      for (const a of atts.filter((x) => x.attach_status === 'attached')) {
        const host = connectorOf(a)?.host;
        if (!host) continue;
        const t = ht.records.find((r) => r.host === host);
        if (!t?.luns.some((m) => m.volumeId === id)) {
          out.push({ class: 'attachment-without-mapping', kind: 'lost-access', backend, volumeId: id, host, meaning: `volume ${id} is attached to ${host} (attachment ${a.id}) but no host target maps it`, fix: null });
        }
      }
    }
  }
  for (const o of s.objects) {
    if (o.isSnapshot) continue;
    const id = /^volume-([0-9a-f-]{36})$/.exec(o.cinderName)?.[1];
    if (!id) continue; // not a name cinder gives: someone else's object
    if ([...s.volumes.values()].some((v) => !v.deleted && (v._name_id ?? v.id) === id)) continue;
    out.push({ class: 'object-without-volume', kind: 'orphan', backend, volumeId: id, meaning: `backend object ${o.name} (${o.size} GiB${o.inUse ? ', open' : ''}) has no volume row: a crash mid-create or mid-delete, or data cinder forgot; \`cinder manage\` adopts it, or remove it by hand once you know it holds nothing anyone needs`, fix: null });
  }
  for (const e of s.inventory.perVolume) {
    const id = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(e.volumeName)?.[1];
    const vol = id ? [...s.volumes.values()].find((v) => v.id === id || v._name_id === id) : undefined;
    if (!vol || vol.deleted) {
      out.push({ class: 'export-of-deleted-volume', kind: 'orphan', backend, iqn: e.iqn, ...(id ? { volumeId: id } : {}), meaning: `target ${e.iqn} exports ${e.volumeName}, which the database no longer has`, fix: `remove the export ${e.iqn}` });
      continue;
    }
    // whom the target admits, each against the volume's live attachments (iSCSI by initiator
    // name, NVMe by host NQN); an attachment being made has no connector yet and may be anyone's
    const atts = (s.attachments.get(vol.id) ?? []).filter((a) => LIVE.has(a.attach_status ?? ''));
    if (atts.some((a) => a.attach_status === 'attaching' && !a.connector)) continue;
    const backed = new Set(atts.flatMap((a) => {
      const c = connectorOf(a);
      return [c?.initiator, c?.nqn].filter((x): x is string => Boolean(x)).map((x) => x.toLowerCase());
    }));
    for (const who of e.admitted ?? []) {
      if (backed.has(who.toLowerCase())) continue;
      const admitted = {
        class: 'unadmitted-initiator',
        kind: 'exposure',
        backend,
        iqn: e.iqn,
        volumeId: vol.id,
        initiator: who,
        // a row that says per-host while a per-volume target still serves it: the revoke must take the per-volume path
        perVolume: { volumeName: e.volumeName, providerLocation: vol.provider_location && vol.provider_location !== PER_HOST_LOCATION ? vol.provider_location : null },
      } as const;
      if (who === ANY_HOST) {
        out.push({
          ...admitted,
          attachedConnectors: atts.flatMap((a) => parsedConnector(a)),
          meaning: `${e.iqn} has attr_allow_any_host = 1 (as cinder's own nvmet helper leaves it): any machine that reaches its port can connect and read volume ${vol.id}`,
          fix: `close ${e.iqn} to all but the host NQNs of the volume's ${atts.length} live attachment(s)`,
        });
      } else {
        out.push({ ...admitted, meaning: `${e.iqn} admits ${who}, which has no attachment of volume ${vol.id}: it can log in and read the volume (the bug 2004555 class)`, fix: `remove ${who} from ${e.iqn}` });
      }
    }
  }
  return out;
}

function key(f: Finding): string {
  return [f.class, f.iqn ?? '', f.lun ?? '', f.volumeId ?? '', f.host ?? '', f.initiator ?? ''].join('|');
}

/** The findings that stand after a second look. */
export async function runAudit(p: AuditPorts, opts: AuditOptions = {}): Promise<Finding[]> {
  const first = findingsOf(p, await snapshot(p));
  const settle = opts.settleMs ?? 3000;
  if (first.length === 0 || settle === 0) return first;
  await new Promise((r) => setTimeout(r, settle));
  const again = new Set(findingsOf(p, await snapshot(p)).map(key));
  return first.filter((f) => again.has(key(f)));
}

/** --fix: each finding that has a fix, in order (exposures first); returns what was done. */
export async function fixFindings(p: AuditPorts, findings: readonly Finding[]): Promise<FixAction[]> {
  const order = { exposure: 0, orphan: 1, 'lost-access': 2 } as const;
  const actions: FixAction[] = [];
  const reapplied = new Set<string>();
  for (const f of [...findings].sort((a, b) => order[a.kind] - order[b.kind])) {
    if (f.fix === null) continue;
    try {
      if ((f.class === 'mapping-without-attachment' || (f.class === 'export-of-deleted-volume' && f.lun !== undefined)) && f.iqn && f.volumeId) {
        if (!p.exports.unmapFromHostTarget) throw new Error('this backend has no host targets');
        await p.exports.unmapFromHostTarget(f.iqn, f.volumeId);
      } else if (f.class === 'unadmitted-initiator' && f.perVolume && f.initiator === ANY_HOST && f.volumeId) {
        // the helper's restore with exactly the attached connectors: allow_any_host written 0, their NQNs admitted
        const volume = { id: f.volumeId, name: f.perVolume.volumeName, size: 0, providerLocation: f.perVolume.providerLocation ?? 'per-volume target found by the audit', providerAuth: null, multiattach: true };
        await p.exports.ensureExport(volume, [], f.attachedConnectors ?? []);
      } else if (f.class === 'unadmitted-initiator' && f.perVolume && f.initiator && f.volumeId) {
        // the helper's own revoke, as a detach of that initiator (or host NQN) with nothing left of it
        const who = f.initiator;
        const connector = isNqn(who) ? { nqn: who } : { initiator: who };
        const volume = { id: f.volumeId, name: f.perVolume.volumeName, size: 0, providerLocation: f.perVolume.providerLocation ?? 'per-volume target found by the audit', providerAuth: null, multiattach: true };
        await p.exports.terminateConnection(volume, connector, { force: false, remaining: [] });
      } else if (f.class === 'export-of-deleted-volume' && f.iqn) {
        const name = f.iqn.slice(f.iqn.lastIndexOf(':') + 1);
        await p.exports.removeExport({ id: f.volumeId ?? name, name, size: 0, providerLocation: 'leftover', providerAuth: null, multiattach: false });
      } else if (f.iqn) {
        if (reapplied.has(f.iqn)) {
          actions.push({ finding: f, done: true });
          continue;
        }
        if (!p.exports.reapplyHostTarget) throw new Error('this backend has no host targets');
        await p.exports.reapplyHostTarget(f.iqn);
        reapplied.add(f.iqn);
      }
      actions.push({ finding: f, done: true });
    } catch (err) {
      actions.push({ finding: f, done: false, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return actions;
}
