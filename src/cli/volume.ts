// `cinderblock volume show ID|NAME` and `volume list`: one volume as the database, the backend
// and the target daemon each see it, and what does not agree among them (the question behind
// "why is this volume stuck"). Reads only. The CHAP secret is never read out: provider_auth is
// shown as its user name, and tgt/LIO give only account names here.
import type { BackendConfig, CinderConfig, ConfigSourceArg } from '../config/index.js';
import type { CinderDb, Volume, VolumeAttachment } from '../db/index.js';
import { volumeNameOf } from '../manager/flows/common.js';
import { CliFailure, emit, EXIT, keyValues, loadCliConfig, openCliDatabase, reportCloseFailure, runCli, table, type OutputOptions } from './output.js';
import { PER_HOST_LOCATION } from '../../drivers/host-target-exports.js';
import { chapUserOf, readBackendObject, readExport, readHostTargetExports, type BackendObject, type ExportView } from './inspect-backend.js';

export interface AttachmentView {
  id: string;
  status: string | null;
  host: string | null;
  instance: string | null;
  mountpoint: string | null;
  mode: string | null;
  initiator: string | null;
  attachedAt: Date | null;
}

export interface VolumeReport {
  volume: {
    id: string;
    name: string | null;
    backendName: string;
    status: string | null;
    attachStatus: string | null;
    migrationStatus: string | null;
    sizeGb: number | null;
    host: string | null;
    multiattach: boolean;
    providerLocation: string | null;
    chapUser: string | null;
    updatedAt: Date | null;
  };
  /** the configured backend the volume's host names, when it is one of this host's */
  backend: string | null;
  object: BackendObject | null;
  /** the per-volume target provider_location names; null per host */
  export: ExportView | null;
  /** target_layout = per-host: each compute host's target the volume is a LUN (nvmet: namespace) of */
  hostTargets: ExportView[];
  attachments: AttachmentView[];
  inconsistencies: string[];
}

/** What the target admits the attachment's host by: its iSCSI initiator, else its NVMe host NQN. */
function initiatorOf(connector: string | null): string | null {
  if (!connector) return null;
  try {
    const c = JSON.parse(connector) as { initiator?: unknown; nqn?: unknown };
    if (typeof c.initiator === 'string') return c.initiator;
    return typeof c.nqn === 'string' ? c.nqn : null;
  } catch {
    return null;
  }
}

/** The backend section of a volume's `host@backend#pool`, when this host serves it. */
export function backendOf(config: CinderConfig, host: string | null): BackendConfig | null {
  if (!host) return null;
  const backendHost = host.split('#')[0]!;
  return config.backends.find((b) => b.host === backendHost) ?? null;
}

const GiB = 1024 ** 3;
/** statuses in which the volume's data must exist on the backend */
const HAS_DATA = new Set(['available', 'in-use', 'maintenance', 'backing-up', 'restoring-backup', 'extending', 'detaching', 'attaching', 'reserved']);
const ATTACHED = new Set(['attached', 'attaching']);

/**
 * What disagrees between the row, the backend object, the export and the attachments. Each line
 * says what is wrong and what usually fixes it. Pure: tests feed it records.
 */
export function findInconsistencies(r: Omit<VolumeReport, 'inconsistencies'>): string[] {
  const out: string[] = [];
  const v = r.volume;
  const live = r.attachments.filter((a) => ATTACHED.has(a.status ?? ''));
  if (!r.backend) out.push(`host ${v.host ?? '(none)'} is not one of this host's backends: the backend and export are not looked at here`);
  if (v.status === 'in-use' && live.length === 0) out.push('status is in-use but no attachment is attached or attaching: a detach did not finish; `cinder reset-state --state available --attach-status detached` once nothing uses it');
  if (v.status === 'available' && live.length > 0) out.push(`status is available but ${live.length} attachment(s) are ${live.map((a) => a.status).join(', ')}: an attach did not finish or a detach lost its row update`);
  if (!v.multiattach && live.length > 1) out.push(`${live.length} live attachments of a volume that is not multiattach`);
  const o = r.object;
  if (r.backend && o) {
    if (o.error) out.push(`the backend object could not be read: ${o.error}`);
    else if (!o.exists && HAS_DATA.has(v.status ?? '')) out.push(`status is ${v.status} but ${o.path} does not exist: the data is gone or the volume lives elsewhere`);
    else if (o.exists && v.status === 'deleted') out.push(`${o.path} still exists for a deleted volume`);
    if (o.exists && o.sizeBytes !== null && v.sizeGb !== null && o.sizeBytes < v.sizeGb * GiB) out.push(`${o.path} holds ${o.sizeBytes} bytes, less than the volume's ${v.sizeGb} GiB: an extend did not finish`);
    if (o.kind === 'lv' && o.exists && o.active === false && live.length > 0) out.push(`${o.path} is not active while attached: initiators read I/O errors; \`lvchange -ay ${o.path.slice(5)}\``);
  }
  const e = r.export;
  if (r.backend && e) {
    if (e.error) out.push(`the export could not be read from ${e.helper}: ${e.error}`);
    else if (!e.present) {
      out.push(`provider_location names ${e.iqn} but ${e.helper} has no such target: restart the agent (it restores every export) or check the target daemon`);
    } else {
      if (e.luns.length === 0) out.push(`target ${e.iqn} has no LUN: initiators see no disk`);
      if (o?.path && e.luns.length > 0 && !e.luns.some((l) => l.backingPath === o.path)) out.push(`target ${e.iqn} serves ${e.luns.map((l) => l.backingPath ?? '-').join(', ')}, not ${o.path}`);
      const chap = v.chapUser;
      if (chap && !e.chapUsers.includes(chap)) out.push(`provider_auth names CHAP user ${chap} but the target has ${e.chapUsers.join(', ') || 'no account'}: logins with the stored credentials fail`);
      const attachedInitiators = new Set(live.map((a) => a.initiator).filter((i): i is string => i !== null));
      for (const i of attachedInitiators) if (!e.acls.includes(i) && !e.acls.includes('ALL')) out.push(`attached initiator ${i} is not in the target's ACL: it cannot log in again`);
      for (const acl of e.acls) if (acl.startsWith('iqn.') && !attachedInitiators.has(acl)) out.push(`ACL ${acl} has no live attachment: a detach did not revoke it`);
      for (const s of e.sessions ?? []) if (!attachedInitiators.has(s.initiator)) out.push(`session from ${s.initiator} (${s.addresses.join(', ') || 'no address'}) has no live attachment`);
    }
  }
  if (r.backend && v.providerLocation === PER_HOST_LOCATION) {
    for (const t of r.hostTargets) {
      const where = `${t.iqn}${t.host ? ` (host ${t.host})` : ''}`;
      if (t.error) out.push(`the host targets could not be read from ${t.helper}: ${t.error}`);
      else if (!t.present) out.push(`the registry maps this volume into ${where}, but ${t.helper} does not serve it there: restart the agent (it restores every export) or run \`cinderblock audit --fix\``);
      else if (o?.path && !t.luns.some((l) => l.backingPath === o.path)) out.push(`${where} serves ${t.luns.map((l) => l.backingPath ?? '-').join(', ')} for this volume, not ${o.path}`);
    }
    for (const a of live.filter((x) => x.status === 'attached' && x.host)) {
      if (!r.hostTargets.some((t) => t.host === a.host)) out.push(`attached to ${a.host} (attachment ${a.id}) but no host target of ${a.host} maps it: that host cannot reach it; \`cinderblock audit\` says more`);
    }
  }
  if (r.backend && !v.providerLocation && live.length > 0) out.push('attached but provider_location is empty: the export was never recorded');
  return out;
}

async function attachmentsOf(db: CinderDb, id: string): Promise<AttachmentView[]> {
  return (await db.attachments.listByVolume(id)).map((a: VolumeAttachment) => ({
    id: a.id,
    status: a.attach_status,
    host: a.attached_host,
    instance: a.instance_uuid,
    mountpoint: a.mountpoint,
    mode: a.attach_mode,
    initiator: initiatorOf(a.connector),
    attachedAt: a.attach_time,
  }));
}

export async function describeVolume(config: CinderConfig, db: CinderDb, row: Volume): Promise<VolumeReport> {
  const backend = backendOf(config, row.host);
  const name = volumeNameOf(row);
  const base: Omit<VolumeReport, 'inconsistencies'> = {
    volume: {
      id: row.id,
      name: row.display_name,
      backendName: name,
      status: row.status,
      attachStatus: row.attach_status,
      migrationStatus: row.migration_status,
      sizeGb: row.size,
      host: row.host,
      multiattach: Boolean(row.multiattach),
      providerLocation: row.provider_location,
      chapUser: chapUserOf(row.provider_auth),
      updatedAt: row.updated_at,
    },
    backend: backend?.name ?? null,
    object: backend ? await readBackendObject(config, backend, name) : null,
    export: backend && row.provider_location && row.provider_location !== PER_HOST_LOCATION ? await readExport(config, backend, row.provider_location) : null,
    hostTargets: backend && row.provider_location === PER_HOST_LOCATION ? await readHostTargetExports(config, backend, row.id) : [],
    attachments: await attachmentsOf(db, row.id),
  };
  return { ...base, inconsistencies: findInconsistencies(base) };
}

function gib(bytes: number | null): string | null {
  return bytes === null ? null : `${(bytes / GiB).toFixed(2)} GiB`;
}

export function formatVolume(r: VolumeReport): string {
  const v = r.volume;
  let out = keyValues([
    ['id', v.id],
    ['name', v.name],
    ['status', `${v.status ?? '-'} / ${v.attachStatus ?? '-'}${v.migrationStatus ? ` / migration ${v.migrationStatus}` : ''}`],
    ['size', `${v.sizeGb ?? '-'} GiB`],
    ['host', v.host],
    ['backend', r.backend ?? '(not on this host)'],
    ['multiattach', v.multiattach],
    ['provider_location', v.providerLocation],
    ['CHAP user', v.chapUser],
    ['updated', v.updatedAt],
  ]);
  const o = r.object;
  out += `\nbackend object\n`;
  out += o
    ? keyValues(
        [
          [o.kind === 'lv' ? 'LV' : 'file', o.path],
          ['exists', o.exists],
          ['size', gib(o.sizeBytes)],
          [o.kind === 'lv' ? 'used (thin)' : 'allocated', o.thinPool || o.kind === 'file' ? gib(o.usedBytes) : 'thick'],
          ...(o.kind === 'lv' ? ([['thin pool', o.thinPool], ['active', o.active], ['open', o.open]] as Array<[string, unknown]>) : []),
          ...(o.error ? ([['error', o.error]] as Array<[string, unknown]>) : []),
        ],
        '  ',
      )
    : '  -\n';
  const e = r.export;
  out += `\nexport\n`;
  if (!e) out += v.providerLocation === PER_HOST_LOCATION ? '  per host: see host targets\n' : v.providerLocation ? '  (not this host\'s backend)\n' : '  not exported (no provider_location)\n';
  else {
    out += keyValues(
      [
        ['target', `${e.iqn} (${e.helper}${e.present ? '' : ', MISSING on the daemon'})`],
        ['portals', e.portals],
        ['LUNs', e.luns.map((l) => `${l.lun}:${l.backingPath ?? '-'}`)],
        ['ACL', e.acls],
        ['CHAP users', e.chapUsers],
        ['sessions', e.sessions === null ? '(not read for this helper)' : e.sessions.map((s) => `${s.initiator}@${s.addresses.join('/') || '?'}`)],
        ...(e.error ? ([['error', e.error]] as Array<[string, unknown]>) : []),
      ],
      '  ',
    );
  }
  if (r.hostTargets.length > 0) {
    out += `\nhost targets (target_layout = per-host)\n`;
    for (const t of r.hostTargets) {
      out += keyValues(
        [
          ['target', `${t.iqn} (${t.helper}${t.present ? '' : ', MISSING on the daemon'})`],
          ['compute host', t.host ?? '-'],
          ['LUN', t.luns.map((l) => `${l.lun}:${l.backingPath ?? '-'}`)],
          ['admits', t.acls],
          ['CHAP users', t.chapUsers],
          ['sessions', t.sessions === null ? '(not read for this helper)' : t.sessions.map((x) => `${x.initiator}@${x.addresses.join('/') || '?'}`)],
          ...(t.error ? ([['error', t.error]] as Array<[string, unknown]>) : []),
        ],
        '  ',
      );
    }
  }
  out += `\nattachments\n`;
  out += r.attachments.length
    ? table(
        ['ID', 'STATUS', 'HOST', 'INSTANCE', 'MOUNTPOINT', 'MODE', 'INITIATOR', 'ATTACHED'],
        r.attachments.map((a) => [a.id, a.status, a.host, a.instance, a.mountpoint, a.mode, a.initiator, a.attachedAt]),
      )
    : '  none\n';
  out += `\ninconsistencies\n`;
  out += r.inconsistencies.length ? r.inconsistencies.map((i) => `  ! ${i}\n`).join('') : '  none\n';
  return out;
}

export async function volumeShowCommand(sources: ConfigSourceArg[], idOrName: string, opts: OutputOptions): Promise<void> {
  await runCli(async () => {
    const config = await loadCliConfig(sources);
    const db = await openCliDatabase(config);
    try {
      const rows = await db.inspect.findVolumes(idOrName);
      if (rows.length === 0) throw new CliFailure(`no volume has the id or name ${idOrName}`, EXIT.notFound);
      if (rows.length > 1) throw new CliFailure(`${rows.length} volumes are named ${idOrName}: ${rows.map((r) => r.id).join(', ')}; give an id`, EXIT.usage);
      const report = await describeVolume(config, db, rows[0]!);
      emit(opts, report, () => formatVolume(report));
      return report.inconsistencies.length ? EXIT.problems : EXIT.ok;
    } finally {
      await db.close().catch(reportCloseFailure('the database connection'));
    }
  });
}

export interface VolumeListOptions extends OutputOptions {
  host?: string;
  status?: string;
  all?: boolean;
}

export async function volumeListCommand(sources: ConfigSourceArg[], opts: VolumeListOptions): Promise<void> {
  await runCli(async () => {
    const config = await loadCliConfig(sources);
    const db = await openCliDatabase(config);
    try {
      // this host's backends unless told otherwise: the operator is on a storage host
      const hosts = opts.host ? [opts.host] : opts.all ? [] : config.backends.map((b) => b.host);
      const rows = await db.inspect.listVolumes({ hosts, ...(opts.status ? { status: opts.status } : {}) });
      const data = rows.map((r) => ({
        id: r.id,
        name: r.display_name,
        status: r.status,
        attachStatus: r.attach_status,
        sizeGb: r.size,
        host: r.host,
        exported: Boolean(r.provider_location),
        updatedAt: r.updated_at,
      }));
      emit(opts, data, () =>
        data.length
          ? table(['ID', 'NAME', 'STATUS', 'ATTACH', 'SIZE', 'HOST', 'EXPORTED', 'UPDATED'], data.map((d) => [d.id, d.name, d.status, d.attachStatus, d.sizeGb, d.host, d.exported, d.updatedAt]))
          : `no volumes${hosts.length ? ` on ${hosts.join(', ')}` : ''}${opts.status ? ` with status ${opts.status}` : ''}\n`,
      );
      return EXIT.ok;
    } finally {
      await db.close().catch(reportCloseFailure('the database connection'));
    }
  });
}
