// initialize_connection, terminate_connection, attachment_update, attachment_delete,
// remove_export and the legacy attach_volume/detach_volume (manager.py).
import type { Connector, ConnectionInfo } from '../../../drivers/driver.js';
import type { Volume, VolumeAttachment } from '../../db/index.js';
import { CinderError } from '../../errors.js';
import { formatOvoDatetime, VersionedObject } from '../../rpc/ovo.js';
import { volumeFromPrimitive } from '../../rpc/ovo-schemas.js';
import {
  backendError,
  driverVolume,
  errorMessage,
  getVolume,
  invalidInput,
  invalidVolume,
  optionalBool,
  requireDict,
  requireDriver,
  requireUuid,
  withLock,
  type FlowDeps,
} from './common.js';

const INITIATOR_RE = /^(iqn\.\d{4}-\d{2}\.[^\s;|&$`'"\\<>()]+|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;

/** The connector dict: validated by the driver (InvalidConnectorException => InvalidInput), then checked. */
function validateConnector(deps: FlowDeps, raw: unknown): Connector {
  const connector = requireDict(raw, 'connector') as Connector;
  try {
    deps.driver.validateConnector(connector);
  } catch (err) {
    if (err instanceof CinderError && err.className === 'InvalidConnectorException') throw invalidInput(err.message);
    if (err instanceof CinderError && err.className === 'InvalidInput') throw invalidInput(String(err.kwargs.reason ?? err.message));
    throw backendError(`Validate volume connection failed (error: ${errorMessage(err)}).`, err);
  }
  const initiator = connector.initiator;
  if (typeof initiator !== 'string' || !INITIATOR_RE.test(initiator)) {
    throw invalidInput(`connector initiator ${JSON.stringify(initiator)} is not an iSCSI name`);
  }
  for (const key of ['host', 'mountpoint', 'mode'] as const) {
    const v = connector[key];
    if (v !== undefined && v !== null && typeof v !== 'string') throw invalidInput(`connector ${key} must be a string`);
  }
  return connector;
}

/** _parse_connection_options: qos_specs, access_mode, encrypted, cacheable. */
async function parseConnectionOptions(deps: FlowDeps, vol: Volume, info: ConnectionInfo): Promise<ConnectionInfo> {
  const data = info.data;
  let specs: Record<string, unknown> | null = null;
  if (vol.volume_type_id) {
    const { qos_specs: qos } = await deps.db.volumeTypes.qosSpecsForType(vol.volume_type_id);
    if (qos && (qos.consumer === 'front-end' || qos.consumer === 'both')) {
      specs = { ...(qos.specs ?? {}) } as Record<string, unknown>;
      const size = vol.size ?? 0;
      for (const option of ['read_iops_sec', 'read_bytes_sec', 'write_iops_sec', 'write_bytes_sec', 'total_iops_sec', 'total_bytes_sec']) {
        const perGb = `${option}_per_gb`;
        if (perGb in specs) {
          const minKey = `${option}_per_gb_min`;
          const maxKey = `${option}_max`;
          const minimum = Number.parseInt(String(specs[minKey] ?? 0), 10);
          delete specs[minKey];
          const value = Number.parseInt(String(specs[perGb]), 10) * size;
          const perGbValue = Math.max(minimum, value);
          const max = Number.parseInt(String(specs[maxKey] ?? perGbValue), 10);
          delete specs[maxKey];
          specs[option] = Math.min(perGbValue, max);
          delete specs[perGb];
        }
      }
    }
  }
  data.qos_specs = specs;
  const admin = await deps.db.volumes.adminMetadataGet(vol.id).catch(() => ({}) as Record<string, string | null>);
  data.access_mode = admin.attached_mode ?? (admin.readonly === 'True' ? 'ro' : 'rw');
  if (data.encrypted === undefined || data.encrypted === null) data.encrypted = Boolean(vol.encryption_key_id);
  if (vol.volume_type_id) {
    const extra = await deps.db.volumeTypes.extraSpecs(vol.volume_type_id).catch(() => ({}) as Record<string, string | null>);
    const cacheable = extra.cacheable === '<is> True';
    data.cacheable = data.cacheable !== undefined && data.cacheable !== null ? Boolean(data.cacheable) && cacheable : cacheable;
  }
  if ((data.discard === undefined || data.discard === null) && deps.reportDiscardSupported) data.discard = true;
  return info;
}

/** create_export + save provider_* + initialize_connection + options (shared by both paths). */
async function connect(deps: FlowDeps, vol: Volume, connector: Connector): Promise<ConnectionInfo> {
  let row = vol;
  try {
    const model = await deps.driver.createExport(driverVolume(row));
    if (model) {
      await deps.db.volumes.update(row.id, model);
      row = { ...row, ...model };
    }
  } catch (err) {
    throw backendError(`Create export of volume failed (${errorMessage(err)})`, err);
  }
  let info: ConnectionInfo;
  try {
    info = await deps.driver.initializeConnection(driverVolume(row), connector);
  } catch (err) {
    await deps.driver.removeExport(driverVolume(row)).catch(() => undefined);
    throw backendError(`Driver initialize connection failed (error: ${errorMessage(err)}).`, err);
  }
  return parseConnectionOptions(deps, row, info);
}

export async function initializeConnection(deps: FlowDeps, _ctx: Record<string, unknown>, args: Record<string, unknown>): Promise<ConnectionInfo> {
  const volume = volumeFromPrimitive(args.volume);
  requireDriver(deps);
  const connector = validateConnector(deps, args.connector);
  const vol = await getVolume(deps, volume.data.id);
  const info = await connect(deps, vol, connector);
  deps.logger.info({ volume_id: vol.id }, 'Initialize volume connection completed successfully.');
  return info;
}

/** Other live attachments of the volume using the same initiator keep its ACL. */
async function sharedByOthers(deps: FlowDeps, volumeId: string, connector: Connector | null, exceptAttachment: string | null): Promise<{ keepAcl: boolean; others: number }> {
  const live = (await deps.db.attachments.listByVolume(volumeId)).filter(
    (a) => a.id !== exceptAttachment && (a.attach_status === 'attached' || a.attach_status === 'attaching'),
  );
  const initiator = connector?.initiator;
  const keepAcl = live.some((a) => {
    if (!a.connector || !initiator) return false;
    try {
      return (JSON.parse(a.connector) as Connector).initiator === initiator;
    } catch {
      return false;
    }
  });
  return { keepAcl, others: live.length };
}

export async function terminateConnection(deps: FlowDeps, _ctx: Record<string, unknown>, args: Record<string, unknown>): Promise<null> {
  const volumeId = requireUuid(args.volume_id, 'volume_id');
  const force = optionalBool(args.force, 'force', false);
  const connector = args.connector === null || args.connector === undefined ? null : (requireDict(args.connector, 'connector') as Connector);
  requireDriver(deps);
  const vol = await getVolume(deps, volumeId);
  const { keepAcl } = await sharedByOthers(deps, volumeId, connector, null);
  try {
    await deps.driver.terminateConnection(driverVolume(vol), connector, { force, keepAcl });
  } catch (err) {
    throw backendError(`Terminate volume connection failed: ${errorMessage(err)}`, err);
  }
  deps.logger.info({ volume_id: volumeId }, 'Terminate volume connection completed successfully.');
  return null;
}

export async function attachmentUpdate(deps: FlowDeps, _ctx: Record<string, unknown>, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const vref = volumeFromPrimitive(args.vref, 'vref');
  const attachmentId = requireUuid(args.attachment_id, 'attachment_id');
  requireDriver(deps);
  const connector = validateConnector(deps, args.connector);
  let mode = typeof connector.mode === 'string' ? connector.mode : 'rw';
  const attachment = await deps.db.attachments.get(attachmentId);
  if (attachment.volume_id !== vref.data.id) throw invalidInput(`attachment ${attachmentId} is not an attachment of volume ${vref.data.id}`);
  if (attachment.attach_mode !== 'null' && attachment.attach_mode) {
    mode = attachment.attach_mode;
    connector.mode = mode;
  }
  const vol = await getVolume(deps, vref.data.id);
  const info = await connect(deps, vol, connector);
  const flat: Record<string, unknown> = { ...info.data, driver_volume_type: info.driver_volume_type };
  await deps.db.attachments.update(attachmentId, { attach_status: 'attaching', connector: JSON.stringify(connector) });
  flat.attachment_id = attachmentId;
  await deps.db.attachments.volumeAttached(
    attachmentId,
    attachment.instance_uuid,
    typeof connector.host === 'string' ? connector.host : '',
    typeof connector.mountpoint === 'string' ? connector.mountpoint : 'na',
    mode,
    false,
  );
  deps.logger.info({ volume_id: vol.id, attachment_id: attachmentId }, 'attachment_update completed successfully.');
  return flat;
}

/** _connection_terminate: true when the export is shared with other attachments. */
async function connectionTerminate(deps: FlowDeps, vol: Volume, attachment: VolumeAttachment, force = false): Promise<boolean | null> {
  requireDriver(deps);
  const connector = attachment.connector ? (JSON.parse(attachment.connector) as Connector) : null;
  if (!connector && !force) return null;
  const { keepAcl, others } = await sharedByOthers(deps, vol.id, connector, attachment.id);
  await deps.driver.terminateConnection(driverVolume(vol), connector, { force, keepAcl });
  return others > 0;
}

export async function attachmentDelete(deps: FlowDeps, _ctx: Record<string, unknown>, args: Record<string, unknown>): Promise<null> {
  const attachmentId = requireUuid(args.attachment_id, 'attachment_id');
  const vref = volumeFromPrimitive(args.vref, 'vref');
  const vol = await getVolume(deps, vref.data.id);
  const attachment = await deps.db.attachments.get(attachmentId);
  let shared: boolean | null;
  try {
    shared = await connectionTerminate(deps, vol, attachment);
  } catch (err) {
    await deps.db.attachments.update(attachmentId, { attach_status: 'error_detaching' });
    throw err;
  }
  if (!shared) {
    try {
      await deps.driver.removeExport(driverVolume(vol));
    } catch (err) {
      deps.logger.error({ err, volume_id: vol.id }, 'Detach volume failed, due to remove-export failure.');
    }
  }
  return null;
}

export async function removeExport(deps: FlowDeps, _ctx: Record<string, unknown>, args: Record<string, unknown>): Promise<null> {
  const volumeId = requireUuid(args.volume_id, 'volume_id');
  requireDriver(deps);
  const vol = await getVolume(deps, volumeId);
  try {
    await deps.driver.removeExport(driverVolume(vol));
  } catch (err) {
    throw backendError(`Remove volume export failed: ${errorMessage(err)}`, err);
  }
  deps.logger.info({ volume_id: volumeId }, 'Remove volume export completed successfully.');
  return null;
}

function attachmentObject(a: VolumeAttachment): VersionedObject {
  const d = (x: Date | null) => (x ? formatOvoDatetime(x) : null);
  return new VersionedObject('VolumeAttachment', {
    id: a.id,
    volume_id: a.volume_id,
    instance_uuid: a.instance_uuid,
    attached_host: a.attached_host,
    mountpoint: a.mountpoint,
    attach_time: d(a.attach_time),
    detach_time: d(a.detach_time),
    attach_status: a.attach_status,
    attach_mode: a.attach_mode,
    created_at: d(a.created_at),
    updated_at: d(a.updated_at),
    deleted_at: d(a.deleted_at),
    deleted: Boolean(a.deleted),
  });
}

export async function attachVolume(deps: FlowDeps, _ctx: Record<string, unknown>, args: Record<string, unknown>): Promise<VersionedObject> {
  const volumeId = requireUuid(args.volume_id, 'volume_id');
  const instanceUuid = args.instance_uuid === null || args.instance_uuid === undefined ? null : requireUuid(args.instance_uuid, 'instance_uuid');
  const optStr = (v: unknown, field: string): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw invalidInput(`${field} must be a string`);
    return v;
  };
  const hostName = optStr(args.host_name, 'host_name');
  const mountpoint = optStr(args.mountpoint, 'mountpoint');
  const mode = optStr(args.mode, 'mode') ?? 'rw';
  if (mode !== 'rw' && mode !== 'ro') throw invalidInput(`mode must be rw or ro`);
  return withLock(deps, volumeId, true, async () => {
    const vol = await getVolume(deps, volumeId);
    const admin = await deps.db.volumes.adminMetadataGet(volumeId).catch(() => ({}) as Record<string, string | null>);
    if (vol.status === 'attaching' && admin.attached_mode && admin.attached_mode !== mode) throw invalidVolume('being attached by different mode');
    const existing = (await deps.db.attachments.listByVolume(volumeId)).find(
      (a) => (instanceUuid ? a.instance_uuid === instanceUuid : a.attached_host === hostName) && a.attach_status !== 'detached',
    );
    if (existing) {
      await deps.db.volumes.update(volumeId, { status: 'in-use' });
      return attachmentObject(existing);
    }
    if (vol.status === 'in-use' && !vol.multiattach && !vol.migration_status) {
      throw invalidVolume('volume is already attached and multiple attachments are not enabled');
    }
    // Volume.begin_attach
    const att = await deps.db.attachments.create({
      volume_id: volumeId,
      created_at: deps.db.now(),
      updated_at: null,
      deleted_at: null,
      deleted: false,
      instance_uuid: null,
      attached_host: null,
      mountpoint: null,
      attach_time: null,
      detach_time: null,
      attach_status: 'attaching',
      attach_mode: mode,
      connection_info: null,
      connector: null,
    });
    await deps.db.volumes.adminMetadataUpdate(volumeId, { attached_mode: mode });
    await deps.db.volumes.update(volumeId, { attach_status: 'attaching' });
    try {
      if (admin.readonly === 'True' && mode !== 'ro') {
        throw new CinderError(`Invalid attaching mode '${mode}' for volume ${volumeId}.`, { className: 'InvalidVolumeAttachMode', kwargs: { mode, volume_id: volumeId, code: 400 } });
      }
      requireDriver(deps);
    } catch (err) {
      await deps.db.attachments.update(att.id, { attach_status: 'error_attaching' });
      throw err;
    }
    // attachment.finish_attach
    await deps.db.attachments.volumeAttached(att.id, instanceUuid, hostName, mountpoint, mode, true);
    deps.logger.info({ volume_id: volumeId }, 'Attach volume completed successfully.');
    return attachmentObject(await deps.db.attachments.get(att.id));
  });
}

export async function detachVolume(deps: FlowDeps, _ctx: Record<string, unknown>, args: Record<string, unknown>): Promise<null> {
  const volumeId = requireUuid(args.volume_id, 'volume_id');
  const attachmentId = args.attachment_id === null || args.attachment_id === undefined ? null : requireUuid(args.attachment_id, 'attachment_id');
  return withLock(deps, `${volumeId}-detach_volume`, true, async () => {
    const vol = await getVolume(deps, volumeId);
    const live = (await deps.db.attachments.listByVolume(volumeId)).filter((a) => a.attach_status !== 'detached');
    let attachment: VolumeAttachment | undefined;
    if (attachmentId) {
      attachment = live.find((a) => a.id === attachmentId);
      if (!attachment) {
        // cinder: not found => treat as detached already.
        await deps.db.volumes.updateStatusBasedOnAttachment(volumeId).catch(() => undefined);
        return null;
      }
    } else {
      if (live.length > 1) throw invalidVolume('Detach volume failed: More than one attachment, but no attachment_id provided.');
      attachment = live[0];
      if (!attachment) {
        await deps.db.volumes.update(volumeId, { status: 'available', attach_status: 'detached' });
        return null;
      }
    }
    try {
      requireDriver(deps);
    } catch (err) {
      await deps.db.attachments.update(attachment.id, { attach_status: 'error_detaching' });
      throw err;
    }
    await deps.db.attachments.volumeDetached(volumeId, attachment.id);
    await deps.db.volumes.adminMetadataDelete(volumeId, 'attached_mode').catch(() => undefined);
    const remaining = (await deps.db.attachments.listByVolume(volumeId)).filter((a) => a.attach_status !== 'detached');
    if (remaining.length === 0) {
      try {
        await deps.driver.removeExport(driverVolume(vol));
      } catch (err) {
        throw backendError(`Remove volume export failed: ${errorMessage(err)}`, err);
      }
    }
    deps.logger.info({ volume_id: volumeId }, 'Detach volume completed successfully.');
    return null;
  });
}
