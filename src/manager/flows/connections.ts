// initialize_connection, terminate_connection, attachment_update, attachment_delete,
// remove_export and the legacy attach_volume/detach_volume (manager.py).
import type { Connector, ConnectionInfo } from '../../../drivers/exports.js';
import type { Volume, VolumeAttachment } from '../../db/index.js';
import { CinderError, invalidInput, invalidVolume, invalidVolumeAttachMode, volumeBackendApiException } from '../../errors.js';
import { formatOvoDatetime, VersionedObject } from '../../rpc/ovo.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { withInitiatorHost, withVolumeConnections } from './connection-locks.js';
import {
  driverVolume,
  errorMessage,
  getVolume,
  requireDriver,
  withLock,
  type FlowDeps,
} from './common.js';

/**
 * The driver's validate_connector (InvalidConnectorException => InvalidInput, as cinder's manager
 * turns it); the connector's shape and initiator name are checked by its RPC schema already.
 */
function validateConnector(deps: FlowDeps, connector: Connector): Connector {
  try {
    deps.exports.validateConnector(connector);
  } catch (err) {
    if (err instanceof CinderError && err.className === 'InvalidConnectorException') throw invalidInput(err.message);
    if (err instanceof CinderError && err.className === 'InvalidInput') throw invalidInput(String(err.kwargs.reason ?? err.message));
    throw volumeBackendApiException(`Validate volume connection failed (error: ${errorMessage(err)}).`, err);
  }
  return connector;
}

/** The connection options of _parse_connection_options that come from the database. */
interface ConnectionOptions {
  qosSpecs: Record<string, unknown> | null;
  accessMode: string;
  cacheable: boolean | null;
}

/**
 * _parse_connection_options' reads: qos_specs, access_mode, cacheable. Read before anything is
 * exported, so a database failure here fails the operation before a host is admitted, and never
 * turns into "no read-only flag" (a read-only volume exported read-write).
 */
async function readConnectionOptions(deps: FlowDeps, vol: Volume): Promise<ConnectionOptions> {
  let specs: Record<string, unknown> | null = null;
  let cacheable: boolean | null = null;
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
    const extra = await deps.db.volumeTypes.extraSpecs(vol.volume_type_id);
    cacheable = extra.cacheable === '<is> True';
  }
  const admin = await deps.db.volumes.adminMetadataGet(vol.id);
  const accessMode = admin.attached_mode ?? (admin.readonly === 'True' ? 'ro' : 'rw');
  return { qosSpecs: specs, accessMode, cacheable };
}

function applyConnectionOptions(deps: FlowDeps, vol: Volume, info: ConnectionInfo, opts: ConnectionOptions): ConnectionInfo {
  const data = info.data;
  data.qos_specs = opts.qosSpecs;
  data.access_mode = opts.accessMode;
  if (data.encrypted === undefined || data.encrypted === null) data.encrypted = Boolean(vol.encryption_key_id);
  if (opts.cacheable !== null) {
    data.cacheable = data.cacheable !== undefined && data.cacheable !== null ? Boolean(data.cacheable) && opts.cacheable : opts.cacheable;
  }
  if ((data.discard === undefined || data.discard === null) && deps.reportDiscardSupported) data.discard = true;
  return info;
}

function parseConnector(raw: string | null): Connector | null {
  if (!raw) return null;
  try {
    const c = JSON.parse(raw) as unknown;
    return c !== null && typeof c === 'object' && !Array.isArray(c) ? (c as Connector) : null;
  } catch {
    return null; // an unreadable connector admits nobody, so it keeps nobody admitted either
  }
}

/**
 * What stays attached once the operation in hand is done, as the exports' revocation policy and
 * the remove-export decision read it: the connectors of the volume's attachments that are
 * attached or attaching with a connector, less `leaving` (the one being detached). Rows already
 * marked `detached` by an attachment_delete we answered are gone as far as access goes, even
 * though cinder-api deletes them only after our reply (listByVolume leaves them out).
 */
async function remainingConnectors(deps: FlowDeps, volumeId: string, leaving: string | null): Promise<Connector[]> {
  const out: Connector[] = [];
  for (const a of await deps.db.attachments.listByVolume(volumeId)) {
    if (a.id === leaving || (a.attach_status !== 'attached' && a.attach_status !== 'attaching')) continue;
    const connector = parseConnector(a.connector);
    if (connector) out.push(connector);
  }
  return out;
}

/**
 * Undo a connect whose attachment cannot be recorded: revoke this initiator unless another
 * attachment of it remains, and remove the export if nothing remains at all. Errors are logged:
 * the operation has failed already and that error is the one the caller must see.
 */
async function undoConnect(deps: FlowDeps, vol: Volume, connector: Connector, attachmentId: string | null): Promise<void> {
  try {
    const remaining = await remainingConnectors(deps, vol.id, attachmentId);
    await deps.exports.terminateConnection(driverVolume(vol), connector, { force: false, remaining });
    if (remaining.length === 0) await deps.exports.removeExport(driverVolume(vol));
  } catch (err) {
    deps.logger.error(
      { err, volume_id: vol.id },
      `Could not undo the export of volume ${vol.id} after a failed connection; check its target with the target tool and remove initiator ${String(connector.initiator)} by hand if it is still admitted.`,
    );
  }
}

/** create_export and the provider_* it returns saved on the row. */
async function createExportAndSave(deps: FlowDeps, row: Volume): Promise<Volume> {
  try {
    const model = await deps.exports.createExport(driverVolume(row));
    if (!model) return row;
    await deps.db.volumes.update(row.id, model);
    return { ...row, ...model };
  } catch (err) {
    throw volumeBackendApiException(`Create export of volume failed (${errorMessage(err)})`, err);
  }
}

/** create_export + save provider_* + initialize_connection + options (shared by both paths). */
async function connect(deps: FlowDeps, vol: Volume, connector: Connector, attachmentId: string | null): Promise<{ info: ConnectionInfo; row: Volume }> {
  const options = await readConnectionOptions(deps, vol);
  let row = await createExportAndSave(deps, vol);
  let info: ConnectionInfo;
  try {
    info = await deps.exports.initializeConnection(driverVolume(row), connector);
  } catch (first) {
    // The target daemon may have been restarted between create_export and here, with this
    // volume's restore waiting for the lock this call holds: make the export again, once.
    deps.logger.warn({ err: first, volume_id: vol.id }, `initialize_connection failed (${errorMessage(first)}); creating the export again and retrying once`);
    try {
      row = await createExportAndSave(deps, row);
      info = await deps.exports.initializeConnection(driverVolume(row), connector);
    } catch (err) {
      await undoConnect(deps, row, connector, attachmentId);
      throw volumeBackendApiException(`Driver initialize connection failed (error: ${errorMessage(err)}).`, err);
    }
  }
  return { info: applyConnectionOptions(deps, row, info, options), row };
}

export async function initializeConnection(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'initialize_connection'>): Promise<ConnectionInfo> {
  const { volume } = args;
  requireDriver(deps);
  const connector = validateConnector(deps, args.connector);
  return withVolumeConnections(deps, volume.data.id, () =>
    withInitiatorHost(deps, connector, async () => {
      const vol = await getVolume(deps, volume.data.id);
      const { info } = await connect(deps, vol, connector, null);
      deps.logger.info({ volume_id: vol.id }, 'Initialize volume connection completed successfully.');
      return info;
    }),
  );
}

export async function terminateConnection(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'terminate_connection'>): Promise<null> {
  const { volume_id: volumeId, force, connector } = args;
  requireDriver(deps);
  return withVolumeConnections(deps, volumeId, () =>
    withInitiatorHost(deps, connector, async () => {
      const vol = await getVolume(deps, volumeId);
      // The legacy call names no attachment: every live one counts, the detach that follows
      // (detach_volume) removes the export once none is left.
      const remaining = await remainingConnectors(deps, volumeId, null);
      try {
        await deps.exports.terminateConnection(driverVolume(vol), connector, { force, remaining });
      } catch (err) {
        throw volumeBackendApiException(`Terminate volume connection failed: ${errorMessage(err)}`, err);
      }
      deps.logger.info({ volume_id: volumeId }, 'Terminate volume connection completed successfully.');
      return null;
    }),
  );
}

export async function attachmentUpdate(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'attachment_update'>): Promise<Record<string, unknown>> {
  const { vref, attachment_id: attachmentId } = args;
  requireDriver(deps);
  const connector = validateConnector(deps, args.connector);
  return withVolumeConnections(deps, vref.data.id, () =>
    withInitiatorHost(deps, connector, async () => {
      let mode = typeof connector.mode === 'string' ? connector.mode : 'rw';
      const attachment = await deps.db.attachments.get(attachmentId);
      if (attachment.volume_id !== vref.data.id) throw invalidInput(`attachment ${attachmentId} is not an attachment of volume ${vref.data.id}`);
      if (attachment.attach_status === 'detached') {
        // Its attachment_delete has been answered already: admitting the host now would leave it
        // admitted after cinder-api deletes the row.
        throw invalidVolume(`attachment ${attachmentId} is being detached; create a new attachment`);
      }
      if (attachment.attach_mode !== 'null' && attachment.attach_mode) {
        mode = attachment.attach_mode;
        connector.mode = mode;
      }
      const vol = await getVolume(deps, vref.data.id);
      const { info, row } = await connect(deps, vol, connector, attachmentId);
      const flat: Record<string, unknown> = { ...info.data, driver_volume_type: info.driver_volume_type };
      try {
        await deps.db.attachments.update(attachmentId, { attach_status: 'attaching', connector: JSON.stringify(connector) });
        await deps.db.attachments.volumeAttached(
          attachmentId,
          attachment.instance_uuid,
          typeof connector.host === 'string' ? connector.host : '',
          typeof connector.mountpoint === 'string' ? connector.mountpoint : 'na',
          mode,
          false,
        );
      } catch (err) {
        // The host is admitted but the attachment that admits it was not recorded.
        await undoConnect(deps, row, connector, attachmentId);
        throw err;
      }
      flat.attachment_id = attachmentId;
      deps.logger.info({ volume_id: vol.id, attachment_id: attachmentId }, 'attachment_update completed successfully.');
      return flat;
    }),
  );
}

/**
 * _connection_terminate: null when there is nothing to terminate (no connector, not forced),
 * else whether other attachments still use the export. The host's access is revoked first and
 * only then is the attachment marked `detached`, so that any later decision (another detach, a
 * restart's restore) no longer counts it; cinder-api's finish_detach, which runs after our reply,
 * then soft-deletes the row as it always does. In that order a kill -9 between the two leaves the
 * row attached and the host revoked (a retried delete finishes it); the other order left a row
 * saying `detached` over a LUN still mapped, the bug 2004555 class (seen in the per-host
 * concurrency soak). (`detached` is the only attach_status for it: VolumeAttachStatus has no
 * `detaching`, and cinder-api refuses to load a row with a value outside the enum.)
 */
async function connectionTerminate(deps: FlowDeps, vol: Volume, attachment: VolumeAttachment, connector: Connector | null, force = false): Promise<boolean | null> {
  requireDriver(deps);
  if (!connector && !force) return null;
  const remaining = await remainingConnectors(deps, vol.id, attachment.id);
  await deps.exports.terminateConnection(driverVolume(vol), connector, { force, remaining });
  await deps.db.attachments.update(attachment.id, { attach_status: 'detached' });
  return remaining.length > 0;
}

export async function attachmentDelete(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'attachment_delete'>): Promise<null> {
  const { attachment_id: attachmentId, vref } = args;
  return withVolumeConnections(deps, vref.data.id, async () => {
    const vol = await getVolume(deps, vref.data.id);
    const attachment = await deps.db.attachments.get(attachmentId);
    const connector = parseConnector(attachment.connector);
    return withInitiatorHost(deps, connector, async () => {
      let shared: boolean | null;
      try {
        shared = await connectionTerminate(deps, vol, attachment, connector);
      } catch (err) {
        await deps.db.attachments.update(attachmentId, { attach_status: 'error_detaching' });
        throw err;
      }
      if (shared === false) {
        try {
          await deps.exports.removeExport(driverVolume(vol));
        } catch (err) {
          deps.logger.error({ err, volume_id: vol.id }, 'Detach volume failed, due to remove-export failure.');
        }
      }
      return null;
    });
  });
}

export async function removeExport(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'remove_export'>): Promise<null> {
  const volumeId = args.volume_id;
  requireDriver(deps);
  return withVolumeConnections(deps, volumeId, async () => {
    const vol = await getVolume(deps, volumeId);
    try {
      await deps.exports.removeExport(driverVolume(vol));
    } catch (err) {
      throw volumeBackendApiException(`Remove volume export failed: ${errorMessage(err)}`, err);
    }
    deps.logger.info({ volume_id: volumeId }, 'Remove volume export completed successfully.');
    return null;
  });
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

export async function attachVolume(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'attach_volume'>): Promise<VersionedObject> {
  const { volume_id: volumeId, instance_uuid: instanceUuid, host_name: hostName, mountpoint, mode } = args;
  return withLock(deps, volumeId, true, async () => {
    const vol = await getVolume(deps, volumeId);
    const admin = await deps.db.volumes.adminMetadataGet(volumeId);
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
        throw invalidVolumeAttachMode(mode, volumeId);
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

export async function detachVolume(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'detach_volume'>): Promise<null> {
  const { volume_id: volumeId, attachment_id: attachmentId } = args;
  // detach_volume's own lock as cinder takes it, then the connection lock: the export it may
  // remove must not be one an attach is using meanwhile.
  return withLock(deps, `${volumeId}-detach_volume`, true, () => withVolumeConnections(deps, volumeId, async () => {
    const vol = await getVolume(deps, volumeId);
    const live = (await deps.db.attachments.listByVolume(volumeId)).filter((a) => a.attach_status !== 'detached');
    let attachment: VolumeAttachment | undefined;
    if (attachmentId) {
      attachment = live.find((a) => a.id === attachmentId);
      if (!attachment) {
        // cinder: not found => treat as detached already.
        await deps.db.volumes.updateStatusBasedOnAttachment(volumeId);
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
    await deps.db.volumes.adminMetadataDelete(volumeId, 'attached_mode');
    const remaining = (await deps.db.attachments.listByVolume(volumeId)).filter((a) => a.attach_status !== 'detached');
    if (remaining.length === 0) {
      try {
        await deps.exports.removeExport(driverVolume(vol));
      } catch (err) {
        throw volumeBackendApiException(`Remove volume export failed: ${errorMessage(err)}`, err);
      }
    }
    deps.logger.info({ volume_id: volumeId }, 'Detach volume completed successfully.');
    return null;
  }));
}
