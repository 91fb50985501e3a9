// The RPC endpoint of one backend: cinder.volume.manager.VolumeManager's methods by name, at
// RPC API version 3.18. Arguments arrive decoded (oslo objects as VersionedObject) and are
// validated here, at the boundary, before anything reaches a driver. The flows themselves live in
// ./flows, one file per family, each writing cinder's database rows and status transitions.
import { driverNotInitialized, invalidInput } from '../errors.js';
import { VersionedObject } from '../rpc/ovo.js';
import { standardCapabilityProperties } from './capabilities.js';
import { createVolume } from './flows/create-volume.js';
import { deleteVolume, extendVolume } from './flows/delete-extend.js';
import { createSnapshot, deleteSnapshot, revertToSnapshot } from './flows/snapshots.js';
import {
  attachmentDelete,
  attachmentUpdate,
  attachVolume,
  detachVolume,
  initializeConnection,
  removeExport,
  terminateConnection,
} from './flows/connections.js';
import { manageExisting, retype } from './flows/retype-manage.js';
import { initHost, type InitHostReport } from './flows/init-host.js';
import type { FlowDeps } from './flows/common.js';
import type { ExportRestore } from './flows/export-restore.js';
import type { LogLevelControl } from './log-levels.js';
import type { VolumeService } from './volume-service.js';

export type Handler = (ctx: Record<string, unknown>, args: Record<string, unknown>) => unknown | Promise<unknown>;

export const VOLUME_RPC_API_VERSION = '3.18';


export class VolumeManager {
  readonly version = VOLUME_RPC_API_VERSION;

  constructor(
    private readonly service: VolumeService,
    private readonly logLevels: LogLevelControl,
    /** The volume flows' dependencies; without them only the service methods are served. */
    private readonly flows?: FlowDeps,
  ) {}

  /** Method table handed to the RPC server. */
  methods(): Record<string, Handler> {
    const base: Record<string, Handler> = {
      // discover asks cinder's driver to refresh its cached stats; ours are never cached.
      get_capabilities: () => this.getCapabilities(),
      secure_file_operations_enabled: () => this.service.driver.secureFileOperationsEnabled(),
      publish_service_capabilities: () => this.service.publishServiceCapabilities(),
      get_log_levels: (_ctx, args) => this.getLogLevels(args.log_request),
      set_log_levels: (_ctx, args) => this.setLogLevels(args.log_request),
    };
    const d = this.flows;
    if (!d) return base;
    return {
      ...base,
      create_volume: (ctx, args) => createVolume(d, ctx, args),
      delete_volume: (ctx, args) => deleteVolume(d, ctx, args),
      extend_volume: (ctx, args) => extendVolume(d, ctx, args),
      initialize_connection: (ctx, args) => initializeConnection(d, ctx, args),
      terminate_connection: (ctx, args) => terminateConnection(d, ctx, args),
      attachment_update: (ctx, args) => attachmentUpdate(d, ctx, args),
      attachment_delete: (ctx, args) => attachmentDelete(d, ctx, args),
      remove_export: (ctx, args) => removeExport(d, ctx, args),
      create_snapshot: (ctx, args) => createSnapshot(d, ctx, args),
      delete_snapshot: (ctx, args) => deleteSnapshot(d, ctx, args),
      revert_to_snapshot: (ctx, args) => revertToSnapshot(d, ctx, args),
      retype: (ctx, args) => retype(d, ctx, args),
      manage_existing: (ctx, args) => manageExisting(d, ctx, args),
      attach_volume: (ctx, args) => attachVolume(d, ctx, args),
      detach_volume: (ctx, args) => detachVolume(d, ctx, args),
    };
  }

  /**
   * init_host's recovery: call once the service row exists, before consuming RPCs. With
   * `restore`, the exports are restored on it in the background (report.restored says when).
   */
  async initHost(restore?: ExportRestore): Promise<InitHostReport | null> {
    if (!this.flows || !this.service.driverInitialized) return null;
    return initHost(this.flows, restore);
  }

  private async getCapabilities(): Promise<Record<string, unknown>> {
    if (!this.service.driverInitialized) throw driverNotInitialized(this.service.driver.className);
    // driver.init_capabilities: the driver's stats plus cinder's standard properties.
    const stats = await this.service.driver.getVolumeStats();
    return { ...stats, properties: standardCapabilityProperties() };
  }

  private getLogLevels(request: unknown): VersionedObject {
    const prefix = logRequestField(request, 'prefix');
    const levels = this.logLevels.get(prefix);
    const objects = Object.entries(levels).map(([p, level]) => new VersionedObject('LogLevel', { prefix: p, level }));
    return new VersionedObject('LogLevelList', { objects });
  }

  private setLogLevels(request: unknown): void {
    this.logLevels.set(logRequestField(request, 'prefix'), logRequestField(request, 'level'));
  }
}

function logRequestField(request: unknown, field: 'prefix' | 'level'): string | null {
  if (!(request instanceof VersionedObject) || request.name !== 'LogLevel') {
    throw invalidInput('log_request must be a LogLevel object');
  }
  const v = request.get(field);
  return typeof v === 'string' ? v : null;
}
